"""AppTest of the Compare runs page over real run folders: overlay, best/final, differing arguments, CSV export."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.core.training.run_fixtures import write_run

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
DATA = REPO / "tests" / "data" / "ultralytics_runs"  # real run folders from public repositories


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    write_run(runs / "sgd", epochs_done=12, epochs=12, state="finished", args={"optimizer": "SGD", "lr0": 0.001})
    write_run(runs / "adamw", epochs_done=8, epochs=12, state="stopped", args={"optimizer": "AdamW", "lr0": 0.001},
              seed=3)
    # Trained elsewhere by an old release: padded headers, no time column, a peak at epoch 2.
    old = runs / "old"
    old.mkdir()
    (old / "args.yaml").write_text("model: yolov8s.yaml\nepochs: 3\noptimizer: SGD\nlr0: 0.01\n")
    (old / "results.csv").write_text(
        "  epoch,  train/box_loss,  metrics/mAP50-95(B)\n      0,  2.0,  0.10\n      1,  1.5,  0.30\n      2,  1.4,  0.25\n"
    )
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    return tmp_path


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/compare.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_compare_three_runs(workspace: Path) -> None:
    at = _open()
    at.multiselect(key="cmp_runs").set_value(["sgd", "adamw", "old"]).run()
    assert not at.exception
    assert at.selectbox(key="cmp_metric").value == "metrics/mAP50-95(B)"
    summary = at.dataframe[0].value.set_index("run")
    # "old" wrote 0-based epochs (rows 0, 1, 2): its peak is the 2nd epoch, shown 1-based like every other run
    assert summary.loc["old", "best mAP50-95"] == pytest.approx(0.30) and summary.loc["old", "epoch of best"] == 2
    assert summary.loc["old", "final mAP50-95"] == pytest.approx(0.25)
    assert summary.loc["sgd", "epochs"] == "12/12" and summary.loc["adamw", "state"] == "stopped"
    diff = at.dataframe[1].value
    assert "optimizer" in diff.index and "lr0" in diff.index and "model" in diff.index
    assert diff.loc["optimizer", "adamw"] == "AdamW" and diff.loc["lr0", "old"] == "0.01"
    assert "imgsz" in diff.index  # 1024 in ours, absent in the old run's args.yaml
    fig = at.get("plotly_chart")[0]
    assert fig is not None
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download all epochs (CSV)", "Download best/final table (CSV)"]


def test_metric_switch_and_losses_best_is_min(workspace: Path) -> None:
    at = _open()
    at.multiselect(key="cmp_runs").set_value(["old"]).run()
    at.selectbox(key="cmp_metric").set_value("train/box_loss").run()
    assert not at.exception
    row = at.dataframe[0].value.iloc[0]
    assert row["best train/box_loss"] == pytest.approx(1.4) and row["epoch of best train/box_loss"] == 3  # 1-based
    assert any("two runs or more" in c.value for c in at.caption)


def test_empty_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    at = _open()
    assert "No runs" in at.info[0].value


def test_best_and_final_does_not_repeat_the_map_columns(workspace: Path) -> None:
    at = _open()
    at.multiselect(key="cmp_runs").set_value(["sgd", "old"]).run()
    cols = list(at.dataframe[0].value.columns)
    assert cols == ["run", "state", "epochs", "best mAP50-95", "epoch of best", "final mAP50-95", "training time"]
    at.selectbox(key="cmp_metric").set_value("train/box_loss").run()
    summary = at.dataframe[0].value.set_index("run")
    assert "best train/box_loss" in summary.columns and "best mAP50-95" in summary.columns
    assert summary.loc["old", "best train/box_loss"] == pytest.approx(1.4)  # a loss: best is the lowest
    assert summary.loc["old", "epoch of best train/box_loss"] == 3  # 0-based row 2, the 3rd epoch


# -- real run folders people committed to public repositories ----------------------------------------------------

RUNS = ["v84_classify_cpu", "v11_classify_ties", "v83_detect_helmets", "v5_detect_25ep", "v84_segment_best_by_mask",
        "v80_detect_100ep_zero_based", "v84_pose_cpu"]


@pytest.fixture
def real_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in RUNS:
        shutil.copytree(DATA / name, tmp_path / "runs" / name)
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    return tmp_path


def _pick(at: AppTest, names: list[str]) -> None:
    at.multiselect(key="cmp_runs").set_value(names).run()
    assert not at.exception, [e.value for e in at.exception]


def test_default_metric_follows_the_task_and_resets_when_the_selection_changes(real_workspace: Path) -> None:
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


def test_mixed_tasks_open_on_a_metric_every_run_has(real_workspace: Path) -> None:
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


def test_training_hours_axis_leaves_out_runs_without_a_time_column(real_workspace: Path) -> None:
    at = _open()
    _pick(at, ["v5_detect_25ep", "v83_detect_helmets"])
    at.selectbox(key="cmp_metric").set_value("val/box_loss").run()
    at.radio(key="cmp_x").set_value("training hours").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert "Left out of the training-hours axis" in captions and "v5_detect_25ep" in captions
    fig = at.get("plotly_chart")[0].proto.spec
    assert "v83_detect_helmets" in fig and "v5_detect_25ep" not in fig
