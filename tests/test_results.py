"""Results: atomic writes leave no partial file; Recorder layout, claims and figures."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from snnlab import paths  # noqa: E402
from snnlab.record import results  # noqa: E402


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    results.atomic_write_json(target, {"a": 1})

    def boom(*a, **k):
        raise KeyboardInterrupt  # interrupted between writing the temp file and renaming it

    monkeypatch.setattr(paths.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        results.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # temp file removed


def test_recorder_layout_claims_and_figures(tmp_path):
    rec = results.Recorder("srigl", "01_x", profile="quick", params={"n": 8}, root=tmp_path)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    rec.savefig(fig, "line")
    rec.metric("var", np.float64(0.25))
    rec.metric("curve", torch.tensor([1.0, 2.0]))
    ok, test = results.approx(0.51, 0.5, rel=0.05)
    rec.claim("mean_is_one", "mean equals 1", ours=0.51, paper=0.5, passed=ok, test=test, kind="reproduction")
    rec.claim("mean_is_one", "mean equals 1", ours=0.7, paper=0.5, passed=False, test=test, kind="reproduction")
    d = tmp_path / "srigl" / "01_x" / "quick"
    assert (d / "figures" / "line.png").stat().st_size > 0 and (d / "figures" / "line.pdf").exists()
    assert json.loads((d / "metrics.json").read_text()) == {"var": 0.25, "curve": [1.0, 2.0]}
    claims = json.loads((d / "claims.json").read_text())
    assert len(claims) == 1 and claims[0]["ours"] == 0.7 and claims[0]["passed"] is False  # replaced
    assert claims[0]["kind"] == "reproduction"
    rec.finish()
    run = json.loads((d / "run.json").read_text())
    assert run["params"] == {"n": 8} and run["n_claims"] == 1 and run["n_passed"] == 0
    assert list(rec.claims_table(numbers=False).columns) == ["id", "kind", "statement", "verdict"]
    assert rec.claims_table().loc[0, "verdict"] == "does not hold"


def test_claim_without_kind_is_refused(tmp_path):
    rec = results.Recorder("srigl", "01_x", root=tmp_path)
    with pytest.raises(ValueError, match=r"claim 'c1': kind is missing; allowed values: \['reproduction', 'finding', 'sanity'\]"):
        rec.claim("c1", "a statement", ours=1.0, passed=True, test="t")
    with pytest.raises(ValueError, match="kind is missing"):
        results.Claim(id="c2", statement="s", ours=1.0)
    with pytest.raises(ValueError, match="kind='theory' is invalid"):
        results.Claim(id="c3", statement="s", ours=1.0, kind="theory")
    assert rec.claims == [] and not (tmp_path / "srigl" / "01_x" / "quick" / "claims.json").exists()
    c = results.Claim(id="c4", statement="s", ours=1.0, kind="sanity", passed=None)
    assert c.verdict == "not run" and results.Claim(id="c5", statement="s", ours=1, kind="finding", passed=1).passed is True


def test_atomic_write_honours_umask(tmp_path):
    old = paths.os.umask(0o022)
    try:
        path = results.atomic_write_text(tmp_path / "index.html", "<html></html>")
    finally:
        paths.os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_approx():
    assert results.approx(1.04, 1.0, rel=0.05)[0]
    assert not results.approx(1.06, 1.0, rel=0.05)[0]
    assert results.approx(0.001, 0.0, abs_=0.01)[0]


def test_results_root_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNLAB_RESULTS", str(tmp_path))
    assert results.results_root() == tmp_path.resolve()
