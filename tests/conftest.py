"""One fresh results root and one native-kernel directory for the whole test session.

Notebook tests (papermill) and nbval kernels inherit ``SNNLAB_RESULTS``, so notebooks that share
cached training runs (``results/_cache``) train them once per session, and nothing is written into
the working tree's ``results/``. ``SNNLAB_KERNEL_DIR`` makes the condensed-linear C kernel compile
under the session's temporary directory instead of ``~/.cache``. A user's own settings are respected.
"""

import os
import tempfile


def pytest_configure(config):
    if "SNNLAB_RESULTS" not in os.environ:
        os.environ["SNNLAB_RESULTS"] = tempfile.mkdtemp(prefix="snnlab-test-results-")
    if "SNNLAB_KERNEL_DIR" not in os.environ:
        os.environ["SNNLAB_KERNEL_DIR"] = tempfile.mkdtemp(prefix="snnlab-test-kernels-")

