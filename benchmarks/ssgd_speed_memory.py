"""CPU speed and memory of the sparse backward (Perez-Nieves & Goodman 2021) against two dense baselines.

One hidden layer as in the paper's layer 2: B = 256, T = 100, 200 -> 200, B_th = 0.2, alpha = exp(-1/10),
float32, at activity rho ~ 2%, 5% and 10% (the previous layer's active fraction and this layer's own,
both measured and reported). Methods, ratios and targets: see :mod:`snnlab.studies.ssgd.bench` (the
same code the notebook ``02_speed_and_memory`` calls). All methods run interleaved in one process, so
the ratios are measured in one run. ``--sweep`` adds the hidden-size sweep N = 100..1000 at rho ~ 2%.

Usage: ``python benchmarks/ssgd_speed_memory.py [--quick] [--sweep] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from snnlab.record import bench  # noqa: E402
from snnlab.grad import sparse_backward as sb  # noqa: E402
from snnlab.studies.ssgd import bench as sbench  # noqa: E402


def git_commit() -> dict:
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "snnlab"))}


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
    ap.add_argument("--quick", action="store_true", help="B = 32, 2 repeats (a smoke run)")
    ap.add_argument("--sweep", action="store_true", help="also sweep the hidden size 100..1000 at rho ~ 2%%")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    B = 32 if args.quick else 256
    reps = 2 if args.quick else args.repeats
    out = args.out or ROOT / "benchmarks" / "results" / (
        "ssgd_speed_memory_cpu_quick.json" if args.quick else "ssgd_speed_memory_cpu.json")
    result = {
        "benchmark": "ssgd_speed_memory",
        "git": git_commit(),
        "machine": bench.machine_info(),
        "native_kernel": sb.native_available(),
        "setting": {"B": B, "T": 100, "n_in": 200, "n_out": 200, "b_th": 0.2, "beta": 100.0,
                    "alpha": sbench.alpha_of(), "dtype": "float32", "repeats": reps},
        "targets": sbench.TARGETS,
        "notes": [
            "backward_s: autograd backward of the layer from a fixed random dL/dS (weight and input gradients); "
            "the sparse layer writes the input gradient at the previous layer's active set (Appendix C), "
            "sparse_full_dx everywhere; dense and spikingjelly everywhere.",
            "held_bytes: peak bytes of tensors saved for backward during the forward (SavedTensorMeter), the "
            "weight included for every method.",
            "ideal_speedup = 1/rho with rho this layer's measured active fraction; "
            "backward_speedup_vs_dense_over_ideal = measured speedup * rho.",
            "spikingjelly: layer.Linear + neuron.LIFNode (multi-step, fused CPU op torch.ops.sj_lif) on beta-scaled "
            "potentials so that its built-in SuperSpike equals 1/(1+beta|V-v_th|)^2; reset applied before the leak.",
            "The machine is shared (other jobs may run); methods are interleaved per round so load hits all alike.",
        ],
        "points": sbench.run(rhos=(0.02, 0.05, 0.10), B=B, repeats=reps),
    }
    if args.sweep:
        result["hidden_sweep"] = sbench.sweep_hidden(B=B, repeats=max(1, reps // 2), rho=0.02)
    write_json_atomic(result, out)
    for p in result["points"]:
        print(f"rho target {p['rho_target']:.2f} measured {p['rho_measured']:.4f} in {p['rho_in_measured']:.4f}: "
              + ", ".join(f"{k}={v:.3g}" for k, v in p["ratios"].items()))
        print("   targets met:", p.get("targets_met"))
        for m, r in p["methods"].items():
            print(f"   {m:15s} fwd {r['forward_s'] * 1e3:8.1f} ms  bwd {r['backward_s'] * 1e3:8.1f} ms  "
                  f"held {r['held_bytes'] / 2**20:7.2f} MiB")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
