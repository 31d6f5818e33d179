"""Tests of snnlab.data: readers on tiny files written in the official formats, offline
datasets, error reporting, and the input encodings."""

from __future__ import annotations

import gzip
import math
import random
import socket
import struct
import urllib.request
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from snnlab import data, paths
from snnlab.core import encoding
from snnlab.data import offline
from sklearn.datasets import load_digits
from mnist1d.data import get_dataset_args, make_dataset

# Independent transcriptions of the official checksums and sources (see data.py for provenance).
OFFICIAL = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                 "03b5dce01913d631647c71ecec9e9cb8"),
    "svhn": ("http://ufldl.stanford.edu/housenumbers/", "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "nmnist": ("https://www.garrickorchard.com/datasets/n-mnist", "20959b8e626244a1b502305a9e6e2031"),
    "shd": ("https://zenkelab.org/datasets/", "f3252aeb598ac776c1b526422d90eecb"),
}
EXPECTED_TRAIN_PATH = {
    "cifar10": "cifar10/cifar-10-batches-bin/data_batch_1.bin",
    "cifar100": "cifar100/cifar-100-binary/train.bin",
    "svhn": "svhn/train_32x32.mat",
    "fashion_mnist": "fashion_mnist/train-images-idx3-ubyte",
    "nmnist": "nmnist/Train",
    "shd": "shd/shd_train.h5",
}


def snapshot(root: Path):
    """Every path under root with its size and mtime (to prove loading writes nothing)."""
    if not root.exists():
        return None
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


# ---------------------------------------------------------------------------------------------
# Writers of the official formats (independent of the readers)
# ---------------------------------------------------------------------------------------------
def cifar_records(rng, n, label_bytes, label_max):
    labels = rng.integers(0, label_max, size=(n, label_bytes), dtype=np.uint8)
    pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return labels, pixels, np.concatenate([labels, pixels], axis=1).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(f"{path}.gz", "wb") as fh:
            fh.write(blob)
    else:
        path.write_bytes(blob)


def pack_event(x, y, p, t):
    """One 40-bit N-MNIST event: x, y, then polarity bit + 23-bit timestamp, big-endian."""
    word = (p << 23) | t
    return bytes([x, y, (word >> 16) & 0xFF, (word >> 8) & 0xFF, word & 0xFF])


def write_shd(path: Path, samples, labels, keys=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        g = fh.create_group("spikes")
        times = g.create_dataset("times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = g.create_dataset("units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, np.float32)
            units[i] = np.asarray(u, np.uint16)
        fh.create_dataset("labels", data=np.asarray(labels, np.uint8))
        if keys is not None:
            fh.create_group("extra").create_dataset("keys", data=np.array(keys, dtype="S"))


# ---------------------------------------------------------------------------------------------
# Registry, info, data root
# ---------------------------------------------------------------------------------------------
def test_registry_and_info():
    names = data.available()
    assert set(names) == {"digits", "mnist1d", "fashion_mnist", "cifar10", "cifar100", "svhn",
                          "nmnist", "shd", "dvs_gesture", "cifar10_dvs"}
    assert set(data.available(offline_only=True)) == {"digits", "mnist1d"}
    shd = data.info("shd")
    assert (shd.num_classes, shd.input_shape, shd.is_temporal, shd.offline) == (20, (100, 700), True, False)
    assert data.info("nmnist").input_shape == (10, 2, 34, 34)
    assert data.info("cifar100").num_classes == 100
    for name, (url, md5) in OFFICIAL.items():
        inf = data.info(name)
        assert url in inf.source and md5 in inf.md5.values()
    with pytest.raises(ValueError, match="imagenet") as exc:
        data.info("imagenet")
    assert "cifar10" in str(exc.value)


def test_data_root_priority(monkeypatch, tmp_path):
    monkeypatch.delenv("SNNLAB_DATA", raising=False)
    repo = paths.REPO_ROOT
    assert data.data_root() == repo / "data"
    monkeypatch.setenv("SNNLAB_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"


@pytest.mark.parametrize("kwargs, word", [
    ({"name": "mnist"}, "name"),
    ({"name": "digits", "split": "val"}, "split"),
    ({"name": "digits", "frames": 3}, "frames"),
    ({"name": "nmnist", "frames": 0}, "frames"),
    ({"name": "shd", "T": -1}, "T"),
    ({"name": "shd", "channels": 701}, "channels"),
    ({"name": "cifar10", "normalize": (1, 2)}, "normalize"),
    ({"name": "mnist1d", "num_samples": 5}, "num_samples"),
])
def test_load_rejects_bad_arguments_before_io(kwargs, word, tmp_path):
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=word):
        data.load(root=root, **kwargs)
    assert not root.exists()


# ---------------------------------------------------------------------------------------------
# Offline datasets
# ---------------------------------------------------------------------------------------------
def test_digits_split_fixed_and_stratified(tmp_path):
    tr, te = data.load("digits", "train"), data.load("digits", "test", root=tmp_path / "none")
    assert tr.x.dtype == torch.float32 and tr.y.dtype == torch.int64
    assert tr.input_shape == (1, 8, 8) and not tr.is_temporal and tr.num_classes == 10
    assert (len(tr), len(te)) == (1437, 360)
    assert float(tr.x.min()) == 0.0 and float(tr.x.max()) == 1.0
    again = data.load("digits", "train")
    assert torch.equal(tr.x, again.x) and torch.equal(tr.y, again.y)
    tr.x.zero_()  # mutating a returned dataset must not leak into the next load
    assert torch.equal(data.load("digits", "train").x, again.x)

    ref = load_digits()
    full = Counter((row.tobytes(), int(lab)) for row, lab in
                   zip((ref.images / 16.0).astype(np.float32), ref.target))
    ours = Counter((row.numpy()[0].tobytes(), int(lab)) for ds in (again, te)
                   for row, lab in zip(ds.x, ds.y))
    assert ours == full  # a partition of the whole data set
    counts = np.bincount(ref.target, minlength=10)
    test_counts = np.bincount(te.y.numpy(), minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 1)  # stratified 80/20
    assert not (tmp_path / "none").exists()


def test_mnist1d_offline_deterministic_and_matches_package(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNNLAB_DATA", str(tmp_path / "root"))
    offline._mnist1d_arrays.cache_clear()

    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    ds = data.load("mnist1d", num_samples=600)
    test = data.load("mnist1d", "test", num_samples=600)
    assert np.array_equal(np.random.get_state()[1], np_before) and random.getstate() == py_before

    assert ds.x.shape == (480, 1, 40) and test.x.shape == (120, 1, 40)
    assert ds.x.dtype == torch.float32 and ds.num_classes == 10 and not ds.is_temporal
    offline._mnist1d_arrays.cache_clear()
    again = data.load("mnist1d", num_samples=600)
    assert torch.equal(ds.x, again.x) and torch.equal(ds.y, again.y)
    other = data.load("mnist1d", num_samples=600, seed=7)
    assert not torch.equal(ds.x, other.x)

    args = get_dataset_args()
    args.num_samples = 600
    ref = make_dataset(args)
    np.testing.assert_allclose(ds.x[:, 0].numpy(), ref["x"].astype(np.float32))
    np.testing.assert_array_equal(test.y.numpy(), ref["y_test"])
    assert list(tmp_path.iterdir()) == []  # nothing written in cwd or the data root


def test_mnist1d_default_size():
    ds = data.load("mnist1d")
    assert len(ds) == 4000 and len(data.load("mnist1d", "test")) == 1000
    assert ds.input_shape == (1, 40)


# ---------------------------------------------------------------------------------------------
# On-disk readers on tiny official-format files
# ---------------------------------------------------------------------------------------------
def test_cifar10_binary_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    raws = []
    for i in range(1, 6):
        labels, pixels, blob = cifar_records(rng, 2, 1, 10)
        (folder / f"data_batch_{i}.bin").write_bytes(blob)
        raws.append((labels, pixels))
    labels_t, pixels_t, blob = cifar_records(rng, 3, 1, 10)
    (folder / "test_batch.bin").write_bytes(blob)
    before = snapshot(tmp_path)

    tr = data.load("cifar10", "train", root=tmp_path)
    assert tr.x.shape == (10, 3, 32, 32) and tr.input_shape == (3, 32, 32)
    labels = np.concatenate([lab[:, 0] for lab, _ in raws])
    pixels = np.concatenate([pix for _, pix in raws])
    np.testing.assert_array_equal(tr.y.numpy(), labels)
    # pixel (c, r, col) of record n is byte 1 + c*1024 + r*32 + col of that record
    for n, c, r, col in [(0, 0, 0, 0), (3, 1, 5, 7), (9, 2, 31, 31), (6, 2, 0, 31)]:
        assert round(float(tr.x[n, c, r, col]) * 255) == pixels[n, c * 1024 + r * 32 + col]
    te = data.load("cifar10", "test", root=tmp_path, normalize=True)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    raw = torch.tensor(pixels_t.reshape(3, 3, 32, 32), dtype=torch.float32) / 255
    torch.testing.assert_close(te.x, (raw - mean) / std)
    assert te.classes[labels_t[0, 0]] in te.classes and len(te.classes) == 10
    assert snapshot(tmp_path) == before


def test_cifar100_binary_uses_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar100" / "cifar-100-binary"
    folder.mkdir(parents=True)
    labels = np.stack([rng.integers(0, 20, 4), rng.integers(0, 100, 4)], 1).astype(np.uint8)
    pixels = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
    (folder / "train.bin").write_bytes(np.concatenate([labels, pixels], 1).tobytes())
    ds = data.load("cifar100", root=tmp_path)
    np.testing.assert_array_equal(ds.y.numpy(), labels[:, 1])
    np.testing.assert_array_equal(np.rint(ds.x.numpy().reshape(4, -1) * 255), pixels)
    assert ds.num_classes == 100 and len(ds.classes) == 100
    assert len(data.load("cifar100", root=tmp_path, max_samples=3)) == 3


def test_svhn_mat_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, size=(32, 32, 3, 5), dtype=np.uint8)
    y = np.array([[10], [1], [5], [10], [9]], dtype=np.uint8)
    (tmp_path / "svhn").mkdir()
    scipy.io.savemat(tmp_path / "svhn" / "test_32x32.mat", {"X": X, "y": y})
    ds = data.load("svhn", "test", root=tmp_path)
    assert ds.x.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(ds.y.numpy(), [0, 1, 5, 0, 9])
    for n, c, h, w in [(0, 0, 0, 0), (4, 2, 31, 0), (2, 1, 7, 19)]:
        assert round(float(ds.x[n, c, h, w]) * 255) == X[h, w, c, n]


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_roundtrip(tmp_path, gz):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 3, 3, 7, 1], dtype=np.uint8)
    folder = tmp_path / "fashion_mnist"
    write_idx(folder / "train-images-idx3-ubyte", images, gz)
    write_idx(folder / "train-labels-idx1-ubyte", labels, gz)
    ds = data.load("fashion_mnist", root=tmp_path)
    assert ds.x.shape == (6, 1, 28, 28)
    np.testing.assert_array_equal(np.rint(ds.x[:, 0].numpy() * 255), images)
    np.testing.assert_array_equal(ds.y.numpy(), labels)
    assert ds.classes[9] == "Ankle boot"


def test_nmnist_events_to_frames(tmp_path):
    train = tmp_path / "nmnist" / "Train"
    (train / "3").mkdir(parents=True)
    (train / "7").mkdir(parents=True)
    # sample of digit 3: events at t = 0, 150, 250, 399 us -> span 400 us, 4 bins of 100 us
    ev3 = [(1, 2, 1, 0), (1, 2, 1, 0), (33, 0, 0, 150), (5, 6, 1, 250), (0, 33, 0, 399)]
    (train / "3" / "a.bin").write_bytes(b"".join(pack_event(*e) for e in ev3))
    # sample of digit 7: a large (23-bit) timestamp and a timestamp-overflow marker (y = 240)
    ev7 = [(4, 4, 1, 5_000_000), (0, 240, 0, 0), (2, 3, 0, 10)]
    (train / "7" / "b.bin").write_bytes(b"".join(pack_event(*e) for e in ev7))
    before = snapshot(tmp_path)

    ds = data.load("nmnist", root=tmp_path, frames=4)
    assert ds.is_temporal and ds.x.shape == (2, 4, 2, 34, 34) and ds.input_shape == (4, 2, 34, 34)
    np.testing.assert_array_equal(ds.y.numpy(), [3, 7])
    f = ds.x[0]
    assert float(f.sum()) == 5 and [float(f[k].sum()) for k in range(4)] == [2, 1, 1, 1]
    assert f[0, 1, 2, 1] == 2 and f[1, 0, 0, 33] == 1 and f[2, 1, 6, 5] == 1 and f[3, 0, 33, 0] == 1
    assert float(data.load("nmnist", root=tmp_path, frames=4, binary=True).x[0].sum()) == 4

    ev = data.read_nmnist_events(train / "7" / "b.bin")
    np.testing.assert_array_equal(ev["t"], [5_000_000, 10 + 8192])  # overflow adds 2**13 us
    np.testing.assert_array_equal(ev["y"], [4, 3])
    # fixed window of 10 ms in 10 bins of 1 ms: the 5 s event is dropped, t = 8202 us -> bin 8
    fixed = data.load("nmnist", root=tmp_path, frames=10, duration_us=10_000).x[1]
    assert float(fixed.sum()) == 1 and fixed[8, 0, 3, 2] == 1
    assert snapshot(tmp_path) == before


def test_shd_hdf5_binning(tmp_path):
    # T = 10 bins of 0.1 s over 1 s; times at bin centres
    samples = [([0.05, 0.05, 0.35, 0.95, 1.2], [0, 0, 699, 1, 3]), ([0.15], [350])]
    keys = [f"w{i}" for i in range(20)]
    write_shd(tmp_path / "shd" / "shd_test.h5", samples, [4, 19], keys)
    ds = data.load("shd", "test", root=tmp_path, T=10)
    assert ds.is_temporal and ds.x.shape == (2, 10, 700) and ds.classes == tuple(keys)
    np.testing.assert_array_equal(ds.y.numpy(), [4, 19])
    x = ds.x[0]
    assert float(x.sum()) == 4  # the spike at 1.2 s lies outside the window
    assert x[0, 0] == 2 and x[3, 699] == 1 and x[9, 1] == 1 and ds.x[1, 1, 350] == 1
    assert data.load("shd", "test", root=tmp_path, T=10, binary=True).x[0, 0, 0] == 1
    half = data.load("shd", "test", root=tmp_path, T=10, channels=350).x
    assert half.shape == (2, 10, 350)
    assert half[0, 0, 0] == 2 and half[0, 9, 0] == 1 and half[0, 3, 349] == 1 and half[1, 1, 175] == 1
    longer = data.load("shd", "test", root=tmp_path, T=5, duration=1.5).x[0]  # 0.3 s bins
    assert float(longer.sum()) == 5 and longer[4, 3] == 1


# ---------------------------------------------------------------------------------------------
# Missing and corrupt files
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OFFICIAL))
@pytest.mark.parametrize("root_exists", [True, False])
def test_missing_dataset_message(name, root_exists, tmp_path):
    root = tmp_path / "root"
    if root_exists:
        root.mkdir()
    with pytest.raises(data.DatasetNotFoundError) as exc:
        data.load(name, root=root)
    msg = str(exc.value)
    url, md5 = OFFICIAL[name]
    assert str(root / EXPECTED_TRAIN_PATH[name]) in msg
    assert url in msg and md5 in msg and "SNNLAB_DATA" in msg and "root=" in msg
    assert isinstance(exc.value, FileNotFoundError)
    assert snapshot(root) == ([] if root_exists else None)


def test_missing_uses_env_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNLAB_DATA", str(tmp_path))
    with pytest.raises(data.DatasetNotFoundError, match=str(tmp_path / "svhn" / "test_32x32.mat")):
        data.load("svhn", "test")
    assert list(tmp_path.iterdir()) == []


def _corrupt_cases():
    def cifar_truncated(root):
        d = root / "cifar10" / "cifar-10-batches-bin"
        d.mkdir(parents=True)
        for i in range(1, 6):
            (d / f"data_batch_{i}.bin").write_bytes(bytes(3073 * 2 - 1 if i == 3 else 3073))
        return "cifar10"

    def cifar_bad_label(root):
        d = root / "cifar10" / "cifar-10-batches-bin"
        d.mkdir(parents=True)
        for i in range(1, 6):
            (d / f"data_batch_{i}.bin").write_bytes(bytes([10]) + bytes(3072))
        return "cifar10"

    def idx_truncated_gz(root):
        images = np.zeros((3, 28, 28), np.uint8)
        write_idx(root / "fashion_mnist" / "train-images-idx3-ubyte", images, gz=True)
        write_idx(root / "fashion_mnist" / "train-labels-idx1-ubyte", np.zeros(3, np.uint8), gz=True)
        p = root / "fashion_mnist" / "train-images-idx3-ubyte.gz"
        p.write_bytes(p.read_bytes()[:-12])
        return "fashion_mnist"

    def idx_short_payload(root):
        write_idx(root / "fashion_mnist" / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), gz=False)
        write_idx(root / "fashion_mnist" / "train-labels-idx1-ubyte", np.zeros(2), gz=False)
        return "fashion_mnist"

    def idx_bad_magic(root):
        write_idx(root / "fashion_mnist" / "train-images-idx3-ubyte", np.zeros((3, 28, 28)), gz=False)
        (root / "fashion_mnist" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x09\x01" + bytes(7))
        return "fashion_mnist"

    def mat_garbage(root):
        (root / "svhn").mkdir()
        (root / "svhn" / "train_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(50))
        return "svhn"

    def mat_wrong_layout(root):
        (root / "svhn").mkdir()
        scipy.io.savemat(root / "svhn" / "train_32x32.mat",
                         {"X": np.zeros((3, 32, 32, 2), np.uint8), "y": np.ones((2, 1))})
        return "svhn"

    def nmnist_partial_event(root):
        d = root / "nmnist" / "Train" / "1"
        d.mkdir(parents=True)
        (d / "x.bin").write_bytes(pack_event(1, 1, 1, 5) + b"\x01\x02")
        return "nmnist"

    def h5_garbage(root):
        (root / "shd").mkdir()
        (root / "shd" / "shd_train.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
        return "shd"

    def h5_ragged_mismatch(root):
        write_shd(root / "shd" / "shd_train.h5", [([0.1, 0.2], [1])], [0])
        return "shd"

    return [cifar_truncated, cifar_bad_label, idx_truncated_gz, idx_short_payload, idx_bad_magic,
            mat_garbage, mat_wrong_layout, nmnist_partial_event, h5_garbage, h5_ragged_mismatch]


@pytest.mark.parametrize("make", _corrupt_cases(), ids=lambda f: f.__name__)
def test_corrupt_files_raise(make, tmp_path):
    name = make(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(data.DatasetNotFoundError, match="corrupt") as exc:
        data.load(name, root=tmp_path)
    assert OFFICIAL[name][1] in str(exc.value)
    assert snapshot(tmp_path) == before


def test_verify_checks_md5_and_counts(tmp_path):
    (tmp_path / "svhn").mkdir()
    scipy.io.savemat(tmp_path / "svhn" / "train_32x32.mat",
                     {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1), np.uint8)})
    assert len(data.load("svhn", root=tmp_path)) == 2  # cheap checks pass
    with pytest.raises(data.DatasetNotFoundError, match="md5 mismatch"):
        data.load("svhn", root=tmp_path, verify=True)
    # no file with a known md5 (uncompressed IDX): a warning, then the official count fails
    write_idx(tmp_path / "fashion_mnist" / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)), gz=False)
    write_idx(tmp_path / "fashion_mnist" / "t10k-labels-idx1-ubyte", np.zeros(2), gz=False)
    with pytest.warns(UserWarning, match="md5"):
        with pytest.raises(data.DatasetNotFoundError, match="10000"):
            data.load("fashion_mnist", "test", root=tmp_path, verify=True)


# ---------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------
def test_encode_direct_and_shapes():
    x = torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(0))
    for kind in encoding.ENCODINGS:
        out = encoding.encode(x, 6, kind, generator=torch.Generator().manual_seed(1))
        assert out.shape == (6, 3, 2, 4) and out.dtype == x.dtype
    direct = encoding.encode(x, 6)
    assert all(torch.equal(direct[t], x) for t in range(6))
    direct[0].zero_()
    assert not torch.equal(x, direct[0])  # no aliasing with the input


def test_encode_poisson_rate_and_seed():
    p = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.9, 1.0, 1.7, -0.3])
    T, B = 500, 40
    x = p.repeat(B, 1)
    s = encoding.encode(x, T, "poisson", generator=torch.Generator().manual_seed(0))
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(dim=(0, 1)).double()
    q = p.clamp(0, 1).double()
    n = T * B
    sigma = torch.sqrt(q * (1 - q) / n)
    assert torch.all((rate - q).abs() <= 5 * sigma + 1e-12), (rate, q)
    same = encoding.encode(x, T, "poisson", generator=torch.Generator().manual_seed(0))
    other = encoding.encode(x, T, "poisson", generator=torch.Generator().manual_seed(1))
    assert torch.equal(s, same) and not torch.equal(s, other)


def test_encode_latency_against_closed_form():
    tau, theta, dt, T = 20.0, 0.2, 1.0, 100
    xs = [0.0, 0.1, 0.2, 0.2000001, 0.21, 0.25, 0.3, 0.5, 0.75, 1.0, 1.5]
    x = torch.tensor([xs], dtype=torch.float64)
    s = encoding.encode(x, T, "latency")
    assert s.shape == (T, 1, len(xs))
    assert torch.all(s.sum(0) <= 1)
    for j, v in enumerate(xs):
        if v > theta and math.floor(tau * math.log(v / (v - theta)) / dt) < T:
            k = math.floor(tau * math.log(v / (v - theta)) / dt)
            assert s[k, 0, j] == 1 and s[:, 0, j].sum() == 1, v
        else:
            assert s[:, 0, j].sum() == 0, v
    assert s[4, 0, xs.index(1.0)] == 1  # 20 ln(1.25) = 4.46 ms
    # bigger input spikes earlier (strictly, in continuous time)
    t = encoding.latency_time(torch.tensor([0.3, 0.5, 0.75, 1.0]))
    assert torch.all(t[1:] < t[:-1])
    # x <= theta never spikes, whatever T
    low = torch.linspace(-1, theta, 50)
    assert encoding.encode(low[None], 10_000, "latency").sum() == 0
    # kwargs: a larger dt compresses time
    coarse = encoding.encode(torch.tensor([[1.0]]), 5, "latency", dt=2.0)
    assert coarse[2, 0, 0] == 1


@pytest.mark.parametrize("T", [0, -3, 2.5, True, "10"])
def test_encode_rejects_bad_T(T):
    with pytest.raises(ValueError, match="T="):
        encoding.encode(torch.zeros(2, 3), T)


def test_encode_rejects_bad_kind_and_kwargs():
    with pytest.raises(ValueError, match="kind='rate'") as exc:
        encoding.encode(torch.zeros(2, 3), 4, "rate")
    assert "poisson" in str(exc.value)
    with pytest.raises(ValueError, match="theta"):
        encoding.encode(torch.zeros(2, 3), 4, "latency", theta=1.5)
    with pytest.raises(ValueError, match="gain"):
        encoding.encode(torch.zeros(2, 3), 4, "poisson", gain=2)


def test_to_time_major():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    y = encoding.to_time_major(x)
    assert y.shape == (3, 2, 4) and y[1, 0, 2] == x[0, 1, 2] and y.is_contiguous()
    with pytest.raises(ValueError, match="x"):
        encoding.to_time_major(torch.zeros(5))


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------
def test_loaders_seeded_shuffle():
    tr, te = data.loaders("digits", batch_size=64, seed=3)
    xb, yb = next(iter(tr))
    assert xb.shape == (64, 1, 8, 8) and yb.dtype == torch.int64
    assert torch.equal(next(iter(data.loaders("digits", 64, seed=3)[0]))[1], yb)
    assert not torch.equal(next(iter(data.loaders("digits", 64, seed=4)[0]))[1], yb)
    assert torch.equal(next(iter(te))[1], data.load("digits", "test").y[:64])
    with pytest.raises(ValueError, match="batch_size"):
        data.loaders("digits", 0)
