"""In Chromium: launch a real CPU training from the page, watch it live, stop, resume, finish; SIGKILL + restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS, REPO
from tests.e2e.conftest import start_server, stop_server, wait_for_app

sys.path.insert(0, str(REPO / "tests" / "core" / "training"))
from tiny_dataset import make_tiny_dataset  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _text(page: Any) -> str:
    return str(page.locator('[data-testid="stMain"]').inner_text())


def wait_text(page: Any, pattern: str, timeout: float = 120) -> str:
    """Wait until the main area's text matches ``pattern`` (the monitor refreshes itself every second)."""
    rx = re.compile(pattern)
    deadline = time.time() + timeout
    txt = ""
    while time.time() < deadline:
        try:
            txt = _text(page)
        except Exception:  # the fragment re-renders under our feet
            txt = ""
        if rx.search(txt):
            return txt
        time.sleep(0.3)
    shot = ARTIFACTS / "screenshots" / f"timeout-{int(time.time())}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    raise AssertionError(f"{pattern!r} not on the page after {timeout} s (screenshot {shot}); text:\n{txt[-2000:]}")


def _fill(page: Any, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_app(page)


def _click(page: Any, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()


def test_launch_watch_stop_resume_finish(dashboard_env: dict[str, str], dashboard_server: str, browser_page: Any) -> None:
    ws = Path(dashboard_env["OMR_WORKSPACE"])
    make_tiny_dataset(ws / "datasets" / "tiny", n_train=16, n_val=4)
    page = browser_page
    page.goto(dashboard_server)
    wait_for_app(page)
    wait_text(page, r"Assigner memory forecast")  # the form found the dataset and forecast its memory
    _fill(page, "epochs", "8")
    _fill(page, "imgsz", "64")
    _fill(page, "batch (-1 AutoBatch)", "4")
    _fill(page, "run name", "e2e")
    page.get_by_text("More arguments").click()
    area = page.get_by_label("Extra Ultralytics arguments, one key=value per line")
    area.fill("workers=0")
    area.press("Control+Enter")
    wait_for_app(page)
    page.get_by_role("button", name=re.compile("Launch training")).click()

    # Stop mid-epoch, chosen while the run starts (the default waits for the end of the epoch, and epochs of
    # this tiny run pass in seconds: the next one may be the last).
    page.locator(".st-key-stop_when_e2e").get_by_text("after this batch", exact=True).click()
    wait_text(page, r"Stops after (batch \d+/4 of epoch \d+|the batch in progress)")
    # Live: the batch line of epoch 2 appears while the run trains.
    wait_text(page, r"Last batch [\d:]+: epoch [2-7], batch \d+/4")
    assert (ws / "runs" / "e2e" / "run.json").exists()
    assert page.locator('[data-testid="stException"]').count() == 0
    _click(page, "stop_e2e")
    txt = wait_text(page, r"stopped on request")
    stopped_epoch = int(re.search(r"Last epoch (\d+)", txt).group(1))  # type: ignore[union-attr]
    assert 1 <= stopped_epoch < 8
    assert (ws / "runs" / "e2e" / "weights" / "last_resumable.pt").exists()

    _click(page, "resume_e2e")
    wait_text(page, r"Last epoch 8 ", timeout=180)
    wait_text(page, r"e2e\s*finished")
    page.screenshot(path=str(ARTIFACTS / "screenshots" / "training-finished.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_sigkill_shows_failed_and_restart_reattaches(dashboard_env: dict[str, str], browser_page: Any) -> None:
    ws = Path(dashboard_env["OMR_WORKSPACE"])
    data = make_tiny_dataset(ws / "datasets" / "tiny", n_train=16, n_val=4)
    # Started from the CLI, which exits at once: nobody but the dashboard watches this worker.
    out = subprocess.run(
        [sys.executable, "-m", "omr_core.cli", "train", "--data", str(data), "--name", "victim", "--epochs", "30",
         "--imgsz", "64", "--batch", "4", "--device", "cpu", "workers=0"],
        capture_output=True, text=True, env={**os.environ, **dashboard_env}, cwd=REPO, check=True, timeout=120,
    )
    assert len(out.stdout.strip().splitlines()) == 1, out.stdout  # only the run folder: scripts capture it
    run_dir = Path(out.stdout.strip())
    page = browser_page
    url, proc, _ = start_server(dashboard_env)
    try:
        page.goto(url)
        wait_for_app(page)
        wait_text(page, r"Last batch [\d:]+: epoch [2-9]")
    finally:
        stop_server(proc)  # the dashboard goes away; the run must not

    url, proc, _ = start_server(dashboard_env)  # restart: re-attach
    try:
        page.goto(url)
        wait_for_app(page)
        wait_text(page, r"victim\s*running")
        before = re.search(r"epoch (\d+), batch", _text(page))
        pid = int(__import__("json").loads((run_dir / "run.json").read_text())["pid"])
        wait_text(page, rf"Last batch [\d:]+: epoch (?!{before.group(1) if before else 0},)\d+")  # still live
        os.killpg(pid, signal.SIGKILL)
        txt = wait_text(page, r"worker vanished")
        assert re.search(r"victim\s*failed", txt) and re.search(r"Last epoch \d+ · mAP50-95", txt)
        assert page.locator(".st-key-resume_victim button").first.is_enabled()
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "training-vanished.png"), full_page=True)
    finally:
        stop_server(proc)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass
