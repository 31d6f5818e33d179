"""Training: the loop (:mod:`.loop`), per-step losses (:mod:`.losses`), exact-resume checkpoints
(:mod:`.checkpoint`) and the one cached-run mechanism (:mod:`.runs`).

``from snnlab import train`` gives the names a notebook needs: ``train.fit``, ``train.evaluate``,
``train.TrainConfig``, ``train.bptt_step``, ``train.ce_loss``, ``train.TETLoss``, ``train.CachedRun`` ...
"""

from ..core.encoding import encode_batch
from ..grad.bptt import bptt_step
from . import checkpoint, runs
from .loop import SpikeCounter, TrainConfig, evaluate, fit, seed_everything
from .losses import LOSSES, TETLoss, ce_loss, make_loss
from .runs import CachedRun, cached_run

__all__ = [
    "checkpoint",
    "runs",
    "TrainConfig",
    "seed_everything",
    "evaluate",
    "fit",
    "SpikeCounter",
    "LOSSES",
    "ce_loss",
    "TETLoss",
    "make_loss",
    "bptt_step",
    "encode_batch",
    "CachedRun",
    "cached_run",
]
