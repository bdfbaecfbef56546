"""In Chromium: launch a real CPU training from the page, watch it live, stop, resume, finish; SIGKILL + restart."""

from __future__ import annotations

import json
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
from tests.core.training.tiny_dataset import make_tiny_dataset
from tests.e2e.conftest import start_server, stop_server, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _text(page: Any) -> str:
    return str(page.locator('[data-testid="stMain"]').inner_text())


def wait_text(page: Any, *patterns: str, timeout: float = 120) -> str:
    """Wait until one reading of the main area's text matches every pattern; returns that text.

    One reading for all: the monitor re-renders itself every second, and a reading taken mid-render can hold one
    line of the new state without another (the reason a check made after the wait is not enough).
    """
    rxs = [re.compile(p) for p in patterns]
    deadline = time.time() + timeout
    txt = ""
    while time.time() < deadline:
        try:
            txt = _text(page)
        except Exception:  # the fragment re-renders under our feet
            txt = ""
        if all(rx.search(txt) for rx in rxs):
            return txt
        time.sleep(0.3)
    pattern = " and ".join(map(repr, patterns))
    shot = ARTIFACTS / "screenshots" / f"timeout-{int(time.time())}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    raise AssertionError(f"{pattern} not on the page after {timeout} s (screenshot {shot}); text:\n{txt[-2000:]}")


def _fill(page: Any, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_app(page)


def _click(page: Any, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()


def _freeze_worker_from_epoch(run_dir: Path, epoch: int, timeout: float = 180) -> tuple[int, int]:
    """SIGSTOP the run's worker (its process group) as soon as its batch log reaches ``epoch`` (1-based).

    Returns (worker PID, the epoch of its last logged batch); the caller sends SIGCONT.
    """
    def last_epoch() -> int:
        data = (run_dir / "batches.jsonl").read_bytes() if (run_dir / "batches.jsonl").exists() else b""
        lines = data[: data.rfind(b"\n") + 1].splitlines()  # complete lines only
        return int(json.loads(lines[-1])["epoch"]) + 1 if lines else 0

    deadline = time.time() + timeout
    while time.time() < deadline:
        doc = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
        if doc.get("pid") and last_epoch() >= epoch:
            os.killpg(int(doc["pid"]), signal.SIGSTOP)
            return int(doc["pid"]), last_epoch()  # read again: it may have logged one more batch meanwhile
        time.sleep(0.02)
    raise AssertionError(f"{run_dir}: the worker did not reach epoch {epoch} within {timeout} s")


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

    # Stop mid-epoch: the person chooses "after this batch" (the default waits for the end of the epoch).
    page.locator(".st-key-stop_when_e2e").get_by_text("after this batch", exact=True).click()
    wait_text(page, r"Stops after (batch \d+/4 of epoch \d+|the batch in progress)")
    # Live: the batch line of epoch 2 appears while the run trains. The worker is frozen there (SIGSTOP) while
    # the person reads the page and clicks Stop: on a loaded machine the page may answer slower than a tiny epoch
    # lasts, and a Stop that lands in the last epoch finishes the run instead of stopping it.
    run_dir = ws / "runs" / "e2e"
    pid, frozen_epoch = _freeze_worker_from_epoch(run_dir, 2)
    try:
        assert frozen_epoch < 8
        wait_text(page, rf"Last batch [\d:]+: epoch {frozen_epoch}, batch \d+/4")  # the page caught up
        assert page.locator('[data-testid="stException"]').count() == 0
        _click(page, "stop_e2e")
        page.get_by_text(re.compile(r"^Stop requested: Stops after")).first.wait_for()  # the page took the click
    finally:
        os.killpg(pid, signal.SIGCONT)
    txt = wait_text(page, r"stopped on request", r"Last epoch \d+")
    stopped_epoch = int(re.search(r"Last epoch (\d+)", txt).group(1))  # type: ignore[union-attr]
    assert stopped_epoch in (frozen_epoch, frozen_epoch + 1)  # after this batch (or the next, if between epochs)
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
        txt = wait_text(page, r"victim\s*running", r"Last batch [\d:]+: epoch \d+, batch")
        before = re.search(r"Last batch [\d:]+: epoch (\d+), batch", txt).group(1)  # type: ignore[union-attr]
        pid = int(json.loads((run_dir / "run.json").read_text())["pid"])
        wait_text(page, rf"Last batch [\d:]+: epoch (?!{before},)\d+")  # still live: a later epoch shows up
        os.killpg(pid, signal.SIGKILL)
        wait_text(page, r"worker vanished", r"victim\s*failed", r"Last epoch \d+ · mAP50-95")
        assert page.locator(".st-key-resume_victim button").first.is_enabled()
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "training-vanished.png"), full_page=True)
    finally:
        stop_server(proc)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass
