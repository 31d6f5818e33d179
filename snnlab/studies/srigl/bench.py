r"""Measurement side of the condensed-linear benchmark (SRigL, Lasby et al. 2024, Appendices I, J).

One fully-connected layer (default 3072 -> 768, float32: ViT-B/16's last MLP projection, the layer
of Figs. 18-21) in every representation the paper compares, timed for online inference. Every
baseline is timed through each of its candidate implementations (:data:`CANDIDATES`), and the
baseline's time in a cell is the **fastest candidate's** median (the strongest baseline; the
winner is recorded per cell)::

    dense         fastest of dense_linear (nn.Linear / F.linear: the paper's own baseline),
                  dense_addmm (torch.addmm with the weight pre-transposed to a contiguous [n_in, n_out]),
                  dense_mm (torch.mm with that weight, bias added in place) and, at batch 1,
                  dense_addmv (torch.addmv with W [n_out, n_in])
    csr           fastest of csr_addmm (torch.sparse_csr_tensor of the unstructured top-K |W|, what
                  RigL keeps, times x^T) and, at batch 1, csr_addmv
    structured    fastest of the dense candidates over the neurons SRigL keeps (ablated rows
                  removed): structured_linear, structured_addmm, structured_mm, structured_addmv
    condensed     CondensedLinear (Appendix F: values + int32 column indices [n_kept, k]);
                  the native C kernel when native_kernel_available()
    condensed_int64  the same with int64 indices
    condensed_torch  the same layer through pure torch ops (index_select+mul+sum at batch 1,
                  F.embedding_bag above): what a machine without the native kernel gets

The fastest-of choice is made after timing, on the medians: it slightly favours the baselines (the
least of several noisy medians is biased low), never the condensed layer.

The mask is SRigL-style one-shot magnitude selection with neuron ablation
(:func:`snnlab.sparsity.dst.srigl_mask_from_weight`) on ``nn.Linear``'s iid init; the paper used a
trained ViT-B/16 layer, which is not available offline. K = round((1 - sparsity) n_out n_in)
non-zeros in every representation.

Timing (:func:`run_cpu`): for every (threads, sparsity, batch) cell every method is timed in
``rounds`` rounds in shuffled order with :func:`snnlab.bench.time_fn` (``warmup`` untimed calls,
``repeats`` timed ones), and the repeats are pooled; the reported number is the median (seconds).
Shuffling spreads the load of other processes on a shared machine over all methods alike.
Outputs are checked against the dense masked layer before timing (``max_abs_err``).

The result is a JSON-able dict (the schema of ``benchmarks/results/condensed_linear_cpu.json``)::

    {"benchmark", "paper", "appendix", "quick", "git_commit", "git_dirty", "machine", "config",
     "native_kernel", "layers": {str(sparsity): {n_kept, fan_in_k, bytes, byte_ratio_dense_over, ...}},
     "measurements": [{threads, sparsity, batch, method, median_s, iqr_s, min_s, n, max_abs_err, winner}],
     "loadavg_per_threads", "targets", "compile", "wall_s"}

``measurements`` holds one row per timed candidate (``winner`` None) and one derived row per
baseline (``dense``, ``csr``, ``structured``) whose statistics are its winning candidate's and whose
``winner`` names that candidate.

:func:`targets` computes the paper's headline (90% sparsity, batch 1: condensed 3.4x faster than
dense and 2.5x faster than CSR; the targets are read from papers/srigl/paper.yaml, where their
provenance says they are not numbers printed in the paper); :func:`winners` lists the fastest
candidate of each baseline per cell; :func:`frame`, :func:`speedups`, :func:`fastest_at_batch` and
:func:`condensed_losses` turn a result into tables. :func:`run_device` is the Fig. 21 variant for a
CUDA device (batch 1, 256, 2048; no native kernel there, the condensed layer runs on torch ops).
``benchmarks/condensed_linear.py`` is the command-line front end that writes the committed JSON.
"""

from __future__ import annotations

import json
import numbers
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

import pandas as pd

from ... import checks
from ...kernels import build
from ...paths import REPO_ROOT
from ...record import params
from ...record.bench import Timing, environment, machine_info, time_fn
from ...sparsity import condensed
from ...sparsity.dst import srigl_mask_from_weight
from ...sparsity.masks import fan_in_counts
from .bench_tables import (ablation_summary, byte_summary, check_stat, compile_table, describe, frame,
                           layer_table, structured_slower_than_dense, thread_scaling, winners)

__all__ = [
    "N_IN",
    "N_OUT",
    "TARGETS",
    "PAPER_METHODS",
    "COMMITTED_JSON",
    "loadavg",
    "cpu_flags",
    "validate",
    "build_layers",
    "methods_for",
    "check_outputs",
    "run_cpu",
    "median",
    "select",
    "targets",
    "try_compile",
    "run_device",
    "load_committed",
    "describe",
    "layer_table",
    "advantage_by_batch",
    "structured_vs_condensed",
    "compile_table",
    "frame",
    "speedups",
    "fastest_at_batch",
    "CANDIDATES",
    "thread_scaling",
    "structured_slower_than_dense",
    "byte_summary",
    "ablation_summary",
    "baseline_rows",
    "baseline",
    "winners",
    "condensed_losses",
]

N_IN, N_OUT = 3072, 768
#: the headline targets at 90% sparsity, batch 1, read from papers/srigl/paper.yaml (claims
#: speedup_vs_dense / speedup_vs_csr): NOT numbers printed in the appendix; see their provenance there
TARGETS = {"dense_over_condensed": float(params.claim_spec("srigl", "speedup_vs_dense")["min_speedup"]),
           "csr_over_condensed": float(params.claim_spec("srigl", "speedup_vs_csr")["min_speedup"])}
#: the four representations of Figs. 18-20
PAPER_METHODS = ("dense", "csr", "structured", "condensed")
#: the candidate implementations timed for each baseline; the baseline is the fastest of them per cell
#: (``*_addmv`` at batch 1 only; ``dense_linear`` = nn.Linear is the paper's own dense baseline)
CANDIDATES = {
    "dense": ("dense_linear", "dense_addmm", "dense_mm", "dense_addmv"),
    "csr": ("csr_addmm", "csr_addmv"),
    "structured": ("structured_linear", "structured_addmm", "structured_mm", "structured_addmv"),
}
COMMITTED_JSON = REPO_ROOT / "benchmarks" / "results" / "condensed_linear_cpu.json"


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages, or None where the OS has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_flags() -> list[str]:
    """The CPU's SIMD flags (avx*, fma*, amx*) from /proc/cpuinfo (empty where unavailable)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    except OSError:
        pass
    return []


def _int_list(name: str, v: Any, lo: int) -> None:
    if not isinstance(v, (list, tuple)) or not v or not all(checks.is_int(x) and x >= lo for x in v):
        raise ValueError(f"{name}={v!r} is invalid; allowed values: a non-empty list of integers >= {lo}")


def validate(
    sparsities: Sequence[float] = (0.9,),
    batches: Sequence[int] = (1,),
    threads: Sequence[int] = (1,),
    rounds: int = 1,
    repeats: int = 2,
    warmup: int = 0,
    gamma_sal: float = 0.95,
    n_in: int = N_IN,
    n_out: int = N_OUT,
    headline: bool = False,
) -> None:
    """Raise ValueError naming the first bad argument (and the allowed values) of a benchmark run.
    ``headline=True`` also requires the cell of the paper's headline: sparsity 0.9 and batch 1."""
    if not isinstance(sparsities, (list, tuple)) or not sparsities or not all(
        isinstance(s, numbers.Real) and not isinstance(s, bool) and 0 < s < 1 for s in sparsities
    ):
        raise ValueError(f"sparsities={sparsities!r} is invalid; allowed values: a non-empty list of numbers in (0, 1)")
    _int_list("batches", batches, 1)
    _int_list("threads", threads, 1)
    for name, v, lo in (("rounds", rounds, 1), ("repeats", repeats, 2), ("warmup", warmup, 0),
                        ("n_in", n_in, 1), ("n_out", n_out, 1)):
        if not checks.is_int(v) or v < lo:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: integers >= {lo}")
    if isinstance(gamma_sal, bool) or not isinstance(gamma_sal, numbers.Real) or not 0 <= gamma_sal <= 1:
        raise ValueError(f"gamma_sal={gamma_sal!r} is out of range; allowed values: 0 <= gamma_sal <= 1")
    if headline and 0.9 not in sparsities:
        raise ValueError(f"sparsities={sparsities!r} must include 0.9 (the paper's headline cell)")
    if headline and 1 not in batches:
        raise ValueError(f"batches={batches!r} must include 1 (online inference, the paper's headline cell)")


def build_layers(sparsity: float, gamma_sal: float = 0.95, seed: int = 0, n_in: int = N_IN,
                 n_out: int = N_OUT) -> dict:
    """Every representation of one layer [n_out, n_in] at one sparsity, plus their byte counts.

    Returns a dict with ``info`` (JSON-able: budget, n_kept, ablated fraction, fan-in k, bytes and
    the dense/method byte ratios: the memory-traffic limit of the batch-1 speedup) and the layers:
    ``dense``, ``masked`` (W * mask), ``csr`` (sparse CSR of the unstructured top-K), ``bias``,
    ``structured`` (kept rows only), ``kept`` (int64 [n_kept]), ``cond32``, ``cond64``,
    ``cond_gather``, ``cond_ebag`` (CondensedLinear with int32 / int64 indices / torch backends).
    """
    validate([sparsity], gamma_sal=gamma_sal, n_in=n_in, n_out=n_out)
    torch.manual_seed(seed)
    dense = torch.nn.Linear(n_in, n_out)
    w, b = dense.weight.detach(), dense.bias.detach()
    density = 1.0 - sparsity
    budget = max(1, int(round(density * n_in * n_out)))
    mask = srigl_mask_from_weight(w, density, gamma_sal=gamma_sal)
    counts = fan_in_counts(mask)
    kept = (counts > 0).nonzero().reshape(-1)
    k = int(counts[kept[0]])

    masked = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        masked.weight.copy_(w * mask)
        masked.bias.copy_(b)

    unstructured = torch.zeros(n_out * n_in, dtype=torch.bool)
    unstructured[w.abs().flatten().topk(budget).indices] = True
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        csr = (w * unstructured.view(n_out, n_in)).to_sparse_csr()

    structured = torch.nn.Linear(n_in, kept.numel())
    with torch.no_grad():
        structured.weight.copy_((w * mask)[kept])
        structured.bias.copy_(b[kept])

    cond32 = condensed.CondensedLinear.from_dense(masked, mask, index_dtype=torch.int32)
    cond64 = condensed.CondensedLinear.from_dense(masked, mask, index_dtype=torch.int64)
    cond_gather = condensed.CondensedLinear.from_dense(masked, mask, backend="gather")
    cond_ebag = condensed.CondensedLinear.from_dense(masked, mask, backend="embedding_bag")

    def nbytes(*ts):
        return int(sum(t.numel() * t.element_size() for t in ts))

    dense_bytes = nbytes(w, b)
    layer_bytes = {
        "dense": dense_bytes,
        "csr": nbytes(csr.values(), csr.col_indices(), csr.crow_indices(), b),
        "structured": nbytes(structured.weight, structured.bias),
        "condensed": cond32.nbytes(),
        "condensed_int64": cond64.nbytes(),
    }
    info = {
        "sparsity": sparsity,
        "budget_nnz": budget,
        "n_kept": int(kept.numel()),
        "ablated_fraction": round(1 - kept.numel() / n_out, 4),
        "fan_in_k": k,
        "nnz_condensed": int(kept.numel() * k),
        "nnz_csr": int(csr.values().numel()),
        "bytes": layer_bytes,
        "byte_ratio_dense_over": {name: round(dense_bytes / v, 3) for name, v in layer_bytes.items()},
    }
    return {
        "info": info,
        "dense": dense,
        "masked": masked,
        "csr": csr,
        "bias": b,
        "structured": structured,
        "kept": kept,
        "cond32": cond32,
        "cond64": cond64,
        "cond_gather": cond_gather,
        "cond_ebag": cond_ebag,
    }


def _dense_candidates(prefix: str, linear: torch.nn.Linear, batch: int) -> dict:
    """The candidate implementations of one dense product y = x W^T + b (see :data:`CANDIDATES`)."""
    w, b = linear.weight.detach(), linear.bias.detach()
    wt = w.t().contiguous()  # [n_in, n_out], made once (not per call)
    m = {
        f"{prefix}_linear": linear,
        f"{prefix}_addmm": lambda x: torch.addmm(b, x, wt),
        f"{prefix}_mm": lambda x: torch.mm(x, wt).add_(b),
    }
    if batch == 1:
        m[f"{prefix}_addmv"] = lambda x: torch.addmv(b, w, x[0]).unsqueeze(0)
    return m


def methods_for(layers: dict, batch: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Every timed candidate: name -> callable x [batch, n_in] -> y [batch, n_out or n_kept] (see
    the module docstring; the ``*_addmv`` candidates exist at batch 1 only)."""
    csr, bias = layers["csr"], layers["bias"]
    m = {
        **_dense_candidates("dense", layers["dense"], batch),
        "csr_addmm": lambda x: torch.addmm(bias.unsqueeze(1), csr, x.t()).t(),
        **_dense_candidates("structured", layers["structured"], batch),
        "condensed": layers["cond32"],
        "condensed_int64": layers["cond64"],
        "condensed_torch": layers["cond_gather"] if batch == 1 else layers["cond_ebag"],
    }
    if batch == 1:
        m["csr_addmv"] = lambda x: torch.addmv(bias, csr, x[0]).unsqueeze(0)
    return m


def check_outputs(layers: dict, methods: dict, x: torch.Tensor) -> dict[str, float]:
    """max |method(x) - reference| per method: the dense candidates against the dense layer, CSR
    against CSR's own dense form, every SRigL method against the dense masked layer (its kept rows)."""
    ref = layers["masked"](x)
    kept = layers["kept"]
    dense_ref = F.linear(x, layers["dense"].weight, layers["bias"])
    csr_ref = F.linear(x, layers["csr"].to_dense(), layers["bias"])
    err = {}
    for name, f in methods.items():
        y = f(x)
        target = dense_ref if name.startswith("dense") else csr_ref if name.startswith("csr") else ref[:, kept]
        err[name] = float((y - target).abs().max())
    return err


def baseline_rows(rows: Sequence[dict]) -> list[dict]:
    """The derived row of each baseline of :data:`CANDIDATES` among one cell's candidate ``rows``
    (measurement dicts): a copy of its fastest candidate's row (least median), renamed to the
    baseline, with ``winner`` = the candidate's name."""
    by_name = {r["method"]: r for r in rows}
    out = []
    for base, cands in CANDIDATES.items():
        present = [by_name[c] for c in cands if c in by_name]
        if present:
            best = min(present, key=lambda r: r["median_s"])
            out.append({**best, "method": base, "winner": best["method"]})
    return out


def run_cpu(
    sparsities: Sequence[float] = (0.8, 0.9, 0.95, 0.99),
    batches: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    threads: Sequence[int] = (1, 2),
    rounds: int = 4,
    repeats: int = 25,
    warmup: int = 5,
    gamma_sal: float = 0.95,
    seed: int = 0,
    n_in: int = N_IN,
    n_out: int = N_OUT,
    quick: bool = False,
    compile: bool = False,
    compile_budget: float = 120.0,
    log: Callable[[str], Any] | None = print,
) -> dict:
    """Time every method for every (threads, sparsity, batch) cell; returns the result dict of the
    module docstring. ``compile=True`` (and not ``quick``) also tries ``torch.compile`` at 90%
    sparsity (:func:`try_compile`). ``log`` receives one line per cell (None: silent). The torch
    thread count is restored afterwards."""
    validate(list(sparsities), list(batches), list(threads), rounds, repeats, warmup, gamma_sal, n_in, n_out)
    say = log or (lambda s: None)
    sparsities, batches, threads = list(sparsities), list(batches), list(threads)
    rng = random.Random(seed)
    t_start = time.time()
    native = condensed.native_kernel_available()
    env = environment({"seed": seed})
    result: dict = {
        "benchmark": "condensed_linear_cpu",
        "paper": "srigl",
        "appendix": "I",
        "quick": bool(quick),
        **{k: env[k] for k in ("git_commit", "git_dirty", "sources_hash")},
        "machine": {**env["machine"], "cpu_flags": cpu_flags(), "loadavg_start": loadavg()},
        "config": {
            "n_in": n_in,
            "n_out": n_out,
            "dtype": "float32",
            "sparsities": sparsities,
            "batches": batches,
            "threads": threads,
            "rounds": rounds,
            "repeats_per_round": repeats,
            "warmup": warmup,
            "gamma_sal": gamma_sal,
            "seed": seed,
            "weights": "nn.Linear default init (iid uniform); SRigL-style one-shot magnitude mask with ablation",
            "timing": "median of pooled repeats (rounds x repeats, methods shuffled per round), inference_mode",
        },
        "native_kernel": native,
        "layers": {},
        "measurements": [],
    }
    if not native:
        result["native_kernel_error"] = build.status("condensed")
    all_layers = {}
    for s in sparsities:
        all_layers[s] = build_layers(s, gamma_sal, seed, n_in, n_out)
        result["layers"][str(s)] = all_layers[s]["info"]
        say(f"sparsity {s}: {all_layers[s]['info']}")

    threads_before = torch.get_num_threads()
    try:
        for nt in threads:
            torch.set_num_threads(nt)
            load0 = loadavg()
            for s in sparsities:
                layers = all_layers[s]
                for B in batches:
                    x = torch.randn(B, n_in, generator=torch.Generator().manual_seed(B))
                    with torch.inference_mode():
                        methods = methods_for(layers, B)
                        errors = check_outputs(layers, methods, x)
                        pooled: dict[str, list[float]] = {name: [] for name in methods}
                        for _ in range(rounds):
                            order = list(methods)
                            rng.shuffle(order)
                            for name in order:
                                f = methods[name]
                                tm = time_fn(lambda: f(x), repeats=repeats, warmup=warmup)
                                pooled[name].extend(tm.times)
                    timed = {name: Timing.of(times) for name, times in pooled.items()}
                    rows = [{"threads": nt, "sparsity": s, "batch": B, "method": name, "median_s": t.median,
                             "iqr_s": t.iqr, "min_s": t.min, "n": len(t.times), "max_abs_err": errors.get(name),
                             "winner": None} for name, t in timed.items()]
                    derived = baseline_rows(rows)
                    result["measurements"].extend(rows + derived)
                    say(f"threads={nt} sparsity={s} batch={B}: "
                        + ", ".join(f"{r['method']}={r['median_s'] * 1e6:.0f}us"
                                    + (f" ({r['winner']})" if r["winner"] else "") for r in derived + [r for r in rows if r["method"] == "condensed"]))
            result.setdefault("loadavg_per_threads", {})[str(nt)] = {"start": load0, "end": loadavg()}
    finally:
        torch.set_num_threads(threads_before)

    result["targets"] = targets(result)
    if compile and not quick:
        result["compile"] = try_compile(all_layers.get(0.9) or all_layers[sparsities[0]], repeats, warmup,
                                        compile_budget, log=log)
    else:
        result["compile"] = {"skipped": True, "reason": "compile=False" if not compile else "quick run"}
    result["machine"]["loadavg_end"] = loadavg()
    result["wall_s"] = round(time.time() - t_start, 1)
    return result


def median(result: dict, threads: int, sparsity: float, batch: int, method: str,
           stat: str = "median_s") -> float | None:
    """The median (``stat="min_s"``: the fastest) seconds of one cell and method, or None if it
    was not measured."""
    check_stat(stat)
    for m in result["measurements"]:
        if (m["threads"], m["sparsity"], m["batch"], m["method"]) == (threads, sparsity, batch, method):
            return m[stat]
    return None


def select(result: dict, threads: Sequence[int]) -> dict:
    """A copy of ``result`` restricted to the given thread counts (measurements, config, targets
    recomputed); e.g. the single-thread cells, which other processes on the machine disturb least."""
    keep = [t for t in result["config"]["threads"] if t in set(threads)]
    if not keep:
        raise ValueError(f"threads={list(threads)!r} not in this result; available: {result['config']['threads']}")
    out = {**result, "config": {**result["config"], "threads": keep},
           "measurements": [m for m in result["measurements"] if m["threads"] in keep]}
    out["targets"] = targets(out)
    return out


def baseline(result: dict, threads: int, sparsity: float, batch: int, base: str,
             stat: str = "median_s") -> tuple[float | None, str | None]:
    """(seconds, winning candidate) of baseline ``base`` (a key of :data:`CANDIDATES`) in one cell:
    the least ``stat`` over its measured candidates; a result without candidate rows (older, or
    synthetic) gives the ``base`` row itself and winner None."""
    check_stat(stat)
    got = {c: median(result, threads, sparsity, batch, c, stat) for c in CANDIDATES.get(base, ())}
    got = {c: v for c, v in got.items() if v is not None}
    if not got:
        return median(result, threads, sparsity, batch, base, stat), None
    win = min(got, key=got.get)
    return got[win], win


def targets(result: dict, sparsity: float = 0.9, batch: int = 1, stat: str = "median_s") -> dict:
    """The paper's headline at (``sparsity``, ``batch``), per thread count: each method's time
    (``<method>_us``, the median, or the fastest call with ``stat="min_s"``), every baseline the
    fastest of its candidates (``<baseline>_winner``), the ratios ``<method>_over_condensed`` =
    t_method / t_condensed (the speedup of condensed) for the strongest baselines and for the
    paper's own dense baseline (``dense_linear``, nn.Linear) and CSR ``addmm``, pass flags against
    :data:`TARGETS` (read from paper.yaml: >= 3.4 vs dense, >= 2.5 vs CSR, both against the
    strongest baseline), and the byte-ratio limit of a memory-bound batch-1 kernel."""
    check_stat(stat)
    out: dict = {"sparsity": sparsity, "batch": batch, "paper_targets": TARGETS,
                 "targets_provenance": {k: params.claim_spec("srigl", c)["provenance"]
                                        for k, c in (("dense_over_condensed", "speedup_vs_dense"),
                                                     ("csr_over_condensed", "speedup_vs_csr"))},
                 "per_threads": {}}
    if stat != "median_s":
        out["stat"] = stat
    info = result["layers"].get(str(sparsity))
    if info is None:
        return out
    out["byte_limit_dense_over_condensed"] = info["byte_ratio_dense_over"]["condensed"]
    out["byte_limit_dense_over_condensed_int64"] = info["byte_ratio_dense_over"]["condensed_int64"]
    for nt in result["config"]["threads"]:
        t = {m: median(result, nt, sparsity, batch, m, stat) for m in
             ("dense_linear", "csr_addmm", "csr_addmv", "condensed", "condensed_int64", "condensed_torch")}
        wins = {}
        for base in CANDIDATES:
            t[base], wins[base] = baseline(result, nt, sparsity, batch, base, stat)
        if t["condensed"] is None or t["dense"] is None:
            continue
        row: dict[str, Any] = {f"{m}_us": round(v * 1e6, 1) for m, v in t.items() if v is not None}
        row.update({f"{b}_winner": w for b, w in wins.items() if w is not None})
        for m in ("dense", "dense_linear", "csr", "csr_addmm", "csr_addmv", "structured"):
            if t[m] is not None:
                row[f"{m}_over_condensed"] = round(t[m] / t["condensed"], 2)
        for m in ("dense", "csr"):
            if t["condensed_int64"] is not None and t[m] is not None:
                row[f"{m}_over_condensed_int64"] = round(t[m] / t["condensed_int64"], 2)
        if t["condensed_torch"] is not None:
            row["dense_over_condensed_torch"] = round(t["dense"] / t["condensed_torch"], 2)
            if t["csr"] is not None:
                row["csr_over_condensed_torch"] = round(t["csr"] / t["condensed_torch"], 2)
        row["pass_dense"] = row["dense_over_condensed"] >= TARGETS["dense_over_condensed"]
        if "csr_over_condensed" in row:
            row["pass_csr"] = row["csr_over_condensed"] >= TARGETS["csr_over_condensed"]
        out["per_threads"][str(nt)] = row
    return out


def try_compile(layers: dict, repeats: int = 25, warmup: int = 5, compile_budget: float = 120.0,
                log: Callable[[str], Any] | None = print) -> dict:
    """torch.compile (inductor, default mode) of dense and the pure-torch condensed formula, 1
    thread, batch 1 and 64; records compile and run times, or why it was skipped (inductor needs
    a C++ compiler; the paper's max-autotune takes far longer to compile on CPU)."""
    say = log or (lambda s: None)
    out: dict = {"mode": "default", "backend": "inductor", "threads": 1, "runs": []}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cond = layers["cond32"]
        vals, idx, bias = cond.values.detach(), cond.indices.long(), cond.bias.detach()
        n_in = cond.in_features

        def condensed_formula(x):
            return (x[:, idx] * vals).sum(-1) + bias

        dense = layers["dense"]
        fns = {"dense_compiled": torch.compile(dense), "condensed_compiled": torch.compile(condensed_formula)}
        for B in (1, 64):
            x = torch.randn(B, n_in)
            for name, f in fns.items():
                t0 = time.time()
                with torch.inference_mode():
                    f(x)
                compile_s = time.time() - t0
                if compile_s > compile_budget:
                    out["runs"].append({"method": name, "batch": B, "compile_s": round(compile_s, 1),
                                        "skipped": "compile took longer than the budget"})
                    continue
                with torch.inference_mode():
                    tm = time_fn(lambda: f(x), repeats=repeats * 2, warmup=warmup)
                out["runs"].append({"method": name, "batch": B, "compile_s": round(compile_s, 1),
                                    "median_s": tm.median, "iqr_s": tm.iqr})
                say(f"compiled {name} batch={B}: compile {compile_s:.1f}s, {tm.median * 1e6:.0f}us")
    except Exception as e:  # inductor needs a C++ compiler; record why it did not run
        out["skipped"] = True
        out["reason"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        torch.set_num_threads(threads_before)
    return out


_DEVICE_METHODS = ("dense", "csr", "structured", "condensed")


def run_device(
    device: str | torch.device = "cuda",
    sparsities: Sequence[float] = (0.8, 0.9, 0.95, 0.99),
    batches: Sequence[int] = (1, 256, 2048),
    repeats: int = 20,
    warmup: int = 5,
    gamma_sal: float = 0.95,
    seed: int = 0,
    n_in: int = N_IN,
    n_out: int = N_OUT,
    log: Callable[[str], Any] | None = print,
) -> dict:
    """Fig. 21 analogue on ``device`` (a CUDA GPU; any torch device works): dense, CSR, structured
    and the condensed layer (torch ops: gather at batch 1, ``F.embedding_bag`` above; the native
    kernel is CPU only), batches 1 / 256 / 2048 by default. Timed with ``time_fn(device=...)``
    (synchronised). Returns {"benchmark": "condensed_linear_device", "machine", "config",
    "layers", "measurements" (threads = None), "wall_s"}."""
    validate(list(sparsities), list(batches), [1], 1, repeats, warmup, gamma_sal, n_in, n_out)
    say = log or (lambda s: None)
    dev = torch.device(device)
    t_start = time.time()
    result: dict = {
        "benchmark": "condensed_linear_device",
        "paper": "srigl",
        "appendix": "J",
        "machine": {**machine_info(), "device": str(dev),
                    "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)},
        "config": {"n_in": n_in, "n_out": n_out, "dtype": "float32", "sparsities": list(sparsities),
                   "batches": list(batches), "repeats": repeats, "warmup": warmup, "gamma_sal": gamma_sal,
                   "seed": seed, "threads": [None]},
        "layers": {},
        "measurements": [],
    }
    for s in sparsities:
        layers = build_layers(s, gamma_sal, seed, n_in, n_out)
        result["layers"][str(s)] = layers["info"]
        dense = layers["dense"].to(dev)
        structured = layers["structured"].to(dev)
        csr = layers["csr"].to(dev)
        bias = layers["bias"].to(dev)
        cond_b1, cond_bn = layers["cond_gather"].to(dev), layers["cond_ebag"].to(dev)
        ref_layer = layers["masked"].to(dev)
        kept = layers["kept"].to(dev)
        for B in batches:
            x = torch.randn(B, n_in, generator=torch.Generator().manual_seed(B)).to(dev)
            methods = {
                "dense": dense,
                "csr": lambda x: torch.addmm(bias.unsqueeze(1), csr, x.t()).t(),
                "structured": structured,
                "condensed": cond_b1 if B == 1 else cond_bn,
            }
            with torch.inference_mode():
                ref = ref_layer(x)
                csr_ref = F.linear(x, csr.to_dense(), bias)
                for name, f in methods.items():
                    y = f(x)
                    err = None if name == "dense" else float(
                        (y - (csr_ref if name == "csr" else ref[:, kept])).abs().max())
                    tm = time_fn(lambda: f(x), repeats=repeats, warmup=warmup, device=dev)
                    result["measurements"].append({
                        "threads": None, "sparsity": s, "batch": B, "method": name, "median_s": tm.median,
                        "iqr_s": tm.iqr, "min_s": tm.min, "n": len(tm.times), "max_abs_err": err,
                    })
            say(f"{dev} sparsity={s} batch={B}: " + ", ".join(
                f"{m['method']}={m['median_s'] * 1e6:.0f}us" for m in result["measurements"][-len(methods):]))
    result["wall_s"] = round(time.time() - t_start, 1)
    return result


def load_committed(path: str | os.PathLike | None = None) -> dict:
    """The committed benchmark result (default ``benchmarks/results/condensed_linear_cpu.json``)."""
    p = Path(path) if path is not None else COMMITTED_JSON
    if not p.exists():
        raise ValueError(f"committed benchmark {p} does not exist; run `python benchmarks/condensed_linear.py` "
                         "to create it, or pass the path of a result JSON")
    with open(p) as fh:
        return json.load(fh)


def speedups(result: dict, over: Sequence[str] = ("dense", "csr", "structured"), of: str = "condensed"):
    """Per (threads, sparsity, batch): t_method / t_``of`` for each method of ``over`` (> 1: ``of``
    is faster). A pandas DataFrame with columns threads, sparsity, batch and one per method."""
    df = frame(result)
    piv = df.pivot_table(index=["threads", "sparsity", "batch"], columns="method", values="median_s",
                         dropna=False)
    out = piv[[m for m in over if m in piv.columns]].div(piv[of], axis=0)
    return out.reset_index()


def fastest_at_batch(result: dict, batch: int = 1, methods: Sequence[str] = PAPER_METHODS):
    """Per (threads, sparsity) at ``batch``: the fastest of ``methods``, its time, and
    ``condensed_margin`` = (fastest other method's time) / (condensed's time) (> 1: condensed wins)."""
    df = frame(result)
    df = df[(df["batch"] == batch) & df["method"].isin(methods)]
    rows = []
    for (nt, s), g in df.groupby(["threads", "sparsity"], dropna=False):
        g = g.set_index("method")["median_s"]
        others = g.drop("condensed", errors="ignore")
        rows.append({"threads": nt, "sparsity": s, "fastest": g.idxmin(), "fastest_us": g.min() * 1e6,
                     "condensed_us": g.get("condensed", float("nan")) * 1e6,
                     "runner_up": others.idxmin(),
                     "condensed_margin": others.min() / g["condensed"] if "condensed" in g else float("nan")})
    return pd.DataFrame(rows)


def condensed_losses(result: dict, methods: Sequence[str] = PAPER_METHODS):
    """Cells (threads, sparsity, batch) where the condensed layer is *not* the fastest of
    ``methods``: the winner and ``ratio`` = t_condensed / t_winner (> 1)."""
    df = frame(result)
    df = df[df["method"].isin(methods)]
    rows = []
    for (nt, s, b), g in df.groupby(["threads", "sparsity", "batch"], dropna=False):
        g = g.set_index("method")["median_s"]
        if "condensed" not in g:
            continue
        winner = g.idxmin()
        if winner != "condensed":
            rows.append({"threads": nt, "sparsity": s, "batch": b, "winner": winner,
                         "ratio": g["condensed"] / g[winner]})
    return pd.DataFrame(rows, columns=["threads", "sparsity", "batch", "winner", "ratio"])


def advantage_by_batch(result: dict, over: str = "dense") -> dict[str, tuple[float, float]]:
    """Per (threads, sparsity): the speedup t_``over`` / t_condensed at the smallest and at the
    largest batch measured, keyed ``"<threads> thr, <sparsity>%"``."""
    spd = speedups(result, over=(over,))
    out = {}
    for (t, s), g in spd.groupby(["threads", "sparsity"]):
        g = g.sort_values("batch")
        out[f"{int(t)} thr, {s:.0%}"] = (round(float(g[over].iloc[0]), 2), round(float(g[over].iloc[-1]), 2))
    return out


def structured_vs_condensed(result: dict, min_batch: int = 16) -> dict:
    """Cells with batch >= ``min_batch``: how many there are, and in which the structured layer
    is faster than the condensed one (``wins``: list of {threads, sparsity, batch, ratio =
    t_condensed / t_structured})."""
    df = frame(result)
    piv = df[df["batch"] >= min_batch].pivot_table(index=["threads", "sparsity", "batch"], columns="method",
                                                   values="median_s")
    if not len(piv):
        return {"cells": 0, "wins": []}
    ratio = piv["condensed"] / piv["structured"]
    wins = [{"threads": int(t), "sparsity": float(s), "batch": int(b), "ratio": round(float(v), 3)}
            for (t, s, b), v in ratio.items() if v > 1]
    return {"cells": int(len(piv)), "wins": wins}
