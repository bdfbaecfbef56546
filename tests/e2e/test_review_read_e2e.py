"""The Review page's "Read the music" view in Chromium: a person uploads an engraved page and its JSON,
switches "Read the notes" on and sees each system rendered back next to the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omr_core.datasets.synth import synth_dataset
from tests.conftest import ARTIFACTS
from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e


def test_read_view_shows_the_music_read_back(tmp_path: Path, dashboard_server: str, browser_page: Any) -> None:
    out = tmp_path / "engraved"
    synth_dataset(out, pages=1, seed=31, test_fraction=0.0)
    png = next((out / "images").glob("*.png"))
    page = browser_page
    page.goto(f"{dashboard_server}/review")
    wait_for_app(page)
    inputs = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    inputs.first.set_input_files(str(png))  # the person picks the page in the file dialog
    page.get_by_text("Read the music").wait_for()
    wait_for_app(page)
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Symbols to read")
    uploader.locator('input[type="file"]').set_input_files(str(out / "deepscores_train.json"))
    wait_for_app(page)
    page.get_by_text("Read the notes").click()
    main = page.locator('[data-testid="stMain"]')
    main.get_by_text("as read:").first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    text = main.inner_text()
    assert "Notes read right" in text and "System 1 on the page" in text
    shown = page.locator('[data-testid="stImage"] img')
    assert shown.count() >= 2
    # the rendering is verovio's SVG, drawn by the browser with a real size
    svg_img = [i for i in range(shown.count()) if "svg" in (shown.nth(i).get_attribute("src") or "")]
    assert svg_img, [shown.nth(i).get_attribute("src")[:60] for i in range(shown.count())]
    box = shown.nth(svg_img[0]).bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 50
    assert page.get_by_role("button", name="MusicXML").count() == 1 and page.get_by_role("button", name="MIDI").count() == 1
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    shown.nth(svg_img[0]).scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "screenshots" / "review-read.png"))
