"""lth study code: the cached per-level runs (skip, crash and resume), accounting, Early-Bird replay,
bad input. Tiny settings: a few seconds in all."""

from types import SimpleNamespace

import pytest
import torch

from snnlab.sparsity import prune
from snnlab.studies.lth import analysis, claims, runs

TINY = dict(hidden=(16,), epochs=3, batch_size=256, T=3, lr=0.1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Crash(Exception):
    pass


class CrashOnce:
    """Raises once after ``epoch`` of the ``n``-th unit that reaches that epoch."""

    def __init__(self, epoch, n=1):
        self.epoch, self.n, self.seen, self.fired = epoch, n, 0, False

    def after_epoch(self, epoch, model, record):
        if epoch == self.epoch and not self.fired:
            self.seen += 1
            if self.seen == self.n:
                self.fired = True
                raise Crash


class Count:
    def __init__(self):
        self.epochs = 0

    def after_epoch(self, epoch, model, record):
        self.epochs += 1


def _summary(levels):
    return [(lv["level"], {k: v.clone() for k, v in lv["masks"].items()}, lv["acc"], lv["history"][-1]["train_loss"],
             lv["final_state"]) for lv in levels]


def _same(a, b):
    for (la, ma, aa, xa, sa), (lb, mb, ab, xb, sb) in zip(a, b):
        assert la == lb and aa == ab and xa == xb
        assert all(torch.equal(ma[k], mb[k]) for k in ma)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_killed_search_resumes_with_identical_masks_and_numbers(tmp_path, monkeypatch):
    s = runs.Setup(**TINY)
    monkeypatch.setenv("SNNLAB_CACHE", str(tmp_path / "ref"))
    ref = _summary(runs.imp_search(s, 2, 0.5, rewind_epoch=1))
    monkeypatch.setenv("SNNLAB_CACHE", str(tmp_path / "crash"))
    # crash inside level 2 (the third unit to finish epoch 2): levels 0 and 1 are done, level 2 has a checkpoint
    with pytest.raises(Crash):
        runs.imp_search(s, 2, 0.5, rewind_epoch=1, hooks=[CrashOnce(2, n=3)])
    folders = sorted(p.name for p in (tmp_path / "crash").glob("lth-imp-*/*"))
    assert folders == ["level_1", "level_2"]
    assert (next((tmp_path / "crash").glob("lth-imp-*")) / "level_2" / "last.pt").exists()
    assert not (next((tmp_path / "crash").glob("lth-imp-*")) / "level_2" / "result.pt").exists()
    count = Count()
    resumed = _summary(runs.imp_search(s, 2, 0.5, rewind_epoch=1, hooks=[count]))
    assert count.epochs == 1  # only level 2's last epoch ran again
    _same(ref, resumed)


def test_finished_levels_are_skipped(cache):
    s = runs.Setup(**TINY)
    runs.imp_search(s, 1, 0.5, rewind_epoch=1)
    count = Count()
    again = runs.imp_search(s, 2, 0.5, rewind_epoch=1, hooks=[count])
    assert count.epochs == 2  # level 2 only (epochs 1..2); level 0 and level 1 come from the cache
    assert [round(lv["sparsity"], 4) for lv in again] == [0.0, 0.5, 0.75]


def test_pruned_weights_zero_and_sparsity(cache):
    s = runs.Setup(**TINY)
    lv = runs.imp_search(s, 2, 0.5, rewind_epoch=1)
    assert analysis.masked_weights_zero(s, lv[1:])
    model = s.build()
    model.load_state_dict(lv[2]["final_state"])
    n_zero = sum(int((p == 0).sum()) for k, p in model.named_parameters() if k in lv[2]["masks"])
    n_masked = sum(int((~m).sum()) for m in lv[2]["masks"].values())
    assert n_zero >= n_masked
    assert claims.sparsity_schedule([lv[1]["sparsity"], lv[2]["sparsity"]], 0.5).passed


def test_search_times_are_prefix_sums():
    assert runs.search_times([{"time_s": 2.0}, {"time_s": 3.0}, {"time_s": 5.0}]) == [0.0, 2.0, 5.0]


def test_et_level0_switches_to_t_early(cache):
    s = runs.Setup(**{**TINY, "T": 4, "epochs": 3})
    r = runs.et_dense_run(s, n=1, t_early=2)
    assert [h["T"] for h in r["history"]] == [4, 2, 2]
    assert r["T_search"] == 2 and len(r["curve"]) == 3 and len(r["states"]) == 4


def test_eb_replay_equals_online_detector(cache):
    s = runs.Setup(**{**TINY, "epochs": 3})
    base = runs.dense_run(s)
    rep = runs.eb_replay(s, base, 0.5, q=2, tau=0.9)
    model = s.build()
    model.load_state_dict(base["states"][0])
    eb = prune.EarlyBird(model, 0.5, 2, 0.9)
    for e in range(1, 4):
        model.load_state_dict(base["states"][e])
        if eb.update(model, e):
            break
    assert rep["found_epoch"] == eb.found_epoch == 1
    assert all(torch.equal(rep["ticket"][k], eb.ticket[k]) for k in eb.ticket)


@pytest.mark.parametrize("name,value,match", [("p", 1.0, "p=1.0"), ("q", 1, "q=1"), ("lam", 1.5, "lam=1.5"),
                                              ("T", 1, "T=1"), ("rewind_epoch", 6, "rewind_epoch=6"),
                                              ("tau", 0.0, "tau=0.0")])
def test_bad_parameters_raise_before_work(name, value, match):
    d = dict(seed=0, dataset="digits", arch="mlp", hidden=[8], T=5, epochs=6, batch_size=128, lr=0.1,
             weight_decay=5e-4, p=0.5, levels=2, rewind_epoch=1, lam=0.6, et_epochs=2, q=5, tau=0.02, reset="soft")
    d[name] = value
    with pytest.raises(ValueError, match=match):
        analysis.make_setup(SimpleNamespace(as_dict=lambda: d))


def test_claims_can_fail():
    assert not claims.divergence_decreases({"a": [1.0, 1.2, 0.0]}).passed
    assert claims.divergence_decreases({"a": [1.0, 0.4, 0.2, 0.0]}).passed
    assert not claims.imp_beats_random({0.9: 90.0}, {0.9: 89.5}).passed
    ok = claims.et_speedup({0.5: 1.2, 0.75: 1.4}, {0.5: None, 0.75: 1.1}, {0.5: 90.0, 0.75: 90.0},
                           {0.5: 88.5, 0.75: 89.5}, 0.6, 3, 5)
    assert ok.passed  # gain tested at the highest level; 0.5 is below the paper's lowest Table 1 sparsity
    assert not claims.et_speedup({0.5: 1.5, 0.75: 1.2}, {}, {0.5: 90.0, 0.75: 90.0}, {0.5: 90.0, 0.75: 90.0},
                                 0.6, 3, 5).passed
    assert not claims.et_speedup({0.75: 1.29}, {0.75: 2.0}, {0.75: 90.0}, {0.75: 90.0}, 0.6, 3, 5).passed
    assert not claims.et_speedup({0.75: 1.5}, {0.75: 1.5}, {0.75: 91.5}, {0.75: 90.0}, 0.6, 3, 5).passed
    assert not claims.deeper_layers_sparser({"a": 0.9, "b": 0.5, "c": 0.1}).passed
    assert all(c.kind == "finding" for c in claims.errata())


def test_local_and_init_searches_are_distinct_runs(cache):
    """Global-vs-local and late-vs-init compare different searches: each search has its own cached
    folder and its own masks (a shared cache key would make their accuracies equal by construction)."""
    s = runs.Setup(**TINY)
    glob = runs.imp_search(s, 1, 0.5, "global", 1)
    loc = runs.imp_search(s, 1, 0.5, "local", 1)
    init = runs.imp_search(s, 1, 0.5, "global", 1, rewind="init")
    digests = {name: runs.mask_digest(lv[1]["masks"]) for name, lv in (("global", glob), ("local", loc), ("init", init))}
    assert digests["global"] != digests["local"]  # local keeps the same fraction per layer
    assert (init[1]["start_epoch"], glob[1]["start_epoch"]) == (0, 1)
    assert not torch.equal(init[1]["final_state"]["0.1.weight"], glob[1]["final_state"]["0.1.weight"])
    folders = {p.parent.name for p in cache.rglob("level_1")}
    assert len([f for f in folders if f.startswith("lth-imp-")]) == 3


def _lv(*epochs):
    return {"history": [{"T": T, "steps": n} for T, n in epochs]}


def test_et_speedup_model_by_hand():
    """Steps per T x cost per step, by hand: IMP 2 levels of 3 epochs x 10 steps at T=5; IMP+ET 1
    epoch at 5 then 2 at 3, then 3 at 3; costs 1.0 s (T=5) and 0.6 s (T=3)."""
    imp = [_lv((5, 10), (5, 10), (5, 10)), _lv((5, 10), (5, 10), (5, 10))]
    et = [_lv((5, 10), (3, 10), (3, 10)), _lv((3, 10), (3, 10), (3, 10))]
    costs = {5: {"min_s": 1.0, "median_s": 2.0}, 3: {"min_s": 0.6, "median_s": 1.0}}
    tab = analysis.et_speedup_model(imp, et, costs, [0.5, 0.75], {0.5: 30.0, 0.75: 60.0}, {0.5: 25.0, 0.75: 40.0})
    assert tab["speedup_model"].round(6).tolist() == [round(30 / 22, 6), round(60 / 40, 6)]
    assert tab["speedup_wall"].tolist() == [1.2, 1.5]
    same = analysis.et_speedup_model(imp, imp, costs, [0.5, 0.75], {0.5: 1.0, 0.75: 1.0}, {0.5: 1.0, 0.75: 1.0})
    assert same["speedup_model"].tolist() == [1.0, 1.0]  # T_early == T: no speed-up, the claim fails
    assert not claims.et_speedup(dict(zip([0.5, 0.75], same["speedup_model"])), {}, {0.75: 90.0, 0.5: 90.0},
                                 {0.75: 90.0, 0.5: 90.0}, 1.0, 5, 5).passed


def test_step_costs_grow_with_T():
    c = analysis.step_costs(runs.Setup(**TINY), [1, 3], repeats=3, warmup=1)
    assert set(c) == {1, 3} and all(0 < v["min_s"] <= v["median_s"] for v in c.values())
