"""AppTest of the Training page's queue: add from the launch form, reorder, hold, cancel; a live run holds the CPU."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from streamlit.testing.v1 import AppTest

from omr_core.training import queue
from omr_core.training.spec import build_spec
from tests.core.training.run_fixtures import write_run
from tests.core.training.tiny_dataset import make_tiny_dataset

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")



@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A run that really is running on the CPU (a sleeping process stands in for its worker): queued CPU runs wait."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    write_run(tmp_path / "runs" / "busy", epochs_done=1, epochs=9, state="running", pid=sleeper.pid,
              pid_create_time=psutil.Process(sleeper.pid).create_time(), args={"device": "cpu"})
    make_tiny_dataset(tmp_path / "datasets" / "tiny", n_train=4, n_val=2)
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    yield tmp_path
    pid = queue.runner_pid(tmp_path / "runs")
    if pid:
        psutil.Process(pid).kill()
    sleeper.kill()
    sleeper.wait()


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/training.py")
    return at.run(timeout=60)


def _names(runs: Path) -> list[tuple[str, str]]:
    return [(e.name, e.state) for e in queue.entries(runs)]


def test_queue_from_the_form_then_reorder_hold_and_cancel(workspace: Path) -> None:
    runs = workspace / "runs"
    at = _open()
    at.selectbox(key="tr_device").set_value("cpu")
    at.text_input(key="tr_name").input("later")
    at.button(key="tr_queue").click().run(timeout=60)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Queued **later** on cpu" in s.value for s in at.success)
    spec = build_spec("second", "yolov8n.yaml", str(workspace / "datasets" / "tiny" / "data.yaml"),
                      args={"device": "cpu", "epochs": 1}, deep=False)
    queue.add(spec, runs)
    at.run(timeout=60)
    assert any(s.value.startswith("Queue (2 in line)") for s in at.subheader)
    assert queue.runner_pid(runs) is not None  # waiting entries have a runner; both wait for the busy CPU
    assert _names(runs) == [("later", "waiting"), ("second", "waiting")]
    eid = {e.name: e.id for e in queue.entries(runs)}
    at.button(key=f"q_down_{eid['later']}").click().run(timeout=60)
    assert _names(runs) == [("second", "waiting"), ("later", "waiting")]
    at.button(key=f"q_hold_{eid['second']}").click().run(timeout=60)
    assert _names(runs) == [("second", "held"), ("later", "waiting")]
    assert at.button(key=f"q_hold_{eid['second']}").help.startswith("release")
    at.button(key=f"q_cancel_{eid['later']}").click().run(timeout=60)
    assert _names(runs) == [("second", "held")]
    assert any(s.value.startswith("Queue (1 in line)") for s in at.subheader)
