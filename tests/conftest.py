"""One fresh results root and one native-kernel directory for the whole test session.

Notebook tests (papermill) and nbval kernels inherit ``SNNLAB_RESULTS``, so notebooks that share
cached training runs (``results/_cache``) train them once per session, and nothing is written into
the working tree's ``results/``. ``SNNLAB_KERNEL_DIR`` makes the condensed-linear C kernel compile
under the session's temporary directory instead of ``~/.cache``. A user's own settings are respected.
"""

import os
import tempfile

import pytest
from xdist.scheduler import LoadScopeScheduling


def pytest_configure(config):
    if "SNNLAB_RESULTS" not in os.environ:
        os.environ["SNNLAB_RESULTS"] = tempfile.mkdtemp(prefix="snnlab-test-results-")
    if "SNNLAB_KERNEL_DIR" not in os.environ:
        os.environ["SNNLAB_KERNEL_DIR"] = tempfile.mkdtemp(prefix="snnlab-test-kernels-")


# --- scheduling under `pytest -n 2 --dist loadscope` (make test) ----------------------------------
# loadscope sends each unit of work (a class, a module, a notebook's nbval cells) to one worker. Here
# a paper's notebook runs (tests/test_notebooks.py::TestQuickProfile_<paper>) and its nbval runs
# (notebooks/<paper>/*.ipynb) form one unit, in that order, so nbval re-executes a notebook after
# its papermill run on the same worker and reuses that run's cached trainings (the cache key is
# config + data + code, so a hit is the same computation). The heaviest units are queued first
# (`--no-loadscope-reorder` keeps the collection order this hook sets), so the two workers finish
# together. (xdist's own `--dist loadgroup` does not group nbval's cells here: their node ids get no
# group suffix, so one notebook's cells were spread over both workers and lost their kernel state.)
_FIRST = ("nb-lth", "nb-srigl", "nb-sltt", "nb-ssgd", "tests/test_sweep.py", "tests/test_lab_browser.py", "nb-basics")


def _scope(nodeid: str) -> str:
    """The unit of work of a node id: ``nb-<paper>`` for a paper's notebook runs and nbval cells,
    otherwise loadscope's (the node id up to its last ``::``: a class or a module)."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("notebooks/"):
        return "nb-" + path.split("/")[1]
    if path == "tests/test_notebooks.py" and "::TestQuickProfile_" in nodeid:
        return "nb-" + nodeid.split("::TestQuickProfile_", 1)[1].split("::", 1)[0]
    return nodeid.rsplit("::", 1)[0] if "::" in nodeid else nodeid


def _rank(scope: str) -> int:
    for i, g in enumerate(_FIRST):
        if scope == g or scope.startswith(g + "::"):
            return i
    return len(_FIRST)


class _PaperScopes(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return _scope(nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    return _PaperScopes(config, log) if config.getvalue("dist") == "loadscope" else None


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _rank(_scope(item.nodeid)))  # stable: a unit keeps its own order
