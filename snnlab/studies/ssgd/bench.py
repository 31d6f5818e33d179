"""Speed and memory of the sparse backward against two dense baselines, measured in one run.

Methods (one LIF layer ``N_in -> N_out``, T steps, batch B, float32, CPU):

* ``sparse``: :func:`snnlab.grad.sparse_backward.lif_layer` with ``backward="sparse"`` (native kernel
  when built), the input gradient written only at the previous layer's active set (``input_active``);
* ``sparse_full_dx``: the same with the full input gradient (``input_active=None``), for reference;
* ``dense``: the same layer with ``backward="dense"`` (autograd over a Python time loop, the paper's
  baseline);
* ``spikingjelly``: spikingjelly's multi-step ``layer.Linear`` + ``neuron.LIFNode`` (its fused CPU op,
  ``torch.ops.sj_lif``) with the full SuperSpike surrogate. spikingjelly's built-in ``SuperSpike`` is
  :math:`a/(1+|x|)^2`; running the layer on ``beta``-scaled potentials (weight ``beta W``, threshold
  ``beta v_th``, ``a = 1/beta``) makes its surrogate exactly :math:`1/(1+\\beta|V-v_{th}|)^2` per
  unit of V at identical cost. Its soft reset is applied before the leak (the reset decays by alpha),
  a negligible difference for timing.

Inputs: the previous layer's active set is a Bernoulli(rho_in) mask and its spikes a random half of
it (so the spike rate is rho_in/2); the weight (positive uniform, one seeded draw) is scaled by a
grid search so that the layer's own active fraction ``rho`` (|V - v_th| < b_th) is near the target.
Both fractions are measured and reported. Timing with :func:`snnlab.bench.Timing.of` over repeats
(median); held-for-backward bytes with :class:`snnlab.bench.SavedTensorMeter` (peak live bytes of
tensors saved for backward during the forward, the weight included for every method).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from typing import Callable, Sequence

import torch
from spikingjelly.activation_based import layer, neuron, surrogate

from ... import checks
from ...grad import sparse_backward as sb
from ...paths import REPO_ROOT
from ...record import bench
from . import training as tr

__all__ = ["load_committed", "bth_sweep", "make_case", "calibrate_scale", "measure", "run", "sweep_hidden", "TARGETS", "METHODS"]

METHODS = ("sparse", "sparse_full_dx", "dense", "spikingjelly")

#: the issue's targets at rho <= 2% (ratios measured in one run)
TARGETS = {
    "backward_speedup_vs_dense_min": 20.0,
    "backward_speedup_vs_spikingjelly_min": 4.0,
    "held_bytes_fraction_of_dense_max": 0.15,
    "forward_time_ratio_to_dense_max": 1.0,
}


def alpha_of(tau_mem: float = 10.0, dt: float = 1.0) -> float:
    """The leak factor exp(-dt/tau) (Table 3: 1 ms step, 10 ms membrane)."""
    return math.exp(-dt / tau_mem)


def make_case(T: int, B: int, n_in: int, n_out: int, rho_in: float, scale: float, seed: int = 0,
              dtype=torch.float32):
    """Seeded inputs: ``(x, input_active, weight)``; weight = scale * U(0, 1) / sqrt(n_in)."""
    g = torch.Generator().manual_seed(seed)
    active = torch.rand(T, B, n_in, generator=g) < rho_in
    x = (active & (torch.rand(T, B, n_in, generator=g) < 0.5)).to(dtype)
    w = (scale * torch.rand(n_in, n_out, generator=g) / math.sqrt(n_in)).to(dtype)
    return x, active, w


def calibrate_scale(T: int, n_in: int, n_out: int, rho_in: float, rho_target: float, alpha: float,
                    b_th: float = 0.2, seed: int = 0, B: int = 32, n_grid: int = 90) -> tuple[float, float]:
    """Weight scale whose layer active fraction is closest to ``rho_target`` (log grid on a small
    batch): ``(scale, measured rho)``."""
    best = (1.0, math.inf, 0.0)
    for scale in torch.logspace(-1, 2, n_grid).tolist():
        x, _, w = make_case(T, B, n_in, n_out, rho_in, scale, seed)
        with torch.no_grad():
            _, v, _ = sb.forward_reference(x, w, alpha, 1.0, b_th, 100.0)
        rho = sb.active_fraction(v, 1.0, b_th)
        if abs(rho - rho_target) < best[1]:
            best = (scale, abs(rho - rho_target), rho)
    return best[0], best[2]


def _sj_layer(w: torch.Tensor, alpha: float, v_th: float, beta: float):
    lin = layer.Linear(w.shape[0], w.shape[1], bias=False, step_mode="m")
    with torch.no_grad():
        lin.weight.copy_(beta * w.t())
    node = neuron.LIFNode(tau=1.0 / (1.0 - alpha), decay_input=False, v_threshold=beta * v_th, v_reset=None,
                          surrogate_function=surrogate.SuperSpike(alpha=1.0 / beta), detach_reset=True,
                          step_mode="m")
    return lin, node


def _methods(x, active, w, alpha, b_th, beta) -> dict[str, Callable[[], tuple]]:
    """Each method: a closure returning (output spikes, list of tensors whose .grad to clear)."""
    lin, node = _sj_layer(w, alpha, 1.0, beta)

    def sparse():
        xx, ww = x.detach().requires_grad_(), w.detach().requires_grad_()
        s, _ = sb.lif_layer(xx, ww, alpha, 1.0, b_th, beta, backward="sparse", input_active=active)
        return s

    def sparse_full():
        xx, ww = x.detach().requires_grad_(), w.detach().requires_grad_()
        s, _ = sb.lif_layer(xx, ww, alpha, 1.0, b_th, beta, backward="sparse")
        return s

    def dense():
        xx, ww = x.detach().requires_grad_(), w.detach().requires_grad_()
        s, _ = sb.lif_layer(xx, ww, alpha, 1.0, b_th, beta, backward="dense")
        return s

    def sj():
        node.reset()
        lin.weight.grad = None
        xx = x.detach().requires_grad_()
        return node(lin(xx))

    return {"sparse": sparse, "sparse_full_dx": sparse_full, "dense": dense, "spikingjelly": sj}


def measure(T: int = 100, B: int = 256, n_in: int = 200, n_out: int = 200, rho: float = 0.02,
            b_th: float = 0.2, beta: float = 100.0, alpha: float | None = None, repeats: int = 5,
            warmup: int = 1, seed: int = 0, methods: Sequence[str] = METHODS, scale: float | None = None,
            n_grid: int = 90) -> dict:
    """One grid point: forward / backward medians (s), held-for-backward bytes of every method and the
    ratios against ``dense`` and ``spikingjelly``. ``rho`` is the target active fraction of both the
    input (previous layer) and this layer."""
    for name, v in (("T", T), ("B", B), ("n_in", n_in), ("n_out", n_out), ("repeats", repeats)):
        checks.int_at_least(name, v, 1)
    checks.int_at_least("warmup", warmup, 0)
    checks.number_in("rho", rho, 0, 1, lo_open=True, hi_open=True)
    for m in methods:
        checks.choice("methods entry", m, METHODS)
    alpha = alpha_of() if alpha is None else alpha
    if scale is None:
        scale, _ = calibrate_scale(T, n_in, n_out, rho, rho, alpha, b_th, seed, B=min(B, 32), n_grid=n_grid)
    x, active, w = make_case(T, B, n_in, n_out, rho, scale, seed)
    fns = _methods(x, active, w, alpha, b_th, beta)
    grad = torch.randn(T, B, n_out, generator=torch.Generator().manual_seed(seed + 1))
    out: dict = {"T": T, "B": B, "n_in": n_in, "n_out": n_out, "b_th": b_th, "alpha": alpha, "scale": scale,
                 "rho_target": rho, "rho_in_measured": float(active.float().mean()),
                 "input_spike_rate": float(x.mean())}
    with torch.no_grad():
        _, v, act = sb.forward_reference(x, w, alpha, 1.0, b_th, beta)
    out["rho_measured"] = act.nnz / v.numel()
    out["ideal_speedup"] = 1.0 / out["rho_measured"] if act.nnz else math.inf
    res, times = {}, {m: ([], []) for m in methods}
    for m in methods:
        with bench.SavedTensorMeter() as meter:
            s = fns[m]()
        res[m] = {"held_bytes": int(meter.peak)}
        del s
    order = list(methods)
    rng = torch.Generator().manual_seed(seed + 2)
    for i in range(warmup + repeats):  # interleaved rounds: machine load hits every method alike
        for k in torch.randperm(len(order), generator=rng).tolist():
            m = order[k]
            t0 = time.perf_counter()
            s = fns[m]()
            t1 = time.perf_counter()
            torch.autograd.backward(s, grad)
            t2 = time.perf_counter()
            if i >= warmup:
                times[m][0].append(t1 - t0)
                times[m][1].append(t2 - t1)
            del s
    for m in methods:
        f, b = bench.Timing.of(times[m][0]), bench.Timing.of(times[m][1])
        res[m].update(forward_s=f.median, backward_s=b.median, forward_iqr_s=f.iqr, backward_iqr_s=b.iqr)
    out["methods"] = res
    ratios = {}
    if "sparse" in res:
        sp = res["sparse"]
        for base in ("dense", "spikingjelly"):
            if base in res:
                ratios[f"backward_speedup_vs_{base}"] = res[base]["backward_s"] / sp["backward_s"]
                ratios[f"forward_ratio_to_{base}"] = sp["forward_s"] / res[base]["forward_s"]
                ratios[f"held_bytes_fraction_of_{base}"] = sp["held_bytes"] / res[base]["held_bytes"]
        if "dense" in res:
            ratios["backward_speedup_vs_dense_over_ideal"] = (
                ratios["backward_speedup_vs_dense"] / out["ideal_speedup"])
    out["ratios"] = ratios
    return out


def targets_met(point: dict) -> dict:
    """The issue's targets checked on one grid point (needs sparse, dense and spikingjelly)."""
    r = point["ratios"]
    return {
        "backward >= 20x dense loop": r["backward_speedup_vs_dense"] >= TARGETS["backward_speedup_vs_dense_min"],
        "backward >= 4x spikingjelly": (r["backward_speedup_vs_spikingjelly"]
                                        >= TARGETS["backward_speedup_vs_spikingjelly_min"]),
        "held bytes <= 15% of dense loop": (r["held_bytes_fraction_of_dense"]
                                            <= TARGETS["held_bytes_fraction_of_dense_max"]),
        "forward no slower than dense loop": r["forward_ratio_to_dense"] <= TARGETS["forward_time_ratio_to_dense_max"],
    }


def run(rhos: Sequence[float] = (0.02, 0.05, 0.10), **kw) -> list[dict]:
    """:func:`measure` at each activity level (Figs. 13-14, 17-18 against activity)."""
    pts = []
    for rho in rhos:
        p = measure(rho=rho, **kw)
        if {"sparse", "dense", "spikingjelly"} <= set(p["methods"]):
            p["targets_met"] = targets_met(p)
        pts.append(p)
    return pts


def sweep_hidden(sizes: Sequence[int] = (100, 200, 400, 600, 800, 1000), rho: float = 0.02, **kw) -> list[dict]:
    """:func:`measure` over hidden sizes (``n_in = n_out = N``, the paper's layer 2, Figs. 12, 14, 16, 18)."""
    checks.int_list("sizes", list(sizes), 1)
    return [measure(n_in=n, n_out=n, rho=rho, **kw) for n in sizes]


def load_committed(name: str = "ssgd_speed_memory_cpu") -> dict | None:
    """The committed benchmark ``benchmarks/results/<name>.json`` (None when absent)."""
    path = REPO_ROOT / "benchmarks" / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def bth_sweep(spec: "tr.Spec", b_ths: Sequence[float], progress: bool = True) -> list[dict]:
    """Train ``spec`` sparse at each band and once dense (full surrogate): per band the backward seconds
    of the whole run, the final test accuracy and the mean active fraction (the speed/accuracy trade-off
    of the official SHD sweep)."""
    data = tr.load_data(spec)
    dense = tr.train(replace(spec, backward="dense"), data, progress=progress)["history"]
    rows = []
    for b in b_ths:
        h = tr.train(replace(spec, backward="sparse", b_th=float(b)), data, progress=progress)["history"]
        rows.append({"b_th": float(b), "bwd_s": sum(h["bwd_s"]), "fwd_s": sum(h["fwd_s"]), "acc": h["test_acc"][-1],
                     "rho": [sum(r[i] for r in h["train_rho"]) / len(h["train_rho"]) for i in range(len(h["train_rho"][0]))],
                     "dense_acc": dense["test_acc"][-1], "dense_bwd_s": sum(dense["bwd_s"])})
    return rows
