"""Find, build, clean and execute the suite's notebooks, and write the HTML report.

* :func:`discover` lists ``notebooks/<paper>/NN_<section>.ipynb``.
* :func:`build` makes a notebook from a list of cells (kernelspec ``python3``, a ``parameters``
  tagged cell), :func:`clean` strips outputs except ``# NBVAL_CHECK_OUTPUT`` cells.
* :func:`run_one` executes one notebook with papermill in a child process, recording wall time and
  the peak resident memory of that process tree (``os.wait4``); :func:`run_many` runs several in
  parallel, one process each; :func:`write_report` writes ``results/index.html``.
"""

from __future__ import annotations

import fnmatch
import html
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import results

__all__ = [
    "NOTEBOOKS_DIR",
    "NBVAL_MARK",
    "discover",
    "ident",
    "parameters",
    "build",
    "clean",
    "problems",
    "refresh",
    "RunResult",
    "run_one",
    "run_many",
    "write_report",
]

NOTEBOOKS_DIR = results.REPO_ROOT / "notebooks"
NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"
KERNEL = "python3"


def discover(only: str | None = None, root: Path | None = None) -> list[Path]:
    """Notebooks under ``notebooks/`` (sorted), optionally filtered by a glob on ``paper/name``."""
    root = Path(root or NOTEBOOKS_DIR)
    found = sorted(p for p in root.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if only:
        found = [p for p in found if fnmatch.fnmatch(ident(p), only) or fnmatch.fnmatch(p.name, only)]
    return found


def ident(path: Path) -> str:
    """``paper/notebook`` for ``notebooks/paper/notebook.ipynb``."""
    path = Path(path)
    return f"{path.parent.name}/{path.stem}"


def parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The parameters cell as papermill reads it: name -> {default, inferred_type_name, help}."""
    import papermill

    return papermill.inspect_notebook(str(path))


# --- building and cleaning ------------------------------------------------------------------------


def build(cells: Sequence[tuple[str, str]], title: str | None = None):
    """A notebook from ``(kind, source)`` pairs; kind is ``md``, ``code``, ``params`` (the cell
    tagged ``parameters``) or ``check`` (a code cell whose output nbval compares)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": KERNEL, "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for kind, src in cells:
        src = src.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        elif kind in ("code", "params", "check"):
            if kind == "check" and not src.startswith(NBVAL_MARK):
                src = f"{NBVAL_MARK}\n{src}"
            cell = nbformat.v4.new_code_cell(src)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
        else:
            raise ValueError(f"cell kind={kind!r} is unknown; allowed values: ['md', 'code', 'params', 'check']")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def clean(nb, keep_checked: bool = True):
    """Strip outputs and execution counts, except (``keep_checked``) the nbval check cells, and
    papermill's execution metadata. Returns the notebook (modified in place)."""
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if keep_checked and cell.source.startswith(NBVAL_MARK):
            continue
        cell.outputs = []
        cell.execution_count = None
    nb.metadata.pop("papermill", None)
    return nb


def refresh(path: Path, cell_timeout: int = 900) -> Path:
    """Execute ``path`` (quick profile, results in a temporary directory) and write it back with
    only the ``# NBVAL_CHECK_OUTPUT`` cells' outputs: what nbval then compares against."""
    import tempfile

    import nbformat

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        r = run_one(path, "quick", cell_timeout=cell_timeout, results_dir=Path(tmp))
        if not r.ok:
            raise RuntimeError(f"{ident(path)} failed, not refreshed:\n{r.output[-3000:]}")
        executed = nbformat.read(str(_executed_path(path.resolve(), "quick", Path(tmp))), as_version=4)
    original = nbformat.read(str(path), as_version=4)
    done_cells = [c for c in executed.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell, done in zip(original.cells, done_cells, strict=True):
        if cell.cell_type == "code" and cell.source.startswith(NBVAL_MARK):
            cell.outputs = done.outputs
            cell.execution_count = done.execution_count
    nbformat.write(clean(original), str(path))
    return path


def problems(path: Path) -> list[str]:
    """What is wrong with a committed notebook: kernelspec, parameters cell, outputs, counts."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    out = []
    if nb.metadata.get("kernelspec", {}).get("name") != KERNEL:
        out.append(f"kernelspec is not {KERNEL}")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(params) != 1:
        out.append(f"{len(params)} cells tagged 'parameters' (need exactly 1)")
    elif nb.cells.index(params[0]) != next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"):
        out.append("the parameters cell is not the first code cell")
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or c.source.startswith(NBVAL_MARK):
            continue
        if c.outputs:
            out.append(f"cell {i} has committed outputs")
        if c.execution_count is not None:
            out.append(f"cell {i} has an execution count")
    return out


# --- execution ----------------------------------------------------------------------------------


@dataclass
class RunResult:
    notebook: str
    profile: str
    ok: bool
    wall_s: float
    peak_rss_mb: float | None
    output: str
    error: str = ""


def _executed_path(path: Path, profile: str, root: Path) -> Path:
    return root / path.parent.name / path.stem / profile / "executed.ipynb"


def run_one(
    path: Path,
    profile: str = "quick",
    parameters: dict[str, Any] | None = None,
    cell_timeout: int = 600,
    results_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Execute one notebook with papermill in a child process (kernel ``python3``)."""
    from .papers import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is invalid; allowed values: {list(PROFILES)}")
    path = Path(path).resolve()
    root = Path(results_dir) if results_dir else results.results_root()
    out = _executed_path(path, profile, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, **(parameters or {})}
    cmd = [sys.executable, "-m", "snnlab.notebooks", str(path), str(out), json.dumps(params), str(cell_timeout)]
    child_env = {**os.environ, **(env or {}), "SNNLAB_RESULTS": str(root)}
    child_env.setdefault("MPLBACKEND", "Agg")
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    chunks = list(proc.stdout)
    # wait4 gives this child's own rusage, its reaped kernel grandchild included
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    output = "".join(chunks)
    ok = proc.returncode == 0
    err = "" if ok else output.strip().splitlines()[-1] if output.strip() else f"exit code {proc.returncode}"
    return RunResult(ident(path), profile, ok, round(wall, 1), round(usage.ru_maxrss / 1024, 1), output, err)


def run_many(
    paths: Iterable[Path],
    profile: str = "quick",
    jobs: int = 1,
    cell_timeout: int = 600,
    results_dir: Path | None = None,
    log=print,
) -> list[RunResult]:
    """Run notebooks, ``jobs`` at a time (one process each), logging each as it finishes."""
    paths = list(paths)
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r} is invalid; allowed values: integers >= 1")

    def job(p: Path) -> RunResult:
        r = run_one(p, profile, cell_timeout=cell_timeout, results_dir=results_dir)
        mark = "ok  " if r.ok else "FAIL"
        log(f"[{mark}] {r.notebook:45s} {r.wall_s:7.1f} s  peak {r.peak_rss_mb or 0:7.0f} MB  {r.error}")
        return r

    with ThreadPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(job, paths))


def _execute(path: str, out: str, params_json: str, cell_timeout: str) -> None:
    """Child-process entry: papermill execution, then keep the executed copy beside the results."""
    import papermill

    papermill.execute_notebook(
        path,
        out,
        parameters=json.loads(params_json),
        kernel_name=KERNEL,
        cwd=str(Path(path).parent),
        execution_timeout=int(cell_timeout),
        progress_bar=False,
        log_output=False,
    )


# --- report -------------------------------------------------------------------------------------


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
    root = Path(results_dir) if results_dir else results.results_root()
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "run_log.json"
    old = json.loads(log_path.read_text()) if log_path.exists() else []
    merged = {(r["notebook"], r["profile"]): r for r in old}
    for r in runs:
        d = asdict(r)
        d["output"] = d["output"][-4000:]
        merged[(r.notebook, r.profile)] = d
    log = sorted(merged.values(), key=lambda r: (r["notebook"], r["profile"]))
    results.atomic_write_json(log_path, log)

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
    return results.atomic_write_text(root / "index.html", page.replace("SUMMARY", e(summary), 1))


if __name__ == "__main__":  # child process of run_one
    _execute(*sys.argv[1:5])
