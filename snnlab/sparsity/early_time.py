r"""Early-Time (ET) tickets (Kim et al., ECCV 2022, Sec. 3.3 and Algorithm 1).

An SNN run for T steps gives per-step outputs :math:`o[1..T]` (``[T, N, C]``). The accumulated
class probability after t steps is

.. math:: P_t = \mathrm{softmax}\Big(\frac1t \sum_{s \le t} o[s]\Big) \quad\text{(per sample)}.

For t = 2..T, :func:`normalized_divergence` computes :math:`D_t`, the divergence between
:math:`P_t` and :math:`P_T` averaged over the N samples, and returns :math:`D_t / D_2` (a tensor
of length T-1 that starts at 1 and ends at 0):

* ``metric="kl"``, ``direction="paper"``: :math:`D_t = KL(P_t \,\|\, P_T)` (Algorithm 1 as printed);
* ``metric="kl"``, ``direction="official"``: :math:`D_t = KL(P_T \,\|\, P_t)`, the argument order of
  the official code (``nn.KLDivLoss()(log_softmax(P_t), softmax(P_T))``);
* ``metric="jsd"``: the Jensen-Shannon divergence (symmetric, ``direction`` is irrelevant).

Natural logarithms; the result is computed in float64. :func:`select_t_early` returns the smallest
t whose normalised value is below :math:`\lambda` (0.6 in the paper), or T if none is.

Worked example (T = 3, one sample, two classes; outputs o[1] = (2, 0), o[2] = o[3] = (0, 0))::

    >>> import torch
    >>> out = torch.tensor([[[2., 0.]], [[0., 0.]], [[0., 0.]]])
    >>> normalized_divergence(out).tolist()
    [1.0, 0.0]
    >>> select_t_early(torch.tensor([1.0, 0.55, 0.2, 0.0]), lam=0.6)
    3

The official code differs in ways offered here as options, never as defaults (see
:func:`official_t_early`): it computes the divergences on one augmented training batch of 1000 in
train mode (BatchNorm uses batch statistics and its running statistics are updated), it only
tries the candidates t in {2, 3, 4}, it normalises by the largest candidate divergence instead of
:math:`D_2`, and its training loss stays divided by the original T after switching to T_early.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from spikingjelly.activation_based import functional

from .. import checks, data
from ..core.encoding import encode_batch

__all__ = [
    "METRICS",
    "DIRECTIONS",
    "accumulated_probabilities",
    "divergences",
    "normalized_divergence",
    "select_t_early",
    "t_early_vs_lambda",
    "step_outputs",
    "find_t_early",
    "official_t_early",
]

METRICS = ("kl", "jsd")
DIRECTIONS = ("paper", "official")


def _check_outputs(outputs: Any) -> torch.Tensor:
    if not isinstance(outputs, torch.Tensor):
        try:
            outputs = torch.as_tensor(outputs)
        except Exception:  # noqa: BLE001 - any failure is a bad input
            checks.fail("outputs", type(outputs).__name__, "a tensor or array of shape [T, N, C]")
    if outputs.dim() != 3:
        checks.fail("outputs", f"<tensor of shape {tuple(outputs.shape)}>",
                    "a tensor of rank 3, [T time steps, N samples, C classes]")
    T, N, C = outputs.shape
    if T < 2:
        checks.fail("outputs", f"<tensor of shape {tuple(outputs.shape)}>",
                    "T >= 2 time steps (Early-Time compares P_t with P_T for t = 2..T)")
    if N < 1 or C < 1:
        checks.fail("outputs", f"<tensor of shape {tuple(outputs.shape)}>", "N >= 1 samples and C >= 1 classes")
    if not torch.is_floating_point(outputs):
        outputs = outputs.double()
    if not torch.isfinite(outputs).all():
        checks.fail("outputs", "<tensor with inf or nan>", "finite numbers")
    return outputs.detach().to(torch.float64)


def accumulated_probabilities(outputs: Any, log: bool = False) -> torch.Tensor:
    r""":math:`P_t = \mathrm{softmax}(\frac1t\sum_{s\le t} o[s])` for t = 1..T: ``[T, N, C]``
    (float64; ``log=True`` returns :math:`\log P_t`)."""
    o = _check_outputs(outputs)
    T = o.shape[0]
    mean = o.cumsum(0) / torch.arange(1, T + 1, dtype=o.dtype).view(T, 1, 1)
    return torch.log_softmax(mean, -1) if log else torch.softmax(mean, -1)


def _kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last axis from log-probabilities (0 log 0 = 0)."""
    p = logp.exp()
    return torch.where(p > 0, p * (logp - logq), torch.zeros_like(p)).sum(-1)


def divergences(outputs: Any, metric: str = "kl", direction: str = "paper") -> torch.Tensor:
    """The raw divergences :math:`D_t` for t = 2..T, averaged over the samples: float64 ``[T-1]``
    (the last entry, t = T, is exactly 0)."""
    checks.choice("metric", metric, METRICS)
    checks.choice("direction", direction, DIRECTIONS)
    logp = accumulated_probabilities(outputs, log=True)
    T = logp.shape[0]
    ref = logp[T - 1 : T]  # log P_T, [1, N, C]
    cur = logp[1:]  # log P_t, t = 2..T, [T-1, N, C]
    if metric == "kl":
        d = _kl(cur, ref) if direction == "paper" else _kl(ref.expand_as(cur), cur)
    else:
        m = torch.log(0.5 * (cur.exp() + ref.exp()))
        d = 0.5 * _kl(cur, m) + 0.5 * _kl(ref.expand_as(cur), m)
    d = d.clamp_min(0.0).mean(-1)
    d[-1] = 0.0
    return d


def normalized_divergence(outputs: Any, metric: str = "kl", direction: str = "paper") -> torch.Tensor:
    r"""Normalised divergence curve :math:`D_t / D_2` for t = 2..T (Algorithm 1, lines 2-13).

    ``outputs``: per-step outputs ``[T, N, C]`` (logits of each time step, not accumulated).
    Returns a float64 tensor of length T-1; entry i belongs to t = i + 2. It starts at 1 and ends
    at 0. If :math:`D_2 = 0` (the accumulated prediction never changes, or T = 2) the curve is all
    zeros: every t already agrees with T.
    """
    d = divergences(outputs, metric, direction)
    if float(d[0]) <= 0.0:
        return torch.zeros_like(d)
    return d / d[0]


def select_t_early(curve: Any, lam: float) -> int:
    r"""The smallest t in 2..T whose normalised divergence is below ``lam``, else T.

    ``curve``: the output of :func:`normalized_divergence` (entry i is t = i + 2, so T = len + 1).
    ``lam`` in [0, 1] (the paper uses 0.6)."""
    lam = checks.number_in("lam", lam, 0, 1, why=" (the Early-Time threshold lambda)")
    c = torch.as_tensor(curve)
    if c.dim() != 1 or c.numel() < 1:
        checks.fail("curve", f"<tensor of shape {tuple(c.shape)}>",
                    "a 1-D tensor of length T-1 >= 1 (normalized_divergence's output)")
    below = (c < lam).nonzero()
    T = c.numel() + 1
    return int(below[0, 0]) + 2 if below.numel() else T


def t_early_vs_lambda(curve: Any, lams: Sequence[float] | None = None) -> dict[float, int]:
    """Fig. 7(b): ``{lambda: T_early}`` for lambda = 0, 0.1, ..., 1 (or the given values)."""
    if lams is None:
        lams = [round(0.1 * i, 1) for i in range(11)]
    return {float(lam): select_t_early(curve, lam) for lam in lams}


# --- per-step outputs of a model ----------------------------------------------------------------


def _bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: b.detach().clone() for k, b in model.named_buffers()}


def _restore_buffers(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for k, b in model.named_buffers():
            if k in saved:
                b.copy_(saved[k])


@torch.no_grad()
def step_outputs(model: nn.Module, ds, T: int, encoding: str = "direct", batch_size: int = 256,
                 n: int | None = None, seed: int = 0, device: torch.device | str = "cpu",
                 train_mode: bool = False) -> torch.Tensor:
    """Per-step outputs ``[T, N, C]`` (float32, CPU) of a multi-step SNN on the first ``n`` samples
    of ``ds`` (all by default), in order.

    Eval mode by default (BatchNorm uses its running statistics). ``train_mode=True`` is the
    official code's setting (batch statistics); the running statistics are restored afterwards
    either way, so this function never changes the model. Its train/eval mode is restored too.
    """
    T = checks.int_at_least("T", T, 2)
    checks.int_at_least("batch_size", batch_size, 1)
    x_all, _ = data.tensors(ds)
    if n is not None:
        n = checks.int_at_least("n", n, 1)
        x_all = x_all[:n]
    temporal = bool(getattr(ds, "is_temporal", False))
    gen = torch.Generator().manual_seed(checks.int_at_least("seed", seed, 0))
    was_training = model.training
    saved = _bn_buffers(model)
    model.train(train_mode)
    outs = []
    try:
        for i in range(0, len(x_all), batch_size):
            x_seq = encode_batch(x_all[i : i + batch_size], T, encoding, temporal, gen).to(device)
            functional.reset_net(model)
            outs.append(model(x_seq).float().cpu())
            functional.reset_net(model)
    finally:
        _restore_buffers(model, saved)
        model.train(was_training)
    return torch.cat(outs, dim=1)


def find_t_early(model: nn.Module, ds, T: int, lam: float = 0.6, metric: str = "kl", direction: str = "paper",
                 **kw: Any) -> tuple[int, torch.Tensor]:
    """Algorithm 1, lines 2-13: ``(T_early, curve)`` from the per-step outputs of ``model`` on
    ``ds`` (:func:`step_outputs`, eval mode; ``kw`` are passed to it). Validates everything first."""
    checks.int_at_least("T", T, 2)
    checks.number_in("lam", lam, 0, 1, why=" (the Early-Time threshold lambda)")
    checks.choice("metric", metric, METRICS)
    checks.choice("direction", direction, DIRECTIONS)
    curve = normalized_divergence(step_outputs(model, ds, T, **kw), metric, direction)
    return select_t_early(curve, lam), curve


def official_t_early(outputs_by_t: dict[int, torch.Tensor], T: int, lam: float = 0.6,
                     candidates: Sequence[int] = (2, 3, 4)) -> tuple[int, list[float]]:
    """The official code's selection (``find_ET_ticket``), for comparison only.

    ``outputs_by_t``: ``{t: per-step outputs [t, N, C]}`` of the model run separately for T and
    every candidate t (the official code re-runs the network with ``total_timestep = t``). It
    computes :math:`KL(P_T \\| P_t)` (``nn.KLDivLoss`` with its default element-wise mean, i.e.
    divided by N*C; the scale cancels in the normalisation), divides by the largest candidate
    value and returns ``(T_early, normalised values)``: the first candidate below ``lam``, else T.
    """
    T = checks.int_at_least("T", T, 2)
    lam = checks.number_in("lam", lam, 0, 1, why=" (the Early-Time threshold lambda)")
    cands = checks.int_list("candidates", list(candidates), 2)
    if any(t >= T for t in cands):
        checks.fail("candidates", list(candidates), f"integers in [2, T-1] = [2, {T - 1}]")
    missing = [t for t in [T, *cands] if t not in outputs_by_t]
    if missing:
        checks.fail("outputs_by_t", sorted(outputs_by_t), f"a dict with the keys {sorted({T, *cands})}")

    def final_logprob(t: int) -> torch.Tensor:
        o = _check_outputs(outputs_by_t[t])
        if o.shape[0] != t:
            checks.fail(f"outputs_by_t[{t}]", f"<tensor of shape {tuple(o.shape)}>", f"shape [{t}, N, C]")
        return torch.log_softmax(o.mean(0), -1)

    ref = final_logprob(T)
    kls = [float(_kl(ref, final_logprob(t)).sum() / ref.numel()) for t in cands]
    top = max(kls)
    norm = [k / top if top > 0 else 0.0 for k in kls]
    for t, v in zip(cands, norm):
        if v < lam:
            return t, norm
    return T, norm
