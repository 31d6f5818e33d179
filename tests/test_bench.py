"""bench: saved-for-backward bytes against hand counts; live bytes fall when graphs are freed."""

import pytest
import torch

from snnlab.record import bench


def test_saved_tensor_bytes_of_a_matmul():
    w = torch.randn(64, 32, requires_grad=True)
    x = torch.randn(16, 64, requires_grad=True)
    with bench.SavedTensorMeter() as m:
        y = x @ w  # mm saves both operands
    assert m.total == x.nbytes + w.nbytes
    assert m.peak == m.live == x.nbytes + w.nbytes
    del y
    assert m.live == 0


def test_peak_grows_with_depth_but_online_graph_does_not():
    w = torch.randn(32, 32, requires_grad=True)

    def chain(steps, online):
        x = torch.randn(8, 32)
        for _ in range(steps):
            x = torch.tanh(x @ w)
            if online:
                x.sum().backward()
                x = x.detach()
        if not online:
            x.sum().backward()

    peaks = {}
    for online in (False, True):
        peaks[online] = [bench.saved_tensor_bytes(lambda: chain(n, online))["peak"] for n in (2, 4, 8)]
    assert peaks[False][0] < peaks[False][1] < peaks[False][2]
    assert len(set(peaks[True])) == 1


def test_time_fn_structure():
    calls = []
    t = bench.time_fn(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and len(t.times) == 5 and t.median >= 0 and t.iqr >= 0


def test_timing_of_pooled_repeats():
    t = bench.Timing.of([4.0, 1.0, 3.0, 2.0, 5.0])
    assert t.median == 3.0 and t.min == 1.0 and t.iqr == pytest.approx(4.5 - 1.5)
    assert bench.Timing.of([2.0]).iqr == 0.0
    with pytest.raises(ValueError, match="times is empty"):
        bench.Timing.of([])


def test_peak_rss_delta_sees_an_allocation():
    def alloc():
        a = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, touched
        return float(a.sum())

    assert bench.peak_rss_delta(alloc) > 32 * 1024 * 1024
    assert bench.cuda_peak_bytes(alloc) is None or torch.cuda.is_available()
    assert "torch" in bench.machine_info()
