r"""Memory and time of one training iteration against T (notebook 02, Table S2), for the ``sltt``
study: :class:`ModelFactory`, :class:`RandomDirectInput`, :func:`memory_time_sweep`,
:func:`linear_fit`, :func:`memory_time_summary`, :func:`describe_memory_time`,
:func:`table_s2_memory_time`, :func:`op_count_table`, :func:`op_count_measured`. Re-exported by
:mod:`.runs`, which the notebooks import."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ... import checks
from ...core.models import ARCHITECTURES, NORMS, SHORTCUTS, build
from .analysis import compare_methods, count_backward_ops, op_count_formula
from .common import METHOD_LABELS, MIB, STATE_COPIES, SURROGATES

__all__ = ["ModelFactory", "RandomDirectInput", "memory_time_sweep", "linear_fit", "pick", "memory_time_summary",
           "describe_memory_time", "table_s2_memory_time", "op_count_table", "op_count_measured"]


class ModelFactory:
    """Picklable zero-argument factory of a spiking net for :func:`snnlab.sltt.compare_methods`
    (sltt LIF preset, multi-step). ``surrogate`` (:data:`SURROGATES`) and ``shortcut_from``
    (``preact_resnet18`` only; ignored otherwise) as in :class:`Setup`."""

    def __init__(self, arch: str = "vgg11", num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                 width: float = 0.25, norm: str = "bn", surrogate: str = "rectangle", shortcut_from: str = "input"):

        checks.choice("arch", arch, ARCHITECTURES)
        checks.choice("norm", norm, NORMS)
        checks.positive("width", width)
        checks.choice("surrogate", surrogate, SURROGATES)
        checks.choice("shortcut_from", shortcut_from, SHORTCUTS)
        self.arch, self.num_classes, self.in_channels = arch, num_classes, in_channels
        self.input_size, self.width, self.norm = input_size, width, norm
        self.surrogate, self.shortcut_from = surrogate, shortcut_from

    def __call__(self) -> nn.Module:

        kw = {"shortcut_from": self.shortcut_from} if self.arch == "preact_resnet18" else {}
        return build(self.arch, self.num_classes, in_channels=self.in_channels, input_size=self.input_size,
                     width=self.width, neuron="sltt", norm=self.norm, surrogate=self.surrogate, **kw)

    def __repr__(self) -> str:
        return (f"ModelFactory({self.arch!r}, width={self.width}, input={self.in_channels}x{self.input_size}"
                f"x{self.input_size}, norm={self.norm!r}, surrogate={self.surrogate!r})")


class RandomDirectInput:
    """``T -> (x_seq [T, B, C, H, W], y [B])``: one seeded N(0, 1) image batch, direct-encoded as an
    ``expand``-ed view (the input costs no T-dependent memory)."""

    def __init__(self, batch: int = 8, in_channels: int = 3, input_size: int = 32, num_classes: int = 10,
                 seed: int = 0):
        self.batch = checks.int_at_least("batch", batch, 1)
        self.in_channels, self.input_size, self.num_classes, self.seed = in_channels, input_size, num_classes, seed

    def __call__(self, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.batch, self.in_channels, self.input_size, self.input_size, generator=g)
        y = torch.randint(0, self.num_classes, (self.batch,), generator=g)
        return x.unsqueeze(0).expand(T, *x.shape), y


def memory_time_sweep(factory: Callable[[], nn.Module], inputs: Callable[[int], tuple], Ts: Sequence[int],
                      K: int = 2, repeats: int = 5, warmup: int = 1, loss_fn=None, seed: int = 0,
                      device: str = "cpu", progress: bool = True,
                      baselines: Sequence[str] = ("bptt", "bptt_paper")) -> list[dict[str, Any]]:
    """:func:`snnlab.sltt.compare_methods` (the ``baselines``: fused BPTT and the paper's per-step
    BPTT by default; SLTT, SLTT-K; interleaved timing) for every T, concatenated: one row per
    (method, T). SLTT-K is skipped where K > T."""
    for b in baselines:
        checks.choice("baselines entry", b, ["bptt", "bptt_paper"])


    Ts = [checks.int_at_least("Ts entry", T, 1) for T in Ts]
    K = checks.int_at_least("K", K, 1)
    rows: list[dict[str, Any]] = []
    for T in tqdm(Ts, desc="T", disable=not progress):
        methods = [(b, None) for b in baselines] + [("sltt", None)] + ([("sltt_k", K)] if K <= T else [])
        rows += compare_methods(factory, inputs, T, methods, repeats=repeats, warmup=warmup, loss_fn=loss_fn,
                                seed=seed, device=device)
    return rows


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float]:
    """Least-squares line ``y = slope * x + intercept`` and its coefficient of determination ``r2``
    (NaN when ``ys`` is constant). Needs at least two distinct ``xs``."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(np.unique(x)) < 2:
        raise ValueError(f"xs={list(xs)!r}, ys={list(ys)!r} are invalid; allowed values: equal-length 1-D "
                         "sequences with at least two distinct xs")
    xm, ym = x.mean(), y.mean()
    slope = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    intercept = float(ym - slope * xm)
    ss_tot = float(((y - ym) ** 2).sum())
    ss_res = float(((y - slope * x - intercept) ** 2).sum())
    return {"slope": slope, "intercept": intercept, "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}


def pick(rows: Sequence[Mapping[str, Any]], method: str, T: int) -> Mapping[str, Any] | None:
    return next((r for r in rows if r["method"] == method and r["T"] == T), None)


def memory_time_summary(rows: Sequence[Mapping[str, Any]], T_ref: int = 6) -> dict[str, Any]:
    """Scalars behind the memory and time claims, from :func:`memory_time_sweep` rows (or the
    committed benchmark's ``rows``):

    * ``Ts``; ``saved_mib[method]``: saved-for-backward peak per T (MiB);
    * ``sltt_variation`` / ``sltt_k_variation``: (max - min) / min of that peak across T;
    * ``bptt_fit``: :func:`linear_fit` of BPTT's peak (MiB) against T;
    * ``memory_ratio``: BPTT / SLTT peak per T;
    * ``time_ms[method]`` per T; ``time_ratio_sltt`` (SLTT / BPTT) and ``time_ratio_sltt_k`` per T;
    * ``T_ref`` (the T closest to ``T_ref`` present) and the two time ratios there;
    * with ``"bptt_paper"`` rows (the paper's BPTT), the same against it: ``memory_ratio_paper``,
      ``time_ratio_sltt_paper``, ``time_ratio_sltt_k_paper``, ``time_ratio_sltt_paper_at_ref``,
      ``speedup_sltt_k_paper_at_ref``, ``bptt_paper_fit`` (NaN / empty without those rows);
    * the paper reports *total* GPU memory, not activations: ``total_mib[method]`` models it as
      saved activations + :data:`STATE_COPIES` x ``param_bytes`` (weights, gradients, SGD momentum;
      NaN for rows without ``param_bytes``), with ``memory_ratio_total`` / ``memory_ratio_total_paper``
      (BPTT / SLTT of that total). ``saved_mib`` and ``memory_ratio*`` stay activation-only.
    """
    Ts = sorted({int(r["T"]) for r in rows})
    if len(Ts) < 2:
        raise ValueError(f"rows cover T={Ts}; at least two values of T are needed")
    methods = [m for m in METHOD_LABELS if any(r["method"] == m for r in rows)]
    saved = {m: [(pick(rows, m, T) or {}).get("saved_peak_bytes", float("nan")) / MIB for T in Ts] for m in methods}
    time_ms = {m: [(pick(rows, m, T) or {}).get("time_median_s", float("nan")) * 1e3 for T in Ts] for m in methods}
    state = {m: [STATE_COPIES * (pick(rows, m, T) or {}).get("param_bytes", float("nan")) / MIB for T in Ts]
             for m in methods}
    total = {m: [a + b for a, b in zip(saved[m], state[m])] for m in methods}

    def variation(v: list[float]) -> float:
        v = [x for x in v if not math.isnan(x)]
        return (max(v) - min(v)) / min(v) if v else float("nan")

    def ratio(a: list[float], b: list[float]) -> list[float]:
        return [x / y if y else float("nan") for x, y in zip(a, b)]

    t_ref = min(Ts, key=lambda t: abs(t - T_ref))
    i = Ts.index(t_ref)
    out = {
        "Ts": Ts,
        "saved_mib": saved,
        "total_mib": total,
        "time_ms": time_ms,
        "sltt_variation": variation(saved.get("sltt", [])),
        "sltt_k_variation": variation(saved.get("sltt_k", [])),
        "bptt_fit": linear_fit(Ts, saved["bptt"]),
        "memory_ratio": ratio(saved["bptt"], saved["sltt"]),
        "memory_ratio_total": ratio(total["bptt"], total["sltt"]),
        "time_ratio_sltt": ratio(time_ms["sltt"], time_ms["bptt"]),
        "time_ratio_sltt_k": ratio(time_ms["sltt_k"], time_ms["bptt"]) if "sltt_k" in time_ms else [],
        "T_ref": t_ref,
    }
    out["time_ratio_sltt_at_ref"] = out["time_ratio_sltt"][i]
    out["speedup_sltt_k_at_ref"] = 1.0 / out["time_ratio_sltt_k"][i] if out["time_ratio_sltt_k"] else float("nan")
    paper_b = "bptt_paper" in time_ms
    out["memory_ratio_paper"] = ratio(saved["bptt_paper"], saved["sltt"]) if paper_b else []
    out["memory_ratio_total_paper"] = ratio(total["bptt_paper"], total["sltt"]) if paper_b else []
    out["bptt_paper_fit"] = linear_fit(Ts, saved["bptt_paper"]) if paper_b else {}
    out["time_ratio_sltt_paper"] = ratio(time_ms["sltt"], time_ms["bptt_paper"]) if paper_b else []
    out["time_ratio_sltt_k_paper"] = ratio(time_ms["sltt_k"], time_ms["bptt_paper"]) \
        if paper_b and "sltt_k" in time_ms else []
    out["time_ratio_sltt_paper_at_ref"] = out["time_ratio_sltt_paper"][i] if paper_b else float("nan")
    out["speedup_sltt_k_paper_at_ref"] = 1.0 / out["time_ratio_sltt_k_paper"][i] \
        if out["time_ratio_sltt_k_paper"] else float("nan")
    return out


def describe_memory_time(summary: Mapping[str, Any], name: str, paper: Mapping[str, Any] | None = None) -> str:
    """The verdict of :func:`memory_time_summary` in words, every number from ``summary`` (and the
    paper's Table S2 ``paper``): time of SLTT and SLTT-K relative to both baselines at T_ref, the
    activation and modelled-total memory ratios at the largest T, SLTT's variation across T."""

    t, Tmax = summary["T_ref"], summary["Ts"][-1]
    out = [f"{name}:"]
    if summary["time_ratio_sltt_paper"]:
        out.append(f"at T={t} SLTT takes {summary['time_ratio_sltt_paper_at_ref']:.2f}x the time per iteration "
                   f"of the paper's BPTT (per-step loop) and {summary['time_ratio_sltt_at_ref']:.2f}x the fused "
                   f"BPTT's; SLTT-K is {summary['speedup_sltt_k_paper_at_ref']:.2f}x / "
                   f"{summary['speedup_sltt_k_at_ref']:.2f}x faster than they are.")
        out.append(f"At T={Tmax} the paper's BPTT saves {summary['memory_ratio_paper'][-1]:.1f}x SLTT's activations "
                   f"(fused BPTT: {summary['memory_ratio'][-1]:.1f}x); with weights, gradients and momentum added "
                   f"(modelled total) the ratio is {summary['memory_ratio_total_paper'][-1]:.2f}x.")
    else:
        out.append(f"at T={t} SLTT takes {summary['time_ratio_sltt_at_ref']:.2f}x the fused BPTT's time; no rows "
                   "of the paper's BPTT.")
    out.append(f"SLTT's activations vary by {summary['sltt_variation']:.1%} across T = {summary['Ts']}.")
    if paper:
        i = list(paper["T"]).index(6) if 6 in paper["T"] else -1
        pb, ps = paper["bptt"], paper["sltt"]
        out.append(f"Paper (Table S2, T={paper['T'][i]}): SLTT/BPTT training time {ps['time_h'][i] / pb['time_h'][i]:.2f}, "
                   f"BPTT/SLTT total GPU memory {pb['memory_gb'][i] / ps['memory_gb'][i]:.2f}.")
    return " ".join(out)


def _total_bytes(row: Mapping[str, Any]) -> float:
    """Modelled training memory of a row: saved activations + :data:`STATE_COPIES` x parameters."""
    return row["saved_peak_bytes"] + STATE_COPIES * row.get("param_bytes", float("nan"))


def table_s2_memory_time(rows: Sequence[Mapping[str, Any]], paper: Mapping[str, Any] | None = None):
    """Table S2 analogue for memory and time, one row per T of ``rows`` (or of the paper).

    Ours: saved-for-backward peak (MiB, activations only) per method, the BPTT/SLTT ratio of
    those activations and of the modelled total (activations + weights, gradients and momentum,
    :data:`STATE_COPIES`) for both baselines, time per iteration (ms) per method, SLTT/BPTT time
    ratio against both baselines, peak RSS delta (MiB) and CUDA peak (MiB, NaN on CPU).
    Paper (``table_s2_cifar10``: ``{"T", "bptt": {"memory_gb", "time_h"}, "sltt": {...}}``): total
    GPU memory (GB), training time (h) and the two ratios.
    """

    Ts = sorted({int(r["T"]) for r in rows} | set(paper["T"] if paper else []))
    p_T = list(paper["T"]) if paper else []
    out = []
    for T in Ts:
        row: dict[str, Any] = {"T": T}
        got = {m: pick(rows, m, T) for m in METHOD_LABELS}
        for m, r in got.items():
            row[f"ours {METHOD_LABELS[m]} saved MiB"] = r["saved_peak_bytes"] / MIB if r else float("nan")
        b, s, bp = got["bptt"], got["sltt"], got["bptt_paper"]
        for lab, base in (("BPTT (paper)", bp), ("BPTT", b)):
            ok = base is not None and s is not None
            row[f"ours activations {lab}/SLTT"] = base["saved_peak_bytes"] / s["saved_peak_bytes"] if ok \
                else float("nan")
            row[f"ours modelled total {lab}/SLTT"] = _total_bytes(base) / _total_bytes(s) if ok else float("nan")
        for m, r in got.items():
            row[f"ours {METHOD_LABELS[m]} ms"] = r["time_median_s"] * 1e3 if r else float("nan")
        row["ours time SLTT/BPTT (paper)"] = s["time_median_s"] / bp["time_median_s"] if bp and s else float("nan")
        row["ours time SLTT/BPTT"] = s["time_median_s"] / b["time_median_s"] if b and s else float("nan")
        for m, r in got.items():
            row[f"ours {METHOD_LABELS[m]} RSS MiB"] = r["rss_peak_delta_bytes"] / MIB if r else float("nan")
            cuda = r.get("cuda_peak_bytes") if r else None
            row[f"ours {METHOD_LABELS[m]} CUDA MiB"] = cuda / MIB if cuda is not None else float("nan")
        if T in p_T:
            i = p_T.index(T)
            pb, ps = paper["bptt"], paper["sltt"]
            row.update({"paper BPTT GB": pb["memory_gb"][i], "paper SLTT GB": ps["memory_gb"][i],
                        "paper total GPU mem BPTT/SLTT": pb["memory_gb"][i] / ps["memory_gb"][i],
                        "paper BPTT h": pb["time_h"][i], "paper SLTT h": ps["time_h"][i],
                        "paper time SLTT/BPTT": ps["time_h"][i] / pb["time_h"][i]})
        out.append(row)
    return pd.DataFrame(out).set_index("T")


def op_count_table(d: int, T: int, K: int, batch: int = 1):
    """Appendix C.2 operation counts (:func:`snnlab.sltt.op_count_formula`) of one intermediate
    layer with d neurons over one iteration, for BPTT, SLTT and SLTT-K: backward steps, the
    :math:`d^2` (matmul) and diagonal (elementwise) multiplications, total, per intermediate step,
    and the total relative to BPTT. Deterministic."""


    rows = []
    base = op_count_formula(d, "bptt", T, batch=batch)
    for method, k in (("bptt", None), ("sltt", None), ("sltt_k", K)):
        f = op_count_formula(d, method, T, k, batch=batch)
        rows.append({"method": METHOD_LABELS[method] + (f" (K={k})" if k else ""), "backward steps": f["backward_steps"],
                     "matmul (d^2 terms)": f["matmul"], "elementwise (diagonal)": f["elementwise"],
                     "total": f["total"], "per intermediate step": f["per_intermediate_step"],
                     "saved per step vs BPTT": base["per_intermediate_step"] - f["per_intermediate_step"],
                     "total / BPTT": round(f["total"] / base["total"], 4)})
    return pd.DataFrame(rows).set_index("method")


def op_count_measured(d: int, T: int, K: int, layers: int = 3, batch: int = 1, seed: int = 0):
    """Measured backward multiplications of one intermediate layer against the formula
    (:func:`snnlab.sltt.count_backward_ops`): ``torch.utils.flop_counter`` around the real training
    step (matmul terms only) and the instrumented Algorithms S1/S2 (matmul and elementwise), each
    the set of values over the intermediate layers (one value when they agree)."""


    rows = []
    for method, k in (("bptt", None), ("sltt", None), ("sltt_k", K)):
        r = count_backward_ops(d, T, method, k, layers=layers, batch=batch, seed=seed)
        f, fc, ins = r["formula"], r["flop_counter"], r["instrumented"]
        fc_mm = sorted({fc["backward_matmul_mults"][i] for i in fc["intermediate"]})
        in_mm = sorted({ins["matmul"][i] for i in ins["intermediate"]})
        in_el = sorted({ins["elementwise"][i] for i in ins["intermediate"]})
        rows.append({"method": METHOD_LABELS[method] + (f" (K={k})" if k else ""),
                     "formula matmul": f["matmul"], "flop counter matmul": fc_mm[0] if len(fc_mm) == 1 else fc_mm,
                     "instrumented matmul": in_mm[0] if len(in_mm) == 1 else in_mm,
                     "formula elementwise": f["elementwise"],
                     "instrumented elementwise": in_el[0] if len(in_el) == 1 else in_el,
                     "match": fc_mm == [f["matmul"]] and in_mm == [f["matmul"]] and in_el == [f["elementwise"]]})
    return pd.DataFrame(rows).set_index("method")
