r"""Spatial Learning Through Time (SLTT, Meng et al., ICCV 2023): online training steps and the
independent temporal-cut reference they are tested against. (The paper's gradient-component
analysis, operation counts and memory/time measurement are in :mod:`snnlab.studies.sltt.analysis`.)

Dynamics (sltt Eq. S1/S8, soft reset; :math:`\lambda = 1 - 1/\tau`):

.. math::

    u^l[t] = \lambda\,(u^l[t-1] - V_{th} s^l[t-1]) + W^l s^{l-1}[t], \qquad
    s^l[t] = H(u^l[t] - V_{th}).

BPTT back-propagates through both the *spatial* path (layer to layer within a step) and the
*temporal* path (:math:`u^l[t] \to u^l[t+1]`, Jacobian :math:`\epsilon^l[t]`, Eq. S2). Lemma 1
(Eq. S3) writes

.. math::

    \frac{\partial L}{\partial u^l[t]} = \underbrace{\frac{\partial L}{\partial u^{l+1}[t]}
    \frac{\partial u^{l+1}[t]}{\partial s^l[t]}\frac{\partial s^l[t]}{\partial u^l[t]}}_{\text{spatial}}
    + \underbrace{\sum_{t'>t} (\text{spatial term at } t')\prod_{t''=1}^{t'-t}\epsilon^l[t'-t'']}_{\text{temporal}}

and SLTT keeps only the spatial term: after every step the membrane state is detached, so each
step's loss :math:`\ell_t/T` is back-propagated at once through that step's graph only and the
graph is freed (memory independent of T). SLTT-K back-propagates only K of the T steps, drawn
without replacement per batch (Algorithm S2).

Public API
----------
Training steps (the ``step_fn`` contract of :func:`snnlab.train.fit`):
    :func:`sltt_step`, :class:`SLTTStep` / :func:`make_sltt_step`, :func:`sample_bp_steps`.
The paper's BPTT baseline (official ``train_BPTT.py``): :func:`bptt_paper_step`; the fused
multi-step BPTT (:func:`snnlab.train.bptt_step`) is kept as the second, stronger baseline.
Gradients without side effects (``.grad`` and BN buffers restored):
    :func:`sltt_gradient`, :func:`bptt_gradient`, :func:`bptt_sltt_cosine`.
Independent reference (explicit per-layer LIF recursion; plain layers, per-step BatchNorm, sWS,
residual blocks):
    :func:`reference_gradient`, :func:`temporal_cut_gradient`, :func:`explicit_forward`.
Epsilon (Eq. S2): :func:`epsilon_diagonal`.

Example
-------
>>> import torch
>>> from snnlab import train
>>> from snnlab.core import models
>>> from snnlab.grad import sltt
>>> net = models.build("mlp", 3, in_features=4, hidden=(8,), neuron="sltt", norm="none")
>>> x_seq, y = torch.rand(5, 2, 4) * 2, torch.tensor([0, 2])     # [T, B, features]
>>> loss = sltt.sltt_step(net, x_seq, y, train.ce_loss)           # fills .grad, returns the loss
>>> all(p.grad is not None for p in net.parameters())
True
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from ..core.models import BasicBlock, PreActBlock, ScaledWSConv2d, ScaledWSLinear
from ..core.surrogate import Rectangle
from .bptt import bptt_step

__all__ = [
    "sample_bp_steps",
    "sltt_step",
    "bptt_paper_step",
    "SLTTStep",
    "make_sltt_step",
    "step_function",
    "sltt_gradient",
    "bptt_gradient",
    "bptt_sltt_cosine",
    "explicit_forward",
    "reference_gradient",
    "temporal_cut_gradient",
    "epsilon_diagonal",
    "METHODS",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: training methods understood by :func:`resolve_method` and
#: :func:`snnlab.studies.sltt.analysis.measure_memory_time`: ``"bptt"`` the fused multi-step BPTT
#: (:func:`snnlab.train.bptt_step`), ``"bptt_paper"`` the official code's per-step-loop BPTT
#: (:func:`bptt_paper_step`), ``"sltt"``, ``"sltt_k"``
METHODS = ("bptt", "bptt_paper", "sltt", "sltt_k")
#: the methods that back-propagate through time (no K)
BPTT_METHODS = ("bptt", "bptt_paper")


# --- validation ---------------------------------------------------------------------------------


def seq_len(x_seq: Any, model: nn.Module | None = None) -> int:
    """T of a time-major input ``[T, B, ...]``. With ``model``, the input must also have one more
    dimension than its first layer takes per step (``[T, B, features]`` for a Linear first layer,
    ``[T, B, C, H, W]`` for a Conv2d one), so a batch without a time axis is refused."""
    if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 2:
        shape = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
        raise ValueError(f"x_seq must be a tensor [T, B, ...] with at least 2 dims, got {shape}")
    if model is not None:
        first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))), None)
        need = 0
        if isinstance(first, nn.Linear):
            need = 3
        elif isinstance(first, nn.Conv2d):
            need = 5
        elif isinstance(first, nn.Conv1d):
            need = 4
        if x_seq.dim() < need:
            raise ValueError(
                f"x_seq has shape {tuple(x_seq.shape)}: it needs a time dimension, [T, B, ...] with at least {need} "
                f"dims for a model whose first layer is {first}; encode static input with "
                "snnlab.core.encoding.encode(x, T)")
    T = int(x_seq.shape[0])
    if T < 1:
        raise ValueError(f"T={T} (x_seq.shape[0]) is invalid; allowed values: T >= 1 time steps")
    return T


def _check_k(k: Any, T: int) -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= T:
        raise ValueError(f"K={k!r} is invalid for T={T}; allowed values: None (plain SLTT) or integers 1..T")
    return k


def resolve_method(method: str, T: int, K: int | None) -> tuple[str, int | None]:
    """``(method, K)`` with ``"sltt"`` + K -> ``"sltt_k"`` and K validated against T."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; allowed values: {list(METHODS)}")
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T={T!r} is invalid; allowed values: integers >= 1")
    if method in BPTT_METHODS:
        if K is not None:
            raise ValueError(f"K={K!r} is only meaningful for SLTT-K; use K=None with method={method!r}")
        return method, None
    if method == "sltt_k" and K is None:
        raise ValueError("K=None is invalid for method='sltt_k'; allowed values: integers 1..T")
    K = _check_k(K, T)
    return ("sltt_k" if K is not None else "sltt"), K


# --- step-mode / state helpers ------------------------------------------------------------------


@contextlib.contextmanager
def single_step(model: nn.Module) -> Iterator[None]:
    """Switch every module with a ``step_mode`` to ``"s"``; restore each one's own mode after."""
    saved = [(m, m.step_mode) for m in model.modules() if hasattr(m, "step_mode")]
    functional.set_step_mode(model, "s")
    try:
        yield
    finally:
        for m, mode in saved:
            m.step_mode = mode


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[list[tuple[str, nn.Parameter]]]:
    """Run analysis code without side effects: ``.grad`` cleared inside and restored after, buffers
    (BN running statistics) restored, neurons reset before and after."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [p.grad for _, p in params]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    for _, p in params:
        p.grad = None
    functional.reset_net(model)
    try:
        yield params
    finally:
        for (_, p), g in zip(params, grads):
            p.grad = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        functional.reset_net(model)


def _collect_grads(params: list[tuple[str, nn.Parameter]]) -> dict[str, torch.Tensor]:
    return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)) for n, p in params}


# --- SLTT / SLTT-K training step ----------------------------------------------------------------


def sample_bp_steps(T: int, k: int | None = None, generator: torch.Generator | None = None) -> list[int]:
    """The time steps (0-based, sorted) that SLTT-K back-propagates (Algorithm S2, lines 1-5).

    ``k=None``: all T steps (plain SLTT). Otherwise K distinct steps drawn uniformly without
    replacement with ``generator`` (``torch.randperm``); the same generator state gives the same steps.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T={T!r} is invalid; allowed values: integers >= 1")
    k = _check_k(k, T)
    if k is None:
        return list(range(T))
    return sorted(torch.randperm(T, generator=generator)[:k].tolist())


def sltt_step(
    model: nn.Module,
    x_seq: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    k: int | None = None,
    generator: torch.Generator | None = None,
) -> float:
    r"""One SLTT (``k=None``) or SLTT-K iteration, forward and backward (Algorithm S2).

    The model (multi-step on entry) is switched to single-step mode; for t = 1..T it runs one step
    ``o[t] = model(x_seq[t])`` (``[B, ...] -> [B, C]``); if t is one of the back-propagated steps
    it calls ``(loss_fn(o[t], y) / T).backward()`` at once, otherwise the step runs under
    ``torch.no_grad()`` (the neuron state still advances). Then every stateful module is detached
    (:func:`spikingjelly.activation_based.functional.detach_net`), so no graph crosses time steps:
    the gradient is the spatial term of Lemma 1 only and each step's graph is freed before the next.

    Gradients accumulate in ``.grad`` (the caller zeroes them). The step mode of every module is
    restored on exit, also on error. BatchNorm in single-step mode normalises with per-step
    statistics (sltt H.3).

    Parameters
    ----------
    x_seq: ``[T, B, ...]`` encoded input. y: targets for ``loss_fn``.
    loss_fn: per-step loss ``loss_fn(o_t, y) -> scalar``; the objective is its mean over t.
    k: None (SLTT) or K in 1..T (SLTT-K). generator: draws the K steps (see :func:`sample_bp_steps`).

    Returns the objective :math:`\frac1T\sum_{t=1}^T \ell(o[t], y)` over *all* T steps (a float).
    """
    T = seq_len(x_seq, model)
    k = _check_k(k, T)
    bp_steps = set(sample_bp_steps(T, k, generator))
    total = 0.0
    with single_step(model):
        for t in range(T):
            if t in bp_steps:
                loss_t = loss_fn(model(x_seq[t]), y) / T
                loss_t.backward()
            else:
                with torch.no_grad():
                    loss_t = loss_fn(model(x_seq[t]), y) / T
            total += float(loss_t.detach())
            functional.detach_net(model)  # cut the temporal path: v[t] enters step t+1 as a constant
    return total


class SLTTStep:
    """Picklable ``step_fn`` for :func:`snnlab.train.fit`: SLTT (``k=None``) or SLTT-K.

    Holds its own ``torch.Generator`` seeded with ``seed``; the generator state is pickled with
    the object, so a resumed run draws the same steps as an uninterrupted one.

    >>> step = SLTTStep(k=2, seed=0)
    >>> step
    SLTTStep(k=2, seed=0)
    """

    def __init__(self, k: int | None = None, seed: int = 0):
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"K={k!r} is invalid; allowed values: None (plain SLTT) or integers >= 1 (<= T)")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r} is invalid; allowed values: integers >= 0")
        self.k, self.seed = k, seed
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
        return sltt_step(model, x_seq, y, loss_fn, k=self.k, generator=self.generator)

    def __getstate__(self) -> dict:
        return {"k": self.k, "seed": self.seed, "generator_state": self.generator.get_state()}

    def __setstate__(self, state: dict) -> None:
        self.k, self.seed = state["k"], state["seed"]
        self.generator = torch.Generator()
        self.generator.set_state(state["generator_state"])

    def __repr__(self) -> str:
        return f"SLTTStep(k={self.k}, seed={self.seed})"


def step_function(method: str, K: int | None = None, seed: int = 0) -> Callable[..., float]:
    """The training ``step_fn`` of a method in :data:`METHODS`: :func:`snnlab.train.bptt_step`
    (``"bptt"``), :func:`bptt_paper_step` (``"bptt_paper"``) or an :class:`SLTTStep` (``"sltt"``,
    ``"sltt_k"`` with ``K``, its generator seeded with ``seed``)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; allowed values: {list(METHODS)}")
    if method == "bptt":
        return bptt_step
    if method == "bptt_paper":
        return bptt_paper_step
    return SLTTStep(k=K, seed=seed)


def make_sltt_step(k: int | None = None, seed: int = 0) -> SLTTStep:
    """A picklable SLTT / SLTT-K ``step_fn`` for :func:`snnlab.train.fit` (see :class:`SLTTStep`)."""
    return SLTTStep(k=k, seed=seed)


# --- gradients without side effects --------------------------------------------------------------


def sltt_gradient(
    model: nn.Module,
    x_seq: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    k: int | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Parameter gradients of one :func:`sltt_step`, as ``{name: tensor}``; ``.grad``, BN buffers
    and neuron states are left as they were."""
    with preserved(model) as params:
        sltt_step(model, x_seq, y, loss_fn, k=k, generator=generator)
        return _collect_grads(params)


def bptt_paper_step(model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> float:
    r"""BPTT as the paper's official code runs it (``train_BPTT.py`` of github.com/qymeng94/SLTT).

    The *same single-step network* as :func:`sltt_step` (``models/spiking_resnet.py``,
    ``models/spiking_vgg_bn.py``: plain ``nn.Conv2d``/``nn.BatchNorm2d`` layers and single-step
    ``BPTTNeuron``, a spikingjelly ``LIFNode``, ``modules/neuron.py``) is run in a Python loop
    ``for t in range(T): out_all.append(net(x[t]))`` -- BatchNorm normalises every step with that
    step's batch statistics, as in SLTT -- the T outputs are concatenated, the loss is taken over
    them (``F.cross_entropy(cat(out_all), cat([y]*T))``: the mean over T of the per-step losses,
    which is :math:`rac1T\sum_t \ell(o[t], y)` with ``loss_fn`` a per-step batch mean) and one
    ``backward`` runs at the end through the whole unrolled graph (spatial and temporal paths).

    It differs from :func:`snnlab.train.bptt_step` (multi-step modules, BN over the T*B samples,
    spikingjelly's fused multi-step neuron op), which is kept as the second, stronger baseline.
    The official script only implements this loop under ``torch.cuda.amp.autocast`` (its non-AMP
    branch raises ``NotImplementedError``); AMP is a :class:`snnlab.train.TrainConfig` option.

    Gradients accumulate in ``.grad``; step modes are restored on exit. Returns the objective.
    """
    T = seq_len(x_seq, model)
    with single_step(model):
        loss = sum(loss_fn(model(x_seq[t]), y) for t in range(T)) / T
        loss.backward()
    return float(loss.detach())


_bptt_single_step = bptt_paper_step


def bptt_gradient(
    model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, step_mode: str = "s"
) -> dict[str, torch.Tensor]:
    """BPTT parameter gradients ``{name: tensor}`` without side effects.

    ``step_mode="s"``: the single-step loop with the temporal graph kept, so the forward pass is
    exactly SLTT's (per-step BatchNorm); the only difference to :func:`sltt_gradient` is the
    temporal path. This is the paper's BPTT (:func:`bptt_paper_step`). ``"m"``: :func:`snnlab.train.bptt_step` (multi-step; BN over T*B). The two agree
    for networks without BatchNorm.
    """
    if step_mode not in ("s", "m"):
        raise ValueError(f"step_mode={step_mode!r} is invalid; allowed values: ['s', 'm']")
    seq_len(x_seq)
    with preserved(model) as params:
        if step_mode == "s":
            _bptt_single_step(model, x_seq, y, loss_fn)
        else:
            bptt_step(model, x_seq, y, loss_fn)
        return _collect_grads(params)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return float("nan")
    return float((a * b).sum() / (na * nb))


def bptt_sltt_cosine(
    model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, step_mode: str = "s"
) -> dict[str, float]:
    """Cosine similarity between BPTT and SLTT gradients, per parameter and overall.

    Returns ``{param_name: cos, ..., "__all__": cos of the concatenated gradients}``; NaN where a
    gradient is all zero. BPTT runs in ``step_mode`` (see :func:`bptt_gradient`); with ``"s"`` the
    forward passes are identical, so the cosine measures only the dropped temporal term.
    """
    g_b = bptt_gradient(model, x_seq, y, loss_fn, step_mode=step_mode)
    g_s = sltt_gradient(model, x_seq, y, loss_fn)
    out = {n: cosine(g_b[n].flatten(), g_s[n].flatten()) for n in g_b}
    out["__all__"] = cosine(torch.cat([g.flatten() for g in g_b.values()]),
                             torch.cat([g.flatten() for g in g_s.values()]))
    return out


# --- independent reference: explicit LIF recursion ----------------------------------------------


def leaves(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [leaf for child in model for leaf in leaves(child)]
    return [model]


def _heaviside_st(x: torch.Tensor, surrogate: nn.Module) -> torch.Tensor:
    """Heaviside forward, surrogate derivative backward, built from the surrogate's *primitive*
    (straight-through: ``H(x) + g(x) - g(x).detach()``) instead of its autograd function."""
    h = (x >= 0).to(x.dtype)
    prim = getattr(surrogate, "primitive", None)
    if prim is None:  # a spikingjelly surrogate without a primitive method: use it directly
        return surrogate(x)
    g = prim(x)
    return h + (g - g.detach())


def check_lif(m: nn.Module) -> None:
    if not isinstance(m, sj_neuron.LIFNode):
        raise ValueError(f"explicit reference supports LIFNode neurons only, got {type(m).__name__}")


def _batch_norm(m: nn.modules.batchnorm._BatchNorm, h: torch.Tensor) -> torch.Tensor:
    r"""BatchNorm of one time step ``[B, C, ...]`` written out: in training mode (or without running
    statistics) :math:`(h - \mu_B)/\sqrt{\sigma^2_B + \epsilon}` with the mean and the biased variance
    over this step's batch (and spatial) positions -- per-step statistics, as in single-step mode
    (sltt H.3) and the official code's per-step loop -- in eval mode with the running statistics;
    then the affine map. The running statistics are not updated."""
    dims = [0] + list(range(2, h.dim()))
    shape = [1, -1] + [1] * (h.dim() - 2)
    if m.training or m.running_mean is None:
        mean = h.mean(dim=dims, keepdim=True)
        var = ((h - mean) ** 2).mean(dim=dims, keepdim=True)
    else:
        mean, var = m.running_mean.view(shape), m.running_var.view(shape)
    out = (h - mean) / torch.sqrt(var + m.eps)
    if m.affine:
        out = out * m.weight.view(shape) + m.bias.view(shape)
    return out


def _sws_weight(m: nn.Module) -> torch.Tensor:
    r"""Scaled weight standardisation (sltt Eq. S12) written out:
    :math:`g_i\gamma(W_i - \bar W_i)/\sqrt{N\,\mathrm{Var}(W_i) + \epsilon}` over each fan-in row."""
    w = m.weight.flatten(1)
    centred = w - w.mean(dim=1, keepdim=True)
    var = (centred**2).mean(dim=1, keepdim=True)
    std_w = centred / torch.sqrt(var * w.shape[1] + m.eps)
    return (m.gain.flatten(1) * m.gamma * std_w).view_as(m.weight)


def _apply_plain(m: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """One stateless layer on one time step ``[B, ...]``, written with torch.nn.functional."""
    if isinstance(m, ScaledWSLinear):
        return F.linear(h, _sws_weight(m), m.bias)
    if isinstance(m, ScaledWSConv2d):
        if m.padding_mode != "zeros":
            raise ValueError(f"explicit reference needs padding_mode='zeros', got {m.padding_mode!r}")
        return F.conv2d(h, _sws_weight(m), m.bias, m.stride, m.padding, m.dilation, m.groups)
    if isinstance(m, nn.Linear):
        return F.linear(h, m.weight, m.bias)
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise ValueError(f"explicit reference needs padding_mode='zeros', got {m.padding_mode!r}")
        return F.conv2d(h, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return _batch_norm(m, h)
    if isinstance(m, nn.Flatten):
        return h.flatten(m.start_dim, m.end_dim)
    if isinstance(m, nn.AvgPool2d):
        return F.avg_pool2d(h, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                            m.divisor_override)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return F.adaptive_avg_pool2d(h, m.output_size)
    if isinstance(m, nn.Identity):
        return h
    if isinstance(m, nn.Dropout) and (m.p == 0 or not m.training):
        return h
    raise ValueError(
        f"explicit reference supports nested nn.Sequential nets of Linear, Conv2d (plain or sWS), "
        f"BatchNorm, Flatten, AvgPool2d, AdaptiveAvgPool2d, Identity, LIFNode and the residual blocks "
        f"of snnlab.core.models (BasicBlock, PreActBlock); got {type(m).__name__}"
    )


class _Recursion:
    """State of :func:`explicit_forward`: one membrane per LIF module, carried across steps."""

    def __init__(self, cut_temporal: bool, record: dict[str, list] | None):
        self.cut, self.record = cut_temporal, record
        self.v: dict[int, torch.Tensor] = {}
        self.order: dict[int, int] = {}  # LIF module id -> index in forward order (first step)

    def lif(self, m: nn.Module, h: torch.Tensor) -> torch.Tensor:
        check_lif(m)
        rest = 0.0 if m.v_reset is None else float(m.v_reset)
        v = self.v.get(id(m))
        if v is None:
            v = torch.full_like(h, rest)
        elif self.cut:
            v = v.detach()
        if m.decay_input:
            u = v + (h - (v - rest)) / m.tau
        else:
            u = v - (v - rest) / m.tau + h
        s = _heaviside_st(u - m.v_threshold, m.surrogate_function)
        s_r = s.detach() if m.detach_reset else s
        self.v[id(m)] = u - m.v_threshold * s_r if m.v_reset is None else (1.0 - s_r) * u + s_r * rest
        if self.record is not None:
            j = self.order.setdefault(id(m), len(self.order))
            if j == len(self.record["u"]):
                self.record["u"].append([])
                self.record["s"].append([])
            self.record["u"][j].append(u)
            self.record["s"][j].append(s)
        return s

    def apply(self, m: nn.Module, h: torch.Tensor) -> torch.Tensor:
        if isinstance(m, nn.Sequential):
            for child in m:
                h = self.apply(child, h)
            return h
        if isinstance(m, sj_neuron.BaseNode):
            return self.lif(m, h)
        if isinstance(m, BasicBlock):  # conv-BN-LIF-conv-BN, + shortcut(x), LIF after the add
            out = self.apply(m.act1, self.apply(m.bn1, self.apply(m.conv1, h)))
            out = self.apply(m.bn2, self.apply(m.conv2, out))
            return self.apply(m.act2, out + self.apply(m.shortcut, h))
        if isinstance(m, PreActBlock):  # BN-LIF-conv-BN-LIF-conv, + shortcut of x or of the spikes
            a = self.apply(m.act1, self.apply(m.bn1, h))
            out = self.apply(m.conv2, self.apply(m.act2, self.apply(m.bn2, self.apply(m.conv1, a))))
            return out + self.apply(m.shortcut, a if m.shortcut_from == "spikes" else h)
        return _apply_plain(m, h)


def explicit_forward(
    model: nn.Module,
    x_seq: torch.Tensor,
    cut_temporal: bool = True,
    record: dict[str, list] | None = None,
) -> list[torch.Tensor]:
    r"""Forward pass of a spiking net written out as an explicit per-layer recursion.

    Walks ``model`` (nested ``nn.Sequential`` of plain layers, BatchNorm, sWS layers, the residual
    blocks :class:`snnlab.core.models.BasicBlock` / :class:`~snnlab.core.models.PreActBlock`, and
    spikingjelly ``LIFNode``) and applies, for every step t and LIF layer (parameters read from
    the node):

    .. math::

        u[t] = \begin{cases} v[t-1] - (v[t-1] - v_r)/\tau + x[t] & \text{decay\_input=False}\\
                             v[t-1] + (x[t] - (v[t-1] - v_r))/\tau & \text{decay\_input=True}\end{cases}

    :math:`s[t] = H(u[t] - V_{th})` (straight-through from the surrogate's primitive),
    :math:`v[t] = u[t] - V_{th}s[t]` (soft, ``v_reset=None``, :math:`v_r = 0`) or
    :math:`v[t] = (1 - s[t])u[t] + s[t]v_r` (hard). With ``cut_temporal`` the carried
    :math:`v[t-1]` is detached (the SLTT gradient); without it this is BPTT with per-step
    BatchNorm (the paper's BPTT, :func:`bptt_paper_step`). BatchNorm uses each step's own batch
    statistics in training mode, the running ones in eval mode (written out, not updated); sWS
    standardises the weights by its own formula. Nothing of spikingjelly's neuron code, of the
    modules' ``forward`` or of :func:`sltt_step` is used.

    ``x_seq`` ``[T, B, ...]``; returns the T outputs ``[B, C]``. ``record`` (a dict) receives
    ``"u"`` and ``"s"``: per LIF layer (forward order), lists of T tensors ``[B, ...]`` (part of
    the graph).
    """
    T = seq_len(x_seq)
    for m in model.modules():
        if isinstance(m, sj_neuron.BaseNode):
            check_lif(m)
    if record is not None:
        record["u"], record["s"] = [], []
    rec = _Recursion(cut_temporal, record)
    return [rec.apply(model, x_seq[t]) for t in range(T)]


def reference_gradient(
    model: nn.Module,
    x_seq: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    cut_temporal: bool = True,
    steps: list[int] | None = None,
) -> dict[str, torch.Tensor]:
    r"""Weight gradients of :math:`\frac1T\sum_{t\in\text{steps}} \ell(o[t], y)` through
    :func:`explicit_forward` (``steps=None``: all T steps), by ``torch.autograd.grad`` (``.grad``
    untouched). ``cut_temporal=True`` is the SLTT / SLTT-K reference, ``False`` the BPTT reference.
    """
    T = seq_len(x_seq)
    steps = list(range(T)) if steps is None else list(steps)
    if not steps or any(not 0 <= t < T for t in steps) or len(set(steps)) != len(steps):
        raise ValueError(f"steps={steps!r} is invalid; allowed values: distinct integers in 0..{T - 1}")
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    outs = explicit_forward(model, x_seq, cut_temporal=cut_temporal)
    loss = sum(loss_fn(outs[t], y) for t in steps) / T
    grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
    return {n: (g if g is not None else torch.zeros_like(p)) for (n, p), g in zip(params, grads)}


def temporal_cut_gradient(
    model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, steps: list[int] | None = None
) -> dict[str, torch.Tensor]:
    """The SLTT reference: :func:`reference_gradient` with the carried membrane detached."""
    return reference_gradient(model, x_seq, y, loss_fn, cut_temporal=True, steps=steps)


# --- Lemma 1: epsilon and the spatial / temporal decomposition ----------------------------------


def surrogate_grad(surrogate: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """:math:`g'(x)` of a surrogate module, by autograd through the module itself."""
    with torch.enable_grad():
        z = x.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(surrogate(z).sum(), z)
    return g


def epsilon_diagonal(
    u: torch.Tensor,
    s: torch.Tensor,
    tau: float,
    v_th: float = 1.0,
    reset: str = "soft",
    surrogate: nn.Module | None = None,
    v_reset: float = 0.0,
) -> torch.Tensor:
    r"""Diagonal of :math:`\epsilon^l[t] = \frac{\partial u[t+1]}{\partial u[t]} +
    \frac{\partial u[t+1]}{\partial s[t]}\frac{\partial s[t]}{\partial u[t]}` (Eq. S2), elementwise.

    With :math:`\lambda = 1 - 1/\tau` and :math:`g' = g'(u - V_{th})` the surrogate derivative:

    * soft reset (:math:`v = u - V_{th}s`): :math:`\epsilon = \lambda\,(1 - V_{th}\,g')`;
    * hard reset (:math:`v = (1-s)u + s\,v_r`, Eq. S10 has :math:`v_r = 0`):
      :math:`\epsilon = \lambda\,(1 - s + (v_r - u)\,g')`, which for the rectangle surrogate with
      :math:`\gamma = V_{th}` is Eq. S11 and lies in :math:`(-\frac32\lambda, \frac12\lambda)\cup\{\lambda\}`.

    ``u``, ``s``: membrane before reset and spikes, any shape. ``surrogate``: a surrogate module
    (default a fresh ``Rectangle(gamma=1)``, sltt Eq. 5). Returns a tensor shaped like ``u``.
    (:math:`\partial u[t+1]/\partial v[t] = \lambda` for both ``decay_input`` settings.)
    """
    if reset not in ("soft", "hard"):
        raise ValueError(f"reset={reset!r} is invalid; allowed values: ['soft', 'hard']")
    if not (isinstance(tau, (int, float)) and tau >= 1):
        raise ValueError(f"tau={tau!r} is invalid; allowed values: numbers >= 1 (leak 1 - 1/tau)")
    if not v_th > 0:
        raise ValueError(f"v_th={v_th!r} is invalid; allowed values: numbers > 0")
    if u.shape != s.shape:
        raise ValueError(f"u and s must have the same shape, got {tuple(u.shape)} and {tuple(s.shape)}")
    surrogate = Rectangle(1.0) if surrogate is None else surrogate
    lam = 1.0 - 1.0 / tau
    g = surrogate_grad(surrogate, u - v_th)
    if reset == "soft":
        return lam * (1.0 - v_th * g)
    return lam * (1.0 - s + (v_reset - u) * g)
