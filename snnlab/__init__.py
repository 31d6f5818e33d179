"""snnlab: a notebook-first reproduction suite for sparse and efficient spiking neural networks.

Modules (import them explicitly, e.g. ``from snnlab import neurons``):
surrogate, neurons, models, data, train, pruning, sparsity_theory, sltt, bench, results,
plotting, papers, notebooks, cli.
"""

import logging as _logging

# torch warns once per process that Triton is absent; on a CPU machine that is expected noise.
_logging.getLogger("torch._library.triton").setLevel(_logging.ERROR)

__version__ = "0.1.0"


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads: ``n``, else ``$SNNLAB_THREADS``, else 1.

    The suite's quick-profile networks are tiny: on a 2-core machine one thread is 10-100x faster
    than two, whose OpenMP workers spin against each other (and against any other process).
    Benchmarks set their own thread counts explicitly. Returns the number set.
    """
    import os

    import torch

    if n is None:
        n = int(os.environ.get("SNNLAB_THREADS", "1"))
    if n < 1:
        raise ValueError(f"threads={n!r} is invalid; allowed values: integers >= 1 (or set SNNLAB_THREADS)")
    torch.set_num_threads(n)
    return n
