"""Readers of the image datasets in their official non-pickle formats: CIFAR-10/100 binary,
SVHN .mat (MATLAB v5), Fashion-MNIST IDX. Each registers itself with :mod:`snnlab.data.registry`."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import scipy.io

from .registry import (
    DatasetInfo,
    SPLITS,
    _CIFAR100_CLASSES,
    _CIFAR10_CLASSES,
    _Corrupt,
    _DIGIT_CLASSES,
    _Entry,
    _FASHION_CLASSES,
    _IMAGE_OPTS,
    _MD5,
    _apply_norm,
    _image_check,
    _limit,
    _register,
    _require,
)


# --- CIFAR binary --------------------------------------------------------------------------------
_CIFAR_PIXELS = 3 * 32 * 32


def _cifar_reader(label_bytes: int, label_index: int, num_classes: int, classes):
    """Records are ``label_bytes`` label bytes then 3072 pixel bytes (1024 R, 1024 G, 1024 B,
    each 32x32 row-major); CIFAR-100 has (coarse, fine) labels and we use the fine one."""
    record = label_bytes + _CIFAR_PIXELS

    def read(folder, split, files, normalize, verify, max_samples):
        xs, ys = [], []
        remaining = max_samples
        for path in files:
            size = path.stat().st_size
            if size == 0 or size % record:
                raise _Corrupt(f"{path} has {size} bytes, not a positive multiple of the "
                               f"{record}-byte record")
            count = size // record if remaining is None else min(size // record, remaining)
            raw = np.fromfile(path, dtype=np.uint8, count=count * record).reshape(count, record)
            labels = raw[:, label_index].astype(np.int64)
            if labels.max(initial=0) >= num_classes:
                raise _Corrupt(f"{path} holds label {labels.max()} >= {num_classes}")
            for j in range(label_bytes):
                if j != label_index and raw[:, j].max(initial=0) >= 20:  # CIFAR-100 coarse label
                    raise _Corrupt(f"{path} holds coarse label {raw[:, j].max()} >= 20")
            xs.append(raw[:, label_bytes:].reshape(count, 3, 32, 32))
            ys.append(labels)
            if remaining is not None:
                remaining -= count
                if remaining == 0:
                    break
        x = np.concatenate(xs).astype(np.float32) / 255.0
        return _apply_norm(x, normalize), np.concatenate(ys), classes

    return read


def _cifar_locate(subdir: str, train: tuple, test: tuple):
    def locate(folder, split):
        names = train if split == "train" else test
        return _require([folder / subdir / n for n in names])
    return locate


# --- SVHN .mat -----------------------------------------------------------------------------------
def _svhn_read(folder, split, files, normalize, verify, max_samples):
    """MATLAB v5 file with ``X: uint8 [32, 32, 3, N]`` (row, column, channel, sample) and
    ``y: [N, 1]`` in 1..10 where 10 stands for digit 0."""

    path = files[0]
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, ... on bad files
        raise _Corrupt(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc})")
    if "X" not in mat or "y" not in mat:
        raise _Corrupt(f"{path} lacks the variables X and y")
    X, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3) or X.shape[3] != y.shape[0]:
        raise _Corrupt(f"{path}: X has shape {X.shape} and y {y.shape}; expected [32, 32, 3, N] "
                       f"and [N, 1]")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise _Corrupt(f"{path}: labels outside 1..10")
    n = _limit(y.shape[0], max_samples)
    x = np.ascontiguousarray(X[..., :n].transpose(3, 2, 0, 1)).astype(np.float32) / 255.0
    labels = y[:n].astype(np.int64) % 10
    return _apply_norm(x, normalize), labels, _DIGIT_CLASSES


# --- IDX (Fashion-MNIST) ---------------------------------------------------------------------------
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_locate(folder, split):
    found, missing = [], []
    for base in _IDX_NAMES[split]:
        for cand in (folder / base, folder / f"{base}.gz"):
            if cand.is_file():
                found.append(cand)
                break
        else:
            missing.append(f"{folder / base}[.gz]")
    if missing:
        raise _Corrupt(", ".join(missing))
    return found


def _read_idx(path: Path) -> np.ndarray:
    """IDX: big-endian header ``0x00 0x00 <type> <ndim>``, ``ndim`` uint32 sizes, then the data
    (type 0x08 = unsigned byte). The payload must hold exactly prod(sizes) values."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            blob = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise _Corrupt(f"{path} cannot be read ({type(exc).__name__}: {exc})")
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08:
        raise _Corrupt(f"{path} does not start with an unsigned-byte IDX magic number")
    ndim = blob[3]
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise _Corrupt(f"{path} is shorter than its IDX header")
    dims = struct.unpack(f">{ndim}I", blob[4:header])
    expected = int(np.prod(dims, dtype=np.int64)) if ndim else 0
    if len(blob) - header != expected:
        raise _Corrupt(f"{path}: header announces {dims} = {expected} bytes of data, "
                       f"found {len(blob) - header}")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def _fashion_read(folder, split, files, normalize, verify, max_samples):
    images, labels = _read_idx(files[0]), _read_idx(files[1])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise _Corrupt(f"{files[0]}: images have shape {images.shape}, expected [N, 28, 28]")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise _Corrupt(f"{files[1]}: {labels.shape} labels for {images.shape[0]} images")
    if labels.size and labels.max() >= 10:
        raise _Corrupt(f"{files[1]} holds label {labels.max()} >= 10")
    n = _limit(images.shape[0], max_samples)
    x = images[:n, None].astype(np.float32) / 255.0
    return _apply_norm(x, normalize), labels[:n].astype(np.int64), _FASHION_CLASSES


_register(_Entry(
    DatasetInfo("fashion_mnist", 10, (1, 28, 28), False, False,
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ "
                "(https://github.com/zalandoresearch/fashion-mnist)",
                "Fashion-MNIST IDX files (gzipped or not); pixels in [0, 1]",
                files={s: tuple(f"fashion_mnist/{b}[.gz]" for b in _IDX_NAMES[s]) for s in SPLITS},
                md5=_MD5["fashion_mnist"], num_samples={"train": 60000, "test": 10000},
                options=dict(_IMAGE_OPTS)),
    reader=_fashion_read, check=_image_check("fashion_mnist"), folder="fashion_mnist",
    locate=_idx_locate))

_CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_register(_Entry(
    DatasetInfo("cifar10", 10, (3, 32, 32), False, False,
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                "CIFAR-10 binary version (records of 1 label byte + 3072 pixel bytes); "
                "pixels in [0, 1]",
                files={"train": tuple(f"cifar10/cifar-10-batches-bin/{n}" for n in _CIFAR10_TRAIN),
                       "test": ("cifar10/cifar-10-batches-bin/test_batch.bin",)},
                md5=_MD5["cifar10"], num_samples={"train": 50000, "test": 10000},
                options=dict(_IMAGE_OPTS)),
    reader=_cifar_reader(1, 0, 10, _CIFAR10_CLASSES), check=_image_check("cifar10"),
    folder="cifar10",
    locate=_cifar_locate("cifar-10-batches-bin", _CIFAR10_TRAIN, ("test_batch.bin",))))

_register(_Entry(
    DatasetInfo("cifar100", 100, (3, 32, 32), False, False,
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                "CIFAR-100 binary version (2 label bytes coarse, fine + 3072 pixel bytes); "
                "fine labels; pixels in [0, 1]",
                files={"train": ("cifar100/cifar-100-binary/train.bin",),
                       "test": ("cifar100/cifar-100-binary/test.bin",)},
                md5=_MD5["cifar100"], num_samples={"train": 50000, "test": 10000},
                options=dict(_IMAGE_OPTS)),
    reader=_cifar_reader(2, 1, 100, _CIFAR100_CLASSES), check=_image_check("cifar100"),
    folder="cifar100", locate=_cifar_locate("cifar-100-binary", ("train.bin",), ("test.bin",))))

_register(_Entry(
    DatasetInfo("svhn", 10, (3, 32, 32), False, False,
                "http://ufldl.stanford.edu/housenumbers/ (train_32x32.mat, test_32x32.mat)",
                "SVHN cropped digits, MATLAB files; label 10 mapped to digit 0; pixels in [0, 1]",
                files={s: (f"svhn/{s}_32x32.mat",) for s in SPLITS},
                md5=_MD5["svhn"], num_samples={"train": 73257, "test": 26032},
                options=dict(_IMAGE_OPTS)),
    reader=_svhn_read, check=_image_check("svhn"), folder="svhn",
    locate=lambda folder, split: _require([folder / f"{split}_32x32.mat"])))
