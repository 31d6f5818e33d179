"""Common random numbers across the mask types of Appendix B (see :mod:`.theory` for the model).

:func:`simulate_paired` draws every mask kind from one uniform noise (:func:`coupled_masks`) with the
same weights, gates/spikes and u, so that the small differences between mask types are estimated
with paired standard errors (:func:`variance_difference`, :func:`relative_gap`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...sparsity.masks import select_k
from .theory import (
    _PAIRED_METHODS,
    INPUTS,
    KINDS,
    _check_k,
    _check_simulation,
    _check_kind,
    _check_n,
    _influence,
    _summarise,
)

__all__ = ["coupled_masks", "variance_difference", "relative_gap", "PairedSim", "simulate_paired"]


# ----------------------------------------------------------------------------------------------


def coupled_masks(noise: torch.Tensor, k: float, kinds=KINDS) -> dict[str, torch.Tensor]:
    """The masks of ``kinds`` from one iid uniform noise tensor [..., n_out, n_in] (bool, same shape):
    Bernoulli = entries > 1 - k/n_in; per-layer = the k·n_out largest entries of each matrix;
    fan-in = the k largest entries of each row. Each is an exact draw of its distribution
    (:func:`sample_mask`); together they overlap as much as possible (common random numbers)."""
    n_out, n_in = noise.shape[-2:]
    out = {}
    for kind in kinds:
        _check_kind(kind)
        _check_k(kind, n_in, k, n_rows=n_out)
        if kind == "bernoulli":
            out[kind] = noise > 1 - k / n_in
        elif kind == "fan_in":
            out[kind] = select_k(noise, int(k))
        else:
            flat = noise.reshape(*noise.shape[:-2], n_out * n_in)
            out[kind] = select_k(flat, int(round(k * n_out))).reshape(noise.shape)
    return out


def _pair_check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() != 1 or a.numel() < 2:
        raise ValueError(f"paired draws must be 1-D tensors of the same length >= 2, got {tuple(a.shape)}, "
                         f"{tuple(b.shape)}")


def _var_est(first: torch.Tensor, second: torch.Tensor | None) -> float:
    if second is None:
        return first.var(unbiased=True).item()
    return second.mean().item() - first.mean().item() ** 2 + first.var(unbiased=True).item() / first.numel()


def variance_difference(a: torch.Tensor, b: torch.Tensor, a2: torch.Tensor | None = None,
                        b2: torch.Tensor | None = None) -> tuple[float, float]:
    """Var_a - Var_b from *paired* draws a[s], b[s] [S] (the same draw s of everything but the
    mask), and its standard error sd(ψ_a - ψ_b)/√S, ψ the per-draw influence of each variance
    estimate (delta method). Common random numbers make ψ_a and ψ_b strongly correlated, hence the
    small SE. ``a2``, ``b2``: conditional second moments (see :func:`_summarise`), else plain draws."""
    _pair_check(a, b)
    a, b = a.to(torch.float64), b.to(torch.float64)
    d = _var_est(a, a2) - _var_est(b, b2)
    psi = _influence(a, a2) - _influence(b, b2)
    return d, math.sqrt(psi.var(unbiased=True).item() / a.numel())


def relative_gap(base: torch.Tensor, other: torch.Tensor, base2: torch.Tensor | None = None,
                 other2: torch.Tensor | None = None) -> tuple[float, float]:
    """1 - Var_other/Var_base from paired draws [S] and its delta-method standard error, with the
    influence (Var_other ψ_base - Var_base ψ_other)/Var_base² (ψ as in :func:`variance_difference`)."""
    _pair_check(base, other)
    base, other = base.to(torch.float64), other.to(torch.float64)
    vb, vo = _var_est(base, base2), _var_est(other, other2)
    psi = (vo * _influence(base, base2) - vb * _influence(other, other2)) / (vb * vb)
    return 1 - vo / vb, math.sqrt(psi.var(unbiased=True).item() / base.numel())


@dataclass(frozen=True)
class PairedSim:
    """Result of :func:`simulate_paired`: one :class:`SimResult` per mask kind (``per_kind``), all
    from the same draws of W, inputs (and u) and one mask noise. ``diff[(a, b)]`` = (Var_a - Var_b,
    se) and ``gap[(a, b)]`` = (1 - Var_b/Var_a, se) for every ordered pair of kinds (paired SEs)."""

    n: int
    k: float
    inputs: str
    method: str
    samples: int
    per_kind: dict
    diff: dict
    gap: dict


def simulate_paired(
    n: int,
    k: float,
    samples: int,
    seed: int = 0,
    rate: float = 0.5,
    inputs: str = "sphere",
    gates: torch.Tensor | None = None,
    kinds=KINDS,
    method: str = "direct",
    chunk: int | None = None,
    confidence: float = 0.95,
    dtype: torch.dtype = torch.float32,
) -> PairedSim:
    """Monte Carlo of all mask kinds at once with common random numbers.

    Per draw: one uniform noise [n, n] gives every mask (:func:`coupled_masks`); one input vector
    shared by all kinds, either ``inputs="sphere"``: ξ ∘ u (the paper's gated continuous layer,
    u = g/‖g‖ uniform on the sphere, ξ_j ~ Ber(rate) or a row of ``gates``), scaled by
    c = 1/(k r) so that E‖z‖² = 1, or ``inputs="spikes"``: the binary spike vector x itself
    (x_j ~ Ber(rate) or a row of ``gates``), Q = ‖z‖²/n with z = (k r)^{-1/2} (W ∘ I) x. Then

    * ``method="direct"`` (default): one W [n, n], W_ij ~ N(0, 1), shared by all kinds, z = (W ∘ I) v;
    * ``method="reduced"``: Prop. B.2, ‖z‖² = Σ_i g_i² Σ_j I_ij v_j² with one g [n] shared;
    * ``method="conditional"``: W integrated out exactly (conditional Monte Carlo): given the
      draw, z_i ~ N(0, A_i) independently, A_i = Σ_j I_ij v_j² (Prop. B.2), so
      E[‖z‖² | draw] = Σ A_i and E[‖z‖⁴ | draw] = (Σ A_i)² + 2 Σ A_i²; only masks, gates/spikes
      and u are drawn. This removes the weight noise, which dominates the spread of the
      differences between mask types (the ordering is a property of the masks).

    With ``gates`` [S_g, n], rows are drawn uniformly and the empirical (r, ρ) of
    :func:`gate_moments` replace ``rate``. Same seed -> same numbers. Compare ``per_kind`` with
    :func:`output_norm_variance` (sphere) or :func:`spiking_output_norm_variance` (spikes).
    """
    kinds = tuple(kinds)
    if not kinds:
        raise ValueError("kinds is empty; allowed values: a non-empty subset of " + ", ".join(map(repr, KINDS)))
    for kind in kinds:
        _check_kind(kind)
    _check_n(n)
    for kind in kinds:
        _check_k(kind, n, k)
    if inputs not in INPUTS:
        raise ValueError(f"inputs={inputs!r} is unknown; allowed values: {', '.join(map(repr, INPUTS))}")
    rate, pair_rate, g_tab = _check_simulation(n, samples, seed, confidence, chunk, method, _PAIRED_METHODS, dtype,
                                               rate, gates)
    gen = torch.Generator().manual_seed(seed)
    scale = 1.0 / (k * rate) / (n if inputs == "spikes" else 1)
    if chunk is None:
        chunk = max(1, min(samples, (1 << 20) // (n * n)))
    out = torch.empty(len(kinds), samples, dtype=torch.float64)
    out2 = torch.empty(len(kinds), samples, dtype=torch.float64) if method == "conditional" else None
    done = 0
    while done < samples:
        s = min(chunk, samples - done)
        masks = coupled_masks(torch.rand(s, n, n, generator=gen, dtype=torch.float64), k, kinds)
        if g_tab is None:
            v = (torch.rand(s, n, generator=gen, dtype=torch.float64) < rate).to(dtype)
        else:
            v = g_tab[torch.randint(0, g_tab.shape[0], (s,), generator=gen)]
        if inputs == "sphere":
            u = torch.randn(s, n, generator=gen, dtype=dtype)
            v = v * (u / u.norm(dim=1, keepdim=True))
        if method == "direct":
            w = torch.randn(s, n, n, generator=gen, dtype=dtype)
            for i, kind in enumerate(kinds):
                z = torch.bmm(w * masks[kind], v.unsqueeze(-1)).squeeze(-1)
                out[i, done : done + s] = scale * z.to(torch.float64).square().sum(1)
        else:
            v2 = v.square().unsqueeze(-1)
            g2 = torch.randn(s, n, generator=gen, dtype=torch.float64).square() if method == "reduced" else None
            for i, kind in enumerate(kinds):
                a = scale * torch.bmm(masks[kind].to(dtype), v2).squeeze(-1).to(torch.float64)  # A_i [s, n]
                if g2 is None:
                    s1 = a.sum(1)
                    out[i, done : done + s] = s1
                    out2[i, done : done + s] = s1 * s1 + 2 * a.square().sum(1)
                else:
                    out[i, done : done + s] = (g2 * a).sum(1)
        done += s
    sec = (lambda i: None) if out2 is None else (lambda i: out2[i])
    per_kind = {kind: _summarise(out[i], rate, pair_rate, confidence, sec(i)) for i, kind in enumerate(kinds)}
    diff, gap = {}, {}
    for i, a in enumerate(kinds):
        for j, b in enumerate(kinds):
            if i != j:
                diff[(a, b)] = variance_difference(out[i], out[j], sec(i), sec(j))
                gap[(a, b)] = relative_gap(out[i], out[j], sec(i), sec(j))
    return PairedSim(n=n, k=k, inputs=inputs, method=method, samples=samples, per_kind=per_kind, diff=diff, gap=gap)


