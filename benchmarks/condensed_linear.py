"""CPU benchmark of the condensed linear layer (SRigL, Lasby et al. 2024, Appendix I).

One 3072 -> 768 fully-connected layer in float32 (the shape of ViT-B/16's last MLP projection),
online inference (``torch.inference_mode``) at batch sizes 1-64 and 1-2 threads, for sparsities
80/90/95/99%. Methods:

* ``dense``: ``nn.Linear`` with the full weight;
* ``dense_masked``: ``nn.Linear`` holding W * mask (same cost as dense; the reference output);
* ``csr``: ``torch.sparse_csr_tensor`` (unstructured mask of the same budget) times xᵀ, plus bias;
  ``csr_mv`` (batch 1 only): ``torch.mv`` with the CSR matrix, a faster CSR path at batch 1;
* ``structured``: dense ``nn.Linear`` over the neurons SRigL keeps (ablated rows removed);
* ``condensed``: :class:`snnlab.sparsity_theory.CondensedLinear` (int32 indices, native kernel);
  ``condensed_int64``: the same with int64 indices; ``condensed_torch``: the same layer through
  pure torch ops (index_select+mul+sum at batch 1, ``F.embedding_bag`` above).

The paper used a trained ViT-B/16 layer, which is not available offline. Here the dense weight is
``nn.Linear``'s iid init and the masks come from SRigL-style one-shot magnitude selection
(:func:`snnlab.sparsity_theory.srigl_mask_from_weight`): salient set = top-K |W| of the layer,
neurons with fewer than max(1, γ_sal·K/out) salient weights are ablated, the budget K is
redistributed as a constant fan-in over the kept neurons. γ_sal defaults to 0.95, the value the
paper used for ViT-B/16 (Appendix E); with iid weights this ablates the neurons whose salient count
falls below 95% of the mean. The CSR baseline uses the unstructured top-K mask (what RigL keeps).

Timing: ``snnlab.bench.time_fn`` (median after warm-up); every (threads, sparsity, batch) cell
runs all methods in several rounds in shuffled order and pools the repeats, so that load from
other processes on a shared machine hits all methods alike. The load average is recorded.
``torch.compile`` (inductor, default mode) is tried for dense and the pure-torch condensed formula
at 90% sparsity; ``--no-compile`` skips it (the paper used max-autotune, which takes far longer to
compile on CPU).

Usage: ``python benchmarks/condensed_linear.py [--quick] [--out PATH] [--no-compile]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from snnlab import sparsity_theory as st  # noqa: E402
from snnlab.bench import machine_info, time_fn  # noqa: E402

N_IN, N_OUT = 3072, 768
TARGETS = {"dense_over_condensed": 3.4, "csr_over_condensed": 2.5}  # paper: 90% sparsity, batch 1


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    except OSError:
        pass
    return []


def build_layers(sparsity: float, gamma_sal: float, seed: int) -> dict:
    """All representations of one layer at one sparsity, plus their byte counts."""
    torch.manual_seed(seed)
    dense = torch.nn.Linear(N_IN, N_OUT)
    w, b = dense.weight.detach(), dense.bias.detach()
    density = 1.0 - sparsity
    budget = int(round(density * N_IN * N_OUT))
    mask = st.srigl_mask_from_weight(w, density, gamma_sal=gamma_sal)
    counts = st.fan_in_counts(mask)
    kept = (counts > 0).nonzero().reshape(-1)
    k = int(counts[kept[0]])

    masked = torch.nn.Linear(N_IN, N_OUT)
    with torch.no_grad():
        masked.weight.copy_(w * mask)
        masked.bias.copy_(b)

    unstructured = torch.zeros(N_OUT * N_IN, dtype=torch.bool)
    unstructured[w.abs().flatten().topk(budget).indices] = True
    csr = (w * unstructured.view(N_OUT, N_IN)).to_sparse_csr()

    structured = torch.nn.Linear(N_IN, kept.numel())
    with torch.no_grad():
        structured.weight.copy_((w * mask)[kept])
        structured.bias.copy_(b[kept])

    cond32 = st.CondensedLinear.from_dense(masked, mask, index_dtype=torch.int32)
    cond64 = st.CondensedLinear.from_dense(masked, mask, index_dtype=torch.int64)
    cond_gather = st.CondensedLinear.from_dense(masked, mask, backend="gather")
    cond_ebag = st.CondensedLinear.from_dense(masked, mask, backend="embedding_bag")

    def nbytes(*ts):
        return int(sum(t.numel() * t.element_size() for t in ts))

    dense_bytes = nbytes(w, b)
    layer_bytes = {
        "dense": dense_bytes,
        "csr": nbytes(csr.values(), csr.col_indices(), csr.crow_indices(), b),
        "structured": nbytes(structured.weight, structured.bias),
        "condensed": cond32.nbytes(),
        "condensed_int64": cond64.nbytes(),
    }
    info = {
        "sparsity": sparsity,
        "budget_nnz": budget,
        "n_kept": int(kept.numel()),
        "ablated_fraction": round(1 - kept.numel() / N_OUT, 4),
        "fan_in_k": k,
        "nnz_condensed": int(kept.numel() * k),
        "nnz_csr": int(csr.values().numel()),
        "bytes": layer_bytes,
        "byte_ratio_dense_over": {name: round(dense_bytes / v, 3) for name, v in layer_bytes.items()},
    }
    return {
        "info": info,
        "dense": dense,
        "masked": masked,
        "csr": csr,
        "bias": b,
        "structured": structured,
        "kept": kept,
        "cond32": cond32,
        "cond64": cond64,
        "cond_gather": cond_gather,
        "cond_ebag": cond_ebag,
    }


def methods_for(layers: dict, batch: int) -> dict:
    csr, bias = layers["csr"], layers["bias"]
    m = {
        "dense": layers["dense"],
        "dense_masked": layers["masked"],
        "csr": lambda x: torch.addmm(bias.unsqueeze(1), csr, x.t()).t(),
        "structured": layers["structured"],
        "condensed": layers["cond32"],
        "condensed_int64": layers["cond64"],
        "condensed_torch": layers["cond_gather"] if batch == 1 else layers["cond_ebag"],
    }
    if batch == 1:
        m["csr_mv"] = lambda x: torch.addmv(bias, csr, x[0]).unsqueeze(0)
    return m


def check_outputs(layers: dict, methods: dict, x: torch.Tensor) -> dict:
    """Max |method - reference| (reference: dense masked for SRigL methods, CSR's own dense form)."""
    ref = layers["masked"](x)
    kept = layers["kept"]
    csr_ref = F.linear(x, layers["csr"].to_dense(), layers["bias"])
    err = {}
    for name, f in methods.items():
        y = f(x)
        if name == "dense":
            continue
        if name.startswith("csr"):
            err[name] = float((y - csr_ref).abs().max())
        elif name == "dense_masked":
            err[name] = 0.0
        else:
            err[name] = float((y - ref[:, kept]).abs().max())
    return err


def run(args) -> dict:
    sparsities = [0.9] if args.quick else [0.8, 0.9, 0.95, 0.99]
    batches = [1, 64] if args.quick else [1, 2, 4, 8, 16, 32, 64]
    threads = [1] if args.quick else [1, 2]
    rounds, repeats = (2, 10) if args.quick else (args.rounds, args.repeats)
    rng = random.Random(args.seed)
    t_start = time.time()
    native = st.native_kernel_available()
    result: dict = {
        "benchmark": "condensed_linear_cpu",
        "paper": "srigl",
        "appendix": "I",
        "quick": bool(args.quick),
        "machine": {**machine_info(), "cpu_flags": _cpu_flags(), "loadavg_start": _loadavg()},
        "config": {
            "n_in": N_IN,
            "n_out": N_OUT,
            "dtype": "float32",
            "sparsities": sparsities,
            "batches": batches,
            "threads": threads,
            "rounds": rounds,
            "repeats_per_round": repeats,
            "warmup": args.warmup,
            "gamma_sal": args.gamma_sal,
            "seed": args.seed,
            "weights": "nn.Linear default init (iid uniform); SRigL-style one-shot magnitude mask with ablation",
            "timing": "median of pooled repeats (rounds x repeats, methods shuffled per round), inference_mode",
        },
        "native_kernel": native,
        "layers": {},
        "measurements": [],
    }
    if not native:
        result["native_kernel_error"] = st._native_state.get("error")
    all_layers = {}
    for s in sparsities:
        all_layers[s] = build_layers(s, args.gamma_sal, args.seed)
        result["layers"][str(s)] = all_layers[s]["info"]
        print(f"sparsity {s}: {all_layers[s]['info']}", flush=True)

    threads_before = torch.get_num_threads()
    try:
        for nt in threads:
            torch.set_num_threads(nt)
            load0 = _loadavg()
            for s in sparsities:
                layers = all_layers[s]
                for B in batches:
                    x = torch.randn(B, N_IN, generator=torch.Generator().manual_seed(B))
                    with torch.inference_mode():
                        methods = methods_for(layers, B)
                        errors = check_outputs(layers, methods, x)
                        pooled: dict[str, list[float]] = {name: [] for name in methods}
                        for _ in range(rounds):
                            order = list(methods)
                            rng.shuffle(order)
                            for name in order:
                                f = methods[name]
                                tm = time_fn(lambda: f(x), repeats=repeats, warmup=args.warmup)
                                pooled[name].extend(tm.times)
                    for name, times in pooled.items():
                        q = statistics.quantiles(times, n=4)
                        result["measurements"].append({
                            "threads": nt,
                            "sparsity": s,
                            "batch": B,
                            "method": name,
                            "median_s": statistics.median(times),
                            "iqr_s": q[2] - q[0],
                            "min_s": min(times),
                            "n": len(times),
                            "max_abs_err": errors.get(name),
                        })
                    med = {n: statistics.median(t) * 1e6 for n, t in pooled.items()}
                    print(f"threads={nt} sparsity={s} batch={B}: "
                          + ", ".join(f"{n}={v:.0f}us" for n, v in med.items()), flush=True)
            result.setdefault("loadavg_per_threads", {})[str(nt)] = {"start": load0, "end": _loadavg()}
    finally:
        torch.set_num_threads(threads_before)

    result["targets"] = targets(result)
    if args.compile and not args.quick:
        result["compile"] = try_compile(all_layers.get(0.9) or all_layers[sparsities[0]], args)
    else:
        result["compile"] = {"skipped": True, "reason": "--no-compile" if not args.compile else "--quick"}
    result["machine"]["loadavg_end"] = _loadavg()
    result["wall_s"] = round(time.time() - t_start, 1)
    return result


def _median(result: dict, threads: int, sparsity: float, batch: int, method: str) -> float | None:
    for m in result["measurements"]:
        if (m["threads"], m["sparsity"], m["batch"], m["method"]) == (threads, sparsity, batch, method):
            return m["median_s"]
    return None


def targets(result: dict) -> dict:
    """Paper's headline at 90% sparsity, batch 1: condensed >= 3.4x dense and >= 2.5x CSR."""
    out: dict = {"sparsity": 0.9, "batch": 1, "paper_targets": TARGETS, "per_threads": {}}
    info = result["layers"].get("0.9")
    if info is None:
        return out
    out["byte_limit_dense_over_condensed"] = info["byte_ratio_dense_over"]["condensed"]
    out["byte_limit_dense_over_condensed_int64"] = info["byte_ratio_dense_over"]["condensed_int64"]
    for nt in result["config"]["threads"]:
        t = {m: _median(result, nt, 0.9, 1, m) for m in
             ("dense", "csr", "csr_mv", "structured", "condensed", "condensed_int64", "condensed_torch")}
        if t["condensed"] is None:
            continue
        row = {f"{m}_us": round(v * 1e6, 1) for m, v in t.items() if v is not None}
        row["dense_over_condensed"] = round(t["dense"] / t["condensed"], 2)
        row["csr_over_condensed"] = round(t["csr"] / t["condensed"], 2)
        row["csr_mv_over_condensed"] = round(t["csr_mv"] / t["condensed"], 2)
        row["dense_over_condensed_int64"] = round(t["dense"] / t["condensed_int64"], 2)
        row["csr_over_condensed_int64"] = round(t["csr"] / t["condensed_int64"], 2)
        row["dense_over_condensed_torch"] = round(t["dense"] / t["condensed_torch"], 2)
        row["pass_dense"] = row["dense_over_condensed"] >= TARGETS["dense_over_condensed"]
        row["pass_csr"] = row["csr_over_condensed"] >= TARGETS["csr_over_condensed"]
        row["pass_csr_mv"] = row["csr_mv_over_condensed"] >= TARGETS["csr_over_condensed"]
        out["per_threads"][str(nt)] = row
    return out


def try_compile(layers: dict, args) -> dict:
    """torch.compile (inductor, default mode) of dense and the pure-torch condensed formula,
    1 thread, batch 1 and 64; records compile and run times, or why it was skipped."""
    out: dict = {"mode": "default", "backend": "inductor", "threads": 1, "runs": []}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cond = layers["cond32"]
        vals, idx, bias = cond.values.detach(), cond.indices.long(), cond.bias.detach()

        def condensed_formula(x):
            return (x[:, idx] * vals).sum(-1) + bias

        dense = layers["dense"]
        fns = {"dense_compiled": torch.compile(dense), "condensed_compiled": torch.compile(condensed_formula)}
        for B in (1, 64):
            x = torch.randn(B, N_IN)
            for name, f in fns.items():
                t0 = time.time()
                with torch.inference_mode():
                    f(x)
                compile_s = time.time() - t0
                if compile_s > args.compile_budget:
                    out["runs"].append({"method": name, "batch": B, "compile_s": round(compile_s, 1),
                                        "skipped": "compile took longer than the budget"})
                    continue
                with torch.inference_mode():
                    tm = time_fn(lambda: f(x), repeats=args.repeats * 2, warmup=args.warmup)
                out["runs"].append({"method": name, "batch": B, "compile_s": round(compile_s, 1),
                                    "median_s": tm.median, "iqr_s": tm.iqr})
                print(f"compiled {name} batch={B}: compile {compile_s:.1f}s, {tm.median * 1e6:.0f}us", flush=True)
    except Exception as e:  # inductor needs a C++ compiler; record why it did not run
        out["skipped"] = True
        out["reason"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        torch.set_num_threads(threads_before)
    return out


def write_json_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="90%% sparsity, batch 1 and 64, 1 thread, few repeats")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default benchmarks/results/condensed_linear_cpu[_quick].json)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=25, help="timed calls per method per round")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--gamma-sal", type=float, default=0.95, dest="gamma_sal")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-compile", action="store_false", dest="compile")
    ap.add_argument("--compile-budget", type=float, default=120.0, help="seconds allowed for one compile")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.repeats < 2 or args.warmup < 0:
        raise ValueError(f"rounds={args.rounds}, repeats={args.repeats}, warmup={args.warmup}: "
                         "need rounds >= 1, repeats >= 2, warmup >= 0")
    if not (0 <= args.gamma_sal <= 1):
        raise ValueError(f"gamma_sal={args.gamma_sal} is out of range; allowed values: 0 <= gamma_sal <= 1")
    out = args.out or ROOT / "benchmarks" / "results" / (
        "condensed_linear_cpu_quick.json" if args.quick else "condensed_linear_cpu.json")
    result = run(args)
    write_json_atomic(result, out)
    print(json.dumps(result["targets"], indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
