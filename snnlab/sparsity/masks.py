r"""Pruning masks: what is pruned, how masks are kept, and the one-shot mask rules.

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
  :math:`r_l = \sum_i s_{l,i} / \prod_i s_{l,i}` for a weight of shape ``s_l``, :math:`\epsilon`
  solved so that :math:`\sum_l d_l N_l = d \sum_l N_l`; a layer whose :math:`\epsilon r_l` exceeds
  1 is made dense and :math:`\epsilon` re-solved over the others (:func:`erk_densities`).
  :func:`layer_budgets` turns densities into exact integer counts :math:`K_l` (largest-remainder
  rounding: :math:`\sum_l K_l = \mathrm{round}(d \sum_l N_l)`).
* **one-shot masks**: :func:`magnitude_mask` (keep the largest :math:`|w|`, ``global`` over all
  selected layers or ``local`` per layer), :func:`random_mask`, and the constant fan-in masks
  (:func:`constant_fan_in_mask`, :func:`constant_fan_in_mask_like`, :func:`is_constant_fan_in`,
  :func:`sparse_init_`: Evci et al. 2022, std = gain/√k_i from each neuron's own fan-in).

Shapes: a weight is ``[n_out, n_in]`` (Linear) or ``[n_out, n_in/groups, k_h, k_w]`` (conv); a
neuron's fan-in is the number of active entries in its row ``weight[i]``.

Example::

    >>> import torch
    >>> from snnlab.core import models
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
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from .. import checks
from ..core.models import ScaledWSConv2d, ScaledWSLinear

__all__ = [
    "PRUNABLE_TYPES",
    "DISTRIBUTIONS",
    "SCOPES",
    "GeneratorLike",
    "as_generator",
    "prunable_parameters",
    "Masks",
    "MaskHook",
    "erk_densities",
    "layer_densities",
    "layer_budgets",
    "magnitude_mask",
    "random_mask",
    "select_k",
    "topk_mask",
    "constant_fan_in_mask",
    "constant_fan_in_mask_like",
    "fan_in_counts",
    "is_constant_fan_in",
    "sparse_init_",
]

GeneratorLike = torch.Generator | int | None


def as_generator(generator: GeneratorLike) -> torch.Generator | None:
    """``None`` (torch's global RNG), a ``torch.Generator`` as is, or an int seed -> a seeded CPU generator."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    seed = checks.int_at_least("seed", generator, 0)
    return torch.Generator().manual_seed(seed)


PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
DISTRIBUTIONS = ("erk", "uniform")
SCOPES = ("global", "local")


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
    sparsity = checks.fraction("sparsity", sparsity)
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
    checks.choice("distribution", distribution, DISTRIBUTIONS)
    sparsity = checks.fraction("sparsity", sparsity)
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


def topk_mask(score: torch.Tensor, k: int) -> torch.Tensor:
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
    sparsity = checks.fraction("sparsity", sparsity)
    checks.choice("scope", scope, SCOPES)
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
            out[k] = topk_mask(s, max(1, int(round((1 - sparsity) * s.numel())))).to(params[k].device)
        return out
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    keep = topk_mask(flat, max(1, int(round((1 - sparsity) * flat.numel()))))
    i = 0
    for k, s in scores.items():
        out[k] = keep[i:i + s.numel()].reshape(s.shape).to(params[k].device)
        i += s.numel()
    return out


def random_mask(model: nn.Module, sparsity: float, distribution: str = "uniform", seed: int = 0,
                constant_fan_in: bool = False, exclude_first: bool = False, exclude_last: bool = False,
                names: Iterable[str] | None = None) -> Masks:
    """Random masks with exactly :func:`layer_budgets` active connections per layer, positions
    uniform; ``constant_fan_in=True`` instead gives every neuron the same
    :math:`k_l = \\max(1, \\lfloor K_l / n_{out} \\rfloor)` connections (uniform k-subset per row)."""
    params = prunable_parameters(model, exclude_first, exclude_last, names)
    budgets = layer_budgets({k: tuple(p.shape) for k, p in params.items()}, sparsity, distribution)
    gen = as_generator(0 if seed is None else seed)
    out = Masks()
    for k, p in params.items():
        if constant_fan_in:
            n_out, fan_in = p.shape[0], p[0].numel()
            kk = min(fan_in, max(1, budgets[k] // n_out))
            m = constant_fan_in_mask(n_out, fan_in, kk, gen).reshape(p.shape)
        else:
            m = topk_mask(torch.rand(p.shape, generator=gen, dtype=torch.float64), budgets[k])
        out[k] = m.to(p.device)
    return out


# ----------------------------------------------------------------------------------------------
# constant fan-in masks and sparse init
# ----------------------------------------------------------------------------------------------


def select_k(noise: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask with True at the k largest entries along the last dim of ``noise`` (iid uniform
    noise => a uniformly random k-subset). Uses the complement when k > size/2 (cheaper topk)."""
    size = noise.shape[-1]
    if k == size:
        return torch.ones(noise.shape, dtype=torch.bool)
    if k <= size // 2:
        idx = noise.topk(k, dim=-1, sorted=False).indices
        return torch.zeros(noise.shape, dtype=torch.bool).scatter_(-1, idx, True)
    idx = noise.topk(size - k, dim=-1, sorted=False).indices
    return torch.ones(noise.shape, dtype=torch.bool).scatter_(-1, idx, False)



def constant_fan_in_mask(n_out: int, n_in: int, k: int, generator: GeneratorLike = None) -> torch.Tensor:
    """Random constant fan-in mask: bool [n_out, n_in] with exactly k ones per row (uniform,
    rows independent). 1 <= k <= n_in."""
    checks.int_at_least("n_in", n_in, 1)
    checks.int_at_least("n_out", n_out, 1)
    checks.integer("k", k, 1, n_in)
    gen = as_generator(generator)
    return select_k(torch.rand(n_out, n_in, generator=gen, dtype=torch.float64), k)


def constant_fan_in_mask_like(weight: torch.Tensor, density: float, generator: GeneratorLike = None) -> torch.Tensor:
    """Constant fan-in mask shaped like ``weight`` [out, *fan_in_dims] (Linear [out, in] or conv
    [out, in/groups, kh, kw]): every output channel keeps k = max(1, round(density · fan_in))
    entries, fan_in = prod(fan_in_dims). Returns bool, same shape and device as ``weight``."""
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        raise ValueError(f"weight must be a tensor with >= 2 dims [out, ...], got shape {tuple(getattr(weight, 'shape', ()))}")
    density = checks.number_in("density", density, 0, 1, lo_open=True, why=" (density = 1 - sparsity)")
    n_out = weight.shape[0]
    fan_in = weight[0].numel()
    k = max(1, int(round(density * fan_in)))
    mask = constant_fan_in_mask(n_out, fan_in, k, generator)
    return mask.reshape(weight.shape).to(weight.device)


def fan_in_counts(mask: torch.Tensor) -> torch.Tensor:
    """Non-zeros per output neuron: int64 [out] for a mask [out, ...]."""
    if not isinstance(mask, torch.Tensor) or mask.dim() < 2:
        raise ValueError(f"mask must be a tensor with >= 2 dims [out, ...], got shape {tuple(getattr(mask, 'shape', ()))}")
    return (mask.reshape(mask.shape[0], -1) != 0).sum(1)


def is_constant_fan_in(mask: torch.Tensor, allow_empty: bool = False) -> bool:
    """True iff every output neuron (row of mask [out, ...]) has the same number of non-zeros.
    All-zero rows (ablated neurons) are ignored when ``allow_empty`` and make it False otherwise."""
    counts = fan_in_counts(mask)
    nonzero = counts[counts > 0]
    if nonzero.numel() < counts.numel() and not allow_empty:
        return False
    if nonzero.numel() == 0:
        return bool(allow_empty)
    return bool(torch.all(nonzero == nonzero[0]))


def sparse_init_(
    weight: torch.Tensor,
    mask: torch.Tensor,
    nonlinearity: str = "relu",
    param: float | None = None,
    generator: GeneratorLike = None,
) -> torch.Tensor:
    """Sparsity-aware init (Evci et al. 2022), in place: W_i· ~ N(0, gain²/k_i) on the mask and 0
    off it, where k_i is neuron i's own fan-in (non-zeros in row i of mask [out, ...]) and
    gain = ``torch.nn.init.calculate_gain(nonlinearity, param)`` (√2 for relu). Rows with k_i = 0
    are zero. Then E[y_i²] = gain² E[x²] per neuron, whatever its fan-in. Returns ``weight``."""
    if not isinstance(weight, torch.Tensor) or not isinstance(mask, torch.Tensor) or weight.shape != mask.shape:
        raise ValueError(f"mask shape {tuple(getattr(mask, 'shape', ()))} must equal weight shape "
                         f"{tuple(getattr(weight, 'shape', ()))}")
    if weight.dim() < 2:
        raise ValueError(f"weight must have >= 2 dims [out, ...], got shape {tuple(weight.shape)}")
    try:
        gain = nn.init.calculate_gain(nonlinearity, param)
    except ValueError as e:
        raise ValueError(f"nonlinearity={nonlinearity!r} is invalid: {e}") from None
    gen = as_generator(generator)
    m = mask.reshape(mask.shape[0], -1) != 0
    k = m.sum(1).to(torch.float64)
    std = torch.where(k > 0, gain / k.clamp(min=1).sqrt(), torch.zeros_like(k))
    with torch.no_grad():
        w = torch.randn(m.shape, generator=gen, dtype=torch.float64) * std[:, None] * m
        weight.copy_(w.reshape(weight.shape).to(weight.dtype))
    return weight
