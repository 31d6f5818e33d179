r"""The sltt paper's analyses around SLTT (Meng et al., ICCV 2023, supplement): the gradient
components of Lemma 1 (how much of dL/du the temporal path carries), operation counts of
Algorithm S1 (Appendix C.2) measured against the formulas, and memory / time per iteration of
BPTT, SLTT and SLTT-K measured in one interleaved run (Table S2).

The training steps themselves are :mod:`snnlab.grad.sltt`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ...core import models
from ...core.models import spiking_neurons
from ...grad.sltt import (
    BPTT_METHODS,
    LossFn,
    check_lif,
    cosine,
    leaves,
    preserved,
    resolve_method,
    sample_bp_steps,
    seq_len,
    single_step,
    sltt_step,
    step_function,
    surrogate_grad,
)
from ...record import bench
from ...train.losses import ce_loss

__all__ = [
    "GradientComponents",
    "gradient_components",
    "op_count_formula",
    "algorithm_backward",
    "count_backward_ops",
    "measure_memory_time",
    "compare_methods",
]


@dataclass
class GradientComponents:
    r"""Spatial and temporal parts of :math:`\partial L/\partial u^l[t]` (Lemma 1) per LIF layer and step.

    ``*_norm``: ``[L, T]`` Frobenius norms over batch and neurons. ``spatial_share`` =
    :math:`\|sp\|/(\|sp\|+\|tm\|)`, ``temporal_share`` = 1 - that (NaN where both are 0).
    ``cosine``: cos(spatial, total) per layer and step. ``tensors`` (with ``keep_tensors=True``):
    ``"spatial"``, ``"temporal"``, ``"total"``, ``"u"``, ``"s"``, each ``[L][T]`` of ``[B, ...]``.
    """

    layer_names: list[str]
    spatial_norm: torch.Tensor
    temporal_norm: torch.Tensor
    total_norm: torch.Tensor
    cosine: torch.Tensor
    tensors: dict[str, list[list[torch.Tensor]]] | None = field(default=None, repr=False)

    @property
    def spatial_share(self) -> torch.Tensor:
        return self.spatial_norm / (self.spatial_norm + self.temporal_norm)

    @property
    def temporal_share(self) -> torch.Tensor:
        return self.temporal_norm / (self.spatial_norm + self.temporal_norm)

    def records(self) -> list[dict[str, Any]]:
        """One dict per (layer, step), for ``pandas.DataFrame(gc.records())``."""
        rows = []
        L, T = self.spatial_norm.shape
        for li in range(L):
            for t in range(T):
                rows.append({
                    "layer": li, "layer_name": self.layer_names[li], "t": t + 1,
                    "spatial_norm": float(self.spatial_norm[li, t]),
                    "temporal_norm": float(self.temporal_norm[li, t]),
                    "total_norm": float(self.total_norm[li, t]),
                    "spatial_share": float(self.spatial_share[li, t]),
                    "temporal_share": float(self.temporal_share[li, t]),
                    "cosine": float(self.cosine[li, t]),
                })
        return rows


def gradient_components(
    model: nn.Module,
    x_seq: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    keep_tensors: bool = False,
) -> GradientComponents:
    r"""Split the BPTT gradient :math:`\partial L/\partial u^l[t]` into its spatial and temporal terms.

    Runs BPTT through the single-step loop (any architecture built by :mod:`snnlab.models`; per-step
    BN) with hooks on every ``LIFNode``: the node input :math:`x^l[t]` and output spikes
    :math:`s^l[t]` are kept. Then, by one ``torch.autograd.grad``:

    * total :math:`\partial L/\partial u^l[t]` = :math:`\partial L/\partial x^l[t]` (times
      :math:`\tau` when ``decay_input=True``, since then :math:`\partial u/\partial x = 1/\tau`);
    * spatial term :math:`= \frac{\partial L}{\partial s^l[t]}\big|_{\text{downstream}}\,
      g'(u^l[t]-V_{th})`: the gradient at the node's *output* spikes only reaches them from the
      next layers (the reset uses the spike inside the node), which is exactly the first term of
      Eq. S3;
    * temporal term = total - spatial (equals :math:`\partial L/\partial u^l[t+1]\,\epsilon^l[t]`, Eq. S5).

    :math:`u^l[t]` is recomputed from the recorded :math:`v^l[t-1]` and :math:`x^l[t]`.
    ``.grad``, BN buffers and neuron states are left as they were. ``x_seq`` ``[T, B, ...]``.
    """

    T = seq_len(x_seq)
    nodes = spiking_neurons(model)
    if not nodes:
        raise ValueError("model has no spiking neurons; gradient_components needs LIFNode layers")
    for m in nodes:
        check_lif(m)
    names = {id(m): n for n, m in model.named_modules()}
    rec: dict[int, dict[str, list]] = {i: {"x": [], "v": [], "s": []} for i in range(len(nodes))}

    def pre_hook(i: int):
        def hook(m, args):
            x, v = args[0], m.v
            if isinstance(v, torch.Tensor) and v.shape == x.shape:
                v = v.detach().clone()
            else:  # spikingjelly materialises a float (or mis-shaped) state as a constant tensor
                init = float(v) if not isinstance(v, torch.Tensor) else (0.0 if m.v_reset is None else m.v_reset)
                v = torch.full_like(x.detach(), init)
            rec[i]["x"].append(x)
            rec[i]["v"].append(v)
        return hook

    def post_hook(i: int):
        def hook(m, args, out):
            rec[i]["s"].append(out)
        return hook

    with preserved(model):
        handles = [n.register_forward_pre_hook(pre_hook(i)) for i, n in enumerate(nodes)]
        handles += [n.register_forward_hook(post_hook(i)) for i, n in enumerate(nodes)]
        try:
            with single_step(model), torch.enable_grad():
                loss = sum(loss_fn(model(x_seq[t]), y) for t in range(T)) / T
        finally:
            for h in handles:
                h.remove()
        L = len(nodes)
        for i in range(L):
            if len(rec[i]["x"]) != T:
                raise ValueError(f"LIF layer {names[id(nodes[i])]} ran {len(rec[i]['x'])} times for T={T}; "
                                 "gradient_components needs every neuron called once per step")
        xs = [x for i in range(L) for x in rec[i]["x"]]
        ss = [s for i in range(L) for s in rec[i]["s"]]
        wrt = [z for z in xs + ss if z.requires_grad]
        got = iter(torch.autograd.grad(loss, wrt, allow_unused=True) if wrt else ())
        grads = [next(got) if z.requires_grad else None for z in xs + ss]
    gx = [g if g is not None else torch.zeros_like(x) for g, x in zip(grads[: len(xs)], xs)]
    gs = [g if g is not None else torch.zeros_like(s) for g, s in zip(grads[len(xs):], ss)]
    out = {k: [[None] * T for _ in range(L)] for k in ("spatial", "temporal", "total", "u", "s")}
    norms = {k: torch.zeros(L, T, dtype=torch.float64) for k in ("spatial", "temporal", "total", "cos")}
    for i, m in enumerate(nodes):
        rest = 0.0 if m.v_reset is None else float(m.v_reset)
        for t in range(T):
            j = i * T + t
            x, v = rec[i]["x"][t].detach(), rec[i]["v"][t]
            u = v + (x - (v - rest)) / m.tau if m.decay_input else v - (v - rest) / m.tau + x
            total = gx[j] * m.tau if m.decay_input else gx[j]
            spatial = gs[j] * surrogate_grad(m.surrogate_function, u - m.v_threshold)
            temporal = total - spatial
            for k, val in (("spatial", spatial), ("temporal", temporal), ("total", total), ("u", u),
                           ("s", rec[i]["s"][t].detach())):
                out[k][i][t] = val
            norms["spatial"][i, t] = spatial.norm().double()
            norms["temporal"][i, t] = temporal.norm().double()
            norms["total"][i, t] = total.norm().double()
            norms["cos"][i, t] = cosine(spatial.flatten().double(), total.flatten().double())
    return GradientComponents(
        layer_names=[names[id(m)] for m in nodes],
        spatial_norm=norms["spatial"],
        temporal_norm=norms["temporal"],
        total_norm=norms["total"],
        cosine=norms["cos"],
        tensors=out if keep_tensors else None,
    )


# --- operation counts (Appendix C.2) -------------------------------------------------------------


def op_count_formula(d: int, method: str, T: int, K: int | None = None, batch: int = 1) -> dict[str, int]:
    r"""Scalar multiplications of the backward pass for *one intermediate layer* (d neurons, fan-in
    d, next layer d wide) over one iteration, per the paper's Appendix C.2 accounting.

    Per step t and layer l (batch 1; :math:`e_s = \partial L/\partial s`,
    :math:`e_u = \partial L/\partial u`; Algorithm S1 lines 18, 20, 21 and S2 lines 12, 13):

    * BPTT, :math:`e_s^l[t] = e_u^{l+1}[t]\,W^{l+1} + e_u^l[t+1]\,\partial u^l[t+1]/\partial s^l[t]`:
      :math:`d^2` for the VJP through the weights, + d for the diagonal temporal Jacobian (t < T);
    * BPTT, :math:`e_u^l[t] = e_s^l[t]\,g' + e_u^l[t+1]\,\lambda`: d, + d for t < T;
    * SLTT, :math:`e_u^l[t] = (e_u^{l+1}[t]\,W^{l+1})\,g'`: :math:`d^2 + d`;
    * both, :math:`\Delta W^l \mathrel{+}= e_u^l[t]^\top s^{l-1}[t]^\top`: :math:`d^2`.

    So an intermediate step costs :math:`2d^2 + 3d` (BPTT) vs :math:`2d^2 + d` (SLTT): SLTT saves
    2d per intermediate step and layer, as the paper states; the last step t = T has no temporal
    term and costs :math:`2d^2 + d` for both. Totals over T steps:

    * BPTT: :math:`T(2d^2 + d) + 2d(T-1)`;  SLTT: :math:`T(2d^2 + d)`;  SLTT-K: :math:`K(2d^2 + d)`.

    (Algorithm S1 as printed omits :math:`\Delta W^l` at t = T; it is needed for the gradient and
    counted here.) Everything scales with ``batch``. Returns ``matmul`` (the :math:`d^2` terms: the
    VJP through the weights and the weight gradient), ``elementwise`` (the diagonal Jacobian
    products), ``total``, and ``per_intermediate_step`` (a step t < T).
    """
    method, K = resolve_method(method, T, K)
    for name, v in (("d", d), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} is invalid; allowed values: integers >= 1")
    if method in BPTT_METHODS:  # the same backward algorithm, whatever the BN statistics
        steps, matmul, elementwise, per_step = T, 2 * d * d * T, d * T + 2 * d * (T - 1), 2 * d * d + 3 * d
    else:
        steps = T if method == "sltt" else K
        matmul, elementwise, per_step = 2 * d * d * steps, d * steps, 2 * d * d + d
    return {
        "method": method,
        "T": T,
        "K": K,
        "backward_steps": steps,
        "matmul": batch * matmul,
        "elementwise": batch * elementwise,
        "total": batch * (matmul + elementwise),
        "per_intermediate_step": batch * per_step,
    }


class _Counter:
    """Counts scalar multiplications of the manual backward, per layer and kind."""

    def __init__(self, n_layers: int):
        self.matmul = [0] * n_layers
        self.elementwise = [0] * n_layers

    def mm(self, layer: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.matmul[layer] += a.shape[0] * a.shape[1] * b.shape[1]
        return a @ b

    def mul(self, layer: int, a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
        out = a * b
        self.elementwise[layer] += out.numel()
        return out


def _mlp_layers(model: nn.Module) -> tuple[list[nn.Linear], list[sj_neuron.LIFNode], nn.Linear]:
    """(hidden Linear layers, their LIF nodes, readout Linear) of Flatten? -> [Linear -> LIF]* -> Linear."""
    mods = [m for m in leaves(model) if not isinstance(m, (nn.Flatten, nn.Identity))]
    lins, nodes = [], []
    i = 0
    while i + 1 < len(mods) and isinstance(mods[i], nn.Linear) and isinstance(mods[i + 1], sj_neuron.BaseNode):
        lins.append(mods[i])
        nodes.append(mods[i + 1])
        i += 2
    if not lins or i != len(mods) - 1 or not isinstance(mods[i], nn.Linear):
        raise ValueError("algorithm_backward needs an MLP: [Flatten] -> (Linear -> LIFNode) x L -> Linear")
    for m in nodes:
        check_lif(m)
        if m.v_reset is not None or m.decay_input or m.detach_reset:
            raise ValueError("algorithm_backward implements Eq. S8: soft reset (v_reset=None), "
                             "decay_input=False, detach_reset=False")
    return lins, nodes, mods[i]


def algorithm_backward(
    model: nn.Module,
    x_seq: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    method: str = "bptt",
    steps: list[int] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    r"""Algorithms S1 (BPTT) and S2 (SLTT / SLTT-K) written out by hand for an MLP, counting every
    scalar multiplication of the hidden layers' backward pass.

    Forward (Eq. S8/S9): :math:`u^l[t] = \lambda(u^l[t-1] - V_{th}s^l[t-1]) + W^l s^{l-1}[t] + b^l`.
    Backward (``method="bptt"``), for t = T..1 and l = L..1, with :math:`e^{L+1}` the readout's
    gradient (from autograd, not counted):

    .. math::

        e_s^l[t] = e_u^{l+1}[t] W^{l+1} - \lambda V_{th}\, e_u^l[t+1],\quad
        e_u^l[t] = e_s^l[t]\, g'^l[t] + \lambda\, e_u^l[t+1],\quad
        \Delta W^l \mathrel{+}= e_u^l[t]^\top s^{l-1}[t].

    ``"sltt"``: the same without the :math:`e_u^l[t+1]` terms, only for t in ``steps`` (default all).
    Returns ``(grads, counts)``: gradients ``{param_name: tensor}`` (for checking against autograd)
    and ``{"matmul": [...], "elementwise": [...]}`` multiplications per hidden layer.
    """
    if method not in ("bptt", "sltt"):
        raise ValueError(f"method={method!r} is invalid; allowed values: ['bptt', 'sltt']")
    T = seq_len(x_seq)
    steps = list(range(T)) if steps is None else sorted(steps)
    if method == "bptt" and steps != list(range(T)):
        raise ValueError("steps is only for method='sltt' (SLTT-K); BPTT uses all T steps")
    lins, nodes, readout = _mlp_layers(model)
    L = len(lins)
    lam = [1.0 - 1.0 / m.tau for m in nodes]
    vth = [float(m.v_threshold) for m in nodes]
    names = {id(p): n for n, p in model.named_parameters()}
    with torch.no_grad():
        # forward, storing s^{l-1}[t], g'^l[t] (the "no_grad" forward is the paper's line 7)
        s_in = [[None] * T for _ in range(L)]
        gprime = [[None] * T for _ in range(L)]
        s_last = [None] * T
        v = [None] * L
        for t in range(T):
            h = x_seq[t].flatten(1)
            for li in range(L):
                s_in[li][t] = h
                x = F.linear(h, lins[li].weight, lins[li].bias)
                u = x if v[li] is None else lam[li] * v[li] + x
                s = (u >= vth[li]).to(u.dtype)
                gprime[li][t] = surrogate_grad(nodes[li].surrogate_function, u - vth[li])
                v[li] = u - vth[li] * s
                h = s
            s_last[t] = h
    # readout + loss by autograd: e_s^L[t] and the readout's gradient
    grads = {id(p): torch.zeros_like(p) for p in model.parameters()}
    e_top = [None] * T
    for t in range(T):
        sL = s_last[t].clone().requires_grad_(True)
        loss_t = loss_fn(F.linear(sL, readout.weight, readout.bias), y) / T
        want = [sL] + [p for p in (readout.weight, readout.bias) if p is not None]
        g = torch.autograd.grad(loss_t, want)
        e_top[t] = g[0]
        if t in steps:
            for p, gp in zip(want[1:], g[1:]):
                grads[id(p)] += gp
    cnt = _Counter(L)
    e_u_next = [None] * L  # e_u^l[t+1]
    order = range(T - 1, -1, -1) if method == "bptt" else steps
    for t in order:
        e_u_above = None
        for li in range(L - 1, -1, -1):
            if li == L - 1:
                e_s = e_top[t]
            else:
                e_s = cnt.mm(li, e_u_above, lins[li + 1].weight)  # VJP through W^{l+1}: B d_{l+1} d_l
            if method == "bptt" and e_u_next[li] is not None:
                e_s = e_s + cnt.mul(li, e_u_next[li], -lam[li] * vth[li])  # du[t+1]/ds[t] diagonal
            e_u = cnt.mul(li, e_s, gprime[li][t])  # ds/du diagonal
            if method == "bptt" and e_u_next[li] is not None:
                e_u = e_u + cnt.mul(li, e_u_next[li], lam[li])  # du[t+1]/du[t] diagonal
            grads[id(lins[li].weight)] += cnt.mm(li, e_u.T, s_in[li][t])  # Delta W: d_l d_{l-1} B
            if lins[li].bias is not None:
                grads[id(lins[li].bias)] += e_u.sum(0)
            e_u_next[li] = e_u
            e_u_above = e_u
    named = {names[k]: g for k, g in ((id(p), grads[id(p)]) for p in model.parameters())}
    return named, {"matmul": cnt.matmul, "elementwise": cnt.elementwise}


def count_backward_ops(
    d: int,
    T: int,
    method: str = "bptt",
    K: int | None = None,
    layers: int = 3,
    batch: int = 1,
    num_classes: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    r"""Measure the backward multiplications of an MLP (input d, ``layers`` LIF layers of width d,
    readout ``num_classes``) trained by ``method`` for one iteration, two ways:

    * ``flop_counter``: :class:`torch.utils.flop_counter.FlopCounterMode` around the real training
      step (:func:`snnlab.train.bptt_step` / :func:`sltt_step`), minus a forward-only pass, per
      ``Linear`` module, halved (FLOPs count a multiply-add as 2). Only matrix products are
      visible to it, so this checks the :math:`d^2` terms. Module ``i`` carries the VJP into layer
      ``i``'s input and layer ``i``'s weight gradient, so hidden-to-hidden modules (1..layers-1)
      each show ``2 B d^2`` per back-propagated step.
    * ``instrumented``: :func:`algorithm_backward`, which also counts the diagonal (elementwise)
      products the flop counter does not see.

    Returns both and the formula of :func:`op_count_formula`. Each of ``flop_counter`` and
    ``instrumented`` lists under ``"intermediate"`` the indices whose counts the formula describes:
    Linear modules 1..layers-1 (hidden-to-hidden) for the flop counter, hidden layers
    0..layers-2 (those with a d-wide layer above) for the instrumented algorithm.
    """

    method, K = resolve_method(method, T, K)
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 2:
        raise ValueError(f"layers={layers!r} is invalid; allowed values: integers >= 2 (one intermediate layer)")
    formula = op_count_formula(d, method, T, K, batch=batch)

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = models.build("mlp", num_classes, in_features=d, hidden=(d,) * layers, neuron="sltt", norm="none")
    with torch.no_grad():
        for lin in (m for m in net.modules() if isinstance(m, nn.Linear)):
            lin.weight.normal_(0.0, 1.5 / math.sqrt(lin.in_features), generator=gen)
    x_seq = torch.rand(T, batch, d, generator=gen) * 2.0
    y = torch.randint(0, num_classes, (batch,), generator=gen)
    lin_names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]

    def flops_by_module(fn: Callable[[], Any]) -> dict[str, int]:
        fc = FlopCounterMode(display=False)
        functional.reset_net(net)
        with fc:
            fn()
        functional.reset_net(net)
        counts = fc.get_flop_counts()
        return {n: sum(counts.get(f"Sequential.{n}", {}).values()) for n in lin_names}

    steps = sample_bp_steps(T, K, torch.Generator().manual_seed(seed)) if method not in BPTT_METHODS \
        else list(range(T))
    if method in BPTT_METHODS:
        def train_fn() -> None:
            step_function(method)(net, x_seq, y, ce_loss)
    else:
        def train_fn() -> None:
            sltt_step(net, x_seq, y, ce_loss, k=K, generator=torch.Generator().manual_seed(seed))

    def fwd_fn() -> None:
        with torch.no_grad():
            net(x_seq)

    total = flops_by_module(train_fn)
    fwd = flops_by_module(fwd_fn)
    net.zero_grad(set_to_none=True)
    backward_mults = [(total[n] - fwd[n]) // 2 for n in lin_names]
    _, inst = algorithm_backward(net, x_seq, y, ce_loss, method="bptt" if method in BPTT_METHODS else "sltt",
                                 steps=None if method in BPTT_METHODS else steps)
    return {
        "d": d, "T": T, "K": K, "method": method, "layers": layers, "batch": batch,
        "formula": formula,
        "flop_counter": {"modules": lin_names, "backward_matmul_mults": backward_mults,
                         "intermediate": list(range(1, layers))},
        "instrumented": {**inst, "intermediate": list(range(layers - 1))},
        "backward_steps": steps,
    }


# --- memory and time ----------------------------------------------------------------------------


class _Unmetered:
    """A saved tensor the meter does not count (unpacked like :class:`bench.SavedTensorMeter`'s)."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


def _input_excluding_meter(inputs: tuple[torch.Tensor, ...]):
    """A :class:`snnlab.bench.SavedTensorMeter` that ignores tensors stored in ``inputs``' storages.

    The input batch is the caller's data, alive before and after the step; a layer that saves a
    view ``x_seq[t]`` would otherwise be charged the whole ``[T, ...]`` storage, a T-dependent
    artefact that is not activation memory.
    """

    keys = {t.untyped_storage().data_ptr() for t in inputs if t.untyped_storage().data_ptr() != 0}

    class Meter(bench.SavedTensorMeter):
        def _pack(self, t: torch.Tensor):
            if t.untyped_storage().data_ptr() in keys:
                return _Unmetered(t)
            return super()._pack(t)

    return Meter()


class _Run:
    """One (model, input, method) set up for repeated training iterations."""

    def __init__(self, model_factory, x_factory, method, T, K, loss_fn, seed, device):

        self.method, self.K = resolve_method(method, T, K)
        self.T, self.device = T, torch.device(device)
        self.loss_fn = loss_fn or ce_loss
        torch.manual_seed(seed)
        self.model = model_factory().to(self.device)
        self.model.train()
        x_seq, y = x_factory(T)
        self.x_seq, self.y = x_seq.to(self.device), y.to(self.device)
        if self.x_seq.shape[0] != T:
            raise ValueError(f"x_factory({T}) returned x_seq with {self.x_seq.shape[0]} steps; expected T={T}")
        self.step = step_function(self.method, self.K, seed)
        self.times: list[float] = []

    def __call__(self) -> None:
        self.model.zero_grad(set_to_none=True)
        functional.reset_net(self.model)
        self.step(self.model, self.x_seq, self.y, self.loss_fn)
        functional.reset_net(self.model)

    def time_once(self) -> None:

        self.times.append(bench.time_fn(self, repeats=1, warmup=0, device=self.device).median)

    def memory(self) -> dict[str, Any]:

        meter = _input_excluding_meter((self.x_seq, self.y))
        with meter:
            self()
        rss = bench.peak_rss_delta(self)
        cuda = bench.cuda_peak_bytes(self, self.device) if self.device.type == "cuda" else None
        return {
            "saved_peak_bytes": meter.peak,
            "saved_total_bytes": meter.total,
            "input_bytes": self.x_seq.untyped_storage().nbytes(),
            "param_bytes": sum(p.numel() * p.element_size() for p in self.model.parameters()),
            "rss_peak_delta_bytes": rss,
            "cuda_peak_bytes": cuda,
        }

    def result(self, mem: dict[str, Any]) -> dict[str, Any]:

        t = bench.Timing.of(self.times)
        self.model.zero_grad(set_to_none=True)
        return {"method": self.method, "T": self.T, "K": self.K, **mem,
                "time_median_s": t.median, "time_iqr_s": t.iqr, "repeats": len(self.times)}


def _check_repeats(repeats: Any, warmup: Any) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} is invalid; allowed values: integers >= 1")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r} is invalid; allowed values: integers >= 0")


def measure_memory_time(
    model_factory: Callable[[], nn.Module],
    x_factory: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    method: str,
    T: int,
    K: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
    loss_fn: LossFn | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Memory and time of one training iteration (forward + backward) of ``method`` at ``T`` steps.

    ``model_factory()`` builds a multi-step model (called after ``torch.manual_seed(seed)``);
    ``x_factory(T)`` returns ``(x_seq [T, B, ...], y)``. ``method``: ``"bptt"`` (fused multi-step
    :func:`snnlab.train.bptt_step`), ``"bptt_paper"`` (the official code's per-step loop,
    :func:`snnlab.grad.sltt.bptt_paper_step`), ``"sltt"`` or ``"sltt_k"`` (with ``K``). ``loss_fn``: per-step
    loss (default :func:`snnlab.train.ce_loss`). Each iteration zeroes the gradients and resets the
    neurons around the step. Returns

    * ``saved_peak_bytes`` / ``saved_total_bytes``: live peak and total of tensors saved for
      backward (:class:`snnlab.bench.SavedTensorMeter`; deterministic, device independent), not
      counting tensors that live in the storage of ``x_seq`` / ``y`` themselves (the input batch);
      ``input_bytes`` is that storage's size; ``param_bytes``: the model's parameters (weights and
      BN affine terms; not activation memory, but part of the GPU memory the paper reports);
    * ``rss_peak_delta_bytes``: peak resident memory above the level before the iteration;
    * ``cuda_peak_bytes``: CUDA peak above the level before (None without CUDA / on CPU);
    * ``time_median_s``, ``time_iqr_s``: seconds per iteration over ``repeats`` (after ``warmup``).

    To compare methods on a shared, noisy machine prefer :func:`compare_methods`, which interleaves
    the timed iterations of all methods.
    """
    return compare_methods(model_factory, x_factory, T, [(method, K)], repeats=repeats, warmup=warmup,
                           loss_fn=loss_fn, seed=seed, device=device)[0]


def compare_methods(
    model_factory: Callable[[], nn.Module],
    x_factory: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    T: int,
    methods: tuple[tuple[str, int | None], ...] = (("bptt", None), ("bptt_paper", None), ("sltt", None),
                                                   ("sltt_k", 2)),
    repeats: int = 5,
    warmup: int = 1,
    loss_fn: LossFn | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[dict[str, Any]]:
    """:func:`measure_memory_time` for several ``(method, K)`` at once, one result dict each.

    Every method gets its own model built from the same seed. Memory is measured per method; the
    ``repeats`` timed iterations are interleaved (round robin over the methods), so a change in
    machine load during the run affects all methods alike and their time ratios stay meaningful.
    """
    _check_repeats(repeats, warmup)
    if not methods:
        raise ValueError(f"methods={methods!r} is invalid; give at least one (method, K) pair")
    runs = [_Run(model_factory, x_factory, m, T, k, loss_fn, seed, device) for m, k in methods]
    for run in runs:
        for _ in range(warmup):
            run()
    mems = [run.memory() for run in runs]
    for _ in range(repeats):
        for run in runs:
            run.time_once()
    return [run.result(mem) for run, mem in zip(runs, mems)]
