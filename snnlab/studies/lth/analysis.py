"""What the lth notebooks compute around the runs: validated setup from notebook parameters, the
Early-Time curves of stored states, the T_pre experiment (Fig. 3), tables in the paper's layout, the
per-iteration timing (supp. Table 1) and the pruned-weight invariant."""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from ... import checks, data
from ...core import models
from ...core.encoding import encode_batch
from ...grad.bptt import bptt_step
from ...sparsity import early_time as et
from ...sparsity import prune
from ...sparsity.masks import Masks, magnitude_mask
from . import runs

__all__ = ["make_setup", "et_options", "curves_of", "t_pre_experiment", "table1", "rows_by",
           "iteration_times", "masked_weights_zero", "fig_series", "step_costs", "et_speedup_model",
           "outputs_of", "mask_overlap"]


def make_setup(P: Any) -> runs.Setup:
    """A :class:`runs.Setup` from notebook parameters, validating the lth-specific ones first
    (``ValueError`` naming the parameter, before any training)."""
    d = P.as_dict() if hasattr(P, "as_dict") else dict(P)
    if "p" in d:
        checks.number_in("p", d["p"], 0, 1, lo_open=True, hi_open=True, why=" (fraction of surviving weights pruned)")
    if "levels" in d:
        checks.int_at_least("levels", d["levels"], 1)
    if "q" in d:
        checks.int_at_least("q", d["q"], 2)
    if "tau" in d:
        checks.number_in("tau", d["tau"], 0, 1, lo_open=True)
    if "lam" in d:
        checks.number_in("lam", d["lam"], 0, 1, why=" (the Early-Time threshold lambda)")
    if "et_epochs" in d:
        checks.integer("et_epochs", d["et_epochs"], 1, d["epochs"] - 1)
    if d.get("T", 2) < 2:
        checks.fail("T", d["T"], "integers >= 2 (Early-Time compares t = 2..T)")
    if "rewind_epoch" in d:
        checks.integer("rewind_epoch", d["rewind_epoch"], 0, d["epochs"] - 1)
    return runs.Setup(dataset=d["dataset"], arch=d["arch"], hidden=tuple(d.get("hidden", (128,))),
                      width=d.get("width", 1.0), reset=d.get("reset", "hard"), T=d["T"], epochs=d["epochs"],
                      batch_size=d["batch_size"], lr=d["lr"], weight_decay=d["weight_decay"], seed=d["seed"],
                      device=d.get("device", "cpu"))


def et_options(P: Any) -> dict:
    return {"lam": P.lam, "n": P.et_epochs}


def outputs_of(setup: runs.Setup, state: Mapping[str, torch.Tensor], n: int | None = None) -> torch.Tensor:
    """Per-step outputs ``[T, N, C]`` of a stored state on the training set (eval mode)."""
    model = setup.build(True)
    model.load_state_dict(state)
    return et.step_outputs(model, runs.load_data(setup.dataset, "train"), setup.T, n=n)


def curves_of(setup: runs.Setup, state: Mapping[str, torch.Tensor], n: int | None = None) -> dict[str, list[float]]:
    """Normalised KL (both orders) and JSD of a stored state on the training set (eval mode)."""
    out = outputs_of(setup, state, n)
    return {"KL paper": et.normalized_divergence(out, "kl", "paper").tolist(),
            "KL official": et.normalized_divergence(out, "kl", "official").tolist(),
            "JSD": et.normalized_divergence(out, "jsd").tolist()}


def t_pre_experiment(setup: runs.Setup, T_pres: Sequence[int], sparsity: float, cache: bool = True) -> dict[int, dict]:
    """Fig. 3: train dense at T_pre, prune ``sparsity`` of the weights by magnitude (one shot, global),
    re-initialise and retrain at T_post = ``setup.T``."""
    out = {}
    init = runs.dense_run(setup, cache=cache)["states"][0]
    for tp in T_pres:
        d = runs.dense_run(setup, T=tp, cache=cache)
        model = setup.build(True)
        model.load_state_dict(d["final_state"])
        masks = Masks({k: v.cpu() for k, v in magnitude_mask(model, sparsity, "global").items()})
        tk = runs.train_ticket(setup, masks, init, 0, label=f"T_pre={tp}", cache=cache)
        out[tp] = {"acc": 100 * tk["acc"], "dense_acc_at_T_pre": 100 * d["acc"], "masks": masks}
    return out


def rows_by(rows: Sequence[runs.Ticket], method: str, field: str = "acc") -> dict[float, float]:
    return {r.sparsity: getattr(r, field) for r in rows if r.method == method}


def fig_series(rows: Sequence[runs.Ticket], methods: Sequence[str]) -> dict[str, tuple[list, list]]:
    return {m: (list(rows_by(rows, m)), list(rows_by(rows, m).values())) for m in methods}


def table1(rows: Sequence[runs.Ticket]) -> pd.DataFrame:
    """Table 1 layout: accuracy (%) and search time (s) per method and sparsity, with the delta-acc
    and speed-gain rows of IMP+ET against IMP and EB+ET against EB."""
    recs = []
    for base, et_m in (("IMP", "IMP+ET"), ("EB", "EB+ET")):
        a, b = rows_by(rows, base), rows_by(rows, et_m)
        ta, tb = rows_by(rows, base, "search_s"), rows_by(rows, et_m, "search_s")
        for m, acc, t in ((base, a, ta), (et_m, b, tb)):
            recs.append({"method": m, "row": "acc (%)", **{f"{100 * s:.2f}%": round(v, 2) for s, v in acc.items()}})
            recs.append({"method": m, "row": "search (s)", **{f"{100 * s:.2f}%": round(v, 2) for s, v in t.items()}})
        recs.append({"method": f"{et_m} vs {base}", "row": "delta acc",
                     **{f"{100 * s:.2f}%": round(b[s] - a[s], 2) for s in a if s in b}})
        recs.append({"method": f"{et_m} vs {base}", "row": "speed gain",
                     **{f"{100 * s:.2f}%": round(ta[s] / tb[s], 2) for s in ta if tb.get(s)}})
    return pd.DataFrame(recs)


def iteration_times(archs: Sequence[str], Ts: Sequence[int], width: float, batch: int = 32, repeats: int = 3,
                    input_size: int = 8, in_channels: int = 1) -> pd.DataFrame:
    """supp. Table 1: seconds of one forward+backward (BPTT, batch ``batch``) per architecture and T,
    interleaved over repeats (minimum kept) so that load on the machine affects every cell alike."""
    nets = {a: models.build(a, 10, in_channels=in_channels, input_size=input_size, width=width) for a in archs}
    best: dict[tuple[str, int], float] = {}
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(0))
    for _ in range(repeats):
        for a, net in nets.items():
            for T in Ts:
                x = torch.rand(T, batch, in_channels, input_size, input_size)
                functional.reset_net(net)
                t0 = time.perf_counter()
                bptt_step(net, x, y, F.cross_entropy)
                dt = time.perf_counter() - t0
                net.zero_grad(set_to_none=True)
                best[(a, T)] = min(dt, best.get((a, T), float("inf")))
    return pd.DataFrame([{"arch": a, **{f"T={T}": round(best[(a, T)], 4) for T in Ts}} for a in archs]).set_index("arch")


def step_costs(setup: runs.Setup, Ts: Sequence[int], repeats: int = 15, warmup: int = 2) -> dict[int, dict]:
    """Seconds of one training forward+backward (BPTT) of ``setup``'s SNN on one training batch of
    ``setup.batch_size``, at each T in ``Ts``, the Ts interleaved in one loop so that load on the
    machine hits every T alike. Per T: ``min_s`` (the least-disturbed repeat; load only adds time)
    and ``median_s``."""
    x_all, y_all = data.tensors(runs.load_data(setup.dataset, "train"))
    x_all, y_all = x_all[: setup.batch_size], y_all[: setup.batch_size]
    model = setup.build(True).to(setup.torch_device())
    model.train()
    times: dict[int, list[float]] = {int(T): [] for T in Ts}
    for rep in range(warmup + checks.int_at_least("repeats", repeats, 1)):
        for T in times:
            x = encode_batch(x_all, T, "direct", False, None)
            functional.reset_net(model)
            t0 = time.perf_counter()
            bptt_step(model, x, y_all, F.cross_entropy)
            dt = time.perf_counter() - t0
            functional.reset_net(model)
            model.zero_grad(set_to_none=True)
            if rep >= warmup:
                times[T].append(dt)
    return {T: {"min_s": min(v), "median_s": float(np.median(v))} for T, v in times.items()}


def et_speedup_model(imp_levels: Sequence[Mapping[str, Any]], et_levels: Sequence[Mapping[str, Any]],
                     costs: Mapping[int, Mapping[str, float]], sparsities: Sequence[float],
                     wall_imp: Mapping[float, float], wall_et: Mapping[float, float], stat: str = "min_s") -> pd.DataFrame:
    """Table 1's IMP+ET speed gain per sparsity level k as measured work: the optimizer steps each
    search ran at each T (levels 0..k-1 of the IMP search, levels 0..k-1 of the IMP+ET search: N
    epochs at T, the rest at T_early) times the measured cost of one step at that T
    (:func:`step_costs`), beside the raw wall-clock ratio of the two searches in this run."""
    rows = []
    for k, s in enumerate(sparsities, 1):
        a, b = runs.steps_by_T(imp_levels[:k]), runs.steps_by_T(et_levels[:k])
        ta = sum(n * costs[T][stat] for T, n in a.items())
        tb = sum(n * costs[T][stat] for T, n in b.items())
        rows.append({"level": k, "sparsity": s, "imp_steps": a, "et_steps": b, "imp_model_s": ta, "et_model_s": tb,
                     "speedup_model": ta / tb, "speedup_wall": wall_imp[s] / wall_et[s] if wall_et.get(s) else None})
    return pd.DataFrame(rows)


def mask_overlap(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Per layer: the fraction of the weights kept by mask ``a`` that mask ``b`` keeps too."""
    return {k: float((a[k].bool() & b[k].bool()).sum() / a[k].bool().sum().clamp(min=1)) for k in a}


def masked_weights_zero(setup: runs.Setup, results: Sequence[Mapping[str, Any]]) -> bool:
    """Every weight outside its mask is exactly 0.0 in every trained unit."""
    model = setup.build(True)
    for r in results:
        model.load_state_dict(r["final_state"])
        masks = prune.check_masks(model, r["masks"])
        for k, p in model.named_parameters():
            if k in masks and bool((p.detach()[~masks[k]] != 0).any()):
                return False
    return True
