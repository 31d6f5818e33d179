"""The README's findings cannot go stale: every verdict it names is the pinned verdict of that claim
(papers/<paper>/expected_verdicts.yaml, re-checked by every notebook run), every reproduction
claim that does not hold is named, and every speed or memory number is recomputed from the
committed benchmark JSON it comes from."""

import json
import re

import pytest
import yaml

from snnlab.paths import REPO_ROOT
from snnlab.record import params
from snnlab.studies.srigl import bench

README = (REPO_ROOT / "README.md").read_text()
FINDINGS = " ".join(README[README.index("What the notebooks find"):README.index("## Walkthrough")].split())
BENCH = REPO_ROOT / "benchmarks" / "results"


def _pinned() -> dict[str, dict[str, set[str]]]:
    """{claim id: {kind: set of verdicts}} over every paper's pinned verdicts."""
    out: dict[str, dict[str, set[str]]] = {}
    for paper in params.list_papers():
        path = REPO_ROOT / "papers" / paper / "expected_verdicts.yaml"
        if not path.exists():
            continue
        for claims in (yaml.safe_load(path.read_text()) or {}).values():
            for cid, v in claims.items():
                out.setdefault(cid, {}).setdefault(v["kind"], set()).add(v["verdict"])
    return out


def _named() -> list[tuple[str, str]]:
    """(claim id, verdict) for every "`id` holds" / "`a`, `b` hold" / "`id` does not hold" / "`a`, `b` do not hold"
    in the findings."""
    out = []
    for m in re.finditer(r"((?:`[a-z0-9_]+`,? (?:and )?)+)(holds|hold|does not hold|do not hold|is not run)", FINDINGS):
        verdict = {"hold": "holds", "do not hold": "does not hold", "is not run": "not run"}.get(m.group(2), m.group(2))
        out += [(cid, verdict) for cid in re.findall(r"`([a-z0-9_]+)`", m.group(1))]
    return out


def test_readme_verdicts_are_the_pinned_ones():
    pinned, named = _pinned(), _named()
    assert len(named) >= 30, named
    for cid, verdict in named:
        assert cid in pinned, f"README names `{cid}`, which no expected_verdicts.yaml pins"
        verdicts = set().union(*pinned[cid].values())
        assert verdicts == {verdict}, f"README says `{cid}` {verdict}; pinned: {sorted(verdicts)}"


def test_readme_names_every_reproduction_that_does_not_hold():
    named = {cid for cid, _ in _named()}
    failing = {cid for cid, kinds in _pinned().items() if "does not hold" in kinds.get("reproduction", set())}
    assert failing <= named, f"reproduction claims that do not hold, missing from the README: {sorted(failing - named)}"


def _sltt():
    d = json.loads((BENCH / "sltt_memory_time_cpu.json").read_text())
    row = {(r["method"], r["T"]): r for r in d["rows"]}

    def total(m, T):
        return row[(m, T)]["saved_peak_bytes"] + 3 * row[(m, T)]["param_bytes"]

    t = {m: row[(m, 6)]["time_median_s"] for m in ("bptt_paper", "bptt", "sltt")}
    return {"activation ratio at T=16": f"{row[('bptt_paper', 16)]['saved_peak_bytes'] / row[('sltt', 16)]['saved_peak_bytes']:.1f}x",
            "modelled total ratio at T=6": f"{total('bptt_paper', 6) / total('sltt', 6):.1f}x",
            "time vs the paper's loop": f"{t['sltt'] / t['bptt_paper']:.2f}x",
            "time vs fused": f"{t['sltt'] / t['bptt']:.2f}x"}


def _lth():
    d = json.loads((BENCH / "lth_search_time_cpu.json").read_text())
    return {"speed-up": f"{d['speedup']:.2f}x", "fraction of ideal": f"{100 * d['fraction_of_ideal']:.0f}%",
            "accuracy difference": f"within {d['mean_abs_acc_diff']:.2f} points"}


def _ssgd():
    d = json.loads((BENCH / "ssgd_speed_memory_cpu.json").read_text())
    p = next(p for p in d["points"] if p["rho_target"] == 0.02)["ratios"]
    return {"vs autograd loop": f"{p['backward_speedup_vs_dense']:.1f}x faster",
            "vs spikingjelly": f"{p['backward_speedup_vs_spikingjelly']:.2f}x faster",
            "held bytes": f"{100 * p['held_bytes_fraction_of_dense']:.1f}% of the loop's bytes"}


def _srigl():
    res = json.loads((BENCH / "condensed_linear_cpu.json").read_text())
    sp = bench.speedups(res)
    row = sp[(sp["threads"] == 1) & (sp["sparsity"] == 0.9) & (sp["batch"] == 1)].iloc[0]
    return {"over the fastest dense path": f"{row['dense']:.2f}x faster than the fastest dense path",
            "over the fastest CSR path": f"{row['csr']:.2f}x faster than the fastest CSR path"}


@pytest.mark.parametrize("numbers", [_srigl, _sltt, _lth, _ssgd], ids=["srigl", "sltt", "lth", "ssgd"])
def test_readme_benchmark_numbers_are_the_committed_ones(numbers):
    for what, text in numbers().items():
        assert text in FINDINGS, f"README should quote {what} as {text!r} (from the committed benchmark JSON)"
