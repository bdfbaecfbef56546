"""AppTest of the Training page's queue: add from the launch form, reorder, hold, cancel; a live run holds the CPU."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from omr_core.training import queue
from omr_core.training.spec import build_spec

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")



def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/training.py")
    return at.run(timeout=60)


def _names(runs: Path) -> list[tuple[str, str]]:
    return [(e.name, e.state) for e in queue.entries(runs)]


def test_queue_from_the_form_then_reorder_hold_and_cancel(busy_cpu_workspace: Path) -> None:
    runs = busy_cpu_workspace / "runs"
    at = _open()
    at.selectbox(key="tr_device").set_value("cpu")
    at.text_input(key="tr_name").input("later")
    at.button(key="tr_queue").click().run(timeout=60)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Queued **later** on cpu" in s.value for s in at.success)
    spec = build_spec("second", "yolov8n.yaml", str(busy_cpu_workspace / "datasets" / "tiny" / "data.yaml"),
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
