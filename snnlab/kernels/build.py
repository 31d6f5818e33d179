"""The one builder of snnlab's native (C / OpenMP) kernels.

Each kernel is a real C file shipped as package data beside this module (``condensed.c``,
``sparse_backward.c``). :func:`load` compiles it once per machine and source into the kernel cache
(:func:`snnlab.paths.kernel_dir`: ``$SNNLAB_KERNEL_DIR`` or ``~/.cache/snnlab/kernels``), loads it
with ctypes and declares its functions' signatures. The shared object's name hashes the source,
the compiler command, the flags and the CPU, so a stale build is never reused.

* Compiler: ``$CC`` (it may carry arguments, e.g. ``CC="ccache gcc"``), else ``gcc``, else ``cc``.
* Flags: ``-O3 -march=native -fopenmp``, falling back to ``-O3 -fopenmp`` and then ``-O3``.
* ``SNNLAB_NO_NATIVE=1`` disables every kernel (callers fall back to their torch path with a warning).
* ``SNNLAB_REQUIRE_NATIVE=1`` (set by ``make test``) turns a failed build into an error, so that
  CI runs the native tests instead of skipping them.

:func:`check_args` is the guard every native entry calls before handing pointers to C: device,
dtype, contiguity and shape of every tensor, with a ``ValueError`` naming the argument.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import torch

from ..paths import kernel_dir

__all__ = [
    "KernelUnavailable",
    "compiler",
    "source",
    "load",
    "available",
    "status",
    "check_args",
    "FLAG_SETS",
]

FLAG_SETS: tuple[tuple[str, ...], ...] = (
    ("-O3", "-march=native", "-fopenmp"),
    ("-O3", "-fopenmp"),
    ("-O3",),
)

#: ctypes signature: (argument types, return type)
Signature = tuple[Sequence[type], type | None]


class KernelUnavailable(RuntimeError):
    """A native kernel could not be built or loaded (only raised when it is required)."""


_lock = threading.Lock()
_state: dict[str, dict] = {}


def _truthy(var: str) -> bool:
    return os.environ.get(var, "") not in ("", "0")


def compiler() -> list[str]:
    """The compiler command as a list: ``shlex.split($CC)`` (so ``CC="ccache gcc"`` works), else gcc / cc."""
    cc = os.environ.get("CC", "").strip()
    if cc:
        cmd = shlex.split(cc)
        if not shutil.which(cmd[0]):
            raise KernelUnavailable(f"CC={cc!r}: {cmd[0]!r} is not on PATH; set CC to an installed C compiler")
        return cmd
    found = shutil.which("gcc") or shutil.which("cc")
    if not found:
        raise KernelUnavailable("no C compiler found (gcc or cc); install gcc (apt-get install gcc) or set CC")
    return [found]


def source(name: str) -> str:
    """The C source shipped as ``snnlab/kernels/<name>.c``."""
    return resources.files(__package__).joinpath(f"{name}.c").read_text()


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return "".join([ln for ln in fh if ln.startswith(("model name", "flags"))][:2])
    except OSError:
        return platform.processor()


def _compile(name: str, src: str) -> Path:
    cc = compiler()
    directory = kernel_dir()
    directory.mkdir(parents=True, exist_ok=True)
    errors = []
    for flags in FLAG_SETS:
        key = hashlib.sha256(
            "\n".join([src, " ".join(cc), " ".join(flags), _cpu_signature(), platform.machine()]).encode()
        ).hexdigest()[:20]
        so = directory / f"{name}_{key}.so"
        if so.exists():
            return so
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            c_file = Path(tmp) / f"{name}.c"
            c_file.write_text(src)
            out = Path(tmp) / f"{name}.so"
            proc = subprocess.run(
                [*cc, *flags, "-shared", "-fPIC", "-std=gnu11", str(c_file), "-o", str(out)],
                capture_output=True, text=True, timeout=180,
            )
            if proc.returncode == 0:
                os.replace(out, so)  # atomic: a concurrent build of the same key writes the same bytes
                return so
            errors.append(f"{' '.join(flags)}: {proc.stderr.strip()[-400:]}")
    raise KernelUnavailable(f"compiling {name}.c failed: " + " | ".join(errors))


def load(name: str, signatures: Mapping[str, Signature]) -> ctypes.CDLL | None:
    """The compiled kernel ``name`` with ``signatures`` declared, or None (with one warning) when it
    cannot be built; raises :class:`KernelUnavailable` instead when ``SNNLAB_REQUIRE_NATIVE`` is set.
    Compiles at most once per process; thread-safe."""
    st = _state.get(name)
    if st is None:
        with _lock:
            st = _state.get(name)
            if st is None:
                st = {"lib": None, "error": None}
                if _truthy("SNNLAB_NO_NATIVE"):
                    st["error"] = "disabled by SNNLAB_NO_NATIVE"
                else:
                    try:
                        lib = ctypes.CDLL(str(_compile(name, source(name))))
                        for fn, (argtypes, restype) in signatures.items():
                            f = getattr(lib, fn)
                            f.argtypes = list(argtypes)
                            f.restype = restype
                        st["lib"] = lib
                    except (KernelUnavailable, OSError, subprocess.SubprocessError, AttributeError) as e:
                        st["error"] = str(e)
                        if not _truthy("SNNLAB_REQUIRE_NATIVE"):
                            warnings.warn(f"snnlab: native {name} kernel unavailable, using torch ops ({e})",
                                          stacklevel=2)
                _state[name] = st
    if st["lib"] is None and _truthy("SNNLAB_REQUIRE_NATIVE") and not _truthy("SNNLAB_NO_NATIVE"):
        raise KernelUnavailable(
            f"the native {name} kernel is required (SNNLAB_REQUIRE_NATIVE=1) but unavailable: {st['error']}. "
            "Install a C compiler with OpenMP (apt-get install gcc) or unset SNNLAB_REQUIRE_NATIVE."
        )
    return st["lib"]


def available(name: str, signatures: Mapping[str, Signature]) -> bool:
    return load(name, signatures) is not None


def status(name: str) -> str | None:
    """Why kernel ``name`` is unavailable (None when it loaded or was never asked for)."""
    st = _state.get(name)
    return None if st is None else st["error"]


def check_args(fn: str, device: torch.device | str = "cpu", **tensors: tuple) -> None:
    """Check tensors before a native call: ``name=(tensor, dtypes, shape)``; ``shape`` may be None
    (any) or a tuple with None for any size. Each tensor must be on ``device``, contiguous, of one
    of ``dtypes``. A tensor given as None is skipped (an optional argument)."""
    device = torch.device(device)
    for name, (t, dtypes, shape) in tensors.items():
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{fn}: {name} must be a tensor, got {type(t).__name__}")
        if t.device != device:
            raise ValueError(
                f"{fn}: {name} is on {t.device}, the native kernel runs on {device}; "
                f"move every tensor to {device} (or use the torch path)"
            )
        if t.dtype not in dtypes:
            raise ValueError(f"{fn}: {name} has dtype {t.dtype}; allowed dtypes: {list(dtypes)}")
        if not t.is_contiguous():
            raise ValueError(f"{fn}: {name} must be contiguous (call .contiguous())")
        if shape is not None:
            ok = t.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, t.shape))
            if not ok:
                want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
                raise ValueError(f"{fn}: {name} has shape {list(t.shape)}, expected {want}")
