"""AppTest: the Training page's first-start button engraves, converts with the recipe and starts a bounded run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.training.launcher import kill
from omr_core.training.runs import read_run

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")

pytestmark = pytest.mark.slow


def test_first_start_button_runs_the_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=900)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "cpu-small" in " ".join(m.value for m in at.markdown)
    at.button(key="demo_start").click().run()
    run_dir = tmp_path / "runs" / "demo"
    try:
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
        labels = [s.label for s in at.status]
        assert any(lbl.startswith("Demo training started: demo, ") and "min of training" in lbl for lbl in labels), labels
        doc = read_run(run_dir)
        assert doc is not None and doc.spec["preset"] == "cpu-small"
        a = doc.args
        assert (a["optimizer"], a["imgsz"], a["batch"], a["nbs"], a["workers"]) == ("SGD", 320, 8, 8, 0)
        assert 0.2 < a["time"] < 0.3  # what is left of 20 minutes after engraving and converting, in hours
        assert doc.scale == {"tile": 640, "overlap": 0.2, "imgsz": 320, "scale": 1.0}
        data = Path(a["data"]).parent
        assert json.loads((data / "dataset_scale.json").read_text())["tile"] == 640
        assert len(list((data / "images" / "train").glob("*.png"))) > 500  # 640 px tiles of 40 engraved pages
    finally:
        if run_dir.exists():
            kill("demo", tmp_path / "runs")
