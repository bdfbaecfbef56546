"""Fixtures shared by the page tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.core.training.run_fixtures import write_run
from tests.core.training.tiny_dataset import make_tiny_dataset


@pytest.fixture
def busy_cpu_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A workspace whose CPU is held by a run that really is running (a sleeping process stands in for its
    worker), so queued CPU runs and sweep trials wait instead of training; a tiny dataset in datasets/tiny.

    Afterwards every queue runner and sweep controller started for this workspace is killed.
    """
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    write_run(tmp_path / "runs" / "busy", epochs_done=1, epochs=9, state="running", pid=sleeper.pid,
              pid_create_time=psutil.Process(sleeper.pid).create_time(), args={"device": "cpu"})
    make_tiny_dataset(tmp_path / "datasets" / "tiny", n_train=4, n_val=2)
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    yield tmp_path
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if str(tmp_path) in cmd and ("training.sweep" in cmd or "training.queue" in cmd):
            p.kill()
    sleeper.kill()
    sleeper.wait()
