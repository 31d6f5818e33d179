"""snnlab.sltt_plots: the sltt notebooks' helpers against independent references.

References: the paper's Eq. S11 written case by case (for epsilon), a dense float64 check of Eq. S5
(temporal term = dL/du[t+1] * epsilon[t]), numpy's polyfit and hand-computed means/ratios for the
summaries, and op_count_formula's closed forms. Training is checked for determinism and for
exact reuse of the cache.
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from snnlab import data, train  # noqa: E402
from snnlab.core import models  # noqa: E402
from snnlab.record import params  # noqa: E402
from snnlab.core.surrogate import Rectangle  # noqa: E402
from snnlab.grad import sltt  # noqa: E402
from snnlab.studies.sltt import analysis  # noqa: E402
from snnlab.studies.sltt import plots as sltt_plots  # noqa: E402
from snnlab.studies.sltt import runs as sp  # noqa: E402


@pytest.fixture
def one_thread():
    """Tiny networks train 10x faster on one thread on a 2-core machine; restore the count after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _u_grid(v_th: float) -> torch.Tensor:
    """Membrane values across all cases of Eq. S11, avoiding the window edges by 1e-6."""
    u = torch.linspace(-1.0, 2.5, 3501, dtype=torch.float64) * v_th
    edges = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64) * v_th
    keep = ((u.unsqueeze(1) - edges).abs() > 1e-6).all(1)
    return u[keep]


# --- Eq. S11 and the support of epsilon -----------------------------------------------------------


@pytest.mark.parametrize("tau,v_th", [(1.1, 1.0), (2.0, 1.0), (1.5, 0.7)])
def test_eq_s11_matches_library_epsilon(tau, v_th):
    u = _u_grid(v_th)
    s = (u >= v_th).double()
    ref = sp.eq_s11(u, s, tau, v_th)
    got = sltt.epsilon_diagonal(u, s, tau, v_th, reset="hard", surrogate=Rectangle(v_th))
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    lam = 1 - 1 / tau
    # case by case, the four branches of Eq. S11
    assert torch.allclose(ref[u <= 0.5 * v_th], torch.full_like(ref[u <= 0.5 * v_th], lam))
    assert torch.all(ref[u >= 1.5 * v_th] == 0)
    mid0 = (u > 0.5 * v_th) & (u < v_th)
    assert torch.all((ref[mid0] > 0) & (ref[mid0] < 0.5 * lam))
    mid1 = (u >= v_th) & (u < 1.5 * v_th)
    assert torch.all((ref[mid1] > -1.5 * lam) & (ref[mid1] <= -lam + 1e-12))


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_support_contains_every_epsilon_and_nothing_else(reset):
    tau, v_th = 1.1, 1.0
    u = _u_grid(v_th)
    s = (u >= v_th).double()
    eps = sltt.epsilon_diagonal(u, s, tau, v_th, reset=reset)
    sup = sp.epsilon_support(tau, v_th, reset)
    assert bool(sp.in_support(eps, sup).all())
    lam = sup["lam"]
    assert lam == pytest.approx(1 - 1 / tau)
    outside = torch.tensor([-2 * lam, -0.5 * lam, 0.75 * lam, 1.2 * lam], dtype=torch.float64)
    assert not bool(sp.in_support(outside, sup).any())
    if reset == "soft":  # only two values: lambda outside the window, 0 inside
        assert set(torch.round(eps, decimals=12).tolist()) == {0.0, round(lam, 12)}
        assert not bool(sp.in_support(torch.tensor([0.25 * lam]), sup).any())


def test_eq_s11_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        sp.eq_s11(torch.zeros(3), torch.zeros(4), 1.1)
    with pytest.raises(ValueError, match="tau"):
        sp.eq_s11(torch.zeros(3), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="reset"):
        sp.epsilon_support(1.1, 1.0, "medium")


# --- Lemma 1 helpers on a real (tiny) network -----------------------------------------------------


def _tiny(reset: str = "soft", tau: float = 2.0, seed: int = 0):
    kw = {"v_reset": 0.0} if reset == "hard" else {}
    torch.manual_seed(seed)
    net = models.build("mlp", 4, in_features=10, hidden=(12, 9), neuron="sltt", norm="none", tau=tau, **kw).double()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # weights large enough that every layer spikes
        for lin in (m for m in net.modules() if isinstance(m, torch.nn.Linear)):
            lin.weight.normal_(0.0, 2.0 / lin.in_features**0.5, generator=g)
            lin.bias.uniform_(0.0, 0.5, generator=g)
    x = torch.rand(5, 6, 10, generator=g, dtype=torch.float64) * 4.0
    y = torch.randint(0, 4, (6,), generator=g)
    return net, x, y


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_eq_s5_residual_and_layer_epsilons(reset):
    net, x, y = _tiny(reset)
    gc = analysis.gradient_components(net, x, y, train.ce_loss, keep_tensors=True)
    for layer in gc.tensors["temporal"]:  # not vacuous: every layer spikes and carries a temporal term
        assert any(float(t.abs().max()) > 0 for t in layer)
    assert all(0 < float(torch.stack(s).mean()) < 1 for s in gc.tensors["s"])
    assert sp.eq_s5_residual(net, gc) < 1e-12
    eps = sp.layer_epsilons(net, gc)
    assert [e.numel() for e in eps] == [(5 - 1) * 6 * 12, (5 - 1) * 6 * 9]
    sup = sp.epsilon_support(2.0, 1.0, reset)
    assert all(bool(sp.in_support(e, sup).all()) for e in eps)
    if reset == "hard":  # the library's epsilon equals the paper's closed form on the net's own u, s
        ref = sp.layer_epsilons(net, gc, formula="eq_s11")
        for li in range(2):
            torch.testing.assert_close(eps[li], ref[li], rtol=1e-12, atol=1e-12)
            u, s = gc.tensors["u"][li][3].detach(), gc.tensors["s"][li][3].detach()
            torch.testing.assert_close(ref[li][3 * u.numel():], sp.eq_s11(u, s, 2.0).flatten())
    else:
        with pytest.raises(ValueError, match="eq_s11"):
            sp.layer_epsilons(net, gc, formula="eq_s11")
    with pytest.raises(ValueError, match="keep_tensors"):
        sp.layer_epsilons(net, analysis.gradient_components(net, x, y, train.ce_loss))


def test_temporal_summary_by_hand():
    sp_n = torch.tensor([[3.0, 1.0, 2.0], [1.0, 0.0, 5.0]], dtype=torch.float64)
    tm_n = torch.tensor([[1.0, 1.0, 0.0], [3.0, 0.0, 0.0]], dtype=torch.float64)
    gc = analysis.GradientComponents(["a", "b"], sp_n, tm_n, sp_n + tm_n, torch.tensor([[0.9, 0.5, 1.0], [0.2, 1.0, 1.0]]))
    s = sp.temporal_summary(gc)
    # shares over t < T: [0.25, 0.5] and [0.75, nan]
    assert s["mean_temporal_share"] == pytest.approx((0.25 + 0.5 + 0.75) / 3)
    assert s["max_temporal_share"] == pytest.approx(0.75)
    assert s["temporal_to_total"] == pytest.approx(5.0 / 10.0)
    assert s["min_cosine"] == pytest.approx(0.2)
    assert s["per_layer_share"] == pytest.approx([0.375, 0.75])


def test_weight_cosines_labels_weight_matrices_in_order():
    net, x, y = _tiny()
    cos = sltt.bptt_sltt_cosine(net, x, y, train.ce_loss)
    w = sp.weight_cosines(cos, net)
    assert list(w) == ["W1 (0.1.weight)", "W2 (0.3.weight)", "W3 (1.0.weight)"]
    assert w["W3 (1.0.weight)"] == pytest.approx(cos["1.0.weight"])


# --- training variants ----------------------------------------------------------------------------


def test_variant_and_setup_validation():
    for bad in (dict(method="adam"), dict(method="sltt_k"), dict(method="sltt_k", K=7, T=6),
                dict(method="bptt", K=2), dict(reset="medium"), dict(norm="ln"), dict(T=0), dict(seed=-1)):
        with pytest.raises(ValueError):
            sp.Variant(**bad)
    for bad in (dict(arch="lenet"), dict(hidden=[]), dict(hidden=[0]), dict(tau=1.0), dict(lr=0), dict(lam=2),
                dict(optimizer="rmsprop"), dict(epochs=0), dict(dropout=1.0), dict(device="tpu")):
        with pytest.raises(ValueError):
            sp.Setup(**bad)
    assert sp.Setup(hidden=[8, 4]).hidden == (8, 4)
    assert "SLTT-K (K=2)" in sp.Variant("sltt_k", 4, K=2).label


def test_train_variant_deterministic_and_cached(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("SNNLAB_RESULTS", str(tmp_path))
    tr, te = data.load("digits", "train"), data.load("digits", "test")
    setup = sp.Setup(hidden=(16,), epochs=1)
    v = sp.Variant("sltt_k", 3, K=2, reset="hard", seed=1)
    a = sp.train_variant(v, setup, tr, te)
    ckpt = sp.variant_cache_dir(v, setup, tr) / "last.pt"
    assert ckpt.exists()
    mtime = ckpt.stat().st_mtime_ns
    b = sp.train_variant(v, setup, tr, te)  # loaded from the cache, not retrained
    assert ckpt.stat().st_mtime_ns == mtime
    c = sp.train_variant(v, setup, tr, te, cache=False)  # retrained from scratch: same numbers
    assert a["acc"] == b["acc"] == c["acc"] and a["acc_per_t"] == c["acc_per_t"]
    for (n, p), (_, q) in zip(a["model"].state_dict().items(), c["model"].state_dict().items()):
        assert torch.equal(p, q), n
    assert a["history"] == b["history"]
    # the cache is keyed by the variant: another seed is another directory
    assert sp.variant_cache_dir(sp.Variant("sltt_k", 3, K=2, reset="hard", seed=2), setup, tr) != ckpt.parent
    # build_model gives the run's starting point, hard reset configured
    m0 = sp.build_model(v, setup, tr)
    assert all(n.v_reset == 0.0 for n in models.spiking_neurons(m0))
    assert torch.equal(m0.state_dict()["0.1.weight"], sp.build_model(v, setup, tr).state_dict()["0.1.weight"])


def _fake_runs():
    rows = [("bptt", 2, None, 0, 0.90), ("bptt", 2, None, 1, 0.94), ("sltt", 2, None, 0, 0.93),
            ("sltt", 2, None, 1, 0.95), ("sltt", 4, None, 0, 0.96), ("sltt_k", 4, 2, 0, 0.92),
            ("bptt", 4, None, 0, 0.97)]
    return [{"variant": sp.Variant(m, T, K=k, seed=s), "acc": a} for m, T, k, s, a in rows]


def test_validate_extra():
    sp.validate_extra(dict(hidden=[8], taus=[1.1, 2], lam=0.05, tol=1.0, n_seeds=2, K=2, Ts=[2, 4], arch="mlp"))
    for bad in (dict(hidden=[]), dict(hidden=[8, 0]), dict(taus=[1.0]), dict(taus=[]), dict(lam=-0.1),
                dict(tol=0), dict(n_seeds=0), dict(norm="ln"), dict(norm_arch="lenet"), dict(K=4, Ts=[2, 4]),
                dict(dropout=1.0), dict(optimizer="lbfgs"), dict(dataset="shd")):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=name):
            sp.validate_extra(bad)


def test_per_timestep_curves():
    runs = [{"variant": sp.Variant(m, 4, K=k, seed=s), "acc_per_t": [0.1 * s, 0.2]}
            for m, k in (("bptt", None), ("sltt_k", 2)) for s in (3, 1)]
    c = sp.per_timestep_curves(runs, 4)
    assert c == {"BPTT": [0.1, 0.2], "SLTT-K (K=2)": [0.1, 0.2]}
    assert sp.per_timestep_curves(runs, 4, seed=3)["BPTT"] == pytest.approx([0.3, 0.2])
    with pytest.raises(ValueError, match="T=5"):
        sp.per_timestep_curves(runs, 5)


def test_summarize_and_table_s2_accuracy():
    s = sp.summarize(_fake_runs())
    row = s[(s.method == "bptt") & (s["T"] == 2)].iloc[0]
    assert row.acc_mean == pytest.approx(92.0) and row.n == 2
    assert row.acc_std == pytest.approx(np.std([90.0, 94.0], ddof=1))
    assert s[(s.method == "sltt") & (s["T"] == 4)].iloc[0].acc_std == 0.0
    paper = {"T": [2, 4, 6], "bptt": {"acc": [93.9, 94.29, 94.6]}, "sltt": {"acc": [93.96, 94.17, 94.59]}}
    t = sp.table_s2_accuracy(s, paper, Ts=[2, 4])
    assert t.loc[2, "ours SLTT - BPTT"] == pytest.approx(94.0 - 92.0)
    assert t.loc[4, "ours SLTT-K"] == pytest.approx(92.0)
    assert math.isnan(t.loc[2, "ours SLTT-K"])
    assert t.loc[4, "paper SLTT - BPTT"] == pytest.approx(94.17 - 94.29)
    with pytest.raises(ValueError):
        sp.summarize([])


def test_analysis_batch():
    ds = data.load("digits", "test")
    x, y = sp.analysis_batch(ds, 20, 3, seed=5)
    x2, y2 = sp.analysis_batch(ds, 20, 3, seed=5)
    assert x.shape == (3, 20, 1, 8, 8) and torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(x[0], x[2])  # direct encoding
    with pytest.raises(ValueError, match="n="):
        sp.analysis_batch(ds, len(ds) + 1, 3)


# --- memory / time summaries ----------------------------------------------------------------------


def _rows():
    out = []
    for T in (2, 4, 8):
        out.append({"method": "bptt", "T": T, "K": None, "saved_peak_bytes": (1 + 2 * T) * sp.MIB,
                    "time_median_s": 0.01 * T, "time_iqr_s": 0.001, "rss_peak_delta_bytes": 0, "cuda_peak_bytes": None})
        out.append({"method": "sltt", "T": T, "K": None, "saved_peak_bytes": 2 * sp.MIB,
                    "time_median_s": 0.012 * T, "time_iqr_s": 0.001, "rss_peak_delta_bytes": sp.MIB,
                    "cuda_peak_bytes": None})
        out.append({"method": "sltt_k", "T": T, "K": 2, "saved_peak_bytes": (2 + 0.1 * (T == 8)) * sp.MIB,
                    "time_median_s": 0.004 * T, "time_iqr_s": 0.001, "rss_peak_delta_bytes": 0,
                    "cuda_peak_bytes": None})
    return out


def _rows_both():
    """_rows with the paper's BPTT loop (4 MiB per step, 0.016 s per step) and 1 MiB of parameters per row."""
    out = [{**r, "param_bytes": sp.MIB} for r in _rows()]
    for T in (2, 4, 8):
        out.append({"method": "bptt_paper", "T": T, "K": None, "saved_peak_bytes": 4 * T * sp.MIB, "param_bytes": sp.MIB,
                    "time_median_s": 0.016 * T, "time_iqr_s": 0.001, "rss_peak_delta_bytes": 0, "cuda_peak_bytes": None})
    return out


def test_linear_fit_against_polyfit():
    fit = sp.linear_fit([2, 4, 6, 8], [5, 9, 13, 17])
    assert fit["slope"] == pytest.approx(2) and fit["intercept"] == pytest.approx(1) and fit["r2"] == pytest.approx(1)
    rng = np.random.default_rng(0)
    xs, ys = np.arange(10.0), 3 * np.arange(10.0) + rng.normal(size=10)
    fit = sp.linear_fit(xs, ys)
    slope, icpt = np.polyfit(xs, ys, 1)
    assert fit["slope"] == pytest.approx(slope) and fit["intercept"] == pytest.approx(icpt)
    assert fit["r2"] == pytest.approx(np.corrcoef(xs, ys)[0, 1] ** 2)
    assert math.isnan(sp.linear_fit([1, 2], [3, 3])["r2"])
    with pytest.raises(ValueError):
        sp.linear_fit([1, 1], [2, 3])


def test_memory_time_summary_and_table():
    s = sp.memory_time_summary(_rows(), T_ref=6)
    assert s["Ts"] == [2, 4, 8] and s["T_ref"] in (4, 8)
    assert s["sltt_variation"] == 0.0
    assert s["sltt_k_variation"] == pytest.approx(0.05)
    assert s["bptt_fit"]["slope"] == pytest.approx(2.0) and s["bptt_fit"]["r2"] == pytest.approx(1.0)
    assert s["memory_ratio"] == pytest.approx([5 / 2, 9 / 2, 17 / 2])
    assert s["time_ratio_sltt"] == pytest.approx([1.2] * 3)
    assert s["speedup_sltt_k_at_ref"] == pytest.approx(2.5)
    paper = {"T": [2, 4, 6], "bptt": {"memory_gb": [1.47, 2.19, 3.0], "time_h": [1.81, 3.41, 6.35]},
             "sltt": {"memory_gb": [1.10, 1.09, 1.09], "time_h": [1.80, 3.29, 4.58]}}
    t = sp.table_s2_memory_time(_rows(), paper)
    assert list(t.index) == [2, 4, 6, 8]
    assert t.loc[4, "ours activations BPTT/SLTT"] == pytest.approx(4.5)
    assert math.isnan(t.loc[4, "ours activations BPTT (paper)/SLTT"])  # no rows of the paper's BPTT
    assert t.loc[6, "paper total GPU mem BPTT/SLTT"] == pytest.approx(3.0 / 1.09)
    assert t.loc[6, "paper time SLTT/BPTT"] == pytest.approx(4.58 / 6.35)
    assert math.isnan(t.loc[6, "ours BPTT saved MiB"]) and math.isnan(t.loc[8, "paper BPTT GB"])
    assert t.loc[2, "ours SLTT RSS MiB"] == pytest.approx(1.0) and math.isnan(t.loc[2, "ours SLTT CUDA MiB"])
    with pytest.raises(ValueError):
        sp.memory_time_summary([r for r in _rows() if r["T"] == 2])


def test_memory_summary_models_the_total_beside_activations():
    s = sp.memory_time_summary(_rows_both(), T_ref=4)
    # activations: paper BPTT 4T MiB over SLTT 2 MiB; modelled total adds 3 x 1 MiB of weights, gradients, momentum
    assert s["memory_ratio_paper"] == pytest.approx([4.0, 8.0, 16.0])
    assert s["total_mib"]["sltt"] == pytest.approx([5.0] * 3)
    assert s["memory_ratio_total_paper"] == pytest.approx([11 / 5, 19 / 5, 35 / 5])
    assert s["bptt_paper_fit"]["slope"] == pytest.approx(4.0)
    assert s["time_ratio_sltt_paper_at_ref"] == pytest.approx(0.012 / 0.016)
    assert s["speedup_sltt_k_paper_at_ref"] == pytest.approx(4.0)
    assert all(math.isnan(v) for v in sp.memory_time_summary(_rows())["total_mib"]["sltt"])  # no param_bytes
    t = sp.table_s2_memory_time(_rows_both())
    assert t.loc[8, "ours activations BPTT (paper)/SLTT"] == pytest.approx(16.0)
    assert t.loc[8, "ours modelled total BPTT (paper)/SLTT"] == pytest.approx(35 / 5)
    assert t.loc[8, "ours modelled total BPTT/SLTT"] == pytest.approx((17 + 3) / 5)
    text = sp.describe_memory_time(s, "demo")
    assert "0.75x the time per iteration of the paper's BPTT" in text and "16.0x SLTT's activations" in text
    assert "(modelled total) the ratio is 7.00x" in text


def test_ratio_figure_draws_both_quantities_and_baselines():
    paper = {"T": [2, 4], "bptt": {"memory_gb": [2, 3], "time_h": [1, 2]}, "sltt": {"memory_gb": [1, 1], "time_h": [1, 1.5]}}
    fig = sltt_plots.ratio_figure({"run": _rows_both()}, paper)
    mem, tp, tf = fig.axes[:3]
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in mem.lines}
    assert lines["run: activations"] == pytest.approx([4.0, 8.0, 16.0])
    assert lines["run: modelled total"] == pytest.approx([11 / 5, 19 / 5, 35 / 5])
    assert lines["run: activations, fused BPTT"] == pytest.approx([2.5, 4.5, 8.5])
    assert lines["paper: total GPU memory"] == pytest.approx([2.0, 3.0])
    assert "paper: total GPU" in mem.get_title() and "activations" in mem.get_title()
    tpl = {ln.get_label(): list(ln.get_ydata()) for ln in tp.lines}
    assert tpl["run: SLTT"] == pytest.approx([0.75] * 3) and tpl["paper: SLTT (training time)"] == pytest.approx([1, 0.75])
    tfl = {ln.get_label(): list(ln.get_ydata()) for ln in tf.lines}
    assert tfl["run: SLTT"] == pytest.approx([1.2] * 3) and "paper: SLTT (training time)" not in tfl
    old = sltt_plots.ratio_figure({"old": _rows()})  # no paper-loop rows: only the fused lines
    assert [ln.get_label() for ln in old.axes[0].lines] == ["old: activations, fused BPTT"]


def test_table_s3_rows_run_or_say_why():
    s3 = {"cifar10_resnet18": {"dataset": "cifar10", "network": "ResNet-18", "T": 6, "acc": 94.44, "std": 0.21,
                               "best": 94.59, "run": "03_accuracy", "arch": "preact_resnet18"},
          "dvs_gesture_resnet18": {"dataset": "dvs_gesture", "network": "ResNet-18", "T": 20, "acc": 97.68,
                                   "not_run": "static images only"}}
    summ = sp.summarize([{"variant": sp.Variant("sltt", 6, seed=i), "acc": a} for i, a in enumerate([0.9, 0.8])])
    quick = sp.table_s3(summ, s3, "digits", "mlp")
    assert quick.loc["cifar10_resnet18", "ours mean"] == pytest.approx(85.0)
    assert quick.loc["cifar10_resnet18", "ours best"] == pytest.approx(90.0)
    assert quick.loc["cifar10_resnet18", "ours std"] == pytest.approx(np.std([90, 80], ddof=1))
    assert "quick analogue" in quick.loc["cifar10_resnet18", "status"] and "not the paper's" in \
        quick.loc["cifar10_resnet18", "status"]
    assert quick.loc["dvs_gesture_resnet18", "status"] == "not run: static images only"
    assert math.isnan(quick.loc["dvs_gesture_resnet18", "ours mean"])
    paper = sp.table_s3(summ, s3, "cifar10", "preact_resnet18")
    assert "quick analogue" not in paper.loc["cifar10_resnet18", "status"]
    missing_T = sp.table_s3(sp.summarize([{"variant": sp.Variant("sltt", 4), "acc": 0.9}]), s3, "digits", "mlp")
    assert "T=6" in missing_T.loc["cifar10_resnet18", "status"] and math.isnan(missing_T.loc["cifar10_resnet18", "ours mean"])


def test_setup_official_options_reach_model_and_training(tmp_path):
    ds = data.load("digits", "train")
    base = sp.Setup(hidden=(8,))
    assert base.key() == {k: v for k, v in dataclasses.asdict(base).items()
                          if k not in ("surrogate", "shortcut_from", "augment", "amp", "loss_target")}  # old keys kept
    paper = sp.Setup(hidden=(8,), surrogate="triangle", augment="crop_flip_cutout", amp=True)
    assert paper.key()["surrogate"] == "triangle" and paper.key()["amp"] is True
    net = sp.build_model(sp.Variant("sltt", 2), paper, ds)
    assert all(type(m.surrogate_function).__name__ == "Triangle" for m in models.spiking_neurons(net))
    cfg = sp._train_config(sp.Variant("sltt", 2), paper, None, False, "cifar10")
    assert cfg.augment == "crop_flip_cutout" and cfg.amp is True
    assert cfg.augment_kw == {"mean": list(sp.OFFICIAL_NORMALIZATION["cifar10"][0]),
                              "std": list(sp.OFFICIAL_NORMALIZATION["cifar10"][1])}
    res = sp.Setup(arch="preact_resnet18", width=0.0625, shortcut_from="spikes")
    blocks = [m for m in sp.build_model(sp.Variant("sltt", 2), res, data.load("digits", "train")).modules()
              if hasattr(m, "shortcut_from")]
    assert blocks and all(b.shortcut_from == "spikes" for b in blocks)
    for bad in ({"surrogate": "atan"}, {"shortcut_from": "x"}, {"augment": "flip"}, {"amp": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            sp.Setup(**bad)


def test_memory_time_sweep_rows(one_thread):
    factory = sp.ModelFactory("mlp", 3, in_channels=1, input_size=4, width=0.25)
    rows = sp.memory_time_sweep(factory, sp.RandomDirectInput(2, 1, 4, 3), [1, 3], K=2, repeats=1, progress=False)
    assert [(r["method"], r["T"]) for r in rows] == [("bptt", 1), ("bptt_paper", 1), ("sltt", 1), ("bptt", 3),
                                                     ("bptt_paper", 3), ("sltt", 3), ("sltt_k", 3)]
    x1, y1 = sp.RandomDirectInput(2, 1, 4, 3)(3)
    assert x1.shape == (3, 2, 1, 4, 4) and x1.stride(0) == 0  # an expanded view
    with pytest.raises(ValueError):
        sp.ModelFactory("lenet")


def test_op_count_table_against_appendix_c2_by_hand():
    d, T, K = 16, 6, 2
    t = sp.op_count_table(d, T, K)
    # Appendix C.2, per step and layer: e_s costs d^2 + d, dW d^2, and BPTT's e_u 2d (not at the last step,
    # where there is no temporal term); SLTT drops e_u; SLTT-K is SLTT at K steps
    assert t.loc["BPTT", "matmul (d^2 terms)"] == T * 2 * d * d == 3072
    assert t.loc["BPTT", "elementwise (diagonal)"] == T * d + (T - 1) * 2 * d == 256
    assert (t.loc["SLTT", "matmul (d^2 terms)"], t.loc["SLTT", "elementwise (diagonal)"]) == (T * 2 * d * d, T * d)
    assert (t.loc["SLTT-K (K=2)", "matmul (d^2 terms)"], t.loc["SLTT-K (K=2)", "elementwise (diagonal)"]) == (
        K * 2 * d * d, K * d)
    assert t.loc["BPTT", "per intermediate step"] == 2 * d * d + 3 * d
    assert t.loc["SLTT", "per intermediate step"] == 2 * d * d + d  # the paper's "SLTT saves 2d"
    assert t.loc["SLTT-K (K=2)", "backward steps"] == K
    m = sp.op_count_measured(8, 3, 2)
    assert bool(m["match"].all())


# --- plots ----------------------------------------------------------------------------------------


def test_plots_return_figures():
    net, x, y = _tiny("hard")
    gc = analysis.gradient_components(net, x, y, train.ce_loss, keep_tensors=True)
    eps = torch.cat(sp.layer_epsilons(net, gc))
    figs = [
        sltt_plots.temporal_share_heatmaps({"a": gc, "b": gc}),
        sltt_plots.gradient_cosine_bars({"init": {"W1 (x)": 0.99, "W2 (y)": 1.0}, "trained": {"W1 (x)": 0.98, "W2 (y)": 1.0}}),
        sltt_plots.epsilon_histograms({"soft": eps.abs(), "hard": eps}, tau=2.0),
        sltt_plots.tau_sweep_plot([{"tau": 1.1, "reset": "soft", "mean_temporal_share": 0.01, "cos_all": 1.0},
                           {"tau": 2.0, "reset": "soft", "mean_temporal_share": 0.2, "cos_all": 0.99}]),
        sltt_plots.memory_time_figure(_rows()),
        sltt_plots.ratio_figure({"run": _rows()}, {"T": [2, 4], "bptt": {"memory_gb": [2, 3], "time_h": [1, 2]},
                                          "sltt": {"memory_gb": [1, 1], "time_h": [1, 1.5]}}),
        sltt_plots.accuracy_vs_T(sp.summarize(_fake_runs()), {"T": [2, 4], "bptt": {"acc": [90, 91]}, "sltt": {"acc": [90, 92]}}),
        sltt_plots.accuracy_bars(["soft", "hard"], [97.0, 96.5], [0.2, 0.3], [94.44, 94.34]),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert figs[-1].axes[0].get_ylim()[0] > 80  # zoomed to the bars
    heights = [r.get_height() for r in figs[-1].axes[0].patches]
    assert heights[:2] == [97.0, 96.5] or sorted(heights)[-2:] == [96.5, 97.0]  # ours drawn as given
    assert 94.44 in heights or any(94.44 in ln.get_ydata() for ln in figs[-1].axes[0].lines)  # the paper's


def test_paper_profile_is_the_official_setting():
    """The paper profile of the training notebook passes the official code's options to Setup (the
    triangle surrogate, the spike shortcut, crop + cutout + flip, AMP), and 02 builds the same net."""
    P = params.resolve("sltt", "03_accuracy", "paper", params.notebook_defaults("sltt", "03_accuracy"))
    setup = sp.Setup(arch=P.arch, epochs=P.epochs, lr=P.lr, optimizer=P.optimizer, weight_decay=P.weight_decay,
                     batch_size=P.batch_size, surrogate=P.surrogate, shortcut_from=P.shortcut_from,
                     augment=P.augment, amp=P.amp, device=P.device)
    assert (setup.surrogate, setup.shortcut_from, setup.augment, setup.amp, setup.tau) == (
        "triangle", "spikes", "crop_flip_cutout", True, 1.1)
    assert (P.dataset, P.arch, P.epochs, P.batch_size, P.weight_decay) == ("cifar10", "preact_resnet18", 200, 128, 5e-5)
    M = params.resolve("sltt", "02_memory_and_time", "paper", params.notebook_defaults("sltt", "02_memory_and_time"))
    assert (M.arch, M.surrogate, M.shortcut_from, M.batch_size) == ("preact_resnet18", "triangle", "spikes", 128)
