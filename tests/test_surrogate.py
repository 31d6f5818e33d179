"""Surrogates: Heaviside forward, backward = derivative of the primitive (float64 finite
differences), the papers' closed forms and defaults, and spikingjelly's own implementations."""

import math

import pytest
import torch
from spikingjelly.activation_based import surrogate as sj

from snnlab.core import surrogate

ALL = sorted(surrogate.SURROGATES)


def _points(sg, n=400):
    """float64 points away from kinks of piecewise surrogates (|x| = gamma/2, gamma, b_th) and 0."""
    x = torch.linspace(-1.3, 1.3, n, dtype=torch.float64)
    kinks = [0.0] + [getattr(sg, a) for a in ("b_th",) if hasattr(sg, a)]
    if isinstance(sg, surrogate.Rectangle):
        kinks.append(sg.gamma / 2)
    if isinstance(sg, surrogate.Triangle):
        kinks.append(sg.gamma)
    keep = torch.ones_like(x, dtype=torch.bool)
    for k in kinks:
        keep &= (x.abs() - k).abs() > 1e-3
    return x[keep]


@pytest.mark.parametrize("name", ALL)
def test_backward_is_derivative_of_primitive(name):
    sg = surrogate.get(name)
    x = _points(sg).requires_grad_(True)
    y = sg(x)
    assert torch.equal(y.detach(), (x >= 0).double()), "forward must be the Heaviside step"
    (grad,) = torch.autograd.grad(y.sum(), x)
    h = 1e-6
    with torch.no_grad():
        fd = (sg.primitive(x + h) - sg.primitive(x - h)) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, sg.derivative(x.detach()), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_spiking_false_gives_primitive(name):
    sg = surrogate.get(name)
    sg.set_spiking_mode(False)
    x = torch.linspace(-0.5, 0.5, 11, dtype=torch.float64)
    torch.testing.assert_close(sg(x), surrogate.get(name).primitive(x))


def test_papers_closed_forms():
    x = torch.tensor([-0.3, -0.05, 0.0, 0.1, 0.25], dtype=torch.float64)
    torch.testing.assert_close(surrogate.ATan().derivative(x), 1 / (1 + (math.pi * x) ** 2))  # lth
    torch.testing.assert_close(surrogate.SuperSpike().derivative(x), 1 / (100 * x.abs() + 1) ** 2)  # ssgd E.5
    sparse = surrogate.SparseSuperSpike().derivative(x)
    expect = torch.where(x.abs() < 0.2, 1 / (100 * x.abs() + 1) ** 2, torch.zeros_like(x))  # ssgd Eq. 20
    torch.testing.assert_close(sparse, expect)
    assert sparse[0] == 0 and sparse[-1] == 0 and sparse[2] == 1
    rect = surrogate.Rectangle().derivative(x)  # sltt Eq. 5, gamma = V_th = 1
    torch.testing.assert_close(rect, (x.abs() < 0.5).double())
    tri = surrogate.Triangle().derivative(x)
    torch.testing.assert_close(tri, (1 - x.abs()).clamp(min=0))


def test_defaults_match_papers():
    assert surrogate.SuperSpike().beta == 100
    sp = surrogate.SparseSuperSpike()
    assert (sp.beta, sp.b_th) == (100, 0.2)
    assert surrogate.ATan().alpha == 2
    assert surrogate.Rectangle().gamma == 1 and surrogate.Triangle().gamma == 1


@pytest.mark.parametrize(
    "ours, theirs",
    [(surrogate.ATan(), sj.ATan(alpha=2.0)), (surrogate.Rectangle(0.5), sj.Rect(alpha=2.0)),
     (surrogate.Triangle(2.0), sj.PiecewiseQuadratic(alpha=0.5))],
)
def test_reuses_spikingjelly(ours, theirs):
    x = torch.linspace(-1, 1, 101, dtype=torch.float64, requires_grad=True)
    (g1,) = torch.autograd.grad(ours(x).sum(), x)
    (g2,) = torch.autograd.grad(theirs(x).sum(), x)
    torch.testing.assert_close(g1, g2)


def test_sparse_superspike_only_near_threshold():
    x = torch.randn(10000, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(surrogate.SparseSuperSpike(b_th=0.2)(x).sum(), x)
    assert torch.equal(g != 0, x.detach().abs() < 0.2)


@pytest.mark.parametrize("bad", [dict(beta=0), dict(beta=-1.0), dict(beta=float("nan"))])
def test_bad_parameters(bad):
    with pytest.raises(ValueError, match="beta"):
        surrogate.SuperSpike(**bad)
    with pytest.raises(ValueError, match="b_th"):
        surrogate.SparseSuperSpike(b_th=0)
    with pytest.raises(ValueError, match="allowed values"):
        surrogate.get("sigmoidish")
