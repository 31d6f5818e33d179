r"""Dataset registry and input encodings.

Two kinds of datasets
---------------------
*Embedded offline* datasets need no data root and never touch the disk or the network:

* ``digits``  -- scikit-learn's 8x8 handwritten digits (1797 images), pixels scaled to [0, 1],
  ``x: [N, 1, 8, 8]``; a fixed stratified 80/20 train/test split (``random_state=0``).
* ``mnist1d`` -- MNIST-1D generated in memory by the ``mnist1d`` package's own generator
  (``mnist1d.data.make_dataset`` with ``get_dataset_args()`` defaults: 5000 samples, seed 42,
  80/20 split), ``x: [N, 1, 40]``. The arrays are cached in memory (``functools.lru_cache``),
  never on disk; the global ``numpy``/``random`` state is restored after generation.

*On-disk* paper datasets are read from their official, non-pickle formats under the data root
(:func:`data_root`), one folder per dataset::

    <root>/cifar10/cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin
    <root>/cifar100/cifar-100-binary/train.bin, test.bin
    <root>/svhn/train_32x32.mat, test_32x32.mat
    <root>/fashion_mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    <root>/nmnist/Train/<digit>/*.bin, Test/<digit>/*.bin
    <root>/shd/shd_train.h5, shd_test.h5

Loading never writes anything (no download, no cache). A missing or malformed dataset raises
:class:`DatasetNotFoundError`, whose message names the expected paths, the official URL, the
official md5 checksums and how to fix it. Cheap checks (file sizes that must be whole records,
IDX headers against payload sizes, HDF5 structure, label ranges) run on every load; with
``verify=True`` the official sample counts and md5 checksums are checked as well.

Every loader returns an :class:`ArrayDataset` (a ``TensorDataset`` of ``x`` float32 and ``y``
int64). Static images have ``x: [N, C, H, W]`` (or ``[N, 1, L]``); temporal datasets
(``is_temporal=True``) already carry a time axis: ``nmnist`` ``[N, T, 2, 34, 34]`` and ``shd``
``[N, T, 700]``. Batches from a DataLoader are ``[B, ...]``; networks in snnlab take
time-major input ``[T, B, ...]``: use :func:`encode` for static data and :func:`to_time_major`
for temporal data.

Example::

    >>> from snnlab import data
    >>> ds = data.load("digits")
    >>> ds.x.shape, ds.num_classes, ds.is_temporal
    (torch.Size([1437, 1, 8, 8]), 10, False)
    >>> x_seq = data.encode(ds.x[:4], T=5, kind="direct")
    >>> tuple(x_seq.shape)
    (5, 4, 1, 8, 8)
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import random
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .results import REPO_ROOT

__all__ = [
    "SPLITS",
    "ENCODINGS",
    "LATENCY_DEFAULTS",
    "DatasetNotFoundError",
    "DatasetInfo",
    "ArrayDataset",
    "data_root",
    "available",
    "info",
    "load",
    "loaders",
    "encode",
    "latency_time",
    "to_time_major",
    "read_nmnist_events",
    "nmnist_frames",
    "shd_bins",
]

SPLITS = ("train", "test")
ENCODINGS = ("direct", "poisson", "latency")
#: ssgd supplement, Sec. E.1 and Table E.6 (Fashion-MNIST column): tau_eff = 20 ms, theta = 0.2,
#: dt = 1 ms (T = 100 steps).
LATENCY_DEFAULTS = {"tau_eff": 20.0, "theta": 0.2, "dt": 1.0}

ENV_VAR = "SNNLAB_DATA"

# ----------------------------------------------------------------------------------------------
# Official sources and checksums. Where each md5 was taken from (public code, read via search):
#  * CIFAR archives: the dataset page https://www.cs.toronto.edu/~kriz/cifar.html (quoted in many
#    repositories, e.g. burn's Cifar100 remote and rai-project/dldataset).
#  * CIFAR-10 binary members (data_batch_*.bin, test_batch.bin) and CIFAR-100 binary members
#    (train.bin, test.bin): rai-project/dldataset vision/cifar10.go and vision/cifar100.go; the
#    CIFAR-10 ones also appear in CMake download checks of other projects.
#  * SVHN .mat files: torchvision.datasets.SVHN.split_list.
#  * Fashion-MNIST .gz files: torchvision.datasets.FashionMNIST.resources.
#  * N-MNIST Train.zip / Test.zip: tonic.datasets.NMNIST and spikingjelly's NMNIST.resource_url_md5.
#  * SHD shd_{train,test}.h5.zip: tonic.datasets.SHD and spikingjelly's SHD.resource_url_md5.
# ----------------------------------------------------------------------------------------------
_MD5 = {
    "cifar10": {
        "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
        "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
        "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
        "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
        "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
        "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
        "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
    },
    "cifar100": {
        "cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8",
        "train.bin": "6172c7755cfe09b2fe270c85cebc1b15",
        "test.bin": "4499cfba6c016c1be1438163640a0898",
    },
    "svhn": {
        "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
        "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "nmnist": {
        "Train.zip": "20959b8e626244a1b502305a9e6e2031",
        "Test.zip": "69ca8762b2fe404d9b9bad1103e97832",
    },
    "shd": {
        "shd_train.h5.zip": "f3252aeb598ac776c1b526422d90eecb",
        "shd_test.h5.zip": "1503a5064faa34311c398fb0a1ed0a6f",
    },
}

# Archives that may sit in the dataset folder (checked with verify=True when present).
_ARCHIVES = {
    "cifar10": {"train": ("cifar-10-binary.tar.gz",), "test": ("cifar-10-binary.tar.gz",)},
    "cifar100": {"train": ("cifar-100-binary.tar.gz",), "test": ("cifar-100-binary.tar.gz",)},
    "nmnist": {"train": ("Train.zip",), "test": ("Test.zip",)},
    "shd": {"train": ("shd_train.h5.zip",), "test": ("shd_test.h5.zip",)},
}

# Standard per-channel statistics of the training sets (pixels in [0, 1]).
_NORM = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}

_CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_CIFAR100_CLASSES = tuple(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm".split()
)
_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_DIGIT_CLASSES = tuple(str(i) for i in range(10))


# ----------------------------------------------------------------------------------------------
# Errors, info records, dataset class
# ----------------------------------------------------------------------------------------------
class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing from the data root, or its files are malformed.

    Attributes: ``name`` (dataset), ``split``, ``root`` (data root), ``paths`` (expected files,
    absolute), ``url`` (official source), ``md5`` (official file -> md5) and ``reason``.
    The message states all of them and how to fix the problem.
    """

    def __init__(self, name: str, split: str, root: Path, paths, url: str,
                 md5: Mapping[str, str], reason: str, folder: Path):
        self.name = name
        self.split = split
        self.root = Path(root)
        self.paths = tuple(str(p) for p in paths)
        self.url = url
        self.md5 = dict(md5)
        self.reason = reason
        lines = [
            f"dataset {name!r} (split {split!r}) is not usable: {reason}",
            f"Expected under the data root {self.root}:",
            *(f"  {p}" for p in self.paths),
            f"Official source: {url}",
            "Official md5 checksums:",
            *(f"  {fname}  {digest}" for fname, digest in self.md5.items()),
            f"Fix: download the official files from the source above and place (extract) them in "
            f"{folder} so that the paths above exist, or point snnlab at an existing copy with "
            f"the environment variable {ENV_VAR}=<root> or load({name!r}, root=<root>). "
            f"snnlab never downloads. Datasets that need no files: {', '.join(_offline_names())}.",
        ]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset, available without loading it.

    ``input_shape`` is the per-sample shape for the default options (for temporal datasets it
    includes the time axis, e.g. ``(T, 2, 34, 34)``). ``files`` maps a split to the expected
    paths relative to the data root; ``md5`` the official files to their md5; ``num_samples``
    the official split sizes; ``options`` the keyword arguments :func:`load` accepts, with their
    defaults.
    """

    name: str
    num_classes: int
    input_shape: tuple
    is_temporal: bool
    offline: bool
    source: str
    description: str
    files: Mapping[str, tuple] = field(default_factory=dict)
    md5: Mapping[str, str] = field(default_factory=dict)
    num_samples: Mapping[str, int] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


class ArrayDataset(TensorDataset):
    """A ``TensorDataset`` of ``x`` (float32, ``[N, *input_shape]``) and ``y`` (int64, ``[N]``).

    Attributes: ``name``, ``split``, ``num_classes``, ``input_shape`` (per sample, no batch
    axis), ``is_temporal`` (``x`` already has a time axis right after the sample axis, so a
    batch is ``[B, T, ...]``), ``classes`` (class names or ``None``).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, name: str, split: str,
                 num_classes: int, is_temporal: bool, classes=None):
        x = torch.as_tensor(x, dtype=torch.float32)
        y = torch.as_tensor(y, dtype=torch.int64)
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(f"ArrayDataset needs x [N, ...] and y [N]; got x {tuple(x.shape)} "
                             f"and y {tuple(y.shape)}")
        super().__init__(x, y)
        self.name = name
        self.split = split
        self.num_classes = int(num_classes)
        self.input_shape = tuple(x.shape[1:])
        self.is_temporal = bool(is_temporal)
        self.classes = None if classes is None else tuple(classes)

    @property
    def x(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def y(self) -> torch.Tensor:
        return self.tensors[1]

    def __repr__(self) -> str:
        return (f"ArrayDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes}, "
                f"is_temporal={self.is_temporal})")


class _Corrupt(ValueError):
    """Internal: a file exists but is malformed (converted to DatasetNotFoundError)."""


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    reader: Callable[..., tuple]        # offline: reader(split, **opts); on-disk: reader(folder, split, **opts)
    check: Callable[[dict], dict]       # validates/normalises the options
    folder: str = ""                    # on-disk: folder under the data root
    locate: Callable[..., list] | None = None  # on-disk: locate(folder, split) -> files (or raise)
    shape: Callable[[dict], tuple] | None = None  # per-sample shape for given options


_REGISTRY: dict[str, _Entry] = {}


def _offline_names() -> list[str]:
    return [n for n, e in _REGISTRY.items() if e.info.offline]


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------
def _int(param: str, value, lo: int, hi: int | None = None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{param}={value!r} is invalid: expected an integer {rng}")
    return int(value)


def _pos_float(param: str, value) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{param}={value!r} is invalid: expected a finite number > 0")
    return float(value)


def _bool(param: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{param}={value!r} is invalid: expected True or False")
    return bool(value)


def _opt_int(param: str, value, lo: int):
    return None if value is None else _int(param, value, lo)


def _check_name(name) -> _Entry:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"name={name!r} is not a known dataset; available: {available()}")
    return _REGISTRY[name]


def _check_split(split) -> str:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is invalid; allowed: {list(SPLITS)}")
    return split


def _merge_opts(entry: _Entry, kw: dict) -> dict:
    allowed = entry.info.options
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise ValueError(f"unknown keyword(s) {unknown} for dataset {entry.info.name!r}; "
                         f"allowed: {sorted(allowed)}")
    return entry.check({**allowed, **kw})


def _check_normalize(name: str, value):
    if isinstance(value, (bool, np.bool_)):
        return _NORM[name] if value else None
    try:
        mean, std = value
        mean = tuple(float(v) for v in mean)
        std = tuple(float(v) for v in std)
    except (TypeError, ValueError):
        mean = std = ()
    n_ch = len(_NORM[name][0])
    if len(mean) != n_ch or len(std) != n_ch or any(s <= 0 for s in std):
        raise ValueError(f"normalize={value!r} is invalid for {name!r}: expected True/False or "
                         f"(mean, std) with {n_ch} value(s) each and std > 0")
    return mean, std


def _image_check(name: str):
    def check(o: dict) -> dict:
        return {"normalize": _check_normalize(name, o["normalize"]),
                "verify": _bool("verify", o["verify"]),
                "max_samples": _opt_int("max_samples", o["max_samples"], 1)}
    return check


# ----------------------------------------------------------------------------------------------
# Public registry functions
# ----------------------------------------------------------------------------------------------
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$SNNLAB_DATA``, else ``<repo>/data``.

    ``<repo>`` is the folder holding the ``snnlab`` package when it contains ``pyproject.toml``
    or ``.git`` (a source checkout); otherwise (an installed package) ``<cwd>/data``.
    The folder is not created.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    if (REPO_ROOT / "pyproject.toml").is_file() or (REPO_ROOT / ".git").exists():
        return REPO_ROOT / "data"
    return Path.cwd() / "data"


def available(offline_only: bool = False) -> list[str]:
    """Names of the registered datasets (only the embedded offline ones if ``offline_only``)."""
    return [n for n, e in _REGISTRY.items() if e.info.offline or not offline_only]


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` without loading anything."""
    return _check_name(name).info


def load(name: str, split: str = "train", root: str | os.PathLike | None = None,
         **kw) -> ArrayDataset:
    """Load one split of a dataset as an :class:`ArrayDataset`.

    Parameters
    ----------
    name : one of :func:`available`.
    split : ``"train"`` or ``"test"``.
    root : data root for on-disk datasets (see :func:`data_root`); ignored by offline ones.
    **kw : dataset options, listed in ``info(name).options``:

      * images (``cifar10``, ``cifar100``, ``svhn``, ``fashion_mnist``): ``normalize`` (False;
        True = standard per-channel mean/std, or a ``(mean, std)`` pair), ``verify``,
        ``max_samples`` (first N samples in file order).
      * ``nmnist``: ``frames`` (T, default 10), ``duration_us`` (None = each sample's own event
        span), ``binary`` (False = event counts), ``verify``, ``max_samples`` (classes taken in
        turn).
      * ``shd``: ``T`` (100), ``duration`` (1.0 s), ``channels`` (700), ``binary``, ``verify``,
        ``max_samples`` (first N).
      * ``mnist1d``: ``num_samples`` (5000), ``seed`` (42).  ``digits``: none.

    ``verify=True`` additionally checks the official sample counts and md5 checksums (of the
    files read where known, and of the official archive if it lies in the dataset folder).

    Raises ``ValueError`` for a bad name, split or option (before any I/O), and
    :class:`DatasetNotFoundError` if the files are missing or malformed. Never writes.
    """
    entry = _check_name(name)
    split = _check_split(split)
    opts = _merge_opts(entry, kw)
    if entry.info.offline:
        x, y, classes = entry.reader(split, **opts)
    else:
        x, y, classes = _load_on_disk(entry, split, data_root(root), opts)
    return ArrayDataset(x, y, name=name, split=split, num_classes=entry.info.num_classes,
                        is_temporal=entry.info.is_temporal, classes=classes)


def loaders(name: str, batch_size: int, root: str | os.PathLike | None = None, seed: int = 0,
            *, num_workers: int = 0, drop_last: bool = False, **kw):
    """``(train_loader, test_loader)`` for ``name``; ``**kw`` go to :func:`load`.

    The training loader shuffles with a ``torch.Generator`` seeded by ``seed`` (same seed, same
    batch order); the test loader keeps file order. Batches are ``x: [B, *input_shape]``.
    """
    batch_size = _int("batch_size", batch_size, 1)
    seed = _int("seed", seed, 0)
    num_workers = _int("num_workers", num_workers, 0)
    drop_last = _bool("drop_last", drop_last)
    entry = _check_name(name)
    _merge_opts(entry, kw)  # validate before loading anything
    train = load(name, "train", root, **kw)
    test = load(name, "test", root, **kw)
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen,
                              drop_last=drop_last, num_workers=num_workers)
    test_loader = DataLoader(test, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return train_loader, test_loader


# ----------------------------------------------------------------------------------------------
# On-disk machinery
# ----------------------------------------------------------------------------------------------
def _md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _error(entry: _Entry, split: str, root: Path, reason: str) -> DatasetNotFoundError:
    folder = root / entry.folder
    paths = [root / p for p in entry.info.files[split]]
    return DatasetNotFoundError(entry.info.name, split, root, paths, entry.info.source,
                                entry.info.md5, reason, folder)


def _load_on_disk(entry: _Entry, split: str, root: Path, opts: dict):
    folder = root / entry.folder
    try:
        files = entry.locate(folder, split)
    except _Corrupt as exc:
        raise _error(entry, split, root, f"missing {exc}") from None
    if opts["verify"]:
        _verify_md5(entry, split, root, folder, files)
    try:
        x, y, classes = entry.reader(folder, split, files, **opts)
    except _Corrupt as exc:
        raise _error(entry, split, root, f"corrupt or malformed: {exc}") from None
    if opts["verify"] and opts["max_samples"] is None:
        expected = entry.info.num_samples[split]
        if len(y) != expected:
            raise _error(entry, split, root, f"found {len(y)} samples, the official {split} "
                                             f"split has {expected}")
    return x, y, classes


def _verify_md5(entry: _Entry, split: str, root: Path, folder: Path, files: list[Path]):
    table = entry.info.md5
    checked = 0
    candidates = [f for f in files if f.name in table]
    candidates += [folder / a for a in _ARCHIVES.get(entry.info.name, {}).get(split, ())
                   if (folder / a).is_file()]
    for path in candidates:
        got = _md5(path)
        if got != table[path.name]:
            raise _error(entry, split, root,
                         f"md5 mismatch for {path}: got {got}, expected {table[path.name]}")
        checked += 1
    if not checked:
        warnings.warn(f"verify=True: no file with a known official md5 found for "
                      f"{entry.info.name!r} ({split}); keep the official archive in {folder} to "
                      f"check it. Sample counts are still checked.", stacklevel=3)


def _require(paths: list[Path]) -> list[Path]:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise _Corrupt(", ".join(missing))
    return paths


def _limit(n: int, max_samples):
    return n if max_samples is None else min(n, max_samples)


def _apply_norm(x: np.ndarray, norm) -> np.ndarray:
    if norm is None:
        return x
    mean = np.asarray(norm[0], np.float32).reshape(1, -1, *([1] * (x.ndim - 2)))
    std = np.asarray(norm[1], np.float32).reshape(1, -1, *([1] * (x.ndim - 2)))
    return (x - mean) / std


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
    import scipy.io

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
    return {"frames": _int("frames", o["frames"], 1),
            "duration_us": _opt_int("duration_us", o["duration_us"], 1),
            "binary": _bool("binary", o["binary"]),
            "verify": _bool("verify", o["verify"]),
            "max_samples": _opt_int("max_samples", o["max_samples"], 1)}


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
    return {"T": _int("T", o["T"], 1),
            "duration": _pos_float("duration", o["duration"]),
            "channels": _int("channels", o["channels"], 1, _SHD_UNITS),
            "binary": _bool("binary", o["binary"]),
            "verify": _bool("verify", o["verify"]),
            "max_samples": _opt_int("max_samples", o["max_samples"], 1)}


def shd_bins(times: np.ndarray, units: np.ndarray, T: int, duration: float = 1.0,
             channels: int = _SHD_UNITS, binary: bool = False) -> np.ndarray:
    """Bin one SHD sample into ``[T, channels]`` float32 spike counts.

    Time bin ``b = floor(t * T / duration)`` for spike time ``t`` in seconds; spikes with
    ``t >= duration`` (or ``t < 0``) are dropped. Channel ``c = floor(u * channels / 700)`` for
    unit ``u`` in 0..699 (``channels=700`` keeps the units; fewer channels sum neighbouring
    units). Counts, or 1/0 if ``binary``.
    """
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
    import h5py

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


# ----------------------------------------------------------------------------------------------
# Embedded offline datasets
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

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
    from mnist1d.data import get_dataset_args, make_dataset

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
    return {"num_samples": _int("num_samples", o["num_samples"], 10),
            "seed": _int("seed", o["seed"], 0, 2**32 - 1)}


def _mnist1d_read(split, num_samples, seed):
    x, y = _mnist1d_arrays(num_samples, seed)[split]
    return torch.tensor(x), torch.tensor(y), _DIGIT_CLASSES


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------
_IMAGE_OPTS = {"normalize": False, "verify": False, "max_samples": None}


def _register(entry: _Entry) -> None:
    _REGISTRY[entry.info.name] = entry


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


# ----------------------------------------------------------------------------------------------
# Encodings
# ----------------------------------------------------------------------------------------------
def _check_T(T) -> int:
    return _int("T", T, 1)


def _check_x(x) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() < 1:
        raise ValueError(f"x must be a tensor [B, ...]; got {type(x).__name__}"
                         + (f" of shape {tuple(x.shape)}" if torch.is_tensor(x) else ""))
    return x if x.is_floating_point() else x.to(torch.float32)


def _no_kw(kind: str, kw: dict) -> None:
    if kw:
        raise ValueError(f"encode(kind={kind!r}) takes no extra keywords; got {sorted(kw)}")


def _encode_direct(x, T, generator, **kw):
    _no_kw("direct", kw)
    return x.unsqueeze(0).repeat(T, *([1] * x.dim()))


def _encode_poisson(x, T, generator, **kw):
    _no_kw("poisson", kw)
    p = x.clamp(0.0, 1.0)
    device = generator.device if generator is not None else x.device
    u = torch.rand((T, *x.shape), generator=generator, device=device, dtype=torch.float64)
    return (u.to(x.device) < p.unsqueeze(0).to(torch.float64)).to(x.dtype)


def latency_time(x: torch.Tensor, tau_eff: float = LATENCY_DEFAULTS["tau_eff"],
                 theta: float = LATENCY_DEFAULTS["theta"]) -> torch.Tensor:
    r"""Spike time of the ssgd latency code (supplement Sec. E.1), in the units of ``tau_eff``:

    .. math:: T(x) = \tau_\mathrm{eff} \log\frac{x}{x - \theta} \text{ if } x > \theta,
              \quad \infty \text{ otherwise.}

    Returns a float64 tensor of the shape of ``x`` (``inf`` where no spike).
    """
    tau_eff = _pos_float("tau_eff", tau_eff)
    if (not isinstance(theta, (int, float, np.integer, np.floating)) or isinstance(theta, bool)
            or not 0 <= theta < 1):
        raise ValueError(f"theta={theta!r} is invalid: expected a number in [0, 1)")
    x = torch.as_tensor(x)
    # compare in the input's own precision: float32(0.2) is "equal to theta", not above it
    above = x > torch.tensor(theta, dtype=x.dtype) if x.is_floating_point() else x > theta
    xf = x.to(torch.float64)
    safe = torch.where(above, xf, torch.ones_like(xf))
    t = tau_eff * torch.log(safe / (safe - theta))
    return torch.where(above, t, torch.full_like(xf, math.inf))


def _encode_latency(x, T, generator, tau_eff=LATENCY_DEFAULTS["tau_eff"],
                    theta=LATENCY_DEFAULTS["theta"], dt=LATENCY_DEFAULTS["dt"], **kw):
    if kw:
        raise ValueError(f"encode(kind='latency') got unknown keyword(s) {sorted(kw)}; "
                         f"allowed: ['dt', 'tau_eff', 'theta']")
    dt = _pos_float("dt", dt)
    t = latency_time(x, tau_eff, theta)
    step = torch.floor(t / dt)                   # inf stays inf
    steps = torch.arange(T, dtype=torch.float64, device=x.device).view(T, *([1] * x.dim()))
    return (steps == step.unsqueeze(0)).to(x.dtype)


_ENCODERS = {"direct": _encode_direct, "poisson": _encode_poisson, "latency": _encode_latency}


def encode(x: torch.Tensor, T: int, kind: str = "direct",
           generator: torch.Generator | None = None, **kw) -> torch.Tensor:
    r"""Turn a static batch ``x: [B, ...]`` into a time-major sequence ``[T, B, ...]``.

    * ``"direct"``: ``out[t] = x`` for every step (analog input repeated).
    * ``"poisson"``: ``out[t] ~ Bernoulli(clip(x, 0, 1))`` independently per step and element,
      drawn from ``generator`` (same generator state, same spikes).
    * ``"latency"``: the ssgd latency code, at most one spike per input. The spike time
      ``T(x) = tau_eff * log(x / (x - theta))`` (for ``x > theta``; none otherwise) is
      discretised as step ``k = floor(T(x) / dt)``; the input spikes at step ``k`` if
      ``k < T``. Keywords ``tau_eff`` (20 ms), ``theta`` (0.2), ``dt`` (1 ms) default to the
      paper's Fashion-MNIST settings, where ``T = 100``; ``x = 1`` then spikes at step 4 and
      larger ``x`` spikes earlier. Deterministic (no generator needed).

    The output has the dtype of ``x`` (float32 for integer input) and values in {0, 1} for the
    spike codes.
    """
    T = _check_T(T)
    if kind not in _ENCODERS:
        raise ValueError(f"kind={kind!r} is not a known encoding; allowed: {list(ENCODINGS)}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
    x = _check_x(x)
    return _ENCODERS[kind](x, T, generator, **kw)


def to_time_major(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, ...] -> [T, B, ...]`` for batches of temporal datasets (``is_temporal``).

    Returns a contiguous tensor.
    """
    if not torch.is_tensor(x) or x.dim() < 2:
        raise ValueError(f"x must be a tensor [B, T, ...] with at least 2 dimensions; got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    return x.transpose(0, 1).contiguous()
