r"""Readers of the DVS camera datasets in their original formats: DVS128-Gesture (AEDAT 3.1
recordings cut into gestures by ``*_labels.csv``) and CIFAR10-DVS (AEDAT 2.0, one file per
sample). Both are integrated into ``[frames, 2, H, W]`` event-count frames and register
themselves with :mod:`snnlab.data.registry`.

Format facts (read from public sources, not copied):

* AEDAT 3.1 (DVS128-Gesture): ASCII header lines starting with ``#`` (the first is
  ``#!AER-DAT3.1``, the last ``#!END-HEADER``), then event packets. Each packet has a 28-byte
  little-endian header ``int16 eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset,
  int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid`` followed by
  ``eventCapacity * eventSize`` bytes. Polarity events (``eventType == 1``, 8 bytes) are
  ``uint32 data, int32 timestamp``: bit 0 = valid mark, bit 1 = polarity (1 = ON), bits 2..16 =
  y, bits 17..31 = x; the full timestamp is ``eventTSOverflow << 31 | timestamp`` (us). Source:
  libcaer ``include/libcaer/events/common.h`` and ``polarity.h`` (docs.ros.org listings); the
  same layout is decoded by spikingjelly ``datasets/utils.py::load_aedat_v3`` and tonic
  ``io.py::read_dvs_ibm``. (0, 0) is the upper-left pixel.
* DVS128-Gesture layout: ``DvsGesture/trials_to_{train,test}.txt`` list the recordings
  (``userNN_<lighting>.aedat``), each with ``<recording>_labels.csv`` (header
  ``class,startTime_usec,endTime_usec``, classes 1..11). A gesture is the events with
  ``start <= t < end`` and label ``class - 1`` (spikingjelly ``datasets/dvs128_gesture.py``).
* AEDAT 2.0 (CIFAR10-DVS): ``#`` header lines (``#!AER-DAT2.0``), then big-endian records of a
  32-bit address and a 32-bit timestamp (us). DVS128 address: bit 0 = polarity (1 = OFF),
  bits 1..7 = x, bits 8..14 = y (tonic ``io.py::get_aer_events_from_file`` / ``read_dvs_128``).
  The SLTT official code (``utils/cifar10_dvs.py``, ``read_bin``) maps them to
  ``x = 127 - bits 1..7``, ``y = bits 8..14``, ``p = 1 - bit 0``; we follow it.
  (Recent spikingjelly instead returns the transposed, flipped ``x = 127 - y_raw``,
  ``y = 127 - x_raw``.)
* CIFAR10-DVS has no official split. The SLTT code takes, per class, the files
  ``cifar10_<class>_<i>.aedat`` with ``i < 0.9 * 1000`` for training and the rest for test;
  ``train_fraction`` (0.9) reproduces it.

Frames (``split_by``), as spikingjelly's ``cal_fixed_frames_number_segment_index`` used by the
SLTT code: ``"number"`` cuts the N events (file order) into ``frames`` slices of ``N // frames``
events, the last slice taking the rest; ``"time"`` cuts ``[t_0, t_last]`` into windows of
``dt = (t_last - t_0) // frames`` us, event -> ``min((t - t_0) // dt, frames - 1)`` (``dt`` is
at least 1). Channel 0 = OFF, 1 = ON; rows = y, columns = x.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from .registry import (
    DatasetInfo,
    _CIFAR10_CLASSES,
    _Corrupt,
    _Entry,
    _MD5,
    _limit,
    _register,
)

__all__ = ["read_aedat31_polarity", "read_aedat2_dvs128", "read_gesture_labels", "dvs_frames",
           "resize_frames", "DVS_SIZE", "GESTURE_CLASSES"]

DVS_SIZE = 128
SPLIT_BY = ("number", "time")
GESTURE_CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
    "arm_roll", "air_drums", "air_guitar", "other_gestures",
)
_POLARITY_EVENT = 1
_PACKET_HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"),
                           ("ts_offset", "<i4"), ("ts_overflow", "<i4"), ("capacity", "<i4"),
                           ("number", "<i4"), ("valid", "<i4")])


# --- decoding --------------------------------------------------------------------------------------
def _split_header(raw: bytes, path: Path, version: bytes) -> int:
    """Offset of the first byte after the ``#`` header lines; checks the ``#!AER-DAT`` version."""
    if not raw.startswith(b"#!AER-DAT" + version):
        first = raw[:20].split(b"\n")[0]
        raise _Corrupt(f"{path} does not start with '#!AER-DAT{version.decode()}' (found {first!r})")
    pos = 0
    while pos < len(raw) and raw[pos:pos + 1] == b"#":
        end = raw.find(b"\n", pos)
        if end < 0:
            raise _Corrupt(f"{path}: the ASCII header never ends")
        line = raw[pos:end]
        pos = end + 1
        if line.startswith(b"#!END-HEADER"):
            break
    return pos


def read_aedat31_polarity(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Decode the valid polarity events of an AEDAT 3.1 file into ``x, y, p, t`` int64 arrays.

    Packets of other event types are skipped. Of a polarity packet, the first ``eventNumber``
    events are read and those whose valid bit (bit 0) is 0 are dropped.
    """
    path = Path(path)
    raw = path.read_bytes()
    pos = _split_header(raw, path, b"3.")
    words, overflow = [], []
    while pos < len(raw):
        if pos + _PACKET_HEADER.itemsize > len(raw):
            raise _Corrupt(f"{path}: truncated packet header at byte {pos}")
        head = np.frombuffer(raw, _PACKET_HEADER, count=1, offset=pos)[0]
        size, capacity = int(head["size"]), int(head["capacity"])
        if size <= 0 or capacity < 0 or not 0 <= int(head["number"]) <= capacity:
            raise _Corrupt(f"{path}: bad packet header at byte {pos} (eventSize {size}, "
                           f"eventCapacity {capacity}, eventNumber {int(head['number'])})")
        body = pos + _PACKET_HEADER.itemsize
        pos = body + size * capacity
        if pos > len(raw):
            raise _Corrupt(f"{path}: packet at byte {body - 28} runs past the end of the file")
        if int(head["type"]) != _POLARITY_EVENT:
            continue
        if size != 8:
            raise _Corrupt(f"{path}: polarity packet with eventSize {size} (expected 8)")
        ev = np.frombuffer(raw, "<u4", count=2 * int(head["number"]), offset=body).reshape(-1, 2)
        words.append(ev)
        overflow.append(np.full(len(ev), int(head["ts_overflow"]), np.int64))
    ev = np.concatenate(words) if words else np.zeros((0, 2), np.uint32)
    ovf = np.concatenate(overflow) if overflow else np.zeros(0, np.int64)
    data = ev[:, 0].astype(np.int64)
    keep = (data & 1) == 1
    data, ovf = data[keep], ovf[keep]
    t = (ovf << 31) | (ev[keep, 1].astype(np.int64) & 0x7FFFFFFF)
    return {"x": (data >> 17) & 0x7FFF, "y": (data >> 2) & 0x7FFF, "p": (data >> 1) & 1, "t": t}


def read_aedat2_dvs128(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Decode a CIFAR10-DVS AEDAT 2.0 file (big-endian uint32 address, uint32 timestamp) into
    ``x, y, p, t`` int64 arrays with the SLTT official orientation: ``x = 127 - bits 1..7``,
    ``y = bits 8..14``, ``p = 1 - bit 0`` (1 = ON)."""
    path = Path(path)
    raw = path.read_bytes()
    pos = _split_header(raw, path, b"2.")
    if (len(raw) - pos) % 8:
        raise _Corrupt(f"{path}: {len(raw) - pos} event bytes, not a multiple of the 8-byte record")
    rec = np.frombuffer(raw, ">u4", offset=pos).reshape(-1, 2).astype(np.int64)
    addr = rec[:, 0]
    return {"x": (DVS_SIZE - 1) - ((addr >> 1) & 0x7F), "y": (addr >> 8) & 0x7F,
            "p": 1 - (addr & 1), "t": rec[:, 1]}


def read_gesture_labels(path: str | os.PathLike) -> np.ndarray:
    """``[n, 3]`` int64 rows ``(label 0..10, start_us, end_us)`` of a ``*_labels.csv``."""
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if not lines or not lines[0].lower().startswith("class"):
        raise _Corrupt(f"{path}: expected the header 'class,startTime_usec,endTime_usec'")
    try:
        rows = np.array([[int(v) for v in ln.split(",")] for ln in lines[1:]], np.int64)
    except ValueError:
        raise _Corrupt(f"{path}: a row is not three integers") from None
    rows = rows.reshape(-1, 3) if rows.size else np.zeros((0, 3), np.int64)
    if rows.ndim != 2 or rows.shape[1] != 3:
        raise _Corrupt(f"{path}: rows must be 'class,startTime_usec,endTime_usec'")
    if rows.size and (rows[:, 0].min() < 1 or rows[:, 0].max() > len(GESTURE_CLASSES)):
        raise _Corrupt(f"{path}: class outside 1..{len(GESTURE_CLASSES)}")
    rows[:, 0] -= 1
    return rows


# --- frames ----------------------------------------------------------------------------------------
def dvs_frames(events: Mapping[str, np.ndarray], frames: int, split_by: str = "number",
               binary: bool = False, size: int = DVS_SIZE) -> np.ndarray:
    """Integrate ``x, y, p, t`` events of a 128x128 sensor into ``[frames, 2, 128, 128]``
    float32 counts (see the module docstring for ``split_by``), then resize to ``size``
    (:func:`resize_frames`) and, if ``binary``, clip to 1/0 (after resizing)."""
    frames = checks.integer("frames", frames, 1)
    checks.choice("split_by", split_by, SPLIT_BY)
    size = checks.integer("size", size, 1, DVS_SIZE)
    x, y, p, t = (np.asarray(events[k], np.int64) for k in ("x", "y", "p", "t"))
    n = t.size
    if n and (x.min() < 0 or x.max() >= DVS_SIZE or y.min() < 0 or y.max() >= DVS_SIZE):
        raise _Corrupt(f"an event lies outside the {DVS_SIZE}x{DVS_SIZE} sensor")
    if split_by == "number":
        per = n // frames  # 0 when n < frames: every event lands in the last slice
        b = np.minimum(np.arange(n) // per, frames - 1) if per else np.full(n, frames - 1)
    else:
        dt = max(int(t[-1] - t[0]) // frames, 1) if n else 1
        b = np.clip((t - (t[0] if n else 0)) // dt, 0, frames - 1)
    flat = ((b * 2 + (p != 0)) * DVS_SIZE + y) * DVS_SIZE + x
    counts = np.bincount(flat, minlength=frames * 2 * DVS_SIZE * DVS_SIZE).astype(np.float32)
    out = resize_frames(counts.reshape(frames, 2, DVS_SIZE, DVS_SIZE), size)
    if binary:
        out = (out > 0).astype(np.float32)
    return out


def resize_frames(x: np.ndarray, size: int) -> np.ndarray:
    """Resize ``[..., H, W]`` frames to ``[..., size, size]`` by antialiased bilinear
    interpolation (``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``, which
    approximates PIL's bilinear resize used by torchvision's ``Resize`` on PIL images); a no-op
    when the size already matches."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    lead = x.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).reshape(-1, 1, *x.shape[-2:])
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(*lead, size, size).numpy()


def _dvs_check(extra: dict | None = None):
    def check(o: dict) -> dict:
        out = {"frames": checks.integer("frames", o["frames"], 1),
               "split_by": checks.choice("split_by", o["split_by"], SPLIT_BY),
               "size": checks.integer("size", o["size"], 1, DVS_SIZE),
               "binary": checks.boolean("binary", o["binary"]),
               "verify": checks.boolean("verify", o["verify"]),
               "max_samples": checks.optional_integer("max_samples", o["max_samples"], 1)}
        if "train_fraction" in o:
            out["train_fraction"] = checks.number_in("train_fraction", o["train_fraction"], 0, 1,
                                                     lo_open=True, hi_open=True)
        return out
    return check


# --- DVS128-Gesture -------------------------------------------------------------------------------
_GESTURE_DIR = "DvsGesture"


def _gesture_locate(folder, split):
    base = folder / _GESTURE_DIR
    listing = base / f"trials_to_{split}.txt"
    if not listing.is_file():
        raise _Corrupt(str(listing))
    names = [ln.strip() for ln in listing.read_text(errors="replace").splitlines() if ln.strip()]
    if not names:
        raise _Corrupt(f"{listing} (it lists no recording)")
    files = [base / n for n in names]
    missing = [str(p) for f in files
               for p in (f, f.with_name(f"{f.stem}_labels.csv")) if not p.is_file()]
    if missing:
        raise _Corrupt(", ".join(missing))
    return files


def _gesture_read(folder, split, files, frames, split_by, size, binary, verify, max_samples):
    limit = max_samples if max_samples is not None else np.iinfo(np.int64).max
    xs, ys = [], []
    for path in files:
        if len(ys) >= limit:
            break
        labels = read_gesture_labels(path.with_name(f"{path.stem}_labels.csv"))
        ev = read_aedat31_polarity(path)
        for label, start, end in labels[: limit - len(ys)]:
            keep = (ev["t"] >= start) & (ev["t"] < end)
            xs.append(dvs_frames({k: v[keep] for k, v in ev.items()}, frames, split_by, binary, size))
            ys.append(int(label))
    x = np.stack(xs) if xs else np.zeros((0, frames, 2, size, size), np.float32)
    return x, np.asarray(ys, np.int64), GESTURE_CLASSES


# --- CIFAR10-DVS ----------------------------------------------------------------------------------
_INDEX = re.compile(r"(\d+)$")


def _file_index(path: Path):
    m = _INDEX.search(path.stem)
    return (0, int(m.group(1)), path.name) if m else (1, 0, path.name)


def _cifar_dvs_locate(folder, split):
    missing = [str(folder / c) for c in _CIFAR10_CLASSES if not any((folder / c).glob("*.aedat"))]
    if missing:
        raise _Corrupt(", ".join(f"{m}/*.aedat" for m in missing))
    return [sorted((folder / c).glob("*.aedat"), key=_file_index) for c in _CIFAR10_CLASSES]


def _cifar_dvs_read(folder, split, files, frames, split_by, size, binary, verify, max_samples,
                    train_fraction):
    per_class = []
    for paths in files:  # SLTT official split: per class, the first fraction (by index) trains
        n_train = int(train_fraction * len(paths) + 1e-9)
        per_class.append(paths[:n_train] if split == "train" else paths[n_train:])
    order = []  # classes in turn, so that a prefix is class-balanced
    for i in range(max(len(p) for p in per_class)):
        order.extend((c, p[i]) for c, p in enumerate(per_class) if i < len(p))
    order = order[: _limit(len(order), max_samples)]
    x = np.empty((len(order), frames, 2, size, size), np.float32)
    y = np.empty(len(order), np.int64)
    for i, (label, path) in enumerate(order):
        try:
            x[i] = dvs_frames(read_aedat2_dvs128(path), frames, split_by, binary, size)
        except _Corrupt as exc:
            raise _Corrupt(f"{path}: {exc}") from None
        y[i] = label
    return x, y, _CIFAR10_CLASSES


_DVS_OPTS = {"frames": 10, "split_by": "number", "size": DVS_SIZE, "binary": False,
             "verify": False, "max_samples": None}

_register(_Entry(
    DatasetInfo("dvs_gesture", 11, (20, 2, DVS_SIZE, DVS_SIZE), True, False,
                "https://research.ibm.com/interactive/dvsgesture/ (DvsGesture.tar.gz, IBM Box "
                "https://ibm.ent.box.com/s/3hiq58ww1pbbjrinh367ykfdf60xsfm8)",
                "IBM DVS128-Gesture original AEDAT 3.1 recordings (DvsGesture.tar.gz extracted), "
                "cut into gestures by <recording>_labels.csv, split by trials_to_{train,test}.txt, "
                "integrated into `frames` slices -> [T, 2, size, size] event counts",
                files={s: (f"dvs_gesture/{_GESTURE_DIR}/trials_to_{s}.txt",
                           f"dvs_gesture/{_GESTURE_DIR}/<recording>.aedat",
                           f"dvs_gesture/{_GESTURE_DIR}/<recording>_labels.csv")
                       for s in ("train", "test")},
                md5=_MD5["dvs_gesture"], num_samples={"train": 1176, "test": 288},
                options={**_DVS_OPTS, "frames": 20}),
    reader=_gesture_read, check=_dvs_check(), folder="dvs_gesture", locate=_gesture_locate))

_register(_Entry(
    DatasetInfo("cifar10_dvs", 10, (10, 2, DVS_SIZE, DVS_SIZE), True, False,
                "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (<class>.zip)",
                "CIFAR10-DVS original AEDAT 2.0 files (the ten <class>.zip extracted), split per "
                "class by file index (first `train_fraction` train, as the SLTT code), integrated "
                "into `frames` slices -> [T, 2, size, size] event counts",
                files={s: ("cifar10_dvs/<class>/cifar10_<class>_<i>.aedat",) for s in ("train", "test")},
                md5=_MD5["cifar10_dvs"], num_samples={"train": 9000, "test": 1000},
                options={**_DVS_OPTS, "train_fraction": 0.9}),
    reader=_cifar_dvs_read, check=_dvs_check(), folder="cifar10_dvs", locate=_cifar_dvs_locate))
