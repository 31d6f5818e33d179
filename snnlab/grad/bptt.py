"""Backpropagation through time: the reference gradient every other method is compared with."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["bptt_step"]


def bptt_step(model: nn.Module, x_seq: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> float:
    """Backpropagation through time: one multi-step forward, mean per-step loss, one backward."""
    out = model(x_seq)  # [T, B, C]
    loss = torch.stack([loss_fn(o_t, y) for o_t in out]).mean()
    loss.backward()
    return float(loss.detach())
