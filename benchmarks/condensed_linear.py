"""CPU benchmark of the condensed linear layer (SRigL, Lasby et al. 2024, Appendix I).

One 3072 -> 768 fully-connected layer in float32 (the shape of ViT-B/16's last MLP projection),
online inference (``torch.inference_mode``) at batch sizes 1-64 and 1-2 threads, for sparsities
80/90/95/99%. Every baseline is the fastest of its candidate implementations, per cell (the
winner is recorded; ``snnlab.studies.srigl.bench.CANDIDATES``):

* ``dense``: ``nn.Linear`` (``dense_linear``, the paper's own baseline), ``torch.addmm`` with the weight
  pre-transposed once to a contiguous [n_in, n_out] (``dense_addmm``), ``torch.mm`` with that weight
  and an in-place bias (``dense_mm``), and at batch 1 ``torch.addmv`` (``dense_addmv``);
* ``csr``: ``torch.sparse_csr_tensor`` (unstructured mask of the same budget) times x^T plus bias
  (``csr_addmm``), and at batch 1 ``torch.addmv`` (``csr_addmv``);
* ``structured``: the dense candidates over the neurons SRigL keeps (ablated rows removed);
* ``condensed``: :class:`snnlab.sparsity.condensed.CondensedLinear` (int32 indices, native kernel);
  ``condensed_int64``: the same with int64 indices; ``condensed_torch``: the same layer through
  pure torch ops (index_select+mul+sum at batch 1, ``F.embedding_bag`` above).

The paper used a trained ViT-B/16 layer, which is not available offline. Here the dense weight is
``nn.Linear``'s iid init and the masks come from SRigL-style one-shot magnitude selection
(:func:`snnlab.sparsity.dst.srigl_mask_from_weight`): salient set = top-K |W| of the layer,
neurons with fewer than max(1, γ_sal·K/out) salient weights are ablated, the budget K is
redistributed as a constant fan-in over the kept neurons. γ_sal defaults to 0.95, the value the
paper used for ViT-B/16 (Appendix E); with iid weights this ablates the neurons whose salient count
falls below 95% of the mean. The CSR baseline uses the unstructured top-K mask (what RigL keeps).

Timing: ``snnlab.record.bench.time_fn`` (median after warm-up); every (threads, sparsity, batch) cell
runs all methods in several rounds in shuffled order and pools the repeats, so that load from
other processes on a shared machine hits all methods alike. The load average, the machine and
the code (git commit, dirty flag) are recorded.
``torch.compile`` (inductor, default mode) is tried for dense and the pure-torch condensed formula
at 90% sparsity; ``--no-compile`` skips it (the paper used max-autotune, which takes far longer to
compile on CPU).

The measurement code is :mod:`snnlab.studies.srigl.bench` (shared with ``notebooks/srigl/04_condensed_benchmark``);
this script chooses the grid and writes the JSON.

Usage: ``python benchmarks/condensed_linear.py [--quick] [--out PATH] [--no-compile]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from snnlab.paths import atomic_write_json  # noqa: E402
from snnlab.studies.srigl import bench as cb  # noqa: E402

# the measurement code lives in snnlab.studies.srigl.bench (shared with notebooks/srigl/04); re-exported
N_IN, N_OUT, TARGETS = cb.N_IN, cb.N_OUT, cb.TARGETS
build_layers, methods_for, check_outputs, targets, try_compile = (
    cb.build_layers, cb.methods_for, cb.check_outputs, cb.targets, cb.try_compile)


def run(args) -> dict:
    """The benchmark for parsed command-line ``args`` (see ``main``)."""
    quick = bool(args.quick)
    return cb.run_cpu(
        sparsities=[0.9] if quick else [0.8, 0.9, 0.95, 0.99],
        batches=[1, 64] if quick else [1, 2, 4, 8, 16, 32, 64],
        threads=[1] if quick else [1, 2],
        rounds=2 if quick else args.rounds,
        repeats=10 if quick else args.repeats,
        warmup=args.warmup,
        gamma_sal=args.gamma_sal,
        seed=args.seed,
        quick=quick,
        compile=args.compile,
        compile_budget=args.compile_budget,
    )


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
    cb.validate(rounds=args.rounds, repeats=args.repeats, warmup=args.warmup, gamma_sal=args.gamma_sal)
    out = args.out or ROOT / "benchmarks" / "results" / (
        "condensed_linear_cpu_quick.json" if args.quick else "condensed_linear_cpu.json")
    result = run(args)
    atomic_write_json(out, result)
    print(json.dumps(result["targets"], indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
