r"""The supplement's three errata, settled by simulation.

* **Eq. 17** prints the leak as :math:`-\alpha(V[t] - V_{rest})`. :func:`leak_sign` runs a layer on
  real latency-coded input with the printed and the meaningful sign and counts how often the membrane
  changes sign on steps without input: with :math:`-\alpha` it flips on every such step (it
  oscillates instead of decaying), with :math:`+\alpha` never.
* **E.4** prints the cross-entropy without its minus sign and both activity regularisers with a
  leading minus. Minimising the printed forms rewards what each term should penalise:
  :func:`regulariser_sign` trains a layer on each regulariser alone and follows the activity it
  targets; the printed cross-entropy is trained in :mod:`.training` (``signs="printed"``).
* **E.3** prints :math:`\mathcal U(-\sqrt N, \sqrt N)`; the official code draws
  :math:`\mathcal U(-1/\sqrt N, 1/\sqrt N)` (N-MNIST, SHD) or :math:`\mathcal N(0, (20(1-\alpha))^2/N)`
  (F-MNIST). :func:`init_statistics` measures what each does to the first forward pass.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ... import checks
from ...grad import sparse_backward as sb
from . import training as tr

__all__ = ["simulate_leak", "leak_sign", "regulariser_sign", "init_statistics"]


def simulate_leak(x: torch.Tensor, weight: torch.Tensor, alpha: float, v_th: float = 1.0,
                  sign: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Eq. 17 (no input delay) with the leak ``sign * alpha``: :math:`V[t] = s\alpha V[t-1] + x[t]W -
    V_{th}S[t-1]`. Returns ``(v, spikes, input current)`` ``[T, B, N]``; plain loop, no autograd."""
    checks.choice("sign", sign, [1.0, -1.0])
    with torch.no_grad():
        cur = torch.einsum("tbi,io->tbo", x, weight)
        v = torch.zeros_like(cur[0])
        s = torch.zeros_like(v)
        vs, ss = [], []
        for t in range(x.shape[0]):
            v = sign * alpha * v + cur[t] - v_th * s
            s = (v > v_th).to(v.dtype)
            vs.append(v)
            ss.append(s)
    return torch.stack(vs), torch.stack(ss), cur


def _flip_fraction(v: torch.Tensor, cur: torch.Tensor, s: torch.Tensor) -> float:
    """Fraction of input-free, reset-free steps (V[t-1] != 0) on which V changes sign."""
    quiet = (cur[1:] == 0) & (s[:-1] == 0) & (v[:-1].abs() > 1e-12)
    flips = (torch.sign(v[1:]) != torch.sign(v[:-1])) & quiet
    return float(flips.sum() / quiet.sum().clamp_min(1))


def leak_sign(x: torch.Tensor, weight: torch.Tensor, alpha: float, v_th: float = 1.0) -> dict:
    """Both signs of Eq. 17's leak on the same input: sign-flip fraction on quiet steps, spike rate,
    and the traces (for a figure)."""
    out = {}
    for name, sign in (("printed", -1.0), ("meaningful", 1.0)):
        v, s, cur = simulate_leak(x, weight, alpha, v_th, sign)
        out[name] = {"flip_fraction": _flip_fraction(v, cur, s), "spike_rate": float(s.mean()),
                     "quiet_steps": int(((cur[1:] == 0) & (s[:-1] == 0) & (v[:-1].abs() > 1e-12)).sum()),
                     "v": v, "cur": cur, "s": s}
    return out


def regulariser_sign(x: torch.Tensor, n_hidden: int = 200, alpha: float = 0.67, steps: int = 30,
                     lr: float = 1e-2, seed: int = 0, lam_low: float = 100.0, nu_low: float = 0.001,
                     lam_up: float = 0.06, nu_up: float = 1.0, scale_low: float = 0.5,
                     scale_up: float = 3.0) -> dict:
    r"""Train one LIF layer (full surrogate) on each E.4 regulariser **alone**, with the meaningful and the
    printed sign, from the same start, and follow what it targets:

    * :math:`L^{low}`: the fraction of silent (neuron, sample) pairs (:math:`\zeta = 0`), from a start
      with weights scaled by ``scale_low`` (many silent neurons);
    * :math:`L^{up}`: the mean spike count per neuron, from a start with weights scaled by ``scale_up``
      (mean count above :math:`\nu^{up}`).

    Returns ``{"low": {sign: [silent fraction per step]}, "up": {sign: [mean count per step]}}``."""
    checks.int_at_least("steps", steps, 1)
    n_in = x.shape[2]
    out: dict = {"low": {}, "up": {}}
    for term, scale in (("low", scale_low), ("up", scale_up)):
        for signs in tr.SIGNS:
            g = torch.Generator().manual_seed(seed)
            w = (torch.randn(n_in, n_hidden, generator=g) * scale * 20 * (1 - alpha) / n_in ** 0.5).requires_grad_()
            opt = torch.optim.Adam([w], lr=lr)
            track = []
            for _ in range(steps + 1):
                s, _v = sb.lif_layer(x, w, alpha, 1.0, tr.FULL_B_TH, 100.0, backward="dense")
                zeta = s.sum(0)
                z = zeta.detach()
                track.append(float((z == 0).float().mean()) if term == "low" else float(z.mean()))
                lt = tr.loss_terms(torch.zeros(x.shape[1], 2), torch.zeros(x.shape[1], dtype=torch.long), [s],
                                   lam_low if term == "low" else 0.0, nu_low, lam_up if term == "up" else 0.0, nu_up,
                                   signs)
                reg = lt[term]
                opt.zero_grad()
                reg.backward()
                opt.step()
            out[term][signs] = track
    return out


def init_statistics(spec: "tr.Spec", x: torch.Tensor, n_in: int, n_classes: int) -> dict:
    """First forward pass of ``spec``'s network under each initialisation of :data:`training.INITS`:
    per hidden layer the spike rate, the active fraction (|V - V_th| < B_th) and the median |V - V_th|."""
    out = {}
    for init in tr.INITS:
        m = tr.build_model(replace(spec, init=init), n_in, n_classes, torch.Generator().manual_seed(spec.seed))
        with torch.no_grad():
            o = tr.forward(m, x)
        out[init] = {"rate": [float(s.mean()) for s in o.spikes],
                     "rho": [sb.active_fraction(v, spec.v_th, spec.b_th) for v in o.v],
                     "median_dist": [float((v - spec.v_th).abs().median()) for v in o.v]}
    return out
