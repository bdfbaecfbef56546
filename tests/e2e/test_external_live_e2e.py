"""In Chromium: a `yolo train` started outside the dashboard (another terminal) shows up as a live run, read-only,
and its epochs move on the page as its results.csv grows."""

from __future__ import annotations

import os
import re
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
from tests.e2e.test_training_e2e import _text, wait_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _epoch(text: str) -> int | None:
    """The watched run's epoch from the page ("Epoch 2/4"), or None while it shows none."""
    m = re.search(r"Epoch\s+(\d)/4", text)
    return int(m.group(1)) if m else None


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
        first = _epoch(txt)
        assert first is not None, txt
        # Its curves move: a later epoch arrives. Any later one: on a loaded machine a page refresh can take longer
        # than one of these tiny epochs, so the page may go from 1/4 straight to 3/4.
        deadline = time.monotonic() + 300
        while (_epoch(_text(page)) or 0) <= first:
            assert time.monotonic() < deadline, f"still at epoch {first} after 300 s: {_text(page)[-1500:]}"
            time.sleep(0.2)
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "external-live.png"), full_page=True)
        yolo.wait(300)
        wait_text(page, r"ext\s+finished", timeout=120)
    finally:
        if yolo is not None and yolo.poll() is None:
            os.killpg(yolo.pid, 9)
        stop_server(proc)
