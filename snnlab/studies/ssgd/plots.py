"""Figures of the ssgd notebooks; every function returns a Figure (the notebook saves it)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ...record.plotting import OURS_COLOR, PAPER_COLOR, figure

__all__ = ["walk_timeline", "grad_maps", "error_vs_bth", "leak_traces", "regulariser_tracks", "speed_vs",
           "held_bytes_vs", "memory_saved", "speedup_vs_ideal", "bth_tradeoff", "training_curves",
           "active_per_layer", "init_statistics", "raster", "raster_side"]

STYLE = {"sparse": dict(color=OURS_COLOR), "dense": dict(color=PAPER_COLOR, ls="--"),
         "spikingjelly": dict(color="#2ca02c", ls=":"), "sparse_full_dx": dict(color="#ff7f0e", ls="-.")}


def walk_timeline(walk: dict):
    """Appendix C as a time line: the active times of j and i, and the steps at which delta_j is
    computed (o), computed and written (filled), or not required (x)."""
    steps, T = walk["steps"], walk["T"]
    fig, axes = figure(w=8, h=3.2)
    ax = axes[0, 0]
    tj = sorted({s.source for s in steps if s.source is not None})
    ti = walk["written"]
    ax.scatter(tj, [2] * len(tj), marker="|", s=400, color="k", label="t_j: dS_j/dV_j != 0")
    ax.scatter(ti, [1] * len(ti), marker="|", s=400, color=OURS_COLOR, label="t_i written")
    marks = {"compute": ("o", "none"), "compute and write": ("o", OURS_COLOR), "not required": ("x", PAPER_COLOR)}
    for s in steps:
        m, fc = marks[s.action]
        ax.scatter([s.t], [0], marker=m, s=80, facecolors=fc, edgecolors=OURS_COLOR if m == "o" else None,
                   color=PAPER_COLOR if m == "x" else None)
        ax.annotate(s.expression().split(" = ")[1].replace("dS_j", "g").replace("/dV_j", ""), (s.t, 0),
                    xytext=(0, -18 - 10 * (s.t % 2)), textcoords="offset points", ha="center", fontsize=6)
        if s.prev is not None:
            ax.annotate("", (s.t, 0.15), (s.prev, 0.15), arrowprops=dict(arrowstyle="->", color=PAPER_COLOR))
    ax.set_yticks([0, 1, 2], ["delta_j[t]", "t_i", "t_j"])
    ax.set_xticks(range(T))
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(-0.9, 2.6)
    ax.set_xlabel("t (paper indexing)")
    ax.set_title(f"Appendix C: {walk['updates']} updates instead of T = {T}; o computed, filled written, x not required")
    return fig


def grad_maps(cmp: dict, layer: int = 1, max_rows: int = 64):
    """Fig. 23: full-surrogate weight gradient, the sparse-minus-full difference and the relative error
    |diff| / max|g_full| of one hidden layer (first ``max_rows`` presynaptic neurons)."""
    gf = cmp["full"][layer][:max_rows].numpy()
    d = cmp["diff"][layer][:max_rows].numpy()
    scale = np.abs(gf).max()
    fig, axes = figure(1, 3, w=4.0, h=3.4)
    for ax, img, title, cmap in ((axes[0, 0], gf, "full-surrogate gradient", "RdBu_r"),
                                 (axes[0, 1], d, "sparse - full", "RdBu_r"),
                                 (axes[0, 2], np.abs(d) / scale, "|sparse - full| / max|full|", "magma")):
        lim = np.abs(img).max() or 1.0
        im = ax.imshow(img, aspect="auto", cmap=cmap, vmin=-lim if cmap == "RdBu_r" else 0, vmax=lim)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(title)
        ax.set_xlabel("postsynaptic j")
        ax.set_ylabel("presynaptic i")
    e = cmp["errors"][layer]
    fig.suptitle(f"hidden layer {layer + 1}, B_th = {cmp['b_th']}: max per-weight rel. error (|g| >= 10% max) "
                 f"{e['max_rel_large']:.1%}, max |diff|/max|g| {e['max_rel_to_scale']:.1%} (paper: 10.6%)")
    return fig


def error_vs_bth(rows: Sequence[dict], paper_max: float = 0.106):
    """Gradient error and active fraction against B_th, per hidden layer."""
    fig, axes = figure(1, 2, w=4.4)
    layers = sorted({r["layer"] for r in rows})
    for layer in layers:
        rr = [r for r in rows if r["layer"] == layer]
        b = [r["b_th"] for r in rr]
        axes[0, 0].plot(b, [r["norm_rel"] for r in rr], "o-", label=f"layer {layer}: ||diff||/||g||")
        axes[0, 0].plot(b, [r["max_rel_large"] for r in rr], "s:", label=f"layer {layer}: max per-weight")
        axes[0, 1].plot(b, [r["rho"] for r in rr], "o-", label=f"layer {layer}")
    axes[0, 0].axhline(paper_max, color=PAPER_COLOR, ls="--", label="paper max (Fig. 23)")
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("B_th")
        ax.legend(fontsize="x-small")
    axes[0, 0].set_ylabel("relative error vs full surrogate")
    axes[0, 1].set_ylabel("active fraction rho")
    return fig


def leak_traces(leak: dict, neuron: int = 0, sample: int = 0):
    """Eq. 17 with the printed (-alpha) and the meaningful (+alpha) leak on the same input."""
    fig, axes = figure(1, 1, w=8, h=3)
    ax = axes[0, 0]
    for name, st in (("printed -alpha", leak["printed"]), ("meaningful +alpha", leak["meaningful"])):
        ax.plot(st["v"][:, sample, neuron].numpy(), label=f"{name}: flips on {st['flip_fraction']:.0%} of quiet steps",
                **({"color": PAPER_COLOR} if "printed" in name else {"color": OURS_COLOR}))
    inp = leak["meaningful"]["cur"][:, sample, neuron].numpy()
    ax.vlines(np.nonzero(inp)[0], -0.1, 0.1, color="k", lw=0.8, label="input")
    ax.axhline(1.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("V")
    ax.legend(fontsize="small")
    return fig


def regulariser_tracks(res: dict):
    """E.4: each regulariser trained alone with the meaningful and the printed sign."""
    fig, axes = figure(1, 2, w=4.4)
    for ax, term, ylabel in ((axes[0, 0], "low", "silent (neuron, sample) fraction"),
                             (axes[0, 1], "up", "mean spike count per neuron")):
        for signs, st in res[term].items():
            ax.plot(st, label=signs, **(STYLE["sparse"] if signs == "meaningful" else STYLE["dense"]))
        ax.set_title(f"L_{term} alone")
        ax.set_xlabel("Adam step")
        ax.set_ylabel(ylabel)
        ax.legend()
    return fig


def _by(points, key):
    return [p[key] if key in p else p["methods"] for p in points]


def speed_vs(points: Sequence[dict], x: str = "rho_measured", phase: str = "backward_s", xlabel: str = "",
             bench: Sequence[dict] | None = None):
    """Forward or backward time of every method against activity or hidden size (Figs. 11-14)."""
    fig, axes = figure(w=5)
    ax = axes[0, 0]
    for src, pts, mk in (("this run", points, "o-"), ("committed benchmark", bench, "s:")):
        if not pts:
            continue
        xs = [p[x] for p in pts]
        for m in pts[0]["methods"]:
            ax.plot(xs, [1e3 * p["methods"][m][phase] for p in pts], mk, label=f"{m} ({src})",
                    color=STYLE[m]["color"], alpha=1.0 if src == "this run" else 0.5)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(f"{phase.split('_')[0]} time (ms)")
    ax.legend(fontsize="x-small")
    return fig


def held_bytes_vs(points: Sequence[dict], x: str = "rho_measured", xlabel: str = ""):
    """Bytes held for the backward pass per method (Figs. 15-18 on a CPU)."""
    fig, axes = figure(w=5)
    ax = axes[0, 0]
    xs = [p[x] for p in points]
    for m in points[0]["methods"]:
        ax.plot(xs, [p["methods"][m]["held_bytes"] / 2**20 for p in points], "o-", label=m, **{
            k: v for k, v in STYLE[m].items() if k == "color"})
    ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel("held for backward (MiB)")
    ax.legend(fontsize="small")
    return fig


def memory_saved(points_rho: Sequence[dict], points_hidden: Sequence[dict], paper: Sequence[float]):
    """Fig. 19: 1 - held(sparse)/held(dense loop), against activity and hidden size, beside the official range."""
    fig, axes = figure(1, 2, w=4.2)
    for ax, pts, x, lab in ((axes[0, 0], points_rho, "rho_measured", "active fraction rho"),
                            (axes[0, 1], points_hidden, "n_out", "hidden neurons N")):
        if not pts:
            continue
        ax.plot([p[x] for p in pts], [1 - p["ratios"]["held_bytes_fraction_of_dense"] for p in pts], "o-",
                color=OURS_COLOR, label="ours (held-for-backward bytes)")
        ax.axhspan(paper[0], paper[1], color=PAPER_COLOR, alpha=0.3, label="official code (GPU)")
        ax.set_xlabel(lab)
        ax.set_ylabel("memory saved")
        ax.set_ylim(0, 1)
        ax.legend(fontsize="x-small")
    return fig


def speedup_vs_ideal(points: Sequence[dict], x: str = "rho_measured", xlabel: str = "active fraction rho"):
    """Backward speedup against the dense loop and spikingjelly, beside the ideal 1/rho."""
    fig, axes = figure(w=5)
    ax = axes[0, 0]
    xs = [p[x] for p in points]
    ax.plot(xs, [p["ideal_speedup"] for p in points], "k--", label="ideal 1/rho")
    for base in ("dense", "spikingjelly"):
        key = f"backward_speedup_vs_{base}"
        if key in points[0]["ratios"]:
            ax.plot(xs, [p["ratios"][key] for p in points], "o-", label=f"vs {base}", color=STYLE[base]["color"])
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("backward speedup")
    ax.legend(fontsize="small")
    return fig


def bth_tradeoff(rows: Sequence[dict], paper: dict | None = None):
    """B_th sweep: backward time per epoch and test accuracy (ours), the official SHD sweep beside."""
    fig, axes = figure(1, 2, w=4.3)
    b = [r["b_th"] for r in rows]
    axes[0, 0].plot(b, [r["bwd_s"] for r in rows], "o-", color=OURS_COLOR, label="ours: backward s / epoch")
    axes[0, 1].plot(b, [100 * r["acc"] for r in rows], "o-", color=OURS_COLOR, label="ours: sparse")
    if rows and "dense_acc" in rows[0]:
        axes[0, 1].axhline(100 * rows[0]["dense_acc"], color=OURS_COLOR, ls="--", label="ours: dense (full)")
    if paper:
        axes[0, 1].plot(paper["b_th"], paper["accuracy_sparse"], "s:", color=PAPER_COLOR, label="official SHD sparse")
        axes[0, 1].axhline(paper["accuracy_dense"], color=PAPER_COLOR, ls="--", label="official SHD dense")
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_xlabel("B_th")
        ax.legend(fontsize="x-small")
    axes[0, 0].set_ylabel("seconds")
    axes[0, 1].set_ylabel("test accuracy (%)")
    return fig


def training_curves(runs: Mapping[str, Mapping[str, dict]], key: str = "train_loss", ylabel: str = "loss"):
    """Fig. 10: one panel per dataset, dense and sparse curves of ``history[key]``."""
    fig, axes = figure(1, len(runs), w=4)
    for ax, (name, pair) in zip(axes[0], runs.items()):
        for b, r in pair.items():
            h = r["history"][key]
            ax.plot(range(1, len(h) + 1), h, "o-", label=b, **STYLE[b])
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
    return fig


def active_per_layer(runs: Mapping[str, Mapping[str, dict]], key: str = "train_rho"):
    """Figs. 9 and 22: percentage of active neurons (|V - V_th| < B_th) per hidden layer over training."""
    fig, axes = figure(1, len(runs), w=4)
    for ax, (name, pair) in zip(axes[0], runs.items()):
        for b, r in pair.items():
            h = np.array(r["history"][key])
            for layer in range(h.shape[1]):
                ax.plot(range(1, len(h) + 1), 100 * h[:, layer], **STYLE[b], alpha=0.4 + 0.6 * (layer + 1) / h.shape[1],
                        label=f"{b} layer {layer + 1}")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("% active neurons")
        ax.legend(fontsize="xx-small", ncol=2)
    return fig


def init_statistics(stats: dict):
    """E.3: spike rate and active fraction of each hidden layer at the first forward pass, per init."""
    fig, axes = figure(1, 2, w=4)
    inits = list(stats)
    n = len(stats[inits[0]]["rate"])
    x = np.arange(n)
    for k, init in enumerate(inits):
        axes[0, 0].bar(x + 0.25 * k, stats[init]["rate"], 0.25, label=init)
        axes[0, 1].bar(x + 0.25 * k, stats[init]["median_dist"], 0.25, label=init)
    axes[0, 0].set_ylabel("spike rate")
    axes[0, 1].set_ylabel("median |V - V_th|")
    axes[0, 1].set_yscale("log")
    for ax in axes[0]:
        ax.set_xticks(x + 0.25, [f"layer {i + 1}" for i in range(n)])
        ax.legend(fontsize="small")
    return fig


def raster(spikes: torch.Tensor, title: str = "", dt: float = 1.0):
    """A spike raster ``[T, N]`` (the front view of Figs. 6-8: input index against time)."""
    fig, axes = figure(w=6, h=3.2)
    t, n = torch.nonzero(spikes > 0, as_tuple=True)
    axes[0, 0].scatter((t.float() * dt).numpy(), n.numpy(), s=3, color="k")
    axes[0, 0].set_xlim(0, spikes.shape[0] * dt)
    axes[0, 0].set_ylim(-0.5, spikes.shape[1] - 0.5)
    axes[0, 0].set_xlabel("time (ms)")
    axes[0, 0].set_ylabel("input neuron")
    axes[0, 0].set_title(title)
    return fig


def raster_side(image: torch.Tensor, spikes: torch.Tensor, title: str = "", dt: float = 1.0):
    """Fig. 6's two views of a latency-coded image: the image and the spike time of each pixel."""
    fig, axes = figure(1, 2, w=3.6)
    axes[0, 0].imshow(image.squeeze().numpy(), cmap="gray_r")
    axes[0, 0].set_title("intensity")
    T = spikes.shape[0]
    first = torch.where(spikes.any(0), spikes.float().argmax(0).float() * dt, torch.tensor(float("nan")))
    im = axes[0, 1].imshow(first.reshape(image.squeeze().shape).numpy(), cmap="viridis", vmin=0, vmax=T * dt)
    fig.colorbar(im, ax=axes[0, 1], shrink=0.8, label="spike time (ms)")
    axes[0, 1].set_title("spike time (blank: no spike)")
    fig.suptitle(title)
    return fig
