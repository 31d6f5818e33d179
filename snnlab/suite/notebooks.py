"""Find, build, clean and execute the suite's notebooks, and write the HTML report.

* :func:`discover` lists ``notebooks/<paper>/NN_<section>.ipynb``.
* :func:`build` makes a notebook from a list of cells (kernelspec ``python3``, a ``parameters``
  tagged cell), :func:`clean` strips outputs except ``# NBVAL_CHECK_OUTPUT`` cells.
* :func:`run_one` executes one notebook with papermill in a child process, recording wall time and
  the peak resident memory of that process tree (``os.wait4``); :func:`run_many` runs several in
  parallel, one process each; :mod:`snnlab.suite.report` writes ``results/index.html``.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import nbformat
import papermill

from ..paths import REPO_ROOT, results_root
from ..record.params import PROFILES, cell_defaults

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
]

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
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
    """The parameters cell: ``name -> {"default": source text, "value": literal value, "help": comment}``.

    Parsed with ``ast`` (papermill's own inspector skips lines whose value is a list followed by a
    comment, so it would miss parameters)."""
    values = cell_defaults(path)
    nb = json.loads(Path(path).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    src = "".join(cell["source"])
    lines = src.splitlines()
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            line = lines[node.end_lineno - 1]
            comment = line.split("#", 1)[1].strip() if "#" in line[node.value.end_col_offset:] else ""
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = {"default": ast.get_source_segment(src, node.value), "value": values.get(t.id),
                                 "help": comment}
    return out



# --- building and cleaning ------------------------------------------------------------------------


def build(cells: Sequence[tuple[str, str]], title: str | None = None):
    """A notebook from ``(kind, source)`` pairs; kind is ``md``, ``code``, ``params`` (the cell
    tagged ``parameters``) or ``check`` (a code cell whose output nbval compares)."""
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
    """Execute one notebook with papermill in a child process (kernel ``python3``).

    ``parameters`` must be parameters the notebook declares (``ValueError`` naming the unknown one
    otherwise, before anything runs); ``INTERACTIVE`` is False unless given: the widget explorers are
    for JupyterLab, batch runs save their default views instead."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is invalid; allowed values: {list(PROFILES)}")
    path = Path(path).resolve()
    declared = cell_defaults(path)
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise ValueError(f"parameter(s) {unknown} are not declared by {ident(path)}; allowed values: {sorted(declared)}")
    root = Path(results_dir) if results_dir else results_root()
    out = _executed_path(path, profile, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, **({"INTERACTIVE": False} if "INTERACTIVE" in declared else {}), **(parameters or {})}
    cmd = [sys.executable, "-m", "snnlab.suite.notebooks", str(path), str(out), json.dumps(params), str(cell_timeout)]
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


if __name__ == "__main__":  # child process of run_one
    _execute(*sys.argv[1:5])
