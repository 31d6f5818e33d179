"""One seaborn theme and the plots shared by several notebooks.

Every plotting function returns a ``matplotlib.figure.Figure`` (never calls ``plt.show``), so a
notebook calls it once with the defaults, saves it with :meth:`snnlab.results.Recorder.savefig`,
and an ipywidgets cell can call it again with other arguments.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ..core import neurons
from ..core import surrogate as sgm

__all__ = [
    "theme",
    "figure",
    "PAPER_COLOR",
    "OURS_COLOR",
    "paper_vs_ours",
    "lif_traces",
    "surrogate_curves",
    "accuracy_per_timestep",
    "training_curves",
    "lif_explorer",
]

PAPER_COLOR = "#7f7f7f"
OURS_COLOR = "#1f77b4"


def theme(context: str = "notebook") -> None:
    """The suite's one look: seaborn whitegrid, colour-blind palette, constrained layouts."""
    sns.set_theme(context=context, style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.constrained_layout.use": True, "figure.dpi": 100, "savefig.dpi": 120,
                         "axes.titlesize": "medium"})


def figure(nrows: int = 1, ncols: int = 1, w: float = 4.2, h: float = 3.2, **kw: Any):
    """A closed Figure with a 2-D ``axes`` array, each panel ``w`` x ``h`` inches: the one way every
    plot function of the suite makes its figure (closed, so the inline backend does not show it
    twice; the notebook displays the returned Figure)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, **kw)
    plt.close(fig)  # returned, not shown twice by the inline backend
    return fig, axes


def paper_vs_ours(
    labels: Sequence[str],
    ours: Sequence[float],
    paper: Sequence[float | None],
    ylabel: str = "",
    title: str = "",
    ours_err: Sequence[float] | None = None,
    note: str = "",
):
    """Grouped bars of the paper's numbers beside ours (a missing paper value is left blank)."""
    fig, axes = figure(w=max(4.2, 0.8 * len(labels) + 2))
    ax = axes[0, 0]
    x = np.arange(len(labels))
    pv = np.array([np.nan if p is None else p for p in paper], dtype=float)
    ax.bar(x - 0.2, pv, 0.4, label="paper", color=PAPER_COLOR)
    ax.bar(x + 0.2, ours, 0.4, yerr=ours_err, label="ours", color=OURS_COLOR, capsize=3)
    ax.set_xticks(x, labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    if note:
        ax.text(0.01, -0.3, note, transform=ax.transAxes, fontsize="small", va="top", wrap=True)
    return fig


def lif_traces(traces: Mapping[str, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, v_threshold: float = 1.0):
    """Membrane potential and spikes per preset/variant.

    ``traces``: name -> (v_seq ``[T]`` membrane after reset, spikes ``[T]``); ``x`` the input ``[T]``.
    """
    n = len(traces)
    fig, axes = figure(n + 1, 1, w=7, h=1.6, sharex=True)
    t = np.arange(len(x))
    axes[0, 0].step(t, x.numpy(), where="mid", color="k")
    axes[0, 0].set_ylabel("input")
    for ax, (name, (v, s)) in zip(axes[1:, 0], traces.items()):
        ax.plot(t, v.numpy(), marker=".", lw=1)
        ax.axhline(v_threshold, ls="--", color="r", lw=0.8)
        st = t[s.numpy() > 0]
        ax.vlines(st, v_threshold, v_threshold * 1.4, color="k", lw=1.5)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    axes[-1, 0].set_xlabel("time step t")
    return fig


def surrogate_curves(surrogates: Mapping[str, Any], lo: float = -1.0, hi: float = 1.0, n: int = 801):
    """Primitive g(x), derivative g'(x) and a log-scale zoom near threshold, x = V - V_th."""
    fig, axes = figure(1, 3, w=4.0)
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    xz = torch.linspace(-0.3, 0.3, n, dtype=torch.float64)
    for name, sg in surrogates.items():
        axes[0, 0].plot(x, sg.primitive(x), label=name)
        axes[0, 1].plot(x, sg.derivative(x), label=name)
        axes[0, 2].plot(xz, sg.derivative(xz).clamp(min=1e-4), label=name)
    axes[0, 0].plot(x, (x >= 0).double(), "k--", lw=0.8, label="Heaviside")
    axes[0, 0].set(title="primitive g(x)", xlabel="x = V - V_th")
    axes[0, 1].set(title="surrogate derivative g'(x)", xlabel="x = V - V_th")
    axes[0, 2].set(title="g'(x) near threshold (log)", xlabel="x = V - V_th", yscale="log", ylim=(1e-3, 2))
    axes[0, 2].legend(fontsize="small")
    return fig


def accuracy_per_timestep(curves: Mapping[str, Sequence[float]], title: str = "", paper: Mapping[str, float] | None = None):
    """Accuracy of the accumulated output after t = 1..T steps, one line per run."""
    fig, axes = figure()
    ax = axes[0, 0]
    for name, acc in curves.items():
        ax.plot(np.arange(1, len(acc) + 1), np.asarray(acc) * 100, marker="o", label=name)
    for name, v in (paper or {}).items():
        ax.axhline(v, ls="--", color=PAPER_COLOR, lw=1)
        ax.text(1, v, f" paper: {name}", va="bottom", fontsize="small", color=PAPER_COLOR)
    ax.set(xlabel="time steps used t", ylabel="test accuracy (%)", title=title)
    lo, hi = ax.get_ylim()
    if hi - lo < 5:  # do not let sampling noise of a few test samples look like a trend
        mid = (lo + hi) / 2
        ax.set_ylim(max(0, mid - 2.5), min(100, mid + 2.5))
    ax.set_xticks(range(1, max(len(a) for a in curves.values()) + 1))
    ax.legend(fontsize="small")
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], title: str = ""):
    """Train loss and test accuracy per epoch for several runs."""
    fig, axes = figure(1, 2)
    for name, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        axes[0, 0].plot(ep, [h["train_loss"] for h in hist], label=name)
        if all("test_acc" in h for h in hist):
            axes[0, 1].plot(ep, [100 * h["test_acc"] for h in hist], label=name)
    axes[0, 0].set(xlabel="epoch", ylabel="train loss", title=title)
    axes[0, 1].set(xlabel="epoch", ylabel="test accuracy (%)")
    axes[0, 1].legend(fontsize="small")
    return fig


def lif_explorer(tau: float = 4 / 3, v_threshold: float = 1.0, reset: str = "hard", surrogate: str = "atan",
                 decay_input: bool = True, T: int = 40, amplitude: float = 1.4, seed: int = 0):
    """One LIF neuron (spikingjelly's LIFNode) under a noisy step input, next to its surrogate.

    The function behind the basics notebook's ipywidgets explorer.
    """
    g = torch.Generator().manual_seed(seed)
    x = amplitude * (torch.arange(T) >= 5).double() + 0.3 * torch.randn(T, generator=g, dtype=torch.float64)
    v, s = neurons.simulate("lth", x, tau=tau, v_threshold=v_threshold, v_reset=0.0 if reset == "hard" else None,
                            decay_input=decay_input, surrogate=surrogate)
    fig, axes = figure(1, 2, w=4.8)
    t = np.arange(T)
    axes[0, 0].plot(t, x.numpy(), color="0.6", lw=1, label="input")
    axes[0, 0].plot(t, v.numpy(), marker=".", label="V (after reset)")
    axes[0, 0].axhline(v_threshold, ls="--", color="r", lw=0.8)
    axes[0, 0].vlines(t[s.numpy() > 0], v_threshold, v_threshold * 1.3, color="k")
    axes[0, 0].set(xlabel="t", title=f"tau={tau:.2f}, {reset} reset: {int(s.sum())} spikes")
    axes[0, 0].legend(fontsize="small")
    sg = sgm.get(surrogate)
    xs = torch.linspace(-1, 1, 401, dtype=torch.float64)
    axes[0, 1].plot(xs, sg.derivative(xs))
    axes[0, 1].set(xlabel="x = V - V_th", title=f"{surrogate}: g'(x)")
    return fig
