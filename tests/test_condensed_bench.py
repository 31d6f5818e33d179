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
        assert ("csr_mv" in methods) == (batch == 1)
        err = cb.check_outputs(layers, methods, x)
        # independent reference computed here, not by check_outputs
        ref = F.linear(x, layers["masked"].weight, layers["masked"].bias)[:, layers["kept"]]
        for name in ("condensed", "condensed_int64", "condensed_torch", "structured"):
            assert torch.allclose(methods[name](x), ref, atol=1e-5)
    assert set(err) == set(methods) - {"dense"}
    assert max(err.values()) < 1e-4


# ----------------------------------------------------------------------------------------------
# a tiny real run
# ----------------------------------------------------------------------------------------------


def test_run_cpu_schema_and_counts():
    before = torch.get_num_threads()
    res = cb.run_cpu([0.5, 0.9], [1, 3], [1], rounds=2, repeats=2, warmup=0, n_in=N_IN, n_out=N_OUT, log=None)
    assert torch.get_num_threads() == before
    per_cell = {1: 8, 3: 7}  # csr_mv only at batch 1
    assert len(res["measurements"]) == 2 * sum(per_cell.values())
    assert all(m["n"] == 4 for m in res["measurements"])
    assert all(m["min_s"] <= m["median_s"] for m in res["measurements"])
    assert set(res["layers"]) == {"0.5", "0.9"}
    assert res["compile"]["skipped"] is True
    # targets are the ratios of the recorded medians
    row = res["targets"]["per_threads"]["1"]
    d, c = cb.median(res, 1, 0.9, 1, "dense"), cb.median(res, 1, 0.9, 1, "condensed")
    assert row["dense_over_condensed"] == round(d / c, 2)
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

# times in us: {(threads, sparsity, batch): {method: median}}
_TIMES = {
    (1, 0.9, 1): {"dense": 340, "csr": 250, "csr_mv": 170, "structured": 300, "condensed": 100,
                  "condensed_int64": 110, "condensed_torch": 300},
    (1, 0.9, 64): {"dense": 2000, "csr": 900, "structured": 600, "condensed": 800, "condensed_int64": 820,
                   "condensed_torch": 700},
    (2, 0.9, 1): {"dense": 200, "csr": 100, "csr_mv": 60, "structured": 150, "condensed": 80,
                  "condensed_int64": 90, "condensed_torch": 250},
    (2, 0.9, 64): {"dense": 1000, "csr": 500, "structured": 450, "condensed": 400, "condensed_int64": 410,
                   "condensed_torch": 390},
}


def _synthetic() -> dict:
    meas = [{"threads": t, "sparsity": s, "batch": b, "method": m, "median_s": v * 1e-6, "iqr_s": 1e-6,
             "min_s": v * 0.5e-6, "n": 4, "max_abs_err": 0.0}
            for (t, s, b), ms in _TIMES.items() for m, v in ms.items()]
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


def test_targets_by_hand():
    t = cb.targets(_synthetic())
    one = t["per_threads"]["1"]
    assert one["dense_over_condensed"] == 3.4 and one["pass_dense"]
    assert one["csr_over_condensed"] == 2.5 and one["pass_csr"]
    assert one["csr_mv_over_condensed"] == 1.7 and not one["pass_csr_mv"]
    assert one["dense_over_condensed_torch"] == round(340 / 300, 2)
    two = t["per_threads"]["2"]
    assert two["dense_over_condensed"] == 2.5 and not two["pass_dense"]
    assert t["byte_limit_dense_over_condensed"] == 5.0
    tmin = cb.targets(_synthetic(), stat="min_s")  # every time halved: same ratios
    assert tmin["per_threads"]["1"]["dense_over_condensed"] == 3.4 and tmin["stat"] == "min_s"


def test_speedups_fastest_losses_by_hand():
    res = _synthetic()
    sp = cb.speedups(res, over=("dense", "structured")).set_index(["threads", "sparsity", "batch"])
    assert sp.loc[(1, 0.9, 64), "dense"] == pytest.approx(2.5)
    assert sp.loc[(2, 0.9, 1), "structured"] == pytest.approx(150 / 80)
    fb = cb.fastest_at_batch(res, 1).set_index("threads")
    assert fb.loc[1, "fastest"] == "condensed" and fb.loc[1, "runner_up"] == "csr"
    assert fb.loc[1, "condensed_margin"] == pytest.approx(2.5)
    assert fb.loc[2, "condensed_margin"] == pytest.approx(100 / 80)
    losses = cb.condensed_losses(res)
    assert losses[["threads", "batch", "winner"]].values.tolist() == [[1, 64, "structured"]]
    assert losses["ratio"].iloc[0] == pytest.approx(800 / 600)
    sv = cb.structured_vs_condensed(res, min_batch=16)
    assert sv["cells"] == 2
    assert sv["wins"] == [{"threads": 1, "sparsity": 0.9, "batch": 64, "ratio": round(800 / 600, 3)}]
    adv = cb.advantage_by_batch(res, "dense")
    assert adv == {"1 thr, 90%": (3.4, 2.5), "2 thr, 90%": (2.5, 2.5)}


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
    """The stored batch-1 ratios at 90% sparsity, recomputed by hand from the raw medians (not through
    targets()), every (threads, sparsity, batch) cell measured for every method, and the machine named."""
    res = cb.load_committed()
    raw = {(m["threads"], m["sparsity"], m["batch"], m["method"]): m["median_s"] for m in res["measurements"]}
    cfg = res["config"]
    methods = {m for (_, _, _, m) in raw}
    assert {"dense", "csr", "csr_mv", "structured", "condensed"} <= methods
    for t in cfg["threads"]:
        for s in cfg["sparsities"]:
            for b in cfg["batches"]:
                assert all((t, s, b, m) in raw for m in ("dense", "csr", "structured", "condensed")), (t, s, b)
        row = res["targets"]["per_threads"][str(t)]
        for m in ("dense", "csr", "csr_mv"):
            assert row[f"{m}_over_condensed"] == pytest.approx(raw[(t, 0.9, 1, m)] / raw[(t, 0.9, 1, "condensed")],
                                                               abs=0.006)
        assert row["dense_us"] == pytest.approx(1e6 * raw[(t, 0.9, 1, "dense")], abs=0.06)
    assert res["machine"]["cpu"] and res["machine"]["cores"] and res["machine"]["time"]


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
