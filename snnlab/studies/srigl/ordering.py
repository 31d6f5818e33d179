"""The mask ordering of notebook 01 read off the paired simulation (:func:`variance.simulate_points`),
and the spiking-input figure."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ...record.plotting import figure
from . import theory as st
from .variance import KIND_COLORS, KIND_LABELS, KIND_MARKERS, _errorbar, _log_y, _sparsity_axis

__all__ = ["distinct_points", "simulated_ordering", "spiking_figure"]


def distinct_points(sims):
    """``sims`` without the duplicate rows at k = n: there every mask kind is the dense mask, and
    with common random numbers the kinds' estimates are the same numbers (kept: the first kind)."""
    dense = sims["k"] >= sims["n"]
    first = sims[dense].drop_duplicates(subset=[c for c in ("n", "k", "rate", "method", "condition") if c in sims])
    return pd.concat([sims[~dense], first]).sort_index()


def simulated_ordering(sims, power_z: float = 4.0) -> dict:
    """The mask ordering as the paired simulation of :func:`simulate_points` shows it, at every
    point with k < n (where the masks differ). Two families of comparisons, each a z-score:

    * lowest: (Var_other - Var_fan-in)/se_paired, per point and other kind (> 0: fan-in lowest);
    * gap: for each n and consecutive simulated k_a < k_b < n, (gap(k_a) - gap(k_b))/√(se_a² + se_b²),
      gap = 1 - Var_fan-in/Var_Bernoulli (> 0: the gap grows as k shrinks; points are independent).

    A comparison is *resolved* when the closed forms predict z >= ``power_z`` at its standard
    error (the simulation has the power to show it); ``min_z_*`` is the smallest z over the
    resolved comparisons, ``min_z_*_all`` over all of them (a contradiction shows as a negative z
    anywhere), ``unresolved_*`` lists the others with their predicted z; ``z_*`` all z-scores,
    ``gap`` per point [simulation, se, theory].
    """
    s = sims[(sims["k"] < sims["n"]) & sims["diff_fan_in"].notna()]
    low = {f"n={r.n} k={r.k} r={r.rate:g} {r.kind}": (float(r.diff_fan_in / r.diff_fan_in_se),
                                                     float(r.diff_fan_in_theory / r.diff_fan_in_se))
           for r in s.itertuples()}
    b = s[s["kind"] == "bernoulli"].sort_values(["rate", "n", "k"])
    gaps, pairs = {}, {}
    for (rate, n), g in b.groupby(["rate", "n"]):
        rows = list(g.itertuples())
        for r in rows:
            gaps[f"n={n} k={r.k} r={rate:g}"] = [round(float(r.gap_fan_in), 4), round(float(r.gap_fan_in_se), 4),
                                                 round(float(r.gap_fan_in_theory), 4)]
        for lo, hi in zip(rows, rows[1:]):
            se = math.hypot(lo.gap_fan_in_se, hi.gap_fan_in_se)
            pairs[f"n={n} r={rate:g}: k={lo.k} vs k={hi.k}"] = (
                float((lo.gap_fan_in - hi.gap_fan_in) / se), float((lo.gap_fan_in_theory - hi.gap_fan_in_theory) / se))
    out = {}
    for name, d in (("lowest", low), ("gap_shrinks", pairs)):
        res = [z for z, zt in d.values() if zt >= power_z]
        out[f"min_z_{name}"] = round(min(res), 2) if res else None
        out[f"min_z_{name}_all"] = round(min(z for z, _ in d.values()), 2) if d else None
        out[f"resolved_{name}"] = f"{len(res)} of {len(d)}"
        out[f"unresolved_{name}"] = {key: round(zt, 1) for key, (z, zt) in d.items() if zt < power_z}
        out[f"z_{name}"] = {key: round(z, 1) for key, (z, _) in d.items()}
    out["power_z"] = power_z
    out["gap"] = gaps
    return out


def spiking_figure(curves, sims, kinds: Sequence[str] = st.KINDS):
    """Spiking inputs (x ∈ {0,1}^n at rate r, no u): one column per rate. Top: Var Q against sparsity,
    closed forms (lines, :func:`theory_curves` with ``inputs="spikes"``) and the simulation
    (points, 95% CI). Bottom: the relative gap 1 - Var_fan-in / Var_other for the two other masks,
    closed form (lines) and paired simulation (points, ± 1.96 paired se); below 0 fan-in is not
    the lowest. ``curves`` / ``sims`` hold several rates (concatenated)."""
    rates = sorted(curves["rate"].unique())
    n = int(curves["n"].max())
    fig, axes = figure(2, len(rates), w=3.6, h=2.9, sharex="col", gridspec_kw={"height_ratios": [1.3, 1]})
    for j, r in enumerate(rates):
        ax, axg = axes[0, j], axes[1, j]
        c = curves[np.isclose(curves["rate"], r) & (curves["n"] == n)]
        s = sims[np.isclose(sims["rate"], r) & (sims["n"] == n)]
        piv = c.pivot_table(index="k", columns="kind", values="theory")
        for kind in kinds:
            ck = c[c["kind"] == kind].sort_values("sparsity")
            ax.plot(ck["sparsity"], ck["theory"], color=KIND_COLORS[kind], lw=1.4, label=f"{KIND_LABELS[kind]} (theory)")
            sk = s[s["kind"] == kind]
            _errorbar(ax, sk, color=KIND_COLORS[kind], marker=KIND_MARKERS[kind],
                      label=f"{KIND_LABELS[kind]} (simulation, 95% CI)")
            if kind == "fan_in" or "fan_in" not in piv:
                continue
            ks = piv.index.to_numpy()
            axg.plot(1 - ks / n, 1 - piv["fan_in"].to_numpy() / piv[kind].to_numpy(), color=KIND_COLORS[kind], lw=1.4)
            sk = sk[sk["k"] < n]
            g, se = sk["gap_fan_in"].to_numpy(), sk["gap_fan_in_se"].to_numpy()
            axg.errorbar(sk["sparsity"], g, yerr=1.96 * se, ls="none", capsize=2.5, ms=4.5, color=KIND_COLORS[kind],
                         marker=KIND_MARKERS[kind])
        axg.axhline(0, color="k", lw=0.8)
        _log_y(ax)
        _sparsity_axis(axg, 1 - 1 / n)
        ax.set(title=f"spiking inputs, n = {n}, r = {r:g}")
        axg.set(xlabel="sparsity 1 - k/n")
    axes[0, 0].set_ylabel(r"Var $Q$, $Q = \|z\|^2/n$")
    axes[1, 0].set_ylabel(r"$1 - \mathrm{Var}_{fan\text{-}in}/\mathrm{Var}_{other}$")
    h, lab = axes[0, 0].get_legend_handles_labels()
    fig.legend(h, lab, loc="outside lower center", ncol=3, fontsize="small")
    return fig
