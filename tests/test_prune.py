"""Lottery-ticket pruning: exact pruned counts and the global threshold per IMP level, pruned
weights bit-exactly zero through SGD with momentum and weight decay (live ones never frozen),
rewinding that restores all state without aliasing (with the bias-aliasing bug as a negative
control), the IMP driver, the Early-Bird distance and detector by hand, SNIP against finite
differences, random and transferred tickets, and every bad input."""

import math

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from snnlab import train
from snnlab.core import models
from snnlab.sparsity.masks import MaskHook, Masks, prunable_parameters
from snnlab.sparsity import prune as pr


def _mlp(seed=0, norm="bn", spiking=True):
    torch.manual_seed(seed)
    return models.build("mlp", 10, 1, 4, hidden=(24, 12), norm=norm, spiking=spiking)


def _vgg(seed=0):
    torch.manual_seed(seed)
    return models.build("vgg11", 10, 1, 8, width=0.0625)


# --- sparsity levels ---------------------------------------------------------------------------


def test_level_sparsity_formula_and_paper_levels():
    assert [round(100 * pr.level_sparsity(0.25, k), 2) for k in (4, 8, 11, 14)] == [68.36, 89.99, 95.78, 98.22]
    assert [pr.levels_for(s) for s in pr.PAPER_LEVELS.values()] == [4, 8, 11, 14]
    # The paper's 68.30 / 89.91 / 95.69 / 98.13 % count every parameter of the official VGG16
    # (conv biases and BatchNorm too, utils.print_nonzeros), which are never pruned.
    cfg = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    w = sum(cin * c * 9 for cin, c in zip([3] + cfg[:-1], cfg)) + 512 * 10
    other = sum(3 * c for c in cfg) + 10
    got = [round(100 * pr.level_sparsity(0.25, k) * w / (w + other), 2) for k in (4, 8, 11, 14)]
    assert got == [round(pr.PAPER_LEVELS[k] * 100, 2) for k in (4, 8, 11, 14)]


# --- one prune level ---------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.8])
@pytest.mark.parametrize("scope", ["global", "local"])
def test_prune_level_exact_counts_and_threshold(p, scope):
    net = _vgg(1)
    params = {k: v.detach().clone() for k, v in prunable_parameters(net).items()}
    masks = None
    for level in range(1, 5):
        prev = masks if masks is not None else Masks.ones(params)
        masks = pr.prune_level(net, masks, p, scope)
        assert set(masks) == set(params)
        assert all(bool((~prev[k] & masks[k]).sum() == 0) for k in masks)  # never revives
        if scope == "global":
            alive = sum(prev.counts().values())
            assert sum(masks.counts().values()) == alive - round(p * alive)
            kept = torch.cat([params[k].abs()[masks[k]] for k in masks])
            cut = torch.cat([params[k].abs()[prev[k] & ~masks[k]] for k in masks])
            assert cut.max() <= kept.min()  # one threshold over all layers
        else:
            for k in masks:
                a = int(prev[k].sum())
                assert int(masks[k].sum()) == max(1, a - round(p * a))
                kept, cut = params[k].abs()[masks[k]], params[k].abs()[prev[k] & ~masks[k]]
                if cut.numel():
                    assert cut.max() <= kept.min()
    # the model itself is not changed by prune_level
    assert all(torch.equal(v, params[k]) for k, v in prunable_parameters(net).items())


def test_pruned_weights_stay_exactly_zero_and_live_ones_are_not_frozen():
    torch.manual_seed(0)
    net = _mlp()
    masks = pr.prune_level(net, None, 0.6)
    k0 = next(iter(masks))
    w = prunable_parameters(net)[k0]
    live = masks[k0].nonzero()[0].tolist()
    with torch.no_grad():
        w[tuple(live)] = 1e-8  # a tiny live weight: the official |w| < 1e-6 rule would freeze it
    hook = MaskHook(masks, net)
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    x, y = torch.rand(3, 16, 1, 4, 4), torch.randint(0, 10, (16,))
    start = {k: v.detach().clone() for k, v in prunable_parameters(net).items()}
    for step in range(40):
        opt.zero_grad()
        functional.reset_net(net)
        train.bptt_step(net, x + 0.3 * torch.randn_like(x), y, train.ce_loss)
        hook.after_backward(net, step)
        opt.step()
        hook.after_step(net, step)
    for k, p in prunable_parameters(net).items():
        assert torch.equal(p.detach()[~masks[k]], torch.zeros(int((~masks[k]).sum())))  # bit-exact
        assert not torch.equal(p.detach()[masks[k]], start[k][masks[k]])
    assert float(w.detach()[tuple(live)]) != 1e-8


def test_mask_hook_in_fit_keeps_zeros(tmp_path):
    net = _mlp(3)
    masks = pr.prune_level(net, None, 0.5, "local")
    ds = torch.utils.data.TensorDataset(torch.rand(64, 1, 4, 4), torch.randint(0, 10, (64,)))
    cfg = train.TrainConfig(epochs=3, lr=0.2, optimizer="sgd", weight_decay=5e-4, batch_size=16, T=2, progress=False)
    train.fit(net, ds, None, cfg, hooks=[MaskHook(masks, net)])
    for k, p in prunable_parameters(net).items():
        assert bool((p.detach()[~masks[k]] == 0).all()) and int((p.detach()[masks[k]] != 0).sum()) > 0


# --- rewinding ---------------------------------------------------------------------------------


def _train_steps(net, n=5, lr=0.3):
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    net.train()
    for _ in range(n):
        opt.zero_grad()
        functional.reset_net(net)
        train.bptt_step(net, torch.rand(2, 8, 1, 4, 4), torch.randint(0, 10, (8,)), train.ce_loss)
        opt.step()
    functional.reset_net(net)


def _buggy_restore(net, state):
    """The LTH-code bug: the snapshot's tensors become the parameters (biases here)."""
    for name, p in net.named_parameters():
        if "bias" in name:
            p.data = state[name]
        else:
            p.data = state[name].clone()


def _rewind_corrupts_snapshot(restore_fn):
    net = _mlp(2)
    _train_steps(net, 3)
    snap = pr.snapshot(net, epoch=3)
    reference = {k: v.clone() for k, v in snap.state.items()}
    _train_steps(net, 3)
    restore_fn(net, snap.state)
    _train_steps(net, 3)  # retraining after the rewind
    return any(not torch.equal(snap.state[k], reference[k]) for k in reference)


def test_restore_brings_back_all_state_without_aliasing():
    net = _mlp(2)
    _train_steps(net, 4)
    snap = pr.snapshot(net, epoch=4)
    ref = {k: v.clone() for k, v in net.state_dict().items()}
    assert any("running_mean" in k for k in ref) and any("bias" in k for k in ref)
    _train_steps(net, 4)
    changed = [k for k in ref if not torch.equal(net.state_dict()[k], ref[k])]
    assert any("running_var" in k for k in changed) and any("bias" in k for k in changed)
    masks = pr.prune_level(net, None, 0.5)
    pr.restore(net, snap, masks)
    for k, v in net.state_dict().items():
        expect = ref[k] * masks[k] if k in masks else ref[k]
        assert torch.equal(v, expect), k
    own = {t.data_ptr() for t in net.state_dict().values()}
    assert not own & {t.data_ptr() for t in snap.state.values()}
    assert not _rewind_corrupts_snapshot(lambda n, s: pr.restore(n, s))
    assert _rewind_corrupts_snapshot(_buggy_restore)  # the negative control: the test sees the bug


def test_rewind_hook_in_fit_and_retrain_schedules():
    net = _mlp(4)
    ds = torch.utils.data.TensorDataset(torch.rand(32, 1, 4, 4), torch.randint(0, 10, (32,)))
    cfg = train.TrainConfig(epochs=3, lr=0.1, optimizer="sgd", batch_size=16, T=2, progress=False)
    init = pr.snapshot(net)
    hook = pr.RewindHook(2, 3)
    train.fit(net, ds, None, cfg, hooks=[hook])
    assert hook.snapshot.epoch == 2
    k = "1.0.weight"
    assert not torch.equal(hook.snapshot.state[k], init.state[k])
    assert not torch.equal(hook.snapshot.state[k], net.state_dict()[k])
    assert pr.RewindHook(0, 3, net).snapshot.epoch == 0
    c = [(1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert pr.retrain_lrs(1.0, 4, 2, "resume") == pytest.approx(c[2:])
    assert pr.retrain_lrs(1.0, 4, 2, "fresh") == pytest.approx([1.0, 0.5])


# --- the IMP driver ----------------------------------------------------------------------------


@pytest.mark.parametrize("rewind", ["late", "init"])
def test_imp_driver_prunes_rewinds_and_retrains(rewind):
    net = _mlp(5)
    init = pr.snapshot(net)
    seen = []

    def train_fn(model, masks, start_epoch, hooks):
        seen.append(({k: v.clone() for k, v in model.state_dict().items()}, start_epoch, masks.clone(), "train"))
        for epoch in range(start_epoch, 4):
            for step in range(2):
                _train_with_hooks(model, hooks, step)
            for h in hooks:
                if hasattr(h, "after_epoch"):
                    h.after_epoch(epoch + 1, model, {})
        return {"trained_from": start_epoch}

    def final_fn(model, masks, start_epoch, hooks):
        seen.append(({k: v.clone() for k, v in model.state_dict().items()}, start_epoch, masks.clone(), "final"))
        return {"final": True}

    res = pr.imp(net, train_fn, levels=3, epochs=4, p=0.25, rewind=rewind, rewind_epoch=2, final_train_fn=final_fn)
    assert [r.level for r in res] == [0, 1, 2, 3] and res[-1].final and res[-1].record == {"final": True}
    n = sum(res[0].masks.numels().values())
    alive = n
    for r in res[1:]:
        alive -= round(0.25 * alive)
        assert sum(r.masks.counts().values()) == alive
        assert r.start_epoch == (2 if rewind == "late" else 0)
    assert res[3].sparsity == pytest.approx(1 - alive / n)
    assert [s[3] for s in seen] == ["train"] * 3 + ["final"]
    # at the start of every level k >= 1 the model is the snapshot with the level's masks applied
    if rewind == "init":
        for state, _, masks, _ in seen[1:]:
            for k, v in state.items():
                assert torch.equal(v, init.state[k] * masks[k] if k in masks else init.state[k]), k
    else:
        first = seen[1][0]
        for state, _, masks, _ in seen[2:]:
            for k, v in state.items():
                base = first[k]
                assert torch.equal(v, base * masks[k] if k in masks else base), k


def _train_with_hooks(model, hooks, step):
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    opt.zero_grad()
    functional.reset_net(model)
    train.bptt_step(model, torch.rand(2, 8, 1, 4, 4), torch.randint(0, 10, (8,)), train.ce_loss)
    for h in hooks:
        if hasattr(h, "after_backward"):
            h.after_backward(model, step)
    opt.step()
    for h in hooks:
        if hasattr(h, "after_step"):
            h.after_step(model, step)
    functional.reset_net(model)


# --- Early-Bird --------------------------------------------------------------------------------


def test_mask_distance_by_hand():
    a = {"x": torch.tensor([[1, 0], [1, 1]]).bool(), "y": torch.tensor([1, 0, 0]).bool()}
    b = {"x": torch.tensor([[1, 1], [1, 1]]).bool(), "y": torch.tensor([0, 0, 0]).bool()}
    assert pr.mask_distance(a, b) == pytest.approx(2 / 7)
    assert pr.mask_distance(a, a) == 0.0
    with pytest.raises(ValueError, match="^b="):
        pr.mask_distance(a, {"x": a["x"]})


def _line(values):
    net = nn.Sequential(nn.Linear(10, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([values], dtype=torch.float32))
    return net


def test_early_bird_detector_by_hand():
    # sparsity 0.5 keeps the 5 largest of 10 weights
    w0 = [10, 9, 8, 7, 6, 1, 1, 1, 1, 1]  # mask M0 = first five
    w1 = [10, 9, 8, 7, 1, 6, 1, 1, 1, 1]  # M1: one swap, distance 2/10 from M0
    net = _line(w0)
    eb = pr.EarlyBird(net, 0.5, q=3, tau=0.15)
    seq = [w1, w1, w1]
    for epoch, w in enumerate(seq, start=1):
        with torch.no_grad():
            net[0].weight.copy_(torch.tensor([w], dtype=torch.float32))
        eb.update(net, epoch)
    assert [h["max_distance"] for h in eb.history] == [None, None, pytest.approx(0.2), 0.0]
    assert eb.history[2]["distances"] == [pytest.approx(0.2), 0.0]
    assert eb.found_epoch == 3 and eb.ticket["0.weight"].tolist() == [[True] * 4 + [False, True] + [False] * 4]

    # the driver stops training once found; default tau is the paper's 0.02
    net = _line(w0)
    calls = []

    def epoch_fn(model, e):
        calls.append(e)
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor([w1], dtype=torch.float32))

    eb = pr.find_early_bird(net, epoch_fn, max_epochs=50, sparsity=0.5, q=5)
    assert eb.tau == 0.02 and eb.found_epoch == 5 and calls == [0, 1, 2, 3, 4]


def test_early_bird_channel_criterion_from_bn_gamma():
    net = _mlp(0)
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for i, bn in enumerate(bns):
            bn.weight.copy_(torch.linspace(-1, 1, bn.num_features) * (i + 1))
    m = pr.channel_masks(net, 0.5)
    allg = torch.cat([bn.weight.detach().abs() for bn in bns])
    kept = torch.cat([m[k] for k in m])
    assert int(kept.sum()) == round(0.5 * allg.numel())
    assert allg[~kept].max() <= allg[kept].min()
    eb = pr.EarlyBird(net, 0.5, criterion="channel")
    assert eb.tau == 0.1 and set(eb.ticket) == {f"{n}.weight" for n, mod in net.named_modules() if mod in bns}


# --- SNIP --------------------------------------------------------------------------------------


def _loss(model, x, y):
    functional.reset_net(model)
    out = model(x)
    functional.reset_net(model)
    if out.dim() == 3:
        return torch.stack([nn.functional.cross_entropy(o, y) for o in out]).mean()
    return nn.functional.cross_entropy(out, y)


def test_snip_on_ann_twin_matches_finite_differences():
    ann = _mlp(6, norm="none", spiking=False).double()
    x, y = torch.rand(5, 1, 4, 4, dtype=torch.float64), torch.randint(0, 10, (5,))
    scores = pr.snip_scores(ann, x, y)
    g = torch.Generator().manual_seed(0)
    for k, p in prunable_parameters(ann).items():
        for _ in range(3):
            i = tuple(int(torch.randint(0, s, (1,), generator=g)) for s in p.shape)
            with torch.no_grad():
                w = float(p[i])
                p[i] = w + 1e-6
                up = float(_loss(ann, x, y))
                p[i] = w - 1e-6
                down = float(_loss(ann, x, y))
                p[i] = w
            assert float(scores[k][i]) == pytest.approx(abs(w * (up - down) / 2e-6), rel=1e-5, abs=1e-10)
    assert all(p.grad is None for p in ann.parameters())


def test_snip_on_snn_readout_matches_finite_differences_and_surrogate_reaches_hidden_layers():
    snn = _mlp(7, norm="bn").double()
    x, y = torch.rand(4, 6, 1, 4, 4, dtype=torch.float64) * 3, torch.randint(0, 10, (6,))
    before = {k: v.clone() for k, v in snn.state_dict().items()}
    scores = pr.snip_scores(snn, x, y)
    assert all(torch.equal(v, before[k]) for k, v in snn.state_dict().items())  # BN stats untouched
    last = list(prunable_parameters(snn))[-1]
    p = prunable_parameters(snn)[last]
    for i in [(0, 0), (3, 5), (9, 11)]:
        with torch.no_grad():
            w = float(p[i])
            p[i] = w + 1e-6
            up = float(_loss(snn, x, y))
            p[i] = w - 1e-6
            down = float(_loss(snn, x, y))
            p[i] = w
        assert float(scores[last][i]) == pytest.approx(abs(w * (up - down) / 2e-6), rel=1e-5, abs=1e-10)
    first = next(iter(prunable_parameters(snn)))
    assert float(scores[first].sum()) > 0  # surrogate gradients flow through time to layer 1
    m = pr.snip_mask(snn, x, y, 0.7)
    flat = torch.cat([scores[k].reshape(-1) for k in m])
    keep = torch.cat([m[k].reshape(-1) for k in m])
    assert int(keep.sum()) == round(0.3 * flat.numel()) and flat[~keep].max() <= flat[keep].min()


# --- random and transferred tickets ------------------------------------------------------------


def test_random_ticket_counts_and_seed():
    net = _vgg(0)
    ticket = pr.prune_level(net, pr.prune_level(net, None, 0.5), 0.5)
    r = pr.random_ticket(net, like=ticket, seed=3)
    assert r.counts() == ticket.counts()
    assert all(torch.equal(r[k], pr.random_ticket(net, like=ticket, seed=3)[k]) for k in r)
    assert any(not torch.equal(r[k], ticket[k]) for k in r)
    u = pr.random_ticket(net, 0.9, seed=1)
    assert u.sparsity() == pytest.approx(0.9, abs=1e-3)


def test_transfer_ticket_loads_ann_init_and_mask_into_snn():
    ann, snn = _mlp(8, spiking=False), _mlp(9, spiking=True)
    init = pr.snapshot(ann)
    masks = pr.prune_level(ann, None, 0.75)
    pr.transfer_ticket(snn, masks, init)
    for k, v in snn.state_dict().items():
        assert torch.equal(v, init.state[k] * masks[k] if k in masks else init.state[k]), k
    out = snn(torch.rand(3, 2, 1, 4, 4))
    assert out.shape == (3, 2, 10)


# --- bad input ---------------------------------------------------------------------------------


def _bad_masks():
    net = _mlp()
    good = pr.prune_level(net, None, 0.5)
    wrong_shape = dict(good)
    k = next(iter(good))
    wrong_shape[k] = good[k][:, :-1]
    missing = dict(list(good.items())[1:])
    extra = {**good, "nope.weight": torch.ones(2, 2, dtype=torch.bool)}
    return net, wrong_shape, missing, extra


@pytest.mark.parametrize("call, name", [
    (lambda: pr.EarlyBird(_mlp(), 0.5, q=1), "q"),
    (lambda: pr.EarlyBird(_mlp(), 1.0), "sparsity"),
    (lambda: pr.EarlyBird(_mlp(), -0.1), "sparsity"),
    (lambda: pr.EarlyBird(_mlp(), 0.5, criterion="gamma"), "criterion"),
    (lambda: pr.EarlyBird(_mlp(), 0.5, tau=0.0), "tau"),
    (lambda: pr.find_early_bird(_mlp(), lambda m, e: None, 10, sparsity=1.2), "sparsity"),
    (lambda: pr.snip_mask(_mlp(), torch.rand(2, 3, 1, 4, 4), torch.zeros(3, dtype=torch.long), 1.0), "sparsity"),
    (lambda: pr.random_ticket(_mlp(), 1.0), "sparsity"),
    (lambda: pr.prune_level(_mlp(), None, 0.0), "p"),
    (lambda: pr.prune_level(_mlp(), None, 1.0), "p"),
    (lambda: pr.prune_level(_mlp(), None, 0.25, scope="layer"), "scope"),
    (lambda: pr.level_sparsity(1.5, 2), "p"),
    (lambda: pr.imp(_mlp(), lambda *a: None, 2, epochs=10, p=0.0), "p"),
    (lambda: pr.imp(_mlp(), lambda *a: None, 2, epochs=10, rewind_epoch=10), "rewind_epoch"),
    (lambda: pr.imp(_mlp(), lambda *a: None, 2, epochs=10, rewind_epoch=25), "rewind_epoch"),
    (lambda: pr.imp(_mlp(), lambda *a: None, 2, epochs=10, rewind_epoch=-1), "rewind_epoch"),
    (lambda: pr.RewindHook(5, 5), "rewind_epoch"),
    (lambda: pr.retrain_lrs(0.1, 10, 11), "rewind_epoch"),
    (lambda: pr.imp(_mlp(), lambda *a: None, 2, epochs=10, rewind="epoch"), "rewind"),
    (lambda: pr.prune_level(*_bad_masks()[:2], 0.25), r"masks\['0.1.weight'\]"),
    (lambda: pr.prune_level(_bad_masks()[0], _bad_masks()[2], 0.25), "masks"),
    (lambda: pr.imp(_bad_masks()[0], lambda *a: None, 2, epochs=10, rewind_epoch=2, masks=_bad_masks()[3]), "masks"),
    (lambda: pr.transfer_ticket(_mlp(), _bad_masks()[2], {}), "masks"),
    (lambda: pr.random_ticket(_mlp(), like={"0.1.weight": torch.ones(3)}), "like"),
])
def test_bad_input_raises_naming_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name}=.*allowed values"):
        call()
