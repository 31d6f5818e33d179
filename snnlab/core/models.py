"""Spiking VGG-11/16, ResNet-19, pre-activation ResNet-18 and MLP, with ANN twins.

Every model is built from spikingjelly's step-mode layers and LIF neurons:

* multi-step mode (default): input ``x_seq`` ``[T, B, C, H, W]`` (direct encoding: the same image
  every step, see :func:`snnlab.data.encode`), output ``[T, B, num_classes]``: the readout of each
  time step (no spiking at the output layer; accumulate over t for a prediction);
* single-step mode (``spikingjelly.activation_based.functional.set_step_mode(model, "s")``): one
  time step ``[B, ...] -> [B, num_classes]``, the state carried in the neurons. Online methods
  (SLTT) use this; BatchNorm then computes statistics per time step as in the sltt paper.

``spiking=False`` builds the ANN twin: the same modules with ``nn.ReLU`` where the LIF neurons are,
so parameter names are identical and a mask or state dict moves between the two (lth's transferred
tickets). The ANN twin runs in single-step mode on ``[B, ...]``.

``width`` multiplies every hidden channel count; pooling that would shrink a feature map below
1x1 is skipped and a global average pool precedes the classifier, so the same architecture runs on
8x8 ``digits`` and 32x32 CIFAR. ``norm`` is ``"bn"`` (BatchNorm over T*B in multi-step mode, per
step in single-step mode), ``"sws"`` (scaled weight standardisation, sltt Eq. S12, BN-free) or
``"none"``.

>>> import torch
>>> net = build("vgg11", num_classes=10, in_channels=1, input_size=8, width=0.125)
>>> net(torch.rand(4, 2, 1, 8, 8)).shape
torch.Size([4, 2, 10])
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from spikingjelly.activation_based import functional, layer
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from .. import checks
from . import neurons

__all__ = ["build", "ARCHITECTURES", "ScaledWSConv2d", "ScaledWSLinear", "spiking_neurons", "SWS_GAMMA"]

#: sWS gain for a Heaviside activation of N(0,1) input (sltt H.1, from OTTT): 1/sqrt(Var[H(x)]...)
SWS_GAMMA = 2.74

VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def _standardize(weight: torch.Tensor, gain: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    r""":math:`\hat W_i = g_i\,\gamma\,(W_i - \mu_i) / (\sigma_i \sqrt{N})` over each fan-in ``i``."""
    dims = tuple(range(1, weight.dim()))
    fan_in = math.prod(weight.shape[1:])
    mean = weight.mean(dim=dims, keepdim=True)
    var = weight.var(dim=dims, keepdim=True, unbiased=False)
    return gain * gamma * (weight - mean) / torch.sqrt(var * fan_in + eps)


class ScaledWSConv2d(layer.Conv2d):
    r"""Conv2d with scaled weight standardisation (sltt Eq. S12) and a learnable gain per channel.

    :math:`\hat W_{i,\cdot} = g_i \gamma (W_{i,\cdot} - \mu_i)/(\sigma_i\sqrt{N})`, N the fan-in,
    :math:`\gamma \approx 2.74` for a Heaviside activation. Works in both step modes.
    """

    def __init__(self, *args: Any, gamma: float = SWS_GAMMA, eps: float = 1e-4, **kw: Any):
        super().__init__(*args, **kw)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        self.gamma, self.eps = gamma, eps

    def _conv_forward(self, input, weight, bias):  # noqa: D401 - torch hook
        return super()._conv_forward(input, _standardize(weight, self.gain, self.gamma, self.eps), bias)


class ScaledWSLinear(layer.Linear):
    """Linear layer with the same scaled weight standardisation as :class:`ScaledWSConv2d`."""

    def __init__(self, *args: Any, gamma: float = SWS_GAMMA, eps: float = 1e-4, **kw: Any):
        super().__init__(*args, **kw)
        self.gain = nn.Parameter(torch.ones(self.out_features, 1))
        self.gamma, self.eps = gamma, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, _standardize(self.weight, self.gain, self.gamma, self.eps), self.bias)


class _Builder:
    """Holds the options shared by every layer of one model."""

    def __init__(self, spiking: bool, neuron: str | Callable[[], nn.Module], norm: str, pool: str,
                 neuron_kw: dict, shortcut_from: str = "input"):
        self.spiking, self.neuron, self.norm, self.pool_kind = spiking, neuron, norm, pool
        self.shortcut_from = shortcut_from
        self.neuron_kw = neuron_kw
        self.sm = "m" if spiking else "s"

    def act(self) -> nn.Module:
        if not self.spiking:
            return nn.ReLU()
        if callable(self.neuron):
            return self.neuron()
        return neurons.lif(self.neuron, step_mode="m", **self.neuron_kw)

    def conv(self, cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Module:
        cls = ScaledWSConv2d if self.norm == "sws" else layer.Conv2d
        return cls(cin, cout, k, stride=stride, padding=k // 2, bias=self.norm != "bn", step_mode=self.sm)

    def bn(self, c: int) -> nn.Module:
        return layer.BatchNorm2d(c, step_mode=self.sm) if self.norm == "bn" else nn.Identity()

    def pool(self) -> nn.Module:
        cls = layer.AvgPool2d if self.pool_kind == "avg" else layer.MaxPool2d
        return cls(2, 2, step_mode=self.sm)

    def head(self, c: int, num_classes: int) -> nn.Sequential:
        return nn.Sequential(
            layer.AdaptiveAvgPool2d((1, 1), step_mode=self.sm),
            layer.Flatten(step_mode=self.sm),
            layer.Linear(c, num_classes, step_mode=self.sm),
        )


def _ch(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def _vgg(b: _Builder, cfg: list, in_channels: int, num_classes: int, input_size: int, width: float,
         dropout: float) -> nn.Module:
    mods: list[nn.Module] = []
    c, hw = in_channels, input_size
    for v in cfg:
        if v == "M":
            if hw >= 2:
                mods.append(b.pool())
                hw //= 2
            continue
        cout = _ch(v, width)
        mods += [b.conv(c, cout), b.bn(cout), b.act()]
        if dropout > 0:
            mods.append(layer.Dropout(dropout, step_mode=b.sm))
        c = cout
    return nn.Sequential(nn.Sequential(*mods), b.head(c, num_classes))


class BasicBlock(nn.Module):
    """conv-BN-act-conv-BN + shortcut, act after the add (ResNet-19, Zheng et al. 2021)."""

    def __init__(self, b: _Builder, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1, self.act1 = b.conv(cin, cout, 3, stride), b.bn(cout), b.act()
        self.conv2, self.bn2 = b.conv(cout, cout), b.bn(cout)
        self.shortcut = (
            nn.Sequential(b.conv(cin, cout, 1, stride), b.bn(cout)) if stride != 1 or cin != cout else nn.Identity()
        )
        self.act2 = b.act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class PreActBlock(nn.Module):
    """BN-act-conv-BN-act-conv + shortcut (pre-activation ResNet-18, He et al. 2016; sltt H.3).

    ``shortcut_from``: what the shortcut (identity or 1x1 conv) takes. ``"input"`` (default): the
    block's input x, before BN and the neuron. ``"spikes"``: the output of the first BN + neuron,
    ``act1(bn1(x))``, as the SLTT official code wires it (github.com/qymeng94/SLTT,
    ``models/spiking_resnet.py``, ``PreActBlock.forward``: ``x = self.relu1(self.bn1(x))`` and then
    ``out + self.shortcut(x)``).
    """

    def __init__(self, b: _Builder, cin: int, cout: int, stride: int):
        super().__init__()
        self.shortcut_from = b.shortcut_from
        self.bn1, self.act1, self.conv1 = b.bn(cin), b.act(), b.conv(cin, cout, 3, stride)
        self.bn2, self.act2, self.conv2 = b.bn(cout), b.act(), b.conv(cout, cout)
        self.shortcut = b.conv(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act1(self.bn1(x))
        out = self.conv2(self.act2(self.bn2(self.conv1(a))))
        return out + self.shortcut(a if self.shortcut_from == "spikes" else x)


def _resnet(b: _Builder, block: type, stages: list[tuple[int, int]], stem: int, in_channels: int,
            num_classes: int, input_size: int, width: float, preact: bool, fc_hidden: int | None) -> nn.Module:
    c = _ch(stem, width)
    stem_mods: list[nn.Module] = [b.conv(in_channels, c)]
    if not preact:
        stem_mods += [b.bn(c), b.act()]
    blocks: list[nn.Module] = []
    hw = input_size
    for i, (channels, n) in enumerate(stages):
        cout = _ch(channels, width)
        for j in range(n):
            stride = 2 if (i > 0 and j == 0 and hw >= 2) else 1
            if stride == 2:
                hw //= 2
            blocks.append(block(b, c, cout, stride))
            c = cout
    tail: list[nn.Module] = [b.bn(c), b.act()] if preact else []
    head = b.head(c, num_classes)
    if fc_hidden:
        h = _ch(fc_hidden, width)
        head = nn.Sequential(
            layer.AdaptiveAvgPool2d((1, 1), step_mode=b.sm), layer.Flatten(step_mode=b.sm),
            layer.Linear(c, h, step_mode=b.sm), b.act(), layer.Linear(h, num_classes, step_mode=b.sm),
        )
    return nn.Sequential(nn.Sequential(*stem_mods, *blocks, *tail), head)


def _mlp(b: _Builder, in_features: int, num_classes: int, hidden: tuple[int, ...], width: float) -> nn.Module:
    mods: list[nn.Module] = [layer.Flatten(step_mode=b.sm)]
    c = in_features
    for h in hidden:
        h = _ch(h, width)
        lin = ScaledWSLinear if b.norm == "sws" else layer.Linear
        mods += [lin(c, h, bias=b.norm != "bn", step_mode=b.sm)]
        if b.norm == "bn":
            mods.append(layer.BatchNorm1d(h, step_mode=b.sm))
        mods.append(b.act())
        c = h
    return nn.Sequential(nn.Sequential(*mods), nn.Sequential(layer.Linear(c, num_classes, step_mode=b.sm)))


ARCHITECTURES = ("mlp", "vgg11", "vgg16", "resnet19", "preact_resnet18")
NORMS = ("bn", "sws", "none")
#: what a pre-activation block's shortcut takes (:class:`PreActBlock`)
SHORTCUTS = ("input", "spikes")


def build(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    input_size: int = 32,
    width: float = 1.0,
    spiking: bool = True,
    neuron: str | Callable[[], nn.Module] = "lth",
    norm: str = "bn",
    pool: str = "avg",
    dropout: float = 0.0,
    hidden: tuple[int, ...] = (128,),
    in_features: int | None = None,
    shortcut_from: str = "input",
    **neuron_kw: Any,
) -> nn.Module:
    """Build a model by name (see ``ARCHITECTURES``).

    Parameters
    ----------
    name: ``mlp``, ``vgg11``, ``vgg16``, ``resnet19``, ``preact_resnet18``.
    num_classes, in_channels, input_size: task interface (``input_size`` is H = W). The ``mlp``
        flattens its input; it has ``in_features`` inputs (default ``in_channels * input_size**2``;
        pass ``in_features=40`` for a 1-D input such as mnist1d).
    width: channel multiplier (> 0). spiking: LIF (True) or the ReLU ANN twin (False).
    neuron: a preset name of :func:`snnlab.neurons.lif` or a zero-argument factory; ``neuron_kw``
        are passed to :func:`~snnlab.neurons.lif` (e.g. ``v_reset=None``, ``surrogate="triangle"``).
    norm: ``bn``, ``sws`` or ``none``. pool: ``avg`` or ``max``. dropout: after each VGG LIF layer.
    hidden: MLP hidden sizes.
    shortcut_from: ``preact_resnet18`` only: ``"input"`` (the block input) or ``"spikes"`` (the
        first BN + neuron's output, as the SLTT official code; see :class:`PreActBlock`).
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"model name={name!r} is unknown; allowed values: {list(ARCHITECTURES)}")
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is unknown; allowed values: {list(NORMS)}")
    if pool not in ("avg", "max"):
        raise ValueError(f"pool={pool!r} is unknown; allowed values: ['avg', 'max']")
    for pname, v in (("num_classes", num_classes), ("in_channels", in_channels), ("input_size", input_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{pname}={v!r} is invalid; allowed values: integers >= 1")
    if not width > 0:
        raise ValueError(f"width={width!r} is invalid; allowed values: numbers > 0")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout!r} is invalid; allowed values: [0, 1)")
    if name == "mlp":
        hidden = tuple(checks.int_list("hidden", list(hidden) if isinstance(hidden, tuple) else hidden, 1))
    if shortcut_from not in SHORTCUTS:
        raise ValueError(f"shortcut_from={shortcut_from!r} is unknown; allowed values: {list(SHORTCUTS)}")
    if shortcut_from != "input" and name != "preact_resnet18":
        raise ValueError(f"shortcut_from={shortcut_from!r} is only for 'preact_resnet18'; got model {name!r}")
    b = _Builder(spiking, neuron, norm, pool, neuron_kw, shortcut_from)
    if name == "mlp":
        net = _mlp(b, in_features or in_channels * input_size**2, num_classes, hidden, width)
    elif name in VGG_CFG:
        net = _vgg(b, VGG_CFG[name], in_channels, num_classes, input_size, width, dropout)
    elif name == "resnet19":
        net = _resnet(b, BasicBlock, [(128, 3), (256, 3), (512, 2)], 128, in_channels, num_classes,
                      input_size, width, preact=False, fc_hidden=256)
    else:
        net = _resnet(b, PreActBlock, [(64, 2), (128, 2), (256, 2), (512, 2)], 64, in_channels, num_classes,
                      input_size, width, preact=True, fc_hidden=None)
    if spiking:
        functional.set_step_mode(net, "m")
    return net


def spiking_neurons(model: nn.Module) -> list[nn.Module]:
    """The LIF nodes of a model, in forward order of registration."""
    return [m for m in model.modules() if isinstance(m, sj_neuron.BaseNode)]
