"""In Chromium: a person reorders, holds and cancels queued runs that wait for a busy CPU, and sees the page follow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from omr_core.training import queue
from omr_core.training.spec import build_spec
from tests.conftest import ARTIFACTS
from tests.core.training.run_fixtures import write_run
from tests.e2e.conftest import start_server, stop_server, wait_for_app
from tests.e2e.test_training_e2e import wait_text

pytestmark = pytest.mark.e2e


def _queue_text(page: Any) -> str:
    txt = page.locator('[data-testid="stMain"]').inner_text()
    return txt[txt.index("Queue ("):]


def test_reorder_hold_and_cancel_in_the_browser(dashboard_env: dict[str, str], browser_page: Any) -> None:
    runs = Path(dashboard_env["OMR_WORKSPACE"]) / "runs"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    url, proc, _ = start_server(dashboard_env)
    try:
        write_run(runs / "busy", epochs_done=1, epochs=9, state="running", pid=sleeper.pid,
                  pid_create_time=psutil.Process(sleeper.pid).create_time(), args={"device": "cpu"})
        for n in ("first", "second"):
            queue.add(build_spec(n, "yolov8n.yaml", "coco8.yaml", args={"device": "cpu"}, deep=False), runs)
        ids = {e.name: e.id for e in queue.entries(runs)}
        page = browser_page
        page.goto(f"{url}/training")
        wait_for_app(page)
        wait_text(page, r"Queue \(2 in line\)")
        q = _queue_text(page)
        assert q.index("first") < q.index("second")

        page.locator(f".st-key-q_down_{ids['first']} button").first.click()
        wait_text(page, r"second[\s\S]*first")  # the page shows the new order
        assert [e.name for e in queue.entries(runs)] == ["second", "first"]

        page.locator(f".st-key-q_hold_{ids['second']} button").first.click()
        page.locator(f".st-key-q_hold_{ids['second']} button").first.get_by_text("play_arrow", exact=True).wait_for()  # the release icon
        assert [e.state for e in queue.entries(runs)] == ["held", "waiting"]
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "queue.png"), full_page=True)

        page.locator(f".st-key-q_cancel_{ids['first']} button").first.click()
        wait_text(page, r"Queue \(1 in line\)")
        assert [e.name for e in queue.entries(runs)] == ["second"]
    finally:
        stop_server(proc)
        pid = queue.runner_pid(runs)
        if pid:
            psutil.Process(pid).kill()
        sleeper.kill()
        sleeper.wait()
