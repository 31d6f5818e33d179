r"""Surrogate spike functions used by the four papers.

Every surrogate follows spikingjelly's contract: it is an ``nn.Module`` called on
``x = V - V_th``; the forward pass is the Heaviside step :math:`H(x)` (1 where
``x >= 0``) and the backward pass multiplies the incoming gradient by a smooth
pseudo-derivative :math:`g'(x)`. Each class also exposes

* ``primitive(x)``: a smooth function :math:`g(x)` whose derivative is the surrogate,
  used by ``spiking=False`` and by the finite-difference test;
* ``derivative(x)``: :math:`g'(x)` itself, for plotting.

=====================  ======================================================  ============
class                  :math:`g'(x)`                                            paper
=====================  ======================================================  ============
``ATan(alpha=2)``      :math:`\frac{\alpha}{2}\,\frac{1}{1+(\frac{\pi}{2}\alpha x)^2}`, i.e. :math:`1/(1+(\pi x)^2)`   lth
``Rectangle(gamma=1)`` :math:`\frac{1}{\gamma}\,\mathbb{1}[|x| < \gamma/2]`     sltt Eq. 5
``Triangle(gamma=1)``  :math:`\frac{1}{\gamma^2}\max(0, \gamma-|x|)`            sltt code
``SuperSpike(beta=100)`` :math:`1/(\beta|x|+1)^2`                               ssgd E.5
``SparseSuperSpike(beta=100, b_th=0.2)`` the same where :math:`|x|<B_{th}`, else 0  ssgd Eq. 20
=====================  ======================================================  ============

ATan, Rectangle and Triangle are spikingjelly's own ``ATan``, ``Rect`` and
``PiecewiseQuadratic`` (so its fused kernels see them), re-parameterised with the
papers' constants. SuperSpike differs from spikingjelly's ``SuperSpike`` (which is
:math:`\alpha/(1+|x|)^2`), so it is implemented here.

Example
-------
>>> import torch
>>> sg = SuperSpike()
>>> x = torch.tensor([-0.1, 0.0, 0.01], requires_grad=True)
>>> sg(x)
tensor([0., 1., 1.], grad_fn=<SuperSpikeFunctionBackward>)
>>> sg(x).sum().backward(); x.grad
tensor([0.0083, 1.0000, 0.2500])
"""

from __future__ import annotations

import math

import torch
from spikingjelly.activation_based import surrogate as sj_surrogate

__all__ = [
    "ATan",
    "Rectangle",
    "Triangle",
    "SuperSpike",
    "SparseSuperSpike",
    "SURROGATES",
    "get",
]


def _check_positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class ATan(sj_surrogate.ATan):
    r"""Arctan surrogate of the lth paper (spikingjelly's ``ATan``, default ``alpha=2``).

    :math:`g(x) = \frac{1}{\pi}\arctan(\frac{\pi}{2}\alpha x) + \frac12`,
    :math:`g'(x) = \frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha x)^2}`; with ``alpha=2`` this is
    :math:`1/(1+(\pi x)^2)`.
    """

    def __init__(self, alpha: float = 2.0, spiking: bool = True):
        super().__init__(alpha=_check_positive("alpha", alpha), spiking=spiking)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha / 2 / (1 + (math.pi / 2 * self.alpha * x) ** 2)


class Rectangle(sj_surrogate.Rect):
    r"""Rectangle surrogate of the sltt paper (Eq. 5): :math:`g'(x) = \frac1\gamma \mathbb 1[|x|<\gamma/2]`.

    The paper takes :math:`\gamma = V_{th} = 1`. Implemented as spikingjelly's ``Rect`` with
    ``alpha = 1/gamma``; the primitive is :math:`\mathrm{clip}(x/\gamma + 1/2, 0, 1)`.
    """

    def __init__(self, gamma: float = 1.0, spiking: bool = True):
        gamma = _check_positive("gamma", gamma)
        super().__init__(alpha=1.0 / gamma, spiking=spiking)
        self.gamma = gamma

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x / self.gamma + 0.5, 0.0, 1.0)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() < self.gamma / 2).to(x.dtype) / self.gamma


class Triangle(sj_surrogate.PiecewiseQuadratic):
    r"""Triangle surrogate (the sltt code's default): :math:`g'(x) = \gamma^{-2}\max(0, \gamma - |x|)`.

    Spikingjelly's ``PiecewiseQuadratic`` with ``alpha = 1/gamma``.
    """

    def __init__(self, gamma: float = 1.0, spiking: bool = True):
        gamma = _check_positive("gamma", gamma)
        super().__init__(alpha=1.0 / gamma, spiking=spiking)
        self.gamma = gamma

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        xc = torch.clamp(x, -g, g)
        return 0.5 + xc / g - xc * xc.abs() / (2 * g * g)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.gamma - x.abs(), min=0.0) / self.gamma**2


class SuperSpikeFunction(torch.autograd.Function):
    """Heaviside forward, (thresholded) SuperSpike backward. ``b_th=inf`` means dense."""

    @staticmethod
    def forward(x, beta, b_th):
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, beta, b_th = inputs
        ctx.save_for_backward(x)
        ctx.beta, ctx.b_th = beta, b_th

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * _superspike_derivative(x, ctx.beta, ctx.b_th), None, None


def _superspike_derivative(x: torch.Tensor, beta: float, b_th: float) -> torch.Tensor:
    g = 1.0 / (beta * x.abs() + 1.0) ** 2
    if math.isfinite(b_th):
        g = torch.where(x.abs() < b_th, g, torch.zeros_like(g))
    return g


class SuperSpike(sj_surrogate.SurrogateFunctionBase):
    r"""SuperSpike / fast-sigmoid surrogate of the ssgd paper (E.5): :math:`g'(x) = (\beta|x|+1)^{-2}`.

    Primitive: the fast sigmoid :math:`g(x) = \frac12 + \frac{x}{1+\beta|x|}`. Default
    :math:`\beta = 100` (ssgd Table 4).
    """

    def __init__(self, beta: float = 100.0, spiking: bool = True):
        super().__init__(spiking=spiking, beta=_check_positive("beta", beta))

    @staticmethod
    def spiking_function(x, beta):
        return SuperSpikeFunction.apply(x, beta, math.inf)  # b_th = inf: dense

    @staticmethod
    def primitive_function(x, beta):
        return 0.5 + x / (1 + beta * x.abs())

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return self.primitive_function(x, self.beta)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return _superspike_derivative(x, self.beta, math.inf)


class SparseSuperSpike(sj_surrogate.SurrogateFunctionBase):
    r"""Thresholded SuperSpike of the ssgd paper (Eq. 20): zero where :math:`|x| \ge B_{th}`.

    :math:`g'(x) = (\beta|x|+1)^{-2}\,\mathbb 1[|x| < B_{th}]`; its primitive is the fast
    sigmoid evaluated at :math:`\mathrm{clip}(x, -B_{th}, B_{th})`. Defaults ``beta=100``,
    ``b_th=0.2`` (ssgd Table 4). Only neurons with :math:`|V - V_{th}| < B_{th}` receive gradient:
    this is the sparsity the ssgd backward pass exploits.
    """

    def __init__(self, beta: float = 100.0, b_th: float = 0.2, spiking: bool = True):
        super().__init__(
            spiking=spiking,
            beta=_check_positive("beta", beta),
            b_th=_check_positive("b_th", b_th),
        )

    @staticmethod
    def spiking_function(x, beta, b_th):
        return SuperSpikeFunction.apply(x, beta, b_th)

    @staticmethod
    def primitive_function(x, beta, b_th):
        xc = torch.clamp(x, -b_th, b_th)
        return 0.5 + xc / (1 + beta * xc.abs())

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return self.primitive_function(x, self.beta, self.b_th)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return _superspike_derivative(x, self.beta, self.b_th)


#: name -> class, for parameter cells and widgets (values are classes, not strings to if/elif on)
SURROGATES: dict[str, type[torch.nn.Module]] = {
    "atan": ATan,
    "rectangle": Rectangle,
    "triangle": Triangle,
    "superspike": SuperSpike,
    "sparse_superspike": SparseSuperSpike,
}


def get(name: str, **params) -> torch.nn.Module:
    """Build a surrogate by name (``SURROGATES`` keys) with the paper's defaults overridable."""
    try:
        cls = SURROGATES[name]
    except KeyError:
        raise ValueError(
            f"surrogate={name!r} is unknown; allowed values: {sorted(SURROGATES)}"
        ) from None
    return cls(**params)
