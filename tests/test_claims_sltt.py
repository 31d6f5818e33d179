"""sltt claims: each verdict flips when hand-made data cross the threshold; kinds follow issue 10."""

import pandas as pd
import pytest
import torch

from snnlab.record import params
from snnlab.studies.sltt import claims, runs as sp

REF = params.load("sltt")["reference"]
S2, S1 = REF["table_s2_cifar10"], REF["table_s1_reset"]
LAM = 1 - 1 / 1.1


def test_eq_s11_is_sanity_and_flips_outside_the_support():
    hard = torch.tensor([LAM, 0.0, 0.3 * LAM, -1.2 * LAM])
    eps = {"soft": torch.tensor([0.0, LAM, LAM]), "hard": hard}
    c = claims.eq_s11(eps, hard.clone(), 1.1)
    assert c.passed and c.kind == "sanity"
    assert not claims.eq_s11(eps, hard + 1e-3, 1.1).passed  # library differs from Eq. S11
    assert not claims.eq_s11({**eps, "soft": torch.tensor([0.0, 0.5 * LAM])}, hard, 1.1).passed  # soft outside {0, lam}


def test_lemma1_recursion_is_sanity(monkeypatch):
    res = {"a": 1e-7, "b": 3e-7}
    monkeypatch.setattr(claims.sp, "eq_s5_residual", lambda net, gc: res[gc])
    c = claims.lemma1_recursion({"a": None, "b": None}, {"a": "a", "b": "b"})
    assert c.passed and c.kind == "sanity" and c.ours == 3e-7
    res["b"] = 1e-3
    assert not claims.lemma1_recursion({"a": None, "b": None}, {"a": "a", "b": "b"}).passed


def test_temporal_little_flips_on_share_or_cosine():
    summary = {"soft, init": {"mean_temporal_share": 0.02}, "hard, trained": {"mean_temporal_share": 0.05}}
    cos = {"soft, init": {"W1": 0.999, "W2": 1.0}, "hard, trained": {"W1": 0.995}}
    c = claims.temporal_little(summary, cos)
    assert c.passed and c.kind == "reproduction"
    assert not claims.temporal_little({**summary, "x": {"mean_temporal_share": 0.2}}, cos).passed
    assert not claims.temporal_little(summary, {**cos, "hard, trained": {"W1": 0.95}}).passed


def test_small_lambda_needed_flips_when_the_share_falls_with_tau():
    rows = [{"tau": t, "reset": r, "mean_temporal_share": s} for r in ("soft", "hard")
            for t, s in zip((1.1, 2.0, 4.0), (0.01, 0.10, 0.30))]
    c = claims.small_lambda_needed(rows)
    assert c.passed and c.kind == "finding" and c.ours["soft"] == [0.01, 0.10, 0.30]
    rows[1]["mean_temporal_share"] = 0.5  # soft, tau = 2.0: above tau = 4.0 by more than the slack
    assert not claims.small_lambda_needed(rows).passed


def _mt_rows(sltt_mib, bptt_mib, sltt_ms=(9, 9, 9), bptt_ms=(10, 10, 10), Ts=(2, 4, 6), fused_mib=None,
             fused_ms=(8, 8, 8)):
    """Rows of both baselines: ``bptt_mib`` / ``bptt_ms`` the paper's BPTT loop, ``fused_*`` the fused one."""
    fused_mib = bptt_mib if fused_mib is None else fused_mib
    rows = []
    for T, s, b, ts, tb, fb, tf in zip(Ts, sltt_mib, bptt_mib, sltt_ms, bptt_ms, fused_mib, fused_ms):
        rows += [{"method": "sltt", "T": T, "saved_peak_bytes": s * sp.MIB, "time_median_s": ts / 1e3},
                 {"method": "bptt_paper", "T": T, "saved_peak_bytes": b * sp.MIB, "time_median_s": tb / 1e3},
                 {"method": "bptt", "T": T, "saved_peak_bytes": fb * sp.MIB, "time_median_s": tf / 1e3},
                 {"method": "sltt_k", "T": T, "saved_peak_bytes": s * sp.MIB, "time_median_s": ts / 2e3}]
    return rows


def test_memory_and_time_claims_flip():
    good = sp.memory_time_summary(_mt_rows((10, 10.2, 10.1), (20, 40, 60)))
    c = claims.memory_constant_in_T(good, S2)
    assert c.passed and c.kind == "reproduction" and c.paper["BPTT total GPU GB"] == [1.47, 2.19, 3.00]
    assert "activations" in c.note and "total GPU memory" in c.note
    assert not claims.memory_constant_in_T(sp.memory_time_summary(_mt_rows((10, 11, 12), (20, 40, 60))), S2).passed
    assert not claims.memory_constant_in_T(sp.memory_time_summary(_mt_rows((10, 10, 10), (20, 60, 62))), S2).passed
    # judged on the paper's BPTT loop: a fused BPTT that does not grow does not rescue or sink it
    assert claims.memory_constant_in_T(sp.memory_time_summary(
        _mt_rows((10, 10, 10), (20, 40, 60), fused_mib=(20, 20, 20))), S2).passed
    t = claims.faster_than_bptt(good, S2, good)
    assert t.passed and t.kind == "reproduction" and t.paper["SLTT/BPTT"] == pytest.approx(4.58 / 6.35)
    assert t.ours["SLTT/BPTT (paper loop) at T=6 (this run)"] == pytest.approx(0.9)
    slow = sp.memory_time_summary(_mt_rows((10, 10, 10), (20, 40, 60), sltt_ms=(11, 11, 11)))
    assert not claims.faster_than_bptt(slow, S2).passed
    # the fused baseline: a finding, judged on its own times (8 ms here: SLTT's 9 ms is slower)
    f = claims.faster_than_fused_bptt(good, S2, good)
    assert f.kind == "finding" and f.passed is False and f.ours["SLTT/BPTT at T=6 (this run)"] == pytest.approx(9 / 8)
    assert claims.faster_than_fused_bptt(sp.memory_time_summary(
        _mt_rows((10, 10, 10), (20, 40, 60), fused_ms=(12, 12, 12))), S2).passed


def test_time_claims_without_paper_baseline_rows_are_not_judged():
    old = [r for r in _mt_rows((10, 10, 10), (20, 40, 60)) if r["method"] != "bptt_paper"]
    s = sp.memory_time_summary(old)
    c = claims.faster_than_bptt(s, S2, s, "quick")
    assert c.passed is None and "not judged" in c.note
    assert not claims.memory_constant_in_T(s, S2).passed  # no paper-baseline fit: cannot hold


def _ops(fc_bptt=8192, el_sltt=320):
    rows = [{"method": "BPTT", "formula matmul": 8192, "flop counter matmul": fc_bptt, "instrumented matmul": 8192,
             "formula elementwise": 704, "instrumented elementwise": 704},
            {"method": "SLTT", "formula matmul": 8192, "flop counter matmul": 8192, "instrumented matmul": [8192],
             "formula elementwise": 320, "instrumented elementwise": el_sltt}]
    return pd.DataFrame(rows).set_index("method")


def test_op_counts_keeps_only_the_measured_half():
    c = claims.op_counts(_ops(), 64, 2)
    assert c.passed and c.kind == "reproduction" and c.paper["saved per intermediate step"] == "2d"
    assert "saved per step" not in c.ours and c.ours["SLTT"]["instrumented matmul"] == 8192
    assert not claims.op_counts(_ops(fc_bptt=8000), 64, 2).passed
    assert not claims.op_counts(_ops(el_sltt=[320, 384]), 64, 2).passed  # layers disagree


def _summary(accs):
    """accs: {(method, T, reset, norm): [acc per seed]} -> runs.summarize's frame."""
    runs = [{"variant": sp.Variant(m, T, K=None, reset=r, norm=n, seed=i), "acc": a}
            for (m, T, r, n), v in accs.items() for i, a in enumerate(v)]
    return sp.summarize(runs)


def test_accuracy_claims_flip():
    s = _summary({("bptt_paper", 2, "soft", "bn"): [0.90, 0.92], ("sltt", 2, "soft", "bn"): [0.91, 0.91],
                  ("bptt_paper", 6, "soft", "bn"): [0.93, 0.93], ("sltt", 6, "soft", "bn"): [0.925, 0.93],
                  ("bptt", 2, "soft", "bn"): [0.93, 0.93], ("bptt", 6, "soft", "bn"): [0.93, 0.94],
                  ("sltt", 6, "hard", "bn"): [0.92, 0.925], ("sltt", 6, "soft", "sws"): [0.90, 0.90]})
    table = sp.table_s2_accuracy(s, S2, [2, 6])
    c = claims.sltt_close_to_bptt(table, 2)
    assert c.passed and c.kind == "reproduction" and c.paper["SLTT - BPTT (pp)"] == {2: 0.06, 6: -0.01}
    assert c.ours["SLTT - BPTT (paper loop) (pp)"] == {2: pytest.approx(0.0), 6: pytest.approx(-0.25)}
    assert c.ours["SLTT - BPTT (fused) (pp)"][2] == pytest.approx(-2.0)
    f = claims.close_to_fused_bptt(table, 2)
    assert f.kind == "finding" and not f.passed  # 2 points below the fused BPTT at T = 2
    far = _summary({("bptt_paper", 2, "soft", "bn"): [0.90], ("sltt", 2, "soft", "bn"): [0.88]})
    assert not claims.sltt_close_to_bptt(sp.table_s2_accuracy(far, S2, [2]), 1).passed
    # judged on the paper's BPTT: close to the fused one alone is not enough, and a missing run fails
    only_fused = _summary({("bptt", 2, "soft", "bn"): [0.91], ("sltt", 2, "soft", "bn"): [0.91]})
    assert not claims.sltt_close_to_bptt(sp.table_s2_accuracy(only_fused, S2, [2]), 1).passed
    assert claims.close_to_fused_bptt(sp.table_s2_accuracy(only_fused, S2, [2]), 1).passed
    h = claims.hard_about_soft(s, 6, 2, S1)
    assert h.passed and h.ours["hard - soft (pp)"] == pytest.approx(-0.5)
    s_far = _summary({("sltt", 6, "soft", "bn"): [0.93], ("sltt", 6, "hard", "bn"): [0.91]})
    assert not claims.hard_about_soft(s_far, 6, 1, S1).passed
    w = claims.sws_alternative(s, 6, 2, "mlp")
    assert not w.passed and w.ours["sWS - BN (pp)"] == pytest.approx(-2.75)  # 90.0 vs 92.75
    assert "VGG-11 (WS)" not in str(w.paper) and "VGG-11" in str(w.paper)
    near = _summary({("sltt", 6, "soft", "bn"): [0.93], ("sltt", 6, "soft", "sws"): [0.925]})
    assert claims.sws_alternative(near, 6, 1, "mlp").passed


def test_faster_than_bptt_quick_profile_judges_the_committed_benchmark():
    this = sp.memory_time_summary(_mt_rows((10, 10, 10), (20, 40, 60), sltt_ms=(11, 11, 11)))  # slower here
    bench = sp.memory_time_summary(_mt_rows((10, 10, 10), (20, 40, 60)))  # faster in the committed run
    c = claims.faster_than_bptt(this, S2, bench, "quick")
    assert c.passed and "committed benchmark" in c.test and "SLTT/BPTT (paper loop) at T=6 (this run)" in c.ours
    assert not claims.faster_than_bptt(this, S2, bench, "paper").passed
    assert claims.faster_than_bptt(this, S2, None, "quick").passed is None
