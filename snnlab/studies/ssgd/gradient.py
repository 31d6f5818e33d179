r"""The sparse gradient against the full surrogate (Appendix H, Fig. 23), its error against
:math:`B_{th}`, and Proposition 1 / Appendix C as checkable data.

The *full* gradient is the dense loop with the SuperSpike surrogate everywhere
(:data:`~snnlab.studies.ssgd.training.FULL_B_TH`); the *sparse* one keeps it only in the band
:math:`|V - V_{th}| < B_{th}` (Eq. 20). Both are taken on the same batch, the same weights and the same
loss (E.4, meaningful signs). Two error measures per hidden layer:

* ``max_rel_to_scale``: :math:`\max_{ij} |\Delta_{ij}| / \max_{ij} |g^{full}_{ij}|` (a weight's error
  relative to the layer's gradient scale; robust where a single :math:`g^{full}_{ij}` is near zero);
* ``max_rel_large``: :math:`\max |\Delta_{ij}| / |g^{full}_{ij}|` over the weights whose full gradient is at
  least 10% of the layer's largest (the per-weight relative error where it is defined);

plus ``norm_rel`` (:math:`\|\Delta\|/\|g^{full}\|`) and the cosine similarity. The supplement gives one
number, "the maximum relative error between two individual weights is 10.6%", without the definition.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import torch

from ... import checks
from ...grad import sparse_backward as sb
from . import training as tr

__all__ = ["probe", "layer_gradients", "compare_gradients", "error_vs_bth", "walk_check", "prop1_check",
           "sparse_equals_dense_band"]


def layer_gradients(model: "tr.Model", x: torch.Tensor, y: torch.Tensor, backward: str, b_th: float) -> list:
    """Weight gradients of every layer (hidden ..., readout) for one batch with ``backward`` and band
    ``b_th`` (the model's weights are used as they are)."""
    spec = replace(model.spec, backward=backward, b_th=b_th)
    m = tr.Model(spec, model.conv, model.hidden, model.out)
    for p in m.parameters():
        p.grad = None
    out = tr.forward(m, x)
    sp = spec
    tr.loss_terms(out.logits, y, out.spikes, sp.lam_low, sp.nu_low, sp.lam_up, sp.nu_up)["total"].backward()
    gs = [p.grad.detach().clone() for p in m.parameters()]
    for p in m.parameters():
        p.grad = None
    return gs


def _errors(gs: torch.Tensor, gf: torch.Tensor) -> dict:
    d = gs - gf
    scale = float(gf.abs().max())
    big = gf.abs() >= 0.1 * scale
    return {
        "max_rel_to_scale": float(d.abs().max()) / scale if scale > 0 else 0.0,
        "max_rel_large": float((d.abs()[big] / gf.abs()[big]).max()) if bool(big.any()) else 0.0,
        "norm_rel": float(d.norm() / gf.norm()) if float(gf.norm()) > 0 else 0.0,
        "cosine": float((gs * gf).sum() / (gs.norm() * gf.norm())) if float(gs.norm() * gf.norm()) > 0 else 1.0,
    }


def compare_gradients(model: "tr.Model", x: torch.Tensor, y: torch.Tensor, b_th: float = 0.2) -> dict:
    """Sparse (band ``b_th``) against full-surrogate gradients of every hidden layer: ``{"sparse",
    "full", "diff"}`` (lists of tensors, hidden layers only) and ``"errors"`` (one dict per layer), plus
    the layers' active fractions at ``b_th``."""
    b_th = checks.positive("b_th", b_th)
    gs = layer_gradients(model, x, y, "sparse", b_th)
    gf = layer_gradients(model, x, y, "dense", tr.FULL_B_TH)
    n = len(model.hidden) + (model.conv is not None)
    with torch.no_grad():
        out = tr.forward(replace(model, spec=replace(model.spec, b_th=b_th)), x)
    rho = [sb.active_fraction(v, model.spec.v_th, b_th) for v in out.v]
    return {"sparse": gs[:n], "full": gf[:n], "diff": [a - b for a, b in zip(gs[:n], gf[:n])],
            "readout_equal": bool(torch.allclose(gs[-1], gf[-1], rtol=1e-4, atol=1e-7)),
            "errors": [_errors(a, b) for a, b in zip(gs[:n], gf[:n])], "rho": rho, "b_th": b_th}


def error_vs_bth(model: "tr.Model", x: torch.Tensor, y: torch.Tensor,
                 b_ths: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)) -> list[dict]:
    """:func:`compare_gradients` over a grid of bands: one row per (b_th, layer) with the errors and rho."""
    rows = []
    for b in b_ths:
        c = compare_gradients(model, x, y, b)
        for layer, (e, r) in enumerate(zip(c["errors"], c["rho"])):
            rows.append({"b_th": b, "layer": layer + 1, "rho": r, **e})
    return rows


def walk_check(t_j: Sequence[int], t_i: Sequence[int], alpha: float, g: dict) -> dict:
    """Appendix C with numbers: :func:`snnlab.grad.sparse_backward.appendix_c_walk` against the
    definition :math:`\\delta_j[t] = \\sum_{k>t} g_j[k]\\,\\alpha^{k-t-1}` computed by brute force at
    every written step. Returns the steps, the brute-force values and the largest difference."""
    steps = sb.appendix_c_walk(t_j, t_i, alpha, g)

    def brute(t):
        return sum(g[k] * alpha ** (k - t - 1) for k in t_j if k > t)

    diffs = [abs(s.value - brute(s.t)) for s in steps]
    return {"steps": steps, "brute": {s.t: brute(s.t) for s in steps}, "max_diff": max(diffs) if diffs else 0.0,
            "updates": len(steps), "T": max(list(t_j) + list(t_i)) + 2,
            "written": [s.t for s in steps if s.action == "compute and write"]}


def prop1_check(T: int = 60, alpha: float = math.exp(-0.1), p: float = 0.1, seed: int = 0) -> dict:
    r"""Proposition 1 on random data: the recurrence (decay by :math:`\alpha^n` across inactive steps,
    add :math:`g[t+1]` at active ones) against the definition summed term by term."""
    gen = torch.Generator().manual_seed(seed)
    active = torch.rand(T, generator=gen, dtype=torch.float64) < p
    gvals = torch.where(active, torch.rand(T, generator=gen, dtype=torch.float64), torch.zeros(T, dtype=torch.float64))
    definition = torch.tensor([sum(float(gvals[k]) * alpha ** (k - t - 1) for k in range(t + 1, T))
                               for t in range(T)], dtype=torch.float64)
    computed = {}  # delta at the steps t with an active t+1 only: |active| updates, not T
    nxt = None
    for t in range(T - 2, -1, -1):
        if bool(active[t + 1]):
            computed[t] = float(gvals[t + 1]) + (0.0 if nxt is None else alpha ** (nxt - t) * computed[nxt])
            nxt = t
    rec = torch.zeros(T, dtype=torch.float64)
    for t in range(T):  # any other step: decay from the next computed one (Proposition 1, first case)
        above = [m for m in computed if m >= t]
        if above:
            m = min(above)
            rec[t] = alpha ** (m - t) * computed[m]
    updates = len(computed)
    return {"max_diff": float((rec - definition).abs().max()), "active_steps": int(active.sum()), "T": T,
            "updates": updates}


def sparse_equals_dense_band(model: "tr.Model", x: torch.Tensor, y: torch.Tensor, b_th: float = 0.2) -> float:
    """Largest relative difference between the sparse layer's gradients and the dense loop's with the
    *same* band (float64): the sparse backward is exact, not an approximation of its own surrogate."""
    m64 = tr.Model(replace(model.spec, dense_surrogate="band"), None if model.conv is None else model.conv.detach().double().requires_grad_(),
                   [w.detach().double().requires_grad_() for w in model.hidden],
                   model.out.detach().double().requires_grad_())
    a = layer_gradients(m64, x.double(), y, "sparse", b_th)
    b = layer_gradients(m64, x.double(), y, "dense", b_th)
    return max(float((u - v).abs().max() / v.abs().max().clamp_min(1e-300)) for u, v in zip(a, b))


def probe(spec: "tr.Spec", n: int = 128) -> tuple["tr.Model", torch.Tensor, torch.Tensor]:
    """``(model at initialisation, spikes [T, n, N_in], labels)`` from the first ``n`` training samples."""
    train_ds, _ = tr.load_data(spec)
    x = tr.to_spikes(train_ds.x[:n], spec, train_ds.is_temporal)
    n_in = train_ds.input_shape if spec.conv_channels else x.shape[2]
    model = tr.build_model(spec, n_in, train_ds.num_classes, torch.Generator().manual_seed(spec.seed))
    return model, x, train_ds.y[:n]
