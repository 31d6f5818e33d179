r"""srigl notebooks 02-03: dynamic sparse training runs (cached), Table 9's sweep, the layer-budget
and accuracy tables, and the FLOP rows of Fig. 13 (Appendix G).

:func:`train_sparse` builds a model, trains it dense or with :class:`snnlab.sparsity.dst.DST`,
evaluates it, counts its synaptic operations (:mod:`snnlab.sparsity.opcount`) and caches the
result through :mod:`snnlab.train.runs`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ... import checks, train
from ...core import models
from ...sparsity import opcount
from ...sparsity.dst import DST, METHODS, ablation_threshold
from ...sparsity.masks import Masks, fan_in_counts, layer_budgets, layer_densities, prunable_parameters
from ...sparsity.opcount import analog_share, ratios, training_ops
from ...train.runs import CachedRun, cached_run

__all__ = [
    "steps_per_epoch",
    "SparseRun",
    "train_sparse",
    "VARIANTS",
    "sweep",
    "gamma_sweep",
    "budget_table",
    "min_salient_table",
    "accuracy_table",
    "flops_rows",
]


def steps_per_epoch(ds, batch_size: int) -> int:
    """Optimiser steps per epoch of :func:`snnlab.train.fit` (the last batch may be short)."""
    return -(-len(ds) // checks.int_at_least("batch_size", batch_size, 1))


@dataclass
class SparseRun:
    """The outcome of one :func:`train_sparse` run (plain types; ``masks`` bool tensors)."""

    method: str
    sparsity: float
    ablation: bool
    acc: float
    acc_per_t: list
    history: list
    dst_history: list
    fan_in: dict
    width: dict
    n_out: dict
    density: float
    layer_density: dict
    firing_rate: list
    ops: list = field(default_factory=list)
    masks: dict = field(default_factory=dict)
    steps: int = 0
    updates: int = 0

    @property
    def label(self) -> str:
        return _label(self.method, self.ablation)

    def as_dict(self, masks: bool = False) -> dict:
        d = asdict(self)
        if not masks:
            d.pop("masks")
        return d


def pct(s: float) -> str:
    """A sparsity as a percentage label: 0.9 -> '90%'."""
    return f"{100 * s:g}%"


def _label(method: str, ablation: bool) -> str:
    return {"dense": "dense", "rigl": "RigL", "set": "SET (random regrowth)"}.get(
        method, "SRigL w/ ablation" if ablation else "SRigL w/o ablation")


def train_sparse(model_kw: Mapping[str, Any], train_ds, test_ds, cfg, method: str = "rigl", sparsity: float = 0.9,
                 ablation: bool = True, delta_t: int = 100, alpha: float = 0.3, stop_fraction: float = 0.75,
                 gamma_sal: float = 0.3, distribution: str = "erk", count_ops: bool = True, cache: bool = True,
                 ) -> SparseRun:
    """Build ``models.build(**model_kw)``, train it with :func:`snnlab.train.fit` and ``cfg`` (dense
    for ``method="dense"``, else with :class:`~snnlab.sparsity.dst.DST`), evaluate it, count its
    operations (:func:`snnlab.sparsity.opcount.count_ops` on the test set) and return a :class:`SparseRun`.

    With ``cache`` it is one :class:`snnlab.train.runs.CachedRun` (keyed by everything above, the
    data's content and the code version): it checkpoints every epoch (fit's ``last.pt`` plus the
    DST state of that epoch), so an interrupted run resumes, and a finished run is loaded, not
    retrained. The seed of the mask is ``cfg.seed``.
    """
    checks.choice("method", method, ("dense",) + METHODS)
    sparsity = 0.0 if method == "dense" else checks.fraction("sparsity", sparsity)
    config = {"model": dict(model_kw), "cfg": cfg.key(), "method": method, "sparsity": sparsity,
              "ablation": bool(ablation) and method == "srigl",
              "dst": {"delta_t": delta_t, "alpha": alpha, "stop_fraction": stop_fraction, "gamma_sal": gamma_sal,
                      "distribution": distribution} if method != "dense" else None,
              "count_ops": bool(count_ops)}

    def compute(run: CachedRun) -> dict:
        return _train_sparse(run, model_kw, train_ds, test_ds, cfg, config, delta_t, alpha, stop_fraction,
                             gamma_sal, distribution, count_ops).as_dict(masks=True)

    state = cached_run("dst", config, [train_ds, test_ds], compute, cache=cache)
    state["masks"] = {k: torch.as_tensor(v) for k, v in state["masks"].items()}
    return SparseRun(**state)


def _train_sparse(run: CachedRun, model_kw, train_ds, test_ds, cfg, config, delta_t, alpha, stop_fraction,
                  gamma_sal, distribution, count_ops) -> SparseRun:
    method, sparsity, ablation = config["method"], config["sparsity"], config["ablation"]
    torch.manual_seed(cfg.seed)
    net = models.build(**model_kw)
    total = steps_per_epoch(train_ds, cfg.batch_size) * cfg.epochs
    hooks: list = []
    dst = None
    if method != "dense":
        dst = DST(net, method=method, sparsity=sparsity, delta_t=delta_t, total_steps=total, alpha=alpha,
                  stop_fraction=stop_fraction, gamma_sal=gamma_sal, ablation=ablation, distribution=distribution,
                  seed=cfg.seed)
        hooks.append(dst)
    run_cfg = cfg
    cdir = run.dir
    if cdir is not None:
        run_cfg = replace(cfg, checkpoint_dir=run.checkpoint_dir)
        ckpt = cdir / "last.pt"
        if dst is not None:
            dst._state_dir = cdir
            if ckpt.exists():
                ep = int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
                st = cdir / f"dst-epoch{ep}.pt"
                if st.exists():
                    dst.load_state_dict(torch.load(st, map_location="cpu", weights_only=True))
                else:  # no matching DST state: start over
                    ckpt.unlink()
    history = train.fit(net, train_ds, test_ds, run_cfg, hooks=hooks, eval_every=cfg.epochs)
    device = run_cfg.resolved_device()
    ev = train.evaluate(net, test_ds, cfg.T, cfg.encoding, device=device, seed=cfg.seed)
    params = prunable_parameters(net)
    masks = dst.masks if dst is not None else Masks.ones(params)
    ops = []
    if count_ops:
        ops = [o.as_dict() for o in opcount.count_ops(net, test_ds, cfg.T, cfg.encoding, device=device, seed=cfg.seed)]
    return SparseRun(
        method=method, sparsity=sparsity, ablation=ablation, acc=float(ev["acc"]),
        acc_per_t=[float(a) for a in ev["acc_per_t"]],
        history=[{k: v for k, v in h.items()} for h in history],
        dst_history=dst.history if dst is not None else [],
        fan_in={k: fan_in_counts(m).tolist() for k, m in masks.items()},
        width={k: int((fan_in_counts(m) > 0).sum()) for k, m in masks.items()},
        n_out={k: int(m.shape[0]) for k, m in masks.items()},
        density=masks.density(), layer_density=masks.densities(),
        firing_rate=[float(r) for r in ev["firing_rate"]], ops=ops,
        masks={k: m.cpu() for k, m in masks.items()}, steps=total,
        updates=sum(1 for h in (dst.history if dst is not None else []) if h["step"] > 0),
    )


#: the three variants of Table 9: (method, ablation)
VARIANTS = (("rigl", False), ("srigl", False), ("srigl", True))


def sweep(model_kw: Mapping[str, Any], train_ds, test_ds, cfg, sparsities: Sequence[float],
          variants: Sequence[tuple[str, bool]] = VARIANTS, dense: bool = True, progress: bool = True,
          **dst_kw: Any) -> dict[tuple[str, float], SparseRun]:
    """:func:`train_sparse` for every sparsity and ``(method, ablation)`` variant (plus the dense
    run under ``("dense", 0.0)``); ``{(label, sparsity): run}`` with labels ``RigL``,
    ``SRigL w/o ablation``, ``SRigL w/ ablation``."""
    for s in sparsities:
        checks.fraction("sparsities entry", s)
    jobs = [(m, a, s) for s in sparsities for m, a in variants] + ([("dense", False, 0.0)] if dense else [])
    out: dict[tuple[str, float], SparseRun] = {}
    for m, a, s in tqdm(jobs, desc="runs", disable=not progress):
        r = train_sparse(model_kw, train_ds, test_ds, cfg, method=m, sparsity=s, ablation=a, **dst_kw)
        out[(r.label, s)] = r
    return out


def gamma_sweep(model_kw: Mapping[str, Any], train_ds, test_ds, cfg, sparsity: float, gammas: Sequence[float],
                progress: bool = True, **dst_kw: Any) -> dict[float, SparseRun]:
    """Fig. 8 analogue: SRigL with ablation at one ``sparsity`` for every :math:`\\gamma_{sal}` in
    ``gammas`` (each a cached :func:`train_sparse`; the run at the notebook's own ``gamma_sal`` is
    shared with :func:`sweep`). ``{gamma: run}``."""
    checks.fraction("sparsity", sparsity)
    for g in gammas:
        checks.number_in("gamma_sals entry", g, 0, 1)
    kw = {k: v for k, v in dst_kw.items() if k != "gamma_sal"}
    return {float(g): train_sparse(model_kw, train_ds, test_ds, cfg, method="srigl", sparsity=sparsity, ablation=True,
                                   gamma_sal=float(g), **kw)
            for g in tqdm(sorted(set(gammas)), desc="gamma_sal", disable=not progress)}


def min_salient_table(model: nn.Module, sparsity: float, gammas: Sequence[float], distribution: str = "erk"):
    """Fig. 10 analogue: per prunable layer (rows) and :math:`\\gamma_{sal}` (columns), the minimum
    number of salient weights a neuron needs to escape ablation at the start of training,
    :math:`\\max(1, \\lfloor\\gamma_{sal} K_l / n_{out}\\rfloor)` (the rule of
    :func:`snnlab.sparsity.dst.srigl_update`), beside the layer's fan-in budget
    :math:`\\lfloor K_l/n_{out}\\rfloor`. Where it is 1 for every :math:`\\gamma_{sal}`, the threshold
    cannot change which neurons are ablated (the paper's explanation of Fig. 8's flat curves). The
    last layer (the output) is never ablated (column ``ablated``)."""
    checks.fraction("sparsity", sparsity)
    shapes = {k: tuple(p.shape) for k, p in prunable_parameters(model).items()}
    budgets = layer_budgets(shapes, sparsity, distribution)
    rows = []
    for i, (k, shp) in enumerate(shapes.items()):
        row: dict[str, Any] = {"layer": f"L{i + 1} {k}", "ablated": i < len(shapes) - 1, "K/n_out": budgets[k] // shp[0]}
        row.update({f"gamma={g:g}": ablation_threshold(budgets[k], shp[0], g) for g in gammas})
        rows.append(row)
    return pd.DataFrame(rows).set_index("layer")


def budget_table(model: nn.Module, sparsities: Sequence[float], distribution: str = "erk"):
    """A DataFrame, one row per prunable layer: its shape and, for each sparsity, the layer density
    (``d@s``) and the constant fan-in SRigL starts from (``k@s`` = max(1, K_l // n_out))."""
    shapes = {k: tuple(p.shape) for k, p in prunable_parameters(model).items()}
    rows = []
    for i, (k, shp) in enumerate(shapes.items()):
        row: dict[str, Any] = {"layer": f"L{i + 1} {k}", "shape": "x".join(map(str, shp)), "numel": math.prod(shp)}
        for s in sparsities:
            d = layer_densities(shapes, s, distribution)[k]
            K = layer_budgets(shapes, s, distribution)[k]
            row[f"d@{pct(s)}"] = round(d, 4)
            row[f"k@{pct(s)}"] = max(1, K // shp[0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("layer")


def accuracy_table(runs: Mapping[tuple[str, float], SparseRun], paper: Mapping[str, Any] | None = None):
    """A DataFrame, one row per sparsity: our test accuracy (%) and actual density per variant,
    and (``paper`` = the ``table9_wrn22_cifar10`` block of ``papers/srigl/paper.yaml``) the paper's;
    the dense run is the row of sparsity 0 (the same number in every column)."""
    labels = list(dict.fromkeys(lbl for lbl, s in runs if lbl != "dense"))
    sp = sorted({s for lbl, s in runs if lbl != "dense"})
    rows = []
    keys = {"RigL": "rigl", "SRigL w/o ablation": "srigl_no_ablation", "SRigL w/ ablation": "srigl_ablation"}
    for s in sp:
        row: dict[str, Any] = {"sparsity": s}
        for lbl in labels:
            if (lbl, s) in runs:
                row[f"ours {lbl}"] = round(100 * runs[(lbl, s)].acc, 1)
        if paper is not None:
            for lbl in labels:
                ref = paper.get(keys.get(lbl, ""), None)
                if ref is not None and s in paper["sparsity"]:
                    row[f"paper {lbl}"] = ref[paper["sparsity"].index(s)]
        for lbl in labels:
            if (lbl, s) in runs:
                row[f"density {lbl}"] = round(runs[(lbl, s)].density, 4)
        rows.append(row)
    if ("dense", 0.0) in runs:
        row = {"sparsity": 0.0, **{f"ours {lbl}": round(100 * runs[("dense", 0.0)].acc, 1) for lbl in labels}}
        if paper is not None and "dense" in paper:
            row.update({f"paper {lbl}": paper["dense"] for lbl in labels})
        row.update({f"density {lbl}": 1.0 for lbl in labels})
        rows.append(row)
    return pd.DataFrame(rows).set_index("sparsity")



def flops_rows(runs: Mapping[tuple[str, float], Any], dense_key: tuple[str, float] = ("dense", 0.0)) -> list[dict]:
    """One row per run of ``runs`` (``{(label, sparsity): run}`` with ``run.ops``, ``run.steps``,
    ``run.updates``, ``run.acc``, e.g. :func:`snnlab.pruning.sweep`), every count normalised by the
    dense run: ``train_weights`` (backward 2x, weights only: the paper's convention),
    ``train_spikes`` (2x, spikes counted), ``train_snn`` (spiking backward), ``inf_weights``,
    ``inf_spikes``, ``dense_grad_overhead`` (training ops with the dense-gradient steps over
    the same without them, minus 1; 2x, weights only) and ``analog_share`` (:func:`analog_share`)."""
    d = runs[dense_key]
    out = []
    for (label, s), r in runs.items():
        w = ratios(r.ops, d.ops, r.steps, r.updates, "2x", spikes=False)
        sp = ratios(r.ops, d.ops, r.steps, r.updates, "2x", spikes=True)
        sn = ratios(r.ops, d.ops, r.steps, r.updates, "snn", spikes=True)
        base = training_ops(r.ops, r.steps, 0, "2x", spikes=False)
        out.append({"method": label, "sparsity": s, "acc": 100 * r.acc, "updates": r.updates,
                    "train_weights": w["training"], "train_spikes": sp["training"], "train_snn": sn["training"],
                    "inf_weights": w["inference"], "inf_spikes": sp["inference"],
                    "dense_grad_overhead": training_ops(r.ops, r.steps, r.updates, "2x", spikes=False) / base - 1,
                    "analog_share": analog_share(r.ops)})
    return out


