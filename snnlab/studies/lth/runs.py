r"""Run management for the lth notebooks, in the manner of facebookresearch/open_lth.

Every training the notebooks need is one **unit** of the cached-run mechanism
(:class:`snnlab.train.runs.CachedRun`): its key is the full configuration, the data's content and
the code version. IMP units live in one folder per search, keyed by the hash of the search's
configuration, with **one sub-folder per level** (``<cache>/lth-imp-<hash>/level_<k>/``), so a
finished level is skipped on re-run and an interrupted one resumes from ``last.pt`` at its last
completed epoch with the same masks and numbers (all RNG states are checkpointed).

Units (each returns a plain dict of tensors, numbers and lists):

* :func:`dense_run` -- level 0: the dense SNN (or ANN twin) trained for ``epochs`` at T, with the
  full state after every epoch (``states[e]``; e = 0 is the initialisation). Every search reads its
  rewind point, and the Early-Bird detector replays its masks (the detector is passive, so a replay
  over the stored states equals an online hook), from this one run.
* :func:`et_dense_run` -- level 0 of an Early-Time search: N = 2 epochs at T, then T_early from the
  normalised divergence on the training set (eval mode), the remaining epochs at T_early.
* :func:`imp_search` -- levels 1..K of IMP: prune p of the surviving weights (global or local),
  rewind to the snapshot (late rewinding, or initialisation: original IMP) and retrain at the
  search's T (T, or T_early for IMP+ET). The retraining schedule resumes at the rewind epoch.
* :func:`train_ticket` -- a ticket (any mask + any starting state) trained at T to the end: the
  final ticket of IMP+ET, Early-Bird, random, SNIP and transferred tickets. Its key holds a digest
  of the mask and of the starting state, so the same ticket is never trained twice.

Search-time accounting (:func:`search_times`): the **search** of a ticket is the wall time of the
trainings that produced its mask (IMP levels 0..k-1, the epochs before the Early-Bird detection,
SNIP's scoring pass), the **final** time that of training the ticket; both measured with the same
loop and settings. Times of cached units are the times measured when they were computed.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn
from tqdm.auto import tqdm

from ... import checks, data
from ...core import models
from ...core.encoding import encode_batch
from ...grad.bptt import bptt_step
from ...paths import cache_root
from ...sparsity import early_time as et
from ...sparsity import prune
from ...sparsity.masks import MaskHook, Masks, magnitude_mask, prunable_parameters
from ...train import checkpoint, evaluate, seed_everything
from ...train.runs import CachedRun, key_hash, run_key

__all__ = [
    "Setup",
    "LevelRun",
    "load_data",
    "cosine_lr",
    "train_unit",
    "evaluate_model",
    "dense_run",
    "et_dense_run",
    "imp_search",
    "train_ticket",
    "eb_replay",
    "eb_ticket",
    "mask_digest",
    "state_digest",
    "Ticket",
    "search_times",
    "steps_by_T",
]


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """Model, data and optimisation shared by every unit of one study (its fields key the cache)."""

    dataset: str = "digits"
    arch: str = "mlp"
    hidden: tuple = (128, 128)
    width: float = 1.0
    norm: str = "bn"
    reset: str = "soft"  # "hard" (the paper's LIF: reset to 0) or "soft" (subtract the threshold)
    T: int = 5
    epochs: int = 8
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    device: str = "cpu"
    progress: bool = False

    def __post_init__(self) -> None:
        checks.choice("arch", self.arch, models.ARCHITECTURES)
        checks.choice("norm", self.norm, models.NORMS)
        checks.choice("reset", self.reset, ("hard", "soft"))
        for name in ("T", "epochs", "batch_size"):
            checks.int_at_least(name, getattr(self, name), 1)
        checks.positive("lr", self.lr)
        checks.positive("width", self.width)
        checks.non_negative("weight_decay", self.weight_decay)
        checks.int_at_least("seed", self.seed, 0)
        checks.choice("device", self.device, ("cpu", "cuda", "auto"))
        object.__setattr__(self, "hidden", tuple(checks.int_list("hidden", list(self.hidden), 1)))

    def key(self) -> dict:
        d = asdict(self)
        d.pop("progress")
        return d

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def build(self, spiking: bool = True) -> nn.Module:
        """The model at its seeded initialisation (the same weights for the SNN and its ANN twin)."""
        tr = load_data(self.dataset, "train")
        c, *hw = tr.input_shape
        torch.manual_seed(self.seed)
        return models.build(self.arch, tr.num_classes, in_channels=c, input_size=hw[-1], width=self.width,
                            spiking=spiking, norm=self.norm, hidden=self.hidden, in_features=tr[0][0].numel(),
                            **({"v_reset": None} if self.reset == "soft" and spiking else {}))


@lru_cache(maxsize=8)
def load_data(name: str, split: str):
    return data.load(name, split)


def _datasets(setup: Setup):
    return load_data(setup.dataset, "train"), load_data(setup.dataset, "test")


class LevelRun(CachedRun):
    """A :class:`CachedRun` whose folder is ``<cache>/<kind>-<hash of group>/<name>`` (open_lth's one
    folder per level inside a search's folder). The key still covers the unit's full config."""

    def __init__(self, kind: str, group: Mapping[str, Any], name: str, config: Mapping[str, Any],
                 datasets: Sequence[Any] = (), enabled: bool = True):
        super().__init__(kind, config, datasets, enabled)
        if enabled:
            self.dir = cache_root() / f"{kind}-{key_hash(run_key(kind, group, datasets))}" / name


def _cached(run: CachedRun, compute: Callable[[CachedRun], Any]) -> Any:
    done = run.result()
    return done if done is not None else run.save(compute(run))


# --- the training loop of one unit ---------------------------------------------------------------


def cosine_lr(lr: float, epoch: int, epochs: int) -> float:
    """Cosine annealing to 0 over ``epochs`` (epoch e uses the value at its start)."""
    return lr * (1 + math.cos(math.pi * epoch / epochs)) / 2


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def evaluate_model(model: nn.Module, ds, T: int, spiking: bool, device) -> dict[str, Any]:
    """Test accuracy (and, for an SNN, accuracy per t and spikes per sample) without the logits."""
    if spiking:
        ev = evaluate(model, ds, T, device=device)
        return {"acc": ev["acc"], "acc_per_t": ev["acc_per_t"], "spikes_per_sample": ev["spikes_per_sample"],
                "firing_rate": ev["firing_rate"]}
    model.eval()
    x, y = data.tensors(ds)
    with torch.no_grad():
        acc = float((model(x.to(device)).argmax(-1).cpu() == y).float().mean())
    return {"acc": acc, "acc_per_t": [acc], "spikes_per_sample": None, "firing_rate": []}


def _ann_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return float(loss.detach())


def train_unit(setup: Setup, init_state: Mapping[str, torch.Tensor], masks: Masks | None, start_epoch: int,
               T: int, spiking: bool = True, ckpt_dir: Path | None = None, record_states: bool = False,
               et_switch: dict | None = None, hooks: Sequence[Any] = (), desc: str = "train") -> dict[str, Any]:
    """Train from ``init_state`` (with ``masks`` kept at zero) for epochs ``start_epoch..epochs-1`` at
    ``T`` with the cosine schedule of the full run (the schedule resumes at ``start_epoch``), a fresh
    SGD optimiser, per-epoch checkpoints in ``ckpt_dir`` (resumed exactly) and ``hooks``
    (``after_epoch(epoch, model, record)``, e.g. to simulate a crash).

    ``et_switch = {"n": 2, "lam": 0.6, "metric": "kl", "direction": "paper", "t_early": None}``: after
    ``n`` epochs compute the normalised divergence on the training set (eval mode, BN untouched) and
    continue at T_early (``t_early`` forces a value: Fig. 7(c)). Returns history, time, final state,
    test metrics at the final T and (``record_states``) the state after every epoch.
    """
    device = setup.torch_device()
    train_ds, test_ds = _datasets(setup)
    model = setup.build(spiking).to(device)
    model.load_state_dict({k: v.to(device) for k, v in init_state.items()})
    hook = None
    if masks is not None:
        masks = Masks({k: v.to(device) for k, v in masks.items()})
        masks.apply(model)
        hook = MaskHook(masks, model)
    gen = seed_everything(setup.seed + 7919 * start_epoch)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=setup.lr, momentum=setup.momentum, weight_decay=setup.weight_decay)
    state: dict[str, Any] = {"epoch": start_epoch, "history": [], "T": T, "t_early": None, "curve": None,
                             "states": [_state(model)] if record_states else [], "et_time_s": 0.0}
    ckpt = Path(ckpt_dir) / "last.pt" if ckpt_dir is not None else None
    if ckpt is not None and ckpt.exists():
        saved = checkpoint.load(ckpt, device)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        checkpoint.set_rng_state(saved["rng"], gen)
        state.update({k: saved[k] for k in state})
        state["epoch"] = int(state["epoch"])
        state["T"] = int(state["T"])
    x_all, y_all = data.tensors(train_ds)
    for epoch in tqdm(range(state["epoch"], setup.epochs), desc=desc, disable=not setup.progress,
                      initial=state["epoch"] - start_epoch, total=setup.epochs - start_epoch):
        lr = cosine_lr(setup.lr, epoch, setup.epochs)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        t0 = time.perf_counter()
        losses = []
        for idx in data.batches(len(y_all), setup.batch_size, gen):
            y = y_all[idx].to(device)
            opt.zero_grad(set_to_none=True)
            if spiking:
                x = encode_batch(x_all[idx], state["T"], "direct", False, gen).to(device)
                functional.reset_net(model)
                losses.append(bptt_step(model, x, y, F.cross_entropy))
                functional.reset_net(model)
            else:
                losses.append(_ann_step(model, x_all[idx].to(device), y))
            if hook is not None:
                hook.after_backward(model, 0)
            opt.step()
            if hook is not None:
                hook.after_step(model, 0)
        rec = {"epoch": epoch + 1, "T": state["T"], "lr": lr, "train_loss": float(np.mean(losses)),
               "steps": len(losses), "time_s": time.perf_counter() - t0}
        if et_switch is not None and epoch + 1 == et_switch["n"] and state["t_early"] is None:
            t1 = time.perf_counter()
            te, curve = et.find_t_early(model, train_ds, T, lam=et_switch["lam"], metric=et_switch["metric"],
                                        direction=et_switch["direction"], device=device)
            state["curve"] = [float(v) for v in curve]
            state["t_early"] = int(et_switch.get("t_early") or te)
            state["T"] = state["t_early"]
            state["et_time_s"] = time.perf_counter() - t1
            rec["t_early"] = state["t_early"]
        state["history"].append(rec)
        state["epoch"] = epoch + 1
        if record_states:
            state["states"].append(_state(model))
        if ckpt is not None:
            checkpoint.save(ckpt, {**state, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "rng": checkpoint.rng_state(gen)})
        for h in hooks:
            h.after_epoch(epoch + 1, model, rec)
    ev = evaluate_model(model, test_ds, T if spiking else 1, spiking, device)
    return {**ev, "history": state["history"], "time_s": float(sum(r["time_s"] for r in state["history"])
                                                               + state["et_time_s"]),
            "final_state": _state(model), "states": state["states"], "t_early": state["t_early"],
            "curve": state["curve"], "T_search": state["T"], "start_epoch": start_epoch}


# --- level 0 ------------------------------------------------------------------------------------


def _init_state(setup: Setup, spiking: bool) -> dict[str, torch.Tensor]:
    return _state(setup.build(spiking))


def dense_run(setup: Setup, spiking: bool = True, T: int | None = None, cache: bool = True,
              hooks: Sequence[Any] = ()) -> dict[str, Any]:
    """The dense network trained for ``setup.epochs`` at ``T`` (default ``setup.T``; Fig. 3 trains
    at T_pre), with the state after every epoch. The IMP searches' level 0."""
    T = setup.T if T is None else checks.int_at_least("T", T, 1)
    cfg = {"setup": setup.key(), "spiking": spiking, "T": T, "unit": "dense"}
    run = CachedRun("lth-dense", cfg, _datasets(setup), enabled=cache)
    return _cached(run, lambda r: train_unit(setup, _init_state(setup, spiking), None, 0, T, spiking,
                                             r.dir, True, hooks=hooks, desc=f"dense T={T}"))


ET_DEFAULTS = {"lam": 0.6, "n": 3, "metric": "kl", "direction": "paper", "t_early": None}


def _et_cfg(lam: float, n: int, metric: str, direction: str, t_early: int | None) -> dict:
    checks.number_in("lam", lam, 0, 1, why=" (the Early-Time threshold lambda)")
    checks.int_at_least("n", n, 1)
    checks.choice("metric", metric, et.METRICS)
    checks.choice("direction", direction, et.DIRECTIONS)
    if t_early is not None:
        checks.int_at_least("t_early", t_early, 1)
    return {"n": n, "lam": lam, "metric": metric, "direction": direction, "t_early": t_early}


def et_dense_run(setup: Setup, lam: float = 0.6, n: int = 3, metric: str = "kl", direction: str = "paper",
                 t_early: int | None = None, cache: bool = True, hooks: Sequence[Any] = ()) -> dict[str, Any]:
    """Level 0 of an Early-Time search (Algorithm 1): ``n`` epochs at T, T_early from the curve, the
    rest at T_early; the state after every epoch is kept (rewind point, Early-Bird replay)."""
    checks.int_at_least("T", setup.T, 2)
    sw = _et_cfg(lam, n, metric, direction, t_early)
    if n >= setup.epochs:
        checks.fail("n", n, f"fewer than epochs={setup.epochs} (epochs trained at T before choosing T_early)")
    cfg = {"setup": setup.key(), "unit": "et_dense", "et": sw}
    run = CachedRun("lth-dense", cfg, _datasets(setup), enabled=cache)
    return _cached(run, lambda r: train_unit(setup, _init_state(setup, True), None, 0, setup.T, True, r.dir,
                                             True, et_switch=sw, hooks=hooks, desc="dense ET"))


# --- IMP ----------------------------------------------------------------------------------------


def imp_search(setup: Setup, levels: int, p: float = 0.5, scope: str = "global", rewind_epoch: int = 1,
               rewind: str = "late", et_cfg: dict | None = None, spiking: bool = True, cache: bool = True,
               hooks: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """IMP levels 0..``levels`` (level 0 = :func:`dense_run`, or :func:`et_dense_run` with
    ``et_cfg`` = its keyword arguments). Level k prunes ``p`` of the weights that survived level k-1
    (:func:`snnlab.sparsity.prune.prune_level`, from level k-1's trained weights), restores the
    state after ``rewind_epoch`` epochs of level 0 (``rewind="init"``: epoch 0, original IMP), and
    retrains to the end at the search's T (T_early for ET). Each returned dict holds ``masks``,
    ``sparsity``, ``layer_sparsity`` and the unit's result."""
    levels = checks.int_at_least("levels", levels, 0)
    p = checks.number_in("p", p, 0, 1, lo_open=True, hi_open=True, why=" (fraction of surviving weights pruned)")
    checks.choice("scope", scope, prune.SCOPES)
    checks.choice("rewind", rewind, ("late", "init"))
    r_epoch = 0 if rewind == "init" else checks.integer("rewind_epoch", rewind_epoch, 0, setup.epochs - 1)
    if et_cfg is not None:
        base = et_dense_run(setup, cache=cache, hooks=hooks, **et_cfg)
    else:
        base = dense_run(setup, spiking, cache=cache, hooks=hooks)
    group = {"setup": setup.key(), "spiking": spiking, "p": p, "scope": scope, "rewind_epoch": r_epoch,
             "et": _et_cfg(**{**ET_DEFAULTS, **et_cfg}) if et_cfg is not None else None}
    T_search = int(base["T_search"])
    model = setup.build(spiking)
    full = Masks.ones(prunable_parameters(model))
    out = [{"level": 0, "masks": full, "sparsity": 0.0, "layer_sparsity": {k: 0.0 for k in full},
            "T_search": T_search, **base}]
    rewind_state = base["states"][r_epoch]
    for k in range(1, levels + 1):
        model.load_state_dict(out[-1]["final_state"])
        masks = prune.prune_level(model, out[-1]["masks"], p, scope)
        run = LevelRun("lth-imp", group, f"level_{k}", {**group, "level": k}, _datasets(setup), enabled=cache)
        res = _cached(run, lambda r, m=masks: train_unit(setup, rewind_state, m, r_epoch, T_search, spiking, r.dir,
                                                         hooks=hooks, desc=f"IMP level {k}"))
        rep = prune.sparsity_report(masks)
        out.append({"level": k, "masks": masks, "sparsity": rep["overall"], "layer_sparsity": rep["layers"],
                    "T_search": T_search, **res})
    return out


# --- tickets ------------------------------------------------------------------------------------


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous().reshape(-1)
        h.update(k.encode())
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def mask_digest(masks: Mapping[str, torch.Tensor]) -> str:
    return _digest({k: torch.as_tensor(v).bool() for k, v in masks.items()})


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    return _digest(state)


def train_ticket(setup: Setup, masks: Masks, init_state: Mapping[str, torch.Tensor], start_epoch: int = 0,
                 label: str = "ticket", cache: bool = True, hooks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train the SNN ``masks`` ticket from ``init_state`` (after ``start_epoch`` epochs) to the end at T.
    Keyed by the mask's and the state's content, so a ticket is trained once whoever asks."""
    start_epoch = checks.integer("start_epoch", start_epoch, 0, setup.epochs - 1)
    model = setup.build(True)
    masks = prune.check_masks(model, masks)
    cfg = {"setup": setup.key(), "unit": "ticket", "masks": mask_digest(masks), "init": state_digest(init_state),
           "start_epoch": start_epoch}
    run = CachedRun("lth-ticket", cfg, _datasets(setup), enabled=cache)
    res = _cached(run, lambda r: train_unit(setup, init_state, masks, start_epoch, setup.T, True, r.dir,
                                            hooks=hooks, desc=label))
    rep = prune.sparsity_report(masks)
    return {"masks": masks, "sparsity": rep["overall"], "layer_sparsity": rep["layers"], **res}


# --- Early-Bird ---------------------------------------------------------------------------------


def eb_replay(setup: Setup, base: Mapping[str, Any], sparsity: float, q: int = 5, tau: float | None = None,
              criterion: str = "weight") -> dict[str, Any]:
    """Replay :class:`snnlab.sparsity.prune.EarlyBird` over the states of a level-0 run (the mask
    "before every epoch"): ``found_epoch`` (None if not found within the run), the ticket (the newest
    mask, as the official code) and the mask distances per epoch."""
    model = setup.build(True)
    model.load_state_dict(base["states"][0])
    eb = prune.EarlyBird(model, sparsity, q, tau, criterion)
    for e in range(1, len(base["states"])):
        model.load_state_dict(base["states"][e])
        if eb.update(model, e):
            break
    last = eb.found_epoch if eb.found else len(base["states"]) - 1
    return {"found_epoch": eb.found_epoch, "epoch": last, "history": eb.history, "criterion": criterion,
            "ticket": eb.ticket, "tau": eb.tau}


def eb_ticket(setup: Setup, base: Mapping[str, Any], sparsity: float, q: int = 5, tau: float | None = None,
              cache: bool = True) -> dict[str, Any]:
    """The Early-Bird ticket at ``sparsity`` from ``base`` (dense or ET level 0): the global magnitude
    mask at the detection epoch, trained from initialisation at T (the official code rewinds to
    initialisation). ``search_s`` = the time of the epochs trained before the detection."""
    t0 = time.perf_counter()
    found = eb_replay(setup, base, sparsity, q, tau, "weight")
    replay_s = time.perf_counter() - t0
    e = found["epoch"]
    model = setup.build(True)
    model.load_state_dict(base["states"][e])
    masks = Masks({k: v.cpu() for k, v in magnitude_mask(model, sparsity, "global").items()})
    tk = train_ticket(setup, masks, base["states"][0], 0, label=f"EB {sparsity:.3f}", cache=cache)
    search = sum(r["time_s"] for r in base["history"][:e])
    if base.get("t_early") is not None and any("t_early" in r for r in base["history"][:e]):
        search += _et_time(base)
    return {**tk, "found_epoch": found["found_epoch"], "eb_epoch": e, "search_s": search + replay_s,
            "final_s": tk["time_s"]}


def _et_time(base: Mapping[str, Any]) -> float:
    return float(base["time_s"] - sum(r["time_s"] for r in base["history"]))


# --- accounting ---------------------------------------------------------------------------------


@dataclass
class Ticket:
    """One row of the search-time table: a method's ticket at one sparsity."""

    method: str
    level: int
    sparsity: float
    acc: float
    search_s: float
    final_s: float
    spikes_per_sample: float | None = None
    extra: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def search_times(levels: Sequence[Mapping[str, Any]]) -> list[float]:
    """IMP search time of level k: the wall time of levels 0..k-1 (the trainings whose weights
    produced mask k); level 0 has no search."""
    out, acc = [], 0.0
    for lv in levels:
        out.append(acc)
        acc += float(lv["time_s"])
    return out


def steps_by_T(levels: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Optimizer steps per timestep count T over the trainings of ``levels`` (e.g. the levels 0..k-1
    that produced mask k), from their per-epoch history."""
    out: dict[int, int] = {}
    for lv in levels:
        for r in lv["history"]:
            out[int(r["T"])] = out.get(int(r["T"]), 0) + int(r["steps"])
    return out


def with_setup(setup: Setup, **kw: Any) -> Setup:
    return replace(setup, **kw)


def _row(method: str, level: int, res: Mapping[str, Any], search_s: float, final_s: float, **extra: Any) -> Ticket:
    return Ticket(method, level, float(res["sparsity"]), 100.0 * float(res["acc"]), float(search_s), float(final_s),
                  res.get("spikes_per_sample"), extra or None)


def imp_tickets(setup: Setup, levels: int, p: float, rewind_epoch: int, et_cfg: dict | None = None,
                scope: str = "global", rewind: str = "late", cache: bool = True, only_last: bool = False
                ) -> tuple[list[Ticket], list[dict]]:
    """IMP (``et_cfg`` None) or IMP+ET tickets at levels 1..``levels``: for IMP the level's own
    training is the final ticket; for IMP+ET the mask of level k (searched at T_early) is trained
    at T from the same rewind point (``only_last``: only the last level's ticket). Returns the rows
    and the search's levels."""
    lv = imp_search(setup, levels if et_cfg is None else levels - 1, p, scope, rewind_epoch, rewind, et_cfg,
                    cache=cache)
    st = search_times(lv)
    rows = []
    if et_cfg is None:
        for k in range(1, levels + 1):
            rows.append(_row("IMP" if rewind == "late" else "IMP (init)", k, lv[k], st[k], lv[k]["time_s"]))
        return rows, lv
    r_epoch = 0 if rewind == "init" else rewind_epoch
    model = setup.build(True)
    for k in range(levels if only_last else 1, levels + 1):
        model.load_state_dict(lv[k - 1]["final_state"])
        masks = prune.prune_level(model, lv[k - 1]["masks"], p, scope)
        tk = train_ticket(setup, masks, lv[0]["states"][r_epoch], r_epoch, label=f"IMP+ET ticket {k}", cache=cache)
        rows.append(_row("IMP+ET", k, tk, st[k - 1] + lv[k - 1]["time_s"], tk["time_s"], t_early=lv[0]["t_early"]))
    return rows, lv


def eb_tickets(setup: Setup, sparsities: Sequence[float], et_cfg: dict | None = None, q: int = 5,
               tau: float | None = None, cache: bool = True) -> list[Ticket]:
    """Early-Bird (or EB+ET, searched on the Early-Time level-0 run) tickets at each sparsity."""
    base = dense_run(setup, cache=cache) if et_cfg is None else et_dense_run(setup, cache=cache, **et_cfg)
    rows = []
    for k, s in enumerate(sparsities, 1):
        r = eb_ticket(setup, base, s, q, tau, cache=cache)
        rows.append(_row("EB" if et_cfg is None else "EB+ET", k, r, r["search_s"], r["final_s"],
                         found_epoch=r["found_epoch"], eb_epoch=r["eb_epoch"]))
    return rows


def random_tickets(setup: Setup, imp_levels: Sequence[Mapping[str, Any]], rewind_epoch: int,
                   cache: bool = True) -> list[Ticket]:
    """Random masks with the per-layer counts of each IMP level, trained from the IMP rewind point."""
    rows = []
    model = setup.build(True)
    for lv in imp_levels[1:]:
        t0 = time.perf_counter()
        masks = prune.random_ticket(model, seed=setup.seed, like=lv["masks"])
        s = time.perf_counter() - t0
        tk = train_ticket(setup, masks, imp_levels[0]["states"][rewind_epoch], rewind_epoch,
                          label=f"random {lv['level']}", cache=cache)
        rows.append(_row("random", lv["level"], tk, s, tk["time_s"]))
    return rows


def snip_tickets(setup: Setup, sparsities: Sequence[float], spiking: bool, batch: int = 256,
                 cache: bool = True) -> list[Ticket]:
    """SNIP at initialisation on one training batch, scored on the SNN (surrogate gradients through
    T steps) or on its ANN twin (same initial weights), trained as an SNN from initialisation."""
    tr, _ = _datasets(setup)
    x, y = data.tensors(tr)
    x, y = x[:batch], y[:batch]
    init = _init_state(setup, True)
    scorer = setup.build(spiking)
    scorer.load_state_dict(init)
    rows = []
    for k, s in enumerate(sparsities, 1):
        t0 = time.perf_counter()
        xin = encode_batch(x, setup.T, "direct", False, None) if spiking else x
        masks = Masks({n: m.cpu() for n, m in prune.snip_mask(scorer, xin, y, s).items()})
        sec = time.perf_counter() - t0
        tk = train_ticket(setup, masks, init, 0, label=f"SNIP {'SNN' if spiking else 'ANN'} {s:.3f}", cache=cache)
        rows.append(_row("SNIP (SNN)" if spiking else "SNIP (ANN)", k, tk, sec, tk["time_s"]))
    return rows


def transfer_tickets(setup: Setup, levels: int, p: float, rewind_epoch: int,
                     cache: bool = True) -> tuple[list[Ticket], list[Ticket]]:
    """IMP on the ANN twin (ReLU), then each level's mask with the ANN's rewind state trained as an
    SNN (the transferred ticket). Returns (ANN IMP rows, transferred-ticket rows)."""
    lv = imp_search(setup, levels, p, "global", rewind_epoch, spiking=False, cache=cache)
    st = search_times(lv)
    ann, tt = [], []
    for k in range(1, levels + 1):
        ann.append(_row("ANN IMP", k, lv[k], st[k], lv[k]["time_s"]))
        tk = train_ticket(setup, lv[k]["masks"], lv[0]["states"][rewind_epoch], rewind_epoch,
                          label=f"transferred {k}", cache=cache)
        tt.append(_row("TT (ANN->SNN)", k, tk, st[k], tk["time_s"]))
    return ann, tt
