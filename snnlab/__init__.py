"""snnlab: a notebook-first reproduction suite for sparse and efficient spiking neural networks.

Sub-packages, one layer each (lowest first; a module imports only from its own layer or lower):
``checks``/``paths``; ``core`` (surrogate, neurons, models, encoding); ``data``, ``kernels``;
``sparsity``, ``grad``; ``train``; ``record`` (params, results, plotting, bench); ``studies``
(one per paper); ``suite`` (notebooks, report, cli). Import them explicitly, e.g.
``from snnlab.core import models``.
"""

import logging as _logging
import os as _os

# torch warns once per process that Triton is absent; on a CPU machine that is expected noise.
_logging.getLogger("torch._library.triton").setLevel(_logging.ERROR)

import torch as _torch  # noqa: E402  (after the logger above is quietened)

__version__ = "0.1.0"


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads: ``n``, else ``$SNNLAB_THREADS``, else 1.

    The suite's quick-profile networks are tiny: on a 2-core machine one thread is 10-100x faster
    than two, whose OpenMP workers spin against each other (and against any other process).
    Benchmarks set their own thread counts explicitly. Returns the number set.
    """
    if n is None:
        n = int(_os.environ.get("SNNLAB_THREADS", "1"))
    if n < 1:
        raise ValueError(f"threads={n!r} is invalid; allowed values: integers >= 1 (or set SNNLAB_THREADS)")
    _torch.set_num_threads(n)
    return n
