"""The sltt training path on DVS event frames (the DVS columns of Tables S1/S3): tiny datasets written
here in the exact on-disk formats with the writers of tests/test_dvs.py (AEDAT 3.1 DVS128-Gesture,
AEDAT 2.0 CIFAR10-DVS), read by snnlab.data, trained end to end by SLTT and both BPTTs, and SLTT's
gradient on those frames checked against the independent explicit temporal-cut reference."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_dvs import AEDAT2_HEADER, AEDAT31_HEADER, CLASSES, dvs128_record, packet, polarity_event, write_labels

from snnlab import data
from snnlab.core.encoding import encode_batch
from snnlab.grad import sltt
from snnlab.record import params
from snnlab.studies.sltt import runs

T, SIZE, EVENTS = 3, 32, 3000
REF = params.load("sltt")["reference"]


def _events(rng, n):
    """n events in the upper-left 32x32 pixels (dense enough that a 32x32 resize gives spikes)."""
    return rng.integers(0, 32, n), rng.integers(0, 32, n), rng.integers(0, 2, n)


def write_rich_gesture(root: Path, per_split=4) -> None:
    """Two recordings (train, test), each with ``per_split`` labelled gestures of EVENTS events."""
    base = root / "dvs_gesture" / "DvsGesture"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, name in (("train", "user01_fluorescent"), ("test", "user24_led")):
        evs, labels = [], []
        for g in range(per_split):
            x, y, p = _events(rng, EVENTS)
            start = 10_000 * g
            evs += [polarity_event(int(a), int(b), int(c), start + i) for i, (a, b, c) in enumerate(zip(x, y, p))]
            labels.append((g % 11 + 1, start, start + EVENTS))
        (base / f"{name}.aedat").write_bytes(AEDAT31_HEADER + packet(1, evs))
        write_labels(base / f"{name}_labels.csv", labels)
        (base / f"trials_to_{split}.txt").write_text(f"{name}.aedat\n")


def write_rich_cifar_dvs(root: Path, per_class=2) -> None:
    """``per_class`` files per class of EVENTS events (the 0.9 split: 1 train, 1 test per class)."""
    rng = np.random.default_rng(1)
    for name in CLASSES:
        d = root / "cifar10_dvs" / name
        d.mkdir(parents=True)
        for i in range(per_class):
            x, y, p = _events(rng, EVENTS)
            recs = b"".join(dvs128_record(int(a), int(b), int(c), 1000 + j) for j, (a, b, c) in enumerate(zip(x, y, p)))
            (d / f"cifar10_{name}_{i}.aedat").write_bytes(AEDAT2_HEADER + recs)


WRITERS = {"dvs_gesture": write_rich_gesture, "cifar10_dvs": write_rich_cifar_dvs}


def tiny_settings(name: str) -> dict:
    """The paper's DVS settings (reference.dvs_settings) with a tiny T, frame size and budget."""
    s = copy.deepcopy(REF["dvs_settings"])
    s[name].update(T=T, size=SIZE, epochs=1, batch_size=4, dropout=0.0)
    return s


@pytest.fixture(params=list(WRITERS))
def dvs(request, tmp_path):
    name = request.param
    WRITERS[name](tmp_path)
    setup, t, opts = runs.dvs_setup(name, tiny_settings(name), width=1 / 16)
    tr, te = (data.load(name, s, root=tmp_path, **opts) for s in ("train", "test"))
    return name, tmp_path, setup, t, tr, te


def test_dvs_setup_reads_the_official_settings():
    for name, kw in REF["dvs_settings"].items():
        setup, t, opts = runs.dvs_setup(name, REF["dvs_settings"], surrogate="triangle", amp=True)
        assert t == kw["T"] == opts["frames"] and opts["size"] == kw["size"]
        assert (setup.arch, setup.lr, setup.batch_size, setup.dropout, setup.loss_target) == \
            (kw["arch"], kw["lr"], kw["batch_size"], kw["dropout"], kw["loss_target"])
        assert setup.surrogate == "triangle" and setup.amp and setup.augment == "none"
    # paper facts: DVS-CIFAR10 T = 10 at 48x48 with Eq. S14 (one-hot MSE), DVS-Gesture T = 20 at 128x128
    assert runs.dvs_setup("cifar10_dvs", REF["dvs_settings"])[0].loss_fn().target == "onehot"
    assert runs.dvs_setup("dvs_gesture", REF["dvs_settings"])[0].loss_fn().target == "vth"
    with pytest.raises(ValueError, match="dataset='nmnist'"):
        runs.dvs_setup("nmnist", REF["dvs_settings"])


def test_train_variant_end_to_end_on_dvs_frames(dvs):
    name, _, setup, t, tr, te = dvs
    assert tr.is_temporal and tr.x.shape[1:] == (T, 2, SIZE, SIZE) and runs.dataset_frames(tr) == T
    assert float(tr.x.sum()) > 0
    for method in ("sltt", "bptt_paper", "bptt"):
        out = runs.train_variant(runs.Variant(method, t), setup, tr, te, cache=False)
        first = next(m for m in out["model"].modules() if isinstance(m, torch.nn.Conv2d))
        assert first.in_channels == 2                       # the event polarities
        assert out["model"][-1][-1].out_features == data.info(name).num_classes
        assert len(out["acc_per_t"]) == T and 0.0 <= out["acc"] <= 1.0
        assert all(math.isfinite(h["train_loss"]) for h in out["history"]), out["history"]


def test_sltt_gradient_on_dvs_frames_equals_temporal_cut_reference(dvs):
    name, _, setup, t, tr, _ = dvs
    net = runs.build_model(runs.Variant("sltt", t), setup, tr).double()
    net.train()
    x = encode_batch(tr.x[:4].double(), t, "direct", True, None)      # [B, T, ...] -> [T, B, ...]
    y = tr.y[:4]
    assert x.shape == (T, 4, 2, SIZE, SIZE)
    loss_fn = setup.loss_fn()
    ref = sltt.temporal_cut_gradient(net, x, y, loss_fn)               # explicit recursion, temporal term cut
    net.zero_grad()
    sltt.step_function("sltt")(net, x, y, loss_fn)                    # what train_variant runs
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], rtol=1e-9, atol=1e-12, msg=lambda m, n=n: f"{n}: {m}")
    bptt = sltt.reference_gradient(net, x, y, loss_fn, cut_temporal=False)
    assert max(float((ref[n] - bptt[n]).abs().max()) for n in ref) > 1e-8  # the comparison can fail
    assert sum(float(g.abs().sum()) for n, g in ref.items() if "0.0." in n) > 0  # the first conv learns


def test_train_dvs_trains_the_paper_resets(dvs, monkeypatch, tmp_path):
    name, root, *_ = dvs
    monkeypatch.setenv("SNNLAB_RESULTS", str(tmp_path / "results"))
    out = runs.train_dvs(name, tiny_settings(name), [0], root=root, progress=False, width=1 / 16)
    assert sorted(r["variant"].reset for r in out) == sorted(REF["dvs_settings"][name]["resets"])
    summ = runs.summarize(out)
    s3 = runs.table_s3(summ, REF["table_s3_sltt"], "digits", "mlp", dvs={name: summ})
    row = s3.loc[f"{'dvs_gesture' if name == 'dvs_gesture' else 'dvs_cifar10'}_vgg11"]
    # the row is at the paper's T (20 / 10), the tiny run at T = 3: not filled, and it says so
    assert math.isnan(row["ours mean"]) and row["status"].startswith("not run here: no SLTT soft-reset run at T=")


def test_bad_temporal_input_names_the_parameter(dvs):
    _, _, setup, t, tr, te = dvs
    with pytest.raises(ValueError, match=f"T={t + 1}.*{t} frames"):
        runs.train_variant(runs.Variant("sltt", t + 1), setup, tr, te, cache=False)
    with pytest.raises(ValueError, match="augment='crop_flip_cutout'"):
        runs.check_dataset(runs.Variant("sltt", t), runs.Setup(augment="crop_flip_cutout"), tr)
    with pytest.raises(ValueError, match="loss_target='mse'"):
        runs.Setup(loss_target="mse")
    with pytest.raises(ValueError, match="dvs_datasets entry 'digits'"):
        runs.dvs_status(["digits"])
    for bad in (["digits"], ["cifar10_dvs", "cifar10_dvs"], "cifar10_dvs"):
        with pytest.raises(ValueError, match="dvs_datasets"):
            params.validate({"dvs_datasets": bad})
    params.validate({"dvs_datasets": []})


def test_dvs_status_names_missing_files_and_sees_present_ones(tmp_path):
    st = runs.dvs_status(["cifar10_dvs", "dvs_gesture"], root=tmp_path)
    assert not st.present.any()
    assert "cifar10_dvs/<class>/cifar10_<class>_<i>.aedat" in st.loc["cifar10_dvs", "missing"]
    assert "trials_to_train.txt" in st.loc["dvs_gesture", "missing"]
    write_rich_gesture(tmp_path)
    st = runs.dvs_status(["cifar10_dvs", "dvs_gesture"], root=tmp_path)
    assert list(st.present) == [False, True] and st.loc["dvs_gesture", "missing"] == ""
    assert runs.dvs_status([]).empty


def test_dvs_rows_are_empty_without_a_run():
    summ = pd.DataFrame([{"method": "sltt", "T": 6, "K": 0, "reset": "soft", "norm": "bn", "acc_mean": 90.0,
                          "acc_std": 0.0, "n": 1, "accs": [90.0]}])
    s3 = runs.table_s3(summ, REF["table_s3_sltt"], "digits", "mlp")
    for key, r in REF["table_s3_sltt"].items():
        if str(r["dataset"]).endswith("dvs") or r["dataset"] == "dvs_gesture":
            assert math.isnan(s3.loc[key, "ours mean"]), key          # never filled from the static run
            assert s3.loc[key, "status"].startswith(("paper profile only", "not run")), s3.loc[key, "status"]
    s1 = runs.table_s1_dvs(None, REF["table_s1_reset"], 10)
    assert s1["ours mean %"].isna().all() and list(s1["paper %"]) == [82.20, 81.40]
    # a DVS run at the row's T fills it
    dsum = summ.assign(T=10)
    s3 = runs.table_s3(summ, REF["table_s3_sltt"], "digits", "mlp", dvs={"cifar10_dvs": dsum})
    assert s3.loc["dvs_cifar10_vgg11", "ours mean"] == 90.0
    assert math.isnan(s3.loc["dvs_gesture_vgg11", "ours mean"])


def test_loss_target_enters_the_cache_key_only_when_not_the_default():
    assert "loss_target" not in runs.Setup().key()                   # quick-profile runs keep their cache key
    assert runs.Setup(loss_target="onehot").key()["loss_target"] == "onehot"
