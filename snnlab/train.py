r"""BPTT training, per-time-step evaluation, spike counting, checkpoints that resume exactly.

Losses are *per time step*: ``loss_fn(o_t, y)`` with ``o_t`` ``[B, C]``; the training objective
is their mean over the T steps (lth: cross-entropy of each step's output averaged over T; sltt
Eq. S13: :math:`\frac1T\sum_t (1-\lambda)\,CE(o[t], y) + \lambda\,MSE(o[t], V_{th})`).

A *step function* ``step_fn(model, x_seq, y, loss_fn) -> float`` runs the forward and backward
pass of one batch (``x_seq`` ``[T, B, ...]``); :func:`bptt_step` is the default and
:func:`snnlab.sltt.sltt_step` the online alternative. :func:`fit` zeroes gradients before it,
steps the optimiser after it and resets the neurons around it.

Checkpoints: with ``cfg.checkpoint_dir`` set, :func:`fit` writes ``last.pt`` atomically after
every epoch (model, optimiser, scheduler, history, all RNG states) and resumes from it, giving the
same final numbers as an uninterrupted run. :func:`cache_dir` keys such a directory by a hash of
everything that determines the result, so notebooks that need the same trained model share it.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn

from . import results

__all__ = [
    "TrainConfig",
    "seed_everything",
    "ce_loss",
    "TETLoss",
    "make_loss",
    "bptt_step",
    "encode_batch",
    "evaluate",
    "fit",
    "cache_dir",
    "SpikeCounter",
]


def seed_everything(seed: int) -> torch.Generator:
    """Seed ``random``, numpy and torch; return a torch Generator seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid; allowed values: integers >= 0")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# --- losses -------------------------------------------------------------------------------------


def ce_loss(o_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of one time step's output (lth)."""
    return F.cross_entropy(o_t, y)


@dataclass(frozen=True)
class TETLoss:
    r"""sltt Eq. S13 / S14: :math:`(1-\lambda)\,CE(o_t, y) + \lambda\,MSE(o_t, \phi)`.

    ``target="vth"``: :math:`\phi = V_{th}` everywhere (Eq. S13, TET's regulariser);
    ``target="onehot"``: :math:`\phi` = the one-hot label (Eq. S14, DVS-CIFAR10).
    """

    lam: float = 0.05
    v_th: float = 1.0
    target: str = "vth"

    def __post_init__(self) -> None:
        if not 0 <= self.lam <= 1:
            raise ValueError(f"lam={self.lam!r} is invalid; allowed values: [0, 1]")
        if self.target not in ("vth", "onehot"):
            raise ValueError(f"target={self.target!r} is invalid; allowed values: ['vth', 'onehot']")

    def __call__(self, o_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(o_t, y)
        if self.lam == 0:
            return ce
        if self.target == "vth":
            phi = torch.full_like(o_t, self.v_th)
        else:
            phi = F.one_hot(y, o_t.shape[-1]).to(o_t.dtype)
        return (1 - self.lam) * ce + self.lam * F.mse_loss(o_t, phi)


def make_loss(name: str, **kw: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``"ce"`` -> :func:`ce_loss`; ``"tet"`` -> :class:`TETLoss` (``lam``, ``v_th``, ``target``)."""
    if name == "ce":
        return ce_loss
    if name == "tet":
        return TETLoss(**kw)
    raise ValueError(f"loss={name!r} is unknown; allowed values: ['ce', 'tet']")


def bptt_step(model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> float:
    """Backpropagation through time: one multi-step forward, mean per-step loss, one backward."""
    out = model(x_seq)  # [T, B, C]
    loss = torch.stack([loss_fn(o_t, y) for o_t in out]).mean()
    loss.backward()
    return float(loss.detach())


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

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "T"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} is invalid; allowed values: integers >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} is invalid; allowed values: numbers > 0")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay!r} is invalid; allowed values: numbers >= 0")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer={self.optimizer!r} is unknown; allowed values: ['sgd', 'adam']")
        if self.schedule not in ("cosine", "none"):
            raise ValueError(f"schedule={self.schedule!r} is unknown; allowed values: ['cosine', 'none']")
        make_loss(self.loss, **self.loss_kw)
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device={self.device!r} is unknown; allowed values: ['cpu', 'cuda', 'auto']")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def key(self) -> dict:
        d = asdict(self)
        for k in ("checkpoint_dir", "progress"):
            d.pop(k)
        return d


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_dir(kind: str, **key: Any) -> Path:
    """``<results root>/_cache/<kind>-<hash of key>``: where a run keyed by ``key`` checkpoints."""
    return results.results_root() / "_cache" / f"{kind}-{_hash(key)}"


# --- data ---------------------------------------------------------------------------------------


def encode_batch(x: torch.Tensor, T: int, encoding: str, temporal: bool, generator: torch.Generator | None):
    """``[B, ...]`` static input -> ``[T, B, ...]`` by ``encoding``; temporal input ``[B, T, ...]``
    is only made time-major (its own T is kept)."""
    from . import data

    if temporal:
        return data.to_time_major(x)
    return data.encode(x, T, encoding, generator=generator)


def _tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(ds, "tensors"):
        return ds.tensors[0], ds.tensors[1]
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs), torch.as_tensor(ys)


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


# --- evaluation ---------------------------------------------------------------------------------


class SpikeCounter:
    """Counts output spikes of every LIF node while active (forward hooks)."""

    def __init__(self, model: nn.Module):
        from .models import spiking_neurons

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
    x_all, y_all = _tensors(ds)
    temporal = bool(getattr(ds, "is_temporal", False))
    gen = torch.Generator().manual_seed(seed)
    outs = []
    with SpikeCounter(model) as sc:
        for idx in _batches(len(y_all), batch_size, None):
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


def _rng_state(gen: torch.Generator) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.frombuffer(json.dumps(_np_state()).encode(), dtype=np.uint8).copy()),
        "python": torch.from_numpy(np.frombuffer(json.dumps(_py_state()).encode(), dtype=np.uint8).copy()),
        "gen": gen.get_state(),
    }


def _np_state() -> list:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _py_state() -> list:
    v, state, g = random.getstate()
    return [v, list(state), g]


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = json.loads(bytes(state["numpy"].tolist()).decode())
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    v, st, g = json.loads(bytes(state["python"].tolist()).decode())
    random.setstate((v, tuple(st), g))
    gen.set_state(state["gen"])


def _save_checkpoint(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    results.atomic_write_bytes(path, buf.getvalue())


def _call(hooks: Sequence[Any], method: str, *args: Any) -> None:
    for h in hooks:
        fn = getattr(h, method, None)
        if fn is not None:
            fn(*args)


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
    import time

    from tqdm.auto import tqdm

    cfg.validate()
    step_fn = step_fn or bptt_step
    loss_fn = make_loss(cfg.loss, **cfg.loss_kw)
    device = cfg.resolved_device()
    model.to(device)
    gen = seed_everything(cfg.seed)
    opt, sched = _make_optimizer(model, cfg)
    history: list[dict] = []
    start_epoch = 0
    ckpt = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
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
        _set_rng_state(state["rng"], gen)
    x_all, y_all = _tensors(train_ds)
    temporal = bool(getattr(train_ds, "is_temporal", False))
    global_step = start_epoch * -(-len(y_all) // cfg.batch_size)
    bar = tqdm(range(start_epoch, cfg.epochs), desc="train", disable=not cfg.progress, initial=start_epoch,
               total=cfg.epochs)
    for epoch in bar:
        t0 = time.time()
        model.train()
        losses = []
        for idx in _batches(len(y_all), cfg.batch_size, gen):
            x_seq = encode_batch(x_all[idx], cfg.T, cfg.encoding, temporal, gen).to(device)
            y = y_all[idx].to(device)
            opt.zero_grad(set_to_none=True)
            functional.reset_net(model)
            losses.append(step_fn(model, x_seq, y, loss_fn))
            functional.reset_net(model)
            _call(hooks, "after_backward", model, global_step)
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
            _save_checkpoint(ckpt, {
                "config": cfg.key(), "epoch": epoch + 1, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched else None,
                "history": history, "rng": _rng_state(gen),
            })
    return history
