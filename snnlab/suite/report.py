"""The HTML report ``results/index.html``: every notebook's figures and claims, the paper's number
beside ours, with the run log (wall time, peak memory)."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from ..paths import atomic_write_json, atomic_write_text, results_root
from .notebooks import RunResult

__all__ = ["write_report"]


def _fmt(v: Any) -> str:
    """A claim value for the report: floats to 4 significant digits, None as a dash."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def _claims(d: Path) -> list[dict]:
    f = d / "claims.json"
    return json.loads(f.read_text()) if f.exists() else []


def write_report(runs: Sequence[RunResult] = (), results_dir: Path | None = None, profile: str | None = None) -> Path:
    """Write ``results/index.html``: every figure, every claim (paper vs ours) and the run log."""
    root = Path(results_dir) if results_dir else results_root()
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "run_log.json"
    old = json.loads(log_path.read_text()) if log_path.exists() else []
    merged = {(r["notebook"], r["profile"]): r for r in old}
    for r in runs:
        d = asdict(r)
        d["output"] = d["output"][-4000:]
        merged[(r.notebook, r.profile)] = d
    log = sorted(merged.values(), key=lambda r: (r["notebook"], r["profile"]))
    atomic_write_json(log_path, log)

    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>snnlab results</title><style>",
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
        "font-size:90%;vertical-align:top}img{max-width:560px;margin:4px;border:1px solid #eee}"
        ".pass{color:#080}.fail{color:#b00}",
        "</style></head><body><h1>snnlab: figures and claims</h1>",
        "<p>SUMMARY</p><h2>Run log</h2><table><tr><th>notebook</th><th>profile</th><th>status</th><th>wall (s)</th>"
        "<th>peak RSS (MB)</th><th>error</th></tr>",
    ]
    for r in log:
        st = "<span class=pass>ok</span>" if r["ok"] else "<span class=fail>FAILED</span>"
        parts.append(f"<tr><td>{e(r['notebook'])}</td><td>{e(r['profile'])}</td><td>{st}</td><td>{r['wall_s']}</td>"
                     f"<td>{r['peak_rss_mb']}</td><td>{e(r.get('error', ''))}</td></tr>")
    parts.append("</table>")
    for paper_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for nb_dir in sorted(p for p in paper_dir.iterdir() if p.is_dir()):
            for prof_dir in sorted(p for p in nb_dir.iterdir() if p.is_dir()):
                if profile and prof_dir.name != profile:
                    continue
                rel = prof_dir.relative_to(root)
                parts.append(f"<h2>{e(paper_dir.name)} / {e(nb_dir.name)} <small>({e(prof_dir.name)})</small></h2>")
                if (prof_dir / "executed.ipynb").exists():
                    parts.append(f"<p><a href='{e(str(rel))}/executed.ipynb'>executed notebook</a></p>")
                claims = _claims(prof_dir)
                if claims:
                    parts.append("<table><tr><th>claim</th><th>statement</th><th>paper</th><th>ours</th>"
                                 "<th>test</th><th>verdict</th></tr>")
                    for c in claims:
                        v = "<span class=pass>holds</span>" if c["passed"] else "<span class=fail>does not hold</span>"
                        parts.append(f"<tr><td>{e(c['id'])}</td><td>{e(c['statement'])}</td>"
                                     f"<td>{e(_fmt(c['paper']))}</td><td>{e(_fmt(c['ours']))}</td>"
                                     f"<td>{e(c['test'])}</td><td>{v}</td></tr>")
                    parts.append("</table>")
                for fig in sorted((prof_dir / "figures").glob("*.png")):
                    parts.append(f"<a href='{e(str(fig.relative_to(root)))[:-4]}.pdf'>"
                                 f"<img src='{e(str(fig.relative_to(root)))}' title='{e(fig.stem)}'></a>")
    parts.append("</body></html>")
    page = "\n".join(parts)
    n_hold, n_not = page.count("class=pass>holds"), page.count("does not hold")
    summary = (f"{n_hold + n_not} claims: {n_hold} hold, {n_not} do not (each one a finding explained in its "
               f"notebook). Paper numbers are the papers' own; ours come from the profile shown.")
    return atomic_write_text(root / "index.html", page.replace("SUMMARY", e(summary), 1))

