r"""Per-time-step losses: ``loss_fn(o_t, y)`` with ``o_t`` ``[B, C]``; a training objective is their
mean over the T steps (lth: cross-entropy of each step's output averaged over T; sltt Eq. S13:
:math:`\frac1T\sum_t (1-\lambda)\,CE(o[t], y) + \lambda\,MSE(o[t], V_{th})`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "ce_loss", "TETLoss", "make_loss"]

LOSSES = ("ce", "tet")


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
