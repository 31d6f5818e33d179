"""Every notebook on disk runs under papermill in its quick profile and records its results;
committed notebooks are clean; a bad parameter stops a notebook before any work."""

import json
from pathlib import Path

import pytest
import yaml

from snnlab.record import results
from snnlab.suite import cli, figmap, notebooks, verdicts

ROOT = Path(__file__).resolve().parent.parent
PARAMS = yaml.safe_load((ROOT / "tests" / "notebook_params.yaml").read_text()) or {}
ON_DISK = {notebooks.ident(p): p for p in notebooks.discover()}


def test_every_notebook_is_covered():
    assert ON_DISK, "no notebooks found"
    assert set(PARAMS) == set(ON_DISK), (
        f"not covered by tests/notebook_params.yaml: {sorted(set(ON_DISK) - set(PARAMS))}; "
        f"listed but missing on disk: {sorted(set(PARAMS) - set(ON_DISK))}"
    )


@pytest.mark.parametrize("name", sorted(ON_DISK))
def test_committed_notebook_is_clean(name):
    assert notebooks.problems(ON_DISK[name]) == []
    params = notebooks.parameters(ON_DISK[name])
    assert params["profile"]["default"] == '"quick"' and "seed" in params


def _runs_quick_profile(name):
    root = results.results_root()  # the session's fresh root (conftest.py): cached runs are shared
    r = notebooks.run_one(ON_DISK[name], "quick", parameters=PARAMS.get(name) or {}, results_dir=root)
    assert r.ok, f"{name} failed after {r.wall_s} s:\n{r.output[-4000:]}"
    out = root / ON_DISK[name].parent.name / ON_DISK[name].stem / "quick"
    claims = json.loads((out / "claims.json").read_text())
    assert claims and all({"id", "kind", "statement", "paper", "provenance", "ours", "test", "passed"} <= set(c)
                          for c in claims)
    fig_problems = figmap.check_outputs(ON_DISK[name].parent.name, ON_DISK[name].stem, figmap.saved_figures(out))
    assert not fig_problems, "figures differ from papers/<paper>/paper.yaml figures:\n" + "\n".join(fig_problems)
    flips = verdicts.compare(ON_DISK[name].parent.name, ON_DISK[name].stem, out / "claims.json")
    assert not flips, "claim verdicts differ from papers/<paper>/expected_verdicts.yaml:\n" + "\n".join(flips)
    assert list((out / "figures").glob("*.png")) and list((out / "figures").glob("*.pdf"))
    run = json.loads((out / "run.json").read_text())
    assert run["profile"] == "quick" and "wall_s" in run
    print(f"{name}: {r.wall_s} s, peak RSS {r.peak_rss_mb} MB")


# One test class per paper: under `pytest -n 2 --dist loadscope` (make test; units in tests/conftest.py) each class is one unit of
# work, so the papers' notebooks run in parallel while a paper's notebooks keep their order (later
# notebooks reuse the cached trainings of earlier ones).
def _paper_class(paper: str, names: list[str]) -> type:
    @pytest.mark.notebook
    @pytest.mark.parametrize("name", names)
    def test_runs(self, name):
        _runs_quick_profile(name)

    return type(f"TestQuickProfile_{paper}", (), {"test_runs": test_runs})


for _paper in sorted({n.split("/")[0] for n in ON_DISK}):
    globals()[f"TestQuickProfile_{_paper}"] = _paper_class(_paper, sorted(n for n in ON_DISK if n.startswith(f"{_paper}/")))


@pytest.mark.notebook
def test_bad_parameter_stops_before_work(tmp_path):
    path = ON_DISK["basics/01_lif_and_surrogates"]
    r = notebooks.run_one(path, "quick", parameters={"T": 0}, results_dir=tmp_path)
    assert not r.ok
    assert "ValueError" in r.output and "T=0 is invalid" in r.output
    assert not (tmp_path / "basics" / "01_lif_and_surrogates" / "quick" / "figures").exists() or not any(
        (tmp_path / "basics" / "01_lif_and_surrogates" / "quick" / "figures").iterdir())


def test_cli_rejects_bad_input(capsys):

    with pytest.raises(SystemExit):
        cli.main(["figures", "--profile", "fast"])
    with pytest.raises(SystemExit):
        cli.main(["figures", "--jobs", "0"])
    assert cli.main(["figures", "--only", "no-such-notebook*"]) == 2
    assert "no notebook matches" in capsys.readouterr().err
