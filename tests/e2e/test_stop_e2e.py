"""In Chromium: the Training page offers "stop at the end of this epoch" by default, says what each choice costs, and
a click on Stop really ends the run on an epoch boundary (no batches of that epoch lost)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from omr_core.training import launcher
from omr_core.training.runs import RunView
from tests.conftest import ARTIFACTS, REPO
from tests.core.training.tiny_dataset import make_tiny_dataset
from tests.e2e.conftest import wait_for_app
from tests.e2e.test_training_e2e import _click, wait_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_stop_at_epoch_end_is_the_default(dashboard_env: dict[str, str], dashboard_server: str, browser_page: Any) -> None:
    ws = Path(dashboard_env["OMR_WORKSPACE"])
    data = make_tiny_dataset(ws / "datasets" / "tiny", n_train=16, n_val=4)
    subprocess.run(
        [sys.executable, "-m", "omr_core.cli", "train", "--data", str(data), "--name", "stopper", "--epochs", "200",
         "--imgsz", "64", "--batch", "4", "--device", "cpu", "workers=0", "nbs=4"],
        capture_output=True, text=True, env={**os.environ, **dashboard_env}, cwd=REPO, check=True, timeout=120,
    )
    run_dir = ws / "runs" / "stopper"
    try:
        page = browser_page
        page.goto(dashboard_server)
        wait_for_app(page)
        # The epoch in progress is named as such (not "Epoch 0/30" next to "Batch 2/4").
        wait_text(page, r"Epoch in progress\s*\d+ of 200")
        at_end = page.get_by_role("radio", name="at the end of this epoch")
        assert at_end.is_checked()
        wait_text(page, r"Finishes epoch \d+( \(\d+ more batch(es)?\))?, validates it, then stops; resume starts at epoch")

        # A person considering the other choice reads what it would cost, then goes back to the default.
        page.get_by_text("after this batch", exact=True).click()
        wait_text(page, r"Stops after batch \d+/4 of epoch \d+: the other \d+ batch(es)? of epoch \d+ (are|is) skipped, yet "
                        r"Ultralytics saves epoch \d+ as done")
        page.get_by_text("at the end of this epoch", exact=True).click()
        wait_text(page, r"Finishes epoch \d+")
        _click(page, "stop_stopper")
        wait_text(page, r"Stop requested: Finishes epoch \d+")
        page.screenshot(path=str(ARTIFACTS / "screenshots" / "training-stop-requested.png"), full_page=True)

        # The click may land between two epochs: then the next one is finished; either way it ends on a boundary.
        txt = wait_text(page, r"stopped on request at the end of epoch \d+", timeout=180)
        epoch = int(re.search(r"stopped on request at the end of epoch (\d+)", txt).group(1))  # type: ignore[union-attr]
        assert page.locator('[data-testid="stException"]').count() == 0
        # On disk: the stopped epoch ran every one of its batches and is the last row of results.csv.
        recs = [orjson.loads(x) for x in (run_dir / "batches.jsonl").read_bytes().splitlines() if x.strip()]
        last = recs[-1]
        assert last["epoch"] + 1 == epoch and last["i"] == last["nb"] == 4, last
        rows = [r for r in (run_dir / "results.csv").read_text().splitlines()[1:] if r.strip()]
        assert len(rows) == epoch
        assert (run_dir / "weights" / "last_resumable.pt").exists()
    finally:
        if RunView(run_dir).poll(samples=False).summary().live:  # a failed check must not leave it training
            launcher.kill("stopper", ws / "runs")
