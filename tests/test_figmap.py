"""Figure maps: every paper lists every figure and table with its notebook output or a reason."""

import pytest
import yaml

from snnlab.record import params
from snnlab.suite import cli, figmap


@pytest.mark.parametrize("paper", params.list_papers())
def test_every_paper_has_a_valid_figure_map(paper):
    entries = figmap.figure_map(paper)
    assert entries
    nbs = {p.stem for p in (params.NOTEBOOKS_DIR / paper).glob("*.ipynb")}
    for e in entries:
        assert e.notebook is None or e.notebook in nbs, f"{paper} {e.id}: no notebook {e.notebook}"
        assert e.status == "regenerated" or e.reason


def _with_map(monkeypatch, entries):
    doc = {"id": "demo", "title": "demo", "figures": entries}
    monkeypatch.setattr(params, "load", lambda paper: doc)


@pytest.mark.parametrize("entry, word", [
    ({"id": "Fig. 1", "part": "main", "what": "x", "notebook": None, "status": "not_reproduced"}, "no reason"),
    ({"id": "Fig. 1", "part": "main", "what": "x", "notebook": None, "status": "regenerated"}, "names no notebook"),
    ({"id": "Fig. 1", "part": "body", "what": "x", "notebook": None, "status": "regenerated"}, "part"),
    ({"id": "Fig. 1", "part": "main", "what": "x", "notebook": "01", "status": "done", "outputs": ["a"]}, "status"),
    ({"id": "Fig. 1", "part": "main", "what": "x", "notebook": "01", "status": "regenerated", "output": ["a"]},
     "unknown keys"),
    ({"part": "main", "what": "x", "status": "regenerated"}, "lacks"),
])
def test_bad_entries_are_refused_naming_them(monkeypatch, entry, word):
    _with_map(monkeypatch, [entry])
    with pytest.raises(ValueError, match=word):
        figmap.figure_map("demo")


def test_outputs_checked_both_ways(monkeypatch):
    _with_map(monkeypatch, [
        {"id": "Fig. 1", "part": "main", "what": "x", "notebook": "01", "status": "regenerated", "outputs": ["a", "b"]},
        {"id": "Fig. 2", "part": "main", "what": "y", "notebook": "01", "status": "paper_profile", "outputs": ["g"],
         "reason": "GPU"},
    ])
    assert figmap.check_outputs("demo", "01", {"a", "b"}) == []
    assert figmap.check_outputs("demo", "01", {"a", "b", "g"}) == []  # paper-profile outputs may appear
    missing = figmap.check_outputs("demo", "01", {"a"})
    assert len(missing) == 1 and "'b'" in missing[0] and "did not save" in missing[0]
    extra = figmap.check_outputs("demo", "01", {"a", "b", "z"})
    assert len(extra) == 1 and "'z'" in extra[0] and "not in" in extra[0]


def test_list_figures_prints_counts(capsys):
    assert cli.main(["list", "--figures", "--only", "srigl"]) == 0
    out = capsys.readouterr().out
    n = len(yaml.safe_load((params.PAPERS_DIR / "srigl" / "paper.yaml").read_text())["figures"])
    assert out.startswith(f"srigl: {n} figures and tables:") and "regenerated" in out
