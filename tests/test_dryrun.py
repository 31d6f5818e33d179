"""snnlab figures --profile paper --dry-run: validates paper parameters, reports datasets and cost, trains nothing."""

import copy

from snnlab.record import params
from snnlab.suite import cli, dryrun, notebooks


def test_dry_run_reports_datasets_and_cost(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNNLAB_DATA", str(tmp_path / "data"))
    assert cli.main(["figures", "--profile", "paper", "--dry-run", "--only", "srigl/02*"]) == 0
    out = capsys.readouterr().out
    assert "[ok] srigl/02_dynamic_sparse_training" in out and "step x time-step units" in out
    assert "cifar10: MISSING" in out and "cifar-10-batches-bin/data_batch_1.bin" in out
    assert "c32a1d4ab5d03f1284b67883e8d87530" in out and "nothing was trained" in out
    assert not list((tmp_path / "data").glob("*")) if (tmp_path / "data").exists() else True


def test_dry_run_cost_is_epochs_times_steps_times_T(monkeypatch):
    path = next(p for p in notebooks.discover("basics/*"))
    rec = dryrun.plan([path], "paper")[0]
    p = rec["params"]
    n_train = 1437  # digits train split
    assert rec["cost"] == p["epochs"] * -(-n_train // p["batch_size"]) * p["T"]


def test_dry_run_names_an_invalid_paper_parameter(monkeypatch, capsys):
    doc = copy.deepcopy(params.load("basics"))
    doc["profiles"]["paper"]["01_lif_and_surrogates"]["epochs"] = 0
    monkeypatch.setattr(params, "load", lambda paper: doc)
    assert cli.main(["figures", "--profile", "paper", "--dry-run", "--only", "basics/*"]) == 1
    assert "[INVALID] basics/01_lif_and_surrogates: epochs=0 is invalid" in capsys.readouterr().out
