"""In Chromium: a person adds a notification target, sends a test message that a real receiver gets, and a run
link from a message opens that run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS
from tests.core.training.run_fixtures import write_run
from tests.e2e.conftest import wait_for_app
from tests.e2e.test_training_e2e import _click, wait_text
from tests.notify_receiver import SECRET, Receiver

pytestmark = pytest.mark.e2e


def test_add_target_send_test_and_follow_a_run_link(
    dashboard_env: dict[str, str], receiver: Receiver, browser_page: Any
) -> None:
    ws = Path(dashboard_env["OMR_WORKSPACE"])
    write_run(ws / "runs" / "alpha", epochs_done=3, epochs=3, state="finished")
    write_run(ws / "runs" / "beta", epochs_done=2, epochs=5, state="stopped")
    from tests.e2e.conftest import start_server, stop_server

    url, proc, _ = start_server(dashboard_env)
    try:
        page = browser_page
        page.goto(f"{url}/training")
        wait_for_app(page)
        page.get_by_text("Notifications", exact=True).click()
        page.get_by_text("No notification target yet").wait_for()
        box = page.get_by_label("Apprise URL", exact=False)
        box.fill(receiver.url)
        box.press("Enter")
        wait_text(page, r"1\. json://127… → every event")
        expect(box).to_have_value("")  # the secret leaves the page once saved (the box is drawn after the list)
        assert SECRET not in page.content()
        _click(page, "nt_test")
        wait_text(page, r"Target 1 \(json://127…\): sent")
        assert [m["title"] for m in receiver.got] == ["OMR dashboard: test message"]
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "notifications.png"), full_page=True)

        for name in ("alpha", "beta"):  # the link a message carries: /training?run=NAME
            page.goto(f"{url}/training?run={name}")
            wait_for_app(page)
            page.get_by_role("heading", name=re.compile(rf"^{name}\b")).first.wait_for()  # the watched run's panel
    finally:
        stop_server(proc)
