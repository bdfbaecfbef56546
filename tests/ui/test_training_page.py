"""AppTest of the Training page over real run folders: table, live panel, alerts, launch form, controls."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest
from streamlit.testing.v1 import AppTest

from omr_core.training.runs import append_event, read_run
from tests.core.training.run_fixtures import write_run
from tests.core.training.tiny_dataset import make_tiny_dataset
from tests.ui.apptest import open_page

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process in its own session standing in for a training worker (so the run is really 'running')."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield p
    if p.poll() is None:
        p.kill()
    p.wait()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]) -> Path:
    runs = tmp_path / "runs"
    ctime = psutil.Process(sleeper.pid).create_time()
    write_run(runs / "live", epochs_done=4, epochs=20, state="running", pid=sleeper.pid, pid_create_time=ctime)
    crashed = write_run(runs / "crashed", epochs_done=7, epochs=50, state="running", pid=sleeper.pid,
                        pid_create_time=ctime - 1000, now=time.time() - 3600)  # that PID is now another process
    append_event(crashed, "assigner_oom", "CUDA OutOfMemoryError in TaskAlignedAssigner, using CPU")
    ext = runs / "detect" / "train3"
    ext.mkdir(parents=True)
    (ext / "args.yaml").write_text("model: yolo11s.yaml\nepochs: 2\n")
    (ext / "results.csv").write_text("  epoch,  metrics/mAP50-95(B)\n      1,  0.1\n      2,  0.2\n")
    (tmp_path / "datasets").mkdir()
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    return tmp_path


def _open(page: str = "app_pages/training.py") -> AppTest:
    return open_page(page)


def test_runs_table_and_live_panel(workspace: Path) -> None:
    at = _open()
    table = at.dataframe[0].value  # the runs table comes first
    states = dict(zip(table["run"], table["state"]))
    assert states == {"live": "running", "crashed": "failed", "detect/train3": "finished"}
    live = table[table["run"] == "live"].iloc[0]
    assert live["epoch"] == "5 of 20, in progress" and live["batch i/n"] == "25/50" and live["batch"] == pytest.approx(0.5)
    assert table[table["run"] == "detect/train3"].iloc[0]["epoch"] == "2/2"
    assert live["ETA"] not in ("", "–")
    assert at.selectbox(key="monitor_run").value == "live"
    metrics = {m.label: m.value for m in at.metric}
    # 4 epochs done, batch 25 of the fifth: say which epoch is in progress (not "Epoch 4/20, Batch 25/50").
    assert metrics["Epoch in progress"] == "5 of 20" and metrics["Batch"] == "25/50" and "Epoch" not in metrics
    text = at.text[0].value
    assert "Last epoch 4" in text and "batch 25/50" in text
    assert len(at.get("plotly_chart")) == 7  # losses, metrics, batches, lr, memory, util, throughput
    assert not at.error


def test_vanished_worker_shows_failed_with_alerts(workspace: Path) -> None:
    at = _open()
    at.selectbox(key="monitor_run").set_value("crashed").run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "worker vanished" in errors and "another process" in errors
    assert "TaskAlignedAssigner" in " ".join(w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["Epoch"] == "7/50"
    assert at.button(key="kill_crashed").disabled and at.button(key="stop_crashed").disabled


def test_stop_and_kill_buttons(workspace: Path, sleeper: subprocess.Popen[bytes]) -> None:
    at = _open()
    # Stopping at the end of the epoch is the default, and the page says what each choice does before stopping.
    assert at.radio(key="stop_when_live").value == "epoch"
    captions = " ".join(c.value for c in at.caption)
    assert "Finishes epoch 5 (25 more batches), validates it, then stops; resume starts at epoch 6." in captions
    at.radio(key="stop_when_live").set_value("batch").run()
    captions = " ".join(c.value for c in at.caption)
    assert "Stops after batch 25/50 of epoch 5: the other 25 batches of epoch 5 are skipped" in captions
    at.radio(key="stop_when_live").set_value("epoch").run()
    at.button(key="stop_live").click().run()
    assert not at.exception
    assert orjson.loads((workspace / "runs" / "live" / "stop.request").read_bytes())["mode"] == "epoch"
    assert any("Stop requested: Finishes epoch 5" in i.value for i in at.info), [i.value for i in at.info]
    at.button(key="kill_live").click().run()
    assert sleeper.wait(10) == -9
    doc = read_run(workspace / "runs" / "live")
    assert doc is not None and doc.state == "failed" and "killed" in doc.reason


def test_delete_needs_confirmation(workspace: Path) -> None:
    at = _open()
    at.selectbox(key="monitor_run").set_value("detect/train3").run()
    assert at.button(key="delete_detect/train3").disabled
    at.checkbox(key="del_ok_detect/train3").check().run()
    at.button(key="delete_detect/train3").click().run()
    assert not at.exception and not (workspace / "runs" / "detect" / "train3").exists()
    assert (workspace / "runs" / "live").exists()


def test_launch_form_rejects_unknown_argument(workspace: Path) -> None:
    make_tiny_dataset(workspace / "datasets" / "tiny", n_train=4, n_val=2)
    at = _open()
    assert at.selectbox(key="tr_data_pick").value.endswith("tiny/data.yaml")
    assert any("Assigner memory forecast" in c.value for c in at.caption)
    at.text_input(key="tr_name").input("newrun")
    at.text_area(key="tr_extra").input("lr=0.1")
    at.button(key="tr_launch").click().run()
    assert not at.exception
    assert "did you mean" in " ".join(e.value for e in at.error) and "lr0" in " ".join(e.value for e in at.error)
    assert not (workspace / "runs" / "newrun").exists()


@pytest.mark.slow
def test_launch_from_the_page_starts_a_detached_run(workspace: Path) -> None:
    make_tiny_dataset(workspace / "datasets" / "tiny", n_train=4, n_val=2)
    at = _open()
    at.selectbox(key="tr_preset").set_value("smoke-test").run()
    assert at.number_input(key="tr_imgsz").value == 320 and at.selectbox(key="tr_device").value == "cpu"
    at.number_input(key="tr_imgsz").set_value(64)
    at.number_input(key="tr_epochs").set_value(1)
    at.text_input(key="tr_name").input("from-page")
    at.button(key="tr_launch").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    doc = read_run(workspace / "runs" / "from-page")
    assert doc is not None and doc.spec["preset"] == "smoke-test" and doc.args["imgsz"] == 64
    assert doc.pid and psutil.Process(doc.pid).create_time() == pytest.approx(doc.pid_create_time, abs=0.5)
    from omr_core.training.launcher import kill

    kill("from-page", workspace / "runs")


def test_empty_workspace_offers_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    at = _open()
    assert at.button(key="demo_start").label == "Start the demo"
    assert any("No runs yet" in i.value for i in at.info)


def test_no_demo_button_once_there_are_runs(workspace: Path) -> None:
    at = _open()
    assert not [b for b in at.button if b.key == "demo_start"]


def _loss_axis_types(at: AppTest) -> list[str]:
    import json

    types = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = str(spec["layout"].get("title", {}).get("text", ""))
        if title.startswith(("Losses per epoch", "Epoch ")):
            types.append(spec["layout"].get("yaxis", {}).get("type", "linear"))
    return types


def test_loss_charts_have_a_log_scale(workspace: Path) -> None:
    at = _open()
    assert _loss_axis_types(at) == ["linear", "linear"]  # per epoch and the batches of the epoch in progress
    at.toggle(key="monitor_log_y").set_value(True).run()
    assert not at.exception
    assert _loss_axis_types(at) == ["log", "log"]


def test_form_defaults_to_sheet_music_and_shows_the_real_optimizer(workspace: Path) -> None:
    sheet = make_tiny_dataset(workspace / "datasets" / "a-sheet", n_train=16, n_val=2)
    text = sheet.read_text()
    for old, new in (("0: box", "0: noteheadBlackOnLine"), ("1: ellipse", "1: clefG"), ("2: bar", "2: restQuarter")):
        text = text.replace(old, new)
    sheet.write_text(text)
    make_tiny_dataset(workspace / "datasets" / "b-shapes", n_train=2, n_val=1)
    at = _open()
    assert at.selectbox(key="tr_data_pick").value == str(sheet)
    # DeepScoresV2 class names: the sheet-music preset (no flips, no colour jitter), and why.
    assert at.selectbox(key="tr_preset").value == "sheet-music"
    captions = " ".join(c.value for c in at.caption)
    assert "3 of 3 class names are DeepScoresV2's" in captions
    # optimizer=auto ignores lr0: the form says what Ultralytics will really use (16 images, batch 16, 100 epochs:
    # 100 iterations -> AdamW with lr0 0.002*5/(4+3)).
    assert "Optimizer that will be used: **AdamW**, lr0 0.001429, momentum 0.9" in captions, captions
    assert at.number_input(key="tr_lr0").placeholder == "0.001429 (auto)"
    assert "(default)" not in at.number_input(key="tr_lr0").placeholder
    at.selectbox(key="tr_optimizer").set_value("SGD").run()
    captions = " ".join(c.value for c in at.caption)
    assert "Optimizer that will be used: **SGD**, lr0 0.01, momentum 0.937" in captions, captions

    # Other data: Ultralytics' own defaults; a preset the person picked stays picked.
    at.selectbox(key="tr_data_pick").set_value(str(workspace / "datasets" / "b-shapes" / "data.yaml")).run()
    assert at.selectbox(key="tr_preset").value == "ultralytics"
    at.selectbox(key="tr_preset").set_value("stable").run()
    at.selectbox(key="tr_data_pick").set_value(str(sheet)).run()
    assert at.selectbox(key="tr_preset").value == "stable"


def test_runs_trained_elsewhere_show_their_task_metric_and_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = REPO / "tests" / "data" / "ultralytics_runs"  # real run folders from public repositories
    for name in ("v84_classify_cpu", "yolo26_obb_early_stop", "v80_detect_100ep_zero_based"):
        shutil.copytree(data / name, tmp_path / "runs" / name)
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    at = _open()
    table = at.dataframe[0].value.set_index("run")
    assert table.loc["v84_classify_cpu", "metric"] == "top-1" and table.loc["v84_classify_cpu", "best"] == pytest.approx(0.92228)
    assert table.loc["yolo26_obb_early_stop", "state"] == "early-stopped"
    assert "patience 20" in table.loc["yolo26_obb_early_stop", "note"]
    assert table.loc["v80_detect_100ep_zero_based", "epoch"] == "100/100"
    assert table.loc["v80_detect_100ep_zero_based", "best epoch"] == 99
    at.selectbox(key="monitor_run").set_value("v80_detect_100ep_zero_based").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Last epoch 100 " in at.text[0].value  # 8.0.x wrote its last epoch as 99
    at.selectbox(key="monitor_run").set_value("v84_classify_cpu").run()
    assert "top-1 0.9223" in at.text[0].value
