"""Fidelity of the sltt library pieces to the paper's official code (issue 10): the paper's BPTT
baseline, the saved-bytes total, the temporal-cut reference with per-step BN and a residual block,
and the paper-profile options. Every test compares against an independent reference."""

from __future__ import annotations

import copy

import pytest
import torch
from spikingjelly.activation_based import functional, layer
from torch.utils.data import TensorDataset

from snnlab import train
from snnlab.core import encoding, models, neurons
from snnlab.grad import sltt
from snnlab.record import bench
from snnlab.studies.sltt import analysis, runs

DT = torch.float64
TOL = dict(rtol=1e-9, atol=1e-12)


def _init(net: torch.nn.Module, seed: int, gain: float = 1.3) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.normal_(0.0, gain / m.weight[0].numel() ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.3, generator=gen)
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                m.weight.uniform_(0.8, 1.6, generator=gen)
                m.bias.uniform_(0.0, 0.5, generator=gen)
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
    return net


def conv_net(norm: bool, seed: int = 0) -> torch.nn.Module:
    mods = [layer.Conv2d(2, 3, 3, padding=1)]
    if norm:
        mods.append(layer.BatchNorm2d(3))
    mods += [neurons.lif("sltt"), layer.AvgPool2d(2), layer.Flatten(), layer.Linear(12, 5),
             neurons.lif("sltt"), layer.Linear(5, 3)]
    net = torch.nn.Sequential(*mods)
    functional.set_step_mode(net, "m")
    return _init(net.to(DT), seed)


def data(T: int, shape=(2, 4, 4), B: int = 4, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, *shape, generator=gen, dtype=DT) * 2.0, torch.randint(0, 3, (B,), generator=gen)


def step_grads(step, net, x, y, loss_fn) -> dict[str, torch.Tensor]:
    """Gradients of one training step on a deep copy (the original net is untouched)."""
    net = copy.deepcopy(net)
    functional.reset_net(net)
    net.zero_grad(set_to_none=True)
    step(net, x, y, loss_fn)
    return {n: p.grad.detach().clone() for n, p in net.named_parameters()}


def assert_close(a, b, **tol):
    assert a.keys() == b.keys()
    for n in a:
        torch.testing.assert_close(a[n], b[n], **(tol or TOL), msg=lambda m, n=n: f"{n}: {m}")


def max_diff(a, b) -> float:
    return max(float((a[n] - b[n]).abs().max()) for n in a)


# --- 1. the paper's BPTT (per-step loop) ----------------------------------------------------------


def test_bptt_paper_equals_explicit_recursion_and_fused_bptt_without_bn():
    net = conv_net(norm=False)
    x, y = data(5)
    loss_fn = train.TETLoss(lam=0.05)
    paper = step_grads(sltt.bptt_paper_step, net, x, y, loss_fn)
    fused = step_grads(train.bptt_step, net, x, y, loss_fn)
    ref = sltt.reference_gradient(net, x, y, loss_fn, cut_temporal=False)  # explicit LIF recursion
    assert_close(paper, ref)
    assert_close(paper, fused)
    # and it is BPTT, not SLTT: the temporal path is in it
    assert max_diff(paper, sltt.temporal_cut_gradient(net, x, y, loss_fn)) > 1e-6


def test_bptt_paper_equals_fused_bptt_with_eval_mode_bn_and_differs_in_train_mode():
    net = conv_net(norm=True)
    x, y = data(4)
    net.eval()  # running statistics: per-step and T*B normalisation coincide
    assert_close(step_grads(sltt.bptt_paper_step, net, x, y, train.ce_loss),
                 step_grads(train.bptt_step, net, x, y, train.ce_loss))
    net.train()  # per-step batch statistics vs statistics over T*B: the two baselines differ
    assert max_diff(step_grads(sltt.bptt_paper_step, net, x, y, train.ce_loss),
                    step_grads(train.bptt_step, net, x, y, train.ce_loss)) > 1e-6


def test_bptt_paper_step_restores_step_mode_and_returns_mean_loss():
    net = conv_net(norm=True)
    x, y = data(3)
    loss = sltt.bptt_paper_step(net, x, y, train.ce_loss)
    assert all(m.step_mode == "m" for m in net.modules() if hasattr(m, "step_mode"))
    functional.reset_net(net)
    with torch.no_grad():
        functional.set_step_mode(net, "s")
        hand = sum(float(train.ce_loss(net(x[t]), y)) for t in range(3)) / 3
    assert loss == pytest.approx(hand, rel=1e-12)


def test_step_function_and_method_validation():
    assert sltt.step_function("bptt") is train.bptt_step
    assert sltt.step_function("bptt_paper") is sltt.bptt_paper_step
    assert sltt.step_function("sltt_k", 2).k == 2
    assert sltt.resolve_method("bptt_paper", 4, None) == ("bptt_paper", None)
    with pytest.raises(ValueError, match="K="):
        sltt.resolve_method("bptt_paper", 4, 2)
    with pytest.raises(ValueError, match="method="):
        sltt.step_function("ottt")
    assert runs.Variant("bptt_paper", T=4).method == "bptt_paper"
    with pytest.raises(ValueError, match="K="):
        runs.Variant("bptt_paper", T=4, K=2)


def _mlp_factory():
    return models.build("mlp", 3, in_features=6, hidden=(32, 32), neuron="sltt", norm="none")


def _x_factory(T):
    gen = torch.Generator().manual_seed(0)
    return torch.rand(T, 8, 6, generator=gen) * 2, torch.randint(0, 3, (8,), generator=gen)


def test_memory_time_supports_both_bptt_baselines():
    rows = analysis.compare_methods(_mlp_factory, _x_factory, 4,
                                    (("bptt", None), ("bptt_paper", None), ("sltt", None)), repeats=1, warmup=0)
    by = {r["method"]: r for r in rows}
    # both BPTTs keep the whole unrolled graph: several times SLTT's one-step graph
    assert by["bptt_paper"]["saved_peak_bytes"] > 2 * by["sltt"]["saved_peak_bytes"]
    assert by["bptt"]["saved_peak_bytes"] > 2 * by["sltt"]["saved_peak_bytes"]
    summary = runs.memory_time_summary(
        rows + analysis.compare_methods(_mlp_factory, _x_factory, 2,
                                        (("bptt", None), ("bptt_paper", None), ("sltt", None)), repeats=1, warmup=0))
    assert len(summary["time_ratio_sltt_paper"]) == 2 and len(summary["memory_ratio_paper"]) == 2
    assert summary["memory_ratio_paper"][1] == pytest.approx(
        by["bptt_paper"]["saved_peak_bytes"] / by["sltt"]["saved_peak_bytes"])


# --- 2. saved-bytes total -------------------------------------------------------------------------


def test_saved_total_counts_every_graph_by_hand():
    """n sequential one-step graphs, each freed before the next: mm saves its input x (8x32; w
    needs no saving, x needs no gradient), tanh saves its output (8x32), so each graph saves 2048
    bytes and the total is n * 2048 exactly. Step t+1's input *is* step t's saved output (the same
    storage, saved again by the next graph): the old total, deduplicated by address over the
    block, charged it once and fails this."""
    w = torch.randn(32, 32, requires_grad=True)

    def online(n):
        x = torch.randn(8, 32)
        for _ in range(n):
            x = torch.tanh(x @ w)
            x.sum().backward()
            x = x.detach()

    per_step = 2 * 8 * 32 * 4
    for n in (1, 3, 6):
        got = bench.saved_tensor_bytes(lambda n=n: online(n))
        assert got["total"] == n * per_step
        assert got["peak"] == per_step


def test_saved_total_counts_a_storage_shared_within_a_graph_once():
    x = torch.randn(16, 16, requires_grad=True)
    with bench.SavedTensorMeter() as m:
        y = (x * x[:8].sum()) @ x  # x saved by mul and by mm while both are alive: one storage
    assert m.total == m.peak == x.nbytes + 16 * 16 * 4 + 4  # x, the product, the slice sum's scalar
    del y


def test_sltt_saved_total_grows_linearly_in_T():
    tot = {T: analysis.measure_memory_time(_mlp_factory, _x_factory, "sltt", T, repeats=1, warmup=0)
           for T in (2, 3, 4)}
    t2, t3, t4 = (tot[T]["saved_total_bytes"] for T in (2, 3, 4))
    assert t3 - t2 == t4 - t3 > 0  # every further step's graph is charged the same bytes
    assert tot[2]["saved_peak_bytes"] == tot[4]["saved_peak_bytes"]


# --- 3. the temporal-cut reference with per-step BN, sWS and residual blocks -----------------------


def resnet(arch: str, norm: str = "bn", seed: int = 0, **kw) -> torch.nn.Module:
    net = models.build(arch, 3, in_channels=2, input_size=4, width=1 / 16, neuron="sltt", norm=norm, **kw)
    return _init(net.to(DT), seed, gain=2.0)


NETS = {
    "conv_bn": lambda: conv_net(norm=True),
    "preact_resnet18_bn": lambda: resnet("preact_resnet18"),
    "resnet19_bn": lambda: resnet("resnet19"),
    "preact_resnet18_sws": lambda: resnet("preact_resnet18", norm="sws"),
    "preact_resnet18_hard": lambda: resnet("preact_resnet18", v_reset=0.0),
}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_sltt_and_paper_bptt_equal_explicit_recursion_with_bn_and_residual_blocks(name, mode):
    net = NETS[name]()
    net.train(mode == "train")
    x, y = data(3)
    loss_fn = train.TETLoss(lam=0.05)
    g_sltt = sltt.sltt_gradient(net, x, y, loss_fn)
    assert_close(g_sltt, sltt.temporal_cut_gradient(net, x, y, loss_fn))
    g_bptt = sltt.bptt_gradient(net, x, y, loss_fn, step_mode="s")  # the paper's BPTT
    assert_close(g_bptt, sltt.reference_gradient(net, x, y, loss_fn, cut_temporal=False))
    assert max_diff(g_sltt, g_bptt) > 1e-8  # the temporal term is there: the comparison can fail
    assert sum(float(g.abs().sum()) for g in g_sltt.values()) > 0


def test_explicit_bn_uses_per_step_statistics_not_T_times_B():
    """The reference normalises each step by its own batch: it equals the per-step loop, and not the
    fused multi-step net whose BN pools the T*B samples (so a wrong BN in the reference is caught)."""
    net = conv_net(norm=True)
    x, y = data(3)
    x = x * torch.arange(1, 4, dtype=DT).view(3, 1, 1, 1, 1)  # steps with different statistics
    ref = sltt.reference_gradient(net, x, y, train.ce_loss, cut_temporal=False)
    assert_close(step_grads(sltt.bptt_paper_step, net, x, y, train.ce_loss), ref)
    assert max_diff(step_grads(train.bptt_step, net, x, y, train.ce_loss), ref) > 1e-6


def test_explicit_forward_records_every_lif_layer_of_a_resnet():
    net = resnet("preact_resnet18").eval()  # running BN statistics: the multi-step forward agrees
    rec: dict = {}
    x, _ = data(2)
    outs = sltt.explicit_forward(net, x, record=rec)
    functional.reset_net(net)
    with torch.no_grad():
        ref = net(x)
    n_lif = len(models.spiking_neurons(net))
    assert len(rec["u"]) == len(rec["s"]) == n_lif and all(len(u) == 2 for u in rec["u"])
    torch.testing.assert_close(torch.stack(outs).detach(), ref, **TOL)


# --- 4. paper-profile options: shortcut wiring, triangle surrogate, augmentation, AMP -------------


def test_preact_shortcut_from_spikes_is_the_official_wiring():
    """Hand-wired block: out = conv2(LIF(bn2(conv1(a)))) + shortcut(a), a = LIF(bn1(x))."""
    net = resnet("preact_resnet18", shortcut_from="spikes").eval()
    block = next(m for m in net.modules() if isinstance(m, models.PreActBlock) and
                 isinstance(m.shortcut, torch.nn.Conv2d))
    functional.set_step_mode(net, "s")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, block.bn1.num_features, 4, 4, generator=gen, dtype=DT) * 2
    with torch.no_grad():
        functional.reset_net(net)
        got = block(x)
        functional.reset_net(net)
        a = block.act1(block.bn1(x))
        hand = block.conv2(block.act2(block.bn2(block.conv1(a)))) + block.shortcut(a)
        functional.reset_net(net)
        other = block.conv2(block.act2(block.bn2(block.conv1(block.act1(block.bn1(x)))))) + block.shortcut(x)
    torch.testing.assert_close(got, hand, **TOL)
    assert float((got - other).abs().max()) > 1e-6  # the default wiring (raw input) differs
    with pytest.raises(ValueError, match="shortcut_from"):
        models.build("vgg11", 3, shortcut_from="spikes")


def test_sltt_equals_reference_with_official_shortcut():
    net = resnet("preact_resnet18", shortcut_from="spikes")
    x, y = data(3)
    assert_close(sltt.sltt_gradient(net, x, y, train.ce_loss), sltt.temporal_cut_gradient(net, x, y, train.ce_loss))


def test_triangle_override_is_the_official_default_surrogate():
    """Official default ``-surrogate triangle`` = spikingjelly ``PiecewiseQuadratic()`` (alpha=1):
    g'(x) = max(0, 1 - |x|) (train_SLTT.py / train_BPTT.py)."""
    node = neurons.lif("sltt", surrogate="triangle")
    x = torch.linspace(-1.5, 1.5, 31, dtype=DT, requires_grad=True)
    (g,) = torch.autograd.grad(node.surrogate_function(x).sum(), x)
    torch.testing.assert_close(g, (1 - x.detach().abs()).clamp(min=0), **TOL)
    assert node.tau == pytest.approx(1.1) and node.v_reset is None


def test_augment_crop_flip_cutout_by_hand():
    x = torch.rand(64, 3, 8, 8)
    out = encoding.augment_batch(x, generator=torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    n_cut = n_same = 0
    for b in range(64):
        # every output row segment comes from x shifted by at most pad (maybe flipped), or is a fill
        found = False
        for flip in (False, True):
            src = x[b].flip(-1) if flip else x[b]
            for di in range(-2, 3):
                for dj in range(-2, 3):
                    shifted = torch.zeros_like(src)
                    ys, xs = slice(max(0, -di), 8 - max(0, di)), slice(max(0, -dj), 8 - max(0, dj))
                    yd, xd = slice(max(0, di), 8 - max(0, -di)), slice(max(0, dj), 8 - max(0, -dj))
                    shifted[:, ys, xs] = src[:, yd, xd]
                    agree = (out[b] == shifted).all(0)
                    if agree.float().mean() >= 0.5:
                        bad = ~agree  # only the cutout box may differ: channel 0 = c/255, others 0
                        if bad.any():
                            assert (out[b, 1:][:, bad] == 0).all()
                            assert ((out[b, 0][bad] * 255).round() - out[b, 0][bad] * 255).abs().max() < 1e-4
                            n_cut += 1
                        else:
                            n_same += 1
                        found = True
                        break
                if found:
                    break
            if found:
                break
        assert found, f"sample {b} is not a padded crop / flip / cutout of its input"
    assert 15 < n_cut < 50  # Cutout p = 1/2
    assert encoding.augment_batch(x, "none") is x
    with pytest.raises(ValueError, match="augment"):
        encoding.augment_batch(x, "mixup")


def test_augment_fill_in_normalised_units():
    x = torch.full((16, 1, 4, 4), 0.7)
    out = encoding.augment_batch(x, generator=torch.Generator().manual_seed(1), pad=4, mean=[0.5], std=[0.25])
    assert (out == -2.0).any()  # the black padding (0 - 0.5) / 0.25 shows up after a shifted crop


def test_trainconfig_augment_amp_options_and_cache_key():
    cfg = train.TrainConfig(epochs=1, T=2, batch_size=8, progress=False)
    assert "augment" not in cfg.key() and "amp" not in cfg.key()  # old runs keep their cache key
    aug = train.TrainConfig(epochs=1, T=2, batch_size=8, progress=False, augment="crop_flip_cutout",
                            augment_kw={"pad": 1}, amp=True)
    assert aug.key()["augment"] == "crop_flip_cutout" and aug.key()["amp"] is True
    with pytest.raises(ValueError, match="augment"):
        train.TrainConfig(augment="mixup").validate()
    with pytest.raises(ValueError, match="amp"):
        train.TrainConfig(amp="yes").validate()
    gen = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.rand(16, 1, 4, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen))
    net = models.build("vgg11", 3, in_channels=1, input_size=4, width=1 / 16, neuron="sltt")
    hist = train.fit(net, ds, None, aug)  # AMP on CPU: a no-op (full precision)
    assert len(hist) == 1 and torch.isfinite(torch.tensor(hist[0]["train_loss"]))
