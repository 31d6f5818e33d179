"""Figures of the lth notebooks. Every function returns a matplotlib Figure; the notebook saves it."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ...record.plotting import figure
from ...sparsity import early_time as et

__all__ = ["divergence_curves", "curves_over_epochs", "t_early_vs_lambda", "accuracy_vs_sparsity",
           "accuracy_vs_search_time", "bars", "layer_sparsity", "xy_lines", "divergence_explorer", "tickets_view",
           "eb_distances", "per_layer_bars"]


def divergence_curves(panels: Mapping[str, Mapping[str, Sequence[float]]], T: int, lam: float | None = None):
    """Fig. 4: one panel per KL order / metric, one line per model; x = t = 2..T."""
    fig, axes = figure(1, len(panels), w=3.6, h=3.0)
    ts = list(range(2, T + 1))
    for ax, (title, lines) in zip(axes[0], panels.items()):
        for name, c in lines.items():
            ax.plot(ts, c, marker="o", label=name)
        if lam is not None:
            ax.axhline(lam, ls="--", c="gray", lw=1, label=f"lambda = {lam:g}")
        ax.set(title=title, xlabel="timestep t", ylabel="normalised divergence D_t / D_2", xticks=ts)
        ax.legend(fontsize=7)
    return fig


def curves_over_epochs(by_epoch: Mapping[int, np.ndarray], T: int):
    """supp. Fig. 2: mean +- std over seeds of the normalised curve, one line per epoch."""
    fig, axes = figure()
    ax = axes[0, 0]
    ts = list(range(2, T + 1))
    for e, arr in by_epoch.items():
        a = np.asarray(arr, dtype=float)
        ax.errorbar(ts, a.mean(0), yerr=a.std(0), marker="o", capsize=3, label=f"epoch {e}")
    ax.set(xlabel="timestep t", ylabel="normalised KL", xticks=ts, title="mean +- std over seeds")
    ax.legend(fontsize=7)
    return fig


def t_early_vs_lambda(lines: Mapping[str, Mapping[float, int]], lam: float | None = None):
    """Fig. 7(b): T_early against lambda."""
    fig, axes = figure()
    ax = axes[0, 0]
    for name, d in lines.items():
        ax.plot(list(d), list(d.values()), marker="o", drawstyle="steps-post", label=name)
    if lam is not None:
        ax.axvline(lam, ls="--", c="gray", lw=1)
    ax.set(xlabel="lambda", ylabel="T_early", title="T_early vs lambda")
    ax.legend(fontsize=7)
    return fig


def accuracy_vs_sparsity(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = "",
                         dense: float | None = None, yerr: Mapping[str, Sequence[float]] | None = None):
    """Accuracy (%) against sparsity (%) for several methods (Fig. 5, 6(a,b), 8, 9, supp. Fig. 1)."""
    fig, axes = figure(w=4.8, h=3.4)
    ax = axes[0, 0]
    for name, (x, y) in series.items():
        err = (yerr or {}).get(name)
        ax.errorbar([100 * v for v in x], y, yerr=err, marker="o", capsize=3, label=name)
    if dense is not None:
        ax.axhline(dense, ls="--", c="gray", lw=1, label="dense")
    ax.set(xlabel="sparsity (%)", ylabel="test accuracy (%)", title=title)
    ax.legend(fontsize=7)
    return fig


def accuracy_vs_search_time(points: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = ""):
    """Fig. 1: accuracy against search time (s) of each method's tickets."""
    fig, axes = figure(w=4.8, h=3.4)
    ax = axes[0, 0]
    for name, (t, a) in points.items():
        ax.plot(t, a, marker="o", label=name)
    ax.set(xlabel="search time (s, this machine)", ylabel="test accuracy (%)", title=title, xscale="symlog")
    ax.legend(fontsize=7)
    return fig


def bars(values: Mapping[str, float], ylabel: str, title: str = "", err: Mapping[str, float] | None = None):
    fig, axes = figure()
    ax = axes[0, 0]
    names = list(values)
    ax.bar(names, [values[n] for n in names], yerr=[(err or {}).get(n, 0) for n in names], capsize=3)
    ax.set(ylabel=ylabel, title=title)
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def layer_sparsity(per_level: Mapping[str, Mapping[str, float]]):
    """Fig. 6(c): sparsity of each layer (x, input to output) at each overall sparsity level."""
    fig, axes = figure(w=4.8, h=3.4)
    ax = axes[0, 0]
    for name, layers in per_level.items():
        ax.plot(range(len(layers)), [100 * v for v in layers.values()], marker="o", label=name)
        ticks = list(layers)
    ax.set(xlabel="layer (input -> output)", ylabel="layer sparsity (%)", title="layer-wise sparsity (global IMP)")
    ax.set_xticks(range(len(ticks)), [t.split(".")[0] + "." + t.split(".")[1] if "." in t else t for t in ticks],
                  fontsize=7)
    ax.legend(fontsize=7)
    return fig


def xy_lines(lines: Mapping[str, tuple[Sequence[Any], Sequence[float]]], xlabel: str, ylabel: str, title: str = "",
             logy: bool = False):
    fig, axes = figure()
    ax = axes[0, 0]
    for name, (x, y) in lines.items():
        ax.plot(x, y, marker="o", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    return fig


# --- explorer views (cheap: re-drawn from data already in memory, nothing is trained) --------------


def divergence_explorer(outputs, lam: float = 0.6, metric: str = "kl", direction: str = "paper", title: str = ""):
    """The normalised divergence of per-step outputs ``[T, N, C]`` for one metric / KL order, the
    threshold lambda and the T_early it selects (Algorithm 1)."""
    curve = et.normalized_divergence(outputs, metric, direction)
    T = int(curve.numel()) + 1
    te = et.select_t_early(curve, lam)
    fig, axes = figure(w=4.8, h=3.4)
    ax = axes[0, 0]
    ts = list(range(2, T + 1))
    ax.plot(ts, curve.tolist(), marker="o", label=f"{metric.upper()}" + (f" ({direction})" if metric == "kl" else ""))
    ax.axhline(lam, ls="--", c="gray", lw=1, label=f"lambda = {lam:.2f}")
    ax.axvline(te, c="C3", lw=2, alpha=0.6, label=f"T_early = {te}")
    ax.set(xlabel="timestep t", ylabel="normalised divergence D_t / D_2", xticks=ts, ylim=(-0.05, 1.05),
           title=title or f"T_early = {te} at lambda = {lam:.2f}")
    ax.legend(fontsize=7)
    return fig


def tickets_view(rows: Sequence[Any], methods: Sequence[str], x: str = "sparsity", dense: float | None = None,
                 title: str = ""):
    """Accuracy of the chosen methods' tickets against sparsity or against their search time."""
    pick = {m: [r for r in rows if r.method == m] for m in methods}
    if x == "sparsity":
        return accuracy_vs_sparsity({m: ([r.sparsity for r in rs], [r.acc for r in rs]) for m, rs in pick.items()},
                                    title=title, dense=dense)
    return accuracy_vs_search_time({m: ([r.search_s for r in rs], [r.acc for r in rs]) for m, rs in pick.items()},
                                   title=title)


def eb_distances(histories: Mapping[str, Sequence[Mapping[str, Any]]], tau: float, title: str = ""):
    """Early-Bird: the largest mask distance to the last q-1 masks against the epoch, one line per
    run (e.g. sparsity), with the threshold tau."""
    fig, axes = figure(w=4.8, h=3.4)
    ax = axes[0, 0]
    for name, hist in histories.items():
        pts = [(h["epoch"], h["max_distance"]) for h in hist if h["max_distance"] is not None]
        ax.plot([e for e, _ in pts], [d for _, d in pts], marker="o", label=name)
    ax.axhline(tau, ls="--", c="gray", lw=1, label=f"tau = {tau:g}")
    ax.set(xlabel="epoch", ylabel="max mask distance", yscale="log", title=title)
    ax.legend(fontsize=7)
    return fig


def per_layer_bars(values: Mapping[str, float], ylabel: str, title: str = ""):
    """One bar per layer (input to output)."""
    fig, axes = figure(w=4.8, h=3.4)
    ax = axes[0, 0]
    ax.bar(range(len(values)), list(values.values()))
    ax.set_xticks(range(len(values)), list(values), fontsize=7)
    ax.set(ylabel=ylabel, title=title, ylim=(0, 1.05))
    return fig
