r"""Sweeps, tables and plots for the ``srigl`` notebooks 01 (output-norm variance) and 04 (condensed
benchmark); the mathematics lives in :mod:`snnlab.sparsity_theory`, the timing in
:mod:`snnlab.condensed_bench`.

**Output-norm variance** (Lasby et al. 2024, Appendices A-B; notation of
:mod:`snnlab.sparsity_theory`): a layer of width n with mean fan-in k (sparsity 1 - k/n), gates
ξ ∈ {0,1}^n with rate r = E[ξ_j] and pair rate ρ = E[ξ_j ξ_j'] (j ≠ j'), output
z = (k r)^{-1/2} (W ∘ I)(ξ ∘ u), E‖z‖² = 1.

* :func:`fan_in_grid` ``(ns, fan_ins) -> [(n, k)]``, :func:`check_sweep` (parameter validation);
* :func:`theory_curves` -> DataFrame of the closed forms on every integer k (one row per n, k,
  kind): ``theory`` (the corrected 18 n/k formulas, any r, ρ), ``printed`` (Appendix A's 18 k/n,
  only at r = 1/2 with iid gates), ``c_nk``, ``c_nk_approx``;
* :func:`simulate_points` -> DataFrame of Monte Carlo estimates with their 95% intervals and the
  z-scores ``z = (var_sim - theory) / se`` against each formula, all mask kinds from the same
  draws (common random numbers), with the paired differences to constant fan-in and their SEs;
  ``inputs="sphere"`` is the paper's gated continuous layer (ξ ∘ u), ``inputs="spikes"`` binary
  spike inputs with no u; :func:`snnlab.studies.srigl.ordering.simulated_ordering` reads the ordering off it;
* :func:`record_lif_gates` -> spikes ``[S, n]`` of a layer of LIF neurons (spikingjelly's LIFNode
  through :func:`snnlab.neurons.lif`) driven by Gaussian currents with a shared (correlating)
  component, used as the gates ξ of a gated continuous layer (u stays continuous;
  :func:`gate_summary` gives r, ρ and s = ρ/r²);
* :func:`theory_table` -> the deterministic closed-form table the notebook prints (nbval-checked);
* :func:`agreement`, :func:`erratum_summary`, :func:`ordering_summary` -> the numbers behind the
  notebook's claims (CI coverage and z-scores; the z against 18 n/k and 18 k/n; the fan-in ordering);
* :func:`check_sweep`, :func:`check_lif` validate the notebook's parameters before any work.

Plots, each returning a ``matplotlib`` Figure: :func:`variance_vs_sparsity` (Fig. 1b analogue),
:func:`mean_check`, :func:`erratum_figure`, :func:`c_nk_figure`, :func:`rate_figure` and
:func:`lif_gates_figure` (gated continuous layer), ``ordering.spiking_figure`` (spiking inputs),
:func:`variance_explorer` (the widget's function); for the benchmark
:func:`benchmark_grid` (Figs. 18-20 analogue), :func:`benchmark_panel` (the widget's function),
:func:`speedup_figure`, :func:`device_figure` (Fig. 21 analogue).
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from ... import checks
from ...core import neurons
from ...core.neurons import PRESETS
from ...record.plotting import figure
from . import crn
from . import theory as st
from .bench import frame, speedups

__all__ = [
    "KIND_LABELS",
    "KIND_COLORS",
    "METHOD_STYLE",
    "check_sweep",
    "fan_in_grid",
    "point_seed",
    "theory_curves",
    "simulate_points",
    "record_lif_gates",
    "check_lif",
    "gate_summary",
    "theory_table",
    "agreement",
    "erratum_summary",
    "ordering_summary",
    "variance_vs_sparsity",
    "mean_check",
    "erratum_figure",
    "c_nk_figure",
    "rate_figure",
    "lif_gates_figure",
    "variance_explorer",
    "benchmark_grid",
    "benchmark_panel",
    "speedup_figure",
    "device_figure",
]

KIND_LABELS = {"bernoulli": "Bernoulli", "per_layer": "constant per-layer", "fan_in": "constant fan-in"}
KIND_COLORS = {"bernoulli": "#0173b2", "per_layer": "#de8f05", "fan_in": "#029e73"}
KIND_MARKERS = {"bernoulli": "o", "per_layer": "s", "fan_in": "^"}
#: method -> (label, colour, marker) for the benchmark plots
METHOD_STYLE = {
    "dense": ("dense (fastest path)", "#555555", "o"),
    "dense_linear": ("dense nn.Linear (paper's baseline)", "#555555", "x"),
    "csr": ("CSR (unstructured, fastest path)", "#d55e00", "s"),
    "structured": ("structured (ablated rows removed, fastest path)", "#cc78bc", "D"),
    "condensed": ("condensed (native kernel)", "#029e73", "^"),
    "condensed_int64": ("condensed, int64 indices", "#56b4e9", "v"),
    "condensed_torch": ("condensed, pure torch ops", "#0173b2", "P"),
}
DEFAULT_METHODS = ("dense", "dense_linear", "csr", "structured", "condensed", "condensed_torch")



def _log_y(ax) -> None:
    """Log y axis labelled with plain numbers (0.02, 0.1, 1) instead of 10^x."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))


def _is_real(x: Any) -> bool:
    return checks.is_real(x) and math.isfinite(float(x))


# ----------------------------------------------------------------------------------------------
# sweeps
# ----------------------------------------------------------------------------------------------


def check_sweep(
    ns: Sequence[int] | None = None,
    fan_ins: Sequence[int] | None = None,
    rates: Sequence[float] | None = None,
    samples: int | None = None,
    kinds: Sequence[str] | None = None,
) -> None:
    """Raise ValueError naming the first bad argument: ``ns`` integers >= 2, ``fan_ins`` integers
    >= 1 (each used where k <= n; at least one must fit the smallest n), ``rates`` in (0, 1],
    ``samples`` integer >= 2, ``kinds`` from :data:`snnlab.sparsity_theory.KINDS`."""
    if ns is not None and (not isinstance(ns, (list, tuple)) or not ns or not all(checks.is_int(n) and n >= 2 for n in ns)):
        raise ValueError(f"ns={ns!r} is invalid; allowed values: a non-empty list of integers >= 2")
    if fan_ins is not None:
        if not isinstance(fan_ins, (list, tuple)) or not fan_ins or not all(checks.is_int(k) and k >= 1 for k in fan_ins):
            raise ValueError(f"fan_ins={fan_ins!r} is invalid; allowed values: a non-empty list of integers >= 1")
        if ns is not None and min(fan_ins) > min(ns):
            raise ValueError(f"fan_ins={fan_ins!r} has no k <= min(ns)={min(ns)}; allowed: fan-ins 1 <= k <= n")
    if rates is not None and (not isinstance(rates, (list, tuple)) or not rates
                              or not all(_is_real(r) and 0 < r <= 1 for r in rates)):
        raise ValueError(f"rates={rates!r} is invalid; allowed values: a non-empty list of numbers in (0, 1]")
    if samples is not None and (not checks.is_int(samples) or samples < 2):
        raise ValueError(f"samples={samples!r} is invalid; allowed values: integers >= 2")
    if kinds is not None:
        bad = [k for k in kinds if k not in st.KINDS] if isinstance(kinds, (list, tuple)) and kinds else [kinds]
        if bad:
            raise ValueError(f"kinds={kinds!r} is invalid; allowed values: non-empty subsets of {list(st.KINDS)}")


def fan_in_grid(ns: Sequence[int], fan_ins: Sequence[int]) -> list[tuple[int, int]]:
    """The (n, k) pairs with k in ``fan_ins`` and k <= n, sorted by n then k."""
    check_sweep(ns=ns, fan_ins=fan_ins)
    return sorted({(n, k) for n in ns for k in fan_ins if k <= n})


def point_seed(seed: int, kind: str, n: int, k: float, rate: float | str) -> int:
    """A seed that depends only on ``seed`` and the point (not on its position in a sweep), so
    that adding a point does not change the numbers of the others. It fits in 32 bits: torch's CPU
    generator keeps only the low 32 bits of a seed (the former ``seed * 2**32 + crc`` made every
    ``seed`` give the same numbers)."""
    return zlib.crc32(f"{int(seed)}|{kind}|{n}|{k}|{rate}".encode())


def _theory_fn(inputs: str):
    if inputs not in st.INPUTS:
        raise ValueError(f"inputs={inputs!r} is unknown; allowed values: {list(st.INPUTS)}")
    return st.output_norm_variance if inputs == "sphere" else st.spiking_output_norm_variance


def theory_curves(
    ns: Sequence[int],
    kinds: Sequence[str] = st.KINDS,
    rate: float = 0.5,
    pair_rate: float | None = None,
    ks: Sequence[int] | None = None,
    inputs: str = "sphere",
):
    """Closed forms on a grid: for each n, every integer k = 1..n (or the given ``ks`` <= n).

    ``inputs="sphere"``: the paper's gated continuous layer (:func:`output_norm_variance`);
    ``inputs="spikes"``: binary spike inputs, no u (:func:`spiking_output_norm_variance`).
    Returns a pandas DataFrame with one row per (n, k, kind) and columns n, k, sparsity (1 - k/n),
    kind, inputs, rate, pair_rate (ρ; r² for iid gates), theory (the closed form at r, ρ),
    printed (Appendix A's 18 k/n formula; NaN unless sphere inputs at r = 1/2 with iid gates),
    c_nk, c_nk_approx.
    """
    check_sweep(ns=ns, kinds=list(kinds))
    fn = _theory_fn(inputs)
    rows = []
    for n in ns:
        kk = range(1, n + 1) if ks is None else [k for k in ks if 1 <= k <= n]
        for k in kk:
            cnk, cap = st.c_nk(n, k), st.c_nk_approx(n, k)
            for kind in kinds:
                th = fn(kind, n, k, rate, pair_rate)
                iid_half = inputs == "sphere" and rate == 0.5 and (pair_rate is None or pair_rate == 0.25)
                pr = st.output_norm_variance_as_printed(kind, n, k) if iid_half else float("nan")
                rows.append({"n": n, "k": k, "sparsity": 1 - k / n, "kind": kind, "inputs": inputs, "rate": float(rate),
                             "pair_rate": float(rate * rate if pair_rate is None else pair_rate),
                             "theory": th, "printed": pr, "c_nk": cnk, "c_nk_approx": cap})
    return pd.DataFrame(rows)


def simulate_points(
    points: Sequence[tuple[int, int]],
    samples: int,
    seed: int = 0,
    kinds: Sequence[str] = st.KINDS,
    rate: float = 0.5,
    gates: torch.Tensor | None = None,
    method: str = "conditional",
    confidence: float = 0.95,
    inputs: str = "sphere",
):
    """Monte Carlo (:func:`snnlab.studies.srigl.crn.simulate_paired`) at every (n, k) of
    ``points``, all ``kinds`` from the same draws (common random numbers: one mask noise, one
    input vector, one W or g); each point has its own seed (:func:`point_seed`).

    ``method``: ``"conditional"`` (default; masks, gates/spikes and u drawn, W integrated out
    exactly given them), ``"direct"`` (W drawn) or ``"reduced"`` (g of Prop. B.2 drawn).
    ``inputs``: ``"sphere"`` (the paper's gated continuous layer ξ ∘ u) or ``"spikes"`` (binary
    inputs x, no u). ``gates`` [S, n] (e.g. :func:`record_lif_gates`): ξ (or x) drawn from its rows;
    then every n must equal its width, ``rate`` is ignored, and the theory uses the empirical
    (r, ρ) of :func:`snnlab.studies.srigl.theory.gate_moments`.

    Returns a pandas DataFrame, one row per (n, k, kind): n, k, sparsity, kind, inputs, method,
    rate, pair_rate, samples, mean, mean_lo, mean_hi, mean_se, var, var_lo, var_hi, var_se,
    theory (r, ρ), iid_theory (r with ρ = r²), printed (18 k/n; NaN unless sphere at r = 1/2 iid),
    the z-scores z_mean = (mean - 1)/mean_se, z = (var - theory)/var_se, z_iid, z_printed (NaN
    where se = 0: e.g. fan-in with every input on, which the conditional method computes exactly),
    covered = theory inside [var_lo, var_hi] (or equal to the estimate when se = 0); and the paired comparisons (NaN where undefined):
    diff_fan_in = Var_kind - Var_fan-in with its paired SE diff_fan_in_se and theory
    diff_fan_in_theory; gap_fan_in = 1 - Var_fan-in/Var_kind (+ _se, _theory); ratio_bernoulli =
    Var_kind/Var_Bernoulli (+ _se, paired).
    """
    check_sweep(samples=samples, kinds=list(kinds))
    fn = _theory_fn(inputs)
    if gates is not None:
        r, rho = st.gate_moments(gates)
        rate_key: float | str = f"gates{r:.6f}|{rho:.6f}"
    else:
        if not _is_real(rate) or not 0 < rate <= 1:
            raise ValueError(f"rate={rate!r} is out of range; allowed values: 0 < rate <= 1")
        r, rho = float(rate), float(rate) ** 2
        rate_key = r
    iid_half = gates is None and r == 0.5 and inputs == "sphere"
    nan = float("nan")
    rows = []
    for n, k in points:
        res = crn.simulate_paired(n, k, samples, seed=point_seed(seed, f"paired|{inputs}|{method}", n, k, rate_key),
                                 rate=r if gates is None else 0.5, inputs=inputs, gates=gates, kinds=kinds,
                                 method=method, confidence=confidence)
        th = {kind: fn(kind, n, k, r, rho) for kind in kinds}
        for kind in kinds:
            one = res.per_kind[kind]
            th_iid = fn(kind, n, k, r)
            pr = st.output_norm_variance_as_printed(kind, n, k) if iid_half else nan
            se = one.var_se if one.var_se > 0 else nan
            d, d_se = res.diff.get((kind, "fan_in"), (nan, nan))
            g, g_se = res.gap.get((kind, "fan_in"), (nan, nan))
            rb, rb_se = (1.0, 0.0) if kind == "bernoulli" else res.gap.get(("bernoulli", kind), (nan, nan))
            has_f = "fan_in" in kinds and kind != "fan_in"
            rows.append({
                "n": n, "k": k, "sparsity": 1 - k / n, "kind": kind, "inputs": inputs, "method": method,
                "rate": one.rate, "pair_rate": one.pair_rate, "samples": samples, "mean": one.mean,
                "mean_lo": one.mean_ci[0], "mean_hi": one.mean_ci[1], "mean_se": one.mean_se, "var": one.var,
                "var_lo": one.var_ci[0], "var_hi": one.var_ci[1], "var_se": one.var_se, "theory": th[kind],
                "iid_theory": th_iid, "printed": pr,
                "z_mean": (one.mean - 1.0) / one.mean_se if one.mean_se > 0 else nan,
                "z": (one.var - th[kind]) / se, "z_iid": (one.var - th_iid) / se, "z_printed": (one.var - pr) / se,
                "covered": bool(one.var_ci[0] <= th[kind] <= one.var_ci[1]
                                or (one.var_se == 0 and math.isclose(one.var, th[kind], rel_tol=1e-9, abs_tol=1e-12))),
                "diff_fan_in": d, "diff_fan_in_se": d_se,
                "diff_fan_in_theory": th[kind] - th["fan_in"] if has_f else nan,
                "gap_fan_in": g, "gap_fan_in_se": g_se,
                "gap_fan_in_theory": 1 - th["fan_in"] / th[kind] if has_f else nan,
                "ratio_bernoulli": rb if kind == "bernoulli" else 1 - rb, "ratio_bernoulli_se": rb_se,
            })
    return pd.DataFrame(rows)


def record_lif_gates(
    n: int = 64,
    T: int = 64,
    batch: int = 32,
    preset: str = "lth",
    mean: float = 0.8,
    shared_std: float = 0.0,
    private_std: float = 0.5,
    neuron_std: float = 0.0,
    burn_in: int = 8,
    seed: int = 0,
) -> torch.Tensor:
    """Spikes of n LIF neurons (``snnlab.neurons.lif(preset)``, multi-step) as gate patterns.

    Input current, shape [T, batch, n]::

        x[t, b, j] = mean + neuron_std · c_j + shared_std · a[t, b] + private_std · e[t, b, j]

    with c, a, e iid N(0, 1): ``shared_std`` > 0 drives all neurons together (positively
    correlated spikes, ρ > r²), ``neuron_std`` > 0 gives each neuron its own bias (heterogeneous
    rates). Returns float32 0/1 spikes [(T - burn_in) · batch, n]: each (step, sample) after the
    first ``burn_in`` steps is one gate vector ξ. Raises ValueError if no neuron ever fires.
    """
    if not checks.is_int(n) or n < 2:
        raise ValueError(f"n={n!r} is invalid; allowed values: integers >= 2")
    check_lif(T, batch, preset, burn_in)
    for name, v in (("shared_std", shared_std), ("private_std", private_std), ("neuron_std", neuron_std)):
        if not _is_real(v) or v < 0:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: numbers >= 0")
    if not _is_real(mean):
        raise ValueError(f"mean={mean!r} is invalid; allowed values: finite numbers")
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, generator=g)
    a = torch.randn(T, batch, 1, generator=g)
    e = torch.randn(T, batch, n, generator=g)
    x = mean + neuron_std * c + shared_std * a + private_std * e
    node = neurons.lif(preset)
    with torch.no_grad():
        s = node(x)
    gates = s[burn_in:].reshape(-1, n).to(torch.float32)
    if not torch.any(gates != 0):
        raise ValueError(f"no LIF neuron fired (mean={mean}, stds {shared_std}/{private_std}/{neuron_std}); "
                         "raise mean or the input noise")
    return gates


def check_lif(T: int, batch: int, preset: str = "lth", burn_in: int = 8) -> None:
    """Validate the settings of :func:`record_lif_gates` before any work (ValueError naming the
    parameter): ``T`` > ``burn_in`` >= 0, ``batch`` >= 1, ``preset`` in snnlab.neurons.PRESETS."""
    for name, v, lo in (("T", T, 1), ("batch", batch, 1), ("burn_in", burn_in, 0)):
        if not checks.is_int(v) or v < lo:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: integers >= {lo}")
    if burn_in >= T:
        raise ValueError(f"T={T!r} is invalid; allowed values: integers > burn_in={burn_in}")
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is unknown; allowed values: {sorted(PRESETS)}")


def gate_summary(gates: torch.Tensor) -> dict:
    """rate r, pair rate ρ, s = ρ/r² (1 for independent gates), the spread of per-neuron rates
    and the number of gate vectors of a 0/1 tensor [S, n]."""
    r, rho = st.gate_moments(gates)
    per_neuron = gates.to(torch.float64).mean(0)
    return {"rate": r, "pair_rate": rho, "s": rho / (r * r), "rate_min": float(per_neuron.min()),
            "rate_max": float(per_neuron.max()), "patterns": int(gates.shape[0]), "n": int(gates.shape[1])}


def theory_table(ns: Sequence[int], fan_ins: Sequence[int]) -> str:
    """Fixed-format text table of the closed forms at r = 1/2 for (n, k) in :func:`fan_in_grid`:
    the three corrected variances (18 n/k), Appendix A's printed Bernoulli value (18 k/n), their
    ratio, C_{n,k} and its approximation (1 - C shown, in units of 1e-3)."""
    lines = [f"{'n':>4} {'k':>4} {'sparsity':>8} {'Bernoulli':>10} {'per-layer':>10} {'fan-in':>10} "
             f"{'fan/Bern':>8} {'printed B':>10} {'B/printed':>9} {'1-C (e-3)':>10} {'1-Capx(e-3)':>11}"]
    for n, k in fan_in_grid(ns, fan_ins):
        b, p, f = (st.output_norm_variance(kind, n, k) for kind in st.KINDS)
        pb = st.output_norm_variance_as_printed("bernoulli", n, k)
        c, ca = st.c_nk(n, k), st.c_nk_approx(n, k)
        lines.append(f"{n:4d} {k:4d} {1 - k / n:8.4f} {b:10.6f} {p:10.6f} {f:10.6f} {f / b:8.4f} {pb:10.6f} "
                     f"{b / pb:9.3f} {1e3 * (1 - c):10.5f} {1e3 * (1 - ca):11.5f}")
    return "\n".join(lines)


def agreement(sims, z: str = "z", covered: str | None = "covered") -> dict:
    """How well a theory column agrees with the simulation: number of points, fraction of 95% CIs
    covering it (when ``covered`` is a column), max and median |z| of column ``z``."""
    a = sims[z].abs()
    out = {"points": int(len(sims)), "max_abs_z": round(float(a.max()), 2), "median_abs_z": round(float(a.median()), 2)}
    if covered is not None:
        out["ci95_coverage"] = round(float(sims[covered].mean()), 3)
    return out


def erratum_summary(sims, max_density: float = 1 / 16) -> dict:
    """The simulation against Appendix A's printed 18 k/n and the derived 18 n/k (r = 1/2 points
    of :func:`simulate_points`): max |z| for 18 n/k over all points; for 18 k/n the min |z| over
    the sparse points (k/n <= ``max_density``, where the two differ by a factor
    (5n - 8 + 18n/k)/(5n - 8 + 18k/n)), the z per sparse point, and the fraction of all CIs that
    cover the printed value."""
    sparse = sims[sims["k"] / sims["n"] <= max_density + 1e-12]
    printed_covered = (sims["var_lo"] <= sims["printed"]) & (sims["printed"] <= sims["var_hi"])
    min_z = round(float(sparse["z_printed"].abs().min()), 2) if len(sparse) else None
    return {
        "max_abs_z_derived_18n_over_k": round(float(sims["z"].abs().max()), 2),
        "min_abs_z_printed_18k_over_n_sparse": min_z,
        "sparse_points": int(len(sparse)),
        "z_printed_sparse": {f"{r.kind} n={r.n} k={r.k}": round(float(r.z_printed), 1) for r in sparse.itertuples()},
        "ci95_covering_printed": round(float(printed_covered.mean()), 3),
    }


def ordering_summary(curves) -> dict:
    """From :func:`theory_curves` (one rate, with kinds fan_in, bernoulli and optionally
    per_layer): ``worst_ratio`` = max over n and k < n of Var_fan-in / min(Var_Bernoulli,
    Var_per-layer) (< 1: fan-in always lowest); ``monotone``: the
    relative advantage 1 - Var_fan-in/Var_Bernoulli decreases as k grows, for every n;
    ``advantage_k1`` and ``advantage_half`` per n (at k = 1 and k = n/2)."""
    c = curves[curves["k"] < curves["n"]]
    grid = c.pivot_table(index=["n", "k"], columns="kind", values="theory")
    others = [kd for kd in ("bernoulli", "per_layer") if kd in grid.columns]
    worst = float((grid["fan_in"] / grid[others].min(axis=1)).max())
    adv = 1 - grid["fan_in"] / grid["bernoulli"]
    mono = all(bool(np.all(np.diff(g.to_numpy()) <= 1e-15)) for _, g in adv.groupby(level="n"))
    return {
        "worst_ratio": round(worst, 6),
        "monotone": mono,
        "advantage_k1": {int(n): round(float(g.iloc[0]), 4) for n, g in adv.groupby(level="n")},
        "advantage_half": {int(n): round(float(adv.loc[(n, max(1, int(n) // 2))]), 4) for n in adv.index.levels[0]},
    }


# ----------------------------------------------------------------------------------------------
# output-norm variance plots
# ----------------------------------------------------------------------------------------------


def _errorbar(ax, sims, y="var", lo="var_lo", hi="var_hi", **kw):
    x = sims["sparsity"].to_numpy()
    v = sims[y].to_numpy()
    err = np.vstack([np.clip(v - sims[lo].to_numpy(), 0, None), np.clip(sims[hi].to_numpy() - v, 0, None)])
    ax.errorbar(x, v, yerr=err, ls="none", capsize=2.5, ms=4.5, **kw)


def _sparsity_axis(ax, max_sparsity: float) -> None:
    """x axis 1 - k/n on a logit-like scale: log of density, labelled by sparsity."""
    ax.set_xscale("function", functions=(lambda s: -np.log10(np.clip(1 - s, 1e-9, None)),
                                         lambda t: 1 - 10 ** (-t)))
    ticks = [t for t in (0, 0.5, 0.9, 0.99, 0.999) if t <= max_sparsity + 1e-12]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(-0.02, max_sparsity + (1 - max_sparsity) * 0.1 if max_sparsity < 1 else 1)


def _paired_ratio(sk):
    """Rows of :func:`simulate_points` as the simulated Var_kind / Var_Bernoulli of the paired draws
    (same draws of everything but the mask) with its paired 95% interval (± 1.96 se)."""
    ratio = sk["ratio_bernoulli"].to_numpy()
    se = sk["ratio_bernoulli_se"].to_numpy()
    return sk.assign(var=ratio, var_lo=ratio - 1.96 * se, var_hi=ratio + 1.96 * se)


def variance_vs_sparsity(curves, sims, kinds: Sequence[str] = st.KINDS, title: str = ""):
    """Fig. 1b analogue: Var ‖z‖² against sparsity 1 - k/n, one column per n; lines: the corrected
    closed forms (``theory`` of :func:`theory_curves`), points: Monte Carlo with 95% CIs
    (:func:`simulate_points`). Bottom row: Var_kind / Var_Bernoulli, lines from the closed forms,
    points the simulated ratio of the paired draws (same draws of everything but the mask) with
    its paired 95% interval: constant fan-in lowest, the gap growing as k << n. Log-scale axes
    (x: density 10^-t, labelled by sparsity)."""
    ns = sorted(curves["n"].unique())
    fig, axes = figure(2, len(ns), w=3.9, h=2.9, sharex="col", gridspec_kw={"height_ratios": [1.4, 1]})
    for j, n in enumerate(ns):
        ax, axr = axes[0, j], axes[1, j]
        c = curves[curves["n"] == n]
        s = sims[sims["n"] == n] if sims is not None else None
        bern = c[c["kind"] == "bernoulli"].set_index("k")["theory"]
        for kind in kinds:
            ck = c[c["kind"] == kind].sort_values("sparsity")
            ax.plot(ck["sparsity"], ck["theory"], color=KIND_COLORS[kind], lw=1.4,
                    label=f"{KIND_LABELS[kind]} (theory)")
            axr.plot(ck["sparsity"], ck["theory"].to_numpy() / bern.reindex(ck["k"]).to_numpy(),
                     color=KIND_COLORS[kind], lw=1.4)
            if s is not None and len(s):
                sk = s[s["kind"] == kind]
                _errorbar(ax, sk, color=KIND_COLORS[kind], marker=KIND_MARKERS[kind],
                          label=f"{KIND_LABELS[kind]} (simulation, 95% CI)")
                _errorbar(axr, _paired_ratio(sk), color=KIND_COLORS[kind], marker=KIND_MARKERS[kind])
        _log_y(ax)
        _sparsity_axis(axr, 1 - 1 / n)
        ax.set(title=f"n = {n}")
        axr.set(xlabel="sparsity 1 - k/n")
    axes[0, 0].set_ylabel(r"Var$(\|z^{\ell+1}\|^2 / \|z^\ell\|^2)$")
    axes[1, 0].set_ylabel("Var / Var$_{Bernoulli}$ (paired)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def mean_check(sims, title: str = r"$E\|z\|^2 = 1$: simulated means, 95% CIs"):
    """Simulated E‖z‖² with 95% CIs for every point of :func:`simulate_points` against the theory
    value 1 (left), and z = (mean - 1)/se (right; grey band |z| < 2). Points are grouped by n,
    sparsity increasing within a group, one marker per kind."""
    fig, axes = figure(1, 2, w=4.4, h=3.0)
    ax, axz = axes[0]
    ns = sorted(sims["n"].unique())
    x0, centers = 0.0, []
    for n in ns:
        sn = sims[sims["n"] == n]
        ks = sorted(sn["k"].unique(), reverse=True)
        for kind in st.KINDS:
            s = sn[sn["kind"] == kind].set_index("k").reindex(ks)
            x = x0 + np.arange(len(ks)) + 0.22 * (st.KINDS.index(kind) - 1)
            v = s["mean"].to_numpy()
            ax.errorbar(x, v, yerr=[v - s["mean_lo"].to_numpy(), s["mean_hi"].to_numpy() - v], ls="none",
                        marker=KIND_MARKERS[kind], color=KIND_COLORS[kind], ms=4, capsize=2,
                        label=KIND_LABELS[kind] if n == ns[0] else None)
            axz.plot(x, s["z_mean"], ls="none", marker=KIND_MARKERS[kind], color=KIND_COLORS[kind], ms=4)
        centers.append(x0 + (len(ks) - 1) / 2)
        x0 += len(ks) + 1
    for a in (ax, axz):
        a.set_xticks(centers, [f"n={n}" for n in ns])
    ax.axhline(1.0, color="k", lw=1, ls="--")
    ax.set(title=title, ylabel=r"$E\|z\|^2$ (simulation)", xlabel="points by n (sparsity increasing)")
    ax.legend(fontsize="small")
    axz.axhspan(-2, 2, color="0.9")
    axz.axhline(0, color="k", lw=1)
    axz.set(title="z = (mean - 1) / se", xlabel="points by n (sparsity increasing)", ylabel="z")
    return fig


def erratum_figure(curves, sims, kinds: Sequence[str] = st.KINDS):
    """Appendix A's printed 18 k/n formulas (dashed) against the derived 18 n/k (solid) and the
    simulation (points), one column per kind, one colour per n; bottom row: the z-scores of the
    simulation against each formula (grey band |z| < 2)."""
    ns = sorted(curves["n"].unique())
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.8, len(ns)))
    fig, axes = figure(2, len(kinds), w=4.0, h=3.0)
    for j, kind in enumerate(kinds):
        ax, axz = axes[0, j], axes[1, j]
        for n, col in zip(ns, colors):
            c = curves[(curves["n"] == n) & (curves["kind"] == kind)].sort_values("sparsity")
            ax.plot(c["sparsity"], c["theory"], color=col, lw=1.4, label=f"n={n}: 18 n/k (derived)")
            ax.plot(c["sparsity"], c["printed"], color=col, lw=1.2, ls="--", label=f"n={n}: 18 k/n (printed)")
            s = sims[(sims["n"] == n) & (sims["kind"] == kind)].sort_values("sparsity")
            if len(s):
                _errorbar(ax, s, color=col, marker="o", label=f"n={n}: simulation")
                axz.plot(s["sparsity"], s["z"], color=col, marker="o", lw=1, label=f"n={n} vs 18 n/k")
                axz.plot(s["sparsity"], s["z_printed"].abs(), color=col, marker="x", ls="--", lw=1,
                         label=f"n={n}: |z| vs 18 k/n")
        _log_y(ax)
        _sparsity_axis(ax, 1 - 1 / max(ns))
        ax.set(title=KIND_LABELS[kind], xlabel="sparsity 1 - k/n")
        axz.axhspan(-2, 2, color="0.88")
        axz.set_yscale("symlog", linthresh=3, linscale=1.5)
        zt = [-3, -2, -1, 0, 1, 2, 3, 10, 30, 100]
        axz.set_yticks(zt, [str(t) for t in zt])
        axz.set_ylim(-4, max(10.0, float(np.nanmax(np.abs(sims["z_printed"].to_numpy()))) * 1.3) if len(sims) else 10)
        _sparsity_axis(axz, 1 - 1 / max(ns))
        axz.set(xlabel="sparsity 1 - k/n")
    axes[0, 0].set_ylabel(r"Var $\|z\|^2$")
    axes[1, 0].set_ylabel("z-score of the simulation")
    h, lab = axes[0, 0].get_legend_handles_labels()
    h2, lab2 = axes[1, 0].get_legend_handles_labels()
    fig.legend(h + h2, lab + lab2, loc="outside lower center", ncol=len(ns) * 2 if len(ns) < 3 else 5,
               fontsize="x-small")
    return fig


def c_nk_figure(ns: Sequence[int]):
    """Left: 1 - C_{n,k} exact (lines) and Appendix A's approximation (n-k)/(n²k) (markers)
    against sparsity; their ratio is n²/(n²-1). Right: how far constant per-layer is from
    Bernoulli, 1 - Var_per-layer / Var_Bernoulli (r = 1/2)."""
    check_sweep(ns=ns)
    fig, axes = figure(1, 2, w=4.4, h=3.2)
    ax, ax2 = axes[0]
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.8, len(ns)))
    for n, col in zip(ns, colors):
        ks = np.arange(1, n)
        sp = 1 - ks / n
        exact = np.array([1 - st.c_nk(n, int(k)) for k in ks])
        approx = np.array([1 - st.c_nk_approx(n, int(k)) for k in ks])
        ax.plot(sp, exact, color=col, label=f"n={n}: exact")
        sel = np.unique(np.round(np.geomspace(1, n - 1, 10)).astype(int)) - 1
        ax.plot(sp[sel], approx[sel], ls="none", marker="x", color=col, label=f"n={n}: approx.")
        ratio = np.array([1 - st.output_norm_variance("per_layer", n, int(k))
                          / st.output_norm_variance("bernoulli", n, int(k)) for k in ks])
        ax2.plot(sp, ratio, color=col, label=f"n={n}")
    ax.set(yscale="log", title=r"$1 - C_{n,k}$: exact vs $(n-k)/(n^2 k)$", xlabel="sparsity 1 - k/n")
    _sparsity_axis(ax, 1 - 1 / max(ns))
    ax.legend(fontsize="x-small", ncol=2)
    ax2.set(yscale="log", title=r"$1 - \mathrm{Var}_{per\text{-}layer} / \mathrm{Var}_{Bernoulli}$",
            xlabel="sparsity 1 - k/n")
    _sparsity_axis(ax2, 1 - 1 / max(ns))
    ax2.legend(fontsize="small")
    return fig


def rate_figure(curves, sims, n: int | None = None):
    """Gated continuous layer (ξ ∘ u, u continuous: not a spiking input) with gate rate r: left, Var ‖z‖² against sparsity for
    each r (fan-in solid, Bernoulli dashed, simulation points); right, the relative advantage of
    constant fan-in, 1 - Var_fan-in / Var_Bernoulli (theory), for each r. ``curves`` and ``sims``
    hold several rates (concatenated :func:`theory_curves` / :func:`simulate_points`)."""
    n = n or int(curves["n"].max())
    c = curves[curves["n"] == n]
    s = sims[sims["n"] == n] if sims is not None else None
    rates = sorted(c["rate"].unique())
    colors = plt.get_cmap("plasma")(np.linspace(0.05, 0.8, len(rates)))
    fig, axes = figure(1, 2, w=4.6, h=3.4)
    ax, ax2 = axes[0]
    for r, col in zip(rates, colors):
        cr = c[c["rate"] == r]
        fan = cr[cr["kind"] == "fan_in"].sort_values("sparsity")
        bern = cr[cr["kind"] == "bernoulli"].sort_values("sparsity")
        ax.plot(fan["sparsity"], fan["theory"], color=col, lw=1.5, label=f"r={r:g}: fan-in")
        ax.plot(bern["sparsity"], bern["theory"], color=col, lw=1.1, ls="--", label=f"r={r:g}: Bernoulli")
        if s is not None and len(s):
            sr = s[np.isclose(s["rate"], r)]
            for kind in ("bernoulli", "fan_in"):
                _errorbar(ax, sr[sr["kind"] == kind], color=col, marker=KIND_MARKERS[kind])
        ax2.plot(fan["sparsity"], 1 - fan["theory"].to_numpy() / bern["theory"].to_numpy(), color=col, label=f"r={r:g}")
    ax.set(title=f"gated continuous layer, n = {n}: theory (lines), simulation (o Bernoulli, ^ fan-in)",
           xlabel="sparsity 1 - k/n", ylabel=r"Var $\|z\|^2$")
    _log_y(ax)
    _sparsity_axis(ax, 1 - 1 / n)
    h, lab = ax.get_legend_handles_labels()
    fig.legend(h, lab, loc="outside lower center", ncol=4, fontsize="x-small")
    ax2.set(title=r"fan-in advantage $1 - \mathrm{Var}_{fan\text{-}in}/\mathrm{Var}_{Bernoulli}$",
            xlabel="sparsity 1 - k/n")
    _sparsity_axis(ax2, 1 - 1 / n)
    ax2.legend(fontsize="small")
    return fig


def lif_gates_figure(gate_sets: Mapping[str, torch.Tensor], sims, kinds: Sequence[str] = st.KINDS,
                     raster_steps: int = 120, raster_neurons: int = 32):
    """Gated continuous layer (ξ ∘ u, u continuous) with gates ξ recorded from LIF layers. Left column: spike rasters (first ``raster_steps`` gate
    vectors x ``raster_neurons`` neurons) of each condition. Other columns, one per condition:
    Var ‖z‖² theory with the empirical (r, ρ) (solid), the iid theory at the same r (dotted) and
    the simulation drawing ξ from the recorded spikes (points, 95% CI). ``sims``: concatenated
    :func:`simulate_points` outputs with a ``condition`` column matching ``gate_sets``' keys."""
    names = list(gate_sets)
    fig, axes = figure(len(names), 2, w=4.6, h=3.0)
    for i, name in enumerate(names):
        g = gate_sets[name]
        info = gate_summary(g)
        ax, axv = axes[i]
        sl = g[:raster_steps, :raster_neurons].numpy()
        t, j = np.nonzero(sl)
        ax.scatter(t, j, s=3, marker="|", color="k")
        ax.set(xlim=(0, raster_steps), ylim=(-0.5, raster_neurons - 0.5), xlabel="gate vector (time step, sample)",
               ylabel="neuron", title=f"{name}: LIF spikes used as gates ξ, r={info['rate']:.3f}, ρ/r²={info['s']:.2f}")
        s = sims[sims["condition"] == name]
        n = int(info["n"])
        ks = np.arange(1, n + 1)
        for kind in kinds:
            th = [st.output_norm_variance(kind, n, int(k), info["rate"], info["pair_rate"]) for k in ks]
            thi = [st.output_norm_variance(kind, n, int(k), info["rate"]) for k in ks]
            axv.plot(1 - ks / n, th, color=KIND_COLORS[kind], lw=1.4, label=f"{KIND_LABELS[kind]}: theory (r, ρ)")
            axv.plot(1 - ks / n, thi, color=KIND_COLORS[kind], lw=1.0, ls=":",
                     label=f"{KIND_LABELS[kind]}: iid theory (r, r²)")
            _errorbar(axv, s[s["kind"] == kind], color=KIND_COLORS[kind], marker=KIND_MARKERS[kind],
                      label=f"{KIND_LABELS[kind]}: simulation with recorded spikes")
        axv.set(title=f"gated continuous layer (ξ ∘ u), {name}: n = {n}", xlabel="sparsity 1 - k/n",
                ylabel=r"Var $\|z\|^2$")
        _log_y(axv)
        _sparsity_axis(axv, 1 - 1 / n)
    h, lab = axes[0, 1].get_legend_handles_labels()
    fig.legend(h, lab, loc="outside lower center", ncol=3, fontsize="x-small")
    return fig


def variance_explorer(n: int = 64, k: int = 4, samples: int = 2000, rate: float = 0.5, seed: int = 0):
    """The widget's function: theory vs sparsity at (n, r) with the simulation at k for the three
    kinds (left), and the histogram of the simulated ‖z‖² draws (right)."""
    check_sweep(ns=[n], rates=[rate], samples=samples)
    if not checks.is_int(k) or not 1 <= k <= n:
        raise ValueError(f"k={k!r} is out of range; allowed values: integers 1 <= k <= n={n}")
    curves = theory_curves([n], rate=rate)
    fig, axes = figure(1, 2, w=4.6, h=3.4)
    ax, axh = axes[0]
    hi, draws = 0.0, {}
    for kind in st.KINDS:
        c = curves[curves["kind"] == kind]
        ax.plot(c["sparsity"], c["theory"], color=KIND_COLORS[kind], label=KIND_LABELS[kind])
        res = st.simulate_output_norm_variance(kind, n, k, samples, seed=point_seed(seed, kind, n, k, rate), rate=rate,
                                               method="reduced")
        th = st.output_norm_variance(kind, n, k, rate)
        ax.errorbar([1 - k / n], [res.var], yerr=[[res.var - res.var_ci[0]], [res.var_ci[1] - res.var]],
                    color=KIND_COLORS[kind], marker=KIND_MARKERS[kind], capsize=3)
        v = res.values.numpy()
        hi = max(hi, float(np.quantile(v, 0.995)))
        draws[kind] = (v, f"{KIND_LABELS[kind]}: var {res.var:.3g} (theory {th:.3g})")
    for kind, (v, label) in draws.items():
        axh.hist(v, bins=np.linspace(0, hi, 50), histtype="step", color=KIND_COLORS[kind], label=label)
    ax.set(title=f"n={n}, r={rate:g}: simulation at k={k} ({samples} draws)",
           xlabel="sparsity 1 - k/n", ylabel=r"Var $\|z\|^2$")
    _log_y(ax)
    _sparsity_axis(ax, 1 - 1 / n)
    ax.legend(fontsize="small")
    axh.set(title=r"draws of $\|z\|^2$ (mean 1; 99.5% quantile shown)", xlabel=r"$\|z\|^2$", ylabel="count")
    axh.axvline(1.0, color="k", lw=0.8, ls="--")
    axh.legend(fontsize="x-small")
    return fig


# ----------------------------------------------------------------------------------------------
# benchmark plots
# ----------------------------------------------------------------------------------------------


def _method_lines(ax, df, methods: Sequence[str], show_min: bool = True) -> None:
    """Median time per method against batch (lines), and the fastest call (hollow markers): where
    the two are far apart, other processes (not the kernel) set the median."""
    for m in methods:
        d = df[df["method"] == m].sort_values("batch")
        if not len(d):
            continue
        label, color, marker = METHOD_STYLE.get(m, (m, None, "o"))
        ls = ":" if m in ("condensed_torch", "condensed_int64", "dense_linear") else "-"
        ax.plot(d["batch"], d["us"], color=color, marker=marker, ls=ls, ms=4, lw=1.2, label=label)
        if show_min and "min_s" in d:
            ax.plot(d["batch"], d["min_s"] * 1e6, color=color, marker=marker, ls="none", ms=5, mfc="none",
                    alpha=0.45, mew=0.8)


def _min_legend_handle():
    return Line2D([], [], color="0.4", marker="o", ls="none", mfc="none", alpha=0.6, label="hollow: fastest call")


def benchmark_grid(result: dict, methods: Sequence[str] = DEFAULT_METHODS, title: str = ""):
    """Figs. 18-20 analogue: median time per call (µs, log) against batch size (log2), one row per
    thread count, one column per sparsity, one line per method; hollow markers: the fastest call."""
    df = frame(result)
    threads = sorted(df["threads"].dropna().unique())
    sps = sorted(df["sparsity"].unique())
    fig, axes = figure(len(threads), len(sps), w=3.5, h=2.9, sharey="row", sharex=True)
    for i, nt in enumerate(threads):
        for j, s in enumerate(sps):
            ax = axes[i, j]
            _method_lines(ax, df[(df["threads"] == nt) & (df["sparsity"] == s)], methods)
            ax.set(title=f"{s:.0%} sparse, {int(nt)} thread{'s' if nt > 1 else ''}")
            ax.set_xscale("log", base=2)
            _log_y(ax)
            if i == len(threads) - 1:
                ax.set_xlabel("batch size")
            if j == 0:
                ax.set_ylabel("time per call (µs)")
    h, lab = axes[0, 0].get_legend_handles_labels()
    fig.legend(h + [_min_legend_handle()], lab + ["hollow: fastest call"], loc="outside lower center", ncol=4,
               fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def benchmark_panel(result: dict, threads: int = 1, sparsity: float = 0.9,
                    methods: Sequence[str] = DEFAULT_METHODS, title: str = ""):
    """One (threads, sparsity) panel of :func:`benchmark_grid` (the widget's function)."""
    df = frame(result)
    d = df[(df["threads"] == threads) & np.isclose(df["sparsity"], sparsity)]
    if not len(d):
        raise ValueError(f"threads={threads!r}, sparsity={sparsity!r} not in this result; available: threads "
                         f"{sorted(df['threads'].unique())}, sparsities {sorted(df['sparsity'].unique())}")
    fig, axes = figure(1, 1, w=5.2, h=3.6)
    ax = axes[0, 0]
    _method_lines(ax, d, methods)
    ax.set(xlabel="batch size", ylabel="time per call (µs)",
           title=title or f"{sparsity:.0%} sparse, {threads} thread(s)")
    ax.set_xscale("log", base=2)
    _log_y(ax)
    h, lab = ax.get_legend_handles_labels()
    ax.legend(h + [_min_legend_handle()], lab + ["hollow: fastest call"], fontsize="x-small")
    return fig


def speedup_figure(results: Mapping[str, dict], sparsity: float = 0.9, over: Sequence[str] = ("dense", "csr"),
                   targets: Mapping[str, float] | None = None):
    """Speedup of the condensed layer, t_method / t_condensed, against batch size at ``sparsity``:
    one panel per baseline of ``over``, one line per (source, threads), log scale. The paper's batch-1
    targets (``{"dense": 3.4, "csr": 2.5}``) are drawn as stars; the dotted line is 1 (no gain)."""
    fig, axes = figure(1, len(over), w=4.4, h=3.3, sharey=True)
    styles = ["-", "--", "-.", ":"]
    for j, m in enumerate(over):
        ax = axes[0, j]
        for si, (src, res) in enumerate(results.items()):
            sp = speedups(res, over=over)
            sp = sp[np.isclose(sp["sparsity"], sparsity)]
            for nt in sorted(sp["threads"].unique()):
                d = sp[sp["threads"] == nt].sort_values("batch")
                ax.plot(d["batch"], d[m], marker="o", ms=3.5, ls=styles[si % 4], label=f"{src}, {int(nt)} thr")
        if targets and m in targets:
            ax.plot([1], [targets[m]], marker="*", ms=13, color="k", ls="none", label=f"paper, batch 1: {targets[m]}x")
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set(xlabel="batch size", title=f"{sparsity:.0%} sparse: t_{m} / t_condensed")
        ax.set_xscale("log", base=2)
        _log_y(ax)
        ax.legend(fontsize="x-small")
    axes[0, 0].set_ylabel("speedup of condensed (x)")
    return fig


def device_figure(result: dict, methods: Sequence[str] = ("dense", "csr", "structured", "condensed")):
    """Fig. 21 analogue (a :func:`snnlab.condensed_bench.run_device` result): median time (log) per
    sparsity, one panel per batch size, bars per method."""
    df = frame(result)
    batches = sorted(df["batch"].unique())
    sps = sorted(df["sparsity"].unique())
    fig, axes = figure(1, len(batches), w=4.0, h=3.2)
    width = 0.8 / len(methods)
    for ax, b in zip(axes[0], batches):
        for i, m in enumerate(methods):
            d = df[(df["batch"] == b) & (df["method"] == m)].set_index("sparsity").reindex(sps)
            label, color, _ = METHOD_STYLE.get(m, (m, None, "o"))
            ax.bar(np.arange(len(sps)) + (i - (len(methods) - 1) / 2) * width, d["us"], width, color=color, label=label)
        ax.set_xticks(np.arange(len(sps)), [f"{s:.0%}" for s in sps])
        ax.set(title=f"{result['machine'].get('device_name', '')}: batch {b}", xlabel="sparsity")
        _log_y(ax)
    axes[0, 0].set_ylabel("time per call (µs)")
    axes[0, 0].legend(fontsize="x-small")
    return fig
