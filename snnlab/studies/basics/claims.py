"""The claims of ``notebooks/basics/01_lif_and_surrogates``: the run's data in, ``results.Claim``
records out. Thresholds, and the number each claim is compared with, sit in
``papers/basics/paper.yaml`` (section ``claims``).

basics is not a paper: two claims check the code against an independent reference (``sanity``),
three describe what the trained network does and can fail on other data or settings (``finding``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ...core import neurons
from ...record import params
from ...record.results import Claim

__all__ = ["lif_matches_recursion", "surrogate_fd", "learns", "more_steps_help", "sparse_activity"]

PAPER = "basics"


def _claim(cid: str, kind: str, statement: str, ours: Any, passed: bool | None, test: str, note: str = "") -> Claim:
    spec = params.claim_spec(PAPER, cid)
    return Claim(id=cid, statement=statement, ours=ours, kind=kind, paper=spec.get("paper"),
                 provenance=spec.get("provenance", ""), test=test, passed=passed, note=note)


def lif_matches_recursion(traces: Mapping[str, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor,
                          variants: Mapping[str, tuple[str, Mapping[str, Any]]]) -> Claim:
    """``sanity``: spikingjelly's LIFNode (``traces[name][0]``, the membrane potential after reset, from
    :func:`snnlab.core.neurons.simulate`) against the plain-Python recursion
    :func:`~snnlab.core.neurons.reference_trace`, for every ``variants[name] = (preset, overrides)``
    driven by the input current ``x`` ``[T]``."""
    tol = float(params.claim_spec(PAPER, "lif_matches_recursion")["max_abs_error"])
    err = 0.0
    for name, (preset, kw) in variants.items():
        pr = neurons.PRESETS[preset]
        v_reset = kw.get("v_reset", pr.v_reset)
        s_ref, h_ref = neurons.reference_trace(x.view(-1, 1).double(), pr.tau, pr.v_threshold, v_reset, pr.decay_input)
        v_ref = h_ref - s_ref * pr.v_threshold if v_reset is None else torch.where(s_ref > 0, torch.full_like(h_ref, v_reset), h_ref)
        err = max(err, float((traces[name][0].double() - v_ref.view(-1)).abs().max()))
    return _claim("lif_matches_recursion", "sanity",
                  "spikingjelly's LIFNode with each preset follows the LIF recursion written out in plain Python",
                  ours=err, passed=err < tol, test=f"max |V_sj - V_ref| < {tol:g} over {len(variants)} preset variants")


def surrogate_fd(surrogates: Mapping[str, Any]) -> Claim:
    """``sanity``: autograd through each surrogate against a central finite difference of its
    primitive (float64, on a grid of |x| < 0.95 away from the kinks at 0, 0.2 and 0.5)."""
    spec = params.claim_spec(PAPER, "surrogate_fd")
    tol, h = float(spec["max_abs_error"]), float(spec["fd_step"])
    err = 0.0
    for s in surrogates.values():
        z = torch.linspace(-0.95, 0.95, 191, dtype=torch.float64)
        z = z[(z.abs() > 1e-3) & ((z.abs() - 0.5).abs() > 1e-3) & ((z.abs() - 0.2).abs() > 1e-3)].requires_grad_()
        (g,) = torch.autograd.grad(s(z).sum(), z)
        with torch.no_grad():
            fd = (s.primitive(z + h) - s.primitive(z - h)) / (2 * h)
        err = max(err, float((g - fd).abs().max()))
    return _claim("surrogate_fd", "sanity", "each surrogate's backward equals the derivative of its primitive",
                  ours=err, passed=err < tol,
                  test=f"max |autograd - central finite difference (step {h:g})| < {tol:g}, float64, "
                       f"{len(surrogates)} surrogates")


def learns(acc: float, num_classes: int) -> Claim:
    """``finding``: the trained network's test accuracy clears ``min_acc`` (paper.yaml)."""
    lo = float(params.claim_spec(PAPER, "learns")["min_acc"])
    return _claim("learns", "finding", "a small SNN trained with surrogate-gradient BPTT learns the task",
                  ours=acc, passed=acc > lo, test=f"test accuracy > {lo:g} (chance {1 / num_classes:.3g})")


def more_steps_help(acc_per_t: list[float]) -> Claim:
    """``finding``: the accuracy of the output accumulated over all T steps is not below that of the
    first step (``slack``, paper.yaml, in accuracy units)."""
    slack = float(params.claim_spec(PAPER, "more_steps_help")["slack"])
    return _claim("more_steps_help", "finding", "accumulating more time steps does not lower accuracy",
                  ours=list(acc_per_t), passed=acc_per_t[-1] >= acc_per_t[0] - slack,
                  test=f"acc[T] >= acc[1] - {slack:g} (output accumulated over the first t steps)")


def sparse_activity(firing_rate: list[float]) -> Claim:
    """``finding``: every LIF layer fires below ``max_rate`` (paper.yaml) on the test set."""
    hi = float(params.claim_spec(PAPER, "sparse_activity")["max_rate"])
    return _claim("sparse_activity", "finding", "the network communicates with sparse spikes",
                  ours=list(firing_rate), passed=bool(max(firing_rate) < hi),
                  test=f"every LIF layer's firing rate < {hi:g}")
