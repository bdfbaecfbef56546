"""In Chromium at 1280 and 1920 px: labels, pills and metrics are not cut short (text wider than its box)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.core.review.recon_fixtures import draw_page, notehead, png_bytes, stem
from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e

WIDTHS = (1280, 1920)

#: Text a person reads in one line: pills, button labels, metric values and labels, widget labels, multiselect chips.
_CLIPPED_JS = """
() => {
  const sel = ['[data-testid="stButtonGroup"] button', '[data-testid="stMetricValue"]', '[data-testid="stMetricLabel"]',
               '[data-testid="stWidgetLabel"] p', '[data-baseweb="tag"]', '[data-baseweb="select"]',
               '[data-testid="stBaseButton-secondary"]', '[data-testid="stBaseButton-primary"]'];
  const clips = e => ['hidden', 'clip', 'auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                  || ['hidden', 'clip'].includes(getComputedStyle(e).overflowY);
  const out = [];
  for (const el of document.querySelectorAll(sel.map(s => '[data-testid="stMain"] ' + s).join(','))) {
    if (el.offsetParent === null) continue;  // hidden (another tab)
    // Text wider than its own box (cut or ellipsised) ...
    // (Streamlit ellipsises labels with a one-line clamp: the overflow shows in the height, not the width.)
    const over = e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1;
    let cut = [el, ...el.querySelectorAll('*')].some(e => over(e) && clips(e));
    // ... or the element pushed out of an ancestor that hides what overflows (a row of pills that does not wrap).
    const r = el.getBoundingClientRect();
    for (let a = el.parentElement; a && !cut && a.dataset.testid !== 'stMain'; a = a.parentElement) {
      if (clips(a)) { const ar = a.getBoundingClientRect(); cut = r.right > ar.right + 1 || r.left < ar.left - 1; }
    }
    if (cut) out.push(el.innerText.trim() || el.getAttribute('aria-label') || el.dataset.testid);
  }
  return out;
}
"""


def clipped(page: Any) -> list[str]:
    """Texts on the page whose element is narrower than the text (cut off or ellipsised)."""
    return list(page.evaluate(_CLIPPED_JS))


def _page_files(tmp: Path) -> tuple[Path, Path]:
    p = draw_page(tops=(200, 420), join=(0,))
    heads = []
    for i, cy in enumerate((271, 251, 231)):
        box = notehead(p.gray, 400 + 80 * i, cy, 20)
        stem(p.gray, int(box[2]) - 2, cy - 70, cy - 3)
        heads.append({"bbox": list(box), "name": "noteheadBlackInSpace"})
    box = notehead(p.gray, 700, 181, 20)
    p.gray[180:182, int(box[0]) - 5 : int(box[2]) + 5] = 0
    heads.append({"bbox": list(box), "name": "noteheadWholeOnLine"})
    page, hj = tmp / "page.png", tmp / "heads.json"
    page.write_bytes(png_bytes(p.gray))
    hj.write_text(json.dumps(heads))
    return page, hj


def test_review_layers_are_not_clipped(dashboard_server: str, browser_page: Any, tmp_path: Path) -> None:
    page_png, heads = _page_files(tmp_path)
    page = browser_page
    page.goto(f"{dashboard_server}/review")
    wait_for_app(page)
    page.locator('.st-key-rv_page input[type="file"]').set_input_files(str(page_png))
    wait_for_app(page)
    page.locator('.st-key-rv_heads input[type="file"]').set_input_files(str(heads))
    wait_for_app(page)
    page.get_by_text("ledger lines (rebuilt)", exact=True).wait_for()
    for w in WIDTHS:
        page.set_viewport_size({"width": w, "height": 1000})
        wait_for_app(page)
        page.screenshot(path=str(ARTIFACTS / "screenshots" / f"review-{w}.png"), full_page=True)
        assert clipped(page) == [], f"clipped at {w} px"


def _settled(page: Any) -> None:
    """Wait until no element is a loading skeleton (a live fragment re-renders every second)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')"
                           " && document.querySelectorAll('[data-testid=\"stMetricValue\"]').length > 0", timeout=60_000)


def _check_widths(page: Any, name: str, ready: Any = None) -> None:
    for w in WIDTHS:
        page.set_viewport_size({"width": w, "height": 1100})
        wait_for_app(page)
        if ready is not None:
            ready()
        page.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}-{w}.png"))
        assert clipped(page) == [], f"{name}: clipped at {w} px"


def test_training_and_compare_are_not_clipped(dashboard_env: dict[str, str], dashboard_server: str, browser_page: Any) -> None:
    import subprocess

    import psutil

    from tests.core.training.run_fixtures import write_run

    runs = Path(dashboard_env["OMR_WORKSPACE"]) / "runs"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        ctime = psutil.Process(sleeper.pid).create_time()
        write_run(runs / "yolov8n-sheet-music-long-name", epochs_done=0, epochs=10, batch_epochs=1, state="running",
                  pid=sleeper.pid, pid_create_time=ctime)
        write_run(runs / "sgd", epochs_done=12, epochs=12, state="finished", args={"optimizer": "SGD"})
        page = browser_page
        page.goto(dashboard_server)
        wait_for_app(page)
        page.get_by_text("Epoch in progress").first.wait_for()
        _check_widths(page, "training", lambda: _settled(page))
        page.goto(f"{dashboard_server}/compare")
        wait_for_app(page)
        page.get_by_text("Best and final").first.wait_for()  # both runs are picked by default (the recent ones)
        _check_widths(page, "compare")
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.slow
def test_failures_page_is_not_clipped(
    tmp_path_factory: pytest.TempPathFactory, dashboard_env: dict[str, str], dashboard_server: str, browser_page: Any
) -> None:
    from omr_core.evaluation.evaluate import evaluate
    from tests.core.evaluation.trained_fixture import install_run, trained_run

    run = trained_run(tmp_path_factory.mktemp("evaluate-layout"))
    installed = install_run(run.run, Path(dashboard_env["OMR_WORKSPACE"]) / "runs")
    evaluate(installed / "weights" / "best.pt", run.data, "val", imgsz=160)  # the page's defaults: a cache hit
    page = browser_page
    page.goto(f"{dashboard_server}/failures")
    wait_for_app(page)
    page.get_by_text("Cached evaluation from").first.wait_for()
    assert page.get_by_role("button", name="Re-evaluate").count() == 1
    _check_widths(page, "failures-table")
    page.get_by_role("tab", name="Galleries").click()
    page.get_by_text("Kinds", exact=True).first.wait_for()
    _check_widths(page, "failures-galleries")
    page.get_by_role("tab", name="Confusion matrix").click()
    page.locator(".st-key-fail_cm_chart").first.wait_for()
    _check_widths(page, "failures-confusion")
