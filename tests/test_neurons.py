"""LIF presets: hand-computed golden traces (soft and hard reset) and the plain recursion."""

import math

import pytest
import torch

from snnlab.core.neurons import PRESETS, lif, reference_trace, ssgd_tau


def _run(node, x):
    node.reset()
    s = node(torch.tensor(x, dtype=torch.float64).view(-1, 1))
    return s.flatten().tolist(), node.v_seq.flatten().tolist()


def test_lth_golden_trace_hard_reset():
    # H = V + (X - V)/tau, tau = 4/3 -> H = V/4 + 3X/4; spike if H >= 1, then V = 0
    s, v = _run(lif("lth", store_v_seq=True), [1.5, 0.5, 0.5, 2.0])
    # H1 = 1.125 -> spike, V=0; H2 = 0.375; H3 = 0.375/4 + 0.375 = 0.46875; H4 = 0.1171875 + 1.5 -> spike
    assert s == [1.0, 0.0, 0.0, 1.0]
    assert v == pytest.approx([0.0, 0.375, 0.46875, 0.0])


def test_lth_golden_trace_soft_reset():
    # same charge H = V/4 + 3X/4, but V = H - 1 after a spike
    s, v = _run(lif("lth", v_reset=None, store_v_seq=True), [1.5, 0.5, 0.5, 2.0])
    # H1 = 1.125 -> spike, V = 0.125; H2 = 0.03125 + 0.375; H3 = 0.1015625 + 0.375; H4 = 0.119140625 + 1.5
    assert s == [1.0, 0.0, 0.0, 1.0]
    assert v == pytest.approx([0.125, 0.40625, 0.4765625, 0.619140625])


def test_sltt_golden_trace_soft_reset():
    # u[t] = (1 - 1/1.1) v[t-1] + x[t] = v/11 + x; soft reset subtracts V_th = 1
    s, v = _run(lif("sltt", store_v_seq=True), [0.6, 0.6, 1.2, 0.0])
    u2 = 0.6 / 11 + 0.6
    u3 = u2 / 11 + 1.2
    assert s == [0.0, 0.0, 1.0, 0.0]
    assert v == pytest.approx([0.6, u2, u3 - 1.0, (u3 - 1.0) / 11])


def test_sltt_hard_reset_golden_trace():
    s, v = _run(lif("sltt", v_reset=0.0, store_v_seq=True), [1.5, 0.5, 0.95])
    # u1 = 1.5 spike -> 0; u2 = 0.5; u3 = 0.5/11 + 0.95 = 0.99545 < 1
    assert s == [1.0, 0.0, 0.0]
    assert v == pytest.approx([0.0, 0.5, 0.5 / 11 + 0.95])


def test_ssgd_leak_factor_and_subtractive_reset():
    alpha = math.exp(-1.0 / 10.0)  # dt = 1 ms, tau_mem = 10 ms (ssgd Table 4)
    assert PRESETS["ssgd"].tau == pytest.approx(1 / (1 - alpha))
    assert ssgd_tau(20.0, 2.0) == pytest.approx(1 / (1 - math.exp(-0.1)))
    s, v = _run(lif("ssgd", store_v_seq=True), [0.7, 0.7, 0.0])
    v2 = alpha * 0.7 + 0.7  # 1.3334 -> spike, subtract 1
    assert s == [0.0, 1.0, 0.0]
    assert v == pytest.approx([0.7, v2 - 1.0, alpha * (v2 - 1.0)])


def test_ssgd_golden_trace_hard_reset():
    alpha = math.exp(-0.1)
    s, v = _run(lif("ssgd", v_reset=0.0, store_v_seq=True), [0.7, 0.7, 0.2])
    assert alpha * 0.7 + 0.7 == pytest.approx(1.3334, abs=1e-4)  # >= V_th: spike, then V = 0
    assert s == [0.0, 1.0, 0.0]
    assert v == pytest.approx([0.7, 0.0, 0.2])


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_matches_plain_recursion(preset, v_reset):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, 4, 7, generator=g, dtype=torch.float64) * 2.2 - 0.3
    node = lif(preset, v_reset=v_reset, store_v_seq=True)
    spikes = node(x)
    p = PRESETS[preset]
    ref_s, ref_h = reference_trace(x, p.tau, p.v_threshold, v_reset, p.decay_input)
    assert torch.equal(spikes, ref_s)
    ref_v = ref_h - ref_s if v_reset is None else torch.where(ref_s > 0, torch.zeros_like(ref_h), ref_h)
    torch.testing.assert_close(node.v_seq, ref_v)
    assert 0 < spikes.mean() < 1


def test_single_step_mode_matches_multi_step():
    x = torch.rand(12, 3, 5, dtype=torch.float64) * 2
    m = lif("lth")(x)
    node = lif("lth", step_mode="s")
    s = torch.stack([node(xt) for xt in x])
    assert torch.equal(m, s)


def test_overrides_and_surrogate_by_name():
    node = lif("lth", tau=2.0, v_threshold=0.5, surrogate="triangle")
    assert node.tau == 2.0 and node.v_threshold == 0.5
    assert type(node.surrogate_function).__name__ == "Triangle"


@pytest.mark.parametrize(
    "kw, word",
    [(dict(preset="izhikevich"), "preset"), (dict(step_mode="x"), "step_mode"), (dict(tau=1.0), "tau"),
     (dict(v_threshold=0.0), "v_threshold"), (dict(colour="red"), "override"),
     (dict(surrogate="nope"), "surrogate")],
)
def test_bad_input(kw, word):
    with pytest.raises(ValueError, match=word):
        lif(**{"preset": "lth", **kw})
