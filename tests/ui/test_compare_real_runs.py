"""AppTest of Compare runs over real run folders from public repositories (tests/data/ultralytics_runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
DATA = REPO / "tests" / "data" / "ultralytics_runs"
RUNS = ["v84_classify_cpu", "v11_classify_ties", "v83_detect_helmets", "v5_detect_25ep", "v84_segment_best_by_mask",
        "v80_detect_100ep_zero_based", "v84_pose_cpu"]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in RUNS:
        shutil.copytree(DATA / name, tmp_path / "runs" / name)
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    return tmp_path


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/compare.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _pick(at: AppTest, names: list[str]) -> None:
    at.multiselect(key="cmp_runs").set_value(names).run()
    assert not at.exception, [e.value for e in at.exception]


def test_default_metric_follows_the_task_and_resets_when_the_selection_changes(workspace: Path) -> None:
    at = _open()
    _pick(at, ["v84_classify_cpu", "v11_classify_ties"])
    assert at.selectbox(key="cmp_metric").value == "metrics/accuracy_top1"
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc["v84_classify_cpu", "best top-1"] == pytest.approx(0.92228)
    assert summary.loc["v84_classify_cpu", "epoch of best"] == 7
    _pick(at, ["v83_detect_helmets", "v80_detect_100ep_zero_based"])
    assert at.selectbox(key="cmp_metric").value == "metrics/mAP50-95(B)"
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc["v80_detect_100ep_zero_based", "epochs"] == "100/100"
    _pick(at, ["v84_segment_best_by_mask"])
    assert at.selectbox(key="cmp_metric").value == "metrics/mAP50-95(M)"
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc["v84_segment_best_by_mask", "epoch of best"] == 40  # box+mask fitness, as best.pt


def test_mixed_tasks_open_on_a_metric_every_run_has(workspace: Path) -> None:
    at = _open()
    _pick(at, ["v5_detect_25ep", "v83_detect_helmets"])  # YOLOv5 mAP_0.5:0.95 vs mAP50-95(B): no shared headline
    metric = at.selectbox(key="cmp_metric").value
    for name in ("v5_detect_25ep", "v83_detect_helmets"):
        assert metric in (DATA / name / "results.csv").read_text().splitlines()[0].replace(" ", "").split(",")
    summary = at.dataframe[0].value.set_index("run")
    # both headlines are a mAP50-95 (YOLOv5's mAP_0.5:0.95, ultralytics' mAP50-95(B)): one column, each run's own
    assert summary.loc["v5_detect_25ep", "best mAP50-95"] == pytest.approx(0.465)
    assert summary.loc["v83_detect_helmets", "best mAP50-95"] == pytest.approx(0.50295)
    _pick(at, ["v84_classify_cpu", "v83_detect_helmets"])  # different headlines: named per run
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc["v84_classify_cpu", "headline"] == "top-1" and summary.loc["v84_classify_cpu", "best"] > 0.9


def test_training_hours_axis_leaves_out_runs_without_a_time_column(workspace: Path) -> None:
    at = _open()
    _pick(at, ["v5_detect_25ep", "v83_detect_helmets"])
    at.selectbox(key="cmp_metric").set_value("val/box_loss").run()
    at.radio(key="cmp_x").set_value("training hours").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert "Left out of the training-hours axis" in captions and "v5_detect_25ep" in captions
    fig = at.get("plotly_chart")[0].proto.spec
    assert "v83_detect_helmets" in fig and "v5_detect_25ep" not in fig
