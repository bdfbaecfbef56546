"""In Chromium: a `yolo train` started outside the dashboard (another terminal) shows up as a live run, read-only,
and its epochs move on the page as its results.csv grows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS
from tests.core.training.tiny_dataset import make_tiny_dataset
from tests.e2e.conftest import start_server, stop_server, wait_for_app
from tests.e2e.test_training_e2e import wait_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_an_external_yolo_train_is_watched_live(dashboard_env: dict[str, str], browser_page: Any,
                                                tmp_path: Path) -> None:
    runs = Path(dashboard_env["OMR_WORKSPACE"]) / "runs"
    data = make_tiny_dataset(tmp_path / "tiny", n_train=16, n_val=4)
    url, proc, _ = start_server(dashboard_env)
    yolo = None
    try:
        page = browser_page
        page.goto(f"{url}/training?run=ext")  # open before the run exists: the link selects it once it appears
        wait_for_app(page)
        # Ultralytics' own CLI, as a person would type `yolo detect train ...` in another terminal.
        yolo = subprocess.Popen(
            [sys.executable, "-c", "from ultralytics.cfg import entrypoint; entrypoint()", "detect", "train",
             "model=yolov8n.yaml", f"data={data}", "epochs=4", "imgsz=64", "batch=4", "workers=0", "device=cpu",
             f"project={runs}", "name=ext", "exist_ok=True", "plots=False"],
            env={**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": dashboard_env["YOLO_CONFIG_DIR"]},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        results = runs / "ext" / "results.csv"
        deadline = time.monotonic() + 300
        while not results.exists():
            assert yolo.poll() is None, "yolo train ended before its first epoch"
            assert time.monotonic() < deadline, "no results.csv within 300 s"
            time.sleep(0.1)
        t0 = time.monotonic()
        txt = wait_text(page, r"ext\s+running", r"read-only here")
        seen_s = time.monotonic() - t0
        print(f"external run shown live {seen_s:.1f} s after its first results.csv")
        expect(page.locator(".st-key-stop_ext")).to_have_count(0)  # nothing to stop from here: it is not ours
        first = int(__import__("re").search(r"Epoch\s+(\d)/4", txt).group(1))  # type: ignore[union-attr]
        wait_text(page, rf"Epoch\s+{first + 1}/4", timeout=300)  # its curves move: the next epoch arrives
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "external-live.png"), full_page=True)
        yolo.wait(300)
        wait_text(page, r"ext\s+finished", timeout=120)
    finally:
        if yolo is not None and yolo.poll() is None:
            os.killpg(yolo.pid, 9)
        stop_server(proc)
