"""The HTML report ``results/index.html``: every notebook's figures and claims, the paper's number
beside ours, with the run log (wall time, peak memory)."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from ..paths import atomic_write_json, atomic_write_text, results_root
from ..record import params
from ..record.results import Claim
from . import figmap
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


def _run_info(d: Path) -> dict:
    f = d / "run.json"
    return json.loads(f.read_text()) if f.exists() else {}


def _captions(paper: str) -> dict[tuple[str | None, str], str]:
    """``{(notebook, figure name): "Fig. 4: what it shows"}`` from the paper's figure map."""
    try:
        entries = figmap.figure_map(paper)
    except ValueError:
        return {}
    return {(e.notebook, o): f"{e.id}: {e.what}" for e in entries for o in e.outputs}


def _counts(claims: list[dict]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for c in claims:
        claim = Claim(**c)
        key = (claim.kind or "unclassified", claim.verdict)
        out[key] = out.get(key, 0) + 1
    return out


_CSS = (
    "body{font-family:sans-serif;max-width:1250px;margin:auto;padding:1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:88%;"
    "vertical-align:top}th{background:#f4f4f4}figure{display:inline-block;margin:4px;max-width:560px;"
    "vertical-align:top}figure img{max-width:556px;border:1px solid #eee}figcaption{font-size:85%;color:#444}"
    ".holds{color:#080}.doesnot{color:#b00}.notrun{color:#888}.kind{font-size:80%;padding:1px 4px;"
    "border-radius:3px;background:#eef}.sanity{background:#eee;color:#555}.finding{background:#fff3d6}"
    "small{color:#666}"
)


def _verdict_html(verdict: str) -> str:
    cls = {"holds": "holds", "does not hold": "doesnot"}.get(verdict, "notrun")
    return f"<span class={cls}>{html.escape(verdict)}</span>"


def _sweep_links(root: Path) -> list[str]:
    """The "Sweeps" section: a link to every sweep page (``_sweeps/<paper>/<notebook>/<profile>/<grid>/
    index.html``, written by ``snnlab sweep``) with its run counts from ``runs.csv``; empty if none."""
    pages = sorted((root / "_sweeps").glob("*/*/*/*/index.html"))
    if not pages:
        return []
    e = html.escape
    out = ["<h2>Sweeps</h2><table><tr><th>paper</th><th>notebook</th><th>profile</th><th>grid</th><th>runs</th></tr>"]
    for page in pages:
        grid, prof, nb, paper = page.parent.name, page.parent.parent.name, page.parents[2].name, page.parents[3].name
        csv = page.parent / "runs.csv"
        n = max(0, len(csv.read_text().splitlines()) - 1) if csv.exists() else "?"
        out.append(f"<tr><td>{e(paper)}</td><td>{e(nb)}</td><td>{e(prof)}</td>"
                   f"<td><a href='{e(str(page.relative_to(root)))}'>{e(grid)}</a></td><td>{n}</td></tr>")
    out.append("</table>")
    return out


def write_report(runs: Sequence[RunResult] = (), results_dir: Path | None = None, profile: str | None = None) -> Path:
    """Write ``results/index.html``: a claims dashboard (kind x verdict per paper), the run log,
    then per paper and notebook the claims (ours beside the paper's number and its provenance) and
    every figure with the caption of the paper's figure it regenerates. Offline: inline CSS, local
    images, no script."""
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
    sections, dashboard = [], {}
    paper_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_") and p.name != "sweeps")
    for paper_dir in paper_dirs:
        paper = paper_dir.name
        meta = params.load(paper) if paper in params.list_papers() else {}
        captions = _captions(paper) if meta else {}
        sections.append(f"<h2 id='{e(paper)}'>{e(paper)}: {e(str(meta.get('title', '')))}</h2>")
        for nb_dir in sorted(p for p in paper_dir.iterdir() if p.is_dir()):
            for prof_dir in sorted(p for p in nb_dir.iterdir() if p.is_dir()):
                if profile and prof_dir.name != profile:
                    continue
                rel = prof_dir.relative_to(root)
                info = _run_info(prof_dir)
                env = info.get("environment") or {}
                commit = (env.get("git_commit") or "")[:10] + (" (dirty tree)" if env.get("git_dirty") else "")
                sections.append(f"<h3>{e(nb_dir.name)} <small>({e(prof_dir.name)} profile; commit "
                                f"{e(commit or 'unknown')}; wall {e(str(info.get('wall_s', '?')))} s)</small></h3>")
                if (prof_dir / "executed.ipynb").exists():
                    sections.append(f"<p><a href='{e(str(rel))}/executed.ipynb'>executed notebook</a></p>")
                claims = _claims(prof_dir)
                for k, n in _counts(claims).items():
                    dashboard.setdefault(paper, {})[k] = dashboard.get(paper, {}).get(k, 0) + n
                if claims:
                    sections.append("<table><tr><th>claim</th><th>kind</th><th>statement</th><th>paper</th>"
                                    "<th>provenance</th><th>ours</th><th>test</th><th>verdict</th><th>note</th></tr>")
                    for raw in claims:
                        c = Claim(**raw)
                        kind = c.kind or "unclassified"
                        sections.append(
                            f"<tr><td>{e(c.id)}</td><td><span class='kind {e(kind)}'>{e(kind)}</span></td>"
                            f"<td>{e(c.statement)}</td><td>{e(_fmt(c.paper))}</td><td>{e(c.provenance)}</td>"
                            f"<td>{e(_fmt(c.ours))}</td><td>{e(c.test)}</td><td>{_verdict_html(c.verdict)}</td>"
                            f"<td>{e(c.note)}</td></tr>")
                    sections.append("</table>")
                for fig in sorted((prof_dir / "figures").glob("*.png")):
                    cap = captions.get((nb_dir.name, fig.stem), "ours, beyond the paper's figures")
                    src = e(str(fig.relative_to(root)))
                    sections.append(f"<figure><a href='{src[:-4]}.pdf'><img src='{src}' alt='{e(fig.stem)}'></a>"
                                    f"<figcaption><b>{e(fig.stem)}</b>: {e(cap)}</figcaption></figure>")
    kinds = ("reproduction", "finding", "sanity", "unclassified")
    verdicts = ("holds", "does not hold", "not run")
    head = ["<table><tr><th>paper</th>" + "".join(f"<th>{k}: {v}</th>" for k in kinds[:3] for v in verdicts) + "</tr>"]
    totals = {k: 0 for k in kinds}
    reproduced = 0
    for paper, counts in dashboard.items():
        head.append(f"<tr><td><a href='#{e(paper)}'>{e(paper)}</a></td>"
                    + "".join(f"<td>{counts.get((k, v), 0)}</td>" for k in kinds[:3] for v in verdicts) + "</tr>")
        for (k, v), n in counts.items():
            totals[k] += n
            reproduced += n if (k, v) == ("reproduction", "holds") else 0
    head.append("</table>")
    summary = (f"{sum(totals.values())} claims: {totals['reproduction']} reproduction claims ({reproduced} hold at "
               f"this scale), {totals['finding']} findings (beyond the paper or errata settled by computation), "
               f"{totals['sanity']} sanity checks (invariants and algebra: shown, never counted as reproduced)"
               + (f", {totals['unclassified']} without a kind" if totals["unclassified"] else "") + ". Paper numbers "
               "are the papers' own, each with its provenance; ours come from the profile shown.")
    runlog = ["<h2>Run log</h2><table><tr><th>notebook</th><th>profile</th><th>status</th><th>wall (s)</th>"
              "<th>peak RSS (MB)</th><th>error</th></tr>"]
    for r in log:
        st = "<span class=holds>ok</span>" if r["ok"] else "<span class=doesnot>FAILED</span>"
        runlog.append(f"<tr><td>{e(r['notebook'])}</td><td>{e(r['profile'])}</td><td>{st}</td><td>{r['wall_s']}</td>"
                      f"<td>{r['peak_rss_mb']}</td><td>{e(r.get('error', ''))}</td></tr>")
    runlog.append("</table>")
    sweeps = _sweep_links(root)
    page = "\n".join([
        f"<!doctype html><html><head><meta charset='utf-8'><title>snnlab results</title><style>{_CSS}</style>"
        "</head><body><h1>snnlab: figures and claims</h1>",
        f"<p>{e(summary)}</p><h2>Claims dashboard</h2>", *head, *runlog, *sweeps, *sections, "</body></html>"])
    return atomic_write_text(root / "index.html", page)
