r"""Output-norm variance of sparse layers, constant fan-in masks and condensed linear layers.

Reproduces Appendices A, B, F and I of Lasby et al., *Dynamic Sparse Training with Structured
Sparsity* (SRigL, ICLR 2024). Two readings of Appendix B's layer:

* the paper's, a **gated continuous layer**: a continuous input direction u (uniform on the
  sphere) multiplied by binary gates ξ (ReLU on/off in the paper; Ber(r) gates, or gates taken
  from recorded LIF spikes, here). u stays continuous, so this is *not* a spiking input;
* the **spiking layer** (:func:`spiking_output_norm_variance`, ``inputs="spikes"``): binary input
  spikes x_j ∈ {0, 1}, no u (section "Spiking inputs" below).

Model (Appendix B, Definition B.1), all shapes ``[n]`` / ``[n, n]``::

    z = √c (W ∘ I)(ξ ∘ u),   W_ij ~ N(0, 1) iid,   u uniform on the unit sphere S^{n-1},
    ξ_j ∈ {0, 1} gates with E[ξ_j] = r,   I ∈ {0, 1}^{n×n} a random mask with k ones per row
    on average,   c = 1 / (k r)   (the paper's r = 1/2 gives c = 2/k: z = √(2/k)(W ∘ I)(ξ ∘ u),
    Eq. 4, and ‖z‖² = c Σ ..., Eq. 12).

Three mask distributions (``kind``):

* ``"bernoulli"``: I_ij ~ Ber(k/n) independently.
* ``"per_layer"``: exactly k·n ones placed uniformly among the n² entries ("constant per layer").
* ``"fan_in"``: exactly k ones per row, the k columns uniform, rows independent ("constant fan-in").

**Derivation (general gate moments).** Given I, ξ and u, the entries of z are independent
Gaussians, z_i = g_i (c Σ_j I_ij ξ_j u_j²)^{1/2} with g_i iid N(0,1) (Prop. B.2), so

    ‖z‖² = c Σ_{i,j} g_i² I_ij ξ_j u_j²,       ‖z‖⁴ = c² Σ_{i,j,i',j'} g_i² g_{i'}² I_ij I_{i'j'} ξ_j ξ_{j'} u_j² u_{j'}².

With E[g_i² g_{i'}²] = 3 (i = i') or 1, E[u_j⁴] = 3/(n(n+2)), E[u_j² u_{j'}²] = 1/(n(n+2)) (j ≠ j'),
E[ξ_j] = r, E[ξ_j ξ_{j'}] = ρ (j ≠ j'; ρ = r² for iid Ber(r) gates), E[I_ij] = p = k/n and the
pair moments m_row = E[I_ij I_{ij'}], m_col = E[I_ij I_{i'j}], m_oth = E[I_ij I_{i'j'}]
(i ≠ i', j ≠ j'), the four cases of Tables 6-8 give

    case          terms          g    I       ξ    u
    i=i', j=j'    n²             3    p       r    3/(n(n+2))
    i≠i', j=j'    n²(n-1)        1    m_col   r    3/(n(n+2))
    i=i', j≠j'    n²(n-1)        3    m_row   ρ    1/(n(n+2))
    i≠i', j≠j'    n²(n-1)²       1    m_oth   ρ    1/(n(n+2))

    E‖z‖² = c n² p r / n = c k r = 1,
    E‖z‖⁴ = c² n/(n+2) · [9 p r + 3(n-1) r m_col + 3(n-1) ρ m_row + (n-1)² ρ m_oth].

The gates enter only through r = mean_j E[ξ_j] and ρ = mean_{j≠j'} E[ξ_j ξ_j'] because the mask
moments do not depend on the positions, so the formula holds for any gate law, e.g. recorded
spikes (:func:`gate_moments`). (:func:`variance_from_pair_moments` evaluates exactly this.) With s = ρ/r² (s = 1 for iid gates),
m = p² for Bernoulli, m = p² C_{n,k} (all three) for per-layer with C_{n,k} = (n - 1/k)/(n - 1/n)
(Eq. 22-23), and m_row = p (k-1)/(n-1), m_col = m_oth = p² for fan-in (Eq. 26), this simplifies to

    Var_Bernoulli = [9n/(k r) + 3(n-1)/r + s(n-1)(n+2) - n(n+2)] / (n(n+2))
    Var_per-layer = [9n/(k r) + C_{n,k}(3(n-1)/r + s(n-1)(n+2)) - n(n+2)] / (n(n+2))
    Var_fan-in    = Var_Bernoulli - 3 s (n-k) / (k n (n+2))

At r = 1/2, s = 1 these are Eq. (14), (21), (25) with **18 n/k**:
(5n - 8 + 18 n/k)/(n(n+2)), ((n² + 7n - 8) C_{n,k} + 18 n/k - n² - 2n)/(n(n+2)) and
(5n - 8 + 18 n/k)/(n(n+2)) - 3(n-k)/(k n(n+2)).

**Erratum.** Appendix A (Eq. 1-3), and Appendix B's Eq. (21), print ``18 k/n``; the case tables
(and Eq. 14, 25) give ``18 n/k``. :func:`output_norm_variance_as_printed` returns the printed
formulas so that the simulation (:func:`simulate_output_norm_variance`) can decide.

**Spiking inputs (no u).** A spiking layer's input is the binary vector x ∈ {0, 1}^n itself,
x_j ~ Ber(r) iid (or any law with E[x_j] = r, E[x_j x_j'] = ρ), and its weighted input is

    z = (k r)^{-1/2} (W ∘ I) x,     Q = ‖z‖² / n,

normalised so that every neuron's input has E[z_i²] = 1, hence E[Q] = 1 (the paper's ratio
‖z^{ℓ+1}‖²/‖z^ℓ‖² has no spiking analogue with a fixed denominator: ‖x‖² = 0 with probability
(1-r)^n; Q divides by the *expected* input norm instead). Given (I, x), z_i are independent
N(0, Σ_j I_ij x_j / (k r)) (Prop. B.2 with ξ ∘ u replaced by x), so Q is the case table above
with the sphere column E[u_j² u_j'²] replaced by the constant 1/n² (u_j² ≡ 1/n):

    E[Q²] = c² [3 p r + (n-1) r m_col + 3(n-1) ρ m_row + (n-1)² ρ m_oth],   c = 1/(k r).

With s = ρ/r² and A = (n-1)/(n² r) + s (n-1)(n+2)/n² this gives

    Var_Bernoulli = 3/(n k r) + A - 1          (s = 1: 3/(n k r) + (n-1)/(n² r) + (n-2)/n²)
    Var_per-layer = 3/(n k r) + C_{n,k} A - 1
    Var_fan-in    = Var_Bernoulli - 3 s (n-k)/(k n²)

(dense, k = n, r = 1: Q = Σ g_i²/n, Var = 2/n). Constant fan-in is always below Bernoulli, but
below per-layer only when Var_per-layer - Var_fan-in = (n-k)/(k n²) [3s - (1/r + s(n+2))/(n+1)]
> 0, i.e. when r s (2n + 1) > 1: at firing rates r < 1/(s(2n+1)) constant per-layer is lower
(:func:`fan_in_per_layer_crossover`). The same comparison in the gated continuous layer gives
r s (2n+1) > 3.

**Common random numbers.** :func:`snnlab.studies.srigl.crn.simulate_paired` draws all three masks from one uniform
noise matrix (Bernoulli: the entries above 1 - k/n; per-layer: the k·n largest; fan-in: the k
largest of each row; each marginal is exact) with the same W, inputs (and u), so the differences
between mask types are estimated with a far smaller standard error than independent runs give
(:mod:`snnlab.studies.srigl.crn`).

The constant fan-in masks are :mod:`snnlab.sparsity.masks`, the condensed layer
:mod:`snnlab.sparsity.condensed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from statistics import NormalDist
from typing import NamedTuple

import torch

from ... import checks
from ...sparsity.masks import GeneratorLike, as_generator, select_k

__all__ = [
    "KINDS",
    "c_nk",
    "c_nk_approx",
    "PairMoments",
    "pair_moments",
    "variance_from_pair_moments",
    "output_norm_mean",
    "output_norm_variance",
    "output_norm_variance_as_printed",
    "gate_moments",
    "sample_mask",
    "SimResult",
    "simulate_output_norm_variance",
    "INPUTS",
    "spiking_output_norm_variance",
    "fan_in_per_layer_crossover",
]

KINDS = ("bernoulli", "per_layer", "fan_in")
#: input models of :func:`simulate_paired`: the paper's gated continuous layer ξ ∘ u, binary spikes x
INPUTS = ("sphere", "spikes")



# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is unknown; allowed values: {', '.join(map(repr, KINDS))}")
    return kind


def _finite_real(x) -> bool:
    return checks.is_real(x) and math.isfinite(float(x))


def _check_n(n, name: str = "n") -> int:
    if not checks.is_int(n) or n < 2:
        raise ValueError(f"{name}={n!r} is invalid; allowed values: integers >= 2")
    return n


def _check_k(kind: str, n: int, k, n_rows: int | None = None) -> None:
    """k: fan-in (ones per row on average). 1 <= k <= n; integer for 'fan_in'; k*n_rows integer
    for 'per_layer' (n_rows defaults to n)."""
    if not _finite_real(k):
        raise ValueError(f"k={k!r} is invalid; allowed values: numbers with 1 <= k <= n={n}")
    if k < 1 or k > n:
        raise ValueError(f"k={k!r} is out of range; allowed values: 1 <= k <= n={n}")
    if kind == "fan_in" and k != int(k):
        raise ValueError(f"k={k!r} must be an integer for kind='fan_in' (exactly k ones per row)")
    if kind == "per_layer":
        rows = n if n_rows is None else n_rows
        if abs(k * rows - round(k * rows)) > 1e-9:
            raise ValueError(
                f"k={k!r} is invalid for kind='per_layer': k*n_rows={k * rows!r} must be an integer "
                "(exactly k*n_rows ones in the layer)"
            )


def _check_rate(rate) -> float:
    if not _finite_real(rate) or not (0 < rate <= 1):
        raise ValueError(f"rate={rate!r} is out of range; allowed values: 0 < rate <= 1")
    return float(rate)


def _check_pair_rate(pair_rate, rate: float) -> float:
    if pair_rate is None:
        return rate * rate
    if not _finite_real(pair_rate) or not (0 <= pair_rate <= rate):
        raise ValueError(
            f"pair_rate={pair_rate!r} is out of range; allowed values: 0 <= pair_rate <= rate={rate} "
            "(pair_rate = E[xi_j xi_j'] for j != j'; None means rate**2, i.e. independent gates)"
        )
    return float(pair_rate)


def _fr(x) -> Fraction:
    return Fraction(int(x)) if checks.is_int(x) else Fraction(float(x))


# ----------------------------------------------------------------------------------------------
# closed forms
# ----------------------------------------------------------------------------------------------


def c_nk(n: int, k: float) -> float:
    """C_{n,k} = (n - 1/k)/(n - 1/n) (Eq. 23): E[I_ij I_i'j'] = (k/n)² C_{n,k} off the diagonal
    for the constant-per-layer mask (= (k/n)(nk-1)/(n²-1))."""
    _check_n(n)
    _check_k("bernoulli", n, k)
    n_, k_ = _fr(n), _fr(k)
    return float((n_ - 1 / k_) / (n_ - 1 / n_))


def c_nk_approx(n: int, k: float) -> float:
    """Large-n approximation of :func:`c_nk` quoted in Appendix A: 1 - (n-k)/(n² k)."""
    _check_n(n)
    _check_k("bernoulli", n, k)
    return 1.0 - (n - k) / (n * n * k)


class PairMoments(NamedTuple):
    """First and second moments of a random mask I (shape [n, n]).

    p = E[I_ij]; same_row = E[I_ij I_ij'] (j != j'); same_col = E[I_ij I_i'j] (i != i');
    other = E[I_ij I_i'j'] (i != i', j != j').
    """

    p: float
    same_row: float
    same_col: float
    other: float


def _pair_moments_fr(kind: str, n: int, k) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    n_, k_ = _fr(n), _fr(k)
    p = k_ / n_
    if kind == "bernoulli":
        return p, p * p, p * p, p * p
    if kind == "per_layer":
        m = p * (n_ * k_ - 1) / (n_ * n_ - 1)  # = p² C_{n,k}
        return p, m, m, m
    return p, p * (k_ - 1) / (n_ - 1), p * p, p * p  # fan_in


def pair_moments(kind: str, n: int, k: float) -> PairMoments:
    """Mask moments of Eq. (22)-(23) (per-layer), Eq. (26) (fan-in) and Table 6 (Bernoulli)."""
    _check_kind(kind)
    _check_n(n)
    _check_k(kind, n, k)
    return PairMoments(*(float(v) for v in _pair_moments_fr(kind, n, k)))


def _e4_fr(n, k, rate, pair_rate, p, same_row, same_col, other) -> Fraction:
    n_, k_, r, rho = _fr(n), _fr(k), _fr(rate), _fr(pair_rate)
    c = 1 / (k_ * r)
    bracket = 9 * p * r + 3 * (n_ - 1) * r * same_col + 3 * (n_ - 1) * rho * same_row + (n_ - 1) ** 2 * rho * other
    return c * c * n_ / (n_ + 2) * bracket


def variance_from_pair_moments(
    n: int,
    k: float,
    rate: float,
    same_row: float,
    same_col: float,
    other: float,
    pair_rate: float | None = None,
) -> float:
    """Var ‖z‖² from the case table (module docstring) for any mask with E[I_ij] = k/n and the
    given pair moments, gates with E[ξ_j] = rate and E[ξ_j ξ_j'] = pair_rate (default rate²),
    normalisation ‖z‖² = c Σ..., c = 1/(k·rate):

        Var = c² n/(n+2) [9 p r + 3(n-1) r m_col + 3(n-1) ρ m_row + (n-1)² ρ m_oth] - 1.

    E.g. ``variance_from_pair_moments(n, k, r, *[(k/n)**2 * C]*3)`` is the per-layer variance with
    an arbitrary C (C = 1 gives the Bernoulli variance).
    """
    _check_n(n)
    _check_k("bernoulli", n, k)
    rate = _check_rate(rate)
    pair_rate = _check_pair_rate(pair_rate, rate)
    p = _fr(k) / _fr(n)
    return float(_e4_fr(n, k, rate, pair_rate, p, _fr(same_row), _fr(same_col), _fr(other)) - 1)


def output_norm_mean(kind: str, n: int, k: float, rate: float = 0.5) -> float:
    """E‖z‖² = c Σ_ij E[g_i²] E[I_ij] E[ξ_j] E[u_j²] = (1/(k r)) · n² · (k/n) · r · (1/n) = 1
    for all three kinds (evaluated exactly)."""
    _check_kind(kind)
    _check_n(n)
    _check_k(kind, n, k)
    rate = _check_rate(rate)
    n_, k_, r = _fr(n), _fr(k), _fr(rate)
    return float(1 / (k_ * r) * n_ * n_ * (k_ / n_) * r / n_)


def output_norm_variance(kind: str, n: int, k: float, rate: float = 0.5, pair_rate: float | None = None) -> float:
    """Closed-form Var(‖z‖²) (module docstring), with the Appendix A erratum fixed (18 n/k).

    Args:
        kind: ``"bernoulli"``, ``"per_layer"`` or ``"fan_in"``.
        n: layer width (square layer n -> n), >= 2.
        k: mean fan-in, 1 <= k <= n (integer for fan_in, k·n integer for per_layer).
        rate: gate rate r = E[ξ_j] in (0, 1]; the output is normalised by c = 1/(k r).
        pair_rate: ρ = E[ξ_j ξ_j'] for j != j' (default r², independent gates); spikes recorded
            from a real layer give it through :func:`gate_moments`.

    At r = 1/2 (ρ = 1/4): Bernoulli (5n - 8 + 18n/k)/(n(n+2)) (Eq. 14), per-layer
    ((n² + 7n - 8)C_{n,k} + 18n/k - n² - 2n)/(n(n+2)) (Eq. 21 corrected), fan-in
    Bernoulli - 3(n-k)/(kn(n+2)) (Eq. 25).
    """
    _check_kind(kind)
    _check_n(n)
    _check_k(kind, n, k)
    rate = _check_rate(rate)
    pair_rate = _check_pair_rate(pair_rate, rate)
    n_, k_, r = _fr(n), _fr(k), _fr(rate)
    s = _fr(pair_rate) / (r * r)
    denom = n_ * (n_ + 2)
    if kind == "bernoulli":
        num = 9 * n_ / (k_ * r) + 3 * (n_ - 1) / r + s * (n_ - 1) * (n_ + 2) - n_ * (n_ + 2)
        return float(num / denom)
    if kind == "per_layer":
        cnk = (n_ - 1 / k_) / (n_ - 1 / n_)
        num = 9 * n_ / (k_ * r) + cnk * (3 * (n_ - 1) / r + s * (n_ - 1) * (n_ + 2)) - n_ * (n_ + 2)
        return float(num / denom)
    bern = (9 * n_ / (k_ * r) + 3 * (n_ - 1) / r + s * (n_ - 1) * (n_ + 2) - n_ * (n_ + 2)) / denom
    return float(bern - 3 * s * (n_ - k_) / (k_ * n_ * (n_ + 2)))


def output_norm_variance_as_printed(kind: str, n: int, k: float) -> float:
    """Appendix A's printed Eq. (1)-(3) (r = 1/2) **with the erratum** ``18 k/n``; kept so that the
    simulation can be shown to reject it. Use :func:`output_norm_variance` for the correct value."""
    _check_kind(kind)
    _check_n(n)
    _check_k(kind, n, k)
    n_, k_ = _fr(n), _fr(k)
    denom = n_ * (n_ + 2)
    if kind == "bernoulli":
        return float((5 * n_ - 8 + 18 * k_ / n_) / denom)
    if kind == "per_layer":
        cnk = (n_ - 1 / k_) / (n_ - 1 / n_)
        return float(((n_ * n_ + 7 * n_ - 8) * cnk + 18 * k_ / n_ - n_ * n_ - 2 * n_) / denom)
    return float((5 * n_ - 8 + 18 * k_ / n_) / denom - 3 * (n_ - k_) / (k_ * n_ * (n_ + 2)))


def spiking_output_norm_variance(kind: str, n: int, k: float, rate: float = 0.5,
                                 pair_rate: float | None = None) -> float:
    """Closed-form Var Q of a spiking layer (module docstring, "Spiking inputs"): binary inputs
    x_j ∈ {0, 1} with E[x_j] = ``rate``, E[x_j x_j'] = ``pair_rate`` (default rate², iid
    Bernoulli spikes), no continuous u; Q = ‖z‖²/n, z = (k r)^{-1/2} (W ∘ I) x, E[Q] = 1.

    Bernoulli 3/(nkr) + A - 1, per-layer 3/(nkr) + C_{n,k} A - 1, fan-in Bernoulli - 3s(n-k)/(kn²),
    A = (n-1)/(n² r) + s(n-1)(n+2)/n², s = pair_rate/rate². Evaluated exactly (fractions)."""
    _check_kind(kind)
    _check_n(n)
    _check_k(kind, n, k)
    rate = _check_rate(rate)
    pair_rate = _check_pair_rate(pair_rate, rate)
    n_, k_, r = _fr(n), _fr(k), _fr(rate)
    s = _fr(pair_rate) / (r * r)
    a = (n_ - 1) / (n_ * n_ * r) + s * (n_ - 1) * (n_ + 2) / (n_ * n_)
    head = 3 / (n_ * k_ * r)
    if kind == "bernoulli":
        return float(head + a - 1)
    if kind == "per_layer":
        return float(head + (n_ - 1 / k_) / (n_ - 1 / n_) * a - 1)
    return float(head + a - 1 - 3 * s * (n_ - k_) / (k_ * n_ * n_))


def fan_in_per_layer_crossover(n: int, inputs: str = "spikes", s: float = 1.0) -> float:
    """The gate/firing rate r* below which constant per-layer has a *lower* variance than constant
    fan-in (for every k < n): 1/(s(2n+1)) for spiking inputs, 3/(s(2n+1)) for the gated continuous
    layer (``inputs="sphere"``); s = ρ/r² (1 for iid gates). Above r* fan-in is lowest."""
    _check_n(n)
    if inputs not in INPUTS:
        raise ValueError(f"inputs={inputs!r} is unknown; allowed values: {', '.join(map(repr, INPUTS))}")
    if not _finite_real(s) or s <= 0:
        raise ValueError(f"s={s!r} is invalid; allowed values: numbers > 0")
    return (1.0 if inputs == "spikes" else 3.0) / (s * (2 * n + 1))


def gate_moments(gates: torch.Tensor) -> tuple[float, float]:
    """Empirical gate moments of a 0/1 pattern tensor ``gates`` [S, n] (e.g. recorded spikes, one
    row per sample): rate = mean_j E[ξ_j] and pair_rate = mean_{j != j'} E[ξ_j ξ_j'], where E is
    the average over the S rows. Drawing rows uniformly from ``gates`` gives these moments exactly,
    so :func:`output_norm_variance` with them is the theory for ``simulate(..., gates=gates)``."""
    g = _check_gates(gates, None)
    S, n = g.shape
    g = g.to(torch.float64)
    rate = g.mean().item()
    row = g.sum(1)
    pair = ((row * row).sum() - row.sum()).item() / (S * n * (n - 1))
    return rate, pair


def _check_gates(gates, n: int | None) -> torch.Tensor:
    if not isinstance(gates, torch.Tensor) or gates.dim() != 2:
        raise ValueError(f"gates must be a 2-D tensor [S, n] of 0/1 values, got {type(gates).__name__} "
                         f"with shape {tuple(getattr(gates, 'shape', ()))}")
    if n is not None and gates.shape[1] != n:
        raise ValueError(f"gates has {gates.shape[1]} columns but n={n}; allowed: gates of shape [S, {n}]")
    if gates.shape[0] < 1 or gates.shape[1] < 2:
        raise ValueError(f"gates shape {tuple(gates.shape)} is invalid; allowed: [S >= 1, n >= 2]")
    g = gates.detach().cpu()
    if not torch.all((g == 0) | (g == 1)):
        raise ValueError("gates must contain only 0/1 values (spikes)")
    if not torch.any(g != 0):
        raise ValueError("gates are all zero: the gate rate must be > 0")
    return g


# ----------------------------------------------------------------------------------------------
# mask samplers
# ----------------------------------------------------------------------------------------------


def sample_mask(
    kind: str,
    n_out: int,
    n_in: int,
    k: float,
    generator: GeneratorLike = None,
    batch: int | None = None,
) -> torch.Tensor:
    """Exact sampler of the three mask distributions, vectorised over an optional batch.

    Returns a bool tensor [n_out, n_in], or [batch, n_out, n_in] when ``batch`` is given:

    * ``"bernoulli"``: I_ij ~ Ber(k/n_in) iid;
    * ``"per_layer"``: exactly k·n_out ones, positions uniform among the n_out·n_in entries;
    * ``"fan_in"``: exactly k ones in every row, each row an independent uniform k-subset.

    Subsets are the top-k positions of iid float64 uniform noise (ties have probability ~2^-53).
    """
    _check_kind(kind)
    _check_n(n_in, "n_in")
    if not checks.is_int(n_out) or n_out < 1:
        raise ValueError(f"n_out={n_out!r} is invalid; allowed values: integers >= 1")
    _check_k(kind, n_in, k, n_rows=n_out)
    if batch is not None and (not checks.is_int(batch) or batch < 1):
        raise ValueError(f"batch={batch!r} is invalid; allowed values: None or integers >= 1")
    gen = as_generator(generator)
    lead = () if batch is None else (batch,)
    if kind == "bernoulli":
        return torch.rand(*lead, n_out, n_in, generator=gen, dtype=torch.float64) < (k / n_in)
    if kind == "fan_in":
        return select_k(torch.rand(*lead, n_out, n_in, generator=gen, dtype=torch.float64), int(k))
    total = int(round(k * n_out))
    flat = select_k(torch.rand(*lead, n_out * n_in, generator=gen, dtype=torch.float64), total)
    return flat.reshape(*lead, n_out, n_in)


# ----------------------------------------------------------------------------------------------
# Monte Carlo
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimResult:
    """Monte Carlo estimate of E‖z‖² and Var ‖z‖².

    mean, var: sample mean and unbiased sample variance of ``samples`` draws of ‖z‖².
    mean_ci: normal-theory CI, mean ± z·s/√S.
    var_ci: asymptotic (distribution-free) CI, var ± z·se with
        se² = (m4 - s⁴ (S-3)/(S-1)) / S, m4 the sample 4th central moment (no normality assumed;
        the chi-square interval would be wrong here because ‖z‖² is not Gaussian). For small k
        ‖z‖² is heavy-tailed and s² right-skewed, so this symmetric interval is somewhat
        anti-conservative at a few thousand samples (coverage a little below nominal).
    mean_se, var_se: the standard errors behind the CIs; rate / pair_rate: the gate moments used
    (empirical ones when ``gates`` was given); values: the S draws of ‖z‖² (float64, [S]).
    """

    mean: float
    var: float
    mean_ci: tuple[float, float]
    var_ci: tuple[float, float]
    samples: int
    mean_se: float = 0.0
    var_se: float = 0.0
    rate: float = 0.5
    pair_rate: float = 0.25
    confidence: float = 0.95
    values: torch.Tensor | None = field(default=None, repr=False, compare=False)


def _normal_quantile(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _fan_in_indices(s: int, n_out: int, n_in: int, k: int, gen) -> torch.Tensor:
    """Column indices [s, n_out, k] of s independent constant fan-in masks (uniform k-subsets)."""
    noise = torch.rand(s, n_out, n_in, generator=gen, dtype=torch.float64)
    return noise.topk(k, dim=-1, sorted=False).indices


_METHODS = ("direct", "reduced")
_PAIRED_METHODS = ("direct", "reduced", "conditional")


def _check_simulation(n: int, samples, seed, confidence, chunk, method, methods, dtype, rate, gates):
    """The checks every Monte Carlo of this package makes before any work (ValueError naming the
    parameter); returns ``(rate, pair_rate, gate table or None)`` (empirical moments with ``gates``)."""
    if not checks.is_int(samples) or samples < 2:
        raise ValueError(f"samples={samples!r} is invalid; allowed values: integers >= 2")
    if not checks.is_int(seed):
        raise ValueError(f"seed={seed!r} is invalid; allowed values: integers")
    if not _finite_real(confidence) or not (0 < confidence < 1):
        raise ValueError(f"confidence={confidence!r} is out of range; allowed values: 0 < confidence < 1")
    if chunk is not None and (not checks.is_int(chunk) or chunk < 1):
        raise ValueError(f"chunk={chunk!r} is invalid; allowed values: None or integers >= 1")
    if method not in methods:
        raise ValueError(f"method={method!r} is unknown; allowed values: {', '.join(map(repr, methods))}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype={dtype!r} is invalid; allowed values: torch.float32, torch.float64")
    if gates is None:
        rate = _check_rate(rate)
        return rate, rate * rate, None
    g_tab = _check_gates(gates, n).to(dtype)
    return (*gate_moments(g_tab), g_tab)


def simulate_output_norm_variance(
    kind: str,
    n: int,
    k: float,
    samples: int,
    seed: int = 0,
    rate: float = 0.5,
    gates: torch.Tensor | None = None,
    chunk: int | None = None,
    confidence: float = 0.95,
    method: str = "direct",
    dtype: torch.dtype = torch.float32,
) -> SimResult:
    """Monte Carlo of ‖z‖² for z = √c (W ∘ I)(ξ ∘ u), c = 1/(k r).

    Per draw: I [n, n] from the exact samplers of :func:`sample_mask`; u = g/‖g‖ with g ~ N(0, I_n)
    (uniform on the sphere); ξ [n] iid Ber(rate), or a row drawn uniformly from ``gates`` [S_g, n]
    (then the empirical rate r̂ = mean(gates) replaces ``rate``, which is ignored). Then

    * ``method="direct"`` (default): W_ij ~ N(0,1) drawn and z formed literally (for ``fan_in``
      only the k weights per row that the mask keeps are drawn, which is the same in distribution);
    * ``method="reduced"``: Prop. B.2, ‖z‖² = c Σ_i g_i² Σ_j I_ij ξ_j u_j² with g_i ~ N(0,1)
      (no weight matrix; about 2x faster for Bernoulli/per-layer masks).

    Vectorised over ``chunk`` draws at a time (default: about 1M mask entries per chunk); the
    draws are float ``dtype`` (float32 default), the moments float64. Same seed -> same numbers.
    Returns a :class:`SimResult`; compare with :func:`output_norm_variance` (with
    ``*gate_moments(gates)`` as rate and pair_rate when gates are given).
    """
    _check_kind(kind)
    _check_n(n)
    _check_k(kind, n, k)
    rate, pair_rate, g_tab = _check_simulation(n, samples, seed, confidence, chunk, method, _METHODS, dtype, rate, gates)
    gen = torch.Generator().manual_seed(seed)
    c = 1.0 / (k * rate)
    if chunk is None:
        chunk = max(1, min(samples, (1 << 20) // (n * n)))
    out = torch.empty(samples, dtype=torch.float64)
    done = 0
    while done < samples:
        s = min(chunk, samples - done)
        u = torch.randn(s, n, generator=gen, dtype=dtype)
        u = u / u.norm(dim=1, keepdim=True)
        if g_tab is None:
            xi = (torch.rand(s, n, generator=gen, dtype=torch.float64) < rate).to(dtype)
        else:
            xi = g_tab[torch.randint(0, g_tab.shape[0], (s,), generator=gen)]
        if method == "direct":
            v = xi * u  # [s, n]
            if kind == "fan_in":
                idx = _fan_in_indices(s, n, n, int(k), gen)  # [s, n, k]
                w = torch.randn(s, n, int(k), generator=gen, dtype=dtype)
                vg = torch.gather(v.unsqueeze(1).expand(s, n, n), 2, idx)
                z = (w * vg).sum(-1)
            else:
                mask = sample_mask(kind, n, n, k, gen, batch=s)
                w = torch.randn(s, n, n, generator=gen, dtype=dtype)
                z = torch.bmm(w * mask, v.unsqueeze(-1)).squeeze(-1)  # [s, n]
            out[done : done + s] = c * z.to(torch.float64).square().sum(1)
        else:
            a_in = (xi * u * u).to(torch.float64)  # ξ_j u_j², [s, n]
            if kind == "fan_in":
                idx = _fan_in_indices(s, n, n, int(k), gen)
                a = torch.gather(a_in.unsqueeze(1).expand(s, n, n), 2, idx).sum(-1)
            else:
                mask = sample_mask(kind, n, n, k, gen, batch=s).to(torch.float64)
                a = torch.bmm(mask, a_in.unsqueeze(-1)).squeeze(-1)
            g2 = torch.randn(s, n, generator=gen, dtype=torch.float64).square()
            out[done : done + s] = c * (g2 * a).sum(1)
        done += s
    return _summarise(out, rate, pair_rate, confidence)


def _summarise(out: torch.Tensor, rate: float, pair_rate: float, confidence: float,
               second: torch.Tensor | None = None) -> SimResult:
    """SimResult of float64 per-draw values ``out`` [S] (draws of ‖z‖²), or, with ``second``, of
    per-draw conditional moments: ``out`` = E[‖z‖² | draw], ``second`` = E[‖z‖⁴ | draw]
    (W integrated out exactly). The variance estimate is mean(second) - mean(out)² + var(out)/S
    (unbiased; with second = out² it is the unbiased sample variance) and its standard error
    sd(ψ)/√S with the influence ψ_s = second_s - 2 mean(out) out_s (delta method; for plain draws
    this is the asymptotic interval of :class:`SimResult`)."""
    S = int(out.numel())
    mean = out.mean().item()
    if second is None:
        var = out.var(unbiased=True).item()
        m4 = (out - mean).pow(4).mean().item()
        var_se = math.sqrt(max(m4 - var * var * (S - 3) / (S - 1), 0.0) / S)
    else:
        var = second.mean().item() - mean * mean + out.var(unbiased=True).item() / S
        var_se = math.sqrt(_influence(out, second).var(unbiased=True).item() / S)
    mean_se = math.sqrt(out.var(unbiased=True).item() / S)
    zq = _normal_quantile(confidence)
    return SimResult(
        mean=mean,
        var=var,
        mean_ci=(mean - zq * mean_se, mean + zq * mean_se),
        var_ci=(var - zq * var_se, var + zq * var_se),
        samples=S,
        mean_se=mean_se,
        var_se=var_se,
        rate=rate,
        pair_rate=pair_rate,
        confidence=confidence,
        values=out,
    )


def _influence(first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
    """Per-draw influence of the variance estimate (up to a constant): (x_s - x̄)² for plain draws
    x = ``first``; second_s - 2 mean(first) first_s for conditional moments."""
    if second is None:
        return (first - first.mean()).square()
    return second - 2 * first.mean() * first
