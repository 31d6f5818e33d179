"""SLTT / SLTT-K against independent references (sltt paper, Meng et al. 2023).

References: the explicit per-layer LIF recursion of :func:`snnlab.sltt.explicit_forward` (no
spikingjelly neuron code), spikingjelly's multi-step BPTT, spikingjelly 2.0.0's own
``SLTTLIFNode``, autograd of one spikingjelly LIF step (for epsilon), the paper's closed forms
(Eq. S11 range, Appendix C.2 counts) and torch's FlopCounterMode. Gradients are compared in float64.
"""

from __future__ import annotations

import pickle

import pytest
import torch
from spikingjelly.activation_based import functional, layer
from spikingjelly.activation_based import neuron as sj_neuron

from snnlab import train
from snnlab.core import models, neurons
from snnlab.core.surrogate import Rectangle
from snnlab.grad import sltt
from snnlab.studies.sltt import analysis
import copy
from torch.utils.data import TensorDataset

DT = torch.float64
TOL = dict(rtol=1e-10, atol=1e-13)


def _init(net: torch.nn.Module, seed: int, gain: float = 1.3) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, gain / fan_in**0.5, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.3, generator=gen)
    return net


def tiny_mlp(seed: int = 0, **neuron_kw) -> torch.nn.Module:
    net = models.build("mlp", 3, in_features=6, hidden=(7, 5), neuron="sltt", norm="none", **neuron_kw)
    return _init(net.to(DT), seed)


def tiny_conv(seed: int = 0, **neuron_kw) -> torch.nn.Module:
    net = torch.nn.Sequential(
        layer.Conv2d(2, 3, 3, padding=1), neurons.lif("sltt", **neuron_kw), layer.AvgPool2d(2),
        layer.Flatten(), layer.Linear(3 * 2 * 2, 5), neurons.lif("sltt", **neuron_kw), layer.Linear(5, 3),
    )
    functional.set_step_mode(net, "m")
    return _init(net.to(DT), seed)


def data(T: int, shape=(6,), B: int = 4, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(T, B, *shape, generator=gen, dtype=DT) * 2.0
    y = torch.randint(0, 3, (B,), generator=gen)
    return x, y


def assert_grads_close(a: dict, b: dict, **tol) -> None:
    assert a.keys() == b.keys()
    for n in a:
        torch.testing.assert_close(a[n], b[n], **(tol or TOL), msg=lambda m, n=n: f"{n}: {m}")


def max_diff(a: dict, b: dict) -> float:
    return max(float((a[n] - b[n]).abs().max()) for n in a)


# --- SLTT vs the explicit references ------------------------------------------------------------


@pytest.mark.parametrize("make,shape", [(tiny_mlp, (6,)), (tiny_conv, (2, 4, 4))], ids=["mlp", "conv"])
@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_sltt_equals_temporal_cut_reference(make, shape, reset):
    kw = {} if reset == "soft" else {"v_reset": 0.0}
    net = make(**kw)
    x, y = data(6, shape)
    loss_fn = train.TETLoss(lam=0.05)
    g = sltt.sltt_gradient(net, x, y, loss_fn)
    ref = sltt.temporal_cut_gradient(net, x, y, loss_fn)
    assert_grads_close(g, ref)
    # the reference without the cut is BPTT, and BPTT is different: the test can fail
    bptt = sltt.bptt_gradient(net, x, y, loss_fn, step_mode="m")
    assert_grads_close(bptt, sltt.reference_gradient(net, x, y, loss_fn, cut_temporal=False))
    assert max_diff(g, bptt) > 1e-6


def test_sltt_fills_grad_and_returns_objective():
    net = tiny_mlp()
    x, y = data(5)
    net.zero_grad()
    loss = sltt.sltt_step(net, x, y, train.ce_loss)
    ref = sltt.temporal_cut_gradient(net, x, y, train.ce_loss)
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], **TOL)
    functional.reset_net(net)
    with torch.no_grad():
        expected = float(torch.stack([train.ce_loss(o, y) for o in net(x)]).mean())
    assert loss == pytest.approx(expected, rel=1e-12)
    assert all(m.step_mode == "m" for m in net.modules() if hasattr(m, "step_mode"))


def test_sltt_accumulates_into_existing_grad():
    net = tiny_mlp()
    x, y = data(4)
    ref = sltt.temporal_cut_gradient(net, x, y, train.ce_loss)
    net.zero_grad()
    sltt.sltt_step(net, x, y, train.ce_loss)
    functional.reset_net(net)
    sltt.sltt_step(net, x, y, train.ce_loss)
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, 2 * ref[n], **TOL)


def test_T1_sltt_equals_bptt():
    net = tiny_mlp(seed=3)
    x, y = data(1, seed=4)
    assert_grads_close(sltt.sltt_gradient(net, x, y, train.ce_loss),
                       sltt.bptt_gradient(net, x, y, train.ce_loss, step_mode="m"))


def test_sltt_k_equal_T_is_sltt():
    net = tiny_mlp()
    x, y = data(5)
    g_k = sltt.sltt_gradient(net, x, y, train.ce_loss, k=5, generator=torch.Generator().manual_seed(0))
    assert_grads_close(g_k, sltt.sltt_gradient(net, x, y, train.ce_loss))


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_sltt_k_is_sum_over_sampled_steps(reset):
    net = tiny_mlp(**({} if reset == "soft" else {"v_reset": 0.0}))
    T, K = 6, 2
    x, y = data(T)
    for seed in range(3):
        steps = sltt.sample_bp_steps(T, K, torch.Generator().manual_seed(seed))
        g = sltt.sltt_gradient(net, x, y, train.ce_loss, k=K, generator=torch.Generator().manual_seed(seed))
        assert_grads_close(g, sltt.temporal_cut_gradient(net, x, y, train.ce_loss, steps=steps))
        others = [t for t in range(T) if t not in steps][:K]
        assert max_diff(g, sltt.temporal_cut_gradient(net, x, y, train.ce_loss, steps=others)) > 1e-8


def test_sample_bp_steps():
    a = sltt.sample_bp_steps(10, 4, torch.Generator().manual_seed(7))
    b = sltt.sample_bp_steps(10, 4, torch.Generator().manual_seed(7))
    assert a == b and len(set(a)) == 4 and a == sorted(a) and all(0 <= t < 10 for t in a)
    assert sltt.sample_bp_steps(3) == [0, 1, 2]
    # every step is drawn with probability K/T
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(5)
    for _ in range(2000):
        counts[sltt.sample_bp_steps(5, 2, gen)] += 1
    assert torch.allclose(counts / 2000, torch.full((5,), 0.4), atol=0.05)


@pytest.mark.parametrize("k", [0, 6, -1, 2.0, True, "2"])
def test_k_validation(k):
    net = tiny_mlp()
    x, y = data(5)
    with pytest.raises(ValueError, match="K="):
        sltt.sltt_step(net, x, y, train.ce_loss, k=k)


def test_T_validation():
    net = tiny_mlp()
    with pytest.raises(ValueError, match="T=0"):
        sltt.sltt_step(net, torch.zeros(0, 2, 6, dtype=DT), torch.zeros(2, dtype=torch.long), train.ce_loss)
    with pytest.raises(ValueError, match="x_seq"):
        sltt.sltt_step(net, torch.zeros(6, dtype=DT), torch.zeros(2, dtype=torch.long), train.ce_loss)
    with pytest.raises(ValueError, match="T="):
        sltt.sample_bp_steps(0)


def test_step_mode_restored_on_error():
    net = tiny_mlp()
    x, y = data(3)

    def bad_loss(o, y):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        sltt.sltt_step(net, x, y, bad_loss)
    assert all(m.step_mode == "m" for m in net.modules() if hasattr(m, "step_mode"))


def test_bptt_single_step_equals_multi_step_without_bn():
    net = tiny_conv()
    x, y = data(4, (2, 4, 4))
    assert_grads_close(sltt.bptt_gradient(net, x, y, train.ce_loss, "s"),
                       sltt.bptt_gradient(net, x, y, train.ce_loss, "m"))


def test_gradient_helpers_leave_no_side_effects():
    net = models.build("vgg11", 3, in_channels=2, input_size=4, width=1 / 16, neuron="sltt").to(DT)
    x, y = data(3, (2, 4, 4))
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    buffers = [b.clone() for b in net.buffers()]
    sltt.sltt_gradient(net, x, y, train.ce_loss)
    sltt.bptt_sltt_cosine(net, x, y, train.ce_loss)
    analysis.gradient_components(net, x, y, train.ce_loss)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(buffers, net.buffers()))
    assert all(m.step_mode == "m" for m in net.modules() if hasattr(m, "step_mode"))


# --- spikingjelly's own SLTTLIFNode ------------------------------------------------------------


def _swap_to_sj_sltt(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` whose LIFNodes are spikingjelly SLTTLIFNodes with the same parameters."""
    twin = copy.deepcopy(net)
    for parent in twin.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, sj_neuron.LIFNode):
                setattr(parent, name, sj_neuron.SLTTLIFNode(
                    tau=child.tau, decay_input=child.decay_input, v_threshold=child.v_threshold,
                    v_reset=child.v_reset, surrogate_function=Rectangle(1.0),
                    detach_reset=child.detach_reset, step_mode="s"))
    functional.set_step_mode(twin, "s")
    return twin


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_matches_spikingjelly_SLTTLIFNode(reset):
    """SLTTLIFNode detaches v at the start of every step while ``training`` (its only change to
    LIFNode), so full autograd through a single-step loop of it gives the SLTT gradient. It does
    not back-propagate per step itself: the caller must, to get the memory saving."""
    net = tiny_mlp(**({} if reset == "soft" else {"v_reset": 0.0}))
    twin = _swap_to_sj_sltt(net)
    T = 5
    x, y = data(T)
    loss = sum(train.ce_loss(twin(x[t]), y) for t in range(T)) / T
    names = [n for n, _ in twin.named_parameters()]
    g_twin = dict(zip(names, torch.autograd.grad(loss, list(twin.parameters()))))
    assert_grads_close(sltt.sltt_gradient(net, x, y, train.ce_loss), g_twin)
    # in eval mode it neither detaches nor uses the surrogate: forward identical, no spike gradient
    functional.reset_net(twin)
    twin.eval()
    functional.reset_net(net)
    with torch.no_grad():
        out_twin = torch.stack([twin(x[t]) for t in range(T)])
        torch.testing.assert_close(out_twin, net(x), **TOL)


# --- epsilon (Eq. S2, S11) ----------------------------------------------------------------------


@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("tau", [1.1, 2.0])
def test_epsilon_matches_autograd_of_one_lif_step(reset, tau):
    """du[t+1]/du[t] through spikingjelly's LIFNode (its reset and surrogate), elementwise."""
    node = neurons.lif("sltt", step_mode="s", tau=tau, v_reset=None if reset == "soft" else 0.0)
    gen = torch.Generator().manual_seed(0)
    u = (torch.rand(400, generator=gen, dtype=DT) * 3.0 - 0.75).requires_grad_(True)
    functional.reset_net(node)
    s = node(u)  # v[t-1] = 0, decay_input=False: the membrane before reset is u itself
    u_next = (1 - 1 / tau) * node.v + torch.rand(400, generator=gen, dtype=DT)
    (du,) = torch.autograd.grad(u_next.sum(), u)
    eps = sltt.epsilon_diagonal(u.detach(), s.detach(), tau, 1.0, reset)
    torch.testing.assert_close(eps, du, **TOL)
    assert (eps != 1 - 1 / tau).any()  # some neurons inside the surrogate window


def test_epsilon_hard_reset_range_eq_S11():
    tau = 1.1
    lam = 1 - 1 / tau
    u = torch.linspace(-2.0, 4.0, 20001, dtype=DT)
    s = (u >= 1.0).to(DT)
    eps = sltt.epsilon_diagonal(u, s, tau, 1.0, "hard")
    in_open = (eps > -1.5 * lam) & (eps < 0.5 * lam)
    is_lam = torch.isclose(eps, torch.full_like(eps, lam), rtol=0, atol=1e-15)
    assert (in_open | is_lam).all()
    # Eq. S11 piecewise form
    window = (u > 0.5) & (u < 1.5)
    expected = torch.where(window, lam * (1 - s - u), lam * (1 - s))
    torch.testing.assert_close(eps, expected, **TOL)
    # soft reset: lambda (1 - V_th g'): lambda outside the window, 0 inside (rectangle, gamma = V_th)
    soft = sltt.epsilon_diagonal(u, s, tau, 1.0, "soft")
    torch.testing.assert_close(soft, torch.where(window, torch.zeros_like(u), torch.full_like(u, lam)), **TOL)


def test_epsilon_validation():
    u = torch.zeros(3)
    with pytest.raises(ValueError, match="reset="):
        sltt.epsilon_diagonal(u, u, 1.1, reset="medium")
    with pytest.raises(ValueError, match="tau="):
        sltt.epsilon_diagonal(u, u, 0.5)


# --- gradient components (Lemma 1) --------------------------------------------------------------


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_gradient_components_lemma1(reset):
    kw = {} if reset == "soft" else {"v_reset": 0.0}
    net = tiny_mlp(seed=0, **kw)
    T = 6
    x, y = data(T, seed=5)
    gc = analysis.gradient_components(net, x, y, train.ce_loss, keep_tensors=True)
    L = len(gc.layer_names)
    assert gc.spatial_norm.shape == (L, T) == gc.temporal_share.shape
    # total dL/du[t] against the explicit BPTT recursion (independent of the hooks)
    rec: dict = {}
    outs = sltt.explicit_forward(net, x, cut_temporal=False, record=rec)
    loss = sum(train.ce_loss(o, y) for o in outs) / T
    us = [u for layer_us in rec["u"] for u in layer_us]
    g_u = torch.autograd.grad(loss, us)
    for li in range(L):
        tot = gc.tensors["total"][li]
        sp = gc.tensors["spatial"][li]
        for t in range(T):
            torch.testing.assert_close(tot[t], g_u[li * T + t], **TOL)
            eps = sltt.epsilon_diagonal(gc.tensors["u"][li][t], gc.tensors["s"][li][t], 1.1, 1.0, reset)
            # Eq. S5: temporal term = dL/du[t+1] * eps[t]; none at t = T
            expected_tm = tot[t + 1] * eps if t + 1 < T else torch.zeros_like(tot[t])
            torch.testing.assert_close(gc.tensors["temporal"][li][t], expected_tm, **TOL)
            # Eq. S3: total = spatial[t] + sum_{t'>t} spatial[t'] prod eps
            acc, prod = sp[t].clone(), torch.ones_like(sp[t])
            for tp in range(t + 1, T):
                prod = prod * sltt.epsilon_diagonal(gc.tensors["u"][li][tp - 1], gc.tensors["s"][li][tp - 1],
                                                    1.1, 1.0, reset)
                acc = acc + sp[tp] * prod
            torch.testing.assert_close(acc, tot[t], **TOL)
    assert (gc.total_norm.sum(1) > 0).all() and (gc.temporal_norm[:, :-1] > 0).any()
    rows = gc.records()
    assert len(rows) == L * T and {"spatial_share", "temporal_share", "cosine"} <= rows[0].keys()
    shares = gc.spatial_share + gc.temporal_share
    assert torch.allclose(shares[~shares.isnan()], torch.ones(1, dtype=DT))


def test_gradient_components_float32_and_bn_model():
    net = models.build("vgg11", 3, in_channels=2, input_size=4, width=1 / 16, neuron="sltt")
    x, y = data(3, (2, 4, 4))
    gc = analysis.gradient_components(net, x.float(), y, train.ce_loss)
    assert gc.spatial_norm.shape == (len(models.spiking_neurons(net)), 3)
    assert torch.isfinite(gc.total_norm).all()


def test_bptt_sltt_cosine():
    net = tiny_mlp()
    x, y = data(1)
    cos = sltt.bptt_sltt_cosine(net, x, y, train.ce_loss)
    assert all(c == pytest.approx(1.0, abs=1e-12) for c in cos.values())
    x, y = data(6)
    cos = sltt.bptt_sltt_cosine(net, x, y, train.ce_loss)
    # against the explicit-recursion reference (plain torch, not the library's training steps)
    b = sltt.reference_gradient(net, x, y, train.ce_loss, cut_temporal=False)
    s = sltt.reference_gradient(net, x, y, train.ce_loss, cut_temporal=True)
    for w in b:
        assert cos[w] == pytest.approx(float(torch.nn.functional.cosine_similarity(
            b[w].flatten(), s[w].flatten(), dim=0)), rel=1e-9), w
    allb, alls = torch.cat([g.flatten() for g in b.values()]), torch.cat([g.flatten() for g in s.values()])
    assert cos["__all__"] == pytest.approx(float(allb @ alls / (allb.norm() * alls.norm())), rel=1e-9)
    assert cos["__all__"] < 1 - 1e-9


# --- training-step object -----------------------------------------------------------------------


def test_make_sltt_step_pickles_and_reproduces():
    net = tiny_mlp()
    x, y = data(6)
    step = sltt.make_sltt_step(k=2, seed=3)
    sltt.sample_bp_steps(6, 2, step.generator)  # advance the generator
    clone = pickle.loads(pickle.dumps(step))
    assert repr(clone) == "SLTTStep(k=2, seed=3)"
    assert sltt.sample_bp_steps(6, 2, clone.generator) == sltt.sample_bp_steps(6, 2, step.generator)
    fresh = sltt.make_sltt_step(k=2, seed=3)
    net.zero_grad()
    fresh(net, x, y, train.ce_loss)
    g = {n: p.grad.clone() for n, p in net.named_parameters()}
    steps = sltt.sample_bp_steps(6, 2, torch.Generator().manual_seed(3))
    assert_grads_close(g, sltt.temporal_cut_gradient(net, x, y, train.ce_loss, steps=steps))
    with pytest.raises(ValueError, match="K="):
        sltt.make_sltt_step(k=0)
    with pytest.raises(ValueError, match="seed="):
        sltt.make_sltt_step(seed=-1)


def test_sltt_step_trains_with_fit():
    gen = torch.Generator().manual_seed(0)
    xs = torch.rand(32, 6, generator=gen)
    ys = (xs[:, 0] > 0.5).long()
    net = models.build("mlp", 2, in_features=6, hidden=(16,), neuron="sltt", norm="none")
    cfg = train.TrainConfig(epochs=2, lr=1e-2, batch_size=16, T=3, progress=False)
    hist = train.fit(net, TensorDataset(xs, ys), None, cfg, step_fn=sltt.make_sltt_step(k=2, seed=0))
    assert len(hist) == 2 and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in hist)
    assert all(m.step_mode == "m" for m in net.modules() if hasattr(m, "step_mode"))


# --- operation counts (Appendix C.2) -------------------------------------------------------------


def test_op_count_formula_closed_form():
    d, T = 16, 6
    b, s = analysis.op_count_formula(d, "bptt", T), analysis.op_count_formula(d, "sltt", T)
    assert b["per_intermediate_step"] - s["per_intermediate_step"] == 2 * d  # "SLTT saves 2d"
    assert b["total"] - s["total"] == 2 * d * (T - 1)
    assert b["matmul"] == s["matmul"] == 2 * d * d * T
    k = analysis.op_count_formula(d, "sltt_k", T, K=2)
    assert k["total"] * T == s["total"] * 2  # proportional to K
    assert analysis.op_count_formula(d, "sltt", T, K=2) == k
    assert analysis.op_count_formula(d, "sltt", T, batch=3)["total"] == 3 * s["total"]
    for bad in (dict(method="adam"), dict(method="sltt_k"), dict(method="bptt", K=2), dict(method="sltt", K=7)):
        with pytest.raises(ValueError):
            analysis.op_count_formula(d, T=T, **bad)


@pytest.mark.parametrize("method", ["bptt", "sltt"])
def test_algorithm_backward_matches_autograd(method):
    net = tiny_mlp(seed=4)
    x, y = data(5, seed=6)
    grads, _ = analysis.algorithm_backward(net, x, y, train.ce_loss, method=method)
    ref = sltt.reference_gradient(net, x, y, train.ce_loss, cut_temporal=method == "sltt")
    assert_grads_close(grads, ref)
    steps = [1, 3]
    if method == "sltt":
        g_k, _ = analysis.algorithm_backward(net, x, y, train.ce_loss, method="sltt", steps=steps)
        assert_grads_close(g_k, sltt.temporal_cut_gradient(net, x, y, train.ce_loss, steps=steps))


@pytest.mark.parametrize("method,K", [("bptt", None), ("sltt", None), ("sltt_k", 2)])
@pytest.mark.parametrize("batch", [1, 3])
def test_measured_op_counts_match_formula(method, K, batch):
    d, T = 8, 5
    r = analysis.count_backward_ops(d, T, method, K, layers=3, batch=batch)
    f = r["formula"]
    fc = r["flop_counter"]
    for i in fc["intermediate"]:  # FlopCounterMode sees the d^2 terms only
        assert fc["backward_matmul_mults"][i] == f["matmul"]
    inst = r["instrumented"]
    for i in inst["intermediate"]:  # our instrumentation also counts the 2d / d elementwise terms
        assert inst["matmul"][i] == f["matmul"]
        assert inst["elementwise"][i] == f["elementwise"]


# --- memory and time ----------------------------------------------------------------------------


def _mlp_factory():
    return models.build("mlp", 3, in_features=6, hidden=(32, 32), neuron="sltt", norm="none")


def _x_factory(T):
    gen = torch.Generator().manual_seed(0)
    return torch.rand(T, 8, 6, generator=gen) * 2, torch.randint(0, 3, (8,), generator=gen)


def test_measure_memory_time_saved_bytes():
    """Saved-for-backward bytes are deterministic: SLTT's peak does not grow with T, BPTT's does."""
    res = {(m, T): analysis.measure_memory_time(_mlp_factory, _x_factory, m, T, repeats=1, warmup=0)
           for m in ("bptt", "sltt") for T in (2, 8)}
    for r in res.values():
        assert r["saved_peak_bytes"] > 0 and r["time_median_s"] > 0 and r["cuda_peak_bytes"] is None
    assert res["sltt", 2]["saved_peak_bytes"] == res["sltt", 8]["saved_peak_bytes"]
    assert res["bptt", 8]["saved_peak_bytes"] > 2 * res["bptt", 2]["saved_peak_bytes"]
    k = analysis.measure_memory_time(_mlp_factory, _x_factory, "sltt_k", 8, K=2, repeats=1, warmup=0)
    assert k["K"] == 2 and k["saved_peak_bytes"] == res["sltt", 8]["saved_peak_bytes"]
    with pytest.raises(ValueError, match="method="):
        analysis.measure_memory_time(_mlp_factory, _x_factory, "ottt", 2)


def _saved_bytes_end_of_forward(T: int) -> int:
    """Independent reference for the saved-for-backward peak of the paper's BPTT loop: the official
    train_BPTT.py forward written out here (single-step net, ``for t in range(T)``, mean CE over T),
    under a bare ``saved_tensors_hooks`` that records the storage of every saved tensor. No graph is
    freed before the one backward, so the peak is the sum over the distinct storages alive at the
    end of the forward pass (shared ones, such as a weight saved at every step, count once; the input
    batch's own storages are the caller's data and are excluded, as documented)."""
    torch.manual_seed(0)
    net = _mlp_factory().train()
    x_seq, y = _x_factory(T)
    inputs = {x_seq.untyped_storage().data_ptr(), y.untyped_storage().data_ptr()}
    storages: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in inputs:
            storages[st.data_ptr()] = st.nbytes()
        return t

    functional.set_step_mode(net, "s")
    functional.reset_net(net)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = sum(torch.nn.functional.cross_entropy(net(x_seq[t]), y) for t in range(T)) / T
    total = sum(storages.values())
    del loss
    return total


def test_measure_memory_time_against_an_independent_count():
    """measure_memory_time's saved-bytes peak against the reference above: the paper's BPTT keeps all
    T step graphs (= the reference at T); SLTT and SLTT-K free each step's graph before the next, so
    their peak is one step's graph (= the reference at T = 1), whatever T."""
    ref = {T: _saved_bytes_end_of_forward(T) for T in (1, 2, 4)}
    assert ref[4] - ref[2] == 2 * (ref[2] - ref[1]) > 0  # the reference grows by one step graph per step
    for T in (1, 4):
        got = analysis.measure_memory_time(_mlp_factory, _x_factory, "bptt_paper", T, repeats=1, warmup=0)
        assert got["saved_peak_bytes"] == ref[T]
        assert got["param_bytes"] == sum(p.numel() * 4 for p in _mlp_factory().parameters())
    for method, K in (("sltt", None), ("sltt_k", 2)):
        got = analysis.measure_memory_time(_mlp_factory, _x_factory, method, 4, K=K, repeats=1, warmup=0)
        assert got["saved_peak_bytes"] == ref[1], method


def test_compare_methods_interleaves():
    res = analysis.compare_methods(_mlp_factory, _x_factory, 4, (("bptt", None), ("sltt_k", 2)), repeats=2, warmup=0)
    assert [r["method"] for r in res] == ["bptt", "sltt_k"] and all(r["repeats"] == 2 for r in res)
    assert [r["K"] for r in res] == [None, 2]
    with pytest.raises(ValueError, match="methods="):
        analysis.compare_methods(_mlp_factory, _x_factory, 4, ())
