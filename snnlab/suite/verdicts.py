"""The quick profile's claim verdicts, pinned in ``papers/<paper>/expected_verdicts.yaml``.

A notebook test fails when a claim's verdict or kind differs from the pinned one, or a claim appears
or disappears, so a change that turns "holds" into "does not hold" has to update the file on
purpose (``snnlab verdicts --write`` after ``make figures``)::

    02_dynamic_sparse_training:
      srigl_ablation_matches_rigl: {kind: reproduction, verdict: holds}
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..paths import REPO_ROOT, atomic_write_text, results_root
from ..record.results import Claim

__all__ = ["expected_path", "expected", "observed", "compare", "write_expected"]

HEADER = ("# The quick profile's verdict and kind of every claim, per notebook. tests/test_notebooks.py fails\n"
          "# when a run differs; update on purpose with `snnlab verdicts --write` after `make figures`.\n")


def expected_path(paper: str) -> Path:
    return REPO_ROOT / "papers" / paper / "expected_verdicts.yaml"


def expected(paper: str) -> dict[str, dict[str, dict[str, str]]]:
    """``{notebook: {claim id: {"kind", "verdict"}}}`` as pinned (empty when the file is absent)."""
    path = expected_path(paper)
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def observed(claims_json: Path) -> dict[str, dict[str, str | None]]:
    """``{claim id: {"kind", "verdict"}}`` of one run's ``claims.json``."""
    out = {}
    for c in json.loads(Path(claims_json).read_text()):
        claim = Claim(**c)
        out[claim.id] = {"kind": claim.kind, "verdict": claim.verdict}
    return out


def compare(paper: str, notebook: str, claims_json: Path) -> list[str]:
    """Differences between a run and the pinned verdicts, one readable line each (empty = same)."""
    want = expected(paper).get(notebook)
    got = observed(claims_json)
    if want is None:
        return [f"papers/{paper}/expected_verdicts.yaml has no entry for {notebook}; run `snnlab verdicts --write`"]
    lines = []
    for cid in sorted(set(want) | set(got)):
        if cid not in got:
            lines.append(f"{notebook}/{cid}: pinned {want[cid]} but the run recorded no such claim")
        elif cid not in want:
            lines.append(f"{notebook}/{cid}: new claim {got[cid]} not pinned")
        elif got[cid] != want[cid]:
            lines.append(f"{notebook}/{cid}: pinned {want[cid]}, this run {got[cid]}")
    return lines


def write_expected(paper: str, root: Path | None = None, profile: str = "quick") -> Path:
    """Pin the verdicts of the runs under ``<results root>/<paper>/*/<profile>/claims.json``."""
    root = Path(root) if root is not None else results_root()
    pinned = dict(expected(paper))
    for claims_json in sorted((root / paper).glob(f"*/{profile}/claims.json")):
        pinned[claims_json.parent.parent.name] = observed(claims_json)
    text = HEADER + yaml.safe_dump(dict(sorted(pinned.items())), sort_keys=True, default_flow_style=None, width=120)
    return atomic_write_text(expected_path(paper), text)
