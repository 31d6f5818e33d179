"""Where things live, and how files are written: the bottom layer of snnlab.

* :data:`REPO_ROOT`: the folder that holds the ``snnlab`` package (a source checkout).
* :func:`results_root`: ``$SNNLAB_RESULTS`` or ``<repo>/results``.
* :func:`data_root`: ``root``, else ``$SNNLAB_DATA``, else ``<repo>/data`` (a checkout) or ``<cwd>/data``.
* :func:`cache_root`: ``$SNNLAB_CACHE`` or ``<results root>/_cache`` (cached runs).
* :func:`kernel_dir`: ``$SNNLAB_KERNEL_DIR`` or ``$XDG_CACHE_HOME/snnlab/kernels`` (compiled C kernels).
* ``atomic_write_*``: every file goes to a temporary file in the same folder and is renamed into
  place, so an interrupted run never leaves a half-written file.

Nothing here imports another snnlab module.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = [
    "REPO_ROOT",
    "results_root",
    "data_root",
    "cache_root",
    "kernel_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "jsonable",
]

DATA_ENV = "SNNLAB_DATA"

REPO_ROOT = Path(__file__).resolve().parent.parent


def results_root() -> Path:
    """``$SNNLAB_RESULTS`` if set, else ``<repo>/results``."""
    env = os.environ.get("SNNLAB_RESULTS")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "results"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$SNNLAB_DATA``, else ``<repo>/data``.

    ``<repo>`` is the folder holding the ``snnlab`` package when it contains ``pyproject.toml``
    or ``.git`` (a source checkout); otherwise (an installed package) ``<cwd>/data``.
    The folder is not created.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    if (REPO_ROOT / "pyproject.toml").is_file() or (REPO_ROOT / ".git").exists():
        return REPO_ROOT / "data"
    return Path.cwd() / "data"


def cache_root() -> Path:
    """``$SNNLAB_CACHE`` if set, else ``<results root>/_cache``: cached runs (``snnlab clean --cache``)."""
    env = os.environ.get("SNNLAB_CACHE")
    return Path(env).expanduser().resolve() if env else results_root() / "_cache"


def kernel_dir() -> Path:
    """``$SNNLAB_KERNEL_DIR`` if set, else ``$XDG_CACHE_HOME/snnlab/kernels`` (``~/.cache`` by default)."""
    env = os.environ.get("SNNLAB_KERNEL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "snnlab" / "kernels"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def jsonable(obj: Any) -> Any:
    """Convert numpy / torch scalars and arrays, paths and dataclasses to JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return jsonable(asdict(obj))
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return repr(obj)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=False) + "\n")
