"""The one cached-run mechanism: a trained model (a DST run, an sltt variant, an IMP level) is
computed once, checkpointed while it trains, and reused by every notebook that asks for it.

A run's directory is ``<cache root>/<kind>-<hash>`` (:func:`snnlab.paths.cache_root`:
``$SNNLAB_CACHE`` or ``results/_cache``), where the hash covers

* the run's full configuration (whatever the caller passes: model, training, method settings);
* a fingerprint of the data's *content* (:func:`data_fingerprint`: the bytes of every tensor, not
  the dataset's name and length);
* the code version (:func:`code_version`: a hash of every snnlab source file, plus the git commit
  when the package sits in a git checkout).

So a cache written by other code, or for other data, is never reported as this run's numbers.
The key is stored beside the result (``key.json``) for provenance and checked on every load.
``snnlab clean --cache`` empties the cache.

>>> run = CachedRun("demo", {"lr": 0.1}, enabled=False)
>>> run.dir is None and run.result() is None
True
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ..paths import REPO_ROOT, atomic_write_bytes, atomic_write_json, cache_root, jsonable

__all__ = ["code_version", "git_dirty", "data_fingerprint", "run_key", "key_hash", "CachedRun", "cached_run", "clear_cache"]

_PACKAGE = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(_PACKAGE.rglob("*")):
        if p.suffix in (".py", ".c") and p.is_file():
            h.update(str(p.relative_to(_PACKAGE)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    if not (REPO_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def code_version() -> dict[str, str | None]:
    """``{"sources": hash of every snnlab .py/.c file, "commit": git HEAD or None}``."""
    return {"sources": _source_hash(), "commit": _git_commit()}


def git_dirty() -> bool | None:
    """Whether the checkout has uncommitted changes to tracked files (None outside a git checkout)."""
    if _git_commit() is None:
        return None
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def _tensor_digest(h, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def data_fingerprint(*datasets: Any) -> str:
    """Hash of the content of the datasets: every tensor of a ``TensorDataset`` (x and y), else
    each item's tensors. Two datasets with the same name and length but other samples differ."""
    h = hashlib.sha256()
    for ds in datasets:
        if ds is None:
            h.update(b"none")
            continue
        tensors = getattr(ds, "tensors", None)
        if tensors is None:
            tensors = [torch.as_tensor(v) for i in range(len(ds)) for v in ds[i]]
        for t in tensors:
            _tensor_digest(h, torch.as_tensor(t))
    return h.hexdigest()[:16]


def run_key(kind: str, config: Mapping[str, Any], datasets: Sequence[Any] = ()) -> dict:
    """Everything a cached result depends on (what :func:`key_hash` hashes)."""
    return {"kind": kind, "config": jsonable(dict(config)), "data": data_fingerprint(*datasets),
            "code": code_version()}


def key_hash(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CachedRun:
    """One cached run: ``dir`` (None when caching is off), ``checkpoint_dir`` for
    :func:`snnlab.train.fit`, :meth:`result` (the saved result, or None) and :meth:`save`.

    Results are plain structures of tensors, numbers, strings, lists and dicts, written with
    ``torch.save`` atomically and read back with ``weights_only=True``.
    """

    RESULT = "result.pt"

    def __init__(self, kind: str, config: Mapping[str, Any], datasets: Sequence[Any] = (), enabled: bool = True):
        self.kind = kind
        self.key = run_key(kind, config, datasets) if enabled else None
        self.dir: Path | None = cache_root() / f"{kind}-{key_hash(self.key)}" if enabled else None

    @property
    def checkpoint_dir(self) -> str | None:
        return None if self.dir is None else str(self.dir)

    def result(self) -> Any | None:
        """The saved result if this exact key finished before, else None."""
        if self.dir is None or not (self.dir / self.RESULT).exists():
            return None
        stored = json.loads((self.dir / "key.json").read_text()) if (self.dir / "key.json").exists() else None
        if stored != jsonable(self.key):
            return None  # a hash collision or a hand-edited folder: never report it as ours
        return torch.load(self.dir / self.RESULT, map_location="cpu", weights_only=True)

    def save(self, result: Any) -> Any:
        """Write ``result`` (and the key) atomically; returns ``result``."""
        if self.dir is not None:
            atomic_write_json(self.dir / "key.json", self.key)
            buf = io.BytesIO()
            torch.save(result, buf)
            atomic_write_bytes(self.dir / self.RESULT, buf.getvalue())
        return result


def cached_run(kind: str, config: Mapping[str, Any], datasets: Sequence[Any], compute: Callable[[CachedRun], Any],
               cache: bool = True) -> Any:
    """``compute(run)`` once per key: a finished run is loaded; an interrupted one resumes from
    the checkpoints ``compute`` wrote into ``run.checkpoint_dir``."""
    run = CachedRun(kind, config, datasets, enabled=cache)
    done = run.result()
    if done is not None:
        return done
    return run.save(compute(run))


def clear_cache() -> int:
    """Delete every cached run under :func:`snnlab.paths.cache_root`; returns how many folders went."""
    root = cache_root()
    n = 0
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir():
                shutil.rmtree(d)
                n += 1
    return n
