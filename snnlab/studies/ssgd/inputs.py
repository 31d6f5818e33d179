"""Inputs of the ssgd experiments (Figs. 6-8): latency-coded samples of the static sets, binned events of
N-MNIST and SHD, and a check of the latency code against E.1's formula computed by hand."""

from __future__ import annotations

import math

import torch

from ... import data
from . import training as tr

__all__ = ["FIGURE", "paper_sets_present", "sample", "check_latency"]

FIGURE = {"fashion_mnist": 6, "nmnist": 7, "shd": 8}


def paper_sets_present() -> dict[str, bool]:
    """Whether F-MNIST, N-MNIST and SHD can be read from the data root (a cheap load of a few samples)."""
    out = {}
    for name in FIGURE:
        try:
            data.load(name, "test", max_samples=1)
            out[name] = True
        except data.DatasetNotFoundError:
            out[name] = False
    return out


def sample(name: str, T: int, dt: float, index: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input, spikes [T, N_in])`` of one test sample (``index``, else one drawn with ``seed``)."""
    spec = tr.Spec(dataset=name, T=T, dt=dt)
    if name in tr.TEMPORAL:
        ds = data.load(name, "test", max_samples=64, **({"frames": T} if name == "nmnist" else {"T": T}),
                       binary=True)
    else:
        ds, _ = tr.load_data(spec)
    i = int(torch.randint(len(ds), (1,), generator=torch.Generator().manual_seed(seed))) if index is None else index
    x = ds.x[i:i + 1]
    s = tr.to_spikes(x, spec, ds.is_temporal)[:, 0]
    return x[0], s.reshape(s.shape[0], -1)


def check_latency(image: torch.Tensor, spikes: torch.Tensor, dt: float, tau_eff: float = 20.0,
                  theta: float = 0.2) -> dict:
    """Every input's spikes against E.1 by hand (``math.log`` per pixel): at most one spike, at step
    ``floor(tau_eff * log(x / (x - theta)) / dt)`` when that is < T, none otherwise."""
    T = spikes.shape[0]
    flat = image.flatten().tolist()
    mism = 0
    for i, x in enumerate(flat):
        if x > theta and math.floor(tau_eff * math.log(x / (x - theta)) / dt) < T:
            want = [math.floor(tau_eff * math.log(x / (x - theta)) / dt)]
        else:
            want = []
        got = torch.nonzero(spikes[:, i]).flatten().tolist()
        mism += got != want
    return {"max_spikes_per_input": int(spikes.sum(0).max()), "mismatches": mism,
            "spike_fraction": float(spikes.mean()), "inputs": len(flat)}


