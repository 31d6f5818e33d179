"""Figures, metrics and claims of one notebook run, written atomically.

Layout: ``<results root>/<paper>/<notebook>/<profile>/`` holding ``figures/<name>.png|pdf``,
``metrics.json``, ``claims.json`` and ``run.json`` (parameters, timings). The results root is
``$SNNLAB_RESULTS`` or ``<repo>/results``. Every file is written to a temporary file in the same
directory and renamed into place, so an interrupted run never leaves a half-written file.

A *claim* compares one statement of a paper with our number::

    rec = Recorder("srigl", "01_output_norm_variance", profile="quick", params=params)
    rec.claim("fan_in_lowest", "constant fan-in has the lowest output-norm variance",
              ours=ratio, paper=None, passed=ratio < 1, test="Var_fan_in / Var_bernoulli < 1")

A claim that fails is a finding, not an error: it is recorded and shown beside the paper's number.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "results_root",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "Claim",
    "Recorder",
    "approx",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


def results_root() -> Path:
    """``$SNNLAB_RESULTS`` if set, else ``<repo>/results``."""
    env = os.environ.get("SNNLAB_RESULTS")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "results"


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


def _jsonable(obj: Any) -> Any:
    """Convert numpy / torch scalars and arrays, paths and dataclasses to JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return _jsonable(asdict(obj))
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return repr(obj)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


@dataclass
class Claim:
    """One statement of a paper checked against our run."""

    id: str
    statement: str
    ours: Any
    paper: Any = None
    test: str = ""
    passed: bool = False
    note: str = ""


def approx(ours: float, target: float, rel: float | None = None, abs_: float | None = None) -> tuple[bool, str]:
    """``(passed, test description)`` for ``|ours - target| <= max(rel*|target|, abs_)``."""
    tol = max((rel or 0.0) * abs(target), abs_ or 0.0)
    return bool(abs(ours - target) <= tol), f"|ours - {target:g}| <= {tol:.3g}"


@dataclass
class Recorder:
    """Collects one notebook run's figures, metrics and claims under its results directory."""

    paper: str
    notebook: str
    profile: str = "quick"
    params: dict = field(default_factory=dict)
    root: Path | None = None

    def __post_init__(self) -> None:
        base = Path(self.root) if self.root is not None else results_root()
        self.dir = base / self.paper / self.notebook / self.profile
        self.fig_dir = self.dir / "figures"
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        self.metrics: dict[str, Any] = {}
        self.claims: list[Claim] = []
        self._t0 = time.time()
        self._write_run()

    # -- figures -----------------------------------------------------------------------------
    def savefig(self, fig, name: str, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 120) -> list[Path]:
        """Save ``fig`` as ``figures/<name>.<fmt>`` for each format, atomically."""
        import io

        paths = []
        for fmt in formats:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
            paths.append(atomic_write_bytes(self.fig_dir / f"{name}.{fmt}", buf.getvalue()))
        return paths

    # -- metrics and claims --------------------------------------------------------------------
    def metric(self, name: str, value: Any) -> Any:
        self.metrics[name] = _jsonable(value)
        atomic_write_json(self.dir / "metrics.json", self.metrics)
        return value

    def claim(
        self,
        id: str,
        statement: str,
        ours: Any,
        passed: bool,
        test: str,
        paper: Any = None,
        note: str = "",
    ) -> Claim:
        """Record a claim (replacing an earlier one with the same id) and rewrite claims.json."""
        c = Claim(id=id, statement=statement, ours=_jsonable(ours), paper=_jsonable(paper),
                  test=test, passed=bool(passed), note=note)
        self.claims = [x for x in self.claims if x.id != id] + [c]
        atomic_write_json(self.dir / "claims.json", [asdict(x) for x in self.claims])
        return c

    def claims_table(self, numbers: bool = True):
        """A pandas DataFrame of the claims (``numbers=False`` keeps only deterministic columns)."""
        import pandas as pd

        cols = ["id", "statement", "paper", "ours", "test", "passed"] if numbers else ["id", "statement", "passed"]
        return pd.DataFrame([asdict(c) for c in self.claims], columns=[f.name for f in fields(Claim)])[cols]

    def _write_run(self, **extra: Any) -> None:
        atomic_write_json(
            self.dir / "run.json",
            {"paper": self.paper, "notebook": self.notebook, "profile": self.profile,
             "params": self.params, "started": self._t0, **extra},
        )

    def finish(self) -> Path:
        """Write run.json with the wall time; call at the end of a notebook."""
        self._write_run(wall_s=round(time.time() - self._t0, 2), finished=time.time(),
                        n_claims=len(self.claims), n_passed=sum(c.passed for c in self.claims))
        return self.dir
