r"""The training loop: :func:`fit` (BPTT or any step function), :func:`evaluate` (accuracy for every
prefix of the T steps, spikes per sample) and :class:`TrainConfig` (everything that determines a run).

A *step function* ``step_fn(model, x_seq, y, loss_fn) -> float`` runs the forward and backward
pass of one batch (``x_seq`` ``[T, B, ...]``); :func:`snnlab.grad.bptt.bptt_step` is the default and
:func:`snnlab.grad.sltt.sltt_step` the online alternative. :func:`fit` zeroes gradients before it,
steps the optimiser after it and resets the neurons around it.

Checkpoints: with ``cfg.checkpoint_dir`` set, :func:`fit` writes ``last.pt`` atomically after
every epoch (model, optimiser, scheduler, history, all RNG states; :mod:`.checkpoint`) and resumes
from it, giving the same final numbers as an uninterrupted run. :mod:`.runs` keys such a directory
by the run's configuration, the data's content and the code version.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from spikingjelly.activation_based import functional
from torch import nn
from tqdm.auto import tqdm

from .. import checks, data
from ..core.encoding import AUGMENTATIONS, ENCODINGS, augment_batch, encode_batch
from ..core.models import spiking_neurons
from ..grad.bptt import bptt_step
from . import checkpoint
from .losses import make_loss

__all__ = ["TrainConfig", "seed_everything", "evaluate", "fit", "SpikeCounter"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed ``random``, numpy and torch; return a torch Generator seeded the same way."""
    seed = checks.int_at_least("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# --- configuration ------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything that determines a training run (its hash keys the cache)."""

    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"  # "sgd" (with momentum) or "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" or "none"
    batch_size: int = 64
    T: int = 4
    encoding: str = "direct"  # see snnlab.data.encode
    loss: str = "ce"
    loss_kw: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    checkpoint_dir: str | None = None
    progress: bool = True
    #: training-time augmentation of static image batches (:func:`snnlab.core.encoding.augment_batch`):
    #: ``"none"`` (default) or ``"crop_flip_cutout"`` (the SLTT official code's crop/cutout/flip);
    #: ``augment_kw``: its ``pad``, ``mean``, ``std``. Test data are never augmented.
    augment: str = "none"
    augment_kw: dict = field(default_factory=dict)
    #: automatic mixed precision: forward and backward under ``torch.autocast("cuda", float16)``
    #: with a ``GradScaler`` (as the SLTT official code's ``-amp``); a no-op on CPU (full precision).
    amp: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field (before any training)."""
        for name in ("epochs", "batch_size", "T"):
            checks.int_at_least(name, getattr(self, name), 1)
        checks.positive("lr", self.lr)
        checks.non_negative("momentum", self.momentum)
        checks.non_negative("weight_decay", self.weight_decay)
        checks.choice("optimizer", self.optimizer, ("sgd", "adam"))
        checks.choice("schedule", self.schedule, ("cosine", "none"))
        checks.choice("encoding", self.encoding, ENCODINGS)
        checks.int_at_least("seed", self.seed, 0)
        if not isinstance(self.loss_kw, dict):
            checks.fail("loss_kw", self.loss_kw, "a dict of keyword arguments for the loss")
        make_loss(self.loss, **self.loss_kw)
        checks.choice("device", self.device, ("cpu", "cuda", "auto"))
        checks.choice("augment", self.augment, AUGMENTATIONS)
        if not isinstance(self.augment_kw, dict) or set(self.augment_kw) - {"pad", "mean", "std"}:
            checks.fail("augment_kw", self.augment_kw, "a dict with keys among pad, mean, std")
        if not isinstance(self.amp, bool):
            checks.fail("amp", self.amp, "True or False")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def key(self) -> dict:
        d = asdict(self)
        for k in ("checkpoint_dir", "progress"):
            d.pop(k)
        for k, default in (("augment", "none"), ("augment_kw", {}), ("amp", False)):
            if d[k] == default:  # options added later: a default run keeps its old key (and cache)
                d.pop(k)
        return d


# --- evaluation ---------------------------------------------------------------------------------


class SpikeCounter:
    """Counts output spikes of every LIF node while active (forward hooks)."""

    def __init__(self, model: nn.Module):
        self.nodes = spiking_neurons(model)
        self.counts = [0.0] * len(self.nodes)
        self.sizes = [0] * len(self.nodes)
        self._handles: list = []

    def _hook(self, i: int):
        def hook(_m, _inp, out):
            self.counts[i] += float(out.detach().sum())
            self.sizes[i] += out.numel()

        return hook

    def __enter__(self) -> "SpikeCounter":
        self._handles = [n.register_forward_hook(self._hook(i)) for i, n in enumerate(self.nodes)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    ds,
    T: int,
    encoding: str = "direct",
    batch_size: int = 256,
    per_timestep: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Accuracy of the accumulated output for every prefix t = 1..T, loss and spike statistics.

    Returns ``acc`` (final, = ``acc_per_t[-1]``), ``acc_per_t`` (list of T accuracies of
    :math:`\\arg\\max_c \\sum_{t'\\le t} o_c[t']`), ``spikes_per_sample`` (all LIF layers, all steps),
    ``firing_rate`` per LIF layer, ``logits`` ``[T, N, C]`` (CPU) for divergence analyses.
    """
    model.eval()
    x_all, y_all = data.tensors(ds)
    temporal = bool(getattr(ds, "is_temporal", False))
    gen = torch.Generator().manual_seed(seed)
    outs = []
    with SpikeCounter(model) as sc:
        for idx in data.batches(len(y_all), batch_size, None):
            x_seq = encode_batch(x_all[idx], T, encoding, temporal, gen).to(device)
            functional.reset_net(model)
            outs.append(model(x_seq).float().cpu())
            functional.reset_net(model)
    logits = torch.cat(outs, dim=1)  # [T, N, C]
    cum = logits.cumsum(0)
    correct = (cum.argmax(-1) == y_all.unsqueeze(0)).float().mean(1)  # [T]
    n = len(y_all)
    acc_per_t = correct.tolist()
    return {
        "acc": acc_per_t[-1],
        "acc_per_t": acc_per_t if per_timestep else [acc_per_t[-1]],
        "spikes_per_sample": sum(sc.counts) / n,
        "firing_rate": [c / s if s else 0.0 for c, s in zip(sc.counts, sc.sizes)],
        "logits": logits,
    }


# --- training -----------------------------------------------------------------------------------


def _make_optimizer(model: nn.Module, cfg: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs) if cfg.schedule == "cosine" else None
    return opt, sched


def _call(hooks: Sequence[Any], method: str, *args: Any) -> None:
    for h in hooks:
        fn = getattr(h, method, None)
        if fn is not None:
            fn(*args)


class _ScaledLoss:
    """``loss_fn`` times the AMP ``GradScaler``'s scale, so a step function's own ``backward`` is
    scaled (``scaler.scale(loss).backward()`` of the official code); hooks see scaled gradients."""

    def __init__(self, loss_fn: Callable, scaler: Any):
        self.loss_fn, self.scaler = loss_fn, scaler

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(self.loss_fn(out.float(), y))


def fit(
    model: nn.Module,
    train_ds,
    test_ds,
    cfg: TrainConfig,
    step_fn: Callable | None = None,
    hooks: Sequence[Any] = (),
    eval_every: int = 1,
) -> list[dict]:
    """Train ``model`` and return the history: one dict per epoch with train loss, test accuracy
    per time step, spikes per sample and wall time.

    ``step_fn`` defaults to :func:`bptt_step`. ``hooks`` are objects with any of the methods
    ``after_backward(model, step)`` (dense gradients present, before the optimiser: DST regrowth),
    ``after_step(model, step)`` (after the optimiser: re-apply pruning masks) and
    ``after_epoch(epoch, model, record)`` (Early-Bird distances; may add keys to ``record``).
    With ``cfg.checkpoint_dir``, training resumes from ``last.pt`` and a finished run is loaded
    instead of retrained (hook state is not checkpointed: hooks that keep state must be
    reconstructible from the model, e.g. masks read back from zero weights).
    """
    cfg.validate()
    step_fn = step_fn or bptt_step
    loss_fn = make_loss(cfg.loss, **cfg.loss_kw)
    device = cfg.resolved_device()
    model.to(device)
    gen = seed_everything(cfg.seed)
    opt, sched = _make_optimizer(model, cfg)
    _call(hooks, "set_optimizer", opt)  # DST resets the optimizer state of regrown weights
    history: list[dict] = []
    start_epoch = 0
    ckpt = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        state = checkpoint.load(ckpt, device)
        if state.get("config") != cfg.key():
            raise ValueError(
                f"checkpoint {ckpt} was written for a different configuration; "
                f"delete it or use another checkpoint_dir"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        checkpoint.set_rng_state(state["rng"], gen)
    x_all, y_all = data.tensors(train_ds)
    temporal = bool(getattr(train_ds, "is_temporal", False))
    scaler = torch.amp.GradScaler("cuda") if cfg.amp and device.type == "cuda" else None  # AMP: GPU only
    global_step = start_epoch * -(-len(y_all) // cfg.batch_size)
    bar = tqdm(range(start_epoch, cfg.epochs), desc="train", disable=not cfg.progress, initial=start_epoch,
               total=cfg.epochs)
    for epoch in bar:
        t0 = time.time()
        model.train()
        losses = []
        for idx in data.batches(len(y_all), cfg.batch_size, gen):
            xb = x_all[idx]
            if cfg.augment != "none":
                if temporal:
                    raise ValueError(f"augment={cfg.augment!r} is for static images; this dataset is temporal")
                xb = augment_batch(xb, cfg.augment, gen, **cfg.augment_kw)
            x_seq = encode_batch(xb, cfg.T, cfg.encoding, temporal, gen).to(device)
            y = y_all[idx].to(device)
            opt.zero_grad(set_to_none=True)
            functional.reset_net(model)
            if scaler is not None:
                with torch.autocast("cuda", dtype=torch.float16):
                    scaled = step_fn(model, x_seq, y, _ScaledLoss(loss_fn, scaler))
                losses.append(scaled / scaler.get_scale())
            else:
                losses.append(step_fn(model, x_seq, y, loss_fn))
            functional.reset_net(model)
            _call(hooks, "after_backward", model, global_step)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            _call(hooks, "after_step", model, global_step)
            global_step += 1
        if sched is not None:
            sched.step()
        rec: dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "time_s": time.time() - t0}
        if test_ds is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == cfg.epochs):
            ev = evaluate(model, test_ds, cfg.T, cfg.encoding, device=device, seed=cfg.seed)
            rec.update(test_acc=ev["acc"], test_acc_per_t=ev["acc_per_t"], spikes_per_sample=ev["spikes_per_sample"])
        _call(hooks, "after_epoch", epoch + 1, model, rec)
        history.append(rec)
        bar.set_postfix(loss=f"{rec['train_loss']:.3f}", acc=f"{rec.get('test_acc', float('nan')):.3f}")
        if ckpt is not None:
            checkpoint.save(ckpt, {
                "config": cfg.key(), "epoch": epoch + 1, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched else None,
                "history": history, "rng": checkpoint.rng_state(gen),
            })
    return history
