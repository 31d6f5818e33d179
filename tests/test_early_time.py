"""Early-Time tickets: the normalised divergence curve and T_early against hand computations with
the math module (not the functions under test), the KL argument order, JSD symmetry, per-step
outputs that leave BatchNorm untouched, the official variant, and every bad input."""

import math

import pytest
import torch
from spikingjelly.activation_based import functional

from snnlab.core import models
from snnlab.sparsity import early_time as et

# Two samples, two classes, T = 4 (logits of each step, not accumulated).
OUT = [
    [[2.0, 0.0], [0.0, 1.0]],
    [[0.0, 0.0], [0.0, 3.0]],
    [[1.0, 0.0], [0.0, 0.0]],
    [[0.0, 0.0], [0.0, -1.0]],
]


def _softmax(v):
    m = max(v)
    e = [math.exp(x - m) for x in v]
    return [x / sum(e) for x in e]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def _jsd(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def _hand_curve(out, div):
    T, N = len(out), len(out[0])
    P = [[_softmax([sum(out[s][n][c] for s in range(t)) / t for c in range(len(out[0][0]))]) for n in range(N)]
         for t in range(1, T + 1)]
    D = [sum(div(P[t - 1][n], P[T - 1][n]) for n in range(N)) / N for t in range(2, T + 1)]
    return D, [d / D[0] for d in D]


@pytest.mark.parametrize("metric, direction, div", [
    ("kl", "paper", lambda pt, pT: _kl(pt, pT)),
    ("kl", "official", lambda pt, pT: _kl(pT, pt)),
    ("jsd", "paper", _jsd),
])
def test_curve_matches_hand_computation(metric, direction, div):
    raw, norm = _hand_curve(OUT, div)
    got_raw = et.divergences(torch.tensor(OUT), metric, direction)
    got = et.normalized_divergence(torch.tensor(OUT), metric, direction)
    assert got.shape == (3,) and got.dtype == torch.float64
    assert got_raw.tolist() == pytest.approx(raw, rel=1e-12, abs=1e-15)
    assert got.tolist() == pytest.approx(norm, rel=1e-12, abs=1e-15)
    assert got[0] == 1.0 and got[-1] == 0.0


def test_kl_directions_differ_and_jsd_is_symmetric():
    x = torch.tensor(OUT)
    assert not torch.allclose(et.divergences(x, "kl", "paper"), et.divergences(x, "kl", "official"))
    assert torch.equal(et.normalized_divergence(x, "jsd", "paper"), et.normalized_divergence(x, "jsd", "official"))
    p, q = [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]
    assert _jsd(p, q) == pytest.approx(_jsd(q, p))
    # the library's JSD equals the hand value with the arguments in either order
    raw_swapped, _ = _hand_curve(OUT, lambda pt, pT: _jsd(pT, pt))
    assert et.divergences(x, "jsd").tolist() == pytest.approx(raw_swapped, rel=1e-12, abs=1e-15)


def test_accumulated_probabilities_are_softmax_of_running_mean():
    P = et.accumulated_probabilities(torch.tensor(OUT))
    assert P[1, 0].tolist() == pytest.approx(_softmax([1.0, 0.0]))  # mean of (2,0),(0,0)
    assert P[2, 1].tolist() == pytest.approx(_softmax([0.0, 4.0 / 3.0]))
    assert P.sum(-1).reshape(-1).tolist() == pytest.approx([1.0] * 8)


def test_constant_prediction_gives_zero_curve_and_t_early_two():
    x = torch.ones(5, 3, 4)
    c = et.normalized_divergence(x)
    assert c.tolist() == [0.0] * 4
    assert et.select_t_early(c, 0.6) == 2
    assert et.normalized_divergence(torch.randn(2, 3, 4)).tolist() == [0.0]  # T = 2


@pytest.mark.parametrize("curve, lam, t", [
    ([1.0, 0.7, 0.59, 0.0], 0.6, 4), ([1.0, 0.7, 0.59, 0.0], 0.59, 5), ([1.0, 0.7, 0.59, 0.0], 0.0, 5),
    ([1.0, 0.7, 0.59, 0.0], 1.0, 3), ([1.0, 0.5, 0.2, 0.0], 0.6, 3), ([1.0, 0.0], 0.6, 3), ([0.0], 0.5, 2),
    ([1.0, 0.55, 0.2, 0.0], 0.6, 3),
])
def test_select_t_early_by_hand(curve, lam, t):
    assert et.select_t_early(torch.tensor(curve), lam) == t
    assert et.select_t_early(curve, lam) == t


def test_t_early_vs_lambda_grid():
    got = et.t_early_vs_lambda([1.0, 0.55, 0.2, 0.0])
    assert list(got) == pytest.approx([0.1 * i for i in range(11)])
    assert list(got.values()) == [5, 5, 5, 4, 4, 4, 3, 3, 3, 3, 3]  # strict "<": 0.2 at lam=0.2 is not below


def test_official_variant_by_hand():
    # prefix outputs of one run; the official code reruns at each t (same thing for a causal model)
    x = torch.tensor(OUT)
    by_t = {t: x[:t] for t in (2, 3, 4)}
    t, norm = et.official_t_early(by_t, T=4, lam=0.6, candidates=(2, 3))
    PT = [_softmax([sum(OUT[s][n][c] for s in range(4)) / 4 for c in range(2)]) for n in range(2)]
    kls = []
    for tt in (2, 3):
        Pt = [_softmax([sum(OUT[s][n][c] for s in range(tt)) / tt for c in range(2)]) for n in range(2)]
        kls.append(sum(_kl(PT[n], Pt[n]) for n in range(2)) / 4)  # KLDivLoss default: mean over N*C
    assert norm == pytest.approx([k / max(kls) for k in kls])
    assert t == next((c for c, v in zip((2, 3), norm) if v < 0.6), 4)


def _tiny_snn():
    torch.manual_seed(0)
    return models.build("vgg11", 10, 1, 8, width=0.0625)


def test_step_outputs_eval_mode_leaves_model_untouched():
    net = _tiny_snn()
    net.train()
    x = torch.rand(7, 1, 8, 8)
    ds = torch.utils.data.TensorDataset(x, torch.zeros(7, dtype=torch.long))
    # give BatchNorm non-trivial running statistics
    net(x.unsqueeze(0).repeat(3, 1, 1, 1, 1))
    functional.reset_net(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for train_mode in (False, True):
        out = et.step_outputs(net, ds, T=3, batch_size=4, train_mode=train_mode)
        assert out.shape == (3, 7, 10)
        assert net.training
        for k, v in net.state_dict().items():
            assert torch.equal(v, before[k]), k
    net.eval()
    with torch.no_grad():
        ref = net(x.unsqueeze(0).repeat(3, 1, 1, 1, 1))
    functional.reset_net(net)
    assert torch.allclose(et.step_outputs(net, ds, T=3, batch_size=4), ref, atol=1e-6)
    t, curve = et.find_t_early(net, ds, T=3, lam=0.6)
    assert 2 <= t <= 3 and curve.shape == (2,)


@pytest.mark.parametrize("call, name", [
    (lambda: et.normalized_divergence(torch.zeros(1, 4, 3)), "outputs"),
    (lambda: et.normalized_divergence(torch.zeros(4, 3)), "outputs"),
    (lambda: et.normalized_divergence(torch.zeros(2, 4, 3, 1)), "outputs"),
    (lambda: et.normalized_divergence(torch.tensor([[[float("nan")]], [[0.0]]])), "outputs"),
    (lambda: et.normalized_divergence(torch.zeros(3, 2, 2), metric="l2"), "metric"),
    (lambda: et.normalized_divergence(torch.zeros(3, 2, 2), direction="reverse"), "direction"),
    (lambda: et.select_t_early([1.0, 0.0], -0.1), "lam"),
    (lambda: et.select_t_early([1.0, 0.0], 1.5), "lam"),
    (lambda: et.select_t_early([1.0, 0.0], float("nan")), "lam"),
    (lambda: et.select_t_early([[1.0, 0.0]], 0.6), "curve"),
    (lambda: et.select_t_early([], 0.6), "curve"),
    (lambda: et.find_t_early(None, None, T=1), "T"),
    (lambda: et.find_t_early(None, None, T=5, lam=2.0), "lam"),
    (lambda: et.step_outputs(None, None, T=1), "T"),
    (lambda: et.official_t_early({}, T=5, candidates=(2, 5)), "candidates"),
    (lambda: et.official_t_early({5: torch.zeros(5, 1, 2)}, T=5), "outputs_by_t"),
])
def test_bad_input_raises_naming_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name}=.*allowed values"):
        call()
