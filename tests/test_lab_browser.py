"""End to end, as a researcher uses the suite: JupyterLab on 127.0.0.1, a notebook opened in headless
Chromium (playwright driving Debian's chromium, no browser download), all cells run as committed,
a slider of the widget explorer moved, and the plotted image must change. Screenshots are saved
under the test's temporary directory. JupyterLab is shut down even when the test fails.

Needs the `playwright` package (test extra) and a chromium binary (`apt-get install chromium`;
`make test` installs it as root); elsewhere the test skips and says how to enable it.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: one notebook per paper whose explorer has a slider (missing ones are skipped)
NOTEBOOKS = [
    "srigl/01_output_norm_variance",
    "sltt/01_gradient_components",
    "ssgd/04_inputs",
    "lth/01_early_time_divergence",
]


def _chromium() -> str | None:
    return os.environ.get("SNNLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with a token, serving a copy of notebooks/."""
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the test extra)")
    if _chromium() is None:
        pytest.skip("no chromium binary: `apt-get install chromium` (make test does it as root) or set SNNLAB_CHROMIUM")
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "SNNLAB_RESULTS": os.environ.get("SNNLAB_RESULTS", str(root / "results"))}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"base": base, "token": token, "root": root}
    finally:
        try:
            req = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(req, timeout=5)
        except OSError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _output_images(page) -> list[str]:
    return page.eval_on_selector_all(".jp-OutputArea-output img", "els => els.map(e => e.src)")


def _slider_changes_the_plot(lab, name, tmp_path):
    path = lab["root"] / "notebooks" / f"{name}.ipynb"
    if not path.exists():
        pytest.skip(f"{name} is not in this checkout")
    interactive = json.loads(path.read_text())["cells"]
    assert any("INTERACTIVE = True" in "".join(c["source"]) for c in interactive), \
        f"{name}: the committed default must be INTERACTIVE = True so the explorer appears when run in JupyterLab"
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab['base']}/lab/tree/notebooks/{name}.ipynb?reset&token={lab['token']}")
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            select = page.locator(".jp-Dialog button:has-text('Select')")  # a kernel chooser, when one asks
            try:
                select.wait_for(timeout=5_000)
                select.click()
            except Exception:  # no dialog: the notebook's python3 kernel started by itself
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=30_000)
            page.click("text=Run All Cells", timeout=30_000)
            try:
                page.wait_for_selector(".widget-hslider .noUi-handle", state="attached", timeout=600_000)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=600_000)
            except Exception:
                page.screenshot(path=str(tmp_path / "timeout.png"), full_page=True)
                raise
            slider = page.query_selector_all(".widget-hslider .noUi-handle")[0]
            slider.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "before.png"))
            before = _output_images(page)
            slider.focus()
            for _ in range(8):
                page.keyboard.press("ArrowRight")
            page.wait_for_function("prev => { const now = Array.from(document.querySelectorAll("
                                   "'.jp-OutputArea-output img')).map(e => e.src); "
                                   "return now.join('|') !== prev.join('|'); }", arg=before, timeout=120_000)
            page.screenshot(path=str(tmp_path / "after.png"))
            assert _output_images(page) != before
        finally:
            browser.close()


# one class per notebook, so that `pytest -n 2 --dist loadscope` (make test; units in tests/conftest.py) spreads them over the workers
def _lab_class(name: str) -> type:
    @pytest.mark.notebook
    def test_slider_changes_the_plot(self, lab, tmp_path):
        _slider_changes_the_plot(lab, name, tmp_path)

    return type(f"TestLab_{name.replace('/', '_')}", (), {"test_slider_changes_the_plot": test_slider_changes_the_plot})


for _name in NOTEBOOKS:
    globals()[f"TestLab_{_name.replace('/', '_')}"] = _lab_class(_name)
