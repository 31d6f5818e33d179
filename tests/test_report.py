"""The HTML report: a claims dashboard by kind and verdict, provenance beside the paper's number,
figure captions from the figure map, the commit per notebook; offline; checked in a real browser."""

import os
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from snnlab.record import results
from snnlab.suite import notebooks, report


def _demo_results(root: Path) -> Path:
    plt.switch_backend("Agg")
    rec = results.Recorder("srigl", "02_dynamic_sparse_training", root=root, params={"seed": 0})
    rec.claim("c1", "a statement", ours=1.0, paper=2.0, passed=False, test="ours == paper", kind="reproduction",
              provenance="Table 9")
    rec.claim("c2", "an invariant", ours=0, passed=True, test="spread == 0", kind="sanity")
    rec.claim("c3", "beyond the paper", ours=3, passed=None, test="needs a GPU", kind="finding", note="no GPU")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    rec.savefig(fig, "fig11_layer_widths")
    rec.savefig(fig, "not_in_the_map")
    rec.finish()
    run = notebooks.RunResult("srigl/02_dynamic_sparse_training", "quick", True, 1.0, 100.0, "")
    return report.write_report([run], results_dir=root)


def test_report_counts_kinds_and_shows_provenance_and_captions(tmp_path):
    page = _demo_results(tmp_path).read_text()
    assert "3 claims: 1 reproduction claims (0 hold at this scale), 1 findings" in page
    assert "1 sanity checks (invariants and algebra: shown, never counted as reproduced)" in page
    assert "<td>Table 9</td>" in page and "does not hold" in page and "not run" in page
    assert "Fig. 11: layer widths at the end of training at 99% sparsity" in page  # caption from paper.yaml
    assert "ours, beyond the paper&#x27;s figures" in page  # a figure the map does not name (html-escaped)
    assert "commit " in page and "srigl/02_dynamic_sparse_training/quick/figures/fig11_layer_widths.png" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # offline
    assert "<h2>Sweeps</h2>" not in page  # no sweep has run


def test_report_links_every_sweep_page(tmp_path):
    for grid, n in (("lr", 3), ("seeds", 0)):
        d = tmp_path / "_sweeps" / "srigl" / "02_dynamic_sparse_training" / "quick" / grid
        d.mkdir(parents=True)
        (d / "index.html").write_text("<html></html>")
        (d / "runs.csv").write_text("run,lr\n" + "".join(f"r{i},0.{i}\n" for i in range(n)))
    page = _demo_results(tmp_path).read_text()
    assert "<h2>Sweeps</h2>" in page
    assert "<a href='_sweeps/srigl/02_dynamic_sparse_training/quick/lr/index.html'>lr</a></td><td>3</td>" in page
    assert "<a href='_sweeps/srigl/02_dynamic_sparse_training/quick/seeds/index.html'>seeds</a></td><td>0</td>" in page


def _chromium() -> str | None:
    return os.environ.get("SNNLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_a_browser(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium: `apt-get install chromium` (make test installs it as root), or set SNNLAB_CHROMIUM")
    page_path = _demo_results(tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(page_path.as_uri())
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
            assert images and all(done and width > 0 for done, width in images), images
            assert page.locator("h2#srigl").count() == 1
            assert page.locator("text=Claims dashboard").count() == 1
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
