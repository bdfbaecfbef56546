"""First start in Chromium: Review a score offers the shipped model and runs it on an uploaded page as trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.conftest import start_server, stop_server, wait_for_app
from tests.tiny_reading_model import TinyModel, train_tiny_reading_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_reading_model(tmp_path_factory.mktemp("tiny-e2e"))


def test_upload_is_reviewed_with_the_shipped_model(tiny: TinyModel, dashboard_env: dict[str, str], tmp_path: Path,
                                                   browser_page: Any) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(tiny.weights, models / "reading-tiny.pt")
    test = json.loads((tiny.synth / "deepscores_test.json").read_text())
    page_png = tiny.synth / "images" / test["images"][0]["filename"]
    url, proc, log = start_server({**dashboard_env, "OMR_MODELS_DIR": str(models)})
    try:
        p = browser_page
        p.goto(f"{url}/review")
        wait_for_app(p)
        p.get_by_role("heading", name="Review a score").first.wait_for()
        main = p.locator('[data-testid="stMain"]')
        p.get_by_text("Upload a score page to start").wait_for()
        shown = p.locator('[data-testid="stSelectbox"]').first.evaluate(
            "e => e.innerText + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' ')")
        assert "Model" in shown and "reference: reading-tiny" in shown, shown  # the default, nothing chosen
        # A person clicks "Browse files" under "Score page" and picks the page.
        with p.expect_file_chooser() as fc:
            p.get_by_role("region", name="Score page").get_by_test_id("stBaseButton-secondary").click()
        fc.value.set_files(str(page_png))
        p.get_by_text("Model run: tiled 640 px → imgsz 64,").wait_for(timeout=240_000)
        wait_for_app(p)
        text = main.inner_text()
        assert "NMS-merged" in text and "Reference model shipped with the project" in text
        assert p.locator('[data-testid="stException"]').count() == 0
        assert "does not record how it was trained" not in text
        assert int(p.get_by_test_id("stMetricValue").first.inner_text()) >= 3  # staves found on the engraved page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser_page.screenshot(path=str(ARTIFACTS / "review-shipped-model.png"), full_page=True)
        stop_server(proc)
        if proc.returncode not in (0, -15, None):
            print(log.read_text(errors="replace")[-3000:])
