r"""Training and inference operation counts of sparse spiking networks (srigl Appendix G, Fig. 13).

Following Evci et al. (2021, RigL Appendix H), as the SRigL paper does, only the operations of
convolutional and linear layers count (additions of residuals, pooling, BatchNorm and the neuron
updates are ignored), mask updates are ignored (amortised over :math:`\Delta T` steps), and a
multiply-accumulate and an accumulate both count as one operation; every number is reported
normalised by the dense network, so the unit cancels.

**Forward cost of one sample** (all T time steps), layer l with weight :math:`W_l` (``nnz`` active
entries) and :math:`P_l` output positions per step (1 for Linear, :math:`H_{out} W_{out}` for a
conv):

* a layer fed by **spikes** (its input is binary in every batch) is event driven: it costs one
  synaptic operation per (non-zero input, active outgoing connection) pair,
  :math:`\text{events}_l = \sum_t \sum_{\text{outputs}} \sum_j M_{ij}\,[x_j(t) \ne 0]`, computed
  exactly as :math:`\sum \mathrm{conv}(\mathbb 1[x \ne 0], M)` (``linear`` for a Linear layer);
  in expectation :math:`\approx \text{nnz}(W_l) P_l T r_l` for an input firing rate :math:`r_l`;
* a layer fed by **analog values** (the image under direct encoding, average-pooled spikes) costs
  full multiply-accumulates: :math:`\text{macs}_l = \text{nnz}(W_l) P_l T`.

:math:`f = \sum_l` (events or macs); ``spikes=False`` counts every layer as macs (weight sparsity
only: the paper's convention for ANNs). :math:`f^{*}` is the same with every weight active and
the same spikes (what a dense gradient costs).

**Training step** (per sample), ``backward="2x"`` (Evci et al.: the backward pass costs twice the
forward pass): a normal step costs :math:`3 f_S`; a RigL/SRigL update step, which needs the dense
gradient, :math:`2 f_S + f_S^{*}`. Over S steps with U updates the total is
:math:`(S - U)\,3 f_S + U (2 f_S + f_S^{*})`, i.e. RigL's :math:`(3 f_S \Delta T + 2 f_S + f_D)/(\Delta T + 1)`
per step when :math:`U = S/(\Delta T + 1)`. ``backward="snn"`` is a spiking-specific alternative:
the input gradient :math:`\delta^\top W` is real-valued, so it costs every active connection
(:math:`\sum_l \text{macs}_l`), while the weight gradient :math:`\sum_t \delta(t)\, s(t)^\top` is
gated by the input spikes like the forward pass: step :math:`= 2 f_S + \sum_l \text{macs}_l`
(:math:`f_S^{*}` in place of one :math:`f_S` at an update step).

The dense reference is the dense network trained the same way, with its own firing rates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import pandas as pd
import torch
from spikingjelly.activation_based import functional
from torch import nn

from .. import data
from ..core.encoding import encode_batch
from .masks import prunable_parameters

__all__ = [
    "BACKWARDS",
    "LayerOps",
    "count_ops",
    "forward_ops",
    "train_step_ops",
    "training_ops",
    "ratios",
    "FORMULAS",
    "ops_table",
    "analog_share",
    "layer_ops",
]

BACKWARDS = ("2x", "snn")

#: the counting rules, as shown in the FLOPs notebook
FORMULAS = [
    ("layer fed by spikes (forward)", "events_l = sum_t sum_outputs sum_j M_ij [x_j(t) != 0]  (~ nnz(W_l) P_l T r_l)"),
    ("layer fed by analog input (forward)", "macs_l = nnz(W_l) P_l T"),
    ("forward f (one sample)", "f = sum_l (events_l if the input is spikes else macs_l)"),
    ("dense-weight forward f*", "f* = f with every weight active, same input activity"),
    ("inference (normalised)", "f_S / f_D"),
    ("training step, backward=2x", "3 f_S"),
    ("update step (dense gradient), 2x", "2 f_S + f_S*"),
    ("training step, backward=snn", "2 f_S + sum_l macs_l"),
    ("update step (dense gradient), snn", "f_S + sum_l macs_l + f_S*"),
    ("training total (S steps, U updates)", "(S - U) step + U update_step ; dense: S step_D"),
    ("Evci et al. 2021, per step", "(3 f_S dT + 2 f_S + f_D) / (dT + 1)"),
]


def _check_backward(backward: str) -> str:
    if backward not in BACKWARDS:
        raise ValueError(f"backward={backward!r} is unknown; allowed values: {list(BACKWARDS)}")
    return backward


@dataclass
class LayerOps:
    """Operation counts of one layer, per sample, summed over the T time steps.

    ``events`` / ``events_dense``: (non-zero input, active connection) pairs with the layer's mask /
    with every weight active; ``macs`` / ``macs_dense``: nnz(W)·P·T / numel(W)·P·T;
    ``spiking_input``: every input value seen was 0 or 1; ``input_rate``: fraction of non-zero
    input entries.
    """

    name: str
    shape: tuple
    nnz: int
    numel: int
    spiking_input: bool
    input_rate: float
    macs: float
    macs_dense: float
    events: float
    events_dense: float

    def forward(self, spikes: bool = True, dense: bool = False) -> float:
        """This layer's forward cost: events if it is fed by spikes (and ``spikes``), else macs."""
        if spikes and self.spiking_input:
            return self.events_dense if dense else self.events
        return self.macs_dense if dense else self.macs

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LayerOps":
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        return cls(**d)


class _Counter:
    def __init__(self, module: nn.Module, name: str):
        self.module, self.name = module, name
        w = module.weight.detach()
        self.mask = (w != 0).to(w.dtype)
        self.ones = torch.ones_like(w)
        self.events = self.events_dense = self.macs = self.macs_dense = 0.0
        self.nonzero = self.entries = 0
        self.binary = True

    @torch.no_grad()
    def __call__(self, mod: nn.Module, inputs: tuple, output: Any) -> None:
        x = inputs[0].detach()
        nz = (x != 0).to(self.mask.dtype)
        self.nonzero += int(nz.sum())
        self.entries += x.numel()
        if self.binary and not bool(((x == 0) | (x == 1)).all()):
            self.binary = False
        if isinstance(mod, nn.Linear):
            n_in = mod.in_features
            col = nz.reshape(-1, n_in).sum(0)  # [n_in]: how often each input was non-zero
            self.events += float(col @ self.mask.sum(0))
            self.events_dense += float(col.sum()) * mod.out_features
            rows = nz.numel() // n_in
            self.macs += rows * float(self.mask.sum())
            self.macs_dense += rows * self.mask.numel()
            return
        nd = self.mask.dim()  # conv: weight [out, in/g, *k], input [N, in, *spatial] (+ a leading T)
        if nz.dim() == nd + 1:
            nz = nz.flatten(0, 1)
        ev = mod._conv_forward(nz, self.mask, None)
        evd = mod._conv_forward(nz, self.ones, None)
        self.events += float(ev.sum())
        self.events_dense += float(evd.sum())
        positions = ev.numel() // ev.shape[1]  # N * prod(output spatial)
        self.macs += positions * float(self.mask.sum())
        self.macs_dense += positions * self.mask.numel()


@torch.no_grad()
def count_ops(model: nn.Module, ds, T: int, encoding: str = "direct", batch_size: int = 256,
              device: torch.device | str = "cpu", seed: int = 0, names: Sequence[str] | None = None) -> list[LayerOps]:
    """Run ``model`` over ``ds`` (eval mode, like :func:`snnlab.train.evaluate`) and count the
    operations of every prunable layer (:func:`snnlab.sparsity.masks.prunable_parameters`, or ``names``),
    per sample over T steps. The mask of a layer is its non-zero weights."""
    params = prunable_parameters(model, names=names)
    counters = []
    handles = []
    for pname in params:
        mname = pname.rsplit(".", 1)[0] if "." in pname else ""
        mod = model.get_submodule(mname)
        c = _Counter(mod, pname)
        counters.append(c)
        handles.append(mod.register_forward_hook(c))
    model.eval()
    x_all, y_all = data.tensors(ds)
    temporal = bool(getattr(ds, "is_temporal", False))
    gen = torch.Generator().manual_seed(seed)
    n = len(y_all)
    try:
        for idx in data.batches(n, batch_size, None):
            x_seq = encode_batch(x_all[idx], T, encoding, temporal, gen).to(device)
            functional.reset_net(model)
            model(x_seq)
            functional.reset_net(model)
    finally:
        for h in handles:
            h.remove()
    out = []
    for c in counters:
        w = params[c.name]
        out.append(LayerOps(name=c.name, shape=tuple(w.shape), nnz=int((w != 0).sum()), numel=w.numel(),
                            spiking_input=c.binary, input_rate=c.nonzero / max(1, c.entries),
                            macs=c.macs / n, macs_dense=c.macs_dense / n, events=c.events / n,
                            events_dense=c.events_dense / n))
    return out


def layer_ops(layers: Sequence[LayerOps | Mapping[str, Any]]) -> list[LayerOps]:
    return [lo if isinstance(lo, LayerOps) else LayerOps.from_dict(lo) for lo in layers]


def forward_ops(layers: Sequence[LayerOps | Mapping], spikes: bool = True, dense: bool = False) -> float:
    """:math:`f = \\sum_l` (events_l or macs_l) per sample; ``dense=True`` gives :math:`f^*`."""
    return sum(lo.forward(spikes, dense) for lo in layer_ops(layers))


def train_step_ops(layers: Sequence[LayerOps | Mapping], backward: str = "2x", spikes: bool = True,
                   dense_grad: bool = False) -> float:
    """Operations of one training step per sample (see the module docstring); ``dense_grad``:
    an update step of RigL/SRigL, which computes the gradient of every weight."""
    _check_backward(backward)
    layers = layer_ops(layers)
    f = forward_ops(layers, spikes)
    wgrad = forward_ops(layers, spikes, dense=dense_grad)
    if backward == "2x":
        return 2 * f + wgrad
    return f + sum(lo.macs for lo in layers) + wgrad


def training_ops(layers: Sequence[LayerOps | Mapping], steps: int, updates: int = 0, backward: str = "2x",
                 spikes: bool = True) -> float:
    """Total training operations per sample-step budget: ``(steps - updates)`` normal steps plus
    ``updates`` dense-gradient steps."""
    if updates < 0 or updates > steps:
        raise ValueError(f"updates={updates!r} is invalid; allowed values: 0 <= updates <= steps={steps}")
    return ((steps - updates) * train_step_ops(layers, backward, spikes)
            + updates * train_step_ops(layers, backward, spikes, dense_grad=True))


def ratios(sparse: Sequence[LayerOps | Mapping], dense: Sequence[LayerOps | Mapping], steps: int, updates: int,
           backward: str = "2x", spikes: bool = True) -> dict[str, float]:
    """``{"inference": f_S / f_D, "training": training_ops(sparse) / training_ops(dense)}``; the
    dense run has no update steps."""
    fd = forward_ops(dense, spikes)
    td = training_ops(dense, steps, 0, backward, spikes)
    return {"inference": forward_ops(sparse, spikes) / fd,
            "training": training_ops(sparse, steps, updates, backward, spikes) / td}


def ops_table(layers: Sequence[LayerOps | Mapping]):
    """A DataFrame of per-layer counts (per sample, all T steps)."""
    rows = [{"layer": lo.name, "shape": "x".join(map(str, lo.shape)), "nnz": lo.nnz,
             "input": "spikes" if lo.spiking_input else "analog", "input rate": round(lo.input_rate, 4),
             "macs": round(lo.macs, 1), "events": round(lo.events, 1), "forward ops": round(lo.forward(), 1)}
            for lo in layer_ops(layers)]
    return pd.DataFrame(rows).set_index("layer")


def analog_share(layers: Sequence[LayerOps | Mapping]) -> float:
    """Fraction of the spike-aware forward ops spent in analog-fed layers (not discounted by spikes)."""
    layers = layer_ops(layers)
    return sum(lo.forward() for lo in layers if not lo.spiking_input) / max(1e-12, forward_ops(layers))
