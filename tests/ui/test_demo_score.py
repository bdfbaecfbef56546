"""A finished demo run is scored on the Training page: validation mAP50 over the classes with enough instances, a
held-out page, the per-class table; the score is kept in the run folder and shown again without recomputing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.training.demo import SCORE_FILE, finished_demo_runs, run_demo
from omr_core.training.record import RunState
from omr_core.training.runs import read_run
from omr_core.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")

pytestmark = pytest.mark.slow


def _wait_finished(run_dir: Path, limit_s: float = 600) -> None:
    end = time.monotonic() + limit_s  # a hang shows as a failure, the state is what is waited for
    while time.monotonic() < end:
        doc = read_run(run_dir)
        if doc is not None and doc.state not in (RunState.STARTING, RunState.RUNNING):
            assert doc.state is RunState.FINISHED, (doc.state, doc.reason)
            return
        time.sleep(0.5)
    raise AssertionError(f"{run_dir} did not end within {limit_s} s")


def test_a_finished_demo_run_is_scored_on_the_training_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(tmp_path, tmp_path / "runs", tmp_path / "datasets")
    res = run_demo(ws, pages=3, epochs=1, imgsz=64, minutes=None)
    _wait_finished(res.run_dir)
    assert [r[0] for r in finished_demo_runs(ws.runs)] == [res.run_dir]

    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=600)
    at.switch_page("app_pages/training.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Demo model `demo`" in m.value for m in at.markdown)
    assert not (res.run_dir / SCORE_FILE).exists()
    at.button(key="demo_score").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    said = [m.value for m in (*at.success, *at.warning)]
    assert any("validation tiles over the" in s and "classes with ≥ 20 instances" in s for s in said) or any(
        "no class has 20 validation instances" in s for s in said), said
    assert any("on the held-out page" in i.value and "noteheads found" in i.value for i in at.info)
    tables = [d.value for d in at.dataframe if "validation instances" in d.value.columns]
    assert len(tables) == 1, [list(d.value.columns) for d in at.dataframe]
    table = tables[0]
    assert len(table) > 0 and {"class", "validation instances", "AP50", "judged"} <= set(table.columns)
    assert (table["validation instances"] > 0).all()
    assert (res.run_dir / SCORE_FILE).is_file()

    again = AppTest.from_file(APP, default_timeout=120)  # a new session shows the kept score, no button
    again.switch_page("app_pages/training.py").run()
    assert not again.exception
    assert not [b for b in again.button if b.key == "demo_score"]
    assert any("held-out page" in i.value for i in again.info)
