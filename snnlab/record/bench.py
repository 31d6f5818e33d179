"""Timing and memory measurement, always reported as ratios against a baseline in the same run.

* :func:`time_fn`: median of repeats after warm-up (``torch.cuda.synchronize`` on a GPU).
* :class:`SavedTensorMeter`: bytes of tensors saved for backward, through
  ``torch.autograd.graph.saved_tensors_hooks``. It tracks the *live* saved bytes (a saved tensor
  stops counting when the graph that holds it is freed) and their peak, deduplicating tensors that
  share a storage. This is device independent and deterministic, so it is the measure the SLTT
  memory claims use.
* :func:`peak_rss_delta`: peak resident set size during a call, above the level before it
  (Linux ``VmHWM`` reset through ``/proc/self/clear_refs``; falls back to sampling).
* :func:`cuda_peak_bytes`: CUDA peak allocated during a call, when a GPU is present.

Never assert on these in unit tests; benchmarks in ``benchmarks/`` record them.
"""

from __future__ import annotations

import gc
from importlib import metadata
import os
import platform
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..train import runs

__all__ = [
    "Timing",
    "time_fn",
    "SavedTensorMeter",
    "saved_tensor_bytes",
    "peak_rss_delta",
    "cuda_peak_bytes",
    "machine_info",
]


@dataclass
class Timing:
    """Seconds per call: median, interquartile range and all repeats."""

    median: float
    iqr: float
    times: list[float] = field(repr=False)

    @property
    def min(self) -> float:
        return min(self.times)

    @classmethod
    def of(cls, times: list[float]) -> "Timing":
        """Summarise seconds per call (e.g. repeats pooled over interleaved rounds)."""
        if not times:
            raise ValueError("times is empty; time at least one call")
        q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
        return cls(median=statistics.median(times), iqr=q[2] - q[0], times=list(times))


def _sync(device: Any) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(
    fn: Callable[[], Any],
    repeats: int = 20,
    warmup: int = 3,
    min_time: float = 0.0,
    device: Any = None,
) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed calls (more while the total
    stays under ``min_time`` seconds, up to 10x ``repeats``). Returns the median and IQR."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    total = 0.0
    while len(times) < repeats or (total < min_time and len(times) < 10 * repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
    return Timing.of(times)


class _Packed:
    """What the pack hook stores: the tensor itself plus bookkeeping that runs when freed."""

    __slots__ = ("tensor", "key", "meter", "__weakref__")

    def __init__(self, tensor: torch.Tensor, key: int, meter: "SavedTensorMeter"):
        self.tensor, self.key, self.meter = tensor, key, meter

    def __del__(self) -> None:  # graph freed -> the saved tensor stops counting
        try:
            self.meter._release(self.key)
        except Exception:
            pass


class SavedTensorMeter:
    """Context manager measuring bytes saved for backward.

    ``total``: bytes that became saved over the whole block: a storage is charged when it enters
    the set of saved storages (its first pack while no saved tensor holds it); several tensors
    saved from one storage at once count once, and a storage saved again after every earlier save
    of it was released (the next step's graph, or a new tensor the allocator put at a freed
    address) counts again. So the total of T sequential one-step graphs (SLTT) grows with T.
    (Deduplicating by address over the whole block, as before, undercounted: freed addresses are
    reused, and SLTT totals went *down* with T.)
    ``peak``: the largest amount alive at once; for online methods that free each step's graph
    (SLTT) this stays flat in T while BPTT's grows.

    >>> w = torch.randn(64, 64, requires_grad=True)
    >>> with SavedTensorMeter() as m:
    ...     y = (torch.randn(8, 64) @ w).relu().sum()
    >>> m.peak > 0
    True
    """

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self.total = 0
        self.count = 0
        self._refs: dict[int, list[int]] = {}  # storage key -> [refcount, nbytes] of live saves
        self._lock = threading.Lock()
        self._ctx = None

    def _pack(self, t: torch.Tensor) -> _Packed:
        storage = t.untyped_storage()
        key = storage.data_ptr() if storage.data_ptr() != 0 else id(storage)
        nbytes = storage.nbytes()
        with self._lock:
            self.count += 1
            ref = self._refs.get(key)
            if ref is None:
                self._refs[key] = [1, nbytes]
                self.live += nbytes
                self.total += nbytes
                self.peak = max(self.peak, self.live)
            else:
                ref[0] += 1
        return _Packed(t, key, self)

    def _release(self, key: int) -> None:
        with self._lock:
            ref = self._refs.get(key)
            if ref is None:
                return
            ref[0] -= 1
            if ref[0] == 0:
                self.live -= ref[1]
                del self._refs[key]

    @staticmethod
    def _unpack(p: _Packed) -> torch.Tensor:
        return p.tensor

    def __enter__(self) -> "SavedTensorMeter":
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def saved_tensor_bytes(fn: Callable[[], Any]) -> dict[str, int]:
    """Run ``fn()`` under a :class:`SavedTensorMeter`; return its peak, total and count."""
    with SavedTensorMeter() as m:
        fn()
    return {"peak": m.peak, "total": m.total, "count": m.count}


def _read_vm(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_delta(fn: Callable[[], Any], interval: float = 0.002) -> int:
    """Peak resident memory during ``fn()`` minus the resident memory before it, in bytes."""
    gc.collect()
    before = _read_vm("VmRSS")
    reset_ok = False
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        reset_ok = True
    except OSError:
        pass
    if reset_ok and before is not None:
        fn()
        hwm = _read_vm("VmHWM")
        return max(0, (hwm or 0) - before)
    import psutil  # noqa: PLC0415  (optional dependency, only where /proc has no VmHWM)

    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        stop.set()
        th.join()
    return max(0, peak[0] - before)


def cuda_peak_bytes(fn: Callable[[], Any], device: Any = "cuda") -> int | None:
    """Peak CUDA memory allocated during ``fn()`` above the level before it; ``None`` without a GPU."""
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def environment(params: dict | None = None) -> dict[str, Any]:
    """The reproducibility record of a run: package versions, the code (git commit, dirty tree,
    source hash), the seed, the device and the thread count, and the machine."""
    params = params or {}
    device = params.get("device", "cpu")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    code = runs.code_version()
    return {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "spikingjelly": _version("spikingjelly"), "numpy": _version("numpy")},
        "git_commit": code["commit"], "git_dirty": runs.git_dirty(), "sources_hash": code["sources"],
        "seed": params.get("seed"), "device": device, "threads": torch.get_num_threads(),
        "machine": machine_info(),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What a benchmark result must say about where it ran."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
