"""Tests for snnlab.condensed_bench (the measurement side of the SRigL Appendix I benchmark).

References: the dense masked layer and CSR's own dense form for every representation's output, an
independent top-K selection for the CSR mask, hand-computed ratios on synthetic results, and the
committed JSON for the result schema. No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F

from snnlab.paths import REPO_ROOT
from snnlab.sparsity import masks
from snnlab.studies.srigl import bench as cb

N_IN, N_OUT = 96, 40


@pytest.fixture(scope="module")
def layers():
    return cb.build_layers(0.8, gamma_sal=0.95, seed=3, n_in=N_IN, n_out=N_OUT)


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"sparsities": [0.0]}, "sparsities"),
        ({"sparsities": [1.0]}, "sparsities"),
        ({"sparsities": []}, "sparsities"),
        ({"batches": [0]}, "batches"),
        ({"batches": [1.5]}, "batches"),
        ({"threads": []}, "threads"),
        ({"rounds": 0}, "rounds"),
        ({"repeats": 1}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"gamma_sal": 1.5}, "gamma_sal"),
        ({"n_in": 0}, "n_in"),
    ],
)
def test_validate_names_the_bad_parameter(kw, name):
    with pytest.raises(ValueError, match=name):
        cb.validate(**kw)


def test_validate_headline_cell():
    cb.validate([0.9], [1, 8], headline=True)
    with pytest.raises(ValueError, match="sparsities"):
        cb.validate([0.8], [1], headline=True)
    with pytest.raises(ValueError, match="batches"):
        cb.validate([0.9], [2], headline=True)


def test_bad_stat_and_threads_raise():
    res = _synthetic()
    with pytest.raises(ValueError, match="stat"):
        cb.median(res, 1, 0.9, 1, "dense", stat="mean")
    with pytest.raises(ValueError, match="threads"):
        cb.select(res, [8])


def test_load_committed_missing_path_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        cb.load_committed(tmp_path / "nope.json")


# ----------------------------------------------------------------------------------------------
# layers and outputs
# ----------------------------------------------------------------------------------------------


def test_build_layers_representations_agree(layers):
    info = layers["info"]
    budget = round(0.2 * N_IN * N_OUT)
    assert info["budget_nnz"] == budget
    assert info["nnz_csr"] == budget
    mask = layers["masked"].weight != 0
    assert masks.is_constant_fan_in(mask, allow_empty=True)
    kept = layers["kept"]
    assert info["n_kept"] == kept.numel() == int((masks.fan_in_counts(mask) > 0).sum())
    assert info["fan_in_k"] == int(masks.fan_in_counts(mask)[kept[0]])
    # independent top-K: the CSR holds exactly the K largest |W|
    w = layers["dense"].weight.detach()
    thresh = w.abs().flatten().sort(descending=True).values[budget - 1]
    csr_dense = layers["csr"].to_dense()
    assert torch.equal(csr_dense != 0, w.abs() >= thresh)
    assert torch.equal(csr_dense[csr_dense != 0], w[w.abs() >= thresh])
    # structured = masked rows of the kept neurons
    assert torch.equal(layers["structured"].weight.detach(), layers["masked"].weight.detach()[kept])
    # byte counts: int32 condensed = n_kept * k * (4 + 4) + bias
    assert info["bytes"]["condensed"] == info["n_kept"] * info["fan_in_k"] * 8 + info["n_kept"] * 4
    assert info["bytes"]["dense"] == (N_IN * N_OUT + N_OUT) * 4
    assert info["byte_ratio_dense_over"]["condensed"] == round(info["bytes"]["dense"] / info["bytes"]["condensed"], 3)


@pytest.mark.parametrize("batch", [1, 5])
def test_every_method_matches_the_reference(layers, batch):
    x = torch.randn(batch, N_IN, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        methods = cb.methods_for(layers, batch)
        assert {n for n in methods if n.endswith("addmv")} == (
            {"dense_addmv", "csr_addmv", "structured_addmv"} if batch == 1 else set())
        assert set(cb.CANDIDATES["dense"]) >= {n for n in methods if n.startswith("dense")}
        err = cb.check_outputs(layers, methods, x)
        # independent references computed here, not by check_outputs
        w, b = layers["dense"].weight.detach(), layers["bias"]
        ref = F.linear(x, layers["masked"].weight, layers["masked"].bias)[:, layers["kept"]]
        for name in methods:
            if name.startswith(("condensed", "structured")):
                assert torch.allclose(methods[name](x), ref, atol=1e-5), name
            elif name.startswith("dense"):
                assert torch.allclose(methods[name](x), x @ w.T + b, atol=1e-5), name
    assert set(err) == set(methods)
    assert max(err.values()) < 1e-4


# ----------------------------------------------------------------------------------------------
# a tiny real run
# ----------------------------------------------------------------------------------------------


def test_run_cpu_schema_and_counts():
    before = torch.get_num_threads()
    res = cb.run_cpu([0.5, 0.9], [1, 3], [1], rounds=2, repeats=2, warmup=0, n_in=N_IN, n_out=N_OUT, log=None)
    assert torch.get_num_threads() == before
    # candidates: dense 3 + csr 1 + structured 3 + condensed 3, each addmv at batch 1; + 3 derived baselines
    per_cell = {1: 13 + 3, 3: 10 + 3}
    assert len(res["measurements"]) == 2 * sum(per_cell.values())
    for m in res["measurements"]:
        if m["method"] in cb.CANDIDATES:  # a derived baseline = its fastest candidate
            cands = [c for c in res["measurements"] if c["method"] in cb.CANDIDATES[m["method"]]
                     and (c["threads"], c["sparsity"], c["batch"]) == (m["threads"], m["sparsity"], m["batch"])]
            assert m["winner"] in cb.CANDIDATES[m["method"]] and m["median_s"] == min(c["median_s"] for c in cands)
        else:
            assert m["winner"] is None
    assert isinstance(res["git_dirty"], bool) and len(res["git_commit"]) == 40
    assert all(m["n"] == 4 for m in res["measurements"])
    assert all(m["min_s"] <= m["median_s"] for m in res["measurements"])
    assert set(res["layers"]) == {"0.5", "0.9"}
    assert res["compile"]["skipped"] is True
    # targets are the ratios of the recorded medians
    row = res["targets"]["per_threads"]["1"]
    d = min(cb.median(res, 1, 0.9, 1, m) for m in cb.CANDIDATES["dense"])
    c = cb.median(res, 1, 0.9, 1, "condensed")
    assert row["dense_over_condensed"] == round(d / c, 2)
    assert row["dense_linear_over_condensed"] == round(cb.median(res, 1, 0.9, 1, "dense_linear") / c, 2)
    assert row["pass_dense"] == (row["dense_over_condensed"] >= 3.4)
    errs = [m["max_abs_err"] for m in res["measurements"] if m["max_abs_err"] is not None]
    assert max(errs) < 1e-4
    # same keys as the committed result
    committed = cb.load_committed()
    assert set(committed) <= set(res) | {"native_kernel_error"}
    assert set(committed["measurements"][0]) == set(res["measurements"][0])
    assert json.loads(json.dumps(res))  # JSON-able


def test_run_device_on_cpu():
    res = cb.run_device("cpu", [0.9], [1, 4], repeats=2, warmup=0, n_in=N_IN, n_out=N_OUT, log=None)
    assert [m["method"] for m in res["measurements"]] == ["dense", "csr", "structured", "condensed"] * 2
    assert max(m["max_abs_err"] or 0 for m in res["measurements"]) < 1e-4


# ----------------------------------------------------------------------------------------------
# tables on a synthetic result (hand-computed)
# ----------------------------------------------------------------------------------------------

# times in us: {(threads, sparsity, batch): {method: median}}; the candidates of each baseline
_TIMES = {
    (1, 0.9, 1): {"dense_linear": 340, "dense_addmm": 400, "dense_mm": 420, "dense_addmv": 300, "csr_addmm": 250,
                  "csr_addmv": 170, "structured_linear": 300, "structured_addmm": 320, "structured_mm": 330,
                  "structured_addmv": 310, "condensed": 100, "condensed_int64": 110, "condensed_torch": 300},
    (1, 0.9, 64): {"dense_linear": 2000, "dense_addmm": 1800, "dense_mm": 1900, "csr_addmm": 900,
                   "structured_linear": 650, "structured_addmm": 600, "structured_mm": 700, "condensed": 800,
                   "condensed_int64": 820, "condensed_torch": 700},
    (2, 0.9, 1): {"dense_linear": 200, "dense_addmm": 210, "dense_mm": 220, "dense_addmv": 250, "csr_addmm": 100,
                  "csr_addmv": 90, "structured_linear": 160, "structured_addmm": 150, "structured_mm": 170,
                  "structured_addmv": 155, "condensed": 80, "condensed_int64": 90, "condensed_torch": 250},
    (2, 0.9, 64): {"dense_linear": 1100, "dense_addmm": 1000, "dense_mm": 1050, "csr_addmm": 500,
                   "structured_linear": 450, "structured_addmm": 470, "structured_mm": 480, "condensed": 400,
                   "condensed_int64": 410, "condensed_torch": 390},
}


def _synthetic() -> dict:
    meas = []
    for (t, s, b), ms in _TIMES.items():
        rows = [{"threads": t, "sparsity": s, "batch": b, "method": m, "median_s": v * 1e-6, "iqr_s": 1e-6,
                 "min_s": v * 0.5e-6, "n": 4, "max_abs_err": 0.0, "winner": None} for m, v in ms.items()]
        meas += rows + cb.baseline_rows(rows)
    info = {"sparsity": 0.9, "budget_nnz": 10, "n_kept": 8, "ablated_fraction": 0.2, "fan_in_k": 2,
            "nnz_condensed": 16, "nnz_csr": 10, "bytes": {},
            "byte_ratio_dense_over": {"dense": 1.0, "csr": 3.3, "structured": 1.2, "condensed": 5.0,
                                      "condensed_int64": 3.3}}
    res = {"config": {"threads": [1, 2], "sparsities": [0.9], "batches": [1, 64]}, "layers": {"0.9": info},
           "measurements": meas, "machine": {"time": "2026-01-02T03:04:05", "cpu": "X", "cores": 2, "torch": "t",
                                             "loadavg_start": [0.5, 0, 0], "loadavg_end": [0.7, 0, 0]},
           "native_kernel": True}
    res["targets"] = cb.targets(res)
    return res


def test_baselines_are_the_fastest_candidate_by_hand():
    w = cb.winners(_synthetic())
    assert w.loc[(1, 0.9, 1)].tolist() == ["dense_addmv", "csr_addmv", "structured_linear"]
    assert w.loc[(1, 0.9, 64)].tolist() == ["dense_addmm", "csr_addmm", "structured_addmm"]
    assert w.loc[(2, 0.9, 1)].tolist() == ["dense_linear", "csr_addmv", "structured_addmm"]
    assert cb.median(_synthetic(), 1, 0.9, 64, "structured") == pytest.approx(600e-6)
    assert cb.winners({"measurements": [{"method": "dense", "winner": None}]}).empty


def test_targets_by_hand():
    t = cb.targets(_synthetic())
    one = t["per_threads"]["1"]
    assert one["dense_us"] == 300 and one["dense_winner"] == "dense_addmv"
    assert one["dense_over_condensed"] == 3.0 and not one["pass_dense"]  # strongest dense: addmv
    assert one["dense_linear_over_condensed"] == 3.4  # nn.Linear alone would pass
    assert one["csr_over_condensed"] == 1.7 and not one["pass_csr"] and one["csr_addmm_over_condensed"] == 2.5
    assert one["structured_over_condensed"] == 3.0 and one["structured_winner"] == "structured_linear"
    assert one["dense_over_condensed_torch"] == 1.0
    two = t["per_threads"]["2"]
    assert two["dense_over_condensed"] == 2.5 and two["dense_winner"] == "dense_linear"
    assert t["byte_limit_dense_over_condensed"] == 5.0
    assert "not the paper's printed number" in t["targets_provenance"]["dense_over_condensed"]
    tmin = cb.targets(_synthetic(), stat="min_s")  # every time halved: same ratios
    assert tmin["per_threads"]["1"]["dense_over_condensed"] == 3.0 and tmin["stat"] == "min_s"


def test_speedups_fastest_losses_by_hand():
    res = _synthetic()
    sp = cb.speedups(res, over=("dense", "structured")).set_index(["threads", "sparsity", "batch"])
    assert sp.loc[(1, 0.9, 64), "dense"] == pytest.approx(1800 / 800)
    assert sp.loc[(2, 0.9, 1), "structured"] == pytest.approx(150 / 80)
    fb = cb.fastest_at_batch(res, 1).set_index("threads")
    assert fb.loc[1, "fastest"] == "condensed" and fb.loc[1, "runner_up"] == "csr"
    assert fb.loc[1, "condensed_margin"] == pytest.approx(1.7)
    assert fb.loc[2, "condensed_margin"] == pytest.approx(90 / 80)
    losses = cb.condensed_losses(res)
    assert losses[["threads", "batch", "winner"]].values.tolist() == [[1, 64, "structured"]]
    assert losses["ratio"].iloc[0] == pytest.approx(800 / 600)
    sv = cb.structured_vs_condensed(res, min_batch=16)
    assert sv["cells"] == 2
    assert sv["wins"] == [{"threads": 1, "sparsity": 0.9, "batch": 64, "ratio": round(800 / 600, 3)}]
    adv = cb.advantage_by_batch(res, "dense")
    assert adv == {"1 thr, 90%": (3.0, 2.25), "2 thr, 90%": (2.5, 2.5)}


def test_select_keeps_one_thread_count():
    one = cb.select(_synthetic(), [1])
    assert one["config"]["threads"] == [1]
    assert {m["threads"] for m in one["measurements"]} == {1}
    assert set(one["targets"]["per_threads"]) == {"1"}
    assert cb.condensed_losses(one)["threads"].tolist() == [1]


def test_text_summaries():
    res = _synthetic()
    d = cb.describe(res)
    assert d.startswith("2026-01-02, X, 2 cores") and "load 0.5-0.7" in d
    table = cb.layer_table(res).splitlines()
    assert len(table) == 2 and table[1].split()[:4] == ["0.90", "8", "0.200", "2"]
    assert cb.compile_table({"compile": {"skipped": True}}).empty
    ct = cb.compile_table({"compile": {"runs": [{"method": "d", "median_s": 2e-6}]}})
    assert ct["median_us"].iloc[0] == pytest.approx(2.0)


def test_committed_json_headline_from_its_raw_measurements():
    """The stored batch-1 ratios at 90% sparsity, recomputed by hand from the raw candidate medians (not
    through targets()), every (threads, sparsity, batch) cell measured for every method, each baseline
    row the least of its candidates, and the machine and the code (git commit) named."""
    res = cb.load_committed()
    raw = {(m["threads"], m["sparsity"], m["batch"], m["method"]): m for m in res["measurements"]}
    cfg = res["config"]
    for t in cfg["threads"]:
        for s in cfg["sparsities"]:
            for b in cfg["batches"]:
                names = ["dense_linear", "dense_addmm", "dense_mm", "csr_addmm", "structured_linear",
                         "structured_addmm", "structured_mm", "condensed", "condensed_int64", "condensed_torch"]
                names += ["dense_addmv", "csr_addmv", "structured_addmv"] if b == 1 else []
                assert all((t, s, b, m) in raw for m in names), (t, s, b)
                for base in ("dense", "csr", "structured"):
                    cands = [n for n in names if n.startswith(base + "_")]
                    best = min(cands, key=lambda n: raw[(t, s, b, n)]["median_s"])
                    assert raw[(t, s, b, base)]["winner"] == best
                    assert raw[(t, s, b, base)]["median_s"] == raw[(t, s, b, best)]["median_s"]
        row = res["targets"]["per_threads"][str(t)]
        cond = raw[(t, 0.9, 1, "condensed")]["median_s"]
        dense = min(raw[(t, 0.9, 1, n)]["median_s"] for n in ("dense_linear", "dense_addmm", "dense_mm", "dense_addmv"))
        csr = min(raw[(t, 0.9, 1, n)]["median_s"] for n in ("csr_addmm", "csr_addmv"))
        assert row["dense_over_condensed"] == pytest.approx(dense / cond, abs=0.006)
        assert row["csr_over_condensed"] == pytest.approx(csr / cond, abs=0.006)
        assert row["dense_linear_over_condensed"] == pytest.approx(raw[(t, 0.9, 1, "dense_linear")]["median_s"] / cond,
                                                                   abs=0.006)
        assert row["dense_us"] == pytest.approx(1e6 * dense, abs=0.06)
    assert res["machine"]["cpu"] and res["machine"]["cores"] and res["machine"]["time"]
    assert len(res["git_commit"]) == 40 and isinstance(res["git_dirty"], bool)


# ----------------------------------------------------------------------------------------------
# the command-line script uses this module
# ----------------------------------------------------------------------------------------------


def test_benchmark_script_calls_run_cpu(tmp_path, monkeypatch):
    path = REPO_ROOT / "benchmarks" / "condensed_linear.py"
    spec = importlib.util.spec_from_file_location("condensed_linear_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    seen = {}

    def fake_run_cpu(**kw):
        seen.update(kw)
        return {"targets": {"ok": True}}

    monkeypatch.setattr(mod.cb, "run_cpu", fake_run_cpu)
    out = tmp_path / "r.json"
    assert mod.main(["--quick", "--out", str(out), "--seed", "4"]) == 0
    assert json.loads(out.read_text()) == {"targets": {"ok": True}}
    assert seen["sparsities"] == [0.9] and seen["batches"] == [1, 64] and seen["threads"] == [1]
    assert seen["quick"] is True and seen["seed"] == 4
    with pytest.raises(ValueError, match="repeats"):
        mod.main(["--repeats", "1", "--out", str(out)])
