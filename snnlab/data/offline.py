"""The embedded offline datasets: scikit-learn's ``digits`` and ``mnist1d`` (generated in memory).
Nothing is read from or written to disk."""

from __future__ import annotations

import functools
import random

from mnist1d.data import get_dataset_args, make_dataset
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import numpy as np
import torch

from .. import checks
from .registry import (
    DatasetInfo,
    _DIGIT_CLASSES,
    _Entry,
    _register,
)


# ----------------------------------------------------------------------------------------------
# Embedded offline datasets
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _digits_arrays():

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                           random_state=0)
    out = {"train": (x[train_idx], y[train_idx]), "test": (x[test_idx], y[test_idx])}
    for xs, ys in out.values():
        xs.setflags(write=False)
        ys.setflags(write=False)
    return out


def _digits_read(split):
    x, y = _digits_arrays()[split]
    return torch.tensor(x), torch.tensor(y), _DIGIT_CLASSES


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, seed: int):
    """Generate MNIST-1D in memory with the package's generator; restores global RNG state.

    ``make_dataset`` only uses numpy and scipy (no download); ``get_dataset`` is avoided
    because it reads/writes a pickle and may download.
    """

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    out = {"train": (d["x"], d["y"]), "test": (d["x_test"], d["y_test"])}
    out = {k: (np.asarray(a, np.float32)[:, None], np.asarray(b, np.int64)) for k, (a, b) in out.items()}
    for xs, ys in out.values():
        xs.setflags(write=False)
        ys.setflags(write=False)
    return out


def _mnist1d_check(o: dict) -> dict:
    return {"num_samples": checks.integer("num_samples", o["num_samples"], 10),
            "seed": checks.integer("seed", o["seed"], 0, 2**32 - 1)}


def _mnist1d_read(split, num_samples, seed):
    x, y = _mnist1d_arrays(num_samples, seed)[split]
    return torch.tensor(x), torch.tensor(y), _DIGIT_CLASSES


_register(_Entry(
    DatasetInfo("digits", 10, (1, 8, 8), False, True,
                "https://archive.ics.uci.edu/dataset/80 (scikit-learn load_digits)",
                "8x8 handwritten digits bundled with scikit-learn; 1437 train / 360 test "
                "(stratified, random_state=0); pixels in [0, 1]",
                num_samples={"train": 1437, "test": 360}),
    reader=_digits_read, check=lambda o: {}))

_register(_Entry(
    DatasetInfo("mnist1d", 10, (1, 40), False, True,
                "https://github.com/greydanus/mnist1d (generated locally)",
                "MNIST-1D generated in memory by mnist1d.data.make_dataset (default args); "
                "standardised signals of length 40; 80/20 split",
                num_samples={"train": 4000, "test": 1000},
                options={"num_samples": 5000, "seed": 42}),
    reader=_mnist1d_read, check=_mnist1d_check))
