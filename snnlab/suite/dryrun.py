"""``snnlab figures --profile paper --dry-run``: what a paper-profile run would need, before it runs.

For every notebook: its parameters with the paper profile overlaid, validated (a bad value is
reported with the parameter named); the datasets it reads and whether each is under the data root
(and, when missing, the files, official source and md5 it needs); and a cost estimate of
epochs x optimiser steps per epoch x T per training run. Nothing is trained or loaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .. import data
from ..record import params

__all__ = ["plan", "format_plan"]


def _cost(p: dict[str, Any], dataset: str | None) -> int | None:
    epochs, batch = p.get("epochs"), p.get("batch_size")
    if not (epochs and batch and dataset):
        return None
    n = data.info(dataset).num_samples.get("train")
    if not n:
        return None
    Ts = p.get("Ts") or [p.get("T", 1)]
    runs = max(1, len(p.get("sparsities") or [0])) * max(1, p.get("n_seeds", 1))
    return int(runs * epochs * math.ceil(n / batch) * sum(Ts))


def plan(paths: list[Path], profile: str = "paper") -> list[dict[str, Any]]:
    """One record per notebook: ``notebook``, ``ok``, ``error``, ``params``, ``datasets``, ``cost``."""
    out = []
    for path in paths:
        paper, nb = path.parent.name, path.stem
        rec: dict[str, Any] = {"notebook": f"{paper}/{nb}", "ok": True, "error": "", "params": {}, "datasets": {},
                               "cost": None}
        try:
            p = params.resolve(paper, nb, profile, {k: v for k, v in params.cell_defaults(path).items() if k != "profile"})
            rec["params"] = p.as_dict()
        except ValueError as exc:
            rec.update(ok=False, error=str(exc))
            out.append(rec)
            continue
        names = [v for k, v in rec["params"].items() if k in ("dataset", "norm_dataset") and isinstance(v, str)]
        names += [d for k, v in rec["params"].items() if k in ("datasets", "dvs_datasets") and isinstance(v, list)
                  for d in v]
        for name in dict.fromkeys(names):
            info = data.info(name)
            missing = {s: m for s, m in data.present(name).items() if m}
            rec["datasets"][name] = {"offline": info.offline, "missing": missing, "source": info.source,
                                     "files": {s: list(f) for s, f in info.files.items()}, "md5": dict(info.md5)}
        rec["cost"] = _cost(rec["params"], names[0] if names else None)
        out.append(rec)
    return out


def format_plan(records: list[dict[str, Any]]) -> str:
    lines = []
    for r in records:
        if not r["ok"]:
            lines.append(f"[INVALID] {r['notebook']}: {r['error']}")
            continue
        cost = f"~{r['cost']:,} step x time-step units" if r["cost"] else "no training run"
        lines.append(f"[ok] {r['notebook']}: {cost}")
        for name, d in r["datasets"].items():
            if d["offline"]:
                lines.append(f"      {name}: offline (nothing to download)")
            elif not d["missing"]:
                lines.append(f"      {name}: present under {data.data_root()}")
            else:
                lines.append(f"      {name}: MISSING under {data.data_root()} (splits: {', '.join(d['missing'])})")
                lines.append(f"        needs: {', '.join(f for fs in d['files'].values() for f in fs)}")
                lines.append(f"        source: {d['source']}")
                if d["md5"]:
                    lines.append("        md5: " + ", ".join(f"{k} {v}" for k, v in d["md5"].items()))
    bad = sum(not r["ok"] for r in records)
    lines.append(f"{len(records)} notebook(s), {bad} with invalid paper parameters; nothing was trained")
    return "\n".join(lines)
