"""One fresh results root and one native-kernel directory for the whole test session.

Notebook tests (papermill) and nbval kernels inherit ``SNNLAB_RESULTS``, so notebooks that share
cached training runs (``results/_cache``) train them once per session, and nothing is written into
the working tree's ``results/``. ``SNNLAB_KERNEL_DIR`` makes the condensed-linear C kernel compile
under the session's temporary directory instead of ``~/.cache``. A user's own settings are respected.
"""

import os
import tempfile

import pytest


def pytest_configure(config):
    if "SNNLAB_RESULTS" not in os.environ:
        os.environ["SNNLAB_RESULTS"] = tempfile.mkdtemp(prefix="snnlab-test-results-")
    if "SNNLAB_KERNEL_DIR" not in os.environ:
        os.environ["SNNLAB_KERNEL_DIR"] = tempfile.mkdtemp(prefix="snnlab-test-kernels-")



# --- scheduling under `pytest -n 2 --dist loadgroup` (make test) -----------------------------------
# Every test gets an xdist group. A paper's notebook runs (tests/test_notebooks.py) and its nbval
# runs (notebooks/<paper>/*.ipynb) share one group, in that order, so nbval re-executes a notebook
# after its papermill run on the same worker and reuses that run's cached trainings (the cache key
# is config + data + code, so a hit is the same computation); other tests keep loadscope's units
# (a class, or a module). The heaviest groups are queued first (`--no-loadscope-reorder` keeps this
# order), so the two workers finish together.
_FIRST = ("nb-lth", "nb-srigl", "nb-sltt", "nb-ssgd", "tests/test_sweep.py", "tests/test_lab_browser.py", "nb-basics")


def _group(item) -> str:
    nodeid = item.nodeid
    path = nodeid.split("::", 1)[0]
    if path.startswith("notebooks/"):
        return "nb-" + path.split("/")[1]
    if path == "tests/test_notebooks.py" and "::TestQuickProfile_" in nodeid:
        return "nb-" + nodeid.split("::TestQuickProfile_", 1)[1].split("::", 1)[0]
    return nodeid.rsplit("::", 1)[0] if "::" in nodeid else nodeid


def _rank(group: str) -> int:
    for i, g in enumerate(_FIRST):
        if group == g or group.startswith(g + "::"):
            return i
    return len(_FIRST)


@pytest.hookimpl(tryfirst=True)  # before xdist appends the group to each node id
def pytest_collection_modifyitems(config, items):
    groups = {id(item): _group(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[id(item)]))
    items.sort(key=lambda item: _rank(groups[id(item)]))  # stable: a group keeps its own order
