"""Text and table summaries of a condensed-linear benchmark result (the dict of
:func:`snnlab.studies.srigl.bench.run_cpu`), re-exported by :mod:`snnlab.studies.srigl.bench`: the
result as a DataFrame (:func:`frame`), one-line description, layer table, the winning candidate of
every baseline, thread scaling, the structured-vs-dense anomaly, byte and ablation summaries."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

__all__ = ["frame", "describe", "layer_table", "compile_table", "winners", "thread_scaling",
           "structured_slower_than_dense", "byte_summary", "ablation_summary", "check_stat", "STATS"]

#: CANDIDATES' keys (the baselines); the single source is snnlab.studies.srigl.bench.CANDIDATES
_BASELINES = ("dense", "csr", "structured")


STATS = ("median_s", "min_s")


def check_stat(stat: str) -> str:
    if stat not in STATS:
        raise ValueError(f"stat={stat!r} is unknown; allowed values: {list(STATS)}")
    return stat


def winners(result: dict):
    """Which candidate won each baseline (the derived rows' ``winner``) per (threads, sparsity,
    batch): a pandas DataFrame with one column per baseline (dense, csr, structured; empty for a
    result without candidates)."""
    rows = [m for m in result["measurements"] if m.get("winner")]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return df.pivot_table(index=["threads", "sparsity", "batch"], columns="method", values="winner",
                          aggfunc="first").reindex(columns=[b for b in _BASELINES if b in set(df["method"])])


def describe(result: dict) -> str:
    """One line naming where and when a result was measured: date, CPU, cores, torch, native
    kernel, and the load average at start and end (other processes on the machine)."""
    m = result.get("machine", {})
    load = f"load {m.get('loadavg_start', ['?'])[0]}-{m.get('loadavg_end', ['?'])[0]}" if m.get("loadavg_start") else ""
    parts = [str(m.get("time", "?"))[:10], str(m.get("cpu", "?")), f"{m.get('cores', '?')} cores",
             f"torch {m.get('torch', '?')}", f"native kernel: {result.get('native_kernel', 'n/a')}", load]
    return ", ".join(p for p in parts if p)


def layer_table(result: dict) -> str:
    """Fixed-format text table of the layers of a result (deterministic for a given seed): kept
    neurons, fan-in k, non-zeros, and the dense/method byte ratios, i.e. the most a memory-bound
    batch-1 kernel can gain over dense."""
    lines = [f"{'sparsity':>8} {'n_kept':>6} {'ablated':>7} {'k':>5} {'nnz cond':>9} {'nnz CSR':>8} "
             f"{'dense/cond':>10} {'dense/int64':>11} {'dense/CSR':>9} {'dense/struct':>12}"]
    for key, info in sorted(result["layers"].items(), key=lambda kv: float(kv[0])):
        r = info["byte_ratio_dense_over"]
        lines.append(f"{float(key):8.2f} {info['n_kept']:6d} {info['ablated_fraction']:7.3f} {info['fan_in_k']:5d} "
                     f"{info['nnz_condensed']:9d} {info['nnz_csr']:8d} {r['condensed']:10.3f} "
                     f"{r['condensed_int64']:11.3f} {r['csr']:9.3f} {r['structured']:12.3f}")
    return "\n".join(lines)


def frame(result: dict):
    """The measurements as a pandas DataFrame with ``us`` (median microseconds) and ``iqr_us``."""
    df = pd.DataFrame(result["measurements"])
    df["us"] = df["median_s"] * 1e6
    df["iqr_us"] = df["iqr_s"] * 1e6
    return df


def compile_table(result: dict):
    """The ``torch.compile`` runs of a result as a DataFrame (median in µs), or an empty one."""
    runs = (result.get("compile") or {}).get("runs") or []
    df = pd.DataFrame(runs)
    if "median_s" in df:
        df["median_us"] = df["median_s"] * 1e6
    return df


def thread_scaling(result: dict, methods: Sequence[str] = ("dense_linear", "structured_linear", "condensed"),
                   stat: str = "median_s"):
    """Parallel speedup t(fewest threads) / t(threads) of each of ``methods`` per (threads, sparsity,
    batch), for every thread count above the fewest: a pandas DataFrame with one column per method
    (2.0 at 2 threads = perfect scaling). It shows where a method does not use the extra threads."""
    check_stat(stat)
    df = frame(result)
    df = df[df["method"].isin(methods)]
    piv = df.pivot_table(index=["threads", "sparsity", "batch"], columns="method", values=stat)
    lo = min(result["config"]["threads"])
    base = piv.xs(lo, level="threads")
    out = []
    for nt in sorted(t for t in result["config"]["threads"] if t != lo):
        r = base / piv.xs(nt, level="threads")
        r.insert(0, "threads", nt)
        out.append(r.reset_index())
    cols = ["threads", "sparsity", "batch", *[m for m in methods if m in piv.columns]]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def structured_slower_than_dense(result: dict, pairs: Sequence[tuple[str, str]] = (
        ("structured_linear", "dense_linear"), ("structured", "dense"))):
    """Cells (threads, sparsity, batch) where the structured layer (fewer rows than dense) is *slower*
    than dense, per pair (structured method, dense method): a DataFrame with ``pair`` and ``ratio`` =
    t_structured / t_dense (> 1). With ("structured_linear", "dense_linear") it finds nn.Linear's
    anomaly; with ("structured", "dense") whether it survives the fastest-candidate baselines."""
    df = frame(result)
    piv = df.pivot_table(index=["threads", "sparsity", "batch"], columns="method", values="median_s")
    rows = []
    for a, b in pairs:
        if a in piv.columns and b in piv.columns:
            r = (piv[a] / piv[b]).dropna()
            rows += [{"pair": f"{a} / {b}", "threads": int(t), "sparsity": float(s), "batch": int(bt),
                      "ratio": round(float(v), 3)} for (t, s, bt), v in r.items() if v > 1]
    return pd.DataFrame(rows, columns=["pair", "threads", "sparsity", "batch", "ratio"])


def byte_summary(result: dict, sparsity: float = 0.9) -> dict:
    """The bytes one batch-1 call reads at ``sparsity`` (MB, dense and condensed int32 / int64) and
    their ratios: the memory-traffic limit of the batch-1 speedup over dense."""
    info = result["layers"][str(sparsity)]
    by, r = info["bytes"], info["byte_ratio_dense_over"]
    return {"dense_MB": round(by["dense"] / 1e6, 2), "condensed_MB": round(by["condensed"] / 1e6, 2),
            "condensed_int64_MB": round(by["condensed_int64"] / 1e6, 2),
            "dense_over_condensed": r["condensed"], "dense_over_condensed_int64": r["condensed_int64"]}


def ablation_summary(result: dict):
    """Per sparsity: the fraction of neurons ablated and the structured layer's share of the dense
    work (n_kept / n_out): how much a dense matmul over the kept rows can save."""
    n_out = result["config"]["n_out"]
    return pd.DataFrame([{"sparsity": float(s), "n_kept": i["n_kept"], "ablated_fraction": i["ablated_fraction"],
                          "structured_share_of_dense_work": round(i["n_kept"] / n_out, 3)}
                         for s, i in sorted(result["layers"].items(), key=lambda kv: float(kv[0]))])
