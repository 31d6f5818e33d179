r"""Pruning masks and dynamic sparse training (RigL, SRigL) for spiking networks.

The machinery every sparsity notebook shares:

* **what is pruned**: :func:`prunable_parameters` selects the weights of the ``Linear`` / ``Conv``
  layers of a model (spikingjelly's step-mode layers subclass them), in registration (= forward)
  order, optionally without the first and/or last layer. Biases, BatchNorm and neuron parameters
  are never pruned. A mask is a bool tensor of the weight's shape, ``True`` = active connection.
* :class:`Masks` (a ``dict`` name -> bool tensor) applies masks (zeroes weights), masks gradients,
  and reports counts, densities and fan-in; :class:`MaskHook` keeps them applied during
  :func:`snnlab.train.fit` (inactive gradients zeroed before the optimiser, weights re-zeroed
  after it, so momentum / Adam / weight decay cannot revive a pruned weight).
* **layer-wise densities**: ``uniform`` (every layer at density d = 1 - sparsity) or ``erk``
  (Erdős–Rényi-Kernel, Evci et al. 2021): :math:`d_l = \min(1, \epsilon\, r_l)` with
  :math:`r_l = \sum_i s_{l,i} / \prod_i s_{l,i}` for a weight of shape ``s_l`` (``(n_out + n_in)
  / (n_out n_in)`` for a Linear layer, ``(n_out + n_in + k_h + k_w) / (n_out n_in k_h k_w)`` for a
  conv), :math:`\epsilon` solved so that :math:`\sum_l d_l N_l = d \sum_l N_l`; a layer whose
  :math:`\epsilon r_l` exceeds 1 is made dense and :math:`\epsilon` re-solved over the others
  (:func:`erk_densities`). :func:`layer_budgets` turns densities into exact integer counts
  :math:`K_l` (largest-remainder rounding: :math:`\sum_l K_l = \mathrm{round}(d \sum_l N_l)`).
* **one-shot masks**: :func:`magnitude_mask` (keep the largest :math:`|w|`, ``global`` over all
  selected layers or ``local`` per layer), :func:`random_mask`.
* **dynamic sparse training** as a :func:`~snnlab.train.fit` hook, :class:`DST`:

  - every :math:`\Delta T` steps (``after_backward``, dense gradients present) while
    :math:`t < t_{end} = \text{stop\_fraction} \cdot \text{total\_steps}`, a fraction
    :math:`f(t) = \frac{\alpha}{2}\left(1 + \cos\frac{\pi t}{t_{end}}\right)` of the active
    weights of each layer is dropped (smallest :math:`|w|`) and as many connections are grown
    (largest dense-gradient magnitude :math:`|\partial L/\partial w|`), new ones initialised to 0;
  - ``rigl`` (Evci et al. 2021): drop and grow over the whole layer, so neurons end up with very
    different fan-in;
  - ``srigl`` (Lasby et al. 2024): the same *salient set* S (the K weights RigL would keep) is
    computed, then every active neuron gets the same fan-in k: it keeps its largest-magnitude
    weights among S (at most k) and grows the rest by gradient magnitude, so it drops and grows
    the same number of connections; with ``ablation``, a neuron with fewer than
    :math:`\max(1, \lfloor\gamma_{sal} K/n_{out}\rfloor)` weights in S is ablated (all its weights
    inactive; it may come back later) and :math:`k = \lfloor K / n_{active}\rfloor` rises to keep
    the layer's budget; the output layer is never ablated (as in the reference code);
  - it records, at initialisation and after every update, fan-in statistics per layer, the number
    of active neurons per layer (layer width) and the In-Time Over-Parameterisation rate
    (ITOP, Liu et al. 2021: the fraction of the selected weights that have ever been active).

* :func:`train_sparse` builds a model, trains it dense or with :class:`DST`, evaluates it, counts
  its synaptic operations (:mod:`snnlab.flops`) and caches the result under ``results/_cache``.

Shapes: a weight is ``[n_out, n_in]`` (Linear) or ``[n_out, n_in/groups, k_h, k_w]`` (conv); a
neuron's fan-in is the number of active entries in its row ``weight[i]``.

Example::

    >>> import torch
    >>> from snnlab import models
    >>> net = models.build("mlp", 10, 1, 8, hidden=(32,), norm="none")
    >>> sorted(prunable_parameters(net))
    ['0.1.weight', '1.0.weight']
    >>> m = magnitude_mask(net, 0.9, scope="local")
    >>> m.counts()
    {'0.1.weight': 205, '1.0.weight': 32}
    >>> round(m.density(), 3)
    0.1
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

__all__ = [
    "PRUNABLE_TYPES",
    "DISTRIBUTIONS",
    "SCOPES",
    "METHODS",
    "prunable_parameters",
    "Masks",
    "MaskHook",
    "erk_densities",
    "layer_densities",
    "layer_budgets",
    "magnitude_mask",
    "random_mask",
    "cosine_drop_fraction",
    "rigl_update",
    "srigl_update",
    "validate_dst",
    "DST",
    "steps_per_epoch",
    "VARIANTS",
    "sweep",
    "accuracy_table",
    "budget_table",
    "SparseRun",
    "train_sparse",
    "plot_accuracy_vs_sparsity",
    "plot_layer_widths",
    "plot_fan_in",
    "plot_itop",
    "dst_explorer",
]

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
DISTRIBUTIONS = ("erk", "uniform")
SCOPES = ("global", "local")
METHODS = ("rigl", "srigl")


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------


def _check_sparsity(sparsity: Any, name: str = "sparsity") -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not 0 <= sparsity < 1:
        raise ValueError(f"{name}={sparsity!r} is invalid; allowed values: numbers in [0, 1) "
                         "(the fraction of weights removed)")
    return float(sparsity)


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is unknown; allowed values: {list(allowed)}")
    return value


def _check_int(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{name}={value!r} is invalid; allowed values: integers >= {lo}")
    return int(value)


def _check_unit(name: str, value: Any, lo_open: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        0 < value <= 1 if lo_open else 0 <= value <= 1)
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid; allowed values: numbers in "
                         f"{'(0, 1]' if lo_open else '[0, 1]'}")
    return float(value)


# ----------------------------------------------------------------------------------------------
# selection and the Masks container
# ----------------------------------------------------------------------------------------------


def prunable_parameters(model: nn.Module, exclude_first: bool = False, exclude_last: bool = False,
                        names: Iterable[str] | None = None) -> dict[str, nn.Parameter]:
    """The weights that pruning acts on: ``{parameter name: weight}`` of every ``Linear`` /
    ``Conv1d/2d/3d`` module, in registration order (the forward order of snnlab's models).

    ``exclude_first`` / ``exclude_last`` drop the first / last such layer (the layer fed by the
    analog input / the classifier); ``names`` restricts the selection to the given parameter names
    (a ``ValueError`` names any that is not a prunable weight). Scaled weight-standardised layers
    (``norm="sws"``) are refused: standardisation subtracts the mean, so a zeroed weight would not
    stay zero in the effective kernel.
    """
    from .models import ScaledWSConv2d, ScaledWSLinear

    found: dict[str, nn.Parameter] = {}
    for mname, mod in model.named_modules():
        if isinstance(mod, PRUNABLE_TYPES) and getattr(mod, "weight", None) is not None:
            if isinstance(mod, (ScaledWSConv2d, ScaledWSLinear)):
                raise ValueError(
                    f"module {mname!r} uses scaled weight standardisation (norm='sws'): masked weights would "
                    "not be zero after standardisation; build the model with norm='bn' or norm='none' to prune it")
            found[f"{mname}.weight" if mname else "weight"] = mod.weight
    keys = list(found)
    if exclude_first and keys:
        keys = keys[1:]
    if exclude_last and keys:
        keys = keys[:-1]
    if names is not None:
        names = list(names)
        bad = [n for n in names if n not in found]
        if bad:
            raise ValueError(f"names={bad!r} are not prunable weights of the model; allowed values: {list(found)}")
        keys = [k for k in keys if k in set(names)]
    if not keys:
        raise ValueError("no prunable (Linear / Conv) weights selected: check exclude_first / exclude_last / names")
    return {k: found[k] for k in keys}


class Masks(dict):
    """``{parameter name: bool mask}`` with the weight's shape (``True`` = active).

    A plain ``dict`` with helpers: :meth:`apply` zeroes masked weights, :meth:`mask_grads` zeroes
    their gradients, :meth:`counts` / :meth:`densities` / :meth:`density` report active counts per
    layer and overall (over the masked layers only), :meth:`fan_in` the active connections of each
    neuron, :meth:`state_dict` / :meth:`from_state_dict` round-trip through ``torch.save`` with
    ``weights_only=True``.
    """

    @classmethod
    def ones(cls, params: Mapping[str, torch.Tensor]) -> "Masks":
        return cls({k: torch.ones_like(p, dtype=torch.bool) for k, p in params.items()})

    @classmethod
    def from_weights(cls, params: Mapping[str, torch.Tensor]) -> "Masks":
        """Masks read back from the non-zero entries of the weights."""
        return cls({k: (p.detach() != 0) for k, p in params.items()})

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "Masks":
        return cls({k: torch.as_tensor(v).bool() for k, v in state.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.items()}

    def clone(self) -> "Masks":
        return Masks({k: v.clone() for k, v in self.items()})

    def to(self, device: torch.device | str) -> "Masks":
        return Masks({k: v.to(device) for k, v in self.items()})

    def _params(self, model: nn.Module) -> dict[str, nn.Parameter]:
        params = dict(model.named_parameters())
        missing = [k for k in self if k not in params]
        if missing:
            raise ValueError(f"mask names {missing} are not parameters of the model")
        for k, m in self.items():
            if params[k].shape != m.shape:
                raise ValueError(f"mask {k!r} has shape {tuple(m.shape)} but the weight has {tuple(params[k].shape)}")
        return {k: params[k] for k in self}

    @torch.no_grad()
    def apply(self, model: nn.Module) -> "Masks":
        """Zero every masked weight of ``model`` in place; returns ``self``."""
        for k, p in self._params(model).items():
            p.mul_(self[k].to(device=p.device, dtype=p.dtype))
        return self

    @torch.no_grad()
    def mask_grads(self, model: nn.Module) -> None:
        """Zero the gradients of masked weights (those that have a gradient)."""
        for k, p in self._params(model).items():
            if p.grad is not None:
                p.grad.mul_(self[k].to(device=p.device, dtype=p.grad.dtype))

    def counts(self) -> dict[str, int]:
        """Active connections per layer."""
        return {k: int(m.sum()) for k, m in self.items()}

    def numels(self) -> dict[str, int]:
        return {k: m.numel() for k, m in self.items()}

    def densities(self) -> dict[str, float]:
        """Fraction of active connections per layer."""
        return {k: int(m.sum()) / m.numel() for k, m in self.items()}

    def density(self) -> float:
        """Fraction of active connections over all masked layers."""
        return sum(self.counts().values()) / max(1, sum(self.numels().values()))

    def sparsity(self) -> float:
        return 1.0 - self.density()

    def fan_in(self, name: str) -> torch.Tensor:
        """Active connections per output neuron: int64 ``[n_out]``."""
        from .sparsity_theory import fan_in_counts

        return fan_in_counts(self[name])


class MaskHook:
    """:func:`snnlab.train.fit` hook that keeps ``masks`` applied.

    ``after_backward``: zero the gradients of masked weights, so optimiser state (momentum, Adam
    moments) does not grow there; ``after_step``: zero the masked weights again (weight decay,
    leftover momentum). The masks are applied once at construction when ``model`` is given.
    """

    def __init__(self, masks: Masks, model: nn.Module | None = None):
        if not isinstance(masks, Masks):
            masks = Masks(masks)
        self.masks = masks
        if model is not None:
            masks.apply(model)

    def after_backward(self, model: nn.Module, step: int) -> None:
        self.masks.mask_grads(model)

    def after_step(self, model: nn.Module, step: int) -> None:
        self.masks.apply(model)


# ----------------------------------------------------------------------------------------------
# layer-wise densities
# ----------------------------------------------------------------------------------------------


def _shapes(obj: nn.Module | Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    if isinstance(obj, nn.Module):
        obj = prunable_parameters(obj)
    return {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in obj.items()}


def erk_densities(shapes: Mapping[str, Sequence[int]] | nn.Module, sparsity: float,
                  power_scale: float = 1.0) -> dict[str, float]:
    r"""Erdős–Rényi-Kernel layer densities (Evci et al. 2021, Appendix of RigL).

    ``shapes``: ``{name: weight shape}`` (or a model: its prunable weights). Raw score
    :math:`r_l = (\sum_i s_i / \prod_i s_i)^{\text{power\_scale}}`; :math:`d_l = \epsilon r_l` with
    :math:`\epsilon = (d N - \sum_{dense} N_l) / \sum_{sparse} r_l N_l`; while the layer with the
    largest :math:`r_l` would get :math:`\epsilon r_l > 1` it is made dense (d_l = 1) and
    :math:`\epsilon` re-solved. Then :math:`\sum_l d_l N_l = (1 - \text{sparsity}) \sum_l N_l`
    exactly (up to float rounding).
    """
    sparsity = _check_sparsity(sparsity)
    shapes = _shapes(shapes)
    if not shapes:
        raise ValueError("shapes is empty; give at least one weight shape")
    numel = {k: math.prod(s) for k, s in shapes.items()}
    raw = {k: (sum(s) / math.prod(s)) ** power_scale for k, s in shapes.items()}
    target = (1.0 - sparsity) * sum(numel.values())
    dense: set[str] = set()
    while True:
        rest = [k for k in shapes if k not in dense]
        if not rest:
            break
        eps = (target - sum(numel[k] for k in dense)) / sum(raw[k] * numel[k] for k in rest)
        top = max(raw[k] for k in rest)
        if eps * top > 1:
            dense |= {k for k in rest if raw[k] == top}
            continue
        break
    return {k: 1.0 if k in dense else eps * raw[k] for k in shapes}


def layer_densities(shapes: Mapping[str, Sequence[int]] | nn.Module, sparsity: float,
                    distribution: str = "erk") -> dict[str, float]:
    """``{name: density}`` of each layer for an overall ``sparsity``: ``erk`` or ``uniform``."""
    _check_choice("distribution", distribution, DISTRIBUTIONS)
    sparsity = _check_sparsity(sparsity)
    shapes = _shapes(shapes)
    if distribution == "uniform":
        return {k: 1.0 - sparsity for k in shapes}
    return erk_densities(shapes, sparsity)


def layer_budgets(shapes: Mapping[str, Sequence[int]] | nn.Module, sparsity: float,
                  distribution: str = "erk") -> dict[str, int]:
    """Exact active counts :math:`K_l` per layer: :math:`d_l N_l` rounded by largest remainder so
    that :math:`\\sum_l K_l = \\mathrm{round}((1-\\text{sparsity}) \\sum_l N_l)`, every
    :math:`1 \\le K_l \\le N_l` (a layer rounded to 0 takes one connection from the largest)."""
    shapes = _shapes(shapes)
    dens = layer_densities(shapes, sparsity, distribution)
    numel = {k: math.prod(s) for k, s in shapes.items()}
    total = int(round((1.0 - sparsity) * sum(numel.values())))
    exact = {k: min(numel[k], dens[k] * numel[k]) for k in shapes}
    K = {k: int(math.floor(v + 1e-9)) for k, v in exact.items()}
    left = total - sum(K.values())
    order = sorted(shapes, key=lambda k: (-(exact[k] - K[k]), list(shapes).index(k)))
    for k in order:
        if left <= 0:
            break
        if K[k] < numel[k]:
            K[k] += 1
            left -= 1
    for k in shapes:
        if K[k] < 1:
            K[k] = 1
            donor = max((j for j in shapes if K[j] > 1), key=lambda j: K[j], default=None)
            if donor is not None:
                K[donor] -= 1
    return K


# ----------------------------------------------------------------------------------------------
# one-shot masks
# ----------------------------------------------------------------------------------------------


def _topk_mask(score: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask (shape of ``score``) with True at the k largest scores (ties: lowest index)."""
    flat = score.reshape(-1)
    out = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        idx = torch.sort(flat, descending=True, stable=True).indices[:k]
        out[idx] = True
    return out.reshape(score.shape)


def magnitude_mask(model: nn.Module, sparsity: float, scope: str = "global",
                   masks: Mapping[str, torch.Tensor] | None = None, exclude_first: bool = False,
                   exclude_last: bool = False, names: Iterable[str] | None = None) -> Masks:
    """Keep the largest-magnitude weights.

    ``scope="global"``: the :math:`K = \\mathrm{round}((1-s) N)` largest :math:`|w|` over all selected
    layers together (:math:`N` their total size); ``"local"``: the :math:`\\mathrm{round}((1-s) N_l)`
    largest in each layer (at least 1). With ``masks`` (e.g. the previous round of iterative
    pruning) only currently active weights compete, and sparsity still counts all weights.
    Ties are broken by position (stable sort).
    """
    sparsity = _check_sparsity(sparsity)
    _check_choice("scope", scope, SCOPES)
    params = prunable_parameters(model, exclude_first, exclude_last, names)
    scores = {}
    for k, p in params.items():
        s = p.detach().abs().float().cpu()
        if masks is not None and k in masks:
            s = torch.where(torch.as_tensor(masks[k]).cpu().bool(), s, torch.full_like(s, -1.0))
        scores[k] = s
    out = Masks()
    if scope == "local":
        for k, s in scores.items():
            out[k] = _topk_mask(s, max(1, int(round((1 - sparsity) * s.numel())))).to(params[k].device)
        return out
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    keep = _topk_mask(flat, max(1, int(round((1 - sparsity) * flat.numel()))))
    i = 0
    for k, s in scores.items():
        out[k] = keep[i:i + s.numel()].reshape(s.shape).to(params[k].device)
        i += s.numel()
    return out


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None:
        seed = 0
    return torch.Generator().manual_seed(_check_int("seed", seed, 0))


def random_mask(model: nn.Module, sparsity: float, distribution: str = "uniform", seed: int = 0,
                constant_fan_in: bool = False, exclude_first: bool = False, exclude_last: bool = False,
                names: Iterable[str] | None = None) -> Masks:
    """Random masks with exactly :func:`layer_budgets` active connections per layer, positions
    uniform; ``constant_fan_in=True`` instead gives every neuron the same
    :math:`k_l = \\max(1, \\lfloor K_l / n_{out} \\rfloor)` connections (uniform k-subset per row)."""
    from .sparsity_theory import constant_fan_in_mask

    params = prunable_parameters(model, exclude_first, exclude_last, names)
    budgets = layer_budgets({k: tuple(p.shape) for k, p in params.items()}, sparsity, distribution)
    gen = _generator(seed)
    out = Masks()
    for k, p in params.items():
        if constant_fan_in:
            n_out, fan_in = p.shape[0], p[0].numel()
            kk = min(fan_in, max(1, budgets[k] // n_out))
            m = constant_fan_in_mask(n_out, fan_in, kk, gen).reshape(p.shape)
        else:
            m = _topk_mask(torch.rand(p.shape, generator=gen, dtype=torch.float64), budgets[k])
        out[k] = m.to(p.device)
    return out


# ----------------------------------------------------------------------------------------------
# one DST update of one layer
# ----------------------------------------------------------------------------------------------


def cosine_drop_fraction(step: int, alpha: float, t_end: float) -> float:
    r""":math:`f(t) = \frac{\alpha}{2}(1 + \cos(\pi t / t_{end}))` for :math:`t < t_{end}`, else 0
    (Dettmers & Zettlemoyer 2019; RigL)."""
    if step >= t_end:
        return 0.0
    return alpha / 2 * (1 + math.cos(math.pi * step / t_end))


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
    n = int(mask.sum())
    n_drop = int(drop_fraction * n)
    w = weight.detach().abs().double().reshape(-1)
    m = mask.reshape(-1)
    keep = _topk_mask(torch.where(m, w, torch.full_like(w, -1.0)), n - n_drop)
    g = grad.detach().abs().double().reshape(-1)
    grow = _topk_mask(torch.where(keep, torch.full_like(g, -1.0), g), n_drop)
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
    4. each active neuron keeps its (at most k) largest-magnitude weights among its kept active
       weights of step 1 and grows :math:`k - \text{kept}_i` connections outside them by largest
       :math:`|g|`; ablated neurons have no active connection.

    The new mask has exactly k active connections in each of the :math:`n_{active}` active rows
    (:math:`n_{active} k \le K`, except without ablation when K < n_out: one per neuron).
    """
    shape = mask.shape
    n_out = shape[0]
    m = mask.reshape(n_out, -1)
    fan_in = m.shape[1]
    w = weight.detach().abs().double().reshape(n_out, -1)
    g = grad.detach().abs().double().reshape(n_out, -1)
    n = int(m.sum())
    n_drop = int(drop_fraction * n)
    keep = _topk_mask(torch.where(m, w, torch.full_like(w, -1.0)), n - n_drop)
    grow = _topk_mask(torch.where(keep, torch.full_like(g, -1.0), g), n_drop)
    salient = (keep | grow).sum(1)
    if ablation:
        threshold = max(1, int(math.floor(gamma_sal * budget / n_out + 1e-9)))
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
    kept = keep & active[:, None]
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
    _check_choice("method", method, METHODS)
    _check_sparsity(sparsity)
    _check_int("delta_t", delta_t, 1)
    _check_int("total_steps", total_steps, 1)
    _check_unit("alpha", alpha)
    _check_unit("stop_fraction", stop_fraction, lo_open=True)
    _check_unit("gamma_sal", gamma_sal)
    if not isinstance(ablation, bool):
        raise ValueError(f"ablation={ablation!r} is invalid; allowed values: True or False")
    _check_choice("distribution", distribution, DISTRIBUTIONS)
    _check_int("seed", seed, 0)


class DST(MaskHook):
    """Dynamic sparse training (RigL / SRigL) as a :func:`snnlab.train.fit` hook.

    ``DST(model, method="rigl"|"srigl", sparsity, delta_t, total_steps, alpha=0.3,
    stop_fraction=0.75, gamma_sal=0.3, ablation=True, distribution="erk"|"uniform", seed=0)``

    At construction: layer budgets :math:`K_l` (:func:`layer_budgets`), a random initial mask
    (RigL: :math:`K_l` uniform positions; SRigL: constant fan-in :math:`k = \\lfloor K_l/n\\rfloor`
    over the active neurons: all of them, or with ablation and :math:`K_l < n_{out}` a random
    :math:`K_l` of them with one connection each), masks applied, and (``sparse_init=True``)
    weights redrawn per neuron with torch's default variance for the neuron's *own* fan-in
    :math:`k_i` (:func:`snnlab.sparsity_theory.sparse_init_`, Evci et al. 2022): otherwise a
    99%-sparse spiking layer receives a hundredth of the dense input and never fires.

    ``after_backward(model, step)``: at steps :math:`t > 0` with :math:`t \\bmod \\Delta T = 0` and
    :math:`t < \\text{stop\\_fraction}\\cdot\\text{total\\_steps}`, update every layer with
    :func:`rigl_update` / :func:`srigl_update` from the dense gradients, set newly grown weights to
    0; then zero the gradients of inactive weights. ``after_step``: re-apply the masks.
    The output layer (last selected) is never ablated. The optimiser state of a regrown weight is
    not reset (:func:`~snnlab.train.fit` owns the optimiser); inactive weights get zero gradient,
    so their momentum only decays.

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
            from .sparsity_theory import sparse_init_

            nl, a = _default_init_gain()
            for k, p in params.items():
                sparse_init_(p.data, masks[k].cpu(), nonlinearity=nl, param=a, generator=gen)
        self.ever_active = {k: m.detach().cpu().clone() for k, m in masks.items()}
        self.history: list[dict[str, Any]] = []
        self._record(0, 0.0, {k: 0 for k in self.names})

    # -- construction -----------------------------------------------------------------------
    def _initial_mask(self, name: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        from .sparsity_theory import constant_fan_in_mask

        shape, K = self.shapes[name], self.budgets[name]
        n_out, fan_in = shape[0], math.prod(shape[1:])
        if self.method == "rigl":
            m = _topk_mask(torch.rand(shape, generator=gen, dtype=torch.float64), K)
            return m, m.reshape(n_out, -1).any(1)
        active = torch.ones(n_out, dtype=torch.bool)
        if self.ablation and K < n_out and not self._protected(name):
            active = _topk_mask(torch.rand(n_out, generator=gen, dtype=torch.float64), K)
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
            if self.method == "rigl":
                new = rigl_update(p, g, old, f)
                self.active[k] = new.reshape(new.shape[0], -1).any(1).cpu()
            else:
                abl = self.ablation and not self._protected(k)
                new, act = srigl_update(p, g, old, f, self.budgets[k], self.gamma_sal, abl)
                self.active[k] = act.cpu()
            born = new & ~old
            p.masked_fill_(born, 0.0)
            self.masks[k] = new
            self.ever_active[k] |= new.cpu()
            regrown[k] = int(born.sum())
        self.masks.apply(model)
        self._record(step, f, regrown)

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
        """Everything needed to resume: masks, ever-active sets, active neurons, history."""
        return {"masks": self.masks.state_dict(), "ever_active": {k: v.clone() for k, v in self.ever_active.items()},
                "active": {k: v.clone() for k, v in self.active.items()}, "history": list(self.history)}

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module | None = None) -> None:
        dev = {k: m.device for k, m in self.masks.items()}
        self.masks = Masks({k: torch.as_tensor(v).bool().to(dev[k]) for k, v in state["masks"].items()})
        self.ever_active = {k: torch.as_tensor(v).bool() for k, v in state["ever_active"].items()}
        self.active = {k: torch.as_tensor(v).bool() for k, v in state["active"].items()}
        self.history = list(state["history"])
        if model is not None:
            self.masks.apply(model)

    def after_epoch(self, epoch: int, model: nn.Module, record: dict) -> None:
        record["itop"] = self.itop()
        if getattr(self, "_state_dir", None) is not None:
            from . import results
            import io

            buf = io.BytesIO()
            torch.save({"epoch": epoch, **self.state_dict()}, buf)
            results.atomic_write_bytes(Path(self._state_dir) / f"dst-epoch{epoch}.pt", buf.getvalue())
            old = Path(self._state_dir) / f"dst-epoch{epoch - 2}.pt"
            if old.exists():
                old.unlink()


# ----------------------------------------------------------------------------------------------
# one training run, cached
# ----------------------------------------------------------------------------------------------


def steps_per_epoch(ds, batch_size: int) -> int:
    """Optimiser steps per epoch of :func:`snnlab.train.fit` (the last batch may be short)."""
    return -(-len(ds) // _check_int("batch_size", batch_size, 1))


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
        from dataclasses import asdict

        d = asdict(self)
        if not masks:
            d.pop("masks")
        return d


def _label(method: str, ablation: bool) -> str:
    return {"dense": "dense", "rigl": "RigL"}.get(method, "SRigL w/ ablation" if ablation else "SRigL w/o ablation")


def train_sparse(model_kw: Mapping[str, Any], train_ds, test_ds, cfg, method: str = "rigl", sparsity: float = 0.9,
                 ablation: bool = True, delta_t: int = 100, alpha: float = 0.3, stop_fraction: float = 0.75,
                 gamma_sal: float = 0.3, distribution: str = "erk", count_ops: bool = True, cache: bool = True,
                 ) -> SparseRun:
    """Build ``models.build(**model_kw)``, train it with :func:`snnlab.train.fit` and ``cfg`` (dense
    for ``method="dense"``, else with :class:`DST`), evaluate it, count its operations
    (:func:`snnlab.flops.count_ops` on the test set) and return a :class:`SparseRun`.

    With ``cache`` the run checkpoints into ``train.cache_dir("dst", ...)`` (keyed by everything
    above plus the datasets' names and sizes): every epoch (fit's ``last.pt`` plus the DST state
    of that epoch), so an interrupted run resumes, and a finished run is loaded, not retrained.
    The seed of the mask is ``cfg.seed``.
    """
    from . import models, train

    _check_choice("method", method, ("dense",) + METHODS)
    sparsity = 0.0 if method == "dense" else _check_sparsity(sparsity)
    key = {"model": dict(model_kw), "cfg": cfg.key(), "method": method, "sparsity": sparsity,
           "ablation": bool(ablation) and method == "srigl",
           "dst": {"delta_t": delta_t, "alpha": alpha, "stop_fraction": stop_fraction, "gamma_sal": gamma_sal,
                   "distribution": distribution} if method != "dense" else None,
           "data": [getattr(train_ds, "name", None), len(train_ds), getattr(test_ds, "name", None), len(test_ds)],
           "count_ops": bool(count_ops), "v": 1}
    cdir = train.cache_dir("dst", **key) if cache else None
    done = cdir / "run.pt" if cdir is not None else None
    if done is not None and done.exists():
        state = torch.load(done, map_location="cpu", weights_only=True)
        state["masks"] = {k: torch.as_tensor(v) for k, v in state["masks"].items()}
        return SparseRun(**state)
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
    if cdir is not None:
        from dataclasses import replace

        run_cfg = replace(cfg, checkpoint_dir=str(cdir))
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
    from .sparsity_theory import fan_in_counts

    ops = []
    if count_ops:
        from . import flops

        ops = [o.as_dict() for o in flops.count_ops(net, test_ds, cfg.T, cfg.encoding, device=device, seed=cfg.seed)]
    run = SparseRun(
        method=method, sparsity=sparsity, ablation=key["ablation"], acc=float(ev["acc"]),
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
    if done is not None:
        import io

        from . import results

        buf = io.BytesIO()
        torch.save(run.as_dict(masks=True), buf)
        results.atomic_write_bytes(done, buf.getvalue())
    return run


#: the three variants of Table 9: (method, ablation)
VARIANTS = (("rigl", False), ("srigl", False), ("srigl", True))


def sweep(model_kw: Mapping[str, Any], train_ds, test_ds, cfg, sparsities: Sequence[float],
          variants: Sequence[tuple[str, bool]] = VARIANTS, dense: bool = True, progress: bool = True,
          **dst_kw: Any) -> dict[tuple[str, float], SparseRun]:
    """:func:`train_sparse` for every sparsity and ``(method, ablation)`` variant (plus the dense
    run under ``("dense", 0.0)``); ``{(label, sparsity): run}`` with labels ``RigL``,
    ``SRigL w/o ablation``, ``SRigL w/ ablation``."""
    from tqdm.auto import tqdm

    for s in sparsities:
        _check_sparsity(s, "sparsities entry")
    jobs = [(m, a, s) for s in sparsities for m, a in variants] + ([("dense", False, 0.0)] if dense else [])
    out: dict[tuple[str, float], SparseRun] = {}
    for m, a, s in tqdm(jobs, desc="runs", disable=not progress):
        r = train_sparse(model_kw, train_ds, test_ds, cfg, method=m, sparsity=s, ablation=a, **dst_kw)
        out[(r.label, s)] = r
    return out


def budget_table(model: nn.Module, sparsities: Sequence[float], distribution: str = "erk"):
    """A DataFrame, one row per prunable layer: its shape and, for each sparsity, the layer density
    (``d@s``) and the constant fan-in SRigL starts from (``k@s`` = max(1, K_l // n_out))."""
    import pandas as pd

    shapes = {k: tuple(p.shape) for k, p in prunable_parameters(model).items()}
    rows = []
    for i, (k, shp) in enumerate(shapes.items()):
        row: dict[str, Any] = {"layer": f"L{i + 1} {k}", "shape": "x".join(map(str, shp)), "numel": math.prod(shp)}
        for s in sparsities:
            d = layer_densities(shapes, s, distribution)[k]
            K = layer_budgets(shapes, s, distribution)[k]
            row[f"d@{_pct(s)}"] = round(d, 4)
            row[f"k@{_pct(s)}"] = max(1, K // shp[0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("layer")


def accuracy_table(runs: Mapping[tuple[str, float], SparseRun], paper: Mapping[str, Any] | None = None):
    """A DataFrame, one row per sparsity: our test accuracy (%) and actual density per variant,
    and (``paper`` = the ``table9_wrn22_cifar10`` block of ``papers/srigl/paper.yaml``) the paper's;
    the dense run is the row of sparsity 0 (the same number in every column)."""
    import pandas as pd

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


# ----------------------------------------------------------------------------------------------
# figures (every function returns a matplotlib Figure)
# ----------------------------------------------------------------------------------------------


def _pct(s: float) -> str:
    return f"{100 * s:g}%"


def plot_accuracy_vs_sparsity(ours: Mapping[str, Mapping[float, float]], paper: Mapping[str, Mapping[float, float]],
                              ours_dense: float | None = None, paper_dense: float | None = None,
                              paper_title: str = "paper", ours_title: str = "ours", note: str = "",
                              paper_err: Mapping[str, Mapping[float, float]] | None = None):
    """Table 9 analogue: test accuracy (%) vs sparsity, the paper's numbers (left) beside ours
    (right), one line per method; dashed lines are the dense baselines. ``ours`` / ``paper``:
    ``{method label: {sparsity: accuracy %}}``."""
    from .plotting import figure

    fig, axes = figure(1, 2, w=4.6, h=3.4)
    for ax, data, dense, title, err in ((axes[0, 0], paper, paper_dense, paper_title, paper_err or {}),
                                        (axes[0, 1], ours, ours_dense, ours_title, {})):
        xs_all = sorted({s for d in data.values() for s in d})
        pos = {s: i for i, s in enumerate(xs_all)}
        for label, d in data.items():
            xs = sorted(d)
            e = [err.get(label, {}).get(s, 0.0) for s in xs] if err else None
            ax.errorbar([pos[s] for s in xs], [d[s] for s in xs], yerr=e, marker="o", capsize=3, label=label)
        if dense is not None:
            ax.axhline(dense, ls="--", color="k", lw=1, label="dense")
        ax.set_xticks(range(len(xs_all)), [_pct(s) for s in xs_all])
        ax.set(xlabel="sparsity", ylabel="test accuracy (%)", title=title)
    axes[0, 0].legend(fontsize="small")
    if note:
        fig.suptitle(note, fontsize="small")
    return fig


def plot_layer_widths(widths: Mapping[str, Mapping[str, int]], n_out: Mapping[str, int], title: str = ""):
    """Fig. 11 analogue: active neurons per layer (bars per method) against the dense width."""
    import numpy as np

    layers = list(n_out)
    from .plotting import figure

    fig, axes = figure(w=max(4.2, 1.3 * len(layers) + 2))
    ax = axes[0, 0]
    x = np.arange(len(layers))
    n = len(widths) + 1
    wbar = 0.8 / n
    ax.bar(x - 0.4 + wbar / 2, [n_out[k] for k in layers], wbar, color="0.75", label="dense width")
    for i, (label, wd) in enumerate(widths.items(), start=1):
        ax.bar(x - 0.4 + wbar / 2 + i * wbar, [wd[k] for k in layers], wbar, label=label)
    ax.set_xticks(x, [f"L{i + 1}" for i in range(len(layers))])
    ax.set(xlabel="layer", ylabel="active neurons", title=title)
    ax.legend(fontsize="small")
    return fig


def plot_fan_in(fan_in: Mapping[str, Mapping[str, Sequence[int]]], title: str = ""):
    """Fig. 12 analogue: fan-in of every active neuron per layer (dots, box: quartiles and median,
    crimson line: mean), one column per method."""
    import numpy as np

    methods = list(fan_in)
    layers = list(next(iter(fan_in.values())))
    from .plotting import figure

    fig, axes = figure(1, len(layers), w=3.2, h=3.2)
    rng = np.random.default_rng(0)
    for j, layer in enumerate(layers):
        ax = axes[0, j]
        for i, mth in enumerate(methods):
            v = np.asarray([f for f in fan_in[mth][layer] if f > 0])
            if v.size == 0:
                continue
            ax.boxplot([v], positions=[i], widths=0.5, showfliers=False)
            ax.scatter(i + rng.uniform(-0.2, 0.2, v.size), v, s=4, alpha=0.4)
            ax.plot([i - 0.3, i + 0.3], [v.mean()] * 2, color="crimson", lw=1.5)
        ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right")
        ax.set(title=f"L{j + 1}", ylabel="fan-in (active inputs)" if j == 0 else "")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def plot_itop(panels: Mapping[str, Mapping[str, tuple[Sequence[int], Sequence[float]]]],
              stop_step: float | None = None, densities: Mapping[str, float] | None = None, title: str = ""):
    """Figs. 14-17 analogue: ITOP rate (fraction of weights ever active) vs training step, one panel
    per entry of ``panels`` (``{panel title: {run label: (steps, itop)}}``); ``densities``
    (``{panel title: density}``) draws the initial density, ``stop_step`` when the mask froze."""
    from .plotting import figure

    fig, axes = figure(1, len(panels), w=4.6, h=3.4)
    for ax, (ptitle, curves) in zip(axes[0], panels.items()):
        for label, (steps, itop) in curves.items():
            ax.plot(steps, itop, drawstyle="steps-post", label=label)
        if densities and ptitle in densities:
            ax.axhline(densities[ptitle], ls="--", color="0.5", lw=0.8, label="density")
        if stop_step is not None:
            ax.axvline(stop_step, ls=":", color="k", lw=1, label="mask frozen")
        ax.set(xlabel="training step", ylabel="ITOP rate", title=ptitle, ylim=(0, None))
        ax.legend(fontsize="x-small", loc="lower right")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def dst_explorer(runs: Mapping[tuple[str, float], SparseRun], label: str, sparsity: float):
    """Fan-in distribution per layer and ITOP curve of one run: the notebook's widget callback."""
    import numpy as np

    run = runs[(label, sparsity)]
    layers = list(run.fan_in)
    from .plotting import figure

    fig, axes = figure(1, len(layers) + 1, w=3.0, h=2.8)
    for j, k in enumerate(layers):
        v = np.asarray([f for f in run.fan_in[k] if f > 0])
        axes[0, j].hist(v, bins=min(30, max(1, len(set(v.tolist())))))
        axes[0, j].set(title=f"L{j + 1}: {len(v)}/{run.n_out[k]} neurons", xlabel="fan-in")
    h = run.dst_history
    axes[0, -1].plot([r["step"] for r in h], [r["itop"] for r in h], drawstyle="steps-post")
    axes[0, -1].set(title=f"{label} {_pct(sparsity)}: acc {100 * run.acc:.1f}%", xlabel="step", ylabel="ITOP")
    return fig
