"""basics claims: each verdict flips when hand-made data cross the threshold; kinds are as classified."""

import pytest
import torch

from snnlab.core import neurons, surrogate
from snnlab.record import params
from snnlab.studies.basics import claims

X = torch.tensor([0.0] * 2 + [1.4] * 8 + [0.6] * 6, dtype=torch.float64)
VARIANTS = {"lth (hard)": ("lth", {}), "lth (soft)": ("lth", {"v_reset": None}), "sltt (soft)": ("sltt", {})}


def _hand_lif(preset: str, kw: dict) -> torch.Tensor:
    """The LIF recursion by hand, one neuron, float64 (independent of reference_trace)."""
    pr = neurons.PRESETS[preset]
    v_reset = kw.get("v_reset", pr.v_reset)
    rest = 0.0 if v_reset is None else v_reset
    v, out = rest, []
    for x in X.tolist():
        h = v + (x - (v - rest)) / pr.tau if pr.decay_input else v - (v - rest) / pr.tau + x
        spike = h >= pr.v_threshold
        v = (h - pr.v_threshold if v_reset is None else v_reset) if spike else h
        out.append(v)
    return torch.tensor(out, dtype=torch.float64)


def test_lif_matches_recursion_flips_when_a_trace_deviates():
    traces = {name: (_hand_lif(p, kw), None) for name, (p, kw) in VARIANTS.items()}
    good = claims.lif_matches_recursion(traces, X, VARIANTS)
    assert good.kind == "sanity" and good.passed and good.ours < 1e-12
    traces["sltt (soft)"] = (traces["sltt (soft)"][0] + torch.where(torch.arange(len(X)) == 5, 1e-9, 0.0), None)
    bad = claims.lif_matches_recursion(traces, X, VARIANTS)
    assert not bad.passed and bad.ours == pytest.approx(1e-9, rel=1e-3)
    # the real spikingjelly traces pass (what the notebook feeds)
    real = {name: neurons.simulate(p, X, **kw) for name, (p, kw) in VARIANTS.items()}
    assert claims.lif_matches_recursion(real, X, VARIANTS).passed


class _WrongBackward:
    """Forward: a step; backward 1 everywhere, while the primitive's derivative is 2x."""

    def __call__(self, z):
        return z - z.detach() + (z >= 0).to(z.dtype)

    def primitive(self, z):
        return z * z


def test_surrogate_fd_flips_on_a_wrong_backward():
    good = claims.surrogate_fd({n: surrogate.get(n) for n in surrogate.SURROGATES})
    assert good.kind == "sanity" and good.passed
    bad = claims.surrogate_fd({"wrong": _WrongBackward()})
    assert not bad.passed and bad.ours > 0.5  # |1 - 2z| reaches ~0.9 on |z| < 0.95


def test_trained_network_findings_flip_at_their_thresholds():
    lo = params.claim_spec("basics", "learns")["min_acc"]
    assert claims.learns(lo + 0.01, 10).passed and not claims.learns(lo - 0.01, 10).passed
    assert "chance 0.1" in claims.learns(0.9, 10).test
    assert claims.more_steps_help([0.50, 0.70]).passed and not claims.more_steps_help([0.70, 0.50]).passed
    hi = params.claim_spec("basics", "sparse_activity")["max_rate"]
    assert claims.sparse_activity([0.1, hi - 0.01]).passed and not claims.sparse_activity([0.1, hi + 0.01]).passed
    assert {c.kind for c in (claims.learns(0.9, 10), claims.more_steps_help([0.5, 0.6]),
                             claims.sparse_activity([0.1]))} == {"finding"}


def test_claim_spec_names_the_known_ids():
    with pytest.raises(ValueError, match=r"claim id='nope' is invalid; allowed values: \[.*'learns'"):
        params.claim_spec("basics", "nope")
