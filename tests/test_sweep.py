"""``snnlab sweep`` on a local Ray (2 CPUs): grid validation, a 2 configurations x 2 seeds sweep that
survives a killed worker, aggregates equal to hand-computed mean and std, re-runs that execute
nothing, and two concurrent sweeps on one folder.

The notebook is tests/fixtures/sweepfix/01_tiny.ipynb (a few seconds per run; not a suite notebook):
metric ``value = scale * (seed + 1) ** 2 + epochs``.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
import yaml

from snnlab import data
from snnlab.suite import cli, sweep

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "sweepfix" / "01_tiny.ipynb"
BASICS = ROOT / "notebooks" / "basics" / "01_lif_and_surrogates.ipynb"
TIMEOUT = 900


def _grid(tmp_path, doc, name="g") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def _cli(results: Path, grid: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "SNNLAB_RESULTS": str(results), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "snnlab.suite.cli", "sweep", str(TINY), "--grid", str(grid), "--num-cpus", "2",
           "--cpus-per-run", "1", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# --- the grid, validated before anything starts ---------------------------------------------------


def test_grid_product_zip_fixed_and_seeds(tmp_path):
    g = sweep.load_grid(_grid(tmp_path, {"seeds": [3, 7], "fixed": {"sleep_s": 0.0},
                                         "grid": {"scale": [1.0, 2.0]},
                                         "zip": {"epochs": [1, 2, 3], "fail": [False, False, True]}}), TINY)
    assert len(g.configs) == 6 and g.seeds == [3, 7] and g.profile == "quick"
    assert {"sleep_s": 0.0, "scale": 2.0, "epochs": 3, "fail": True} in g.configs
    assert all((c["epochs"], c["fail"]) in [(1, False), (2, False), (3, True)] for c in g.configs)
    runs = sweep.plan(TINY, g, tmp_path)
    assert len(runs) == 12 and len({r.key for r in runs}) == 12
    assert sweep.load_grid(_grid(tmp_path, {"grid": {"scale": [1.0]}}), TINY, seeds=5).seeds == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("doc, named", [
    ({"grid": {"bogus": [1, 2]}}, "bogus"),                       # unknown parameter
    ({"grid": {"epochs": [1, 0]}}, "epochs=0"),                  # bad value (snnlab.record.params validators)
    ({"grid": {"scale": []}}, "grid.scale"),                     # empty list: empty grid
    ({}, "grid"),                                                # nothing at all
    ({"grid": {"seed": [0, 1]}}, "seed"),                        # seeds come from --seeds
    ({"zip": {"epochs": [1, 2], "scale": [1.0]}}, "zip"),        # zipped lists of different lengths
    ({"grid": {"scale": [1.0]}, "fixed": {"scale": 2.0}}, "scale"),  # one parameter in two places
    ({"grdi": {"scale": [1.0]}}, "grdi"),                        # misspelt section
])
def test_bad_grid_is_refused_before_ray_starts(tmp_path, doc, named, capsys):
    path = _grid(tmp_path, doc)
    with pytest.raises(ValueError, match=named.replace("[", r"\[")):
        sweep.load_grid(path, TINY)
    assert cli.main(["sweep", str(TINY), "--grid", str(path)]) == 2
    assert named in capsys.readouterr().err
    assert not ray.is_initialized()
    assert not (Path(os.environ["SNNLAB_RESULTS"]) / "_sweeps" / "sweepfix").exists()


def test_suite_notebook_grid_uses_declared_parameters_and_paper_profile(tmp_path):
    ok = sweep.load_grid(_grid(tmp_path, {"grid": {"T": [2, 4], "epochs": [1]}}), BASICS)
    assert len(ok.configs) == 2
    with pytest.raises(ValueError, match="scale"):  # a fixture parameter, not one of basics/01's
        sweep.load_grid(_grid(tmp_path, {"grid": {"scale": [1.0]}}), BASICS)
    with pytest.raises(ValueError, match="arch"):
        sweep.load_grid(_grid(tmp_path, {"grid": {"arch": ["nope"]}}), BASICS)


def test_dry_run_cost_is_runs_x_epochs_x_steps_x_T(tmp_path, capsys):
    grid = _grid(tmp_path, {"grid": {"T": [2, 4]}, "fixed": {"epochs": 3, "batch_size": 100, "dataset": "digits"}})
    assert cli.main(["sweep", str(BASICS), "--grid", str(grid), "--seeds", "2", "--dry-run"]) == 0
    steps = -(-data.info("digits").num_samples["train"] // 100)
    assert f"{2 * 3 * steps * (2 + 4):,} time-step batches" in capsys.readouterr().out
    assert not ray.is_initialized()


# --- sweeps on a local Ray ------------------------------------------------------------------------


def _hand_aggregate(folder: Path) -> dict:
    """{scale: (mean, stdev)} of metrics.json 'value' over the seeds, from the run folders."""
    by = {}
    for d in sorted((folder / "runs").iterdir()):
        params = json.loads((d / "sweep.json").read_text())["params"]
        by.setdefault(params["scale"], []).append(json.loads((d / "metrics.json").read_text())["value"])
    return {k: (statistics.mean(v), statistics.stdev(v)) for k, v in by.items()}


@pytest.mark.sweep
def test_sweep_survives_a_killed_worker_then_reruns_nothing(tmp_path):
    results = tmp_path / "results"
    grid = _grid(tmp_path, {"seeds": 2, "fixed": {"sleep_s": 2.0}, "grid": {"scale": [1.0, 2.0]}})
    proc = _cli(results, grid, "--max-retries", "2")
    folder = results / "_sweeps" / "sweepfix" / "01_tiny" / "quick"
    killed, t0 = None, time.time()
    while killed is None and proc.poll() is None and time.time() - t0 < TIMEOUT:
        for pid_file in folder.glob(".tmp/*/worker.pid"):
            try:
                killed = int(pid_file.read_text())
                os.kill(killed, signal.SIGKILL)  # a Ray worker this sweep started, mid-run
            except (OSError, ValueError):
                killed = None
                continue
            break
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=TIMEOUT)
    assert killed is not None, out[-3000:]
    assert proc.returncode == 0, out[-3000:]
    runs = sorted((folder / "runs").iterdir())
    assert len(runs) == 4 and all(sweep.is_complete(d, d.name) for d in runs)
    assert not list(folder.glob(".tmp/*"))
    summary = pd.read_csv(folder / "g" / "summary.csv")
    for scale, (mean, std) in _hand_aggregate(folder).items():
        row = summary[(summary["quantity"] == "value") & summary["config"].str.contains(f"scale={scale}")]
        assert len(row) == 1 and row["n"].item() == 2
        assert row["mean"].item() == pytest.approx(mean, rel=1e-12)
        assert row["std"].item() == pytest.approx(std, rel=1e-12)
    page = (folder / "g" / "index.html").read_text()
    assert "data:image/png;base64," in page and "0 failed" in page and "http" not in page

    # re-run: everything is finished, nothing executes (and Ray is not even started)
    stamps = {d.name: (d / "run.json").stat().st_mtime_ns for d in runs}
    again = _cli(results, grid)
    out2, _ = again.communicate(timeout=TIMEOUT)
    assert again.returncode == 0, out2[-3000:]
    assert "4 finished before, 0 to run" in out2 and "(0 executed now)" in out2
    assert stamps == {d.name: (d / "run.json").stat().st_mtime_ns for d in sorted((folder / "runs").iterdir())}


@pytest.mark.sweep
def test_two_concurrent_sweeps_on_one_folder_and_failures_are_reported(tmp_path):
    """Sweep A (1 config x 2 seeds) and sweep B (the same 2 runs plus one configuration whose notebook
    fails) at once on one folder: every run executed exactly once, B retries and reports its failures."""
    results = tmp_path / "results"
    grid = _grid(tmp_path, {"seeds": 2, "fixed": {"fail": False}, "grid": {"scale": [1.0]}})
    more = _grid(tmp_path, {"seeds": 2, "zip": {"scale": [1.0, 3.0], "fail": [False, True]}}, "more")
    # both sweeps use one Ray instance (--address), started here: two Ray start-ups at once on a loaded
    # 2-core machine can miss Ray's own start-up deadlines
    sweep._init_ray(None, 2, None)  # the sweep's local start-up (loopback, no dashboard, retried)
    try:
        address = ray.get_runtime_context().gcs_address
        a = _cli(results, grid, "--address", address)
        b = _cli(results, more, "--max-retries", "1", "--address", address)
        outs = [p.communicate(timeout=TIMEOUT)[0] for p in (a, b)]
    finally:
        ray.shutdown()
    assert a.returncode == 0, outs[0][-3000:]
    assert b.returncode == 1, outs[1][-3000:]  # its failed runs are in the exit code
    folder = results / "_sweeps" / "sweepfix" / "01_tiny" / "quick"
    runs = sorted((folder / "runs").iterdir())
    assert len(runs) == 2 and all(sweep.is_complete(d, d.name) for d in runs)
    executed = [int(o.split(" executed now")[0].rsplit("(", 1)[1]) for o in outs]
    assert sum(executed) == 2, outs  # each shared run executed once, by one sweep or the other
    assert not list(folder.glob(".tmp/*"))
    for d in runs:
        assert json.loads((d / "run.json").read_text())["params"]["seed"] == \
            json.loads((d / "sweep.json").read_text())["params"]["seed"]
    assert "2 failed" in outs[1] and outs[1].count("after 2 attempt(s)") == 2 and "asked to fail" in outs[1]
    page = (folder / "more" / "index.html").read_text()
    assert "Failed runs" in page and "asked to fail" in page
