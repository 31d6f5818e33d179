"""Every figure and table of a paper, mapped to the notebook output that regenerates it, or the
reason it is not regenerated (``papers/<paper>/paper.yaml``, key ``figures``)::

    figures:
      - id: Fig. 4                      # as the paper names it
        part: main                      # main | supplement | appendix | extra (ours, beyond the paper)
        what: normalised KL divergence against t, per architecture
        notebook: 01_early_time_divergence
        outputs: [fig4_normalized_kl]   # names saved under figures/ by that notebook's quick run
        status: regenerated             # regenerated | paper_profile | not_reproduced
      - id: Fig. 2
        part: main
        what: illustration of IMP, EB and EB+ET
        notebook: null
        status: not_reproduced
        reason: a schematic diagram, no data

``regenerated`` outputs must be produced by the quick run; ``paper_profile`` entries are
regenerated only with ``profile="paper"`` (datasets, GPU) and may list outputs the quick run also
draws on its offline data; every figure a notebook saves must be listed (tests/test_notebooks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import checks
from ..record import params

__all__ = ["STATUSES", "PARTS", "Entry", "figure_map", "summary", "check_outputs", "format_map"]

STATUSES = ("regenerated", "paper_profile", "not_reproduced")
PARTS = ("main", "supplement", "appendix", "extra")  # extra: figures of ours beyond the paper


@dataclass(frozen=True)
class Entry:
    paper: str
    id: str
    part: str
    what: str
    notebook: str | None
    status: str
    outputs: tuple[str, ...] = field(default_factory=tuple)
    metrics: tuple[str, ...] = field(default_factory=tuple)
    reason: str = ""


def _entry(paper: str, raw: Any, i: int) -> Entry:
    where = f"papers/{paper}/paper.yaml figures[{i}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping with id, part, what, notebook, status; got {raw!r}")
    missing = [k for k in ("id", "part", "what", "status") if k not in raw]
    if missing:
        raise ValueError(f"{where} ({raw.get('id', '?')}) lacks {missing}")
    unknown = set(raw) - {"id", "part", "what", "notebook", "status", "outputs", "metrics", "reason"}
    if unknown:
        raise ValueError(f"{where} ({raw['id']}) has unknown keys {sorted(unknown)}")
    checks.choice(f"{where}.part", raw["part"], PARTS)
    checks.choice(f"{where}.status", raw["status"], STATUSES)
    e = Entry(paper=paper, id=str(raw["id"]), part=raw["part"], what=str(raw["what"]), notebook=raw.get("notebook"),
              status=raw["status"], outputs=tuple(raw.get("outputs") or ()), metrics=tuple(raw.get("metrics") or ()),
              reason=str(raw.get("reason") or ""))
    if e.status != "regenerated" and not e.reason:
        raise ValueError(f"{where} ({e.id}) has status {e.status!r} but no reason")
    if e.status == "regenerated" and (e.notebook is None or not (e.outputs or e.metrics)):
        raise ValueError(f"{where} ({e.id}) is 'regenerated' but names no notebook and outputs/metrics")
    return e


def figure_map(paper: str) -> list[Entry]:
    """The validated figure map of ``paper`` (``ValueError`` naming the bad entry)."""
    raw = params.load(paper).get("figures")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"papers/{paper}/paper.yaml has no 'figures' list (every figure and table of the paper)")
    return [_entry(paper, r, i) for i, r in enumerate(raw)]


def summary(entries: list[Entry]) -> dict[str, int]:
    return {s: sum(e.status == s for e in entries) for s in STATUSES}


def check_outputs(paper: str, notebook: str, saved: set[str]) -> list[str]:
    """Problems between a notebook's saved figure names and the map (empty = consistent)."""
    entries = [e for e in figure_map(paper) if e.notebook == notebook]
    required = {o for e in entries if e.status == "regenerated" for o in e.outputs}
    listed = {o for e in entries for o in e.outputs}
    out = [f"{paper}/{notebook}: the map lists figure {o!r} ({', '.join(e.id for e in entries if o in e.outputs)}) "
           "but the quick run did not save it" for o in sorted(required - saved)]
    out += [f"{paper}/{notebook}: saved figure {o!r} is not in papers/{paper}/paper.yaml figures" for o in
            sorted(saved - listed)]
    return out


def format_map(paper: str) -> str:
    """The map as text for ``snnlab list --figures``."""
    entries = figure_map(paper)
    s = summary(entries)
    lines = [f"{paper}: {len(entries)} figures and tables: {s['regenerated']} regenerated, "
             f"{s['paper_profile']} paper profile only, {s['not_reproduced']} not reproduced"]
    for e in entries:
        where = f"{e.notebook}: {', '.join(e.outputs + tuple(f'metrics:{m}' for m in e.metrics))}" if e.notebook else ""
        tail = f"  ({e.reason})" if e.reason else ""
        lines.append(f"  {e.id:<16s} {e.status:<15s} {where}{tail}")
    return "\n".join(lines)


def saved_figures(results_dir: Path) -> set[str]:
    """Figure names (stems) a run saved under ``<results_dir>/figures``."""
    return {p.stem for p in (Path(results_dir) / "figures").glob("*.png")}
