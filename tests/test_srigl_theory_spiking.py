"""The spiking-input variance (binary inputs, no u) and the paired (common random numbers)
simulation of snnlab.studies.srigl.theory.

Independent references: exact enumeration of every mask and every binary input pattern for tiny
n (the Gaussian weights integrated by the fourth moment of independent normal rows, written out
here), and a plain numpy simulation that draws W, the masks (numpy's own choice/permutation) and
the spikes explicitly.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from snnlab.studies.srigl import claims, variance
from snnlab.studies.srigl import crn
from snnlab.studies.srigl import theory as st


def _all_masks(kind: str, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every mask [M, n, n] with its probability [M], enumerated from the definitions."""
    cells = n * n
    if kind == "bernoulli":
        bits = np.array(list(itertools.product([0, 1], repeat=cells)), dtype=np.float64)
        ones = bits.sum(1)
        p = k / n
        return bits.reshape(-1, n, n), p**ones * (1 - p) ** (cells - ones)
    if kind == "per_layer":
        ms = []
        for pos in itertools.combinations(range(cells), k * n):
            m = np.zeros(cells)
            m[list(pos)] = 1
            ms.append(m.reshape(n, n))
        return np.array(ms), np.full(len(ms), 1 / len(ms))
    rows = []
    for pos in itertools.combinations(range(n), k):
        r = np.zeros(n)
        r[list(pos)] = 1
        rows.append(r)
    ms = np.array([np.stack(c) for c in itertools.product(rows, repeat=n)])
    return ms, np.full(len(ms), 1 / len(ms))


def enumerate_spiking(kind: str, n: int, k: int, rate: float, table=None) -> tuple[float, float]:
    """(E Q, Var Q), Q = ||z||^2 / n, z = (W o I) x / sqrt(k r): given (I, x) the rows of W are
    independent, z_i ~ N(0, a_i) with a_i = sum_j I_ij x_j^2 / (k r), so E[Q | I, x] = sum a / n and
    E[Q^2 | I, x] = ((sum a)^2 + 2 sum a^2) / n^2 (E g^4 = 3)."""
    masks, mp = _all_masks(kind, n, k)
    if table is None:
        xs = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.float64)
        on = xs.sum(1)
        xp = rate**on * (1 - rate) ** (n - on)
    else:
        xs = np.asarray(table, dtype=np.float64)
        xp = np.full(len(xs), 1 / len(xs))
        rate = xs.mean()
    e1 = e2 = 0.0
    for x, px in zip(xs, xp):
        a = masks @ (x * x) / (k * rate)  # [M, n]
        e1 += px * float(mp @ (a.sum(1) / n))
        e2 += px * float(mp @ ((a.sum(1) ** 2 + 2 * (a * a).sum(1)) / n**2))
    return e1, e2 - e1 * e1


TINY = [("bernoulli", 2, 1), ("bernoulli", 3, 1), ("bernoulli", 3, 2), ("per_layer", 2, 1), ("per_layer", 3, 1),
        ("per_layer", 3, 2), ("fan_in", 2, 1), ("fan_in", 3, 1), ("fan_in", 3, 2), ("fan_in", 4, 2)]


@pytest.mark.parametrize("kind,n,k", TINY)
@pytest.mark.parametrize("rate", [0.5, 0.2, 1.0])
def test_spiking_closed_form_matches_exact_enumeration(kind, n, k, rate):
    mean, var = enumerate_spiking(kind, n, k, rate)
    assert mean == pytest.approx(1.0, rel=1e-12)
    assert st.spiking_output_norm_variance(kind, n, k, rate) == pytest.approx(var, rel=1e-10)


@pytest.mark.parametrize("kind,n,k", [("bernoulli", 3, 2), ("per_layer", 3, 1), ("fan_in", 4, 2)])
def test_spiking_correlated_inputs_match_enumeration(kind, n, k):
    table = [[1] * n, [0] * n, [1] + [0] * (n - 1), [1, 1] + [0] * (n - 2)]
    _, var = enumerate_spiking(kind, n, k, 0.5, table=table)
    rate, pair = st.gate_moments(torch.tensor(table))
    assert st.spiking_output_norm_variance(kind, n, k, rate, pair_rate=pair) == pytest.approx(var, rel=1e-10)


def test_spiking_dense_all_on_is_chi_square():
    # k = n, r = 1: Q = sum_i g_i^2 / n, Var = 2/n for every mask kind
    for kind in st.KINDS:
        assert st.spiking_output_norm_variance(kind, 8, 8, 1.0) == pytest.approx(2 / 8, rel=1e-12)


def test_crossover_rate_flips_the_fan_in_per_layer_order():
    n, k = 16, 2
    r_star = st.fan_in_per_layer_crossover(n, "spikes")
    assert r_star == pytest.approx(1 / 33)
    for r, fan_lower in ((0.5 * r_star, False), (2 * r_star, True)):
        f = st.spiking_output_norm_variance("fan_in", n, k, r)
        p = st.spiking_output_norm_variance("per_layer", n, k, r)
        assert (f < p) is fan_lower
        assert f < st.spiking_output_norm_variance("bernoulli", n, k, r)
    r_star = st.fan_in_per_layer_crossover(n, "sphere")
    assert st.output_norm_variance("fan_in", n, k, 0.5 * r_star) > st.output_norm_variance("per_layer", n, k, 0.5 * r_star)
    assert st.output_norm_variance("fan_in", n, k, 2 * r_star) < st.output_norm_variance("per_layer", n, k, 2 * r_star)


def _numpy_spiking_draws(kind: str, n: int, k: int, rate: float, samples: int, seed: int) -> np.ndarray:
    """Plain simulation: W, the mask (numpy choice / permutation) and the spikes drawn explicitly."""
    rng = np.random.default_rng(seed)
    out = np.empty(samples)
    for s in range(samples):
        if kind == "bernoulli":
            mask = rng.random((n, n)) < k / n
        elif kind == "per_layer":
            mask = np.zeros(n * n, bool)
            mask[rng.choice(n * n, k * n, replace=False)] = True
            mask = mask.reshape(n, n)
        else:
            mask = np.zeros((n, n), bool)
            for i in range(n):
                mask[i, rng.choice(n, k, replace=False)] = True
        x = (rng.random(n) < rate).astype(float)
        w = rng.standard_normal((n, n))
        z = (w * mask) @ x / np.sqrt(k * rate)
        out[s] = z @ z / n
    return out


@pytest.mark.parametrize("kind", st.KINDS)
def test_spiking_closed_form_against_explicit_numpy_simulation(kind):
    n, k, r, S = 12, 3, 0.4, 6000
    q = _numpy_spiking_draws(kind, n, k, r, S, seed=7)
    var, m = q.var(ddof=1), q.mean()
    se = np.sqrt((np.mean((q - m) ** 4) - var**2) / S)
    assert abs(m - 1) < 4 * q.std() / np.sqrt(S)
    assert abs(var - st.spiking_output_norm_variance(kind, n, k, r)) < 4 * se


@pytest.mark.parametrize("method", ["direct", "reduced", "conditional"])
@pytest.mark.parametrize("inputs", st.INPUTS)
def test_paired_simulation_matches_closed_forms(method, inputs):
    n, k, r = 16, 2, 0.5
    res = crn.simulate_paired(n, k, 3000, seed=3, rate=r, inputs=inputs, method=method, confidence=0.9999)
    fn = st.output_norm_variance if inputs == "sphere" else st.spiking_output_norm_variance
    for kind in st.KINDS:
        one = res.per_kind[kind]
        assert one.mean_ci[0] < 1 < one.mean_ci[1], (kind, one.mean)
        assert one.var_ci[0] < fn(kind, n, k, r) < one.var_ci[1], (kind, one.var)


def test_coupled_masks_are_exact_and_nested():
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(4000, 6, 6, generator=gen, dtype=torch.float64)
    m = crn.coupled_masks(noise, 2)
    assert torch.all(m["fan_in"].sum(-1) == 2) and torch.all(m["per_layer"].sum((-1, -2)) == 12)
    # Bernoulli and fan-in rows are nested prefixes of the same noise order
    b, f = m["bernoulli"], m["fan_in"]
    nb = b.sum(-1, keepdim=True)
    assert torch.all((b & f).sum(-1) == torch.minimum(nb, torch.tensor(2)).squeeze(-1))
    # marginals: E[I_ij] = k/n, same-row pair moment of fan-in k(k-1)/(n(n-1)), per-layer C_nk
    for kind, mk in m.items():
        assert mk.double().mean().item() == pytest.approx(2 / 6, abs=0.01)
    pm = st.pair_moments("fan_in", 6, 2)
    fr = (f[..., 0] & f[..., 1]).double().mean().item()
    assert fr == pytest.approx(pm.same_row, abs=0.01)


def test_variance_difference_se_matches_the_spread_over_repeats():
    # the paired SE must describe the scatter of the difference over independent repeats
    diffs, ses = [], []
    for seed in range(30):
        res = crn.simulate_paired(16, 2, 400, seed=seed, inputs="spikes", method="conditional")
        d, se = res.diff[("bernoulli", "fan_in")]
        diffs.append(d)
        ses.append(se)
    assert np.std(diffs, ddof=1) == pytest.approx(np.mean(ses), rel=0.35)
    truth = st.spiking_output_norm_variance("bernoulli", 16, 2) - st.spiking_output_norm_variance("fan_in", 16, 2)
    assert abs(np.mean(diffs) - truth) < 4 * np.std(diffs, ddof=1) / np.sqrt(30)


def test_common_random_numbers_shrink_the_standard_error():
    res = crn.simulate_paired(32, 2, 1500, seed=1, inputs="sphere", method="direct")
    _, se_paired = res.diff[("bernoulli", "fan_in")]
    a, b = res.per_kind["bernoulli"], res.per_kind["fan_in"]
    assert se_paired < 0.8 * np.hypot(a.var_se, b.var_se)


def test_relative_gap_against_hand_values():
    a = torch.tensor([0.0, 2.0, 4.0, 6.0], dtype=torch.float64)  # var 20/3
    b = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)  # var 5/3
    g, se = crn.relative_gap(a, b)
    assert g == pytest.approx(1 - (5 / 3) / (20 / 3))
    d, _ = crn.variance_difference(a, b)
    assert d == pytest.approx(5.0)
    with pytest.raises(ValueError, match="same length"):
        crn.variance_difference(a, b[:3])


def test_paired_simulation_validation():
    with pytest.raises(ValueError, match="inputs="):
        crn.simulate_paired(8, 2, 10, inputs="currents")
    with pytest.raises(ValueError, match="method="):
        crn.simulate_paired(8, 2, 10, method="x")
    with pytest.raises(ValueError, match="k=9"):
        crn.simulate_paired(8, 9, 10)
    with pytest.raises(ValueError, match="kinds"):
        crn.simulate_paired(8, 2, 10, kinds=())


def test_point_seed_changes_the_numbers():
    a = variance.simulate_points([(8, 2)], 50, seed=0, inputs="spikes")
    b = variance.simulate_points([(8, 2)], 50, seed=1, inputs="spikes")
    assert not np.allclose(a["var"], b["var"])


def _ordering_sims(z_other, z_theory):
    rows = []
    for i, (z, zt) in enumerate(zip(z_other, z_theory)):
        k = [1, 4, 16][i]
        rows.append({"n": 64, "k": k, "rate": 0.5, "kind": "bernoulli", "diff_fan_in": z * 0.01, "diff_fan_in_se": 0.01,
                     "diff_fan_in_theory": zt * 0.01, "gap_fan_in": 0.3 - 0.1 * i, "gap_fan_in_se": 0.01,
                     "gap_fan_in_theory": 0.3 - 0.1 * i})
    return pd.DataFrame(rows)


def test_ordering_claims_fail_on_a_resolved_or_contradicting_point():
    curves = variance.theory_curves([8, 16])
    ok = _ordering_sims([5.0, 3.0, 1.0], [6.0, 5.0, 2.0])  # third unresolved (predicted 2 se), not contradicting
    c = claims.fan_in_lowest(curves, ok)
    assert c.passed and c.kind == "reproduction" and c.ours["resolved"] == "2 of 3"
    assert not claims.fan_in_lowest(curves, _ordering_sims([5.0, 1.5, 1.0], [6.0, 5.0, 2.0])).passed
    assert not claims.fan_in_lowest(curves, _ordering_sims([5.0, 3.0, -2.5], [6.0, 5.0, 2.0])).passed
    assert claims.fan_in_lowest(curves, _ordering_sims([1.0], [2.0])).passed is None
    g = claims.gap_grows_as_k_shrinks(curves, ok)
    assert g.passed and g.kind == "reproduction"
    flat = ok.assign(gap_fan_in=[0.3, 0.3, 0.3])
    assert not claims.gap_grows_as_k_shrinks(curves, flat).passed


def test_spiking_agreement_claim_flips():
    rows = [{"n": 8, "k": k, "rate": 0.5, "kind": kind, "method": m, "z": 0.5, "covered": True}
            for m in ("conditional", "direct") for k in range(1, 8) for kind in st.KINDS]
    ok = pd.DataFrame(rows)
    c = claims.spiking_theory_matches_simulation(ok)
    assert c.passed and c.kind == "finding"
    bad = ok.copy()
    bad.loc[(bad["method"] == "direct") & (bad["k"] == 3), "z"] = 4.5
    assert not claims.spiking_theory_matches_simulation(bad).passed
    low = ok.copy()
    low.loc[(low["method"] == "conditional") & (low["k"] < 4), "covered"] = False  # 9 of 21 rows uncovered
    assert not claims.spiking_theory_matches_simulation(low).passed
    few = pd.DataFrame([r for r in rows if r["k"] < 3 and r["method"] == "direct"])  # 6 rows: coverage not judged
    few.loc[0:2, "covered"] = False
    assert claims.spiking_theory_matches_simulation(few).passed
