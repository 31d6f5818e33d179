r"""Sparse spiking gradient descent (Perez-Nieves & Goodman, NeurIPS 2021): an exact sparse backward.

The layer is the simplified LIF of the paper's Eq. 17-19, written **without** the one-step input
delay (input spikes at step ``t`` charge the membrane at step ``t``):

.. math::

    V[t] = \alpha V[t-1] + x[t] W - v_{th}\, S[t-1], \qquad S[t] = \mathbb 1[V[t] > v_{th}],
    \qquad V[-1] = S[-1] = 0

(V_rest = V_r = 0, Table 3). The backward uses the surrogate of Eq. 20,
:math:`g(V) = (\beta|V - v_{th}| + 1)^{-2}` where :math:`|V - v_{th}| < B_{th}` and 0 elsewhere. The
reset term is not differentiated; the leak is. With :math:`c[t] = \nabla S[t]\, g(V[t]) + \nabla V[t]`
the membrane adjoint is :math:`e[t] = c[t] + \alpha e[t+1]` (the paper's :math:`\delta[t-1]`,
Proposition 1), and

.. math::

    \nabla W = \sum_t \mathrm{tr}[t]^\top c[t], \quad \mathrm{tr}[t] = \sum_{k\le t}\alpha^{t-k} x[k],
    \qquad \nabla x[t] = e[t]\, W^\top .

``backward="dense"`` is plain autograd over a Python time loop with the same thresholded surrogate
(the paper's baseline). ``backward="sparse"`` is a :class:`torch.autograd.Function` that keeps for
the backward only

* the input spikes packed as bits (``ceil(N_in/8)`` bytes per row; not a float trace),
* for every *active* entry ``(t, b, j)`` (:math:`|V - v_{th}| < B_{th}`) its row ``t*B + b`` (int32)
  and its surrogate value, grouped by output neuron ``j`` (CSR offsets),
* the request mask below, as bits, and the weight (a reference to the parameter).

Its backward recomputes the input trace, accumulates the weight gradient from active entries only,
one output neuron per task (no atomics), and runs the membrane adjoint through the recurrence of
Proposition 1 (decay by :math:`\alpha^n` across inactive steps, change only at active ones).

**Where the input gradient is written.** ``input_active`` (a bool ``[T, B, N_in]`` mask, normally the
previous layer's active set, :func:`active_mask`) says where the caller needs :math:`\nabla x`: it is
computed and written exactly there and is **zero elsewhere** (Appendix C). This is exact for the
previous layer because that layer multiplies :math:`\nabla x` by its own surrogate, which is zero
outside its active set. With ``input_active=None`` (default) the full input gradient is written and
equals dense autograd. A caller that uses the spikes elsewhere (e.g. an activity regulariser) is
unaffected: those gradients are added to the previous layer's :math:`\nabla S` by autograd as usual.
If ``v`` itself feeds the loss, its gradient is handled exactly too, on a dense path (GEMMs).

Cost (Appendix B): :math:`O(\rho\,T B N_{in} N_{out})` multiply-adds for the weight gradient and the
requested input gradient, plus :math:`O(T B (N_{in} + N_{out}))` for the trace, the packing and the
adjoint walk.

**Implementations.** A pure-torch reference (:func:`forward_reference`, :func:`backward_reference`)
and the C/OpenMP kernel ``snnlab/kernels/sparse_backward.c`` built by :mod:`snnlab.kernels.build`
(the CPU path; if it cannot be built the torch reference runs, with one warning). No GPU was lent
to this work: CUDA tensors run the torch reference (no Triton kernel yet).

Example
-------
>>> import torch
>>> from snnlab.grad import sparse_backward as sb
>>> g = torch.Generator().manual_seed(0)
>>> x = (torch.rand(20, 4, 30, generator=g) < 0.2).float()
>>> w = (0.3 * torch.randn(30, 10, generator=g)).requires_grad_()
>>> out, v = sb.lif_layer(x, w, alpha=0.9)
>>> out.shape, v.shape
(torch.Size([20, 4, 10]), torch.Size([20, 4, 10]))
>>> out.sum().backward()
>>> w.grad.shape
torch.Size([30, 10])
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch

from .. import checks
from ..kernels import build

__all__ = [
    "lif_layer",
    "readout",
    "network",
    "active_mask",
    "active_fraction",
    "surrogate",
    "pack_bits",
    "unpack_bits",
    "ActiveSet",
    "forward_reference",
    "forward_native",
    "backward_reference",
    "backward_native",
    "native_available",
    "appendix_c_walk",
    "WalkStep",
    "saved_bytes",
]

DTYPES = (torch.float32, torch.float64)
BACKWARDS = ("sparse", "dense")

# --- native kernel ----------------------------------------------------------------------------

_P, _I64, _INT, _F32, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_double


def _signatures() -> dict:
    sig = {"ssgd_pack_mask": ([_P, _I64, _I64, _P, _I64, _INT], None)}
    for suf, F in (("f32", _F32), ("f64", _F64)):
        sig.update({
            f"ssgd_pack_bits_{suf}": ([_P, _I64, _I64, _P, _I64, _P, _INT], _I64),
            f"ssgd_forward_{suf}": ([_P, _P, _P, _I64, _I64, _I64, _I64, _I64, F, F, F, _P, _P, _P, _INT], None),
            f"ssgd_active_fill_{suf}": ([_P, _I64, _I64, _I64, F, F, F, _P, _P, _P, _INT], None),
            f"ssgd_backward_{suf}": ([_P, _P, _P, _I64, _I64, _I64, _I64, _I64, _P, _P, _P, _P, F, _P, _P, _P,
                                      _INT], _INT),
        })
    return sig


def _lib():
    return build.load("sparse_backward", _signatures())


def native_available() -> bool:
    """Whether the C/OpenMP kernel built (False also under ``SNNLAB_NO_NATIVE=1``)."""
    return _lib() is not None


def _ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _suf(dtype: torch.dtype) -> str:
    return "f32" if dtype == torch.float32 else "f64"


def _threads() -> int:
    return max(1, torch.get_num_threads())


# --- validation -------------------------------------------------------------------------------


def _check_tensor(name: str, t, dim: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        checks.fail(name, type(t).__name__, f"a torch.Tensor with {dim} dimensions")
    if t.dim() != dim:
        checks.fail(f"{name}.shape", list(t.shape), f"{dim} dimensions")
    if t.dtype not in DTYPES:
        checks.fail(f"{name}.dtype", t.dtype, "torch.float32 or torch.float64")
    return t


def _check_binary(name: str, x: torch.Tensor) -> None:
    if not bool(((x == 0) | (x == 1)).all()):
        bad = x[(x != 0) & (x != 1)].flatten()[:3].tolist()
        checks.fail(name, f"a tensor with non-binary entries such as {bad}", "spikes in {0, 1}")


def _check_layer_args(x, weight, alpha, v_th, b_th, beta, input_active=None) -> tuple[float, float, float, float]:
    _check_tensor("x", x, 3)
    _check_tensor("weight", weight, 2)
    if weight.device != x.device:
        checks.fail("weight.device", str(weight.device), f"the device of x ({x.device})")
    if weight.dtype != x.dtype:
        checks.fail("weight.dtype", weight.dtype, f"the dtype of x ({x.dtype})")
    if weight.shape[0] != x.shape[2]:
        checks.fail("weight.shape", list(weight.shape), f"[N_in={x.shape[2]}, N_out] to match x [T, B, N_in]")
    if min(x.shape) < 1 or weight.shape[1] < 1:
        checks.fail("x.shape", list(x.shape), "non-empty [T, B, N_in] with weight [N_in, N_out], N_out >= 1")
    if x.shape[0] * x.shape[1] >= 2**31:
        checks.fail("x.shape", list(x.shape), "T*B < 2**31")
    alpha = checks.number_in("alpha", alpha, 0, 1, lo_open=True, hi_open=True)
    if not checks.is_real(v_th) or not math.isfinite(v_th):
        checks.fail("v_th", v_th, "finite numbers")
    b_th = checks.positive("b_th", b_th)
    beta = checks.positive("beta", beta)
    if input_active is not None:
        if not isinstance(input_active, torch.Tensor) or input_active.dtype != torch.bool:
            checks.fail("input_active", type(input_active).__name__ if not isinstance(input_active, torch.Tensor)
                        else input_active.dtype, "None or a torch.bool tensor shaped like x")
        if input_active.shape != x.shape:
            checks.fail("input_active.shape", list(input_active.shape), f"the shape of x ({list(x.shape)})")
        if input_active.device != x.device:
            checks.fail("input_active.device", str(input_active.device), f"the device of x ({x.device})")
    return alpha, float(v_th), b_th, beta


# --- small helpers ----------------------------------------------------------------------------


def surrogate(v: torch.Tensor, v_th: float = 1.0, b_th: float = 0.2, beta: float = 100.0) -> torch.Tensor:
    r"""Eq. 20: :math:`(\beta|v - v_{th}| + 1)^{-2}` where :math:`|v - v_{th}| < B_{th}`, else 0
    (``b_th=math.inf`` gives the full SuperSpike surrogate of E.5)."""
    d = (v - v_th).abs()
    g = 1.0 / (beta * d + 1.0) ** 2
    return torch.where(d < b_th, g, torch.zeros_like(g))


def active_mask(v: torch.Tensor, v_th: float = 1.0, b_th: float = 0.2) -> torch.Tensor:
    r"""The active set :math:`|V - v_{th}| < B_{th}` as a bool tensor (pass a layer's mask as the next
    layer's ``input_active``)."""
    if not isinstance(v, torch.Tensor):
        checks.fail("v", type(v).__name__, "a torch.Tensor")
    b_th = checks.positive("b_th", b_th)
    return (v.detach() - v_th).abs() < b_th


def active_fraction(v: torch.Tensor, v_th: float = 1.0, b_th: float = 0.2) -> float:
    r"""The fraction :math:`\rho` of entries of ``v`` in the active set (Figs. 9, 22)."""
    return float(active_mask(v, v_th, b_th).float().mean()) if v.numel() else 0.0


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Pack the last dimension of a 0/1 tensor into bits: ``[..., N] -> [..., ceil(N/8)]`` uint8, bit k
    of byte q holding column 8q + k (the layout the C kernel reads). Pure torch."""
    n = mask.shape[-1]
    nb = (n + 7) // 8
    m = (mask != 0).to(torch.uint8)
    if nb * 8 != n:
        m = torch.nn.functional.pad(m, (0, nb * 8 - n))
    weights = (2 ** torch.arange(8, device=m.device, dtype=torch.int32))
    return (m.reshape(*m.shape[:-1], nb, 8).to(torch.int32) * weights).sum(-1).to(torch.uint8)


def unpack_bits(bits: torch.Tensor, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``[..., NB]`` uint8 -> ``[..., n]`` of ``dtype``."""
    shifts = torch.arange(8, device=bits.device, dtype=torch.uint8)
    out = (bits.unsqueeze(-1) >> shifts) & 1
    return out.reshape(*bits.shape[:-1], bits.shape[-1] * 8)[..., :n].to(dtype)


class ActiveSet(NamedTuple):
    """A layer's active entries, CSR by output neuron: entry ``e`` of neuron ``j`` (``offsets[j] <= e <
    offsets[j+1]``) sits at row ``rows[e] = t*B + b`` with surrogate value ``g[e]``; within a neuron the
    entries are ordered by (b, t)."""

    offsets: torch.Tensor  # int64 [N_out + 1]
    rows: torch.Tensor  # int32 [nnz]
    g: torch.Tensor  # dtype of x [nnz]

    @property
    def nnz(self) -> int:
        return int(self.rows.numel())


# --- forward ----------------------------------------------------------------------------------


def forward_reference(x: torch.Tensor, weight: torch.Tensor, alpha: float, v_th: float, b_th: float,
                      beta: float) -> tuple[torch.Tensor, torch.Tensor, ActiveSet]:
    """Pure-torch forward (no autograd): ``(spikes, v, active set)``; inputs assumed validated."""
    T, B, _ = x.shape
    n_out = weight.shape[1]
    with torch.no_grad():
        cur = (x.reshape(T * B, -1) @ weight).reshape(T, B, n_out)
        v = torch.empty_like(cur)
        s = torch.empty_like(cur)
        vt = torch.zeros(B, n_out, dtype=x.dtype, device=x.device)
        st = torch.zeros_like(vt)
        for t in range(T):
            vt = alpha * vt + cur[t] - v_th * st
            st = (vt > v_th).to(x.dtype)
            v[t], s[t] = vt, st
        mask = (v - v_th).abs() < b_th
        jbt = mask.permute(2, 1, 0).nonzero()  # (j, b, t): grouped by output neuron, then batch, then time
        row = jbt[:, 2] * B + jbt[:, 1]
        rows = row.to(torch.int32)
        g = surrogate(v.reshape(T * B, n_out)[row, jbt[:, 0]], v_th, b_th, beta)
        counts = torch.bincount(jbt[:, 0], minlength=n_out)
        offsets = torch.zeros(n_out + 1, dtype=torch.int64, device=x.device)
        offsets[1:] = counts.cumsum(0)
    return s, v, ActiveSet(offsets, rows, g)


def forward_native(x: torch.Tensor, weight: torch.Tensor, alpha: float, v_th: float, b_th: float,
                   beta: float, xbits: torch.Tensor | None = None, ones: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, ActiveSet]:
    """The C forward (CPU, contiguous): same outputs as :func:`forward_reference`. With the packed
    spikes ``xbits`` and their count ``ones`` (from :func:`_pack_x`), a sparse input (under 1/8 of the
    entries spiking) is integrated by summing the weight rows of the spiking inputs instead of a GEMM."""
    lib = _lib()
    T, B, n_in = x.shape
    n_out = weight.shape[1]
    R = T * B
    nb = (n_in + 7) // 8
    suf, F = _suf(x.dtype), (_F32 if x.dtype == torch.float32 else _F64)
    P = max(1, min(_threads(), B))
    with torch.no_grad():
        if xbits is None or ones is None or ones * 8 > R * n_in:
            cur = x.reshape(R, n_in) @ weight
        else:
            cur = None
        v = torch.empty(T, B, n_out, dtype=x.dtype)
        s = torch.empty_like(v)
        counts = torch.zeros(P, n_out, dtype=torch.int64)
        getattr(lib, f"ssgd_forward_{suf}")(_ptr(cur), _ptr(xbits), _ptr(weight), T, B, n_in, nb, n_out,
                                            F(alpha), F(v_th), F(b_th), _ptr(v), _ptr(s), _ptr(counts), P)
        flat = counts.t().reshape(-1)  # (j, p) order
        starts = torch.zeros_like(flat)
        starts[1:] = flat.cumsum(0)[:-1]
        nnz = int(flat.sum())
        pos = starts.reshape(n_out, P).t().contiguous()
        offsets = torch.empty(n_out + 1, dtype=torch.int64)
        offsets[:n_out] = starts.reshape(n_out, P)[:, 0]
        offsets[n_out] = nnz
        rows = torch.empty(nnz, dtype=torch.int32)
        g = torch.empty(nnz, dtype=x.dtype)
        getattr(lib, f"ssgd_active_fill_{suf}")(_ptr(v), T, B, n_out, F(v_th), F(b_th), F(beta), _ptr(pos),
                                                _ptr(rows), _ptr(g), P)
    return s, v, ActiveSet(offsets, rows, g)


# --- backward ---------------------------------------------------------------------------------


def _trace_reference(xbits: torch.Tensor, shape: tuple[int, int, int], alpha: float, dtype) -> torch.Tensor:
    T, B, n_in = shape
    x = unpack_bits(xbits.reshape(T, B, -1), n_in, dtype)
    tr = torch.empty_like(x)
    acc = torch.zeros(B, n_in, dtype=dtype, device=x.device)
    for t in range(T):
        acc = alpha * acc + x[t]
        tr[t] = acc
    return tr.reshape(T * B, n_in)


def _add_v_grads(dx, dW, grad_v, tr, weight, alpha, reqbits, need_w, need_x, dtype):
    """Add the exact dense gradient of a loss on V itself (both backward implementations share it);
    the input part is kept only where the caller requested it (``reqbits``)."""
    if grad_v is None:
        return dx, dW
    T, B = grad_v.shape[:2]
    n_in = weight.shape[0]
    vdx, vdW = _dense_v_grads(grad_v, tr, weight, alpha, T, B, need_x)
    if need_w:
        dW = dW + vdW
    if need_x:
        if reqbits is not None:
            vdx = vdx * unpack_bits(reqbits, n_in, dtype).reshape(T, B, n_in)
        dx = dx + vdx
    return dx, dW


def _dense_v_grads(grad_v, tr, weight, alpha, T, B, need_x):
    """Exact contributions of a gradient on ``v`` itself (dense: only when ``v`` feeds the loss)."""
    n_out = weight.shape[1]
    gv = grad_v.reshape(T * B, n_out)
    dW = tr.t() @ gv if tr is not None else None
    dx = None
    if need_x:
        e = torch.empty(T, B, n_out, dtype=gv.dtype, device=gv.device)
        acc = torch.zeros(B, n_out, dtype=gv.dtype, device=gv.device)
        gv3 = gv.reshape(T, B, n_out)
        for t in range(T - 1, -1, -1):
            acc = gv3[t] + alpha * acc
            e[t] = acc
        dx = (e.reshape(T * B, n_out) @ weight.t()).reshape(T, B, -1)
    return dx, dW


def backward_reference(xbits, shape, act: ActiveSet, weight, alpha, grad_spikes, grad_v=None, reqbits=None,
                       need_x=True, need_w=True):
    """Pure-torch sparse backward: ``(grad_x or None, grad_weight or None)``.

    ``xbits`` [T*B, ceil(N_in/8)] packed input spikes, ``act`` the active set, ``grad_spikes`` /
    ``grad_v`` [T, B, N_out] (either may be None), ``reqbits`` the packed request mask (None: all)."""
    T, B, n_in = shape
    n_out = weight.shape[1]
    R = T * B
    dtype, dev = weight.dtype, weight.device
    j_of = torch.repeat_interleave(torch.arange(n_out, device=dev), act.offsets.diff())
    rows = act.rows.long()
    if grad_spikes is not None and act.nnz:
        c = grad_spikes.reshape(R, n_out)[rows, j_of] * act.g
    else:
        c = torch.zeros(0, dtype=dtype, device=dev)
        rows, j_of = rows[:0], j_of[:0]
    tr = _trace_reference(xbits, shape, alpha, dtype) if need_w else None
    dW = dx = None
    if need_w:
        dWT = torch.zeros(n_out, n_in, dtype=dtype, device=dev)
        dWT.index_add_(0, j_of, c[:, None] * tr[rows])  # grouped by output neuron
        dW = dWT.t().contiguous()
    if need_x:
        # membrane adjoint e[t] = c[t] + alpha e[t+1] (Proposition 1 with n = 1 at every step)
        C = torch.zeros(T, B, n_out, dtype=dtype, device=dev)
        C.view(R, n_out)[rows, j_of] = c
        e = torch.empty_like(C)
        acc = torch.zeros(B, n_out, dtype=dtype, device=dev)
        for t in range(T - 1, -1, -1):
            acc = C[t] + alpha * acc
            e[t] = acc
        e = e.reshape(R, n_out)
        if reqbits is None:
            dx = (e @ weight.t()).reshape(T, B, n_in)
        else:
            req = unpack_bits(reqbits, n_in, torch.uint8).reshape(R, n_in).nonzero()
            dx = torch.zeros(R, n_in, dtype=dtype, device=dev)
            dx[req[:, 0], req[:, 1]] = (e[req[:, 0]] * weight[req[:, 1]]).sum(-1)
            dx = dx.reshape(T, B, n_in)
    return _add_v_grads(dx, dW, grad_v, tr if need_w else None, weight, alpha, reqbits, need_w, need_x, dtype)


def backward_native(xbits, shape, act: ActiveSet, weight, alpha, grad_spikes, grad_v=None, reqbits=None,
                    need_x=True, need_w=True):
    """The C backward, same contract as :func:`backward_reference` (one kernel call: bucketing of the
    active entries by row, the weight gradient by output-neuron blocks, the input-gradient walk)."""
    lib = _lib()
    T, B, n_in = shape
    n_out = weight.shape[1]
    R = T * B
    nb = (n_in + 7) // 8
    dtype = weight.dtype
    suf, F = _suf(dtype), (_F32 if dtype == torch.float32 else _F64)
    build.check_args(
        "sparse_backward", "cpu",
        xbits=(xbits, (torch.uint8,), (R, nb)), rows=(act.rows, (torch.int32,), (None,)),
        g=(act.g, (dtype,), (act.nnz,)), offsets=(act.offsets, (torch.int64,), (n_out + 1,)),
        weight=(weight, (dtype,), (n_in, n_out)), reqbits=(reqbits, (torch.uint8,), (R, nb)),
    )
    dW = dx = None
    if grad_spikes is not None:
        gs = grad_spikes.contiguous()
        build.check_args("sparse_backward", "cpu", grad_spikes=(gs, (dtype,), (T, B, n_out)))
        dWT = torch.empty(n_out, n_in, dtype=dtype) if need_w else None
        E = torch.empty(R, n_out, dtype=dtype) if (need_x and reqbits is None) else None
        dxbuf = torch.empty(T, B, n_in, dtype=dtype) if (need_x and reqbits is not None) else None
        err = getattr(lib, f"ssgd_backward_{suf}")(
            _ptr(gs), _ptr(weight), _ptr(xbits), T, B, n_in, nb, n_out, _ptr(act.offsets), _ptr(act.rows),
            _ptr(act.g), _ptr(reqbits), F(alpha), _ptr(dWT), _ptr(dxbuf), _ptr(E), _threads())
        if err:
            raise MemoryError("sparse_backward: the native kernel could not allocate its scratch buffers")
        if need_w:
            dW = dWT.t().contiguous()
        if need_x:
            dx = dxbuf if E is None else (E @ weight.t()).reshape(T, B, n_in)
    else:
        if need_w:
            dW = torch.zeros_like(weight)
        if need_x:
            dx = torch.zeros(T, B, n_in, dtype=dtype)
    tr = _trace_reference(xbits, shape, alpha, dtype) if (grad_v is not None and need_w) else None
    return _add_v_grads(dx, dW, grad_v, tr, weight, alpha, reqbits, need_w, need_x, dtype)


def _use_native(x: torch.Tensor, impl: str | None) -> bool:
    if impl == "torch" or x.device.type != "cpu":
        return False
    ok = native_available()
    if impl == "native" and not ok:
        raise build.KernelUnavailable(f"the native sparse_backward kernel is unavailable: "
                                      f"{build.status('sparse_backward')}")
    return ok


def _pack_x(x: torch.Tensor, native: bool) -> tuple[torch.Tensor, int | None]:
    """Validate that x is binary and pack it into bits, in one pass (native: also counts the spikes)
    or with torch ops: ``(bits [T*B, ceil(N_in/8)], spike count or None)``."""
    T, B, n_in = x.shape
    if native:
        xc = x.contiguous()
        bits = torch.empty(T * B, (n_in + 7) // 8, dtype=torch.uint8)
        ones = ctypes.c_int64(0)
        bad = getattr(_lib(), f"ssgd_pack_bits_{_suf(x.dtype)}")(_ptr(xc), T * B, n_in, _ptr(bits),
                                                                 bits.shape[1], ctypes.byref(ones), _threads())
        if bad:
            _check_binary("x", x)  # raises, naming examples
        return bits, int(ones.value)
    _check_binary("x", x)
    return pack_bits(x.reshape(T * B, n_in)), None


def _pack_mask(mask: torch.Tensor, native: bool) -> torch.Tensor:
    T, B, n = mask.shape
    if native:
        m = mask.contiguous()
        bits = torch.empty(T * B, (n + 7) // 8, dtype=torch.uint8)
        _lib().ssgd_pack_mask(_ptr(m), T * B, n, _ptr(bits), bits.shape[1], _threads())
        return bits
    return pack_bits(mask.reshape(T * B, n))


class SparseLIF(torch.autograd.Function):
    """The sparse layer; call through :func:`lif_layer`. Saves bits, the active set and the weight."""

    @staticmethod
    def forward(ctx, x, weight, alpha, v_th, b_th, beta, input_active, native):
        ctx.set_materialize_grads(False)
        xbits, ones = _pack_x(x, native)  # validates binary before any other work
        if native:
            s, v, act = forward_native(x.contiguous(), weight.contiguous(), alpha, v_th, b_th, beta, xbits, ones)
        else:
            s, v, act = forward_reference(x, weight, alpha, v_th, b_th, beta)
        need_x = ctx.needs_input_grad[0]
        reqbits = _pack_mask(input_active, native) if (input_active is not None and need_x) else None
        to_save = [xbits, act.offsets, act.rows, act.g, weight]
        ctx.has_req = reqbits is not None
        if reqbits is not None:
            to_save.append(reqbits)
        ctx.save_for_backward(*to_save)
        ctx.shape, ctx.alpha, ctx.native = tuple(x.shape), alpha, native
        return s, v

    @staticmethod
    def backward(ctx, grad_spikes, grad_v):
        saved = ctx.saved_tensors
        xbits, offsets, rows, g, weight = saved[:5]
        reqbits = saved[5] if ctx.has_req else None
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if grad_spikes is None and grad_v is None:
            return (None,) * 8
        bwd = backward_native if ctx.native else backward_reference
        w = weight.contiguous() if ctx.native else weight
        dx, dW = bwd(xbits, ctx.shape, ActiveSet(offsets, rows, g), w, ctx.alpha, grad_spikes, grad_v, reqbits,
                     need_x, need_w)
        return dx, dW, None, None, None, None, None, None


class _ThresholdedSpike(torch.autograd.Function):
    """Heaviside ``v > v_th`` forward; Eq. 20 surrogate backward (the dense baseline's spike function)."""

    @staticmethod
    def forward(ctx, v, v_th, b_th, beta):
        ctx.save_for_backward(v)
        ctx.v_th, ctx.b_th, ctx.beta = v_th, b_th, beta
        return (v > v_th).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * surrogate(v, ctx.v_th, ctx.b_th, ctx.beta), None, None, None


def _dense_layer(x, weight, alpha, v_th, b_th, beta):
    T, B, _ = x.shape
    cur = (x.reshape(T * B, -1) @ weight).reshape(T, B, -1)
    v = torch.zeros(B, weight.shape[1], dtype=x.dtype, device=x.device)
    s = torch.zeros_like(v)
    vs, ss = [], []
    for t in range(T):
        v = alpha * v + cur[t] - v_th * s.detach()  # reset not differentiated, leak is
        s = _ThresholdedSpike.apply(v, v_th, b_th, beta)
        vs.append(v)
        ss.append(s)
    return torch.stack(ss), torch.stack(vs)


def lif_layer(x: torch.Tensor, weight: torch.Tensor, alpha: float, v_th: float = 1.0, b_th: float = 0.2,
              beta: float = 100.0, backward: str = "sparse", input_active: torch.Tensor | None = None,
              impl: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One LIF layer (Eq. 17-19 without the input delay): ``(spikes [T, B, N_out], v [T, B, N_out])``.

    ``x`` [T, B, N_in] spikes in {0, 1} (float32/float64), ``weight`` [N_in, N_out] of the same dtype
    and device, ``alpha`` in (0, 1) the leak, ``b_th > 0`` the half-width of the active band, ``beta``
    the surrogate slope. ``backward``: ``"sparse"`` (this module's Function) or ``"dense"`` (autograd
    over a Python loop, same surrogate). ``input_active``: where the sparse backward writes the input
    gradient (see the module docstring; ignored by ``"dense"``, which always writes it everywhere).
    ``impl``: ``None`` (native on CPU when built, else torch), ``"native"`` or ``"torch"``.
    Every bad argument raises ``ValueError`` before any work.
    """
    alpha, v_th, b_th, beta = _check_layer_args(x, weight, alpha, v_th, b_th, beta, input_active)
    checks.choice("backward", backward, BACKWARDS)
    checks.choice("impl", impl, [None, "native", "torch"])
    if backward == "dense":
        _check_binary("x", x)
        return _dense_layer(x, weight, alpha, v_th, b_th, beta)
    native = _use_native(x, impl)
    return SparseLIF.apply(x, weight, alpha, v_th, b_th, beta, input_active, native)


def readout(x: torch.Tensor, weight: torch.Tensor, alpha: float, mode: str = "max") -> tuple[torch.Tensor, torch.Tensor]:
    r"""The readout: the same neuron with an infinite threshold, :math:`V[t] = \alpha V[t-1] + x[t]W`.
    Returns ``(logits [B, N_out], v [T, B, N_out])`` with logits the max over time of V, or the sum
    (``mode="sum"``, SHD, E.4). It never spikes, so there is nothing sparse in it: plain autograd."""
    _check_tensor("x", x, 3)
    _check_tensor("weight", weight, 2)
    if weight.device != x.device or weight.dtype != x.dtype or weight.shape[0] != x.shape[2]:
        checks.fail("weight", f"{list(weight.shape)} {weight.dtype} on {weight.device}",
                    f"[N_in={x.shape[2]}, N_out] of {x.dtype} on {x.device}")
    alpha = checks.number_in("alpha", alpha, 0, 1, lo_open=True, hi_open=True)
    checks.choice("mode", mode, ["max", "sum"])
    T, B, _ = x.shape
    cur = (x.reshape(T * B, -1) @ weight).reshape(T, B, -1)
    v = torch.zeros_like(cur[0])
    vs = []
    for t in range(T):
        v = alpha * v + cur[t]
        vs.append(v)
    v = torch.stack(vs)
    logits = v.max(0).values if mode == "max" else v.sum(0)
    return logits, v


@dataclass
class NetworkOutput:
    logits: torch.Tensor
    spikes: list  # per hidden layer [T, B, N]
    v: list  # per hidden layer [T, B, N]
    v_out: torch.Tensor


def network(x: torch.Tensor, hidden: Sequence[torch.Tensor], readout_weight: torch.Tensor, alpha: float,
            alpha_out: float | None = None, v_th: float = 1.0, b_th: float = 0.2, beta: float = 100.0,
            backward: str = "sparse", mode: str = "max", impl: str | None = None) -> NetworkOutput:
    """A stack of :func:`lif_layer` and a :func:`readout` (E.3). In sparse mode each layer passes its
    active set to the next as ``input_active``, so every input gradient is written only where the
    layer below needs it (Appendix C)."""
    if not isinstance(hidden, (list, tuple)) or not hidden:
        checks.fail("hidden", hidden, "a non-empty list of [N_in, N_out] weights")
    spikes, vs = [], []
    h, active = x, None
    for w in hidden:
        s, v = lif_layer(h, w, alpha, v_th, b_th, beta, backward=backward, input_active=active, impl=impl)
        spikes.append(s)
        vs.append(v)
        active = active_mask(v, v_th, b_th) if backward == "sparse" else None
        h = s
    logits, v_out = readout(h, readout_weight, alpha if alpha_out is None else alpha_out, mode)
    return NetworkOutput(logits, spikes, vs, v_out)


# --- Appendix C walk-through, as data -----------------------------------------------------------


@dataclass(frozen=True)
class WalkStep:
    r"""One step of the Appendix C computation of :math:`\delta_j[t]` (paper indexing, with the input
    delay): :math:`\delta_j[t] = [g_j[t+1]] + \alpha^{n}\delta_j[t+n]`. ``source`` is ``t+1`` when that
    is an active time of j (else None); ``prev``/``power`` the step it decays from (None at the start);
    ``action`` is "compute", "compute and write" (t is a time of i) or "not required"."""

    t: int
    source: int | None
    prev: int | None
    power: int
    action: str
    value: float | None = None

    def expression(self) -> str:
        parts = []
        if self.source is not None:
            parts.append(f"dS_j[{self.source}]/dV_j[{self.source}]")
        if self.prev is not None:
            a = "alpha" if self.power == 1 else f"alpha^{self.power}"
            parts.append(f"{a} delta_j[{self.prev}]")
        return f"delta_j[{self.t}] = " + " + ".join(parts)


def appendix_c_walk(t_j: Sequence[int], t_i: Sequence[int], alpha: float | None = None,
                    g: dict | None = None) -> list[WalkStep]:
    r"""Appendix C as data: the steps at which :math:`\delta_j` is touched for a presynaptic neuron i
    active at ``t_i`` and a postsynaptic neuron j active at ``t_j`` (paper indexing, where
    :math:`\nabla S_i[t] = \sum_j W_{ij}\delta_j[t]` and :math:`\delta_j` changes beyond decay only at
    ``t = k - 1`` for ``k`` in ``t_j``). Steps run from the latest down; those below ``min(t_i)`` are
    listed as "not required" (the walk stops there). With ``alpha`` and ``g`` (``{k: dS_j[k]/dV_j[k]}``)
    each step also carries its value. ``appendix_c_walk([1, 3, 6, 8], [3, 5, 6])`` reproduces the
    printed example."""
    tj = sorted({checks.integer("t_j entry", k, lo=1) for k in t_j})
    ti = sorted({checks.integer("t_i entry", k, lo=0) for k in t_i})
    if not ti:
        checks.fail("t_i", t_i, "a non-empty list of times")
    if alpha is not None:
        alpha = checks.number_in("alpha", alpha, 0, 1, lo_open=True, hi_open=True)
    times = sorted({k - 1 for k in tj} | set(ti), reverse=True)
    # delta is zero before the first active time from the end: start at the latest t with a source
    first = max(k - 1 for k in tj) if tj else None
    steps: list[WalkStep] = []
    prev, prev_val = None, 0.0
    for t in times:
        if first is None or t > first:
            continue  # delta_j[t] = 0 here: nothing active after t
        src = t + 1 if (t + 1) in tj else None
        power = 0 if prev is None else prev - t
        val = None
        if alpha is not None and g is not None:
            val = (g[src] if src is not None else 0.0) + (alpha ** power * prev_val if prev is not None else 0.0)
        action = "compute and write" if t in ti else ("not required" if t < ti[0] else "compute")
        steps.append(WalkStep(t, src, prev, power, action, val))
        prev = t
        prev_val = val if val is not None else 0.0
    return steps


# --- memory accounting ------------------------------------------------------------------------


def saved_bytes(T: int, B: int, n_in: int, n_out: int, nnz: int, dtype_bytes: int = 4,
                with_request: bool = True) -> int:
    """Bytes the sparse layer keeps for the backward (weight excluded): packed x, packed request mask,
    the active rows (int32), surrogate values and CSR offsets."""
    nb = (n_in + 7) // 8
    return T * B * nb * (2 if with_request else 1) + nnz * (4 + dtype_bytes) + (n_out + 1) * 8
