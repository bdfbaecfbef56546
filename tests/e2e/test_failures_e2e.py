"""Per-class failures in Chromium, on a real run trained here and evaluated through Ultralytics' validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omr_core.evaluation.evaluate import evaluate
from tests.conftest import ARTIFACTS
from tests.core.evaluation.trained_fixture import install_run, trained_run
from tests.e2e.conftest import start_server, stop_server, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_failures_page_on_an_evaluated_run(
    tmp_path_factory: pytest.TempPathFactory, dashboard_env: dict[str, str], browser_page: Any
) -> None:
    run = trained_run(tmp_path_factory.mktemp("evaluate-e2e"))
    ws = Path(dashboard_env["OMR_WORKSPACE"])
    installed = install_run(run.run, ws / "runs")
    ev = evaluate(installed / "weights" / "best.pt", run.data, "val", imgsz=160)

    url, proc, _ = start_server(dashboard_env)
    try:
        browser_page.goto(f"{url}/failures")
        wait_for_app(browser_page)
        main = browser_page.locator('[data-testid="stMain"]')
        main.get_by_text("Cached evaluation from").first.wait_for()
        assert browser_page.locator('[data-testid="stException"]').count() == 0
        # The per-class table is a canvas grid (not in the DOM text); the headline metrics are, and must be
        # Ultralytics' numbers of this evaluation.
        browser_page.locator('[data-testid="stDataFrame"]').first.wait_for()
        (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
        browser_page.screenshot(path=str(ARTIFACTS / "screenshots" / "failures-evaluated.png"), full_page=True)
        text = main.inner_text()
        for key in ("precision", "recall", "map50", "map50_95"):
            assert f"{ev.summary[key]:.3f}" in text, key
        assert "Classes without labels" in text
    finally:
        stop_server(proc)
