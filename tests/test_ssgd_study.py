"""ssgd study code against independent references: E.4 loss by hand, init bounds, the conv layer against
the fully connected dense loop (1x1 kernel), Eq. 17 by hand, Proposition 1 / Appendix C, the latency code,
exact resume from the per-epoch checkpoint, and claims that fail on other data."""

import math
from dataclasses import replace

import pytest
import torch

from snnlab.grad import sparse_backward as sb
from snnlab.studies.ssgd import claims, errata, gradient, inputs, training as tr

torch.set_num_threads(1)


def test_loss_terms_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0])
    s = torch.zeros(3, 2, 2)
    s[:, 0, 0] = 1  # sample 0: neuron 0 fires 3 times, neuron 1 silent; sample 1 silent
    lt = tr.loss_terms(logits, y, [s], lam_low=100, nu_low=0.001, lam_up=0.06, nu_up=1.0)
    ce = -(math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(1 / (1 + math.e))) / 2
    low = (100 / 2 * 0.001 ** 2 * 1 + 100 / 2 * 0.001 ** 2 * 2) / 2
    up = (0.06 * max(0, 1.5 - 1) + 0) / 2
    assert float(lt["ce"]) == pytest.approx(ce, rel=1e-6)
    assert float(lt["low"]) == pytest.approx(low, rel=1e-6)
    assert float(lt["up"]) == pytest.approx(up, rel=1e-6)
    pr = tr.loss_terms(logits, y, [s], 100, 0.001, 0.06, 1.0, signs="printed")
    assert float(pr["total"]) == pytest.approx(-(ce + low + up), rel=1e-6)


def test_printed_up_regulariser_rewards_activity():
    s = torch.ones(4, 1, 3, requires_grad=True)  # count 4 > nu_up
    tr.loss_terms(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), [s], 0, 0.001, 0.06, 1.0, "printed")["total"].backward()
    assert bool((s.grad < 0).all())  # descent raises the spikes
    s.grad = None
    tr.loss_terms(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), [s], 0, 0.001, 0.06, 1.0)["total"].backward()
    assert bool((s.grad > 0).all())


@pytest.mark.parametrize("init,bound", [("printed", lambda n: math.sqrt(n)), ("official_uniform", lambda n: 1 / math.sqrt(n))])
def test_uniform_inits_bounds(init, bound):
    w = tr.init_weights([400, 300], init, 0.9, torch.Generator().manual_seed(0))[0]
    m = float(w.detach().abs().max())
    assert 0.99 * bound(400) <= m <= bound(400)


def test_official_normal_init_std():
    alpha = math.exp(-0.1)
    w = tr.init_weights([400, 500], "official", alpha, torch.Generator().manual_seed(0))[0]
    assert float(w.std()) == pytest.approx(20 * (1 - alpha) / 20, rel=0.02)


def test_conv_lif_1x1_equals_dense_loop():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(12, 2, 3, 2, 2, generator=g) < 0.3).double()
    w = torch.randn(4, 3, generator=g, dtype=torch.float64)
    wc = w.reshape(4, 3, 1, 1).clone().requires_grad_()
    wd = w.t().clone().requires_grad_()
    s1, v1 = tr.conv_lif(x, wc, 0.8, 1.0, 0.3, 10.0)  # [T, B, 4, 2, 2]
    xf = x.permute(0, 1, 3, 4, 2).reshape(12, 8, 3)
    s2, v2 = sb.lif_layer(xf, wd, 0.8, 1.0, 0.3, 10.0, backward="dense")
    v1f = v1.permute(0, 1, 3, 4, 2).reshape(12, 8, 4)
    assert torch.allclose(v1f, v2)
    grad = torch.randn(12, 8, 4, generator=g, dtype=torch.float64)
    (s1.permute(0, 1, 3, 4, 2).reshape(12, 8, 4) * grad).sum().backward()
    (s2 * grad).sum().backward()
    assert torch.allclose(wc.grad.reshape(4, 3).t(), wd.grad)


def test_eq17_printed_leak_by_hand():
    x = torch.zeros(4, 1, 1)
    x[0] = 1
    w = torch.tensor([[0.5]])
    v, _, _ = errata.simulate_leak(x, w, 0.9, sign=-1.0)
    assert v.flatten().tolist() == pytest.approx([0.5, -0.45, 0.405, -0.3645])
    res = errata.leak_sign(x, w, 0.9)
    assert res["printed"]["flip_fraction"] == 1.0 and res["meaningful"]["flip_fraction"] == 0.0


def test_prop1_and_appendix_c():
    assert gradient.prop1_check(T=50, seed=1)["max_diff"] < 1e-12
    w = gradient.walk_check([1, 3, 6, 8], [3, 5, 6], 0.9, {1: 0.1, 3: 0.2, 6: 0.3, 8: 0.4})
    assert w["written"] == [6, 5, 3] and w["max_diff"] < 1e-12
    assert w["brute"][5] == pytest.approx(0.3 + 0.9 ** 2 * 0.4)


def test_latency_code_matches_hand_formula():
    img, s = inputs.sample("digits", 100, 1.0, index=3)
    res = inputs.check_latency(img, s, 1.0)
    assert res["mismatches"] == 0 and res["max_spikes_per_input"] <= 1


def test_sparse_network_gradients_equal_dense_band():
    spec = tr.Spec(T=10, dt=10.0, hidden=(20, 20), max_train=16)
    model, x, y = gradient.probe(spec, 16)
    assert gradient.sparse_equals_dense_band(model, x, y, 0.2) < 1e-9


def test_training_resumes_exactly(tmp_path):
    spec = tr.Spec(T=8, dt=12.0, hidden=(16,), epochs=2, batch_size=32, max_train=64, max_test=32)
    data = tr.load_data(spec)
    full = tr._fit(spec, *data, None, False)
    tr._fit(replace(spec, epochs=1), *data, str(tmp_path), False)  # interrupted after one epoch
    resumed = tr._fit(spec, *data, str(tmp_path), False)
    assert resumed["history"]["test_acc"] == full["history"]["test_acc"]
    assert all(torch.equal(a, b) for a, b in zip(resumed["weights"], full["weights"]))


def _hist(acc, loss):
    return {"history": {"test_acc": [acc], "train_loss": [loss], "train_rho": [[0.01, 0.01]]}}


def test_claims_can_fail():
    good = {"d": {"dense": _hist(0.8, 1.0), "sparse": _hist(0.8, 1.0)}}
    bad = {"d": {"dense": _hist(0.8, 1.0), "sparse": _hist(0.6, 1.0)}}
    assert claims.training_parity(good).passed and not claims.training_parity(bad).passed
    flat = [{"rho_measured": r, "ratios": {"backward_speedup_vs_dense": 10.0, "backward_speedup_vs_spikingjelly": 3.0}}
            for r in (0.01, 0.1)]
    assert not claims.speedup_grows_as_activity_falls(flat).passed
    assert claims.erratum_e4_cross_entropy(0.1, 0.8, 10).passed and not claims.erratum_e4_cross_entropy(0.5, 0.8, 10).passed
