"""Checkpoints that resume exactly: every RNG state (torch, numpy, python, the data generator)
round-trips through tensors, so ``torch.load(..., weights_only=True)`` reads it back, and files
are written atomically (:func:`snnlab.paths.atomic_write_bytes`)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import torch

from ..paths import atomic_write_bytes

__all__ = ["rng_state", "set_rng_state", "save", "load"]


def rng_state(gen: torch.Generator) -> dict:
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


def set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = json.loads(bytes(state["numpy"].tolist()).decode())
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    v, st, g = json.loads(bytes(state["python"].tolist()).decode())
    random.setstate((v, tuple(st), g))
    gen.set_state(state["gen"])


def save(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint written by :func:`save`, loaded with ``weights_only=True`` (no pickle code runs)."""
    return torch.load(path, map_location=device, weights_only=True)
