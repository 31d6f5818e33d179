"""One fresh results root for the whole test session.

Notebook tests (papermill) and nbval kernels inherit ``SNNLAB_RESULTS``, so notebooks that share
cached training runs (``results/_cache``) train them once per session, and nothing is written into
the working tree's ``results/``. A user's own ``SNNLAB_RESULTS`` is respected.
"""

import os
import tempfile


def pytest_configure(config):
    if "SNNLAB_RESULTS" not in os.environ:
        os.environ["SNNLAB_RESULTS"] = tempfile.mkdtemp(prefix="snnlab-test-results-")
