"""Tests for snnlab.srigl_plots: sweeps, LIF gate recording, summaries and plots of the srigl
notebooks 01 and 04.

References: the paper's r = 1/2 closed forms written out here (independently of
sparsity_theory), z-scores recomputed from the returned columns, the plain-Python LIF recursion
(snnlab.neurons.reference_trace) for the recorded gates, and hand-computed summaries.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from snnlab.core import neurons
from snnlab.studies.srigl import crn, dst_plots
from snnlab.studies.srigl import theory as st
from snnlab.studies.srigl import variance as sp

matplotlib.use("Agg")


def _bern(n, k):  # Eq. (14), corrected: 18 n/k
    return (5 * n - 8 + 18 * n / k) / (n * (n + 2))


def _fan(n, k):  # Eq. (25)
    return _bern(n, k) - 3 * (n - k) / (k * n * (n + 2))


def _printed_bern(n, k):  # Eq. (1) as printed: 18 k/n
    return (5 * n - 8 + 18 * k / n) / (n * (n + 2))


# ----------------------------------------------------------------------------------------------
# validation and grids
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"ns": [1]}, "ns"),
        ({"ns": []}, "ns"),
        ({"fan_ins": [0]}, "fan_ins"),
        ({"ns": [8], "fan_ins": [16]}, "fan_ins"),
        ({"rates": [0.0]}, "rates"),
        ({"rates": [1.5]}, "rates"),
        ({"samples": 1}, "samples"),
        ({"kinds": ["dense"]}, "kinds"),
    ],
)
def test_check_sweep_names_the_bad_parameter(kw, name):
    with pytest.raises(ValueError, match=name):
        sp.check_sweep(**kw)


@pytest.mark.parametrize("kw, name", [({"T": 8}, "T"), ({"batch": 0}, "batch"), ({"preset": "x"}, "preset")])
def test_check_lif_names_the_bad_parameter(kw, name):
    args = {"T": 16, "batch": 2, "preset": "lth", **kw}
    with pytest.raises(ValueError, match=name):
        sp.check_lif(**args)


def test_fan_in_grid_and_point_seed():
    assert sp.fan_in_grid([16, 4], [1, 4, 8]) == [(4, 1), (4, 4), (16, 1), (16, 4), (16, 8)]
    a = sp.point_seed(0, "fan_in", 16, 4, 0.5)
    assert a == sp.point_seed(0, "fan_in", 16, 4, 0.5)
    others = {sp.point_seed(1, "fan_in", 16, 4, 0.5), sp.point_seed(0, "bernoulli", 16, 4, 0.5),
              sp.point_seed(0, "fan_in", 16, 2, 0.5), sp.point_seed(0, "fan_in", 16, 4, 0.25)}
    assert a not in others and len(others) == 4


# ----------------------------------------------------------------------------------------------
# theory and simulation tables
# ----------------------------------------------------------------------------------------------


def test_theory_curves_match_the_papers_formulas():
    c = sp.theory_curves([8, 16])
    assert len(c) == 3 * (8 + 16)
    row = c[(c["n"] == 16) & (c["k"] == 2)].set_index("kind")
    assert row.loc["bernoulli", "theory"] == pytest.approx(_bern(16, 2), rel=1e-12)
    assert row.loc["fan_in", "theory"] == pytest.approx(_fan(16, 2), rel=1e-12)
    assert row.loc["bernoulli", "printed"] == pytest.approx(_printed_bern(16, 2), rel=1e-12)
    assert row.loc["bernoulli", "c_nk"] == pytest.approx((16 - 1 / 2) / (16 - 1 / 16), rel=1e-12)
    assert row.loc["bernoulli", "sparsity"] == pytest.approx(1 - 2 / 16)
    dense = c[c["k"] == c["n"]]
    assert np.allclose(dense["theory"], dense["printed"])  # the erratum vanishes at k = n
    other = sp.theory_curves([8], rate=0.25)
    assert other["printed"].isna().all() and (other["pair_rate"] == 0.0625).all()
    assert sp.theory_curves([8], ks=[1, 3, 99])["k"].unique().tolist() == [1, 3]


def test_simulate_points_columns_and_reproducibility():
    s1 = sp.simulate_points([(8, 1), (8, 4)], 300, seed=5)
    s2 = sp.simulate_points([(8, 4)], 300, seed=5)
    assert len(s1) == 6
    # per-point seeds: the (8, 4) rows do not depend on the rest of the grid
    pd.testing.assert_frame_equal(s1[s1["k"] == 4].reset_index(drop=True), s2.reset_index(drop=True))
    # the theory columns against Appendix B by hand (n = 8): Var_B = (5n - 8 + 18 n/k) / (n (n+2)), printed with
    # 18 k/n, Var_fan-in = Var_B - 3 (n-k) / (k n (n+2))
    th = s1.set_index(["k", "kind"])
    assert th.loc[(4, "bernoulli"), "theory"] == pytest.approx(68 / 80)
    assert th.loc[(4, "bernoulli"), "printed"] == pytest.approx(41 / 80)
    assert th.loc[(4, "fan_in"), "theory"] == pytest.approx(68 / 80 - 12 / 320)
    assert th.loc[(1, "bernoulli"), "theory"] == pytest.approx(176 / 80)
    # z standardises the simulation's error: small against the derivation, large against 18 k/n at k = 1 (var about 2.2 vs 0.43)
    assert s1["z"].abs().max() < 4 and s1["z_mean"].abs().max() < 4
    assert (s1[s1["k"] == 1]["z_printed"].abs() > 3).all()  # 300 draws: about 4 standard errors
    assert (s1["covered"] == ((s1["var_lo"] <= s1["theory"]) & (s1["theory"] <= s1["var_hi"]))).all()
    ref = crn.simulate_paired(8, 4, 300, seed=sp.point_seed(5, "paired|sphere|conditional", 8, 4, 0.5),
                             method="conditional")
    assert s2.set_index("kind").loc["fan_in", "var"] == ref.per_kind["fan_in"].var
    # paired columns: Bernoulli over fan-in, the ratio to Bernoulli is 1 for Bernoulli itself
    b = s2.set_index("kind")
    assert b.loc["bernoulli", "diff_fan_in"] == pytest.approx(b.loc["bernoulli", "var"] - b.loc["fan_in", "var"])
    assert b.loc["bernoulli", "ratio_bernoulli"] == 1.0 and np.isnan(b.loc["fan_in", "diff_fan_in"])


def test_simulation_agrees_with_theory_and_rejects_printed():
    s = sp.simulate_points([(8, 1)], 6000, seed=0, kinds=("bernoulli", "fan_in"))
    assert s["z"].abs().max() < 4
    assert s["z_printed"].abs().min() > 4  # n/k = 8 vs k/n = 1/8: far apart


def test_simulate_points_with_gates():
    g = torch.zeros(50, 6)
    g[:25, :3] = 1
    g[25:, 3:] = 1
    s = sp.simulate_points([(6, 2)], 200, seed=1, gates=g, kinds=("bernoulli",))
    r, rho = st.gate_moments(g)
    assert s["rate"].iloc[0] == pytest.approx(r) and s["pair_rate"].iloc[0] == pytest.approx(rho)
    assert s["theory"].iloc[0] == pytest.approx(st.output_norm_variance("bernoulli", 6, 2, r, rho))
    assert s["iid_theory"].iloc[0] == pytest.approx(st.output_norm_variance("bernoulli", 6, 2, r))
    assert math.isnan(s["printed"].iloc[0])
    with pytest.raises(ValueError, match="columns"):
        sp.simulate_points([(8, 2)], 200, gates=g)


# ----------------------------------------------------------------------------------------------
# LIF gates
# ----------------------------------------------------------------------------------------------


def test_record_lif_gates_matches_the_lif_recursion():
    n, T, B, burn = 5, 12, 3, 2
    gates = sp.record_lif_gates(n, T, B, "lth", mean=0.9, shared_std=0.4, private_std=0.3, neuron_std=0.2,
                                burn_in=burn, seed=7)
    assert gates.shape == ((T - burn) * B, n)
    # rebuild the same input and run the plain-Python recursion
    g = torch.Generator().manual_seed(7)
    c, a, e = torch.randn(n, generator=g), torch.randn(T, B, 1, generator=g), torch.randn(T, B, n, generator=g)
    x = (0.9 + 0.2 * c + 0.4 * a + 0.3 * e).double()
    pr = neurons.PRESETS["lth"]
    spikes, _ = neurons.reference_trace(x, pr.tau, pr.v_threshold, pr.v_reset, pr.decay_input)
    assert torch.equal(gates, spikes[burn:].reshape(-1, n).float())


def test_shared_input_correlates_spikes():
    ind = sp.gate_summary(sp.record_lif_gates(32, 40, 16, mean=0.8, private_std=0.5, seed=0))
    sh = sp.gate_summary(sp.record_lif_gates(32, 40, 16, mean=0.8, shared_std=0.6, private_std=0.3, seed=0))
    assert abs(ind["s"] - 1) < 0.1
    assert sh["s"] > 1.5


def test_record_lif_gates_errors():
    with pytest.raises(ValueError, match="fired"):
        sp.record_lif_gates(4, 10, 2, mean=-5.0, private_std=0.0)
    with pytest.raises(ValueError, match="shared_std"):
        sp.record_lif_gates(4, 10, 2, shared_std=-1.0)
    with pytest.raises(ValueError, match="n="):
        sp.record_lif_gates(1)


def test_gate_summary_by_hand():
    g = torch.tensor([[1.0, 1, 0], [0, 1, 0]])
    info = sp.gate_summary(g)
    assert info["rate"] == pytest.approx(0.5)
    # pairs j != j': row 1 has 1*1 twice (ordered), row 2 none -> 2 / (2 * 3 * 2)
    assert info["pair_rate"] == pytest.approx(2 / 12)
    assert info["s"] == pytest.approx((2 / 12) / 0.25)
    assert (info["rate_min"], info["rate_max"], info["patterns"], info["n"]) == (0.0, 1.0, 2, 3)


# ----------------------------------------------------------------------------------------------
# summaries
# ----------------------------------------------------------------------------------------------


def test_theory_table_values():
    lines = sp.theory_table([16], [1, 4]).splitlines()
    assert len(lines) == 3
    first = lines[1].split()
    assert first[:3] == ["16", "1", "0.9375"]
    assert float(first[3]) == pytest.approx(_bern(16, 1), abs=1e-6)
    assert float(first[5]) == pytest.approx(_fan(16, 1), abs=1e-6)
    assert float(first[7]) == pytest.approx(_printed_bern(16, 1), abs=1e-6)


def test_agreement_and_erratum_summary_by_hand():
    df = pd.DataFrame({"n": [16, 16, 64], "k": [1, 8, 4], "kind": ["bernoulli"] * 3, "z": [1.0, -3.0, 0.5],
                       "z_printed": [9.0, 2.0, -12.0], "covered": [True, False, True],
                       "var_lo": [1.0, 0.2, 0.1], "var_hi": [2.0, 0.4, 0.3], "printed": [0.5, 0.3, 0.05]})
    a = sp.agreement(df)
    assert a == {"points": 3, "max_abs_z": 3.0, "median_abs_z": 1.0, "ci95_coverage": 0.667}
    e = sp.erratum_summary(df, max_density=1 / 16)
    assert e["max_abs_z_derived_18n_over_k"] == 3.0
    assert e["sparse_points"] == 2 and e["min_abs_z_printed_18k_over_n_sparse"] == 9.0
    assert e["ci95_covering_printed"] == pytest.approx(1 / 3, abs=1e-3)


def test_ordering_summary():
    o = sp.ordering_summary(sp.theory_curves([8, 16]))
    assert o["worst_ratio"] < 1 and o["monotone"]
    adv = 1 - _fan(8, 1) / _bern(8, 1)
    assert o["advantage_k1"][8] == pytest.approx(adv, abs=1e-4)
    assert o["advantage_half"][16] == pytest.approx(1 - _fan(16, 8) / _bern(16, 8), abs=1e-4)
    # without the per-layer kind (the rate sweep) it still works
    c = sp.theory_curves([8], kinds=("bernoulli", "fan_in"), rate=0.25)
    assert sp.ordering_summary(c)["worst_ratio"] < 1


# ----------------------------------------------------------------------------------------------
# plots return figures
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    curves = sp.theory_curves([8, 16])
    sims = sp.simulate_points(sp.fan_in_grid([8, 16], [1, 4]), 200, seed=0)
    return curves, sims


def test_variance_plots(small):
    curves, sims = small
    assert len(sp.variance_vs_sparsity(curves, sims).axes) == 4
    fig = sp.mean_check(sims)
    assert len(fig.axes) == 2  # the left panel shows every simulated mean, the right one its z
    shown = np.concatenate([c[0].get_ydata() for c in fig.axes[0].containers])  # the errorbars' data lines
    assert np.allclose(np.sort(np.asarray(shown, float)), np.sort(sims["mean"].to_numpy(float)))
    zs = np.concatenate([ln.get_ydata() for ln in fig.axes[1].lines if ln.get_linestyle() == "None"])
    assert np.allclose(np.sort(np.asarray(zs, float)), np.sort(sims["z_mean"].to_numpy(float)))
    assert len(sp.erratum_figure(curves, sims).axes) == 6
    fig = sp.c_nk_figure([8, 16])
    exact, approx = fig.axes[0].lines[0], fig.axes[0].lines[1]  # n = 8: 1 - C = (n-k)/(k(n^2-1)), approx (n-k)/(n^2 k)
    assert exact.get_xdata()[0] == pytest.approx(7 / 8) and exact.get_ydata()[0] == pytest.approx(7 / 63)
    assert approx.get_ydata()[0] == pytest.approx(7 / 64)
    rc = pd.concat([sp.theory_curves([8], kinds=("bernoulli", "fan_in"), rate=r) for r in (0.25, 0.5)])
    rs = pd.concat([sp.simulate_points([(8, 2)], 100, kinds=("bernoulli", "fan_in"), rate=r) for r in (0.25, 0.5)])
    assert isinstance(sp.rate_figure(rc, rs), Figure)
    gs = {"a": sp.record_lif_gates(8, 20, 4, seed=0)}
    ls = sp.simulate_points([(8, 2)], 100, gates=gs["a"]).assign(condition="a")
    assert len(sp.lif_gates_figure(gs, ls).axes) == 2
    assert len(sp.variance_explorer(8, 2, 200).axes) == 2
    with pytest.raises(ValueError, match="k="):
        sp.variance_explorer(8, 9, 200)


def _bench_result() -> dict:
    times = {(t, 0.9, b): {"dense": 300 * b / t, "csr": 200 * b / t, "structured": 250 * b / t, "condensed": 60 * b / t}
             for t in (1, 2) for b in (1, 8)}
    meas = [{"threads": t, "sparsity": s, "batch": b, "method": m, "median_s": v * 1e-6, "iqr_s": 1e-6,
             "min_s": v * 1e-6, "n": 2, "max_abs_err": 0.0} for (t, s, b), ms in times.items() for m, v in ms.items()]
    return {"config": {"threads": [1, 2], "sparsities": [0.9], "batches": [1, 8]}, "measurements": meas}


def test_benchmark_plots():
    res = _bench_result()
    assert len(sp.benchmark_grid(res).axes) == 2
    assert isinstance(sp.benchmark_panel(res, 1, 0.9), Figure)
    with pytest.raises(ValueError, match="threads"):
        sp.benchmark_panel(res, 4, 0.9)
    fig = sp.speedup_figure({"a": res, "b": res}, 0.9, targets={"dense": 3.4})
    dense_panel, csr_panel = fig.axes
    lines = [ln for ln in dense_panel.lines if ln.get_marker() == "o"]
    assert len(lines) == 4 and all(np.allclose(ln.get_ydata(), 300 / 60) for ln in lines)  # t_dense / t_condensed
    assert all(np.allclose(ln.get_ydata(), 200 / 60) for ln in csr_panel.lines if ln.get_marker() == "o")
    star = [ln for ln in dense_panel.lines if ln.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_ydata()) == [3.4] and not any(ln.get_marker() == "*" for ln in csr_panel.lines)
    dev = {**res, "machine": {"device_name": "cpu"},
           "measurements": [{**m, "threads": None} for m in res["measurements"] if m["threads"] == 1]}
    assert len(sp.device_figure(dev).axes) == 2


def test_gamma_sal_and_min_salient_plots_show_their_data():

    fig = dst_plots.plot_gamma_sal({0.5: 91.0, 0.1: 90.0, 0.9: 92.5}, {"SRigL w/o ablation": 88.0, "RigL": 90.5}, 0.95)
    ax = fig.axes[0]
    line = ax.lines[0]
    assert list(line.get_xdata()) == [0.1, 0.5, 0.9] and list(line.get_ydata()) == [90.0, 91.0, 92.5]
    assert sorted(tuple(ln.get_ydata())[0] for ln in ax.lines[1:]) == [88.0, 90.5]
    table = pd.DataFrame({"layer": ["L1 a", "L2 b"], "ablated": [True, False], "K/n_out": [3, 41],
                          "gamma=0.1": [1, 4], "gamma=0.9": [3, 37]}).set_index("layer")
    fig = dst_plots.plot_min_salient(table)
    ax = fig.axes[0]
    assert ax.images[0].get_array().tolist() == [[1, 3], [4, 37]]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["1", "3", "4", "37"])
    assert "never ablated" in ax.get_yticklabels()[1].get_text()
