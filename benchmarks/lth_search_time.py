"""Early-Time search speed-up (lth Table 1) and the cost of one iteration against T (supp. Table 1).

For each seed the IMP search and the IMP+ET search (quick profile of notebook 03: spiking MLP on
digits, p = 0.5, 4 levels, 6 epochs, rewind epoch 1, lambda = 0.6, T_early chosen after 3 epochs)
run back to back in this process with the cache off, so both are timed under the same load. The
search time of the ticket at the last level is the wall time of levels 0..K-1; the final ticket of
IMP+ET is trained at T. Targets (from this run):

* speed-up = IMP search / IMP+ET search (sum over seeds) >= 0.85 * T / T_early;
* mean |acc(IMP+ET ticket) - acc(IMP ticket)| at the last level <= 1 point.

supp. Table 1: seconds of one forward+backward of narrow VGG16 / ResNet19 for T = 1..5,
interleaved, minimum of the repeats.

Usage: ``python benchmarks/lth_search_time.py [--seeds 3]``; writes
``benchmarks/results/lth_search_time_cpu.json`` atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from snnlab import set_threads
from snnlab.paths import atomic_write_json
from snnlab.record import bench
from snnlab.studies.lth import analysis, runs

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--levels", type=int, default=4)
    args = ap.parse_args(argv)
    set_threads(1)
    per_seed = []
    for seed in range(args.seeds):
        s = runs.Setup(epochs=6, seed=seed)
        imp, _ = runs.imp_tickets(s, args.levels, 0.5, 1, cache=False)
        et, lv = runs.imp_tickets(s, args.levels, 0.5, 1, et_cfg={"lam": 0.6, "n": 3}, cache=False, only_last=True)
        row = {"seed": seed, "t_early": lv[0]["t_early"], "imp_search_s": imp[-1].search_s,
               "et_search_s": et[-1].search_s, "imp_acc": imp[-1].acc, "et_acc": et[-1].acc,
               "sparsity": imp[-1].sparsity, "et_final_s": et[-1].final_s, "imp_final_s": imp[-1].final_s}
        print(row, flush=True)
        per_seed.append(row)
    T = 5
    te = [r["t_early"] for r in per_seed]
    speedup = sum(r["imp_search_s"] for r in per_seed) / sum(r["et_search_s"] for r in per_seed)
    ideal = T / max(te)
    drop = sum(abs(r["imp_acc"] - r["et_acc"]) for r in per_seed) / len(per_seed)
    tab = analysis.iteration_times(["vgg16", "resnet19"], [1, 2, 3, 4, 5], 0.0625, 32, 3)
    out = {
        "machine": bench.machine_info(),
        "setting": "spiking MLP (128,128) BN soft reset, digits, T=5, 6 epochs, p=0.5, 4 levels, rewind 1, "
                   "lambda 0.6, N=3; cache off; IMP and IMP+ET back to back per seed",
        "per_seed": per_seed,
        "speedup": round(speedup, 3),
        "ideal": ideal,
        "fraction_of_ideal": round(speedup / ideal, 3),
        "mean_abs_acc_diff": round(drop, 3),
        "targets": {"speedup >= 0.85 ideal": speedup >= 0.85 * ideal, "acc within 1 point": drop <= 1.0,
                    "t_early == 3": all(t == 3 for t in te)},
        "supp_table1_seconds": tab.reset_index().to_dict("records"),
        "supp_table1_ratio_to_T1": tab.div(tab["T=1"], axis=0).round(3).reset_index().to_dict("records"),
        "torch_threads": torch.get_num_threads(),
    }
    atomic_write_json(HERE / "results" / "lth_search_time_cpu.json", out)
    print({k: out[k] for k in ("speedup", "ideal", "fraction_of_ideal", "mean_abs_acc_diff", "targets")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
