r"""Dataset registry: names, options, the data root, ``load`` / ``loaders`` and their errors.

The readers live beside it (:mod:`.offline`, :mod:`.images`, :mod:`.events`) and register
themselves here; :mod:`snnlab.data` imports them all and re-exports the public names.

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
    <root>/dvs_gesture/DvsGesture/trials_to_{train,test}.txt, <recording>.aedat, <recording>_labels.csv
    <root>/cifar10_dvs/<class>/cifar10_<class>_<i>.aedat

Loading never writes anything (no download, no cache). A missing or malformed dataset raises
:class:`DatasetNotFoundError`, whose message names the expected paths, the official URL, the
official md5 checksums and how to fix it. Cheap checks (file sizes that must be whole records,
IDX headers against payload sizes, HDF5 structure, label ranges) run on every load; with
``verify=True`` the official sample counts and md5 checksums are checked as well.

Every loader returns an :class:`ArrayDataset` (a ``TensorDataset`` of ``x`` float32 and ``y``
int64). Static images have ``x: [N, C, H, W]`` (or ``[N, 1, L]``); temporal datasets
(``is_temporal=True``) already carry a time axis: ``nmnist`` ``[N, T, 2, 34, 34]`` and ``shd``
``[N, T, 700]``, ``dvs_gesture`` and ``cifar10_dvs`` ``[N, T, 2, size, size]``. Batches from a DataLoader are ``[B, ...]``; networks in snnlab take
time-major input ``[T, B, ...]``: use :func:`snnlab.core.encoding.encode` for static data and
:func:`snnlab.core.encoding.to_time_major` for temporal data.

Example::

    >>> from snnlab import data
    >>> ds = data.load("digits")
    >>> ds.x.shape, ds.num_classes, ds.is_temporal
    (torch.Size([1437, 1, 8, 8]), 10, False)
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .. import checks, paths

__all__ = [
    "SPLITS",
    "DatasetNotFoundError",
    "DatasetInfo",
    "ArrayDataset",
    "data_root",
    "available",
    "info",
    "load",
    "loaders",
    "present",
    "tensors",
    "batches",
]

SPLITS = ("train", "test")
ENV_VAR = paths.DATA_ENV

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
#  * DVS128-Gesture DvsGesture.tar.gz and gesture_mapping.csv (IBM Box): spikingjelly's
#    DVS128Gesture.resource_url_md5 (datasets/dvs128_gesture.py).
#  * CIFAR10-DVS <class>.zip (figshare 4724671): spikingjelly's CIFAR10DVS.resource_url_md5
#    (datasets/cifar10_dvs.py) and, identical, the SLTT official utils/cifar10_dvs.py `resource`.
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
    "dvs_gesture": {
        "DvsGesture.tar.gz": "8a5c71fb11e24e5ca5b11866ca6c00a1",
        "gesture_mapping.csv": "109b2ae64a0e1f3ef535b18ad7367fd1",
    },
    "cifar10_dvs": {
        "airplane.zip": "0afd5c4bf9ae06af762a77b180354fdd",
        "automobile.zip": "8438dfeba3bc970c94962d995b1b9bdd",
        "bird.zip": "a9c207c91c55b9dc2002dc21c684d785",
        "cat.zip": "52c63c677c2b15fa5146a8daf4d56687",
        "deer.zip": "b6bf21f6c04d21ba4e23fc3e36c8a4a3",
        "dog.zip": "f379ebdf6703d16e0a690782e62639c3",
        "frog.zip": "cad6ed91214b1c7388a5f6ee56d08803",
        "horse.zip": "e7cbbf77bec584ffbf913f00e682782a",
        "ship.zip": "41c7bd7d6b251be82557c6cce9a7d5c9",
        "truck.zip": "89f3922fd147d9aeff89e76a2b0b70a7",
    },
}

_CIFAR10_DVS_ZIPS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                     "ship", "truck")

# Archives that may sit in the dataset folder (checked with verify=True when present).
_ARCHIVES = {
    "cifar10": {"train": ("cifar-10-binary.tar.gz",), "test": ("cifar-10-binary.tar.gz",)},
    "cifar100": {"train": ("cifar-100-binary.tar.gz",), "test": ("cifar-100-binary.tar.gz",)},
    "nmnist": {"train": ("Train.zip",), "test": ("Test.zip",)},
    "shd": {"train": ("shd_train.h5.zip",), "test": ("shd_test.h5.zip",)},
    "dvs_gesture": {s: ("DvsGesture.tar.gz", "gesture_mapping.csv") for s in SPLITS},
    "cifar10_dvs": {s: tuple(f"{c}.zip" for c in _CIFAR10_DVS_ZIPS) for s in SPLITS},
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
                "verify": checks.boolean("verify", o["verify"]),
                "max_samples": checks.optional_integer("max_samples", o["max_samples"], 1)}
    return check


# ----------------------------------------------------------------------------------------------
# Public registry functions
# ----------------------------------------------------------------------------------------------
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$SNNLAB_DATA``, else ``<repo>/data`` (a source
    checkout) or ``<cwd>/data`` (an installed package); see :func:`snnlab.paths.data_root`."""
    return paths.data_root(root)


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
      * ``dvs_gesture`` / ``cifar10_dvs``: ``frames`` (T; 20 / 10), ``split_by`` (``"number"``
        = equal event counts, as the SLTT code; ``"time"`` = equal time windows), ``size``
        (128; e.g. 48 = antialiased bilinear downsampling), ``binary``, ``verify``,
        ``max_samples`` (gestures in recording order / CIFAR10-DVS classes in turn);
        ``cifar10_dvs`` also ``train_fraction`` (0.9: per class, the first 90% of the files by
        index train, the rest test, as the SLTT code; ``verify`` expects 9000/1000 then).
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


def present(name: str, root: str | os.PathLike | None = None) -> dict[str, str | None]:
    """Whether each split of ``name`` is on disk: ``{split: None}`` when its files are found, else
    ``{split: what is missing}`` (offline datasets are always present). Reads no data."""
    entry = _check_name(name)
    if entry.info.offline:
        return {s: None for s in SPLITS}
    folder = data_root(root) / entry.folder
    out: dict[str, str | None] = {}
    for split in SPLITS:
        try:
            entry.locate(folder, split)
            out[split] = None
        except (_Corrupt, OSError) as exc:
            out[split] = f"missing {exc}"
    return out


def loaders(name: str, batch_size: int, root: str | os.PathLike | None = None, seed: int = 0,
            *, num_workers: int = 0, drop_last: bool = False, **kw):
    """``(train_loader, test_loader)`` for ``name``; ``**kw`` go to :func:`load`.

    The training loader shuffles with a ``torch.Generator`` seeded by ``seed`` (same seed, same
    batch order); the test loader keeps file order. Batches are ``x: [B, *input_shape]``.
    """
    batch_size = checks.integer("batch_size", batch_size, 1)
    seed = checks.integer("seed", seed, 0)
    num_workers = checks.integer("num_workers", num_workers, 0)
    drop_last = checks.boolean("drop_last", drop_last)
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


_IMAGE_OPTS = {"normalize": False, "verify": False, "max_samples": None}


def _register(entry: _Entry) -> None:
    _REGISTRY[entry.info.name] = entry


def tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of a dataset: the tensors of a ``TensorDataset``, else stacked item by item."""
    if hasattr(ds, "tensors"):
        return ds.tensors[0], ds.tensors[1]
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs), torch.as_tensor(ys)


def batches(n: int, batch_size: int, generator: torch.Generator | None):
    """Index batches over ``n`` samples: shuffled by ``generator``, in order when it is None."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]
