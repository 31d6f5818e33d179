"""ssgd sparse backward: sparse == dense, both == full SuperSpike at large B_th, forward == an explicit
numpy simulation, the Appendix C example, native kernel == torch reference, bad inputs."""

import math

import numpy as np
import pytest
import torch

from snnlab.record.bench import SavedTensorMeter
from snnlab.grad import sparse_backward as sb

torch.set_num_threads(1)

ALPHA = math.exp(-1 / 10)
IMPLS = ["torch"] + (["native"] if sb.native_available() else [])


def _case(T=25, B=3, n_in=11, n_out=9, p=0.25, scale=1.2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, n_in, generator=g) < p).to(dtype)
    w = (scale * torch.randn(n_in, n_out, generator=g, dtype=dtype))
    return x, w, g


def _grads(fn, x, w, grad_s, grad_v=None):
    xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
    s, v = fn(xx, ww)
    loss = (s * grad_s).sum() + ((v * grad_v).sum() if grad_v is not None else 0)
    loss.backward()
    return s.detach(), v.detach(), xx.grad, ww.grad


# --- forward -----------------------------------------------------------------------------------


def test_forward_equals_explicit_numpy_loop():
    x, w, _ = _case(T=40, p=0.3, scale=1.0)
    xn, wn = x.numpy(), w.numpy()
    v = np.zeros((3, 9))
    s = np.zeros((3, 9))
    vs, ss = [], []
    for t in range(40):
        v = ALPHA * v + xn[t] @ wn - 1.0 * s
        s = (v > 1.0).astype(float)
        vs.append(v.copy())
        ss.append(s.copy())
    assert np.asarray(ss).sum() > 5  # the case spikes
    for impl in IMPLS:
        for backward in ("sparse", "dense"):
            out, vv = sb.lif_layer(x, w, ALPHA, backward=backward, impl=impl)
            np.testing.assert_allclose(vv.numpy(), np.asarray(vs), rtol=0, atol=1e-12)
            np.testing.assert_array_equal(out.numpy(), np.asarray(ss))


# --- sparse == dense ----------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("b_th", [0.05, 0.2, 0.5, 1.5])
def test_single_layer_sparse_equals_dense(impl, b_th):
    x, w, g = _case(seed=int(b_th * 100))
    gs = torch.randn(25, 3, 9, generator=g, dtype=torch.float64)
    for gv in (None, torch.randn(25, 3, 9, generator=g, dtype=torch.float64)):
        d = _grads(lambda a, b: sb.lif_layer(a, b, ALPHA, b_th=b_th, backward="dense"), x, w, gs, gv)
        s = _grads(lambda a, b: sb.lif_layer(a, b, ALPHA, b_th=b_th, backward="sparse", impl=impl), x, w, gs, gv)
        assert d[3].abs().max() > 0  # the gradient is not trivially zero
        for a, b in zip(s, d):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _stack_grads(backward, b_th, impl=None, mode="max", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(30, 4, 12, generator=g) < 0.3).double()
    ws = [1.5 * torch.randn(12, 10, generator=g, dtype=torch.float64),
          1.2 * torch.randn(10, 8, generator=g, dtype=torch.float64),
          1.2 * torch.randn(8, 7, generator=g, dtype=torch.float64)]
    wr = 0.5 * torch.randn(7, 3, generator=g, dtype=torch.float64)
    params = [w.clone().requires_grad_() for w in ws + [wr]]
    net = sb.network(x, params[:3], params[3], ALPHA, b_th=b_th, backward=backward, mode=mode, impl=impl)
    loss = torch.nn.functional.cross_entropy(net.logits, torch.tensor([0, 1, 2, 0]))
    loss = loss + sum(s.sum(0).pow(2).mean() * 1e-3 for s in net.spikes)  # a spike-count regulariser
    loss.backward()
    return [p.grad for p in params], net


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("b_th", [0.1, 0.3, 0.8])
def test_three_layer_stack_with_readout_sparse_equals_dense(impl, b_th):
    gd, netd = _stack_grads("dense", b_th)
    gsp, nets = _stack_grads("sparse", b_th, impl)
    assert all(float(s.detach().mean()) > 0 for s in netd.spikes)  # every layer spikes
    assert gd[0].abs().max() > 0  # gradient reaches the first layer
    for a, b in zip(gsp, gd):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_sum_readout_sparse_equals_dense():
    gd, _ = _stack_grads("dense", 0.3, mode="sum", seed=3)
    gsp, _ = _stack_grads("sparse", 0.3, mode="sum", seed=3)
    for a, b in zip(gsp, gd):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


class _HandSuperSpike(torch.autograd.Function):
    """Heaviside forward, ssgd Eq. E.5 backward 1 / (beta |x| + 1)^2, written out here (not snnlab's)."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (ctx.beta * x.abs() + 1) ** 2, None


def _independent_superspike_stack(x, ws, wr, beta=100.0):
    """A hand-written autograd loop with a hand-written SuperSpike (full surrogate, no B_th)."""
    def spike(u):
        return _HandSuperSpike.apply(u, beta)

    h = x
    for w in ws:
        cur = torch.einsum("tbi,ij->tbj", h, w)
        v = torch.zeros_like(cur[0])
        s = torch.zeros_like(v)
        out = []
        for t in range(cur.shape[0]):
            v = ALPHA * v + cur[t] - s.detach()
            s = spike(v - 1.0)
            out.append(s)
        h = torch.stack(out)
    cur = torch.einsum("tbi,ij->tbj", h, wr)
    v = torch.zeros_like(cur[0])
    vs = []
    for t in range(cur.shape[0]):
        v = ALPHA * v + cur[t]
        vs.append(v)
    return torch.stack(vs).max(0).values


@pytest.mark.parametrize("backward", ["sparse", "dense"])
def test_large_b_th_equals_full_superspike_autograd(backward):
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(30, 4, 12, generator=g) < 0.3).double()
    ws = [1.5 * torch.randn(12, 10, generator=g, dtype=torch.float64),
          1.2 * torch.randn(10, 8, generator=g, dtype=torch.float64),
          1.2 * torch.randn(8, 7, generator=g, dtype=torch.float64)]
    wr = 0.5 * torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    ref = [w.clone().requires_grad_() for w in ws + [wr]]
    torch.nn.functional.cross_entropy(_independent_superspike_stack(x, ref[:3], ref[3]), y).backward()
    ours = [w.clone().requires_grad_() for w in ws + [wr]]
    net = sb.network(x, ours[:3], ours[3], ALPHA, b_th=1e6, backward=backward)
    torch.nn.functional.cross_entropy(net.logits, y).backward()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)
    # and a small B_th really differs from the full surrogate (the comparison can fail)
    small = [w.clone().requires_grad_() for w in ws + [wr]]
    net = sb.network(x, small[:3], small[3], ALPHA, b_th=0.05, backward=backward)
    torch.nn.functional.cross_entropy(net.logits, y).backward()
    assert not torch.allclose(small[0].grad, ref[0].grad)


def test_input_gradient_written_only_where_asked():
    x, w, g = _case(seed=5)
    gs = torch.randn(25, 3, 9, generator=g, dtype=torch.float64)
    ask = torch.rand(25, 3, 11, generator=g) < 0.3
    full = _grads(lambda a, b: sb.lif_layer(a, b, ALPHA, backward="dense"), x, w, gs)[2]
    for impl in IMPLS:
        part = _grads(lambda a, b: sb.lif_layer(a, b, ALPHA, input_active=ask, impl=impl), x, w, gs)[2]
        torch.testing.assert_close(part[ask], full[ask], rtol=1e-10, atol=1e-12)
        assert (part[~ask] == 0).all() and (full[~ask] != 0).any()


# --- Appendix C ---------------------------------------------------------------------------------


def test_appendix_c_walk_lists_the_printed_steps():
    steps = sb.appendix_c_walk([1, 3, 6, 8], [3, 5, 6])
    got = [(s.t, s.source, s.prev, s.power, s.action) for s in steps]
    assert got == [
        (7, 8, None, 0, "compute"),  # delta[7] = dS[8]/dV[8]
        (6, None, 7, 1, "compute and write"),  # delta[6] = alpha delta[7]
        (5, 6, 6, 1, "compute and write"),  # delta[5] = dS[6]/dV[6] + alpha delta[6]
        (3, None, 5, 2, "compute and write"),  # delta[3] = alpha^2 delta[5]
        (2, 3, 3, 1, "not required"),  # delta[2] = dS[3]/dV[3] + alpha delta[3]
        (0, 1, 2, 2, "not required"),  # delta[0] = dS[1]/dV[1] + alpha^2 delta[2]
    ]
    assert steps[3].expression() == "delta_j[3] = alpha^2 delta_j[5]"


@pytest.mark.parametrize("impl", IMPLS)
def test_appendix_c_kernel_writes_exactly_the_listed_deltas(impl):
    """One presynaptic i, one postsynaptic j (W_ij = 1, dL/dS_j = 1). Without the input delay the
    paper's nabla S_i[t] = W delta_j[t] is our dx[t + 1]; t_i = {3, 5, 6} -> requested {4, 6, 7}."""
    T, a = 10, 0.7
    gvals = {1: 0.11, 3: 0.23, 6: 0.37, 8: 0.53}
    act = sb.ActiveSet(torch.tensor([0, 4]), torch.tensor([1, 3, 6, 8], dtype=torch.int32),
                       torch.tensor([gvals[k] for k in (1, 3, 6, 8)], dtype=torch.float64))
    xbits = torch.zeros(T, 1, dtype=torch.uint8)
    req = torch.zeros(T, 1, 1, dtype=torch.bool)
    req[[4, 6, 7]] = True
    reqbits = sb.pack_bits(req.reshape(T, 1))
    w = torch.ones(1, 1, dtype=torch.float64)
    bwd = sb.backward_native if impl == "native" else sb.backward_reference
    dx, _ = bwd(xbits, (T, 1, 1), act, w, a, torch.ones(T, 1, 1, dtype=torch.float64), None, reqbits, True, False)
    walk = {s.t: s.value for s in sb.appendix_c_walk([1, 3, 6, 8], [3, 5, 6], a, gvals)}
    expected = torch.zeros(T, dtype=torch.float64)
    for t in (3, 5, 6):
        expected[t + 1] = walk[t]
    torch.testing.assert_close(dx.flatten(), expected, rtol=1e-12, atol=0)
    # the printed formulas, by hand
    d7 = gvals[8]
    d6 = a * d7
    d5 = gvals[6] + a * d6
    d3 = a**2 * d5
    assert expected[7] == pytest.approx(d6) and expected[6] == pytest.approx(d5) and expected[4] == pytest.approx(d3)


# --- native kernel == torch reference -----------------------------------------------------------

needs_native = pytest.mark.skipif(not sb.native_available(), reason="native kernel not built")


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "T, B, n_in, n_out, p, scale, b_th",
    [(20, 4, 13, 9, 0.3, 1.0, 0.3),  # typical
     (20, 4, 13, 9, 0.3, 1.0, 1e-9),  # empty active set
     (12, 3, 10, 7, 0.5, 0.01, 5.0),  # all active (V stays within 5 of the threshold)
     (1, 5, 9, 6, 0.5, 2.0, 0.8),  # T = 1
     (30, 1, 17, 5, 0.2, 1.5, 0.3)],  # B = 1
)
def test_native_equals_reference(dtype, T, B, n_in, n_out, p, scale, b_th):
    g = torch.Generator().manual_seed(T * 100 + B)
    x = (torch.rand(T, B, n_in, generator=g) < p).to(dtype)
    w = (scale * torch.randn(n_in, n_out, generator=g)).to(dtype)
    xb, ones = sb._pack_x(x, True)
    assert torch.equal(xb, sb.pack_bits(x.reshape(T * B, n_in)))
    assert ones == int(x.sum())
    s_n, v_n, a_n = sb.forward_native(x, w, ALPHA, 1.0, b_th, 100.0, xb, ones)
    s_r, v_r, a_r = sb.forward_reference(x, w, ALPHA, 1.0, b_th, 100.0)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v_n, v_r, **tol)
    # compare on one active set (float32 may flip an entry at the band's edge)
    act = a_r
    if dtype == torch.float64:
        assert torch.equal(s_n, s_r)
        assert torch.equal(a_n.offsets, a_r.offsets) and torch.equal(a_n.rows, a_r.rows)
        torch.testing.assert_close(a_n.g, a_r.g, **tol)
    if b_th == 1e-9:
        assert act.nnz == 0
    if b_th == 5.0:
        assert act.nnz == T * B * n_out
    gs = torch.randn(T, B, n_out, generator=g).to(dtype)
    req = torch.rand(T, B, n_in, generator=g) < 0.4
    for reqbits in (None, sb.pack_bits(req.reshape(T * B, n_in))):
        for gv in (None, torch.randn(T, B, n_out, generator=g).to(dtype)):
            dx_n, dw_n = sb.backward_native(xb, (T, B, n_in), act, w, ALPHA, gs, gv, reqbits)
            dx_r, dw_r = sb.backward_reference(xb, (T, B, n_in), act, w, ALPHA, gs, gv, reqbits)
            torch.testing.assert_close(dx_n, dx_r, **tol)
            torch.testing.assert_close(dw_n, dw_r, **tol)
            if act.nnz:
                assert dw_r.abs().max() > 0


@needs_native
def test_pack_mask_native_matches_torch():
    m = torch.rand(7, 3, 21, generator=torch.Generator().manual_seed(1)) < 0.5
    assert torch.equal(sb._pack_mask(m, True), sb.pack_bits(m.reshape(21, 21)))
    assert torch.equal(sb.unpack_bits(sb.pack_bits(m), 21, torch.bool), m)


# --- memory: what the sparse forward keeps -------------------------------------------------------


def test_sparse_keeps_bits_and_active_entries_only():

    x, w, _ = _case(T=50, B=8, n_in=64, n_out=32, p=0.05, scale=0.5)
    w.requires_grad_()
    with SavedTensorMeter() as m:
        s, v = sb.lif_layer(x, w, ALPHA)
    nnz = int(sb.active_mask(v).sum())
    expected = sb.saved_bytes(50, 8, 64, 32, nnz, dtype_bytes=8, with_request=False) + w.numel() * 8
    assert m.peak == expected
    with SavedTensorMeter() as md:
        sb.lif_layer(x, w, ALPHA, backward="dense")
    assert m.peak < 0.3 * md.peak


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(x=torch.full((3, 2, 4), 0.5)), "x"),
     (dict(b_th=0.0), "b_th"), (dict(b_th=-1.0), "b_th"),
     (dict(alpha=0.0), "alpha"), (dict(alpha=1.0), "alpha"), (dict(alpha=1.5), "alpha"),
     (dict(weight=torch.zeros(5, 3)), "weight.shape"),
     (dict(x=torch.zeros(3, 4)), "x.shape"),
     (dict(x=torch.zeros(3, 2, 4, dtype=torch.float16), weight=torch.zeros(4, 3, dtype=torch.float16)), "x.dtype"),
     (dict(x=torch.zeros(3, 2, 4, dtype=torch.int64)), "x.dtype"),
     (dict(weight=torch.zeros(4, 3, dtype=torch.float64)), "weight.dtype"),
     (dict(weight=torch.zeros(4, 3, device="meta")), "weight.device"),
     (dict(input_active=torch.zeros(3, 2, 5, dtype=torch.bool)), "input_active.shape"),
     (dict(input_active=torch.zeros(3, 2, 4)), "input_active"),
     (dict(backward="approx"), "backward"),
     (dict(beta=0), "beta"), (dict(v_th=math.inf), "v_th")],
)
@pytest.mark.parametrize("backward", ["sparse", "dense"])
def test_bad_inputs_raise_before_work(kwargs, name, backward):
    args = dict(x=torch.zeros(3, 2, 4), weight=torch.zeros(4, 3), alpha=0.9, backward=backward)
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name}=.*allowed values"):
        sb.lif_layer(**args)


def test_readout_and_helpers_validate():
    x = torch.zeros(3, 2, 4)
    with pytest.raises(ValueError, match="^mode="):
        sb.readout(x, torch.zeros(4, 2), 0.9, mode="mean")
    with pytest.raises(ValueError, match="^alpha="):
        sb.readout(x, torch.zeros(4, 2), 1.0)
    with pytest.raises(ValueError, match="^b_th="):
        sb.active_mask(x, 1.0, 0.0)
    with pytest.raises(ValueError, match="^t_i="):
        sb.appendix_c_walk([1], [])
