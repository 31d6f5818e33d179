"""Readers of the event datasets: N-MNIST (40-bit event files, binned into frames) and SHD (HDF5,
binned into T bins). Each registers itself with :mod:`snnlab.data.registry`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from .. import checks
from .registry import (
    DatasetInfo,
    SPLITS,
    _Corrupt,
    _DIGIT_CLASSES,
    _Entry,
    _MD5,
    _limit,
    _register,
    _require,
)


# --- N-MNIST ---------------------------------------------------------------------------------------
_NMNIST_DIRS = {"train": "Train", "test": "Test"}
_NMNIST_SIZE = 34
_NMNIST_OVERFLOW_Y = 240        # special event marking a timestamp overflow (original Matlab reader)
_NMNIST_OVERFLOW_US = 1 << 13   # time added to that event and every later one


def _nmnist_locate(folder, split):
    base = folder / _NMNIST_DIRS[split]
    files = {d: sorted((base / str(d)).glob("*.bin")) for d in range(10) if (base / str(d)).is_dir()}
    if not any(files.values()):
        raise _Corrupt(f"{base}/<digit>/*.bin (no event files found)")
    # take the classes in turn (0, 1, ..., 9, 0, 1, ...) so that a prefix is class-balanced
    order = []
    queues = [list(v) for _, v in sorted(files.items())]
    for i in range(max(len(q) for q in queues)):
        order.extend(q[i] for q in queues if i < len(q))
    return order


def read_nmnist_events(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Decode one original N-MNIST ``.bin`` file into ``x, y, p, t`` int64 arrays.

    Each event is 40 bits (5 bytes): byte 0 = x (0..33), byte 1 = y (0..33), byte 2 bit 7 =
    polarity (1 = ON), bits 22..0 over bytes 2..4 (big-endian) = timestamp in microseconds.
    An event with y == 240 marks a timestamp overflow: 2**13 us are added to it and to every
    later event, and it is dropped (as in the dataset's original Matlab reader).
    """
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 5:
        raise _Corrupt(f"{path} has {raw.size} bytes, not a multiple of the 5-byte event")
    ev = raw.reshape(-1, 5).astype(np.int64)
    x, y = ev[:, 0], ev[:, 1]
    p = ev[:, 2] >> 7
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    overflow = y == _NMNIST_OVERFLOW_Y
    if overflow.any():
        t = t + _NMNIST_OVERFLOW_US * np.cumsum(overflow)
    keep = ~overflow
    x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    if x.size and (x.max() >= _NMNIST_SIZE or y.max() >= _NMNIST_SIZE):
        raise _Corrupt(f"{path} holds an event outside the 34x34 sensor")
    return {"x": x, "y": y, "p": p, "t": t}


def nmnist_frames(events: Mapping[str, np.ndarray], frames: int,
                  duration_us: int | None = None, binary: bool = False) -> np.ndarray:
    """Integrate events into ``[frames, 2, 34, 34]`` float32 frames (channel = polarity,
    0 = OFF, 1 = ON; rows = y, columns = x) by equal time bins.

    * ``duration_us=None``: the sample's own span ``[t_first, t_last]`` is cut into ``frames``
      equal bins, ``b = floor((t - t_first) * frames / (t_last - t_first + 1))``; every event
      lands in a frame.
    * ``duration_us=D``: a fixed window ``[0, D)`` from the recording start,
      ``b = floor(t * frames / D)``; events at ``t >= D`` are dropped (ssgd: D = 300 ms,
      frames = 300, i.e. 1 ms bins).

    Values are event counts, or 1/0 if ``binary``.
    """
    frames = checks.integer("frames", frames, 1)
    if duration_us is not None:
        duration_us = checks.integer("duration_us", duration_us, 1)
    t = events["t"]
    out_size = frames * 2 * _NMNIST_SIZE * _NMNIST_SIZE
    if t.size == 0:
        return np.zeros((frames, 2, _NMNIST_SIZE, _NMNIST_SIZE), np.float32)
    if duration_us is None:
        t0 = t.min()
        b = (t - t0) * frames // (t.max() - t0 + 1)
        keep = np.ones_like(b, dtype=bool)
    else:
        b = t * frames // duration_us
        keep = b < frames
    flat = ((b * 2 + events["p"]) * _NMNIST_SIZE + events["y"]) * _NMNIST_SIZE + events["x"]
    counts = np.bincount(flat[keep], minlength=out_size).astype(np.float32)
    if binary:
        np.minimum(counts, 1.0, out=counts)
    return counts.reshape(frames, 2, _NMNIST_SIZE, _NMNIST_SIZE)


def _nmnist_check(o: dict) -> dict:
    return {"frames": checks.integer("frames", o["frames"], 1),
            "duration_us": checks.optional_integer("duration_us", o["duration_us"], 1),
            "binary": checks.boolean("binary", o["binary"]),
            "verify": checks.boolean("verify", o["verify"]),
            "max_samples": checks.optional_integer("max_samples", o["max_samples"], 1)}


def _nmnist_read(folder, split, files, frames, duration_us, binary, verify, max_samples):
    files = files[: _limit(len(files), max_samples)]
    x = np.empty((len(files), frames, 2, _NMNIST_SIZE, _NMNIST_SIZE), np.float32)
    y = np.empty(len(files), np.int64)
    for i, path in enumerate(files):
        x[i] = nmnist_frames(read_nmnist_events(path), frames, duration_us, binary)
        y[i] = int(path.parent.name)
    return x, y, _DIGIT_CLASSES


# --- SHD -------------------------------------------------------------------------------------------
_SHD_UNITS = 700
_SHD_CLASSES = 20


def _shd_locate(folder, split):
    return _require([folder / f"shd_{split}.h5"])


def _shd_check(o: dict) -> dict:
    return {"T": checks.integer("T", o["T"], 1),
            "duration": checks.positive("duration", o["duration"]),
            "channels": checks.integer("channels", o["channels"], 1, _SHD_UNITS),
            "binary": checks.boolean("binary", o["binary"]),
            "verify": checks.boolean("verify", o["verify"]),
            "max_samples": checks.optional_integer("max_samples", o["max_samples"], 1)}


def shd_bins(times: np.ndarray, units: np.ndarray, T: int, duration: float = 1.0,
             channels: int = _SHD_UNITS, binary: bool = False) -> np.ndarray:
    """Bin one SHD sample into ``[T, channels]`` float32 spike counts.

    Time bin ``b = floor(t * T / duration)`` for spike time ``t`` in seconds; spikes with
    ``t >= duration`` (or ``t < 0``) are dropped. Channel ``c = floor(u * channels / 700)`` for
    unit ``u`` in 0..699 (``channels=700`` keeps the units; fewer channels sum neighbouring
    units). Counts, or 1/0 if ``binary``.
    """
    T = checks.integer("T", T, 1)
    duration = checks.positive("duration", duration)
    t = np.asarray(times, dtype=np.float64)
    u = np.asarray(units, dtype=np.int64)
    b = np.floor(t * T / duration).astype(np.int64)
    keep = (b >= 0) & (b < T)
    c = u * channels // _SHD_UNITS
    counts = np.bincount(b[keep] * channels + c[keep], minlength=T * channels).astype(np.float32)
    if binary:
        np.minimum(counts, 1.0, out=counts)
    return counts.reshape(T, channels)


def _shd_read(folder, split, files, T, duration, channels, binary, verify, max_samples):
    """HDF5 with ``spikes/times`` (ragged float, seconds), ``spikes/units`` (ragged uint16,
    0..699) and ``labels`` (0..19); class names from ``extra/keys`` when present."""

    path = files[0]
    try:
        with h5py.File(path, "r") as fh:
            try:
                times_ds, units_ds, labels_ds = fh["spikes"]["times"], fh["spikes"]["units"], fh["labels"]
            except KeyError as exc:
                raise _Corrupt(f"{path} lacks spikes/times, spikes/units or labels ({exc})")
            n_all = labels_ds.shape[0] if labels_ds.ndim == 1 else -1
            if n_all < 0 or times_ds.shape != (n_all,) or units_ds.shape != (n_all,):
                raise _Corrupt(f"{path}: labels {labels_ds.shape}, times {times_ds.shape} and "
                               f"units {units_ds.shape} must all be [N]")
            n = _limit(n_all, max_samples)
            labels = np.asarray(labels_ds[:n], dtype=np.int64)
            times, units = times_ds[:n], units_ds[:n]
            classes = None
            if "extra" in fh and "keys" in fh["extra"]:
                keys = fh["extra"]["keys"][()]
                classes = tuple(k.decode() if isinstance(k, bytes) else str(k) for k in keys)
    except OSError as exc:
        raise _Corrupt(f"{path} is not a readable HDF5 file ({exc})")
    if labels.size and (labels.min() < 0 or labels.max() >= _SHD_CLASSES):
        raise _Corrupt(f"{path} holds labels outside 0..{_SHD_CLASSES - 1}")
    x = np.empty((n, T, channels), np.float32)
    for i in range(n):
        t_i, u_i = np.asarray(times[i]), np.asarray(units[i])
        if t_i.shape != u_i.shape or (u_i.size and u_i.max() >= _SHD_UNITS):
            raise _Corrupt(f"{path}: sample {i} has {t_i.shape} times for {u_i.shape} units "
                           f"or a unit >= {_SHD_UNITS}")
        x[i] = shd_bins(t_i, u_i, T, duration, channels, binary)
    if classes is not None and len(classes) != _SHD_CLASSES:
        classes = None
    return x, labels, classes


_register(_Entry(
    DatasetInfo("nmnist", 10, (10, 2, 34, 34), True, False,
                "https://www.garrickorchard.com/datasets/n-mnist (mirror: "
                "https://data.mendeley.com/datasets/468j46mzdv)",
                "N-MNIST original binary event files (Train.zip/Test.zip extracted), integrated "
                "into `frames` equal time bins -> [T, 2, 34, 34] event counts",
                files={s: (f"nmnist/{d}/<digit>/*.bin",) for s, d in _NMNIST_DIRS.items()},
                md5=_MD5["nmnist"], num_samples={"train": 60000, "test": 10000},
                options={"frames": 10, "duration_us": None, "binary": False, "verify": False,
                         "max_samples": None}),
    reader=_nmnist_read, check=_nmnist_check, folder="nmnist", locate=_nmnist_locate))

_register(_Entry(
    DatasetInfo("shd", 20, (100, 700), True, False,
                "https://zenkelab.org/datasets/ (shd_train.h5.zip, shd_test.h5.zip)",
                "Spiking Heidelberg Digits HDF5, binned into T time bins over `duration` "
                "seconds -> [T, channels] spike counts",
                files={s: (f"shd/shd_{s}.h5",) for s in SPLITS},
                md5=_MD5["shd"], num_samples={"train": 8156, "test": 2264},
                options={"T": 100, "duration": 1.0, "channels": _SHD_UNITS, "binary": False,
                         "verify": False, "max_samples": None}),
    reader=_shd_read, check=_shd_check, folder="shd", locate=_shd_locate))
