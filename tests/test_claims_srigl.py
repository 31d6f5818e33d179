"""srigl claims: each verdict flips when hand-made data cross the threshold; kinds follow issue 10."""

from types import SimpleNamespace

import pandas as pd
import pytest

from snnlab.record import params
from snnlab.studies.srigl import claims, variance

SPEC = params.load("srigl")["claims"]
T9 = params.load("srigl")["reference"]["table9_wrn22_cifar10"]


def _sims(z, covered=None, **cols):
    n = len(z)
    return pd.DataFrame({"z": z, "covered": covered if covered is not None else [True] * n, **cols})


# --- 01 ------------------------------------------------------------------------------------------


def test_agreement_claims_flip_on_one_outlier_or_low_coverage():
    lim = SPEC["theory_matches_simulation"]["max_abs_z"]
    ok = _sims([0.5, -1.0, 1.5, 0.1])
    assert claims.theory_matches_simulation(ok).passed
    assert not claims.theory_matches_simulation(_sims([0.5, -1.0, lim + 0.1, 0.1])).passed
    assert not claims.theory_matches_simulation(_sims([0.5, -1.0, 1.5, 0.1], [True, False, False, True])).passed
    assert claims.theory_matches_simulation(ok).kind == "reproduction"
    rate = _sims([0.1, 0.2], rate=[0.1, 0.5])
    assert claims.rate_theory_matches_simulation(rate).passed
    assert claims.rate_theory_matches_simulation(rate).kind == "finding" and "[0.1, 0.5]" in \
        claims.rate_theory_matches_simulation(rate).statement
    assert not claims.rate_theory_matches_simulation(_sims([0.1, -9.0], rate=[0.1, 0.5])).passed
    lif = _sims([0.1, 0.2, 0.3, 0.4], condition=["a", "a", "b", "b"])
    assert claims.lif_gates_theory_matches_simulation(lif).passed
    lif.loc[3, "z"] = 6.0  # one condition fails: the claim fails
    assert not claims.lif_gates_theory_matches_simulation(lif).passed


def test_mean_is_one_flips_on_a_biased_mean():
    sims = pd.DataFrame({"z_mean": [0.3, -1.2], "mean": [1.001, 0.998]})
    c = claims.mean_is_one(sims)
    assert c.passed and c.kind == "reproduction" and c.paper == 1
    sims.loc[1, "z_mean"] = -4.5
    assert not claims.mean_is_one(sims).passed


def test_erratum_needs_both_halves():
    def sims(z, z_printed):
        return pd.DataFrame({"n": [64, 64, 64], "k": [1, 4, 64], "kind": ["bernoulli"] * 3, "z": z,
                             "z_printed": z_printed, "var_lo": [1.0] * 3, "var_hi": [2.0] * 3, "printed": [0.1] * 3})
    ok = claims.erratum_18_n_over_k(sims([0.2, -1.0, 0.5], [30.0, 12.0, 0.3]))  # k=64 is dense: not tested
    assert ok.passed and ok.kind == "finding"
    assert not claims.erratum_18_n_over_k(sims([0.2, -5.0, 0.5], [30.0, 12.0, 0.3])).passed  # derived rejected
    assert not claims.erratum_18_n_over_k(sims([0.2, -1.0, 0.5], [30.0, 2.0, 0.3])).passed  # printed not rejected


def test_fan_in_lowest_tests_the_paired_simulation():
    # hand-made data that flip the verdict: tests/test_srigl_theory_spiking.py
    curves = variance.theory_curves([16])
    sims = variance.simulate_points([(16, 1), (16, 4)], 1500, seed=0, inputs="spikes")
    c = claims.fan_in_lowest(curves, sims)
    assert c.passed and c.kind == "reproduction" and "paired simulation" in c.test


def test_c_nk_approximation_flips_when_the_approximation_is_worse():
    curves = variance.theory_curves([8, 16])
    c = claims.c_nk_approximation(curves)
    assert c.passed and c.kind == "sanity"
    worse = curves.assign(c_nk_approx=1 - 1.05 * (1 - curves["c_nk_approx"]))  # off by 3% at n = 8
    assert not claims.c_nk_approximation(worse).passed


def test_fan_in_advantage_with_rate_flips_when_rates_are_relabelled():
    lo = variance.theory_curves([16], kinds=("bernoulli", "fan_in"), rate=0.1)
    hi = variance.theory_curves([16], kinds=("bernoulli", "fan_in"), rate=0.5)
    c = claims.fan_in_advantage_shrinks_with_rate(pd.concat([lo, hi]), 16)
    assert c.passed and c.kind == "sanity"
    assert not claims.fan_in_advantage_shrinks_with_rate(pd.concat([lo.assign(rate=0.5), hi.assign(rate=0.1)]), 16).passed


def test_correlated_spikes_flip_when_iid_theory_fits_somewhere():
    sims = pd.DataFrame({"condition": ["shared input"] * 2 + ["independent input"], "k": [4, 64, 4],
                         "z_iid": [12.0, 30.0, 0.1], "var": [0.5, 0.3, 0.1]})
    c = claims.correlated_spikes_break_iid_theory(sims, {"shared input": {"s": 1.3}}, 64)
    assert c.passed and c.kind == "finding" and c.ours["var_dense_k=n"] == 0.3
    sims.loc[0, "z_iid"] = 1.0
    assert not claims.correlated_spikes_break_iid_theory(sims, {"shared input": {"s": 1.3}}, 64).passed


# --- 02 ------------------------------------------------------------------------------------------

SP = [0.5, 0.9, 0.99]


def _run(acc, width=None, fan_std=0.0, itop=(0.1, 0.2), fan_max=2.0):
    hist = [{"itop": itop[0], "fan_in": {"l0": {"std": fan_std, "max": fan_max, "mean": 1.0}}},
            {"itop": itop[1], "fan_in": {"l0": {"std": fan_std, "max": fan_max, "mean": 1.0}}}]
    return SimpleNamespace(acc=acc, width=width or {"l0": 10, "out": 10}, dst_history=hist)


def _runs(acc, **kw):
    """acc: {label: [acc at each of SP]}."""
    return {(lbl, s): _run(a, **kw) for lbl, accs in acc.items() for s, a in zip(SP, accs)}


def test_table9_claims_flip():
    acc = {"RigL": [0.95, 0.94, 0.85], "SRigL w/o ablation": [0.95, 0.94, 0.70], "SRigL w/ ablation": [0.95, 0.93, 0.82]}
    runs = _runs(acc)
    for fn in (claims.no_ablation_degrades, claims.ablation_closes_gap):
        c = fn(runs, SP, T9)
        assert c.passed and c.kind == "reproduction"
    c = claims.srigl_ablation_matches_rigl(runs, SP, T9, 360)
    assert c.passed and c.ours == 1.0 and c.paper == 0.1  # Table 9: 94.5 vs 94.4 at 70%
    worse = _runs({**acc, "SRigL w/ ablation": [0.95, 0.90, 0.72]})  # 4 points below RigL at 90%
    assert not claims.srigl_ablation_matches_rigl(worse, SP, T9, 360).passed
    assert not claims.ablation_closes_gap(worse, SP, T9).passed  # recovers 2 of 15 points
    assert not claims.no_ablation_degrades(_runs({**acc, "SRigL w/o ablation": [0.95, 0.94, 0.815]}), SP, T9).passed
    assert claims.ablation_closes_gap(runs, SP, T9).paper == pytest.approx((82.7 - 76.9) / (84.9 - 76.9), abs=1e-3)


def test_fan_in_width_and_itop_claims():
    n_out = {"l0": 10, "out": 10}
    runs = {("RigL", 0.9): _run(0.9, fan_max=4.0), ("SRigL w/o ablation", 0.99): _run(0.7),
            ("SRigL w/ ablation", 0.99): _run(0.8, width={"l0": 6, "out": 10}), ("dense", 0.0): _run(0.95)}
    assert claims.rigl_fan_in_spread(runs, 0.9).passed and claims.rigl_fan_in_spread(runs, 0.9).kind == "reproduction"
    runs[("RigL", 0.9)] = _run(0.9, fan_max=2.0)
    assert not claims.rigl_fan_in_spread(runs, 0.9).passed
    c = claims.ablation_reduces_width(runs, 0.99, n_out)
    assert c.passed and c.kind == "sanity"
    runs[("SRigL w/ ablation", 0.99)] = _run(0.8)
    assert not claims.ablation_reduces_width(runs, 0.99, n_out).passed
    assert claims.srigl_constant_fan_in(runs).passed and claims.srigl_constant_fan_in(runs).kind == "sanity"
    runs[("SRigL w/o ablation", 0.99)] = _run(0.7, fan_std=0.5)
    assert not claims.srigl_constant_fan_in(runs).passed
    c = claims.itop_grows(runs)
    assert c.passed and c.kind == "sanity" and "random regrowth" in c.note
    runs[("RigL", 0.9)] = _run(0.9, itop=(0.1, 0.1))
    assert not claims.itop_grows(runs).passed


def test_itop_against_random_regrowth_flips():
    runs = {("RigL", 0.9): _run(0.9, itop=(0.1, 0.2)), ("SRigL w/ ablation", 0.9): _run(0.9, itop=(0.1, 0.25))}
    c = claims.itop_below_random_regrowth(runs, _run(0.9, itop=(0.1, 0.4)), 0.9)
    assert c.passed and c.kind == "finding" and c.ours["SET (random regrowth)"] == 0.4
    margin = SPEC["itop_below_random_regrowth"]["margin"]
    assert not claims.itop_below_random_regrowth(runs, _run(0.9, itop=(0.1, 0.25 + margin / 2)), 0.9).passed


def test_gamma_sal_claim_flips_on_the_spread():
    tol = SPEC["gamma_sal_insensitive"]["max_spread_pp"]
    flat = {0.1: _run(0.90), 0.3: _run(0.90 + tol / 200), 0.9: _run(0.89)}
    c = claims.gamma_sal_insensitive(flat, 0.95)
    assert c.passed and c.kind == "reproduction" and c.ours["spread_pp"] == pytest.approx(1 + tol / 2)
    assert not claims.gamma_sal_insensitive({**flat, 0.5: _run(0.90 - tol / 100)}, 0.95).passed
    assert not claims.gamma_sal_insensitive({0.3: _run(0.9)}, 0.95).passed  # one value is no sweep


# --- 03 ------------------------------------------------------------------------------------------


def _row(method, s, acc, tw, iw, ts=None, isp=None, tsnn=None):
    return {"method": method, "sparsity": s, "acc": acc, "train_weights": tw, "inf_weights": iw,
            "train_spikes": tw if ts is None else ts, "inf_spikes": iw if isp is None else isp,
            "train_snn": tw if tsnn is None else tsnn}


def test_flops_claims_flip():
    rows = [_row("dense", 0.0, 95.0, 1, 1), _row("SRigL w/ ablation", 0.5, 94.0, 0.55, 0.5, isp=0.4),
            _row("SRigL w/ ablation", 0.9, 93.5, 0.15, 0.1, isp=0.09), _row("SRigL w/ ablation", 0.99, 80.0, 0.05, 0.01)]
    c = claims.fraction_of_flops(rows, 95.0)
    assert c.passed and c.kind == "reproduction" and c.ours["sparsity"] == 0.9
    assert not claims.fraction_of_flops(rows, 99.0).passed  # no sparse run within 2 points of dense
    assert claims.training_below_dense(rows).passed and claims.training_below_dense(rows).kind == "reproduction"
    assert not claims.training_below_dense(rows + [_row("RigL", 0.5, 94.0, 0.6, 0.5, tsnn=1.02)]).passed
    assert claims.spikes_keep_savings(rows).passed and claims.spikes_keep_savings(rows).kind == "finding"
    assert not claims.spikes_keep_savings(rows + [_row("RigL", 0.9, 93.0, 0.2, 0.1, isp=0.12)]).passed


# --- 04 ------------------------------------------------------------------------------------------


def _bench(times):
    """times: {(threads, sparsity, batch): {method: seconds}} -> a result dict as bench.run_cpu writes it:
    "csr" (CSR addmm) and "csr_mv" (addmv, batch 1) become candidates, the "csr" row their faster one."""
    ms = []
    for (t, s, b), d in times.items():
        d = dict(d)
        cands = {"csr_addmm": d.pop("csr"), "csr_addmv": d.pop("csr_mv", None)}
        cands = {k: v for k, v in cands.items() if v is not None and b == 1 or k == "csr_addmm"}
        d.update(cands, csr=min(cands.values()))
        ms += [{"threads": t, "sparsity": s, "batch": b, "method": m, "median_s": v, "iqr_s": 0.0, "min_s": v}
               for m, v in d.items()]
    threads = sorted({t for t, _, _ in times})
    per = {}
    for t in threads:
        d = times[(t, 0.9, 1)]
        per[str(t)] = {"dense_over_condensed": d["dense"] / d["condensed"],
                       "csr_over_condensed": min(d["csr"], d["csr_mv"]) / d["condensed"],
                       "csr_addmm_over_condensed": d["csr"] / d["condensed"],
                       "csr_addmv_over_condensed": d["csr_mv"] / d["condensed"],
                       "dense_over_condensed_torch": d["dense"] / d["condensed_torch"]}
    return {"measurements": ms, "config": {"threads": threads, "batches": sorted({b for _, _, b in times})},
            "layers": {}, "targets": {"per_threads": per}, "machine": {}}


def _cell(dense, csr, csr_mv, structured, condensed, torch_path):
    return {"dense": dense, "csr": csr, "csr_mv": csr_mv, "structured": structured, "condensed": condensed,
            "condensed_torch": torch_path}


def test_speedup_claims_use_the_target_and_the_strongest_csr_path():
    r = _bench({(1, 0.9, 1): _cell(4.0, 4.0, 2.0, 3.5, 1.0, 2.0), (1, 0.9, 64): _cell(4.0, 5.0, 5.0, 3.0, 2.5, 2.4)})
    d = claims.speedup_vs_dense(r, "this run")
    assert d.id == "speedup_vs_dense_this" and d.kind == "reproduction" and d.passed and d.paper == 3.4
    assert "not the paper's printed number" in d.provenance
    c = claims.speedup_vs_csr(r, "this run")
    assert not c.passed and c.ours["1 thr"]["strongest"] == 2.0  # addmm alone (4x) would pass
    r2 = _bench({(1, 0.9, 1): _cell(3.0, 4.0, 3.0, 3.5, 1.0, 2.0), (1, 0.9, 64): _cell(4.0, 5.0, 5.0, 3.0, 2.5, 2.4)})
    assert not claims.speedup_vs_dense(r2, "committed run").passed and claims.speedup_vs_csr(r2, "committed run").passed
    assert claims.pure_torch_condensed_needs_kernel({"this run": r}, True).passed
    fast_torch = _bench({(1, 0.9, 1): _cell(4.0, 4.0, 2.0, 3.5, 1.0, 1.1), (1, 0.9, 64): _cell(4, 5, 5, 3, 2.5, 2.4)})
    assert not claims.pure_torch_condensed_needs_kernel({"this run": r, "committed run": fast_torch}, True).passed


def test_online_structured_and_batch_claims_flip():
    r = _bench({(1, 0.9, 1): _cell(4.0, 4.0, 2.0, 3.5, 1.0, 2.0), (1, 0.9, 8): _cell(8.0, 9.0, 9.0, 7.0, 3.0, 4.0),
                (1, 0.9, 64): _cell(40.0, 50.0, 50.0, 20.0, 25.0, 30.0)})
    assert claims.condensed_fastest_online(r, "this run").passed
    assert claims.structured_faster_at_large_batch(r, "this run").passed  # 20 < 25 at batch 64
    a = claims.advantage_shrinks_with_batch(r, "this run")
    assert a.passed and a.ours["1 thr, 90%"]["largest_at_batch"] == 1  # 4 > 2.67 > 1.6
    slow = _bench({(1, 0.9, 1): _cell(4.0, 4.0, 2.0, 0.9, 1.0, 2.0), (1, 0.9, 8): _cell(8.0, 9.0, 9.0, 7.0, 1.0, 4.0),
                   (1, 0.9, 64): _cell(40.0, 50.0, 50.0, 30.0, 25.0, 30.0)})
    assert not claims.condensed_fastest_online(slow, "this run").passed  # structured wins at batch 1
    assert not claims.structured_faster_at_large_batch(slow, "this run").passed
    b = claims.advantage_shrinks_with_batch(slow, "this run")  # 4x at batch 1, 8x at batch 8: not largest at 1
    assert not b.passed and b.ours["1 thr, 90%"]["largest_at_batch"] == 8
    assert {c.kind for c in (a, b)} == {"reproduction"}


def test_quick_profile_judges_only_the_committed_timings():
    """A few repeats on a shared machine time its load: at the quick profile this run's timing claims are
    reported without a verdict (pinned as "not run"), the committed run's are judged."""
    r = _bench({(1, 0.9, 1): _cell(4.0, 4.0, 2.0, 3.5, 1.0, 2.0), (1, 0.9, 64): _cell(4.0, 5.0, 5.0, 3.0, 2.5, 2.4)})
    for fn in (claims.speedup_vs_dense, claims.speedup_vs_csr, claims.condensed_fastest_online,
               claims.structured_faster_at_large_batch, claims.advantage_shrinks_with_batch):
        this = fn(r, "this run", "quick")
        assert this.passed is None and this.verdict == "not run" and "quick profile" in this.note and this.ours
        assert fn(r, "committed run", "quick").passed is not None and fn(r, "this run", "paper").passed is not None
    fast_torch = _bench({(1, 0.9, 1): _cell(4.0, 4.0, 2.0, 3.5, 1.0, 1.1), (1, 0.9, 64): _cell(4, 5, 5, 3, 2.5, 2.4)})
    c = claims.pure_torch_condensed_needs_kernel({"this run": fast_torch, "committed run": r}, True, "quick")
    assert c.passed and "committed run" in c.test and "this run" in c.ours  # this run reported, not judged
    assert not claims.pure_torch_condensed_needs_kernel({"this run": fast_torch, "committed run": r}, True).passed
