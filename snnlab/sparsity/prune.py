r"""Lottery-ticket pruning methods for SNNs (Kim et al., ECCV 2022): IMP with late rewinding,
Early-Bird tickets, SNIP, random pruning and tickets transferred from the ANN twin.

Composable pieces, each usable on its own; the drivers (:func:`imp`, :func:`find_early_bird`)
take the training as a callable so that a cached-run mechanism can supply it.

* **Masks** come from :mod:`snnlab.pruning` (:class:`~snnlab.pruning.Masks`,
  :class:`~snnlab.pruning.MaskHook`, :func:`~snnlab.pruning.magnitude_mask`,
  :func:`~snnlab.pruning.random_mask`). Prunable = every Linear / Conv weight, the first and last
  layer included; biases and BatchNorm are never pruned. :class:`MaskHook` zeroes the gradients of
  pruned weights and re-zeroes the weights after every optimiser step, so pruned weights stay
  bit-exactly zero under momentum and weight decay. Live weights are never frozen (the official
  code zeroes gradients wherever :math:`|w| < 10^{-6}`, which also freezes tiny live weights).
* **Rewinding** (:func:`snapshot`, :func:`restore`, :class:`RewindHook`): a snapshot is a deep copy
  of the whole ``state_dict`` (weights, biases, BatchNorm running statistics and counters) taken
  after ``epoch`` epochs of training (epoch 0 = initialisation); :func:`restore` copies it *into*
  the model's tensors (``load_state_dict``), so later training never writes into the snapshot.
* **One IMP level** (:func:`prune_level`): remove ``round(p * alive)`` of the surviving weights,
  smallest :math:`|w|` first, over all layers together (``global``) or per layer (``local``).
  After k levels the sparsity is :math:`1-(1-p)^k` (:func:`level_sparsity`); at p = 0.25 the
  paper's 68.30 / 89.91 / 95.69 / 98.13 % are levels 4 / 8 / 11 / 14.
* **IMP** (:func:`imp`): train, prune, rewind (late: to the snapshot at ``rewind_epoch``; or to
  initialisation, original IMP), retrain from the rewind epoch; K levels.
* **Early-Bird** (:class:`EarlyBird`): a one-shot global magnitude mask before every epoch; among
  the last q masks, the normalised Hamming distance from the newest to each older one; the ticket
  is found when the largest is below tau (q = 5, tau = 0.02). ``criterion="channel"`` is You et
  al.'s original: channel masks from :math:`|\gamma|` of the BatchNorm layers, tau = 0.1.
* **SNIP** (:func:`snip_scores`, :func:`snip_mask`): :math:`|\partial L/\partial w \cdot w|` on one
  batch at initialisation, for the SNN (surrogate gradients through time, loss = mean per-step
  cross-entropy) or its ANN twin (``models.build(..., spiking=False)``, same parameter names).
* **Transferred ticket** (:func:`transfer_ticket`): the mask and initial state of an IMP run on the
  ANN twin, loaded into the SNN.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn

from .. import checks
from .masks import MaskHook, Masks, magnitude_mask, prunable_parameters, random_mask

__all__ = [
    "SCOPES",
    "PAPER_LEVELS",
    "check_masks",
    "sparsity_report",
    "level_sparsity",
    "levels_for",
    "Snapshot",
    "snapshot",
    "restore",
    "RewindHook",
    "retrain_lrs",
    "prune_level",
    "LevelResult",
    "imp",
    "mask_distance",
    "channel_masks",
    "EarlyBird",
    "find_early_bird",
    "snip_scores",
    "snip_mask",
    "random_ticket",
    "transfer_ticket",
]

SCOPES = ("global", "local")
#: the paper's sparsity levels (Table 1, Fig. 5): level k at p = 25 % -> 1 - 0.75**k
PAPER_LEVELS = {4: 0.6830, 8: 0.8991, 11: 0.9569, 14: 0.9813}


# --- validation and reporting -----------------------------------------------------------------


def _p(p: Any) -> float:
    return checks.number_in("p", p, 0, 1, lo_open=True, hi_open=True, why=" (fraction of surviving weights pruned)")


def check_masks(model: nn.Module, masks: Mapping[str, torch.Tensor], name: str = "masks") -> Masks:
    """``masks`` as :class:`Masks` if it has exactly the prunable weights of ``model`` (names and
    shapes) and bool-like values; otherwise a ``ValueError`` naming the mismatch."""
    params = prunable_parameters(model)
    if not isinstance(masks, Mapping) or not masks:
        checks.fail(name, type(masks).__name__, f"a dict of bool masks for the prunable weights {list(params)}")
    extra = [k for k in masks if k not in params]
    missing = [k for k in params if k not in masks]
    if extra or missing:
        checks.fail(name, f"<masks for {list(masks)}>",
                    f"masks for exactly the prunable weights {list(params)} (unknown: {extra}, missing: {missing})")
    out = Masks()
    for k, p in params.items():
        m = torch.as_tensor(masks[k])
        if tuple(m.shape) != tuple(p.shape):
            checks.fail(f"{name}[{k!r}]", f"<mask of shape {tuple(m.shape)}>", f"a mask of the weight's shape {tuple(p.shape)}")
        if m.dtype != torch.bool and not bool(((m == 0) | (m == 1)).all()):
            checks.fail(f"{name}[{k!r}]", "<mask with values other than 0 and 1>", "bool masks (or 0/1)")
        out[k] = m.bool().to(p.device)
    return out


def sparsity_report(masks: Masks) -> dict[str, Any]:
    """``{"overall": sparsity, "layers": {name: sparsity}}`` (fractions of pruned weights)."""
    return {"overall": masks.sparsity(), "layers": {k: 1.0 - d for k, d in masks.densities().items()}}


def level_sparsity(p: float, k: int) -> float:
    """Sparsity after ``k`` IMP levels that each prune ``p`` of the surviving weights: 1-(1-p)^k."""
    p = _p(p)
    k = checks.int_at_least("k", k, 0)
    return 1.0 - (1.0 - p) ** k


def levels_for(sparsity: float, p: float = 0.25) -> int:
    """The first level whose sparsity 1-(1-p)^k reaches ``sparsity`` (to 1e-4)."""
    s = checks.fraction("sparsity", sparsity)
    p = _p(p)
    k = 0
    while 1.0 - (1.0 - p) ** k < s - 1e-4:
        k += 1
    return k


# --- snapshots and rewinding -------------------------------------------------------------------


@dataclass
class Snapshot:
    """A deep copy of a model's full ``state_dict`` after ``epoch`` epochs of training."""

    state: dict[str, torch.Tensor]
    epoch: int = 0

    def state_dict(self) -> dict[str, Any]:
        return {"state": {k: v.clone() for k, v in self.state.items()}, "epoch": torch.tensor(self.epoch)}

    @classmethod
    def from_state_dict(cls, d: Mapping[str, Any]) -> "Snapshot":
        return cls({k: v.clone() for k, v in d["state"].items()}, int(d["epoch"]))


def snapshot(model: nn.Module, epoch: int = 0) -> Snapshot:
    """Deep copy (``detach().clone()``) of every parameter and buffer of ``model``."""
    epoch = checks.int_at_least("epoch", epoch, 0)
    return Snapshot({k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)


@torch.no_grad()
def restore(model: nn.Module, snap: Snapshot | Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor] | None = None
            ) -> nn.Module:
    """Copy the snapshot's values into ``model``'s existing tensors (weights, biases, BatchNorm
    running statistics), then zero the pruned weights. Never assigns the snapshot's tensors to
    the model, so training afterwards cannot change the snapshot. Returns ``model``."""
    state = snap.state if isinstance(snap, Snapshot) else snap
    own = model.state_dict()
    extra = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    if extra or missing:
        checks.fail("snapshot", f"<state with {len(state)} entries>",
                    f"a state of this model (unknown: {extra[:5]}, missing: {missing[:5]})")
    for k, v in state.items():
        if tuple(own[k].shape) != tuple(v.shape):
            checks.fail(f"snapshot[{k!r}]", f"<shape {tuple(v.shape)}>", f"the model's shape {tuple(own[k].shape)}")
    mk = check_masks(model, masks) if masks is not None else None
    for k, t in own.items():  # state_dict tensors share storage with the parameters and buffers
        t.copy_(state[k].to(device=t.device, dtype=t.dtype))
    if mk is not None:
        mk.apply(model)
    return model


class RewindHook:
    """:func:`snnlab.train.fit` hook that snapshots the model after ``rewind_epoch`` epochs.

    ``rewind_epoch=0`` snapshots at construction (``model`` required). The official code
    snapshots at the end of 0-based epoch ``rewinding_epoch``, i.e. after 21 epochs for its
    default 20; here epoch e means "after e epochs", so pass 21 to match it.
    """

    def __init__(self, rewind_epoch: int, epochs: int, model: nn.Module | None = None):
        self.epochs = checks.int_at_least("epochs", epochs, 1)
        self.rewind_epoch = checks.integer("rewind_epoch", rewind_epoch, 0, self.epochs - 1)
        self.snapshot: Snapshot | None = None
        if self.rewind_epoch == 0:
            if model is None:
                checks.fail("model", None, "the model (rewind_epoch=0 snapshots at construction)")
            self.snapshot = snapshot(model, 0)

    def after_epoch(self, epoch: int, model: nn.Module, record: dict) -> None:
        if epoch == self.rewind_epoch:
            self.snapshot = snapshot(model, epoch)


def _cosine(lr: float, step: int, total: int, eta_min: float = 0.0) -> float:
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * step / total)) / 2


def retrain_lrs(lr: float, epochs: int, rewind_epoch: int, variant: str = "resume", eta_min: float = 0.0) -> list[float]:
    """Learning rate of each retraining epoch after rewinding to ``rewind_epoch`` (cosine schedule).

    ``resume`` (ours, as open_lth): the schedule of the first run continues at the rewind epoch,
    ``lr(e)`` for e = rewind_epoch .. epochs-1. ``fresh`` (the official code): a new cosine
    schedule from the full ``lr`` over ``epochs - rewind_epoch`` epochs (and a fresh optimiser).
    """
    lr = checks.positive("lr", lr)
    epochs = checks.int_at_least("epochs", epochs, 1)
    rewind_epoch = checks.integer("rewind_epoch", rewind_epoch, 0, epochs - 1)
    checks.choice("variant", variant, ("resume", "fresh"))
    if variant == "resume":
        return [_cosine(lr, e, epochs, eta_min) for e in range(rewind_epoch, epochs)]
    n = epochs - rewind_epoch
    return [_cosine(lr, e, n, eta_min) for e in range(n)]


# --- one IMP level ----------------------------------------------------------------------------


def prune_level(model: nn.Module, masks: Mapping[str, torch.Tensor] | None, p: float, scope: str = "global") -> Masks:
    """New masks with ``round(p * alive)`` fewer active weights: the smallest :math:`|w|` among
    the surviving ones, over all prunable layers together (``global``: one threshold) or per layer
    (``local``: ``round(p * alive_l)`` in each layer, at least one weight kept). ``masks=None``
    starts from the dense model. The model is not changed (apply the masks, or :func:`restore`)."""
    p = _p(p)
    checks.choice("scope", scope, SCOPES)
    params = prunable_parameters(model)
    prev = check_masks(model, masks) if masks is not None else Masks.ones(params)
    if scope == "global":
        alive = sum(int(m.sum()) for m in prev.values())
        total = sum(m.numel() for m in prev.values())
        keep = max(1, alive - int(round(p * alive)))
        return magnitude_mask(model, 1.0 - keep / total, "global", masks=prev)
    out = Masks()
    for k, m in prev.items():
        alive = int(m.sum())
        keep = max(1, alive - int(round(p * alive)))
        out.update(magnitude_mask(model, 1.0 - keep / m.numel(), "local", masks={k: m}, names=[k]))
    return out


@dataclass
class LevelResult:
    """One IMP level: its masks (after pruning, before retraining), sparsity, what ``train_fn``
    returned, the epoch training started from, and the wall-clock seconds of its training."""

    level: int
    masks: Masks
    sparsity: float
    start_epoch: int
    record: Any = None
    time_s: float = 0.0
    final: bool = False
    layer_sparsity: dict[str, float] = field(default_factory=dict)


#: ``train_fn(model, masks, start_epoch, hooks) -> record``: train ``model`` from epoch
#: ``start_epoch`` to the end of its schedule with ``hooks`` (``fit`` hooks, a :class:`MaskHook`
#: among them) and return whatever should be recorded (e.g. the history).
TrainFn = Callable[[nn.Module, Masks, int, list], Any]


def imp(model: nn.Module, train_fn: TrainFn, levels: int, epochs: int, p: float = 0.25, scope: str = "global",
        rewind: str = "late", rewind_epoch: int = 20, masks: Mapping[str, torch.Tensor] | None = None,
        final_train_fn: TrainFn | None = None, on_level: Callable[[LevelResult], None] | None = None
        ) -> list[LevelResult]:
    """Iterative magnitude pruning with rewinding: ``levels + 1`` trainings.

    Level 0 trains the (dense, or ``masks``-pruned) model from epoch 0 and snapshots it after
    ``rewind_epoch`` epochs (``rewind="late"``) or at initialisation (``rewind="init"``, original
    IMP). Each level k = 1..levels prunes ``p`` of the surviving weights (:func:`prune_level`),
    restores the snapshot with the new masks and retrains from the snapshot's epoch. The last
    level uses ``final_train_fn`` when given (Early-Time: search at T_early, final ticket at T).
    ``on_level`` is called with each :class:`LevelResult` (a run cache can persist it there).
    """
    levels = checks.int_at_least("levels", levels, 0)
    epochs = checks.int_at_least("epochs", epochs, 1)
    p = _p(p)
    checks.choice("scope", scope, SCOPES)
    checks.choice("rewind", rewind, ("late", "init"))
    rewind_epoch = checks.integer("rewind_epoch", rewind_epoch, 0, epochs - 1) if rewind == "late" else 0
    if not callable(train_fn):
        checks.fail("train_fn", train_fn, "a callable train_fn(model, masks, start_epoch, hooks)")
    cur = check_masks(model, masks) if masks is not None else Masks.ones(prunable_parameters(model))
    cur.apply(model)
    hook = RewindHook(rewind_epoch, epochs, model)
    out: list[LevelResult] = []
    for level in range(levels + 1):
        final = level == levels
        fn = final_train_fn if (final and final_train_fn is not None) else train_fn
        if level > 0:
            if hook.snapshot is None:
                raise RuntimeError(f"train_fn never reached rewind_epoch={rewind_epoch}: no after_epoch call with that epoch")
            cur = prune_level(model, cur, p, scope)
            restore(model, hook.snapshot, cur)
        start = 0 if level == 0 else hook.snapshot.epoch
        hooks: list = [MaskHook(cur, model)] + ([hook] if level == 0 and rewind_epoch > 0 else [])
        t0 = time.perf_counter()
        rec = fn(model, cur, start, hooks)
        res = LevelResult(level, cur.clone(), cur.sparsity(), start, rec, time.perf_counter() - t0, final,
                          sparsity_report(cur)["layers"])
        out.append(res)
        if on_level is not None:
            on_level(res)
    return out


# --- Early-Bird tickets ------------------------------------------------------------------------


def mask_distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Normalised Hamming distance: the fraction of entries (over all masks) where ``a`` and ``b``
    differ. (The official code also counts the always-equal 1-D BatchNorm weight entries in the
    denominator, which shrinks its distances slightly.)"""
    if set(a) != set(b):
        checks.fail("b", f"<masks for {sorted(b)}>", f"masks for the same names as a: {sorted(a)}")
    diff = total = 0
    for k in a:
        x, y = torch.as_tensor(a[k]).bool(), torch.as_tensor(b[k]).bool()
        if x.shape != y.shape:
            checks.fail(f"b[{k!r}]", f"<shape {tuple(y.shape)}>", f"shape {tuple(x.shape)}")
        diff += int((x != y).sum())
        total += x.numel()
    return diff / max(1, total)


def _bn_gammas(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {f"{n}.weight": m.weight for n, m in model.named_modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None}
    if not out:
        checks.fail("criterion", "channel", "'weight' for a model without affine BatchNorm layers")
    return out


def channel_masks(model: nn.Module, sparsity: float) -> Masks:
    """You et al.'s channel masks: keep the ``round((1-sparsity) * C)`` channels with the largest
    :math:`|\\gamma|` over all BatchNorm layers together (C channels in all)."""
    s = checks.fraction("sparsity", sparsity)
    g = {k: v.detach().abs().float().cpu() for k, v in _bn_gammas(model).items()}
    flat = torch.cat([v.reshape(-1) for v in g.values()])
    keep = max(1, int(round((1 - s) * flat.numel())))
    idx = torch.sort(flat, descending=True, stable=True).indices[:keep]
    sel = torch.zeros(flat.numel(), dtype=torch.bool)
    sel[idx] = True
    out, i = Masks(), 0
    for k, v in g.items():
        out[k] = sel[i : i + v.numel()].reshape(v.shape)
        i += v.numel()
    return out


class EarlyBird:
    """Early-Bird ticket detector; also a :func:`snnlab.train.fit` hook (``after_epoch``).

    The mask of the untrained model (epoch 0) is taken at construction; :meth:`update` after each
    epoch takes the mask "before the next epoch". Once q masks are queued, ``distances`` holds the
    normalised Hamming distances from the newest mask to the q-1 older ones; the ticket is found
    when their maximum is below ``tau``. ``found_epoch`` is the number of epochs trained by then
    (the official code's loop index at detection), ``ticket`` the newest mask.
    ``criterion="weight"``: global magnitude masks at ``sparsity`` (the paper, tau = 0.02);
    ``"channel"``: BatchNorm-gamma channel masks (You et al. 2020, tau = 0.1). ``tau=None`` picks
    the criterion's default.
    """

    TAUS = {"weight": 0.02, "channel": 0.1}

    def __init__(self, model: nn.Module, sparsity: float, q: int = 5, tau: float | None = None,
                 criterion: str = "weight"):
        self.sparsity = checks.fraction("sparsity", sparsity)
        self.q = checks.int_at_least("q", q, 2)
        self.criterion = checks.choice("criterion", criterion, tuple(self.TAUS))
        self.tau = self.TAUS[criterion] if tau is None else checks.number_in("tau", tau, 0, 1, lo_open=True)
        self.queue: deque[Masks] = deque(maxlen=self.q)
        self.history: list[dict[str, Any]] = []
        self.found_epoch: int | None = None
        self.ticket: Masks | None = None
        self.update(model, 0)

    def mask_of(self, model: nn.Module) -> Masks:
        if self.criterion == "channel":
            return channel_masks(model, self.sparsity)
        return Masks({k: v.cpu() for k, v in magnitude_mask(model, self.sparsity, "global").items()})

    @property
    def found(self) -> bool:
        return self.found_epoch is not None

    def update(self, model: nn.Module, epoch: int) -> bool:
        """Queue the mask of ``model`` after ``epoch`` epochs; True once the ticket is found."""
        if self.found:
            return True
        m = self.mask_of(model)
        self.queue.append(m)
        self.ticket = m
        rec: dict[str, Any] = {"epoch": int(epoch), "distances": None, "max_distance": None}
        if len(self.queue) == self.q:
            d = [mask_distance(m, old) for old in list(self.queue)[:-1]]
            rec.update(distances=d, max_distance=max(d))
            if max(d) < self.tau:
                self.found_epoch = int(epoch)
        self.history.append(rec)
        return self.found

    def after_epoch(self, epoch: int, model: nn.Module, record: dict) -> None:
        if not self.found:
            self.update(model, epoch)
            record["eb_max_distance"] = self.history[-1]["max_distance"]


def find_early_bird(model: nn.Module, train_epoch_fn: Callable[[nn.Module, int], Any], max_epochs: int,
                    sparsity: float, q: int = 5, tau: float | None = None, criterion: str = "weight") -> EarlyBird:
    """Train one epoch at a time (``train_epoch_fn(model, epoch_index)``) until the Early-Bird
    ticket is found or ``max_epochs`` have run; returns the :class:`EarlyBird` (its ``ticket`` is
    the last mask either way, as in the official code, and ``found_epoch`` None if not found)."""
    max_epochs = checks.int_at_least("max_epochs", max_epochs, 1)
    eb = EarlyBird(model, sparsity, q, tau, criterion)
    for e in range(max_epochs):
        train_epoch_fn(model, e)
        if eb.update(model, e + 1):
            break
    return eb


# --- SNIP, random and transferred tickets ------------------------------------------------------


def snip_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivity :math:`|\\partial L/\\partial w \\odot w|` of every prunable
    weight on one batch, in train mode (BatchNorm batch statistics; its running statistics and
    the parameters' ``.grad`` are left untouched).

    SNN (multi-step): ``x`` is ``[T, B, ...]``, the output ``[T, B, C]`` and :math:`L` the mean over
    t of ``loss_fn(o_t, y)`` (surrogate gradients through time). ANN twin: ``x`` ``[B, ...]``,
    output ``[B, C]``, :math:`L` = ``loss_fn(o, y)``. ``loss_fn`` defaults to cross-entropy.
    """
    loss_fn = loss_fn or F.cross_entropy
    params = prunable_parameters(model)
    saved = {k: b.detach().clone() for k, b in model.named_buffers()}
    was_training = model.training
    model.train()
    try:
        functional.reset_net(model)
        out = model(x)
        if out.dim() == 3:
            loss = torch.stack([loss_fn(o, y) for o in out]).mean()
        elif out.dim() == 2:
            loss = loss_fn(out, y)
        else:
            checks.fail("x", f"<input giving output shape {tuple(out.shape)}>", "an input whose output is [T, B, C] or [B, C]")
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    finally:
        functional.reset_net(model)
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(saved[k])
        model.train(was_training)
    return {k: (torch.zeros_like(p) if g is None else (g * p).detach().abs()) for (k, p), g in zip(params.items(), grads)}


def _keep_top(scores: Mapping[str, torch.Tensor], sparsity: float, scope: str) -> Masks:
    def top(flat: torch.Tensor, k: int) -> torch.Tensor:
        sel = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        sel[torch.sort(flat, descending=True, stable=True).indices[:k]] = True
        return sel

    out = Masks()
    if scope == "local":
        for k, s in scores.items():
            out[k] = top(s.reshape(-1), max(1, int(round((1 - sparsity) * s.numel())))).reshape(s.shape)
        return out
    flat = torch.cat([s.reshape(-1).float().cpu() for s in scores.values()])
    sel = top(flat, max(1, int(round((1 - sparsity) * flat.numel()))))
    i = 0
    for k, s in scores.items():
        out[k] = sel[i : i + s.numel()].reshape(s.shape).to(s.device)
        i += s.numel()
    return out


def snip_mask(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sparsity: float, scope: str = "global",
              loss_fn: Callable | None = None) -> Masks:
    """Keep the connections with the largest SNIP scores (:func:`snip_scores`): the
    ``round((1-sparsity) N)`` best over all layers (``global``, as SNIP) or per layer."""
    sparsity = checks.fraction("sparsity", sparsity)
    checks.choice("scope", scope, SCOPES)
    return _keep_top(snip_scores(model, x, y, loss_fn), sparsity, scope)


def random_ticket(model: nn.Module, sparsity: float | None = None, seed: int = 0,
                  like: Mapping[str, torch.Tensor] | None = None) -> Masks:
    """Random pruning: :func:`~snnlab.pruning.random_mask` at ``sparsity`` (the same density in
    every layer), or, with ``like``, a random mask with the same number of active weights in each
    layer as ``like`` (e.g. an IMP ticket)."""
    seed = checks.int_at_least("seed", seed, 0)
    if like is None:
        if sparsity is None:
            checks.fail("sparsity", None, "numbers in [0, 1) (or pass like=masks)")
        return random_mask(model, checks.fraction("sparsity", sparsity), "uniform", seed=seed)
    ref = check_masks(model, like, "like")
    gen = torch.Generator().manual_seed(seed)
    out = Masks()
    for k, m in ref.items():
        r = torch.rand(m.shape, generator=gen, dtype=torch.float64).reshape(-1)
        sel = torch.zeros(m.numel(), dtype=torch.bool)
        sel[torch.sort(r, descending=True, stable=True).indices[: int(m.sum())]] = True
        out[k] = sel.reshape(m.shape).to(m.device)
    return out


def transfer_ticket(snn: nn.Module, masks: Mapping[str, torch.Tensor], ann_state: Snapshot | Mapping[str, torch.Tensor]
                    ) -> nn.Module:
    """The transferred ticket: load the ANN twin's (initial or rewound) state into the SNN (same
    parameter and buffer names, see :func:`snnlab.models.build`) and apply the ANN's IMP mask.
    Returns ``snn``, ready to train as a sparse SNN."""
    mk = check_masks(snn, masks)
    state = ann_state.state if isinstance(ann_state, Snapshot) else ann_state
    return restore(snn, {k: v for k, v in copy.copy(dict(state)).items()}, mk)
