"""Plots of the srigl dynamic-sparse-training notebooks (02, 03): accuracy against sparsity
(Table 9), layer widths and fan-in (Figs. 3-4 analogues), ITOP, FLOPs (Fig. 13) and input rates.
Every function returns a matplotlib Figure."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from ...record.plotting import figure
from ...sparsity.opcount import layer_ops
from .dst_runs import SparseRun, pct

__all__ = [
    "plot_accuracy_vs_sparsity",
    "plot_layer_widths",
    "plot_fan_in",
    "itop_panels",
    "plot_itop",
    "plot_gamma_sal",
    "plot_min_salient",
    "dst_explorer",
    "plot_flops",
    "plot_input_rates",
]


def plot_accuracy_vs_sparsity(ours: Mapping[str, Mapping[float, float]], paper: Mapping[str, Mapping[float, float]],
                              ours_dense: float | None = None, paper_dense: float | None = None,
                              paper_title: str = "paper", ours_title: str = "ours", note: str = "",
                              paper_err: Mapping[str, Mapping[float, float]] | None = None):
    """Table 9 analogue: test accuracy (%) vs sparsity, the paper's numbers (left) beside ours
    (right), one line per method; dashed lines are the dense baselines. ``ours`` / ``paper``:
    ``{method label: {sparsity: accuracy %}}``."""

    fig, axes = figure(1, 2, w=4.6, h=3.4)
    for ax, data, dense, title, err in ((axes[0, 0], paper, paper_dense, paper_title, paper_err or {}),
                                        (axes[0, 1], ours, ours_dense, ours_title, {})):
        xs_all = sorted({s for d in data.values() for s in d})
        pos = {s: i for i, s in enumerate(xs_all)}
        for label, d in data.items():
            xs = sorted(d)
            e = [err.get(label, {}).get(s, 0.0) for s in xs] if err else None
            ax.errorbar([pos[s] for s in xs], [d[s] for s in xs], yerr=e, marker="o", capsize=3, label=label)
        if dense is not None:
            ax.axhline(dense, ls="--", color="k", lw=1, label="dense")
        ax.set_xticks(range(len(xs_all)), [pct(s) for s in xs_all])
        ax.set(xlabel="sparsity", ylabel="test accuracy (%)", title=title)
    axes[0, 0].legend(fontsize="small")
    if note:
        fig.suptitle(note, fontsize="small")
    return fig


def plot_layer_widths(widths: Mapping[str, Mapping[str, int]], n_out: Mapping[str, int], title: str = ""):
    """Fig. 11 analogue: active neurons per layer (bars per method) against the dense width."""
    layers = list(n_out)

    fig, axes = figure(w=max(4.2, 1.3 * len(layers) + 2))
    ax = axes[0, 0]
    x = np.arange(len(layers))
    n = len(widths) + 1
    wbar = 0.8 / n
    ax.bar(x - 0.4 + wbar / 2, [n_out[k] for k in layers], wbar, color="0.75", label="dense width")
    for i, (label, wd) in enumerate(widths.items(), start=1):
        ax.bar(x - 0.4 + wbar / 2 + i * wbar, [wd[k] for k in layers], wbar, label=label)
    ax.set_xticks(x, [f"L{i + 1}" for i in range(len(layers))])
    ax.set(xlabel="layer", ylabel="active neurons", title=title)
    ax.legend(fontsize="small")
    return fig


def plot_fan_in(fan_in: Mapping[str, Mapping[str, Sequence[int]]], title: str = ""):
    """Fig. 12 analogue: fan-in of every active neuron per layer (dots, box: quartiles and median,
    crimson line: mean), one column per method."""
    methods = list(fan_in)
    layers = list(next(iter(fan_in.values())))

    fig, axes = figure(1, len(layers), w=3.2, h=3.2)
    rng = np.random.default_rng(0)
    for j, layer in enumerate(layers):
        ax = axes[0, j]
        for i, mth in enumerate(methods):
            v = np.asarray([f for f in fan_in[mth][layer] if f > 0])
            if v.size == 0:
                continue
            ax.boxplot([v], positions=[i], widths=0.5, showfliers=False)
            ax.scatter(i + rng.uniform(-0.2, 0.2, v.size), v, s=4, alpha=0.4)
            ax.plot([i - 0.3, i + 0.3], [v.mean()] * 2, color="crimson", lw=1.5)
        ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right")
        ax.set(title=f"L{j + 1}", ylabel="fan-in (active inputs)" if j == 0 else "")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def itop_panels(runs: Mapping[tuple[str, float], SparseRun], labels: Sequence[str], sparsities: Sequence[float],
                extra: Mapping[float, Mapping[str, SparseRun]] | None = None) -> dict:
    """The ``panels`` of :func:`plot_itop`: one panel per sparsity, one ITOP curve per label (each
    curve held to the end of training), plus the ``extra`` runs of a sparsity (e.g. a control)."""
    def curve(r: SparseRun):
        h = r.dst_history
        return [x["step"] for x in h] + [r.steps], [x["itop"] for x in h] + [h[-1]["itop"]]

    return {f"{100 * s:g}% sparsity": {**{lbl: curve(runs[(lbl, s)]) for lbl in labels},
                                       **{lbl: curve(r) for lbl, r in (extra or {}).get(s, {}).items()}}
            for s in sparsities}


def plot_itop(panels: Mapping[str, Mapping[str, tuple[Sequence[int], Sequence[float]]]],
              stop_step: float | None = None, densities: Mapping[str, float] | None = None, title: str = ""):
    """Figs. 14-17 analogue: ITOP rate (fraction of weights ever active) vs training step, one panel
    per entry of ``panels`` (``{panel title: {run label: (steps, itop)}}``); ``densities``
    (``{panel title: density}``) draws the initial density, ``stop_step`` when the mask froze."""

    fig, axes = figure(1, len(panels), w=4.6, h=3.4)
    for ax, (ptitle, curves) in zip(axes[0], panels.items()):
        for label, (steps, itop) in curves.items():
            ax.plot(steps, itop, drawstyle="steps-post", label=label)
        if densities and ptitle in densities:
            ax.axhline(densities[ptitle], ls="--", color="0.5", lw=0.8, label="density")
        if stop_step is not None:
            ax.axvline(stop_step, ls=":", color="k", lw=1, label="mask frozen")
        ax.set(xlabel="training step", ylabel="ITOP rate", title=ptitle, ylim=(0, None))
        ax.legend(fontsize="x-small", loc="lower right")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def plot_gamma_sal(acc: Mapping[float, float], baselines: Mapping[str, float], sparsity: float, title: str = ""):
    """Fig. 8 analogue: test accuracy (%) of SRigL with ablation against :math:`\\gamma_{sal}`
    (``acc``: ``{gamma: accuracy %}``) at one sparsity, with horizontal lines for the runs that do
    not depend on it (``baselines``: ``{label: accuracy %}``, e.g. SRigL without ablation, RigL)."""
    fig, axes = figure(w=4.6, h=3.4)
    ax = axes[0, 0]
    gs = sorted(acc)
    ax.plot(gs, [acc[g] for g in gs], marker="o", label="SRigL w/ ablation")
    for i, (label, a) in enumerate(baselines.items()):
        ax.axhline(a, ls=("--", ":", "-.")[i % 3], color=f"C{i + 1}", lw=1.2, label=label)
    ax.set(xlabel=r"$\gamma_{sal}$", ylabel="test accuracy (%)", title=title or f"{pct(sparsity)} sparsity")
    ax.legend(fontsize="small")
    return fig


def plot_min_salient(table, title: str = ""):
    """Fig. 10 analogue: a heatmap of the minimum salient weights per neuron (rows: layers, columns:
    :math:`\\gamma_{sal}`; ``table`` from :func:`snnlab.studies.srigl.dst_runs.min_salient_table`),
    each cell annotated; the fan-in budget ``K/n_out`` is in the row labels."""
    cols = [c for c in table.columns if c.startswith("gamma=")]
    vals = table[cols].to_numpy(dtype=float)
    fig, axes = figure(w=1.0 * len(cols) + 2.6, h=0.55 * len(table) + 1.6)
    ax = axes[0, 0]
    ax.imshow(vals, cmap="viridis", aspect="auto")
    ax.grid(False)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            ax.text(j, i, f"{int(vals[i, j])}", ha="center", va="center", color="w" if vals[i, j] < vals.max() / 2 else "k")
    ax.set_xticks(range(len(cols)), [c.split("=", 1)[1] for c in cols])
    ax.set_yticks(range(len(table)), [f"{k} (K/n={int(b)}{'' if a else ', never ablated'})"
                                      for k, b, a in zip(table.index, table["K/n_out"], table["ablated"])])
    ax.set(xlabel=r"$\gamma_{sal}$", title=title or "minimum salient weights per neuron")
    return fig


def dst_explorer(runs: Mapping[tuple[str, float], SparseRun], label: str, sparsity: float):
    """Fan-in distribution per layer and ITOP curve of one run: the notebook's widget callback."""
    run = runs[(label, sparsity)]
    layers = list(run.fan_in)

    fig, axes = figure(1, len(layers) + 1, w=3.0, h=2.8)
    for j, k in enumerate(layers):
        v = np.asarray([f for f in run.fan_in[k] if f > 0])
        axes[0, j].hist(v, bins=min(30, max(1, len(set(v.tolist())))))
        axes[0, j].set(title=f"L{j + 1}: {len(v)}/{run.n_out[k]} neurons", xlabel="fan-in")
    h = run.dst_history
    axes[0, -1].plot([r["step"] for r in h], [r["itop"] for r in h], drawstyle="steps-post")
    axes[0, -1].set(title=f"{label} {pct(sparsity)}: acc {100 * run.acc:.1f}%", xlabel="step", ylabel="ITOP")
    return fig


def plot_input_rates(runs: Mapping[tuple[str, float], Any], title: str = ""):
    """Input firing rate of every spike-fed layer vs sparsity, one line per method (dashed: dense)."""

    dense = [r for (lbl, s), r in runs.items() if lbl == "dense"]
    first = next(iter(runs.values()))
    names = [o["name"] if isinstance(o, Mapping) else o.name for o in first.ops]
    layers = [i for i, n in enumerate(names) if layer_ops(first.ops)[i].spiking_input]

    fig, axes = figure(1, max(1, len(layers)), w=3.6, h=3.2)
    labels = list(dict.fromkeys(lbl for lbl, _ in runs if lbl != "dense"))
    for ax, i in zip(axes[0], layers):
        for lbl in labels:
            pts = sorted((s, layer_ops(r.ops)[i].input_rate) for (l2, s), r in runs.items() if l2 == lbl)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=lbl)
        if dense:
            ax.axhline(layer_ops(dense[0].ops)[i].input_rate, ls="--", color="k", lw=1, label="dense")
        ax.set(title=f"input of L{i + 1}", xlabel="sparsity", ylabel="firing rate (spikes / neuron / step)")
    axes[0, 0].legend(fontsize="x-small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.set_layout_engine("constrained")
    return fig


def plot_flops(rows: Sequence[Mapping[str, Any]], title: str = ""):
    """Fig. 13 analogue. ``rows``: :func:`flops_rows`. Left: accuracy vs training operations
    (weights x spikes); middle: training operations vs sparsity; right: inference operations vs
    sparsity. Colour: method; line style: convention (solid weights x spikes, dashed weights only,
    dotted spiking backward)."""

    fig, axes = figure(1, 3, w=4.5, h=3.6)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colors = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    styles = {"train_spikes": "-", "train_weights": "--", "train_snn": ":"}
    sparse_methods = [m for m in methods if m != "dense"]
    labelled = sparse_methods[-1] if sparse_methods else None
    for m in methods:
        rs = sorted((r for r in rows if r["method"] == m), key=lambda r: r["sparsity"])
        c = colors[m]
        axes[0, 0].plot([r["train_spikes"] for r in rs], [r["acc"] for r in rs], marker="o", color=c, label=m)
        if m == "dense":
            continue
        if m == labelled:
            for r in rs:
                axes[0, 0].annotate(f"{100 * r['sparsity']:g}%", (r["train_spikes"], r["acc"]), fontsize=7,
                                    xytext=(3, -9), textcoords="offset points", color=c)
        s = [r["sparsity"] for r in rs]
        for key, ls in styles.items():
            axes[0, 1].plot(s, [r[key] for r in rs], ls=ls, marker="o" if ls == "-" else None, color=c)
        axes[0, 2].plot(s, [r["inf_spikes"] for r in rs], marker="o", color=c, label=m)
        axes[0, 2].plot(s, [r["inf_weights"] for r in rs], ls="--", color=c)
    axes[0, 0].set(xscale="log", xlabel="training ops / dense training ops", ylabel="test accuracy (%)", title=title)
    axes[0, 0].legend(fontsize="x-small")
    for ax, name in ((axes[0, 1], "training"), (axes[0, 2], "inference")):
        ax.set(xlabel="sparsity", ylabel=f"{name} ops / dense", yscale="log", title=f"{name} operations")
        ax.axhline(1, color="k", lw=0.8)
    handles = [Line2D([], [], color="k", ls=ls, label=lbl) for ls, lbl in
               (("-", "weights x spikes"), ("--", "weights only"), (":", "spiking backward"))]
    axes[0, 1].legend(handles=handles, fontsize="x-small", loc="lower left")
    axes[0, 2].legend(handles=[Line2D([], [], color=colors[m], label=m) for m in methods if m != "dense"]
                      + handles[:2], fontsize="x-small", loc="lower left")
    fig.set_layout_engine("constrained")
    return fig
