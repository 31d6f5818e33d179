"""Sweeps: one notebook over a grid of configurations x seeds, each run a Ray task; mean ± std pages.

``snnlab sweep NOTEBOOK --grid grid.yaml`` (see :mod:`snnlab.suite.cli`). The grid file::

    profile: paper                  # optional; --profile wins
    seeds: 5                        # optional: a count (0..n-1) or a list; --seeds wins
    fixed: {T: 5}                   # optional: the same value in every run
    grid:                           # cartesian product of these lists
      arch: [vgg16, resnet19]
    zip:                            # optional: lists walked together (one dict, or a list of dicts)
      dataset: [cifar10, cifar100]
      epochs: [300, 300]

Every name must be a parameter of the notebook and every value must pass the suite's validators
(:func:`snnlab.record.params.validate`); an unknown name, a bad value or an empty grid raises
``ValueError`` naming it before Ray starts. ``seed`` and ``profile`` are set by the sweep itself.

Layout under ``<results root>/_sweeps/<paper>/<notebook>/<profile>/`` (the leading underscore keeps
the per-notebook report from reading it as a paper)::

    runs/<hash>/      one run's usual results folder (run.json, metrics.json, claims.json, figures/,
                      executed.ipynb) plus sweep.json (its parameters and their hash)
    .locks/<hash>.lock, .tmp/<hash>.<random>/   per-run fcntl lock, in-progress results
    <grid name>/index.html, runs.csv, summary.csv   the sweep page (offline, inline CSS and images)

Safety: a run is *finished* when ``runs/<hash>`` holds run.json with ``wall_s``, claims.json,
metrics.json and a sweep.json with the same hash; finished runs are skipped. A run executes under
its lock into ``.tmp`` and is renamed into ``runs/<hash>`` only when complete, so two sweeps on the
same folder never overwrite each other's run. A worker that dies is retried by Ray
(``max_retries``); a notebook that fails is resubmitted up to ``--max-retries`` times; what still
fails is listed in the summary, on the page and in the exit code. Ctrl-C (or SIGTERM, e.g. from
SLURM) cancels the tasks in flight and keeps the finished runs; the next invocation continues.
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import hashlib
import html
import io
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import ray
import yaml
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from .. import checks, data
from ..paths import atomic_write_json, atomic_write_text, cache_root, results_root
from ..record import params as record_params
from . import notebooks

__all__ = ["Grid", "Run", "load_grid", "plan", "is_complete", "cost", "execute_run", "run_sweep", "aggregate",
           "write_page", "SweepResult"]

RESERVED = ("seed", "profile")
GRID_KEYS = ("profile", "seeds", "fixed", "grid", "zip")


# --- the grid --------------------------------------------------------------------------------------


@dataclass
class Grid:
    """A parsed, validated grid: the configurations (dicts without ``seed``) and the seeds."""

    name: str
    configs: list[dict]
    seeds: list[int]
    profile: str | None = None


def _declared(path: Path) -> list[str]:
    """The notebook's parameter names: the suite's own reading for notebooks/<paper>/, else papermill's."""
    path = Path(path).resolve()
    if path.parent.parent == notebooks.NOTEBOOKS_DIR.resolve():
        names = record_params.notebook_parameters(path.parent.name, path.stem)
        if names is not None:
            return names
    return list(record_params.cell_defaults(path))


def _seeds(value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        checks.int_at_least("seeds", value, 1)
        return list(range(value))
    if not isinstance(value, list) or not value:
        checks.fail("seeds", value, "an integer >= 1 or a non-empty list of integers >= 0")
    for s in value:
        checks.int_at_least("seeds", s, 0)
    if len(set(value)) != len(value):
        checks.fail("seeds", value, "distinct seeds")
    return list(value)


def _lists(section: str, d: Any) -> dict[str, list]:
    if not isinstance(d, dict):
        checks.fail(section, d, "a mapping of parameter name -> list of values")
    out = {}
    for name, values in d.items():
        if not isinstance(values, list):
            checks.fail(f"{section}.{name}", values, "a list of values")
        if not values:
            checks.fail(f"{section}.{name}", values, "a non-empty list (an empty list makes an empty grid)")
        out[name] = values
    return out


def _paper_overlay(path: Path, profile: str) -> dict:
    """Parameters the notebook's paper profile forces (``params.resolve`` lets them win over ours)."""
    path = Path(path).resolve()
    if profile != "paper" or path.parent.parent != notebooks.NOTEBOOKS_DIR.resolve():
        return {}
    paper = path.parent.name
    if paper not in record_params.list_papers():
        return {}
    prof = record_params.load(paper).get("profiles", {}).get("paper", {}) or {}
    return {**(prof.get("default") or {}), **(prof.get(path.stem) or {})}


def load_grid(path: Path, notebook: Path, seeds: int | list[int] | None = None, profile: str | None = None) -> Grid:
    """Parse and validate ``path`` (YAML) against ``notebook``'s parameters; ``ValueError`` naming the
    offending key or parameter. ``seeds`` / ``profile`` override the file's."""
    path, notebook = Path(path), Path(notebook)
    if not notebook.is_file():
        checks.fail("notebook", str(notebook), "an existing .ipynb file")
    if not path.is_file():
        checks.fail("grid", str(path), "an existing YAML file")
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not doc:
        checks.fail("grid", str(path), f"a non-empty mapping with keys among {list(GRID_KEYS)}")
    for key in doc:
        if key not in GRID_KEYS:
            checks.fail("grid key", key, str(list(GRID_KEYS)))
    profile = profile or doc.get("profile") or "quick"
    checks.choice("profile", profile, record_params.PROFILES)
    seed_list = _seeds(seeds if seeds is not None else doc.get("seeds", 1))
    fixed = doc.get("fixed") or {}
    if not isinstance(fixed, dict):
        checks.fail("fixed", fixed, "a mapping of parameter name -> value")
    product = _lists("grid", doc.get("grid") or {})
    zips = doc.get("zip") or []
    zips = [zips] if isinstance(zips, dict) else zips
    if not isinstance(zips, list):
        checks.fail("zip", zips, "a mapping of equal-length lists, or a list of such mappings")
    zips = [_lists("zip", z) for z in zips]
    for z in zips:
        lengths = {name: len(v) for name, v in z.items()}
        if len(set(lengths.values())) > 1:
            checks.fail("zip", lengths, "lists of one common length")
    names = list(fixed) + list(product) + [n for z in zips for n in z]
    if not product and not zips and not fixed:
        checks.fail("grid", str(path), "at least one parameter under grid, zip or fixed (the grid is empty)")
    declared = _declared(notebook)
    seen = set()
    for name in names:
        if name in RESERVED:
            checks.fail("grid parameter", name, "any parameter but seed/profile (use --seeds / --profile)")
        if name not in declared:
            checks.fail("grid parameter", name, f"the parameters of {notebooks.ident(notebook)}: {sorted(declared)}")
        if name in seen:
            checks.fail("grid parameter", name, "each parameter in one place only (fixed, grid or zip)")
        seen.add(name)
    forced = _paper_overlay(notebook, profile)
    for name in names:
        if name in forced:
            checks.fail("grid parameter", name, f"parameters that papers/{notebook.parent.name}/paper.yaml's paper "
                        f"profile does not set (it sets {name}={forced[name]!r}, which the notebook would use)")
    axes = [[dict(zip(product, combo)) for combo in itertools.product(*product.values())]]
    axes += [[dict(zip(z, vals)) for vals in zip(*z.values())] for z in zips]
    configs = [{**fixed, **{k: v for part in combo for k, v in part.items()}} for combo in itertools.product(*axes)]
    for cfg in configs:
        record_params.validate({**cfg, "profile": profile, "seed": seed_list[0]})
    keys = [json.dumps(c, sort_keys=True) for c in configs]
    if len(set(keys)) != len(keys):
        checks.fail("grid", str(path), "distinct configurations (this one repeats one)")
    return Grid(Path(path).stem, configs, seed_list, profile)


# --- runs ------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One (configuration, seed) of a sweep."""

    notebook: str  # absolute path
    ident: str  # paper/notebook
    profile: str
    params: dict  # configuration + seed
    base: str  # <results root>/_sweeps/<paper>/<notebook>/<profile>

    @property
    def key(self) -> str:
        blob = json.dumps({"notebook": self.ident, "profile": self.profile, "params": self.params}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def dir(self) -> Path:
        return Path(self.base) / "runs" / self.key

    @property
    def config(self) -> dict:
        return {k: v for k, v in self.params.items() if k != "seed"}


def sweep_dir(notebook: Path, profile: str, root: Path | None = None) -> Path:
    notebook = Path(notebook)
    return Path(root or results_root()) / "_sweeps" / notebook.parent.name / notebook.stem / profile


def plan(notebook: Path, grid: Grid, root: Path | None = None) -> list[Run]:
    notebook = Path(notebook).resolve()
    base = str(sweep_dir(notebook, grid.profile or "quick", root))
    return [Run(str(notebook), notebooks.ident(notebook), grid.profile or "quick", {**cfg, "seed": s}, base)
            for cfg in grid.configs for s in grid.seeds]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, key: str | None = None) -> bool:
    """run.json with wall_s, claims.json and metrics.json present and readable, and (``key``) a
    sweep.json whose hash is ``key``."""
    folder = Path(folder)
    run = _read_json(folder / "run.json")
    if not isinstance(run, dict) or "wall_s" not in run:
        return False
    if _read_json(folder / "claims.json") is None or _read_json(folder / "metrics.json") is None:
        return False
    if key is not None:
        meta = _read_json(folder / "sweep.json")
        return isinstance(meta, dict) and meta.get("hash") == key
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The papermill child gets SIGKILL when the Ray worker that started it dies (Linux prctl);
    its kernel then exits on its own (ipykernel's parent poller)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _papermill(run: Run, tmp: Path, cell_timeout: int, threads: int) -> tuple[bool, str]:
    """Execute the notebook as :func:`snnlab.suite.notebooks.run_one` does (same child entry point),
    results under ``tmp``, the child tied to this worker's life."""
    out = tmp / run.ident / run.profile / "executed.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snnlab.suite.notebooks", run.notebook, str(out),
           json.dumps({"profile": run.profile, **run.params}), str(cell_timeout)]
    env = {**os.environ, "SNNLAB_RESULTS": str(tmp), "SNNLAB_CACHE": str(cache_root()),
           "SNNLAB_THREADS": os.environ.get("SNNLAB_THREADS", str(threads))}
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=_die_with_parent)
    return proc.returncode == 0, proc.stdout


def _mismatch(requested: dict, recorded: dict) -> list[str]:
    return [k for k, v in requested.items() if k in recorded and json.dumps(recorded[k]) != json.dumps(v)]


def execute_run(run: Run, cell_timeout: int = 1800, threads: int = 1) -> dict:
    """One run, on a Ray worker: under the run's lock, skip it if finished, else execute into
    ``.tmp`` and rename the complete folder into ``runs/<hash>``."""
    t0 = time.time()
    base = Path(run.base)
    for sub in ("runs", ".locks", ".tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    with open(base / ".locks" / f"{run.key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when this process ends, killed or not
        if is_complete(run.dir, run.key):
            return {"key": run.key, "ok": True, "skipped": True, "wall_s": 0.0, "error": ""}
        for stale in base.glob(f".tmp/{run.key}.*"):  # left by a killed attempt; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{run.key}.", dir=base / ".tmp"))
        try:
            (tmp / "worker.pid").write_text(str(os.getpid()))
            ok, output = _papermill(run, tmp, cell_timeout, threads)
            done = tmp / run.ident / run.profile
            error = "" if ok else (output.strip().splitlines() or ["notebook failed"])[-1]
            if ok and not is_complete(done):
                ok, error = False, "the notebook ended without a complete results folder (run.json wall_s, " \
                                   "claims.json, metrics.json)"
            if ok:
                recorded = (_read_json(done / "run.json") or {}).get("params", {})
                changed = _mismatch(run.params, recorded)
                if changed:
                    ok, error = False, f"the notebook ran with other values of {changed} than requested"
            if not ok:
                return {"key": run.key, "ok": False, "skipped": False, "wall_s": round(time.time() - t0, 1),
                        "error": error, "output": output[-4000:]}
            atomic_write_json(done / "sweep.json", {"hash": run.key, "notebook": run.ident, "profile": run.profile,
                                                    "params": run.params})
            if run.dir.exists():  # an incomplete folder (not written by this code); replace it
                shutil.rmtree(run.dir)
            os.rename(done, run.dir)
            return {"key": run.key, "ok": True, "skipped": False, "wall_s": round(time.time() - t0, 1), "error": ""}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# --- cost ------------------------------------------------------------------------------------------


def effective(run: Run) -> dict:
    """The parameters the notebook will run with: its defaults, the paper profile, then ours."""
    return {**record_params.cell_defaults(Path(run.notebook)), **_paper_overlay(Path(run.notebook), run.profile), **run.params}


def cost(runs: list[Run]) -> tuple[pd.DataFrame, str]:
    """Per configuration: epochs, steps per epoch (train samples / batch size), T, and their
    product times the seeds: time-step batches, the sweep's unit of compute."""
    rows = []
    for run in runs:
        p = effective(run)
        epochs, T, bs, ds = p.get("epochs"), p.get("T", 1), p.get("batch_size"), p.get("dataset")
        n = None
        if isinstance(ds, str) and ds in data.available():
            n = (data.info(ds).num_samples or {}).get("train")
        steps = math.ceil(n / bs) if n and bs else None
        rows.append({**run.config, "seed": run.params["seed"], "epochs": epochs, "steps": steps, "T": T,
                     "units": epochs * steps * T if epochs and steps and T else None})
    df = pd.DataFrame(rows)
    known = df["units"].dropna()
    total = (f"{len(runs)} runs x epochs x steps x T = {int(known.sum()):,} time-step batches"
             if len(known) == len(df) else
             f"{len(runs)} runs; epochs / steps unknown for {len(df) - len(known)} (no epochs, batch_size or "
             f"dataset size)")
    return df, total


# --- the sweep -------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    runs: list[Run]
    done: dict = field(default_factory=dict)  # key -> result dict
    failed: dict = field(default_factory=dict)  # key -> result dict (with attempts)
    interrupted: bool = False
    page: Path | None = None

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else (1 if self.failed else 0)


def _init_ray(address: str | None, num_cpus: int | None, num_gpus: int | None) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    kw = dict(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
              _node_ip_address="127.0.0.1")
    if num_gpus is not None:
        kw["num_gpus"] = num_gpus
    for attempt in range(3):  # a loaded machine can miss Ray's start-up deadlines (raylet/agents)
        try:
            ray.init(**kw)
            return
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise


class _Interrupt(Exception):
    pass


def _on_sigterm(signum, frame) -> None:
    raise _Interrupt()


def run_sweep(
    notebook: Path,
    grid: Grid,
    *,
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    max_retries: int = 2,
    cell_timeout: int = 1800,
    num_cpus: int | None = None,
    root: Path | None = None,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Run every (configuration, seed) of ``grid`` not yet finished, as Ray tasks; write the page."""
    runs = plan(notebook, grid, root)
    res = SweepResult(runs)
    todo = []
    for run in runs:
        if is_complete(run.dir, run.key):
            res.done[run.key] = {"key": run.key, "ok": True, "skipped": True, "wall_s": 0.0, "error": ""}
        else:
            todo.append(run)
    log(f"sweep {notebooks.ident(Path(notebook))} ({grid.profile}): {len(runs)} runs, {len(runs) - len(todo)} "
        f"finished before, {len(todo)} to run")
    if todo:
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
        started = not ray.is_initialized()
        try:
            if started:
                _init_ray(address, num_cpus, None)
            _drive(todo, res, cpus_per_run, gpus_per_run, max_retries, cell_timeout)
        except (KeyboardInterrupt, _Interrupt):
            res.interrupted = True
            log("interrupted: cancelled the runs in flight; finished runs are kept, run again to continue")
        finally:
            if main:
                signal.signal(signal.SIGTERM, old)
            if started:
                ray.shutdown()
    res.page = write_page(res, grid, notebook)
    n_new = sum(not r.get("skipped") for r in res.done.values())
    log(f"{len(res.done)}/{len(runs)} finished ({n_new} executed now), {len(res.failed)} failed; page: {res.page}")
    for key, r in res.failed.items():
        run = next(x for x in runs if x.key == key)
        log(f"FAILED {key} {run.params} after {r['attempts']} attempt(s): {r['error']}")
    return res


def _drive(todo: list[Run], res: SweepResult, cpus: float, gpus: float, max_retries: int, cell_timeout: int) -> None:
    task = ray.remote(execute_run).options(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries,
                                           retry_exceptions=False)
    threads = max(1, int(cpus))
    pending: dict = {}
    attempts = {run.key: 0 for run in todo}

    def submit(run: Run) -> None:
        attempts[run.key] += 1
        pending[task.remote(run, cell_timeout, threads)] = run

    for run in todo:
        submit(run)
    bar = tqdm(total=len(todo), desc="sweep", unit="run")
    try:
        while pending:
            bar.set_postfix(finished=bar.n - len(res.failed), running=len(pending), failed=len(res.failed))
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            for ref in ready:
                run = pending.pop(ref)
                try:
                    r = ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died more often than Ray retried it
                    first = (str(e).strip().splitlines() or [""])[0]
                    r = {"key": run.key, "ok": False, "skipped": False, "wall_s": 0.0, "crashed": True,
                         "error": f"{type(e).__name__}: {first}"}
                if r["ok"]:
                    res.done[run.key] = r
                elif not r.get("crashed") and attempts[run.key] <= max_retries:  # the notebook failed: again
                    submit(run)
                    continue
                else:
                    res.failed[run.key] = {**r, "attempts": attempts[run.key]}
                bar.update(1)
        bar.set_postfix(finished=bar.n - len(res.failed), running=0, failed=len(res.failed))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()


# --- aggregation and the page ----------------------------------------------------------------------


def _numbers(prefix: str, v: Any, out: dict, max_list: int = 32) -> None:
    if isinstance(v, bool) or v is None:
        return
    if isinstance(v, (int, float)):
        if math.isfinite(v):
            out[prefix] = float(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            _numbers(f"{prefix}.{k}" if prefix else str(k), x, out, max_list)
    elif isinstance(v, list) and len(v) <= max_list:
        for i, x in enumerate(v):
            _numbers(f"{prefix}[{i}]", x, out, max_list)


def run_table(runs: list[Run]) -> pd.DataFrame:
    """One row per finished run: its parameters and every number of metrics.json and claims.json
    (``claim:<id>`` = ours, ``holds:<id>`` = 1/0)."""
    rows = []
    for run in runs:
        if not is_complete(run.dir, run.key):
            continue
        nums: dict = {}
        _numbers("", _read_json(run.dir / "metrics.json"), nums)
        for c in _read_json(run.dir / "claims.json") or []:
            _numbers(f"claim:{c['id']}", c.get("ours"), nums)
            if c.get("passed") is not None:
                nums[f"holds:{c['id']}"] = float(bool(c["passed"]))
        rows.append({"hash": run.key, **run.params, **nums})
    return pd.DataFrame(rows)


def aggregate(runs: list[Run]) -> pd.DataFrame:
    """Long table: configuration, quantity, n, mean, std (sample std, ddof=1; NaN for one seed)."""
    df = run_table(runs)
    if df.empty:
        return pd.DataFrame(columns=["config", "quantity", "n", "mean", "std"])
    names = sorted({k for r in runs for k in r.config})
    qty = [c for c in df.columns if c not in names and c not in ("hash", "seed")]
    df["config"] = df.apply(lambda r: ", ".join(f"{k}={r[k]}" for k in names), axis=1) if names else "all"
    long = df.melt(id_vars=["config"], value_vars=qty, var_name="quantity", value_name="_x").dropna(subset=["_x"])
    g = long.groupby(["config", "quantity"], sort=False)["_x"]
    return g.agg(n="count", mean="mean", std="std").reset_index()


def _figure_b64(summary: pd.DataFrame, quantity: str) -> str:
    d = summary[summary["quantity"] == quantity]
    fig = Figure(figsize=(max(3.5, 0.9 * len(d) + 1.5), 2.8))
    ax = fig.subplots()
    ax.errorbar(range(len(d)), d["mean"], yerr=d["std"].fillna(0), fmt="o", capsize=4)
    ax.set_xticks(range(len(d)), [c.replace(", ", "\n") for c in d["config"]], fontsize=7)
    ax.set_title(f"{quantity} (mean ± std over seeds)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def write_page(res: SweepResult, grid: Grid, notebook: Path, max_plots: int = 12) -> Path:
    """``<sweep>/<grid name>/index.html`` (+ runs.csv, summary.csv): mean ± std per configuration,
    error-bar plots, and the runs that failed."""
    base = Path(res.runs[0].base) if res.runs else sweep_dir(notebook, grid.profile or "quick")
    out = base / grid.name
    out.mkdir(parents=True, exist_ok=True)
    table, summary = run_table(res.runs), aggregate(res.runs)
    atomic_write_text(out / "runs.csv", table.to_csv(index=False))
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>sweep</title><style>"
             "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}.fail{color:#b00}"
             "img{margin:4px;border:1px solid #eee}</style></head><body>",
             f"<h1>Sweep {e(notebooks.ident(Path(notebook)))} <small>({e(grid.profile or 'quick')}, grid "
             f"{e(grid.name)})</small></h1>",
             f"<p>{len(res.runs)} runs ({len(grid.configs)} configurations x {len(grid.seeds)} seeds "
             f"{e(str(grid.seeds))}): {len(table)} finished, <span class=fail>{len(res.failed)} failed</span>"
             f"{' (interrupted: run the sweep again to continue)' if res.interrupted else ''}. Mean ± sample std "
             f"(ddof = 1) over the seeds of each configuration; n = finished seeds.</p>"]
    if res.failed:
        parts.append("<h2 class=fail>Failed runs</h2><table><tr><th>run</th><th>parameters</th><th>attempts</th>"
                     "<th>error</th></tr>")
        for key, r in res.failed.items():
            run = next(x for x in res.runs if x.key == key)
            parts.append(f"<tr><td>{key}</td><td>{e(json.dumps(run.params))}</td><td>{r['attempts']}</td>"
                         f"<td>{e(r['error'])}</td></tr>")
        parts.append("</table>")
    if not summary.empty:
        cell = summary.assign(v=[f"{m:.4g} ± {s:.2g} ({n})" if n > 1 else f"{m:.4g} (1)"
                                 for m, s, n in zip(summary["mean"], summary["std"], summary["n"])])
        wide = cell.pivot(index="quantity", columns="config", values="v").fillna("—")
        parts.append("<h2>mean ± std (n) per configuration</h2>" + wide.to_html(escape=True))
        parts.append("<h2>Error bars</h2>")
        for q in list(dict.fromkeys(summary["quantity"]))[:max_plots]:
            parts.append(f"<img alt='{e(q)}' src='data:image/png;base64,{_figure_b64(summary, q)}'>")
    parts.append("<h2>Runs</h2><p>Each run's folder: <code>runs/&lt;hash&gt;/</code> beside this page's folder."
                 "</p>" + (table.to_html(index=False, escape=True) if not table.empty else "<p>none</p>"))
    parts.append("</body></html>")
    return atomic_write_text(out / "index.html", "\n".join(parts))
