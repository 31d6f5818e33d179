"""Condensed linear layer for constant fan-in sparsity (Lasby et al. 2024, Appendix F).

A layer whose every kept neuron has the same fan-in k is stored as ``values`` [n_kept, k] and
column ``indices`` [n_kept, k]; its product is a gather-multiply-reduce. The fast CPU path is the
C/OpenMP kernel ``snnlab/kernels/condensed.c`` built by :mod:`snnlab.kernels.build`; every tensor
is checked (device, dtype, contiguity, shape) before it reaches C, so a layer on ``meta`` or CUDA
given a CPU input raises ``ValueError`` instead of crashing.
"""

from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..kernels import build

__all__ = ["condensed_linear_reference", "CondensedLinear", "native_kernel_available"]

_P, _I64, _I32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_SIGNATURES = {
    **{f"snnlab_condensed_b1_{it}": ([_P, _P, _P, _P, _P, _I64, _I64, _I32], None) for it in ("i64", "i32")},
    **{f"snnlab_condensed_bt_{it}": ([_P, _I64, _P, _P, _P, _P, _I64, _I64, _I64, _I32], None) for it in ("i64", "i32")},
}


def _native_lib():
    return build.load("condensed", _SIGNATURES)


def native_kernel_available() -> bool:
    """Whether the compiled C/OpenMP condensed kernel could be built and loaded (compiles once per
    machine into :func:`snnlab.paths.kernel_dir`; ``SNNLAB_NO_NATIVE=1`` disables it)."""
    return _native_lib() is not None



def condensed_linear_reference(
    x: torch.Tensor, values: torch.Tensor, indices: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Reference condensed product (Appendix F, Eq. 30-31): y[..., r] = Σ_α values[r, α] ·
    x[..., indices[r, α]] + bias[r]. x [..., n_in], values/indices [n_rows, k] -> y [..., n_rows]."""
    y = (x[..., indices.long()] * values).sum(-1)
    return y if bias is None else y + bias


_BACKENDS = ("auto", "native", "embedding_bag", "gather", "reference")


class CondensedLinear(nn.Module):
    r"""Linear layer with constant fan-in stored condensed (Appendix F).

    Storage: ``values`` (Parameter) [n_kept, k], ``indices`` (buffer, int32 by default or int64)
    [n_kept, k] column indices into the input, ``bias`` (Parameter or None) [n_kept],
    ``kept_rows`` (int64 buffer) [n_kept]: which of the dense layer's ``out_features`` neurons the
    rows are; ``removed_bias`` [out_features - n_kept]: the dense bias of ablated neurons (zeros
    when there is no bias), used by :meth:`scatter_back`.

    ``forward(x)``: x [..., in_features] -> y [..., n_kept],
    y[..., r] = Σ_α values[r, α] x[..., indices[r, α]] + bias[r]; outputs of ablated (all-zero)
    neurons are *dropped*. ``scatter_back(y)`` -> [..., out_features] puts them back (their value is
    their bias, i.e. exactly what the dense masked layer outputs), so
    ``layer.scatter_back(layer(x)) == F.linear(x, W * mask, b)``.

    Backends (``backend``): ``"native"``: a C/OpenMP kernel compiled on first use (float32, CPU,
    no autograd; uses ``torch.get_num_threads()`` threads); ``"embedding_bag"``:
    ``F.embedding_bag(indices, xᵀ, per_sample_weights=values, mode="sum")``, one fused
    gather-multiply-reduce with autograd; ``"gather"``: index_select + mul + sum (autograd);
    ``"reference"``: :func:`condensed_linear_reference`. ``"auto"`` (default) uses the native
    kernel when it applies (float32 CPU input and no gradient needed) and otherwise
    ``"gather"`` for a single input row or ``"embedding_bag"`` for more.

    The default int32 indices (a deliberate choice over int64) cut the bytes read per weight from
    12 to 8 and let the kernel use 16-wide AVX-512 gathers (AVX2 gathers, 8 wide, where AVX-512 is
    absent; a scalar loop without either). The timings, per machine, are in
    ``benchmarks/results/condensed_linear_cpu*.json``. Pass
    ``index_dtype=torch.int64`` for int64. The native kernel trusts ``indices`` (validated at
    construction and on ``load_state_dict``): do not write out-of-range values into it in place.

    >>> lin = nn.Linear(64, 16)
    >>> from snnlab.sparsity.masks import constant_fan_in_mask
    >>> mask = constant_fan_in_mask(16, 64, 8, generator=0)
    >>> mask[3] = False  # neuron 3 ablated
    >>> layer = CondensedLinear.from_dense(lin, mask)
    >>> x = torch.randn(2, 5, 64)
    >>> layer(x).shape, layer.scatter_back(layer(x)).shape
    (torch.Size([2, 5, 15]), torch.Size([2, 5, 16]))
    >>> torch.allclose(layer.scatter_back(layer(x)), F.linear(x, lin.weight * mask, lin.bias), atol=1e-5)
    True
    """

    def __init__(
        self,
        values: torch.Tensor,
        indices: torch.Tensor,
        in_features: int,
        bias: torch.Tensor | None = None,
        kept_rows: torch.Tensor | None = None,
        out_features: int | None = None,
        removed_bias: torch.Tensor | None = None,
        index_dtype: torch.dtype = torch.int32,
        backend: str = "auto",
    ):
        super().__init__()
        if backend not in _BACKENDS:
            raise ValueError(f"backend={backend!r} is unknown; allowed values: {', '.join(map(repr, _BACKENDS))}")
        if index_dtype not in (torch.int32, torch.int64):
            raise ValueError(f"index_dtype={index_dtype!r} is invalid; allowed values: torch.int32, torch.int64")
        checks.int_at_least("in_features", in_features, 1)
        if values.dim() != 2 or indices.shape != values.shape:
            raise ValueError(f"values {tuple(values.shape)} and indices {tuple(indices.shape)} must both be [n_kept, k]")
        n_kept, k = values.shape
        if k < 1 or n_kept < 1:
            raise ValueError(f"values shape {tuple(values.shape)} is invalid; need n_kept >= 1 and k >= 1")
        if k > in_features:
            raise ValueError(f"fan-in k={k} exceeds in_features={in_features}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= in_features):
            raise ValueError(f"indices must lie in [0, in_features={in_features}), got range "
                             f"[{int(indices.min())}, {int(indices.max())}]")
        if out_features is None:
            out_features = n_kept
        if kept_rows is None:
            if out_features != n_kept:
                raise ValueError("kept_rows is required when out_features != n_kept")
            kept_rows = torch.arange(n_kept)
        kept_rows = kept_rows.to(torch.int64).reshape(-1)
        if kept_rows.numel() != n_kept or len(set(kept_rows.tolist())) != n_kept or \
                int(kept_rows.min()) < 0 or int(kept_rows.max()) >= out_features:
            raise ValueError(f"kept_rows must be {n_kept} distinct indices in [0, out_features={out_features})")
        n_removed = out_features - n_kept
        if removed_bias is None:
            removed_bias = values.new_zeros(n_removed)
        if removed_bias.shape != (n_removed,):
            raise ValueError(f"removed_bias must have shape [{n_removed}], got {tuple(removed_bias.shape)}")
        if bias is not None and bias.shape != (n_kept,):
            raise ValueError(f"bias must have shape [{n_kept}], got {tuple(bias.shape)}")
        self.in_features = in_features
        self.out_features = out_features
        self.backend = backend
        self.values = nn.Parameter(values.detach().clone().contiguous())
        if bias is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(bias.detach().clone().contiguous())
        self.register_buffer("indices", indices.detach().to(index_dtype).contiguous())
        self.register_buffer("kept_rows", kept_rows.clone())
        self.register_buffer("removed_bias", removed_bias.detach().clone().to(values.dtype))
        removed = torch.ones(out_features, dtype=torch.bool)
        removed[kept_rows] = False
        self.register_buffer("removed_rows", removed.nonzero().reshape(-1), persistent=False)
        self._identity_rows = n_kept == out_features and torch.equal(kept_rows, torch.arange(n_kept))
        self._fns = None  # native kernels, resolved on first use
        self.register_load_state_dict_post_hook(CondensedLinear._validate_after_load)

    @staticmethod
    def _validate_after_load(module: "CondensedLinear", incompatible_keys) -> None:
        idx = module.indices
        if idx.shape != module.values.shape or int(idx.min()) < 0 or int(idx.max()) >= module.in_features:
            raise ValueError("loaded indices are inconsistent with values / in_features")
        removed = torch.ones(module.out_features, dtype=torch.bool, device=module.kept_rows.device)
        removed[module.kept_rows] = False
        module.removed_rows = removed.nonzero().reshape(-1)
        module._fns = None
        module._identity_rows = module.n_kept == module.out_features and torch.equal(
            module.kept_rows.cpu(), torch.arange(module.n_kept))

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dense(
        cls,
        linear: nn.Linear,
        mask: torch.Tensor,
        index_dtype: torch.dtype = torch.int32,
        backend: str = "auto",
    ) -> "CondensedLinear":
        """Condense ``linear`` (weight [out, in]) under ``mask`` [out, in] (bool or 0/1).

        The mask must have the same number k >= 1 of non-zeros in every non-empty row; empty rows
        are ablated neurons (dropped from the output, see :meth:`scatter_back`). Raises ValueError
        naming the offending rows and their counts otherwise. Weights off the mask are ignored
        (the layer computes F.linear(x, weight * mask, bias)); column indices are sorted per row.
        """
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        w = linear.weight.detach()
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(w.shape):
            raise ValueError(f"mask shape {tuple(getattr(mask, 'shape', ()))} must equal the weight shape "
                             f"{tuple(w.shape)} [out_features, in_features]")
        m = (mask != 0).to(w.device)
        counts = m.sum(1)
        kept = (counts > 0).nonzero().reshape(-1)
        if kept.numel() == 0:
            raise ValueError("mask has no non-zero row: every neuron is ablated")
        kc = counts[kept]
        values_, freq = torch.unique(kc, return_counts=True)
        if values_.numel() > 1:
            k_mode = int(values_[freq.argmax()])
            bad = kept[kc != k_mode]
            shown = ", ".join(f"row {int(r)}: {int(counts[r])}" for r in bad[:10])
            more = f" (+{bad.numel() - 10} more)" if bad.numel() > 10 else ""
            raise ValueError(
                f"mask is not constant fan-in: most non-empty rows have {k_mode} non-zeros but "
                f"{bad.numel()} differ ({shown}{more}); all-zero rows are allowed (ablated neurons)"
            )
        k = int(values_[0])
        indices = m[kept].nonzero()[:, 1].reshape(kept.numel(), k)
        values = torch.gather(w[kept], 1, indices)
        removed = (counts == 0).nonzero().reshape(-1)
        bias = removed_bias = None
        if linear.bias is not None:
            b = linear.bias.detach()
            bias, removed_bias = b[kept], b[removed]
        return cls(
            values,
            indices,
            in_features=w.shape[1],
            bias=bias,
            kept_rows=kept,
            out_features=w.shape[0],
            removed_bias=removed_bias,
            index_dtype=index_dtype,
            backend=backend,
        )

    # -- properties --------------------------------------------------------------------------

    @property
    def fan_in(self) -> int:
        return self.values.shape[1]

    @property
    def n_kept(self) -> int:
        return self.values.shape[0]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, n_kept={self.n_kept}, "
                f"fan_in={self.fan_in}, bias={self.bias is not None}, index_dtype={self.indices.dtype}, "
                f"backend={self.backend!r}")

    def nbytes(self) -> int:
        """Bytes of what the forward pass reads: values + indices (+ bias)."""
        n = self.values.numel() * self.values.element_size() + self.indices.numel() * self.indices.element_size()
        if self.bias is not None:
            n += self.bias.numel() * self.bias.element_size()
        return n

    def to_dense_weight(self) -> torch.Tensor:
        """Dense weight [out_features, in_features] (zeros off the mask and in ablated rows)."""
        w = self.values.new_zeros(self.out_features, self.in_features)
        w[self.kept_rows[:, None], self.indices.long()] = self.values.detach()
        return w

    def dense_bias(self) -> torch.Tensor | None:
        """Dense bias [out_features], or None without bias."""
        if self.bias is None:
            return None
        b = self.values.new_empty(self.out_features)
        b[self.kept_rows] = self.bias.detach()
        b[self.removed_rows] = self.removed_bias
        return b

    def to_linear(self) -> nn.Linear:
        """The equivalent dense nn.Linear (weight * mask, full bias)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        dtype=self.values.dtype, device=self.values.device)
        with torch.no_grad():
            lin.weight.copy_(self.to_dense_weight())
            if self.bias is not None:
                lin.bias.copy_(self.dense_bias())
        return lin

    def scatter_back(self, y: torch.Tensor) -> torch.Tensor:
        """[..., n_kept] -> [..., out_features]: kept neurons at their dense positions, ablated ones
        set to their (constant) bias, zero without bias. Differentiable w.r.t. y."""
        if y.shape[-1] != self.n_kept:
            raise ValueError(f"y has last dim {y.shape[-1]}, expected n_kept={self.n_kept}")
        if self._identity_rows:
            return y
        out = y.new_empty(*y.shape[:-1], self.out_features)
        out[..., self.removed_rows] = self.removed_bias.to(y.dtype)
        return out.index_copy(-1, self.kept_rows, y)

    # -- forward -----------------------------------------------------------------------------

    def _native_fns(self):
        """(batch-1 kernel, batched kernel, index dtype) for this layer's index dtype, or None."""
        lib = _native_lib()
        if lib is None:
            return None
        dt = self.indices.dtype
        it = "i32" if dt == torch.int32 else "i64"
        return getattr(lib, f"snnlab_condensed_b1_{it}"), getattr(lib, f"snnlab_condensed_bt_{it}"), dt

    def _forward_native(self, x2: torch.Tensor, fns, values, indices, bias) -> torch.Tensor:
        """x2 [N, in] float32 CPU -> [N, n_kept] through the C kernel (no autograd)."""
        n_rows, k = values.shape
        build.check_args(
            "CondensedLinear (native)",
            x=(x2.contiguous() if x2.dim() == 2 else x2, (torch.float32,), (None, self.in_features)),
            values=(values, (torch.float32,), (n_rows, k)),
            indices=(indices, (fns[2],), (n_rows, k)),
            bias=(bias, (torch.float32,), (n_rows,)),
        )
        N = x2.shape[0]
        y = torch.empty(N, n_rows, dtype=torch.float32)
        if N == 0:
            return y
        bias_ptr = None if bias is None else bias.data_ptr()
        if N == 1:
            xc = x2 if x2.is_contiguous() else x2.contiguous()
            fns[0](xc.data_ptr(), indices.data_ptr(), values.data_ptr(), bias_ptr, y.data_ptr(), n_rows, k,
                   torch.get_num_threads())
        else:
            ld = 1 << (N - 1).bit_length() if N <= 16 else -(-N // 16) * 16
            xt = x2.new_empty(self.in_features, ld)
            xt[:, :N].copy_(x2.t())
            if ld > N:
                xt[:, N:].zero_()
            fns[1](xt.data_ptr(), ld, indices.data_ptr(), values.data_ptr(), bias_ptr, y.data_ptr(), n_rows, k, N,
                   torch.get_num_threads())
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in_features] -> [..., n_kept] (see the class docstring)."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"input last dim {x.shape[-1]} != in_features={self.in_features}")
        params = self._parameters  # direct dict access: nn.Module.__getattr__ costs ~0.5 us a lookup
        values, bias, indices = params["values"], params["bias"], self._buffers["indices"]
        backend = self.backend
        if backend == "reference":
            return condensed_linear_reference(x, values, indices, bias)
        n_rows, k = values.shape
        if backend in ("auto", "native"):
            native = (
                x.dtype == torch.float32
                and values.dtype == torch.float32
                and x.is_cpu
                and values.is_contiguous()
                and indices.is_contiguous()
                and indices.dtype in (torch.int32, torch.int64)
                and indices.shape == values.shape
                and (bias is None or (bias.dtype == torch.float32 and bias.is_contiguous()))
                and not (
                    torch.is_grad_enabled()
                    and (x.requires_grad or values.requires_grad or (bias is not None and bias.requires_grad))
                )
            )
            fns = self._fns
            if native and (fns is None or fns[2] != indices.dtype):
                fns = self._fns = self._native_fns()
            if native and fns is not None:
                if x.dim() == 2:
                    return self._forward_native(x, fns, values, indices, bias)
                return self._forward_native(x.reshape(-1, self.in_features), fns, values, indices, bias).reshape(
                    *x.shape[:-1], n_rows)
            if backend == "native":
                raise RuntimeError(
                    "backend='native' needs float32 CPU input, no autograd and a built kernel "
                    f"(native_kernel_available()={native_kernel_available()})"
                )
        x2 = x.reshape(-1, self.in_features)
        if backend == "gather" or (backend == "auto" and x2.shape[0] == 1):
            g = x2.index_select(1, indices.reshape(-1)).view(x2.shape[0], n_rows, k)
            y = (g * values).sum(-1)
        else:
            y = F.embedding_bag(indices, x2.t().contiguous(), per_sample_weights=values, mode="sum").t()
        if bias is not None:
            y = y + bias
        return y.reshape(*x.shape[:-1], n_rows)
