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

Beside the wall-clock ratio, the speed-up as measured work (what notebook 03's ``et_speedup`` claim
tests): optimizer steps per T of each search x one step's cost at T and T_early, interleaved.

Usage: ``python benchmarks/lth_search_time.py [--seeds 3]``; writes
``benchmarks/results/lth_search_time_cpu.json`` atomically. ``--quick``: a smoke run (1 seed,
2 levels, 3 epochs, 2 timing repeats) that writes ``<results root>/benchmarks/lth_search_time_smoke.json``
instead, so the committed result is never overwritten by it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from snnlab import set_threads
from snnlab.paths import atomic_write_json, results_root
from snnlab.train import runs as cached_runs
from snnlab.record import bench
from snnlab.studies.lth import analysis, runs

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 levels, 3 epochs, N = 1")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.levels = 1, 2
    epochs, n_et, repeats = (3, 1, 2) if args.quick else (6, 3, 3)
    set_threads(1)
    per_seed = []
    for seed in range(args.seeds):
        s = runs.Setup(epochs=epochs, seed=seed)
        imp, imp_lv = runs.imp_tickets(s, args.levels, 0.5, 1, cache=False)
        et, lv = runs.imp_tickets(s, args.levels, 0.5, 1, et_cfg={"lam": 0.6, "n": n_et}, cache=False, only_last=True)
        costs = analysis.step_costs(s, sorted({s.T, lv[0]["t_early"]}), repeats=5 if args.quick else 15)
        sp = imp[-1].sparsity
        work = analysis.et_speedup_model(imp_lv, lv, costs, [r.sparsity for r in imp], {sp: imp[-1].search_s},
                                         {sp: et[-1].search_s})
        row = {"seed": seed, "t_early": lv[0]["t_early"], "imp_search_s": imp[-1].search_s,
               "et_search_s": et[-1].search_s, "imp_acc": imp[-1].acc, "et_acc": et[-1].acc,
               "sparsity": sp, "et_final_s": et[-1].final_s, "imp_final_s": imp[-1].final_s,
               "speedup_work": float(work["speedup_model"].iloc[-1]), "step_costs": costs}
        print(row, flush=True)
        per_seed.append(row)
    T = 5
    te = [r["t_early"] for r in per_seed]
    speedup = sum(r["imp_search_s"] for r in per_seed) / sum(r["et_search_s"] for r in per_seed)
    ideal = T / max(te)
    drop = sum(abs(r["imp_acc"] - r["et_acc"]) for r in per_seed) / len(per_seed)
    tab = analysis.iteration_times(["vgg16", "resnet19"], [1, 2, 3, 4, 5], 0.0625, 32, repeats)
    out = {
        "machine": bench.machine_info(),
        "git_commit": cached_runs.code_version()["commit"], "git_dirty": cached_runs.git_dirty(),
        "setting": f"spiking MLP (128,128) BN soft reset, digits, T=5, {epochs} epochs, p=0.5, {args.levels} levels, "
                   f"rewind 1, lambda 0.6, N={n_et}; cache off; IMP and IMP+ET back to back per seed"
                   + (" (--quick smoke run)" if args.quick else ""),
        "per_seed": per_seed,
        "speedup": round(speedup, 3),
        "speedup_work_mean": round(sum(r["speedup_work"] for r in per_seed) / len(per_seed), 3),
        "ideal": ideal,
        "fraction_of_ideal": round(speedup / ideal, 3),
        "mean_abs_acc_diff": round(drop, 3),
        "targets": {"speedup >= 0.85 ideal": speedup >= 0.85 * ideal, "acc within 1 point": drop <= 1.0,
                    "t_early == 3": all(t == 3 for t in te)},
        "supp_table1_seconds": tab.reset_index().to_dict("records"),
        "supp_table1_ratio_to_T1": tab.div(tab["T=1"], axis=0).round(3).reset_index().to_dict("records"),
        "torch_threads": torch.get_num_threads(),
    }
    path = results_root() / "benchmarks" / "lth_search_time_smoke.json" if args.quick else \
        HERE / "results" / "lth_search_time_cpu.json"
    atomic_write_json(path, out)
    print("wrote", path)
    print({k: out[k] for k in ("speedup", "ideal", "fraction_of_ideal", "mean_abs_acc_diff", "targets")})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
