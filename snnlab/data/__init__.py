"""Datasets: the registry (:mod:`.registry`) and its readers (:mod:`.offline`, :mod:`.images`,
:mod:`.events`, :mod:`.dvs`), each registering itself on import. ``from snnlab import data; data.load("digits")``.

The offline defaults (``digits``, ``mnist1d``) need nothing; the paper datasets are read from the
data root (:func:`data_root`) in their official non-pickle formats and raise
:class:`DatasetNotFoundError` (expected paths, source, md5) when absent.
"""

from . import offline, images, events, dvs  # noqa: F401  (importing registers the readers, in this order)
from .dvs import dvs_frames, read_aedat2_dvs128, read_aedat31_polarity, read_gesture_labels
from .events import nmnist_frames, read_nmnist_events, shd_bins
from .registry import (
    SPLITS,
    ArrayDataset,
    DatasetInfo,
    DatasetNotFoundError,
    available,
    batches,
    data_root,
    info,
    load,
    loaders,
    present,
    tensors,
)

__all__ = [
    "SPLITS",
    "ArrayDataset",
    "DatasetInfo",
    "DatasetNotFoundError",
    "available",
    "batches",
    "data_root",
    "info",
    "load",
    "loaders",
    "present",
    "tensors",
    "read_nmnist_events",
    "nmnist_frames",
    "shd_bins",
    "read_aedat31_polarity",
    "read_aedat2_dvs128",
    "read_gesture_labels",
    "dvs_frames",
]
