"""Masks, layer-wise densities, magnitude / random masks, RigL and SRigL updates, the DST hook and
the operation counter, each against an independent reference (hand computation, dense sort,
brute force)."""

import math

import pytest
import torch
from torch import nn

from snnlab import data, train
from snnlab.core import models
from snnlab.sparsity import dst as sdst
from snnlab.sparsity import masks as smasks
from snnlab.sparsity import opcount
from snnlab.sparsity.masks import constant_fan_in_mask, fan_in_counts, is_constant_fan_in
from snnlab.studies.srigl import dst_runs
from spikingjelly.activation_based import functional


def _mlp(seed=0, hidden=(32, 16)):
    torch.manual_seed(seed)
    return models.build("mlp", 10, 1, 8, hidden=hidden, norm="none")


@pytest.fixture(scope="module")
def digits():
    tr, te = data.load("digits", "train"), data.load("digits", "test")
    return (torch.utils.data.TensorDataset(tr.tensors[0][:192], tr.tensors[1][:192]),
            torch.utils.data.TensorDataset(te.tensors[0][:64], te.tensors[1][:64]))


# --- selection and Masks ---------------------------------------------------------------------------


def test_prunable_parameters_order_and_exclusions():
    net = _mlp()
    assert list(smasks.prunable_parameters(net)) == ["0.1.weight", "0.3.weight", "1.0.weight"]
    assert list(smasks.prunable_parameters(net, exclude_first=True)) == ["0.3.weight", "1.0.weight"]
    assert list(smasks.prunable_parameters(net, exclude_first=True, exclude_last=True)) == ["0.3.weight"]
    vgg = models.build("vgg11", 10, 1, 8, width=0.0625)
    names = list(smasks.prunable_parameters(vgg))
    convs = [n for n, m in vgg.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert names == [f"{n}.weight" for n in convs] and len(names) == 9
    with pytest.raises(ValueError, match="norm='sws'"):
        smasks.prunable_parameters(models.build("mlp", 10, 1, 8, norm="sws"))
    with pytest.raises(ValueError, match="names="):
        smasks.prunable_parameters(net, names=["0.1.bias"])


def test_masks_apply_counts_fan_in():
    net = _mlp()
    g = torch.Generator().manual_seed(1)
    params = smasks.prunable_parameters(net)
    masks = smasks.Masks({k: torch.rand(p.shape, generator=g) < 0.3 for k, p in params.items()})
    masks.apply(net)
    for k, p in params.items():
        assert torch.all(p[~masks[k]] == 0) and torch.all(p[masks[k]] != 0)
        assert masks.counts()[k] == int(masks[k].sum())
        assert torch.equal(masks.fan_in(k), masks[k].sum(1))
    total = sum(int(m.sum()) for m in masks.values())
    assert masks.density() == pytest.approx(total / sum(p.numel() for p in params.values()))
    assert smasks.Masks.from_weights(params).counts() == masks.counts()
    back = smasks.Masks.from_state_dict(masks.state_dict())
    assert all(torch.equal(back[k], masks[k]) for k in masks)


def _masked_loop(opt_name, hook_on):
    net = _mlp(hidden=(16,))
    masks = smasks.random_mask(net, 0.8, seed=3)
    hook = smasks.MaskHook(masks, net)
    params = [p for p in net.parameters()]
    opt = (torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-2) if opt_name == "sgd"
           else torch.optim.Adam(params, lr=0.05, weight_decay=1e-2))
    x = torch.rand(3, 8, 1, 8, 8)
    y = torch.randint(0, 10, (8,))
    for step in range(6):
        opt.zero_grad()
        functional.reset_net(net)
        train.bptt_step(net, x, y, train.ce_loss)
        if hook_on:
            hook.after_backward(net, step)
        opt.step()
        if hook_on:
            hook.after_step(net, step)
    return net, masks, opt


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_masked_weights_stay_zero_through_optimiser(opt_name):
    net, masks, opt = _masked_loop(opt_name, hook_on=True)
    params = dict(net.named_parameters())
    for k, m in masks.items():
        assert torch.all(params[k][~m] == 0)
        st = opt.state[params[k]]
        buf = st["momentum_buffer"] if opt_name == "sgd" else st["exp_avg"]
        assert torch.all(buf[~m] == 0)  # gradients of pruned weights were zeroed before the step
    # without the hook, momentum / weight decay / Adam revive pruned weights: the test can fail
    net, masks, _ = _masked_loop(opt_name, hook_on=False)
    params = dict(net.named_parameters())
    assert any(torch.any(params[k][~m] != 0) for k, m in masks.items())


def test_mask_hook_through_fit(digits):
    tr, te = digits
    net = _mlp()
    masks = smasks.magnitude_mask(net, 0.9)
    before = {k: p.detach().clone() for k, p in smasks.prunable_parameters(net).items()}
    train.fit(net, tr, None, train.TrainConfig(epochs=2, lr=1e-2, T=2, batch_size=64, weight_decay=1e-3,
                                               optimizer="sgd", progress=False), hooks=[smasks.MaskHook(masks, net)])
    for k, p in smasks.prunable_parameters(net).items():
        assert torch.all(p[~masks[k]] == 0) and not torch.equal(p[masks[k]], before[k][masks[k]])


# --- densities ---------------------------------------------------------------------------------------


def test_erk_hand_computed():
    shapes = {"a": (10, 20), "b": (5, 10)}
    # raw: a = 30/200, b = 15/50; N = 250. sparsity 0.5: eps = 125 / (0.15*200 + 0.3*50) = 125/45
    d = smasks.erk_densities(shapes, 0.5)
    assert d["a"] == pytest.approx(0.15 * 125 / 45) and d["b"] == pytest.approx(0.3 * 125 / 45)
    # sparsity 0.2: eps = 200/45 gives b 1.33 > 1 -> b dense, eps = (200 - 50) / 30 = 5, a = 0.75
    d = smasks.erk_densities(shapes, 0.2)
    assert d == pytest.approx({"a": 0.75, "b": 1.0})
    conv = {"c": (4, 2, 3, 3), "l": (10, 4)}  # raw c = 12/72, l = 14/40; N = 112
    d = smasks.erk_densities(conv, 0.8)
    eps = 0.2 * 112 / (12 / 72 * 72 + 14 / 40 * 40)
    assert d == pytest.approx({"c": eps * 12 / 72, "l": eps * 14 / 40})


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.8, 0.9, 0.95, 0.99])
def test_erk_and_budgets_sum_to_target(sparsity):
    shapes = {"c1": (16, 3, 3, 3), "c2": (32, 16, 3, 3), "c3": (64, 32, 3, 3), "fc": (10, 64), "l": (100, 640)}
    n = {k: math.prod(s) for k, s in shapes.items()}
    for dist in ("erk", "uniform"):
        d = smasks.layer_densities(shapes, sparsity, dist)
        assert all(0 < v <= 1 + 1e-12 for v in d.values())
        assert sum(d[k] * n[k] for k in shapes) == pytest.approx((1 - sparsity) * sum(n.values()), rel=1e-9)
        K = smasks.layer_budgets(shapes, sparsity, dist)
        assert sum(K.values()) == round((1 - sparsity) * sum(n.values()))
        assert all(1 <= K[k] <= n[k] and abs(K[k] - d[k] * n[k]) <= 1 for k in shapes)
    erk = smasks.erk_densities(shapes, sparsity)
    if sparsity > 0.5:  # small layers are denser under ERK
        assert erk["c1"] > erk["c3"] and erk["fc"] > erk["l"]


# --- one-shot masks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.97])
def test_magnitude_global_and_local_against_dense_sort(sparsity):
    net = _mlp()
    params = smasks.prunable_parameters(net)
    allw = torch.cat([p.detach().abs().reshape(-1) for p in params.values()])
    K = round((1 - sparsity) * allw.numel())
    thr = allw.sort(descending=True).values[K - 1]
    g = smasks.magnitude_mask(net, sparsity, scope="global")
    assert sum(g.counts().values()) == K
    for k, p in params.items():
        assert torch.equal(g[k], p.detach().abs() >= thr)
    loc = smasks.magnitude_mask(net, sparsity, scope="local")
    for k, p in params.items():
        kk = round((1 - sparsity) * p.numel())
        t = p.detach().abs().reshape(-1).sort(descending=True).values[kk - 1]
        assert torch.equal(loc[k], p.detach().abs() >= t) and int(loc[k].sum()) == kk
    # with previous masks only active weights compete
    g2 = smasks.magnitude_mask(net, min(0.99, sparsity + 0.02), masks=g)
    assert all(torch.all(~g2[k] | g[k]) for k in g)


def test_random_mask_counts_and_seed():
    net = _mlp()
    shapes = {k: tuple(p.shape) for k, p in smasks.prunable_parameters(net).items()}
    for dist in ("uniform", "erk"):
        m = smasks.random_mask(net, 0.9, dist, seed=4)
        assert m.counts() == smasks.layer_budgets(shapes, 0.9, dist)
        assert all(torch.equal(m[k], smasks.random_mask(net, 0.9, dist, seed=4)[k]) for k in m)
        assert not all(torch.equal(m[k], smasks.random_mask(net, 0.9, dist, seed=5)[k]) for k in m)
    c = smasks.random_mask(net, 0.9, "erk", seed=4, constant_fan_in=True)
    assert all(is_constant_fan_in(v) for v in c.values())


# --- schedule and single-layer updates -------------------------------------------------------------------


def test_cosine_schedule():
    a, t_end = 0.3, 750.0
    for t in [0, 1, 100, 374, 375, 500, 749]:
        assert sdst.cosine_drop_fraction(t, a, t_end) == pytest.approx(a / 2 * (1 + math.cos(math.pi * t / t_end)))
    assert sdst.cosine_drop_fraction(0, a, t_end) == pytest.approx(a)
    assert sdst.cosine_drop_fraction(375, a, t_end) == pytest.approx(a / 2)
    assert sdst.cosine_drop_fraction(750, a, t_end) == 0 and sdst.cosine_drop_fraction(900, a, t_end) == 0
    dst = sdst.DST(_mlp(), method="rigl", sparsity=0.9, delta_t=100, total_steps=1000, alpha=a)
    assert [s for s in range(1001) if dst.is_update_step(s)] == [100, 200, 300, 400, 500, 600, 700]
    assert dst.drop_fraction(500) == pytest.approx(a / 2 * (1 + math.cos(math.pi * 500 / 750)))


def _layer(seed, shape=(12, 20), density=0.25):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g, dtype=torch.float64)
    grad = torch.randn(shape, generator=g, dtype=torch.float64)
    mask = torch.rand(shape, generator=g) < density
    return w * mask, grad, mask


@pytest.mark.parametrize("seed", range(5))
def test_rigl_update_against_brute_force(seed):
    w, g, mask = _layer(seed)
    f = 0.3
    new = sdst.rigl_update(w, g, mask, f)
    n = int(mask.sum())
    n_drop = int(f * n)
    assert int(new.sum()) == n
    active = [(abs(w.view(-1)[i].item()), i) for i in range(w.numel()) if mask.view(-1)[i]]
    kept = {i for _, i in sorted(active, reverse=True)[: n - n_drop]}
    rest = sorted(((abs(g.view(-1)[i].item()), i) for i in range(w.numel()) if i not in kept), reverse=True)
    grown = {i for _, i in rest[:n_drop]}
    assert set(torch.nonzero(new.view(-1)).view(-1).tolist()) == kept | grown


@pytest.mark.parametrize("seed", range(5))
def test_set_update_keeps_rigl_drop_and_grows_uniformly(seed):
    w, g, mask = _layer(seed)
    f = 0.3
    n, n_drop = int(mask.sum()), int(f * int(mask.sum()))
    active = [(abs(w.view(-1)[i].item()), i) for i in range(w.numel()) if mask.view(-1)[i]]
    kept = {i for _, i in sorted(active, reverse=True)[: n - n_drop]}
    outside = [i for i in range(w.numel()) if i not in kept]
    counts = torch.zeros(w.numel(), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    draws = 400
    for _ in range(draws):
        new = sdst.set_update(w, mask, f, gen)
        on = set(torch.nonzero(new.view(-1)).view(-1).tolist())
        assert int(new.sum()) == n and kept <= on  # the same drop as RigL, same count
        counts += new.view(-1).double()
    # each position outside the kept set is grown with probability n_drop / len(outside)
    p_hat = counts[outside] / draws
    p = n_drop / len(outside)
    assert abs(p_hat.mean().item() - p) < 1e-9  # exactly n_drop grown each draw
    assert (p_hat - p).abs().max().item() < 5 * math.sqrt(p * (1 - p) / draws)
    assert not torch.equal(sdst.set_update(w, mask, f, gen), sdst.set_update(w, mask, f, gen))


@pytest.mark.parametrize("seed", range(5))
def test_srigl_update_constant_fan_in_without_ablation(seed):

    g0 = torch.Generator().manual_seed(seed)
    mask = constant_fan_in_mask(12, 20, 5, g0)
    w = torch.randn(12, 20, generator=g0, dtype=torch.float64) * mask
    g = torch.randn(12, 20, generator=g0, dtype=torch.float64)
    new, active = sdst.srigl_update(w, g, mask, 0.3, budget=60, ablation=False)
    assert active.all() and torch.all(new.sum(1) == 5)
    # reference: the layer-level kept set (top |w| of the 60 active, 60 - 18 kept) clipped per neuron
    n_keep = 60 - int(0.3 * 60)
    flat = torch.where(mask, w.abs(), torch.full_like(w, -1.0)).view(-1)
    kept = torch.zeros(240, dtype=torch.bool)
    kept[flat.sort(descending=True, stable=True).indices[:n_keep]] = True
    kept = kept.view(12, 20)
    for i in range(12):
        ki = set(torch.nonzero(kept[i]).view(-1).tolist())
        assert ki <= set(torch.nonzero(new[i]).view(-1).tolist())  # every kept weight survives (<= k of them)
        grown = set(torch.nonzero(new[i]).view(-1).tolist()) - ki
        cand = sorted(((abs(g[i, j].item()), j) for j in range(20) if j not in ki), reverse=True)
        assert grown == {j for _, j in cand[: 5 - len(ki)]}
        dropped = mask[i] & ~new[i]
        born = new[i] & ~mask[i]
        assert int(dropped.sum()) == int(born.sum())  # each neuron drops and regrows the same count


def test_srigl_ablation_hand_case():
    # 4 neurons x 10 inputs, fan-in 3, budget 12, gamma 0.7 -> threshold max(1, floor(0.7 * 3)) = 2
    mask = torch.zeros(4, 10, dtype=torch.bool)
    mask[:, :3] = True
    w = torch.zeros(4, 10, dtype=torch.float64)
    w[:, :3] = torch.tensor([[5.0, 4, 3], [6, 5, 4], [7, 6, 5], [0.1, 0.2, 0.3]])
    g = torch.zeros(4, 10, dtype=torch.float64)
    g[0, 5], g[1, 6], g[2, 7], g[3, 8] = 9.0, 8.0, 7.0, 0.5
    # f = 0.25: n = 12, drop 3 -> keep the 9 largest |w| (neurons 0-2 fully), grow 3 by |g|:
    # (0,5), (1,6), (2,7). Salient counts: 4, 4, 4, 0 -> neuron 3 ablated; k = 12 // 3 = 4
    new, active = sdst.srigl_update(w, g, mask, 0.25, budget=12, gamma_sal=0.7, ablation=True)
    assert active.tolist() == [True, True, True, False]
    assert new[3].sum() == 0 and new[:3].sum(1).tolist() == [4, 4, 4]
    assert new[0, :3].all() and new[0, 5] and new[1, 6] and new[2, 7]
    # gamma 0 still ablates neurons with no salient weight (minimum 1)
    _, active0 = sdst.srigl_update(w, g, mask, 0.25, budget=12, gamma_sal=0.0, ablation=True)
    assert active0.tolist() == [True, True, True, False]
    # a revived neuron: the gradient of an ablated neuron makes it salient again
    g2 = g.clone()
    g2[3, 9] = 100.0
    _, active2 = sdst.srigl_update(w, g2, mask, 0.25, budget=12, gamma_sal=0.3, ablation=True)
    assert active2[3]


# --- the DST hook end to end -------------------------------------------------------------------------------


class _Check:
    """Runs after the DST hook: checks every invariant after each update and each step."""

    def __init__(self, dst):
        self.dst, self.updates, self.itop = dst, 0, [dst.itop()]

    def after_backward(self, model, step):
        if not self.dst.is_update_step(step):
            return
        self.updates += 1
        params = dict(model.named_parameters())
        h = self.dst.history[-1]
        assert h["step"] == step
        for k in self.dst.names:
            m = self.dst.masks[k]
            assert torch.all(params[k][~m] == 0)
            assert torch.all(params[k].grad[~m] == 0)
            if self.dst.method in ("rigl", "set"):
                assert int(m.sum()) == self.dst.budgets[k]
            else:
                assert is_constant_fan_in(m, allow_empty=True)
                fi = fan_in_counts(m)
                n_act = int((fi > 0).sum())
                assert torch.equal(fi > 0, self.dst.active[k].to(fi.device))  # ablated rows are empty
                assert h["width"][k] == n_act and h["fan_in"][k]["std"] == 0
                ablated_layer = self.dst.ablation and k != self.dst.names[-1]  # the output layer is kept
                if ablated_layer or self.dst.budgets[k] >= m.shape[0]:
                    assert int(m.sum()) == n_act * (self.dst.budgets[k] // n_act)
                if not self.dst.ablation or k == self.dst.names[-1]:
                    assert n_act == m.shape[0]
        self.itop.append(self.dst.itop())

    def after_step(self, model, step):
        params = dict(model.named_parameters())
        for k in self.dst.names:
            assert torch.all(params[k][~self.dst.masks[k]] == 0)


@pytest.mark.parametrize("method,ablation,sparsity,opt", [
    ("rigl", False, 0.9, "adam"), ("set", False, 0.9, "sgd"), ("srigl", False, 0.9, "sgd"), ("srigl", True, 0.97, "adam"),
    ("srigl", True, 0.99, "sgd")])
def test_dst_invariants_during_training(digits, method, ablation, sparsity, opt):
    tr, _ = digits
    net = _mlp()
    steps = dst_runs.steps_per_epoch(tr, 32) * 3
    dst = sdst.DST(net, method=method, sparsity=sparsity, delta_t=2, total_steps=steps, ablation=ablation,
                      seed=1)
    check = _Check(dst)
    d0 = dst.masks.density()
    prev = {}

    class Snap:  # runs before DST: the masks before an update
        def after_backward(self, model, step):
            prev.update({k: v.clone() for k, v in dst.masks.items()})

    class Born:  # runs after DST: newly grown connections start at 0
        def after_backward(self, model, step):
            if dst.is_update_step(step):
                params = dict(model.named_parameters())
                for k in dst.names:
                    assert torch.all(params[k].detach()[dst.masks[k] & ~prev[k]] == 0)

    hist = train.fit(net, tr, None, train.TrainConfig(epochs=3, lr=5e-3, T=2, batch_size=32, optimizer=opt,
                                                      weight_decay=1e-3, progress=False),
                     hooks=[Snap(), dst, Born(), check])
    assert check.updates == len(dst.history) - 1 == len([s for s in range(steps) if dst.is_update_step(s)]) > 5
    assert all(b >= a for a, b in zip(check.itop, check.itop[1:]))  # ITOP is monotone
    assert check.itop[-1] > check.itop[0] == pytest.approx(d0)  # starts at the density; regrowth explores
    assert "itop" in hist[-1]
    if method == "srigl" and ablation and sparsity >= 0.99:
        widths = dst.widths()
        assert widths[dst.names[0]] < net[0][1].weight.shape[0]  # ablation removes neurons at 99%


def test_dst_fan_in_spread_rigl_vs_srigl(digits):
    tr, _ = digits
    out = {}
    for method in ("rigl", "srigl"):
        net = _mlp()
        dst = sdst.DST(net, method=method, sparsity=0.9, delta_t=2, total_steps=30, ablation=False, seed=0)
        train.fit(net, tr, None, train.TrainConfig(epochs=5, lr=1e-2, T=2, batch_size=32, progress=False),
                  hooks=[dst])
        out[method] = [h["fan_in"][dst.names[0]] for h in dst.history]
    assert all(f["std"] == 0 for f in out["srigl"])
    assert out["rigl"][-1]["std"] > 0 and out["rigl"][-1]["max"] > out["rigl"][-1]["mean"]


def test_dst_same_seed_same_masks():
    a = sdst.DST(_mlp(), method="srigl", sparsity=0.9, delta_t=5, total_steps=50, seed=3)
    b = sdst.DST(_mlp(), method="srigl", sparsity=0.9, delta_t=5, total_steps=50, seed=3)
    c = sdst.DST(_mlp(), method="srigl", sparsity=0.9, delta_t=5, total_steps=50, seed=4)
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert not all(torch.equal(a.masks[k], c.masks[k]) for k in a.masks)


def test_set_explores_more_than_rigl_and_resumes_its_draws(digits):
    """Random regrowth reaches more distinct weights than gradient regrowth (Liu et al. 2021's ITOP
    argument), and SET's generator is part of the resumable state."""
    tr, _ = digits
    itop = {}
    for method in ("rigl", "set"):
        net = _mlp()
        dst = sdst.DST(net, method=method, sparsity=0.9, delta_t=2, total_steps=40, seed=0)
        train.fit(net, tr, None, train.TrainConfig(epochs=3, lr=5e-3, T=2, batch_size=32, progress=False),
                  hooks=[dst])
        itop[method] = dst.itop()
    assert itop["set"] > itop["rigl"] > 0.1
    a = sdst.DST(_mlp(), method="set", sparsity=0.9, delta_t=1, total_steps=50, seed=2)
    state = a.state_dict()
    b = sdst.DST(_mlp(), method="set", sparsity=0.9, delta_t=1, total_steps=50, seed=9)
    b.load_state_dict(state)
    w = torch.randn(a.shapes[a.names[0]], dtype=torch.float64)
    assert torch.equal(sdst.set_update(w, a.masks[a.names[0]], 0.3, a._grow_gen),
                       sdst.set_update(w, b.masks[b.names[0]], 0.3, b._grow_gen))


def test_min_salient_table_matches_the_ablation_rule_by_hand():
    net = _mlp()  # 64 -> 32 -> 16 -> 10 (see _mlp)
    shapes = {k: tuple(p.shape) for k, p in smasks.prunable_parameters(net).items()}
    budgets = smasks.layer_budgets(shapes, 0.9, "erk")
    t = dst_runs.min_salient_table(net, 0.9, [0.0, 0.5, 1.0])
    for (k, shp), (_, row) in zip(shapes.items(), t.iterrows()):
        per = budgets[k] // shp[0]
        assert row["K/n_out"] == per
        assert row["gamma=0"] == 1  # the minimum of one
        assert row["gamma=1"] == max(1, budgets[k] // shp[0])
        assert row["gamma=0.5"] == max(1, math.floor(0.5 * budgets[k] / shp[0]))
    assert t["ablated"].tolist() == [True] * (len(shapes) - 1) + [False]
    # the rule srigl_update applies: a neuron with threshold - 1 salient weights is ablated
    assert sdst.ablation_threshold(12, 4, 0.7) == 2 and sdst.ablation_threshold(12, 4, 0.0) == 1


def test_sparse_init_variance_per_neuron():
    net = _mlp(hidden=(512,))
    dst = sdst.DST(net, method="rigl", sparsity=0.95, delta_t=5, total_steps=50, distribution="uniform")
    w = dict(net.named_parameters())["0.1.weight"].detach().double()
    m = dst.masks["0.1.weight"]
    k = m.sum(1, keepdim=True).clamp(min=1).double()
    # torch's default init has Var = 1 / (3 fan_in); sparse init: Var = 1 / (3 k_i) on each neuron
    z = (w * k.sqrt() * math.sqrt(3))[m]
    assert z.var().item() == pytest.approx(1.0, rel=0.1) and torch.all(w[~m] == 0)


@pytest.mark.parametrize("kw,name", [
    (dict(sparsity=1.0), "sparsity"), (dict(sparsity=-0.1), "sparsity"), (dict(delta_t=0), "delta_t"),
    (dict(method="snip"), "method"), (dict(distribution="normal"), "distribution"), (dict(gamma_sal=1.5), "gamma_sal"),
    (dict(gamma_sal=-0.1), "gamma_sal"), (dict(total_steps=0), "total_steps"), (dict(alpha=2.0), "alpha"),
    (dict(stop_fraction=0.0), "stop_fraction"), (dict(ablation="yes"), "ablation")])
def test_dst_bad_input(kw, name):
    with pytest.raises(ValueError, match=rf"{name}="):
        sdst.DST(_mlp(), **{"method": "rigl", "sparsity": 0.9, "delta_t": 10, "total_steps": 100, **kw})


def test_bad_input_elsewhere():
    net = _mlp()
    with pytest.raises(ValueError, match="scope="):
        smasks.magnitude_mask(net, 0.5, scope="layer")
    with pytest.raises(ValueError, match="sparsity="):
        smasks.magnitude_mask(net, 1.0)
    with pytest.raises(ValueError, match="distribution="):
        smasks.random_mask(net, 0.5, distribution="normal")
    with pytest.raises(ValueError, match="sparsity="):
        smasks.erk_densities({"a": (3, 4)}, 1.2)
    with pytest.raises(ValueError, match="backward="):
        opcount.train_step_ops([], backward="3x")
    with pytest.raises(ValueError, match="method="):
        dst_runs.train_sparse({}, None, None, train.TrainConfig(), method="snip")


# --- train_sparse: cache and exact resume ----------------------------------------------------------------------


def test_train_sparse_cache_and_resume(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNLAB_RESULTS", str(tmp_path))
    tr, te = digits
    tr.name, te.name = "digits-sub", "digits-sub"
    mk = dict(name="mlp", num_classes=10, in_channels=1, input_size=8, hidden=(24,), norm="none")
    cfg = train.TrainConfig(epochs=3, lr=5e-3, T=2, batch_size=32, progress=False)
    kw = dict(method="srigl", sparsity=0.9, ablation=True, delta_t=3)
    full = dst_runs.train_sparse(mk, tr, te, cfg, cache=False, **kw)
    orig = sdst.DST.after_epoch

    def crash(self, epoch, model, record):
        orig(self, epoch, model, record)
        if epoch == 2:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(sdst.DST, "after_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        dst_runs.train_sparse(mk, tr, te, cfg, **kw)
    monkeypatch.setattr(sdst.DST, "after_epoch", orig)
    resumed = dst_runs.train_sparse(mk, tr, te, cfg, **kw)
    cached = dst_runs.train_sparse(mk, tr, te, cfg, **kw)
    for r in (resumed, cached):
        assert r.acc == full.acc and r.fan_in == full.fan_in and r.dst_history == full.dst_history
        assert all(torch.equal(r.masks[k], full.masks[k]) for k in full.masks)


# --- operation counts ---------------------------------------------------------------------------------------------


def test_count_ops_hand_count_linear_and_conv():
    lin = nn.Linear(3, 2, bias=False)
    conv = nn.Conv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 2], [0, 3, 0]]))
        conv.weight.copy_(torch.tensor([[[[1.0, 0], [0, 1]]]]))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.lin = conv, lin

        def forward(self, x):  # x [T, B, 1, 3, 3]: the conv sees the analog input, the linear spikes
            T, B = x.shape[:2]
            h = self.conv(x.flatten(0, 1))  # [T*B, 1, 2, 2]
            s = (h.flatten(1)[:, :3] > 0).float()  # 3 "spikes" per step
            return self.lin(s).view(T, B, 2)

    x = torch.tensor([[[0.0, 0.5, 0], [0.7, 0, 0], [0, 0, 0.9]]]).view(1, 1, 3, 3)  # analog
    ds = torch.utils.data.TensorDataset(x, torch.tensor([0]))
    ops = {o.name: o for o in opcount.count_ops(Net(), ds, T=2)}
    # conv: 2 active weights x 4 output positions x 2 steps = 16 MACs (analog input: all counted)
    c = ops["conv.weight"]
    assert not c.spiking_input and c.macs == 16 and c.macs_dense == 32 and c.forward() == 16
    # conv output h = [[0 + 0, 0.5 + 0], [0.7 + 0, 0 + 0.9]] -> spikes s = (h > 0)[:3] = [0, 1, 1] each step
    # linear events per step: input 1 -> column 1 has 1 active weight, input 2 -> column 2 has 1: 2
    lo = ops["lin.weight"]
    assert lo.spiking_input and lo.events == 4 and lo.events_dense == 8 and lo.macs == 6 and lo.macs_dense == 12
    assert lo.input_rate == pytest.approx(2 / 3)
    assert opcount.forward_ops(list(ops.values())) == 16 + 4
    assert opcount.forward_ops(list(ops.values()), spikes=False) == 16 + 6
    assert opcount.forward_ops(list(ops.values()), dense=True) == 32 + 8


def test_training_ops_formulas():
    L = [opcount.LayerOps("a", (4, 4), 4, 16, False, 1.0, macs=40.0, macs_dense=160.0, events=0.0, events_dense=0.0),
         opcount.LayerOps("b", (4, 4), 2, 16, True, 0.2, macs=20.0, macs_dense=160.0, events=4.0, events_dense=32.0)]
    fS, fD = 40 + 4, 160 + 32
    assert opcount.train_step_ops(L) == 3 * fS
    assert opcount.train_step_ops(L, dense_grad=True) == 2 * fS + fD
    dT, cycles = 10, 7
    total = opcount.training_ops(L, steps=cycles * (dT + 1), updates=cycles)
    assert total / (cycles * (dT + 1)) == pytest.approx((3 * fS * dT + 2 * fS + fD) / (dT + 1))  # Evci et al.
    assert opcount.train_step_ops(L, backward="snn") == fS + (40 + 20) + fS
    assert opcount.train_step_ops(L, backward="snn", dense_grad=True) == fS + (40 + 20) + fD
    r = opcount.ratios(L, L, steps=100, updates=0)
    assert r == {"inference": 1.0, "training": 1.0}
    with pytest.raises(ValueError, match="updates="):
        opcount.training_ops(L, steps=5, updates=6)


def test_count_ops_on_spiking_mlp_matches_rate_formula(digits):
    _, te = digits
    net = _mlp()
    smasks.random_mask(net, 0.8, seed=0).apply(net)
    ops = opcount.count_ops(net, te, T=3)
    first, hidden = ops[0], ops[1]
    assert not first.spiking_input and first.macs == pytest.approx(3 * first.nnz)
    assert hidden.spiking_input and hidden.macs == pytest.approx(3 * hidden.nnz)
    # with the mask independent of the spikes, events ~ nnz * T * rate (exact in expectation)
    assert hidden.events_dense == pytest.approx(hidden.numel * 3 * hidden.input_rate)
    ev = train.evaluate(net, te, T=3)
    assert hidden.input_rate == pytest.approx(ev["firing_rate"][0])
