"""Per-class failures in Chromium, tab Notes read right: a person types the data.yaml of engraved pages, opens the
tab, presses "Read the notes" and sees the notes read right next to mAP and the wrong notes as crops."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from omr_core.evaluation.notes import load_notes
from tests.conftest import ARTIFACTS, REPO
from tests.core.evaluation.test_notes import engraved_evaluation
from tests.e2e.conftest import start_server, stop_server, wait_for_app
from tests.e2e.test_audit_e2e import _choose, _metric, _type

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_person_reads_the_notes_of_an_evaluation(
    dashboard_env: dict[str, str], browser_page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Path(dashboard_env["OMR_WORKSPACE"])
    monkeypatch.setenv("OMR_WORKSPACE", str(ws))  # the evaluation goes where the page looks for it
    ev = engraved_evaluation(ws / "datasets", split="train")
    url, proc, _ = start_server({**dashboard_env, "OMR_MODELS_DIR": str(REPO / "models")})
    p = browser_page
    try:
        p.goto(f"{url}/failures")
        wait_for_app(p)
        _type(p, "data.yaml", str(ev.data))
        main = p.locator('[data-testid="stMain"]')
        main.get_by_text("Not evaluated with these settings yet").wait_for()  # the val split is offered first
        split = main.locator('[data-testid="stSelectbox"]').filter(has_text="Split").locator("input[role='combobox']")
        split.click()
        p.get_by_role("option", name="train", exact=True).click()
        wait_for_app(p)
        main.get_by_text("Cached evaluation from").first.wait_for(timeout=60_000)
        assert main.get_by_text("Notes: pitch right").count() == 0  # not read yet
        p.get_by_role("tab", name="Notes read right").click()
        p.get_by_text("2 evaluated pages carry note truth").wait_for()
        p.get_by_role("button", name="Read the notes").click()
        main.get_by_text("Notes: pitch right", exact=True).wait_for(timeout=240_000)
        wait_for_app(p)
        assert p.locator('[data-testid="stException"]').count() == 0
        notes = load_notes(ev, 0.25)
        assert notes is not None and notes.pages == 2 and notes.notes > 50
        # next to mAP, the numbers of the reading written to the evaluation folder
        assert _metric(p, "mAP50") == f"{ev.summary['map50']:.3f}"
        assert _metric(p, "Notes: pitch right") == f"{notes.pitch_share:.3f}"
        assert _metric(p, "Notes: pitch + duration") == f"{notes.both_share:.3f}"
        w = notes.wrong[0]
        panel = p.get_by_role("tabpanel", name="Notes read right")
        panel.get_by_text(f"should be {w.truth} · read {w.read} · {w.cause}").first.wait_for()
        crops = panel.locator('[data-testid="stImage"] img')
        assert crops.count() == min(len(notes.wrong), 24)
        box = crops.first.bounding_box()
        assert box is not None and box["width"] > 40 and box["height"] > 40
        # the person narrows the list to one cause
        assert len(notes.causes()) >= 2, notes.causes()
        cause, n = notes.causes()[-1]
        _choose(p, "fail_notes_cause", cause)
        p.get_by_text(f"{n} wrong notes · green").wait_for()
        # the header comes first; the previous list's crops leave the page when the rerun ends: wait for that state
        captions = panel.get_by_text(re.compile(r"^should be "))
        expect(captions).to_have_count(min(n, 24), timeout=120_000)
        shown = captions.all_inner_texts()
        assert len(shown) == min(n, 24) and all(cause in t for t in shown), shown
        (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / "screenshots" / "failures-notes.png"), full_page=True)
    finally:
        stop_server(proc)
