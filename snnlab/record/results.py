"""Figures, metrics and claims of one notebook run, written atomically.

Layout: ``<results root>/<paper>/<notebook>/<profile>/`` holding ``figures/<name>.png|pdf``,
``metrics.json``, ``claims.json`` and ``run.json`` (parameters, timings). The results root is
``$SNNLAB_RESULTS`` or ``<repo>/results``. Every file is written to a temporary file in the same
directory and renamed into place, so an interrupted run never leaves a half-written file.

A *claim* compares one statement of a paper with our number::

    rec = Recorder("srigl", "01_output_norm_variance", profile="quick", params=params)
    rec.claim("fan_in_lowest", "constant fan-in has the lowest output-norm variance", ours=ratio,
              kind="sanity", paper=None, passed=ratio < 1, test="Var_fan_in / Var_bernoulli < 1")

A study's ``claims.py`` builds the records (thresholds from ``papers/<paper>/paper.yaml``) and the
notebook adds them: ``rec.add(claims.fan_in_lowest(curves))``. Every claim has a ``kind`` (see
:data:`KINDS`); a claim without one is refused. A claim that fails is a finding, not an error: it
is recorded and shown beside the paper's number.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from .bench import environment

from ..paths import atomic_write_bytes, atomic_write_json, atomic_write_text, jsonable, results_root

__all__ = [
    "results_root",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "KINDS",
    "VERDICTS",
    "Claim",
    "Recorder",
    "approx",
]


#: claim kinds: ``reproduction`` (our measurement against the paper's number or statement),
#: ``finding`` (beyond the paper, or an erratum settled by computation), ``sanity`` (an invariant the
#: code enforces, or algebra: shown, never counted as reproduced)
KINDS = ("reproduction", "finding", "sanity")
#: verdicts as the report and expected_verdicts.yaml write them
VERDICTS = ("holds", "does not hold", "not run")


@dataclass
class Claim:
    """One statement of a paper checked against our run.

    ``paper`` is the paper's number or statement and ``provenance`` where it comes from (a table
    or page, or "official repository, file X"); ``passed`` is None when the claim was not run at
    this profile (``note`` says why). A ``reproduction`` or ``finding`` must be able to fail on
    other data; one that cannot is ``sanity``.
    """

    id: str
    statement: str
    ours: Any
    kind: str | None = None
    paper: Any = None
    provenance: str = ""
    test: str = ""
    passed: bool | None = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind is None:
            raise ValueError(f"claim {self.id!r}: kind is missing; allowed values: {list(KINDS)} (reproduction: "
                             "ours against the paper's; finding: beyond the paper; sanity: an invariant or algebra)")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id!r}: kind={self.kind!r} is invalid; allowed values: {list(KINDS)}")
        if self.passed is not None:
            self.passed = bool(self.passed)

    @property
    def verdict(self) -> str:
        return "not run" if self.passed is None else ("holds" if self.passed else "does not hold")


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
        self._env = environment(self.params)
        self._write_run()

    # -- figures -----------------------------------------------------------------------------
    def savefig(self, fig, name: str, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 120) -> list[Path]:
        """Save ``fig`` as ``figures/<name>.<fmt>`` for each format, atomically."""
        paths = []
        for fmt in formats:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
            paths.append(atomic_write_bytes(self.fig_dir / f"{name}.{fmt}", buf.getvalue()))
        return paths

    # -- metrics and claims --------------------------------------------------------------------
    def metric(self, name: str, value: Any) -> Any:
        self.metrics[name] = jsonable(value)
        atomic_write_json(self.dir / "metrics.json", self.metrics)
        return value

    def claim(
        self,
        id: str,
        statement: str,
        ours: Any,
        passed: bool | None,
        test: str,
        paper: Any = None,
        note: str = "",
        kind: str | None = None,
        provenance: str = "",
    ) -> Claim:
        """Record a claim (replacing an earlier one with the same id) and rewrite claims.json.
        ``kind`` is required (one of :data:`KINDS`); ``ValueError`` without it."""
        return self.add(Claim(id=id, statement=statement, ours=ours, kind=kind, paper=paper, provenance=provenance,
                              test=test, passed=passed, note=note))[0]

    def add(self, *claims: Claim | list[Claim]) -> list[Claim]:
        """Record claims built by a study's ``claims.py`` (each replaces an earlier one with its id)."""
        flat = [c for item in claims for c in (item if isinstance(item, (list, tuple)) else [item])]
        for c in flat:
            c.ours, c.paper = jsonable(c.ours), jsonable(c.paper)
            self.claims = [x for x in self.claims if x.id != c.id] + [c]
        atomic_write_json(self.dir / "claims.json", [asdict(x) for x in self.claims])
        return flat

    def claims_table(self, numbers: bool = True):
        """A pandas DataFrame of the claims (``numbers=False`` keeps only deterministic columns)."""
        cols = (["id", "kind", "statement", "paper", "ours", "test", "verdict"] if numbers
                else ["id", "kind", "statement", "verdict"])
        rows = [{**asdict(c), "verdict": c.verdict} for c in self.claims]
        return pd.DataFrame(rows, columns=[f.name for f in fields(Claim)] + ["verdict"])[cols]

    def _write_run(self, **extra: Any) -> None:
        atomic_write_json(
            self.dir / "run.json",
            {"paper": self.paper, "notebook": self.notebook, "profile": self.profile,
             "params": self.params, "started": self._t0, "environment": self._env, **extra},
        )

    def finish(self) -> Path:
        """Write run.json with the wall time; call at the end of a notebook."""
        self._write_run(wall_s=round(time.time() - self._t0, 2), finished=time.time(),
                        n_claims=len(self.claims), n_passed=sum(bool(c.passed) for c in self.claims))
        return self.dir
