r"""Dynamic sparse training (RigL, SRigL) as a :func:`snnlab.train.fit` hook, :class:`DST`.

* every :math:`\Delta T` steps (``after_backward``, dense gradients present) while
  :math:`t < t_{end} = \text{stop\_fraction} \cdot \text{total\_steps}`, a fraction
  :math:`f(t) = \frac{\alpha}{2}\left(1 + \cos\frac{\pi t}{t_{end}}\right)` of the active
  weights of each layer is dropped (smallest :math:`|w|`) and as many connections are grown
  (largest dense-gradient magnitude :math:`|\partial L/\partial w|`), new ones initialised to 0;
* ``rigl`` (Evci et al. 2021): drop and grow over the whole layer, so neurons end up with very
  different fan-in;
* ``set`` (Mocanu et al. 2018, random regrowth): RigL's drop, but the new connections are drawn
  uniformly at random outside the kept set; the control for ITOP (Liu et al. 2021: gradient-based
  regrowth re-picks a few salient connections, random regrowth explores more);
* ``srigl`` (Lasby et al. 2024): the same *salient set* S (the K weights RigL would keep) is
  computed, then every active neuron gets the same fan-in k: it keeps its largest-magnitude
  weights among S (at most k) and grows the rest by gradient magnitude, so it drops and grows
  the same number of connections; with ``ablation``, a neuron with fewer than
  :math:`\max(1, \lfloor\gamma_{sal} K/n_{out}\rfloor)` weights in S is ablated (all its weights
  inactive; it may come back later) and :math:`k = \lfloor K / n_{active}\rfloor` rises to keep
  the layer's budget; the output layer is never ablated (as in the reference code);
* it records, at initialisation and after every update, fan-in statistics per layer, the number
  of active neurons per layer (layer width) and the In-Time Over-Parameterisation rate
  (ITOP, Liu et al. 2021: the fraction of the selected weights that have ever been active).

:func:`srigl_mask_from_weight` is the one-shot form of the SRigL selection (Appendix I benchmark).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .. import checks
from ..paths import atomic_write_bytes
from .masks import (
    DISTRIBUTIONS,
    Masks,
    MaskHook,
    constant_fan_in_mask,
    layer_budgets,
    prunable_parameters,
    topk_mask,
    sparse_init_,
)

__all__ = [
    "METHODS",
    "cosine_drop_fraction",
    "rigl_update",
    "set_update",
    "srigl_update",
    "ablation_threshold",
    "srigl_mask_from_weight",
    "validate_dst",
    "DST",
]

METHODS = ("rigl", "srigl", "set")


# ----------------------------------------------------------------------------------------------
# one DST update of one layer
# ----------------------------------------------------------------------------------------------


def cosine_drop_fraction(step: int, alpha: float, t_end: float) -> float:
    r""":math:`f(t) = \frac{\alpha}{2}(1 + \cos(\pi t / t_{end}))` for :math:`t < t_{end}`, else 0
    (Dettmers & Zettlemoyer 2019; RigL)."""
    if step >= t_end:
        return 0.0
    return alpha / 2 * (1 + math.cos(math.pi * step / t_end))


def _check_layer(fn: str, weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, drop_fraction: Any) -> None:
    """The tensors of one layer's update share the weight's shape; mask is bool; 0 <= f <= 1."""
    for name, t in (("weight", weight), ("grad", grad), ("mask", mask)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{fn}: {name} must be a tensor, got {type(t).__name__}")
    if grad.shape != weight.shape or mask.shape != weight.shape:
        raise ValueError(f"{fn}: weight {tuple(weight.shape)}, grad {tuple(grad.shape)} and mask {tuple(mask.shape)} "
                         "must have the same shape (the layer's weight shape)")
    if mask.dtype != torch.bool:
        raise ValueError(f"{fn}: mask has dtype {mask.dtype}; allowed values: torch.bool")
    checks.number_in("drop_fraction", drop_fraction, 0, 1)


def _rank_rows(score: torch.Tensor) -> torch.Tensor:
    """Rank (0 = largest) of every entry within its row of ``score`` [n_out, fan_in] (stable)."""
    order = torch.sort(score, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(score.shape[1], device=score.device).expand_as(order))
    return ranks


@torch.no_grad()
def rigl_update(weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor,
                drop_fraction: float) -> torch.Tensor:
    """RigL's update of one layer; returns the new bool mask (same count as ``mask``).

    With :math:`n` active weights: keep the :math:`n - \\lfloor f n \\rfloor` active weights with
    the largest :math:`|w|`, then activate the :math:`\\lfloor f n\\rfloor` connections outside
    that kept set with the largest :math:`|g|` (a just-dropped connection may be grown back;
    ties by position). Shapes: ``weight``, ``grad``, ``mask`` all the weight's shape.
    """
    _check_layer("rigl_update", weight, grad, mask, drop_fraction)
    n = int(mask.sum())
    n_drop = int(drop_fraction * n)
    w = weight.detach().abs().double().reshape(-1)
    m = mask.reshape(-1)
    keep = topk_mask(torch.where(m, w, torch.full_like(w, -1.0)), n - n_drop)
    g = grad.detach().abs().double().reshape(-1)
    grow = topk_mask(torch.where(keep, torch.full_like(g, -1.0), g), n_drop)
    return (keep | grow).reshape(mask.shape)


def ablation_threshold(budget: int, n_out: int, gamma_sal: float) -> int:
    """The fewest salient weights a neuron needs to stay active under SRigL's ablation:
    :math:`\\max(1, \\lfloor\\gamma_{sal} K / n_{out}\\rfloor)` (``K`` = the layer's budget)."""
    return max(1, int(math.floor(gamma_sal * budget / n_out + 1e-9)))


def set_update(weight: torch.Tensor, mask: torch.Tensor, drop_fraction: float,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """SET's update of one layer (random regrowth; the control of RigL's gradient regrowth): the
    drop of :func:`rigl_update`, then :math:`\\lfloor f n\\rfloor` connections drawn uniformly at
    random among those outside the kept set (a just-dropped one may be drawn again). Returns the new
    bool mask, same count as ``mask``."""
    _check_layer("set_update", weight, weight, mask, drop_fraction)
    n = int(mask.sum())
    n_drop = int(drop_fraction * n)
    w = weight.detach().abs().double().reshape(-1)
    keep = topk_mask(torch.where(mask.reshape(-1), w, torch.full_like(w, -1.0)), n - n_drop)
    r = torch.rand(w.shape, generator=generator, dtype=torch.float64).to(w.device)
    grow = topk_mask(torch.where(keep, torch.full_like(r, -1.0), r), n_drop)
    return (keep | grow).reshape(mask.shape)


@torch.no_grad()
def srigl_update(weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, drop_fraction: float,
                 budget: int, gamma_sal: float = 0.3, ablation: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    r"""SRigL's update of one layer (Lasby et al. 2024); returns ``(new_mask, active_neurons)``.

    ``weight``, ``grad``, ``mask``: the weight's shape ``[n_out, ...]``; ``budget`` K: the layer's
    target count. With :math:`n` currently active weights and :math:`n_d = \lfloor f n \rfloor`:

    1. salient set S: the :math:`n - n_d` active weights of largest :math:`|w|` plus the
       :math:`n_d` others of largest :math:`|g|` (RigL's new mask);
    2. with ``ablation``: neuron i stays active iff :math:`|S_i| \ge \max(1, \lfloor\gamma_{sal}
       K / n_{out}\rfloor)`; at least :math:`\lceil K / \text{fan\_in}\rceil` neurons (the ones
       with most salient weights) and at least one stay; without ablation all stay;
    3. fan-in :math:`k = \min(\text{fan\_in}, \max(1, \lfloor K / n_{active}\rfloor))`;
    4. ablate before choosing the kept set, as the reference code does (github.com/calgaryml/
       condensed-sparsity, ``src/rigl_torch/rigl_constant_fan.py``, ``_get_drop_mask``: the
       ablated neurons' drop scores are set below the minimum before the global top-:math:`(n - n_d)`
       by :math:`|w|`): the kept set is the :math:`n - n_d` largest-:math:`|w|` active weights of
       the *surviving* neurons; each surviving neuron keeps at most k of them (largest
       :math:`|w|`; the reference truncates by a sort of the boolean mask, i.e. arbitrarily) and
       grows :math:`k - \text{kept}_i` connections outside them by largest :math:`|g|`
       (``_get_grow_mask``); ablated neurons have no active connection.

    The new mask has exactly k active connections in each of the :math:`n_{active}` active rows
    (:math:`n_{active} k \le K`, except without ablation when K < n_out: one per neuron).
    """
    _check_layer("srigl_update", weight, grad, mask, drop_fraction)
    checks.integer("budget", budget, 1, mask.numel())
    checks.number_in("gamma_sal", gamma_sal, 0, 1)
    shape = mask.shape
    n_out = shape[0]
    m = mask.reshape(n_out, -1)
    fan_in = m.shape[1]
    w = weight.detach().abs().double().reshape(n_out, -1)
    g = grad.detach().abs().double().reshape(n_out, -1)
    n = int(m.sum())
    n_drop = int(drop_fraction * n)
    keep = topk_mask(torch.where(m, w, torch.full_like(w, -1.0)), n - n_drop)
    grow = topk_mask(torch.where(keep, torch.full_like(g, -1.0), g), n_drop)
    salient = (keep | grow).sum(1)
    if ablation:
        threshold = ablation_threshold(budget, n_out, gamma_sal)
        active = salient >= threshold
        need = max(1, min(n_out, -(-budget // fan_in)))
        if int(active.sum()) < need:
            order = torch.sort(salient, descending=True, stable=True).indices[:need]
            active = torch.zeros(n_out, dtype=torch.bool, device=mask.device)
            active[order] = True
    else:
        active = torch.ones(n_out, dtype=torch.bool, device=mask.device)
    n_active = int(active.sum())
    k = min(fan_in, max(1, budget // n_active))
    n_keep_active = min(n - n_drop, int((m & active[:, None]).sum()))
    kept = topk_mask(torch.where(m & active[:, None], w, torch.full_like(w, -1.0)), n_keep_active)
    kept_rank = _rank_rows(torch.where(kept, w, torch.full_like(w, -1.0)))
    n_kept = kept.sum(1).clamp(max=k)
    kept = kept & (kept_rank < n_kept[:, None])
    grow_rank = _rank_rows(torch.where(kept, torch.full_like(g, -1.0), g))
    need_grow = torch.where(active, k - n_kept, torch.zeros_like(n_kept))
    new = kept | ((grow_rank < need_grow[:, None]) & ~kept)
    return new.reshape(shape), active


# ----------------------------------------------------------------------------------------------
# dynamic sparse training hook
# ----------------------------------------------------------------------------------------------


def _default_init_gain() -> tuple[str, float]:
    # torch's default Linear/Conv init: kaiming_uniform(a=sqrt(5)) -> Var = 1 / (3 fan_in),
    # i.e. gain**2 = 2 / (1 + a**2) = 1/3 for leaky_relu with slope sqrt(5).
    return "leaky_relu", math.sqrt(5)


def validate_dst(method: str = "rigl", sparsity: float = 0.9, delta_t: int = 100, total_steps: int = 1,
                 alpha: float = 0.3, stop_fraction: float = 0.75, gamma_sal: float = 0.3, ablation: bool = True,
                 distribution: str = "erk", seed: int = 0) -> None:
    """Raise ``ValueError`` naming the first bad DST setting (what :class:`DST` checks), so a
    notebook can stop before any work."""
    checks.choice("method", method, METHODS)
    checks.fraction("sparsity", sparsity)
    checks.int_at_least("delta_t", delta_t, 1)
    checks.int_at_least("total_steps", total_steps, 1)
    checks.number_in("alpha", alpha, 0, 1)
    checks.number_in("stop_fraction", stop_fraction, 0, 1, lo_open=True)
    checks.number_in("gamma_sal", gamma_sal, 0, 1)
    if not isinstance(ablation, bool):
        raise ValueError(f"ablation={ablation!r} is invalid; allowed values: True or False")
    checks.choice("distribution", distribution, DISTRIBUTIONS)
    checks.int_at_least("seed", seed, 0)


class DST(MaskHook):
    """Dynamic sparse training (RigL / SRigL / SET) as a :func:`snnlab.train.fit` hook.

    ``DST(model, method="rigl"|"srigl"|"set", sparsity, delta_t, total_steps, alpha=0.3,
    stop_fraction=0.75, gamma_sal=0.3, ablation=True, distribution="erk"|"uniform", seed=0)``

    At construction: layer budgets :math:`K_l` (:func:`layer_budgets`), a random initial mask
    (RigL and SET: :math:`K_l` uniform positions; SRigL: constant fan-in :math:`k = \\lfloor K_l/n\\rfloor`
    over the active neurons: all of them, or with ablation and :math:`K_l < n_{out}` a random
    :math:`K_l` of them with one connection each), masks applied, and (``sparse_init=True``)
    weights redrawn per neuron with torch's default variance for the neuron's *own* fan-in
    :math:`k_i` (:func:`snnlab.sparsity_theory.sparse_init_`, Evci et al. 2022): otherwise a
    99%-sparse spiking layer receives a hundredth of the dense input and never fires.

    ``after_backward(model, step)``: at steps :math:`t > 0` with :math:`t \\bmod \\Delta T = 0` and
    :math:`t < \\text{stop\\_fraction}\\cdot\\text{total\\_steps}`, update every layer with
    :func:`rigl_update` / :func:`srigl_update` / :func:`set_update` from the dense gradients, set
    newly grown weights to 0 and zero the optimiser state of regrown and inactive weights
    (:meth:`set_optimizer`, as the reference code's ``reset_momentum``); then zero the gradients
    of inactive weights. ``after_step``: re-apply the masks. The output layer (last selected) is
    never ablated. SET's random draws come from its own generator seeded with ``seed``.

    ``history``: one record at initialisation (step 0) and after every update: ``step``,
    ``drop_fraction``, ``itop`` (global), ``itop_layer``, ``width`` (active neurons = neurons
    with fan-in > 0, per layer), ``fan_in`` (min / max / mean / std over active neurons, per
    layer), ``nnz`` (per layer), ``regrown`` (newly activated connections, per layer); with
    ``record_fan_in=True`` also ``fan_in_all`` (the full per-neuron lists).
    """

    def __init__(self, model: nn.Module, method: str = "rigl", sparsity: float = 0.9, delta_t: int = 100,
                 total_steps: int = 1000, alpha: float = 0.3, stop_fraction: float = 0.75,
                 gamma_sal: float = 0.3, ablation: bool = True, distribution: str = "erk", seed: int = 0,
                 exclude_first: bool = False, exclude_last: bool = False, sparse_init: bool = True,
                 record_fan_in: bool = False):
        validate_dst(method, sparsity, delta_t, total_steps, alpha, stop_fraction, gamma_sal, ablation,
                     distribution, seed)
        self.method, self.sparsity = method, float(sparsity)
        self.delta_t, self.total_steps = int(delta_t), int(total_steps)
        self.alpha, self.stop_fraction, self.gamma_sal = float(alpha), float(stop_fraction), float(gamma_sal)
        self.ablation = ablation and method == "srigl"
        self.distribution, self.seed = distribution, int(seed)
        self.record_fan_in = bool(record_fan_in)
        self.t_end = self.stop_fraction * self.total_steps
        params = prunable_parameters(model, exclude_first, exclude_last)
        self.names = list(params)
        self.shapes = {k: tuple(p.shape) for k, p in params.items()}
        self.budgets = layer_budgets(self.shapes, self.sparsity, self.distribution)
        gen = torch.Generator().manual_seed(self.seed)
        masks = Masks()
        self.active: dict[str, torch.Tensor] = {}
        for k, p in params.items():
            masks[k], self.active[k] = self._initial_mask(k, gen)
            masks[k] = masks[k].to(p.device)
        super().__init__(masks, model)
        if sparse_init:

            nl, a = _default_init_gain()
            for k, p in params.items():
                sparse_init_(p.data, masks[k].cpu(), nonlinearity=nl, param=a, generator=gen)
        self.ever_active = {k: m.detach().cpu().clone() for k, m in masks.items()}
        self._grow_gen = torch.Generator().manual_seed(self.seed + 1)  # SET's random regrowth
        self.history: list[dict[str, Any]] = []
        self._record(0, 0.0, {k: 0 for k in self.names})

    # -- construction -----------------------------------------------------------------------
    def _initial_mask(self, name: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:

        shape, K = self.shapes[name], self.budgets[name]
        n_out, fan_in = shape[0], math.prod(shape[1:])
        if self.method in ("rigl", "set"):
            m = topk_mask(torch.rand(shape, generator=gen, dtype=torch.float64), K)
            return m, m.reshape(n_out, -1).any(1)
        active = torch.ones(n_out, dtype=torch.bool)
        if self.ablation and K < n_out and not self._protected(name):
            active = topk_mask(torch.rand(n_out, generator=gen, dtype=torch.float64), K)
        n_active = int(active.sum())
        k = min(fan_in, max(1, K // n_active))
        rows = constant_fan_in_mask(n_out, fan_in, k, gen) & active[:, None]
        return rows.reshape(shape), active

    def _protected(self, name: str) -> bool:
        return name == self.names[-1]

    # -- schedule ----------------------------------------------------------------------------
    def drop_fraction(self, step: int) -> float:
        """:func:`cosine_drop_fraction` at ``step`` with this hook's alpha and stop step."""
        return cosine_drop_fraction(step, self.alpha, self.t_end)

    def is_update_step(self, step: int) -> bool:
        return step > 0 and step % self.delta_t == 0 and step < self.t_end

    # -- fit hooks ---------------------------------------------------------------------------
    def _sync_device(self, model: nn.Module) -> None:
        """Keep each mask on its weight's device (fit moves the model after the hook is built)."""
        params = dict(model.named_parameters())
        for k in self.names:
            if self.masks[k].device != params[k].device:
                self.masks[k] = self.masks[k].to(params[k].device)

    def after_backward(self, model: nn.Module, step: int) -> None:
        self._sync_device(model)
        if self.is_update_step(step):
            self.update(model, step)
        self.masks.mask_grads(model)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """One connectivity update of every layer from the current (dense) gradients."""
        f = self.drop_fraction(step)
        params = dict(model.named_parameters())
        regrown = {}
        for k in self.names:
            p = params[k]
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            old = self.masks[k]
            if self.method in ("rigl", "set"):
                new = rigl_update(p, g, old, f) if self.method == "rigl" else set_update(p, old, f, self._grow_gen)
                self.active[k] = new.reshape(new.shape[0], -1).any(1).cpu()
            else:
                abl = self.ablation and not self._protected(k)
                new, act = srigl_update(p, g, old, f, self.budgets[k], self.gamma_sal, abl)
                self.active[k] = act.cpu()
            born = new & ~old
            p.masked_fill_(born, 0.0)
            self._reset_optimizer_state(p, new, born)
            self.masks[k] = new
            self.ever_active[k] |= new.cpu()
            regrown[k] = int(born.sum())
        self.masks.apply(model)
        self._record(step, f, regrown)

    def set_optimizer(self, optimizer: torch.optim.Optimizer | None) -> None:
        """The optimizer whose per-weight state :meth:`update` resets (called by
        :func:`snnlab.train.fit` for every hook that has this method)."""
        self.optimizer = optimizer

    @torch.no_grad()
    def _reset_optimizer_state(self, p: torch.Tensor, new: torch.Tensor, born: torch.Tensor) -> None:
        """Zero the optimizer's per-weight state outside the new mask and at regrown weights, as
        the reference ``reset_momentum`` (``src/rigl_torch/rigl_scheduler.py``: SGD's
        ``momentum_buffer *= mask``, run after every mask update) -- extended to Adam's
        ``exp_avg`` / ``exp_avg_sq``. (Adam's step count is per tensor and is not reset.)"""
        opt = getattr(self, "optimizer", None)
        if opt is None:
            return
        state = opt.state.get(p, {})
        for key in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
            buf = state.get(key)
            if isinstance(buf, torch.Tensor) and buf.shape == p.shape:
                buf.masked_fill_(~new.to(buf.device) | born.to(buf.device), 0.0)

    # -- statistics --------------------------------------------------------------------------
    def itop(self) -> float:
        """Fraction of the selected weights that have ever been active."""
        return sum(int(v.sum()) for v in self.ever_active.values()) / sum(v.numel() for v in self.ever_active.values())

    def fan_in(self, name: str) -> torch.Tensor:
        return self.masks.fan_in(name).cpu()

    def widths(self) -> dict[str, int]:
        """Active neurons (fan-in > 0) per layer."""
        return {k: int((self.fan_in(k) > 0).sum()) for k in self.names}

    def _record(self, step: int, f: float, regrown: dict[str, int]) -> None:
        rec: dict[str, Any] = {"step": int(step), "drop_fraction": float(f), "itop": self.itop(),
                               "itop_layer": {}, "width": {}, "fan_in": {}, "nnz": {}, "regrown": dict(regrown)}
        if self.record_fan_in:
            rec["fan_in_all"] = {}
        for k in self.names:
            fi = self.fan_in(k)
            act = fi[fi > 0].double()
            rec["itop_layer"][k] = float(self.ever_active[k].double().mean())
            rec["width"][k] = int(act.numel())
            rec["nnz"][k] = int(fi.sum())
            rec["fan_in"][k] = ({"min": int(act.min()), "max": int(act.max()), "mean": float(act.mean()),
                                 "std": float(act.std(unbiased=False))} if act.numel() else
                                {"min": 0, "max": 0, "mean": 0.0, "std": 0.0})
            if self.record_fan_in:
                rec["fan_in_all"][k] = fi.tolist()
        self.history.append(rec)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: masks, ever-active sets, active neurons, history, SET's generator."""
        return {"masks": self.masks.state_dict(), "ever_active": {k: v.clone() for k, v in self.ever_active.items()},
                "active": {k: v.clone() for k, v in self.active.items()}, "history": list(self.history),
                "grow_gen": self._grow_gen.get_state()}

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module | None = None) -> None:
        dev = {k: m.device for k, m in self.masks.items()}
        self.masks = Masks({k: torch.as_tensor(v).bool().to(dev[k]) for k, v in state["masks"].items()})
        self.ever_active = {k: torch.as_tensor(v).bool() for k, v in state["ever_active"].items()}
        self.active = {k: torch.as_tensor(v).bool() for k, v in state["active"].items()}
        self.history = list(state["history"])
        if "grow_gen" in state:
            self._grow_gen.set_state(torch.as_tensor(state["grow_gen"]))
        if model is not None:
            self.masks.apply(model)

    def after_epoch(self, epoch: int, model: nn.Module, record: dict) -> None:
        record["itop"] = self.itop()
        if getattr(self, "_state_dir", None) is not None:

            buf = io.BytesIO()
            torch.save({"epoch": epoch, **self.state_dict()}, buf)
            atomic_write_bytes(Path(self._state_dir) / f"dst-epoch{epoch}.pt", buf.getvalue())
            old = Path(self._state_dir) / f"dst-epoch{epoch - 2}.pt"
            if old.exists():
                old.unlink()


def srigl_mask_from_weight(
    weight: torch.Tensor, density: float, gamma_sal: float = 0.3, ablation: bool = True
) -> torch.Tensor:
    """SRigL's constant fan-in mask with neuron ablation, one-shot from a dense weight [out, in]
    (used by the Appendix I benchmark). The same selection code as :func:`srigl_update`:

    budget K = max(1, floor(density * out * in)) (the reference's ``int(numel * (1 - sparsity))``,
    ``get_fan_in_after_ablation`` in ``src/rigl_torch/utils/rigl_utils.py``); the salient set is
    the K largest |W_ij| (the mask passed to :func:`srigl_update` with drop fraction 0), and
    regrowth is scored by |W| as well, so every surviving neuron keeps its k = floor(K / n_active)
    largest |W_ij|. The mask never exceeds K non-zeros with ablation (each surviving neuron has a
    salient weight, so n_active <= K).
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D tensor [out, in], got shape {tuple(getattr(weight, 'shape', ()))}")
    density = checks.number_in("density", density, 0, 1, lo_open=True, why=" (density = 1 - sparsity)")
    if not checks.is_real(gamma_sal) or not (0 <= gamma_sal <= 1):
        raise ValueError(f"gamma_sal={gamma_sal!r} is out of range; allowed values: 0 <= gamma_sal <= 1")
    a = weight.detach().abs().to(torch.float64)
    budget = max(1, int(math.floor(density * a.numel() + 1e-9)))
    salient = topk_mask(a.reshape(-1), budget).reshape(a.shape)
    mask, _ = srigl_update(a, a, salient, 0.0, budget, gamma_sal=gamma_sal, ablation=ablation)
    return mask.to(weight.device)
