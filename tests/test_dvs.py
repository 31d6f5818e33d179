"""Tests of the DVS readers (snnlab.data.dvs) on tiny files written here in the exact formats:
DVS128-Gesture (AEDAT 3.1 + *_labels.csv + trials_to_*.txt) and CIFAR10-DVS (AEDAT 2.0)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from snnlab import data

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
GESTURE_MD5 = "8a5c71fb11e24e5ca5b11866ca6c00a1"   # DvsGesture.tar.gz (spikingjelly)
AIRPLANE_MD5 = "0afd5c4bf9ae06af762a77b180354fdd"  # airplane.zip (figshare 4724671; SLTT code)
T31 = 1 << 31


def snapshot(root: Path):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


# ---------------------------------------------------------------------------------------------
# Writers of the official formats (independent of the readers)
# ---------------------------------------------------------------------------------------------
AEDAT31_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                  b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def polarity_event(x, y, p, ts, valid=1):
    """libcaer polarity event: uint32 (x << 17 | y << 2 | p << 1 | valid), int32 timestamp."""
    return struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | valid, ts)


def packet(kind, events: list[bytes], overflow=0, capacity=None, size=8):
    """28-byte packet header (type, source, size, tsOffset, tsOverflow, capacity, number, valid)
    followed by capacity * size bytes (unused capacity filled with 0xFF)."""
    capacity = len(events) if capacity is None else capacity
    body = b"".join(events) + b"\xff" * size * (capacity - len(events))
    head = struct.pack("<hhiiiiii", kind, 1, size, 4, overflow, capacity, len(events), len(events))
    return head + body


def write_labels(path: Path, rows):
    path.write_text("class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n" for c, s, e in rows))


def write_gesture(root: Path):
    base = root / "dvs_gesture" / "DvsGesture"
    base.mkdir(parents=True)
    rec1 = AEDAT31_HEADER + packet(1, [
        polarity_event(5, 7, 1, 100), polarity_event(127, 0, 0, 150),
        polarity_event(1, 1, 1, 160, valid=0),           # invalid: dropped
    ]) + packet(0, [b"\x01" * 8, b"\x02" * 8]) + packet(1, [  # special-event packet: skipped
        polarity_event(3, 4, 1, 10), polarity_event(0, 127, 1, 20),
    ], overflow=1, capacity=3)                            # unused capacity slot: not an event
    (base / "user01_fluorescent.aedat").write_bytes(rec1)
    write_labels(base / "user01_fluorescent_labels.csv", [(1, 100, 151), (11, T31, T31 + 21)])
    rec2 = AEDAT31_HEADER + packet(1, [polarity_event(9, 9, 0, 50), polarity_event(9, 9, 0, 60)])
    (base / "user24_led.aedat").write_bytes(rec2)
    write_labels(base / "user24_led_labels.csv", [(4, 0, 1000)])
    (base / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n\n")
    (base / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return base


AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                 b"# Data format is int32 address, int32 timestamp (8 bytes total)\r\n"
                 b"# Timestamps tick is 1 us\r\n")


def dvs128_record(x_raw, y_raw, off, t):
    """Big-endian uint32 address (y << 8 | x << 1 | off) and uint32 timestamp."""
    return struct.pack(">II", (y_raw << 8) | (x_raw << 1) | off, t)


def write_cifar_dvs(root: Path, per_class=12):
    """File i of class c holds one OFF-bit-0 (ON) event at raw x = i, raw y = c, t = 1000 + i."""
    for c, name in enumerate(CLASSES):
        d = root / "cifar10_dvs" / name
        d.mkdir(parents=True)
        for i in range(per_class):
            (d / f"cifar10_{name}_{i}.aedat").write_bytes(AEDAT2_HEADER + dvs128_record(i, c, 0, 1000 + i))


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------
def test_aedat31_decoding(tmp_path):
    base = write_gesture(tmp_path)
    ev = data.read_aedat31_polarity(base / "user01_fluorescent.aedat")
    np.testing.assert_array_equal(ev["x"], [5, 127, 3, 0])
    np.testing.assert_array_equal(ev["y"], [7, 0, 4, 127])
    np.testing.assert_array_equal(ev["p"], [1, 0, 1, 1])
    np.testing.assert_array_equal(ev["t"], [100, 150, T31 + 10, T31 + 20])  # tsOverflow << 31
    rows = data.read_gesture_labels(base / "user01_fluorescent_labels.csv")
    np.testing.assert_array_equal(rows, [[0, 100, 151], [10, T31, T31 + 21]])


def test_aedat2_decoding(tmp_path):
    path = tmp_path / "a.aedat"
    path.write_bytes(AEDAT2_HEADER + dvs128_record(0, 0, 1, 7) + dvs128_record(127, 5, 0, 2**32 - 1)
                     + dvs128_record(3, 127, 1, 9))
    ev = data.read_aedat2_dvs128(path)
    np.testing.assert_array_equal(ev["x"], [127, 0, 124])   # 127 - raw x (SLTT orientation)
    np.testing.assert_array_equal(ev["y"], [0, 5, 127])
    np.testing.assert_array_equal(ev["p"], [0, 1, 0])       # address bit 0 = OFF
    np.testing.assert_array_equal(ev["t"], [7, 2**32 - 1, 9])


# ---------------------------------------------------------------------------------------------
# Frame binning against hand computation
# ---------------------------------------------------------------------------------------------
def test_frames_number_and_time():
    n = 7
    ev = {"x": np.arange(n), "y": np.full(n, 2), "p": np.array([1, 0, 1, 0, 1, 0, 1]),
          "t": np.array([0, 10, 20, 30, 40, 50, 61])}
    # number: N // T = 2 events per slice, the last slice takes the rest: [0,1], [2,3], [4,5,6]
    f = data.dvs_frames(ev, 3, "number")
    assert f.shape == (3, 2, 128, 128) and f.dtype == np.float32 and f.sum() == n
    expect = {(0, 1, 0), (0, 0, 1), (1, 1, 2), (1, 0, 3), (2, 1, 4), (2, 0, 5), (2, 1, 6)}
    assert {(int(b), int(c), int(x)) for b, c, _, x in zip(*np.nonzero(f))} == expect
    # time: dt = 61 // 3 = 20 us; t // 20 = 0,0,1,1,2,2,3 -> the last clipped into slice 2
    f = data.dvs_frames(ev, 3, "time")
    assert [float(f[k].sum()) for k in range(3)] == [2, 2, 3]
    # fewer events than frames: everything in the last frame (N // T = 0)
    few = data.dvs_frames({k: v[:2] for k, v in ev.items()}, 4, "number")
    assert [float(few[k].sum()) for k in range(4)] == [0, 0, 0, 2]
    # repeated events count; binary clips
    rep = {"x": np.array([9, 9, 9]), "y": np.array([1, 1, 1]), "p": np.ones(3, int), "t": np.arange(3)}
    assert data.dvs_frames(rep, 1)[0, 1, 1, 9] == 3 and data.dvs_frames(rep, 1, binary=True)[0, 1, 1, 9] == 1
    empty = {k: np.zeros(0, int) for k in "xypt"}
    assert data.dvs_frames(empty, 2, "time").sum() == 0


def test_resize_hand_computed():
    # 128 -> 64 antialiased bilinear: output i averages inputs 2i-1..2i+2 with weights 1,3,3,1 / 8
    ev = {"x": np.array([10]), "y": np.array([10]), "p": np.array([1]), "t": np.array([0])}
    f = data.dvs_frames(ev, 1, size=64)[0, 1]
    assert f.shape == (64, 64)
    np.testing.assert_allclose(f[4:6, 4:6], np.array([[1, 3], [3, 9]]) / 64, atol=1e-6)
    assert abs(float(f.sum()) - 0.25) < 1e-6 and np.count_nonzero(f) == 4
    flat = data.dvs_frames({"x": np.tile(np.arange(128), 128), "y": np.repeat(np.arange(128), 128),
                            "p": np.zeros(128 * 128, int), "t": np.zeros(128 * 128, int)}, 1, size=48)
    np.testing.assert_allclose(flat[0, 0], 1.0, atol=1e-5)  # a uniform frame stays uniform


# ---------------------------------------------------------------------------------------------
# Registry: splits, options, errors
# ---------------------------------------------------------------------------------------------
def test_gesture_load_and_split(tmp_path):
    write_gesture(tmp_path)
    before = snapshot(tmp_path)
    tr = data.load("dvs_gesture", "train", root=tmp_path, frames=2)
    assert tr.is_temporal and tr.x.shape == (2, 2, 2, 128, 128) and tr.input_shape == (2, 2, 128, 128)
    np.testing.assert_array_equal(tr.y.numpy(), [0, 10])
    x = tr.x.numpy()
    # gesture 0: events t = 100 (5, 7, ON) and 150 (127, 0, OFF); t = 160 was invalid
    assert x[0].sum() == 2 and x[0, 0, 1, 7, 5] == 1 and x[0, 1, 0, 0, 127] == 1
    # gesture 1 (class 11 -> 10), timestamps past the 31-bit overflow
    assert x[1].sum() == 2 and x[1, 0, 1, 4, 3] == 1 and x[1, 1, 1, 127, 0] == 1
    te = data.load("dvs_gesture", "test", root=tmp_path, frames=1)
    assert te.y.tolist() == [3] and te.x[0, 0, 0, 9, 9] == 2 and te.classes[3] == "right_arm_clockwise"
    one = data.load("dvs_gesture", "train", root=tmp_path, frames=2, max_samples=1, size=64)
    assert one.x.shape == (1, 2, 2, 64, 64) and one.y.tolist() == [0]
    assert snapshot(tmp_path) == before


def test_cifar10_dvs_load_and_split(tmp_path):
    write_cifar_dvs(tmp_path, per_class=12)
    te = data.load("cifar10_dvs", "test", root=tmp_path, frames=1, train_fraction=0.75)
    # 12 files per class, first 9 by numeric index train: test = indices 9, 10, 11 (not 2, 3, 4
    # as a lexicographic sort would give); classes taken in turn
    assert te.x.shape == (30, 1, 2, 128, 128) and te.y.tolist() == list(range(10)) * 3
    x = te.x.numpy()
    for k, (i, c) in enumerate([(i, c) for i in (9, 10, 11) for c in range(10)]):
        assert x[k].sum() == 1 and x[k, 0, 1, c, 127 - i] == 1, (k, i, c)
    tr = data.load("cifar10_dvs", "train", root=tmp_path, frames=1, train_fraction=0.75, max_samples=3)
    assert tr.y.tolist() == [0, 1, 2] and tr.x[2, 0, 1, 2, 127] == 1 and tr.classes == CLASSES
    assert len(data.load("cifar10_dvs", "train", root=tmp_path, frames=1, size=8)) == 100  # 0.9 * 12 -> 10


@pytest.mark.parametrize("name, kw, word", [
    ("dvs_gesture", {"frames": 0}, "frames"),
    ("dvs_gesture", {"split_by": "count"}, "split_by"),
    ("dvs_gesture", {"size": 129}, "size"),
    ("dvs_gesture", {"binary": 1}, "binary"),
    ("dvs_gesture", {"train_fraction": 0.5}, "train_fraction"),  # not an option of this dataset
    ("cifar10_dvs", {"train_fraction": 1.0}, "train_fraction"),
    ("cifar10_dvs", {"max_samples": 0}, "max_samples"),
])
def test_bad_options_rejected_before_io(name, kw, word, tmp_path):
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=word):
        data.load(name, root=root, **kw)
    assert not root.exists()


def test_missing_datasets_name_paths(tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as exc:
        data.load("dvs_gesture", root=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "dvs_gesture" / "DvsGesture" / "trials_to_train.txt") in msg
    assert GESTURE_MD5 in msg and "ibm" in msg.lower()
    with pytest.raises(data.DatasetNotFoundError) as exc:
        data.load("cifar10_dvs", "test", root=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "cifar10_dvs" / "airplane") in msg and AIRPLANE_MD5 in msg and "figshare" in msg
    # a listed recording without its labels file
    base = write_gesture(tmp_path / "g")
    (base / "user24_led_labels.csv").unlink()
    with pytest.raises(data.DatasetNotFoundError, match="user24_led_labels.csv"):
        data.load("dvs_gesture", "test", root=tmp_path / "g")
    assert list(tmp_path.iterdir()) == [tmp_path / "g"]


def _corrupt_cases():
    def gesture_truncated_packet(root):
        base = write_gesture(root)
        p = base / "user01_fluorescent.aedat"
        p.write_bytes(p.read_bytes()[:-5])
        return "dvs_gesture"

    def gesture_wrong_version(root):
        base = write_gesture(root)
        (base / "user01_fluorescent.aedat").write_bytes(AEDAT2_HEADER + dvs128_record(1, 1, 1, 1))
        return "dvs_gesture"

    def gesture_bad_class(root):
        base = write_gesture(root)
        write_labels(base / "user01_fluorescent_labels.csv", [(12, 0, 10)])
        return "dvs_gesture"

    def cifar_partial_record(root):
        write_cifar_dvs(root, per_class=2)
        p = root / "cifar10_dvs" / "airplane" / "cifar10_airplane_0.aedat"
        p.write_bytes(p.read_bytes() + b"\x00\x01\x02")
        return "cifar10_dvs"

    return [gesture_truncated_packet, gesture_wrong_version, gesture_bad_class, cifar_partial_record]


@pytest.mark.parametrize("make", _corrupt_cases(), ids=lambda f: f.__name__)
def test_corrupt_files_raise(make, tmp_path):
    name = make(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(data.DatasetNotFoundError, match="corrupt"):
        data.load(name, root=tmp_path, frames=1)
    assert snapshot(tmp_path) == before


def test_verify_counts_and_md5(tmp_path):
    write_gesture(tmp_path)
    with pytest.warns(UserWarning, match="md5"):
        with pytest.raises(data.DatasetNotFoundError, match="1176"):
            data.load("dvs_gesture", root=tmp_path, frames=1, verify=True)
    (tmp_path / "dvs_gesture" / "DvsGesture.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(data.DatasetNotFoundError, match="md5 mismatch"):
        data.load("dvs_gesture", root=tmp_path, frames=1, verify=True)
