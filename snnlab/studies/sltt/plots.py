"""Plots of the sltt notebooks, each returning a matplotlib Figure: temporal-share heatmaps and
weight-gradient cosines (Lemma 1), epsilon histograms (Eq. S11), the tau sweep, memory and time
against T and their ratios (Table S2), accuracy against T (Table S2) and accuracy bars."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ... import data
from ...record.plotting import PAPER_COLOR, figure, paper_vs_ours
from ...grad.sltt import bptt_sltt_cosine
from .analysis import gradient_components
from .runs import (
    METHOD_COLORS,
    METHOD_LABELS,
    METHOD_STYLE,
    MIB,
    Setup,
    Variant,
    analysis_batch,
    build_model,
    epsilon_support,
    in_support,
    memory_time_summary,
    pick,
    weight_cosines,
)

__all__ = [
    "temporal_share_heatmaps",
    "gradient_cosine_bars",
    "epsilon_histograms",
    "tau_sweep_plot",
    "components_explorer",
    "memory_time_figure",
    "ratio_figure",
    "accuracy_vs_T",
    "accuracy_bars",
]


def temporal_share_heatmaps(gcs: Mapping[str, Any], vmax: float | None = None):
    r"""One heatmap per condition (e.g. "soft, init"): the temporal share
    :math:`\|tm\|/(\|sp\|+\|tm\|)` of :math:`\partial L/\partial u^l[t]` per LIF layer (rows) and step
    (columns), annotated. ``gcs``: name -> :class:`snnlab.sltt.GradientComponents`."""
    n = len(gcs)
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    any_gc = next(iter(gcs.values()))
    L, T = any_gc.spatial_norm.shape
    fig, axes = figure(nrows, ncols, w=max(3.6, 0.55 * T + 2.2), h=max(2.2, 0.45 * L + 1.4))
    top = vmax if vmax is not None else max(float(np.nanmax(g.temporal_share.numpy())) for g in gcs.values())
    for ax, (name, gc) in zip(axes.flat, gcs.items()):
        share = gc.temporal_share.numpy()
        sns.heatmap(share, ax=ax, vmin=0, vmax=max(top, 1e-3), cmap="rocket_r", annot=share.shape[1] <= 12,
                    fmt=".2f", annot_kws={"fontsize": "x-small"}, cbar=True,
                    xticklabels=list(range(1, T + 1)), yticklabels=[f"LIF {i + 1}" for i in range(L)])
        ax.set(title=name, xlabel="time step t")
        ax.tick_params(axis="y", rotation=0)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("temporal share of dL/du[t] (0 = purely spatial)", fontsize="medium")
    return fig


def gradient_cosine_bars(cosines: Mapping[str, Mapping[str, float]], title: str = ""):
    """Grouped bars: cos(BPTT gradient, SLTT gradient) per weight matrix (x) for each condition
    (one colour each). ``cosines``: condition -> {layer label: cos} (see :func:`weight_cosines`)."""
    conds = list(cosines)
    layers = list(next(iter(cosines.values())))
    fig, axes = figure(w=max(4.8, 1.1 * len(layers) + 2.5))
    ax = axes[0, 0]
    x = np.arange(len(layers))
    wdt = 0.8 / max(len(conds), 1)
    lo = 1.0
    for i, c in enumerate(conds):
        vals = [cosines[c].get(layer, float("nan")) for layer in layers]
        lo = min([lo] + [v for v in vals if not math.isnan(v)])
        ax.bar(x + (i - (len(conds) - 1) / 2) * wdt, vals, wdt, label=c)
    ax.set_xticks(x, [lab.split(" ")[0] for lab in layers])
    ax.set_ylim(max(0.0, lo - 0.25 * (1 - lo) - 0.002), 1.0005)
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set(ylabel="cos(BPTT grad, SLTT grad)", xlabel="weight matrix (last: readout)", title=title)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def epsilon_histograms(eps: Mapping[str, torch.Tensor], tau: float, v_th: float = 1.0, bins: int = 60):
    r"""Histogram of :math:`\mathrm{diag}(\epsilon^l[t])` per reset (``eps``: ``"soft"``/``"hard"`` ->
    values), log counts, with the support of :func:`epsilon_support` marked: shaded intervals and
    dashed lines at the point values (Eq. S11 for hard reset)."""
    fig, axes = figure(1, len(eps), w=4.4, sharey=False)
    lam = 1.0 - 1.0 / tau
    edges = np.linspace(-1.75 * lam, 1.25 * lam, bins + 1)
    for ax, (reset, vals) in zip(axes.flat, eps.items()):
        sup = epsilon_support(tau, v_th, reset)
        vals = torch.as_tensor(vals).detach().double().cpu()
        v = vals.numpy()
        ax.hist(np.clip(v, edges[0], edges[-1]), bins=edges, color="#0072b2", alpha=0.85, log=True)
        ax.set_ylim(bottom=0.7)
        for lo, hi in sup["intervals"]:
            ax.axvspan(lo, hi, color="#e69f00", alpha=0.25, lw=0)
        for p in sup["points"]:
            ax.axvline(p, color="#d55e00", ls="--", lw=1)
        inside = float(in_support(vals, sup).double().mean()) if v.size else float("nan")
        eq = "Eq. S11" if reset == "hard" else r"$\lambda(1-V_{th}g')$"
        ax.set(title=f"{reset} reset: {100 * inside:.1f}% in {eq} support", xlabel=r"diag($\epsilon^l[t]$)",
               ylabel="count (log)")
        ax.text(0.02, 0.97, rf"$\lambda$ = 1-1/$\tau$ = {lam:.3f}" + "\nshaded/dashed: allowed values",
                transform=ax.transAxes, va="top", fontsize="x-small")
    return fig


def tau_sweep_plot(rows: Sequence[Mapping[str, Any]], tau_ref: float = 1.1):
    r"""Temporal share (left) and cos(BPTT, SLTT gradient) (right) against :math:`\tau`, one line per
    reset (rows of :func:`tau_sweep`); the paper's :math:`\tau` dotted."""
    fig, axes = figure(1, 2)
    for reset in dict.fromkeys(r["reset"] for r in rows):
        rr = sorted((r for r in rows if r["reset"] == reset), key=lambda r: r["tau"])
        taus = [r["tau"] for r in rr]
        axes[0, 0].plot(taus, [r["mean_temporal_share"] for r in rr], marker="o", label=f"{reset} reset")
        axes[0, 1].plot(taus, [r["cos_all"] for r in rr], marker="o", label=f"{reset} reset")
    for ax in axes.flat:
        ax.axvline(tau_ref, color="0.4", ls=":", lw=1)
    axes[0, 0].set(xlabel=r"$\tau$ (leak $\lambda = 1 - 1/\tau$)", ylabel="mean temporal share (t < T)",
                   title="temporal part of dL/du at init")
    axes[0, 1].set(xlabel=r"$\tau$", ylabel="cos(BPTT grad, SLTT grad)", title="all parameters, at init")
    axes[0, 0].legend(fontsize="small")
    return fig


def components_explorer(tau: float = 1.1, reset: str = "soft", T: int = 6, norm: str = "bn", seed: int = 0,
                        ds=None, n: int = 128, hidden: Sequence[int] = (128, 128)):
    """The interactive view of notebook 01: an untrained MLP with the given ``tau``, reset and norm on
    ``n`` samples of ``ds`` (default ``digits``): temporal-share heatmap beside the per-layer cosine
    between BPTT and SLTT gradients."""
    ds = ds if ds is not None else data.load("digits", "train")
    setup = Setup(tau=tau, hidden=tuple(hidden))
    x_seq, y = analysis_batch(ds, n, T, seed)
    net = build_model(Variant("bptt", T, reset=reset, norm=norm, seed=seed), setup, ds)
    net.train()
    gc = gradient_components(net, x_seq, y, setup.loss_fn())
    cos = weight_cosines(bptt_sltt_cosine(net, x_seq, y, setup.loss_fn()), net)
    fig, axes = figure(1, 2, w=4.6)
    share = gc.temporal_share.numpy()
    sns.heatmap(share, ax=axes[0, 0], vmin=0, vmax=max(0.05, float(np.nanmax(share))), cmap="rocket_r",
                annot=T <= 12, fmt=".2f", annot_kws={"fontsize": "x-small"},
                xticklabels=list(range(1, T + 1)), yticklabels=[f"LIF {i + 1}" for i in range(share.shape[0])])
    axes[0, 0].set(title=f"temporal share, tau={tau:.2f}, {reset} reset", xlabel="t")
    axes[0, 1].bar(range(len(cos)), list(cos.values()), color="#0072b2")
    axes[0, 1].set_xticks(range(len(cos)), [k.split(" ")[0] for k in cos])
    axes[0, 1].set(ylim=(max(0.0, min(cos.values()) - 0.02), 1.0005), title="cos(BPTT, SLTT) per weight")
    return fig


def memory_time_figure(rows: Sequence[Mapping[str, Any]], title: str = ""):
    """Absolute numbers against T, one line per method: saved-for-backward peak (MiB), time per
    iteration (ms, with the interquartile range) and CUDA peak (MiB) when present, else the peak
    RSS delta (MiB)."""
    Ts = sorted({int(r["T"]) for r in rows})
    has_cuda = any(r.get("cuda_peak_bytes") is not None for r in rows)
    fig, axes = figure(1, 3, w=3.9)
    for m in METHOD_LABELS:
        rr = [(T, pick(rows, m, T)) for T in Ts if pick(rows, m, T)]
        if not rr:
            continue
        k = rr[0][1].get("K")
        lab = METHOD_LABELS[m] + (f" (K={k})" if k else "")
        ts = [T for T, _ in rr]
        c = METHOD_COLORS[m]
        st = METHOD_STYLE[m]
        axes[0, 0].plot(ts, [r["saved_peak_bytes"] / MIB for _, r in rr], color=c, label=lab, **st)
        axes[0, 1].errorbar(ts, [r["time_median_s"] * 1e3 for _, r in rr],
                            yerr=[r.get("time_iqr_s", 0.0) * 1e3 / 2 for _, r in rr], color=c,
                            capsize=3, label=lab, **st)
        key = "cuda_peak_bytes" if has_cuda else "rss_peak_delta_bytes"
        axes[0, 2].plot(ts, [(r.get(key) or 0) / MIB for _, r in rr], color=c, label=lab, **st)
    for ax in axes.flat:
        ax.set_xticks(Ts)
    axes[0, 0].set(xlabel="T", ylabel="MiB", title="saved-for-backward peak")
    axes[0, 1].set(xlabel="T", ylabel="ms", title="time per iteration (median, IQR)")
    axes[0, 2].set(xlabel="T", ylabel="MiB", title="CUDA peak" if has_cuda else "peak RSS delta (allocator-cached)")
    axes[0, 0].legend(fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def ratio_figure(sources: Mapping[str, Sequence[Mapping[str, Any]]], paper: Mapping[str, Any] | None = None):
    """Dimensionless comparison with the paper's Table S2, against T, one colour per source of rows
    (e.g. this notebook's run, the committed benchmark), the paper in grey:

    * left, memory BPTT / SLTT. Two different quantities: ours is the saved-activation ratio
      (solid: the paper's per-step BPTT; dotted: the fused BPTT) and a modelled total (dash-dot:
      activations + weights, gradients, momentum; :func:`memory_time_summary`); the paper's is the
      ratio of total GPU memory;
    * middle, time per iteration relative to the paper's BPTT (SLTT solid, SLTT-K dashed), beside
      the paper's SLTT / BPTT training-time ratio;
    * right, the same relative to the fused multi-step BPTT (the stronger baseline; the paper has no
      such number).

    Sources without ``"bptt_paper"`` rows draw only the fused-baseline lines."""
    fig, axes = figure(1, 3, w=4.4)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    mem, tp, tf = axes[0, 0], axes[0, 1], axes[0, 2]
    for i, (name, rows) in enumerate(sources.items()):
        s = memory_time_summary(rows)
        c = colors[i % len(colors)]
        if s["memory_ratio_paper"]:
            mem.plot(s["Ts"], s["memory_ratio_paper"], marker="o", color=c, label=f"{name}: activations")
            if not all(math.isnan(v) for v in s["memory_ratio_total_paper"]):
                mem.plot(s["Ts"], s["memory_ratio_total_paper"], marker="^", ls="-.", color=c,
                         label=f"{name}: modelled total")
            tp.plot(s["Ts"], s["time_ratio_sltt_paper"], marker="o", color=c, label=f"{name}: SLTT")
            if s["time_ratio_sltt_k_paper"]:
                tp.plot(s["Ts"], s["time_ratio_sltt_k_paper"], marker="s", ls="--", color=c, label=f"{name}: SLTT-K")
        mem.plot(s["Ts"], s["memory_ratio"], marker="x", ls=":", color=c, label=f"{name}: activations, fused BPTT")
        tf.plot(s["Ts"], s["time_ratio_sltt"], marker="o", color=c, label=f"{name}: SLTT")
        if s["time_ratio_sltt_k"]:
            tf.plot(s["Ts"], s["time_ratio_sltt_k"], marker="s", ls="--", color=c, label=f"{name}: SLTT-K")
    if paper:
        pt = list(paper["T"])
        pb, ps = paper["bptt"], paper["sltt"]
        mem.plot(pt, [b / s for b, s in zip(pb["memory_gb"], ps["memory_gb"])], marker="D",
                 color=PAPER_COLOR, label="paper: total GPU memory")
        tp.plot(pt, [s / b for b, s in zip(pb["time_h"], ps["time_h"])], marker="D", color=PAPER_COLOR,
                label="paper: SLTT (training time)")
    for ax in (tp, tf):
        ax.axhline(1.0, color="k", lw=0.7)
    all_T = sorted({int(r["T"]) for rows in sources.values() for r in rows} | set(paper["T"] if paper else []))
    for ax in axes.flat:
        ax.set_xticks(all_T)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="xx-small")
    mem.set(xlabel="T", ylabel="BPTT / SLTT", title="memory (ours: activations or modelled;\npaper: total GPU)")
    tp.set(xlabel="T", ylabel="time / BPTT time", title="time vs the paper's BPTT\n(per-step loop)")
    tf.set(xlabel="T", ylabel="time / BPTT time", title="time vs the fused BPTT\n(stronger baseline)")
    return fig


def accuracy_vs_T(summary, paper: Mapping[str, Any] | None = None, ours_title: str = "ours",
                  paper_title: str = "paper: ResNet-18, CIFAR-10 (Table S2)"):
    """Accuracy (%) against T per method: ours (soft reset, BN; mean and std over seeds, left) and
    the paper's Table S2 (right), on separate axes since datasets and networks differ."""
    fig, axes = figure(1, 2 if paper else 1, w=4.4)
    sub = summary[(summary.reset == "soft") & (summary.norm == "bn")]
    for m in METHOD_LABELS:
        d = sub[sub.method == m].sort_values("T")
        if len(d):
            k = int(d.K.iloc[0])
            axes[0, 0].errorbar(d["T"], d.acc_mean, yerr=d.acc_std, marker="o", capsize=3, color=METHOD_COLORS[m],
                                label=METHOD_LABELS[m] + (f" (K={k})" if k else ""))
    axes[0, 0].set(xlabel="T", ylabel="test accuracy (%)", title=ours_title)
    axes[0, 0].legend(fontsize="small")
    if paper:
        for m in ("bptt", "sltt"):
            key = "bptt_paper" if m == "bptt" else m  # the paper's BPTT is the per-step loop
            axes[0, 1].plot(paper["T"], paper[m]["acc"], marker="D", color=METHOD_COLORS[key],
                            label=METHOD_LABELS[key])
        axes[0, 1].set(xlabel="T", ylabel="test accuracy (%)", title=paper_title)
        axes[0, 1].legend(fontsize="small")
    return fig


def accuracy_bars(labels: Sequence[str], ours: Sequence[float], ours_err: Sequence[float] | None = None,
                  paper: Sequence[float | None] | None = None, title: str = "", note: str = "",
                  ylim: tuple[float, float] | None = None):
    """:func:`snnlab.plotting.paper_vs_ours` for accuracies (%), with the y axis zoomed to the bars
    (accuracies near 100 % differ by fractions of a point)."""
    paper = list(paper) if paper is not None else [None] * len(labels)
    fig = paper_vs_ours(labels, ours, paper, ylabel="test accuracy (%)", title=title, ours_err=ours_err, note=note)
    vals = [v for v in list(ours) + [p for p in paper if p is not None] if v is not None and not math.isnan(v)]
    if ylim is None and vals:
        ylim = (max(0.0, min(vals) - 5.0), max(vals) + 3.0)
    if ylim:
        fig.axes[0].set_ylim(*ylim)
    handles, names = fig.axes[0].get_legend_handles_labels()
    keep = [(h, n) for h, n in zip(handles, names) if n != "paper" or any(p is not None for p in paper)]
    fig.axes[0].legend(*zip(*keep), loc="upper left", ncols=2, fontsize="small")
    return fig
