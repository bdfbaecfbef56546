"""run.json as a typed record: every key the launcher and worker write, old and damaged files read, typos refused."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from omr_core.atomic import write_json
from omr_core.training.record import LIVE_STATES, RunRecord, RunState
from omr_core.training.runs import RunView, read_run, update_run

#: A run.json as the release before the record wrote it (launch, worker session, callbacks, a resume's history).
OLD_RUN_JSON = {
    "format": 1, "name": "tiny", "mode": "resume", "state": "stopped", "created": 1.7e9, "launched": 1.7e9 + 5,
    "spec": {"name": "tiny", "model": "yolov8n.yaml", "data": "d.yaml", "preset": "smoke-test", "args": {"epochs": 6}},
    "args": {"model": "yolov8n.yaml", "data": "d.yaml", "epochs": 6},
    "scale": {"tile": 640, "overlap": 0.2, "imgsz": 64, "scale": 1.0},
    "command": ["/usr/bin/python3", "-m", "omr_core.training.worker", "/runs/tiny"], "sample_interval": 1.0,
    "history": [{"session": 1, "started": 1.7e9 + 6, "ended": 1.7e9 + 60, "state": "stopped", "exit_code": 0,
                 "reason": "stopped on request", "duration_s": 54.0}],
    "pid": 4242, "pid_create_time": 1.7e9 + 70.5, "started": 1.7e9 + 71, "ended": 1.7e9 + 99, "exit_code": 0,
    "reason": "stopped on request at the end of epoch 4", "phase": None, "phase_since": 1.7e9 + 98,
    "stopping": True, "session": 2, "python": "/usr/bin/python3", "epochs": 6, "start_epoch": 3,
    "train_args": {"epochs": 6, "imgsz": 64, "optimizer": "SGD"}, "epoch": 4, "batches": 4, "val_seconds": 1.5,
    "epochs_done": 4, "resume_from": "weights/last_resumable.pt", "checkpoint_epoch": 3, "duration_s": 28.0,
    "final_metrics": {"metrics/mAP50-95(B)": 0.01}, "resume_args": {"workers": 0}, "updated": 1.7e9 + 99,
}


def test_every_key_of_an_old_run_json_is_a_field_and_round_trips() -> None:
    rec = RunRecord.from_dict(OLD_RUN_JSON)
    assert rec.extra == {}, f"keys the record does not model: {sorted(rec.extra)}"
    assert rec.state is RunState.STOPPED and not rec.live and rec.pid == 4242 and rec.history[0]["session"] == 1
    assert rec.to_dict() == {**OLD_RUN_JSON, "external": False}  # the one key the old launcher wrote only when True


def test_missing_wrong_and_unknown_keys_are_read_tolerantly(tmp_path: Path) -> None:
    empty = RunRecord.from_dict({})
    assert empty.state is RunState.FAILED and empty.history == [] and empty.args == {} and empty.pid is None
    rec = RunRecord.from_dict({"state": "paused", "pid": "12", "epochs": 3.0, "history": None, "stopping": "yes",
                               "sample_interval": 2, "written_by": "a newer release"})
    assert rec.state is RunState.FAILED  # not a state this version knows
    assert (rec.pid, rec.epochs, rec.history, rec.stopping, rec.sample_interval) == (None, 3, [], False, 2.0)
    # Keys of a newer release survive a read-modify-write by this one.
    d = tmp_path / "run"
    d.mkdir()
    write_json(d / "run.json", {"state": "running", "written_by": "a newer release"})
    update_run(d, phase="val")
    doc = json.loads((d / "run.json").read_text())
    assert doc["written_by"] == "a newer release" and doc["phase"] == "val" and doc["state"] == "running"


def test_states_are_strings_in_the_file_and_in_comparisons(tmp_path: Path) -> None:
    assert RunState.RUNNING == "running" and "starting" in LIVE_STATES and f"{RunState.FAILED}" == "failed"
    d = tmp_path / "run"
    d.mkdir()
    update_run(d, state=RunState.RUNNING, pid=1)
    assert orjson.loads((d / "run.json").read_bytes())["state"] == "running"
    got = read_run(d)
    assert got is not None and got.state is RunState.RUNNING
    assert RunView(d).poll().summary().to_dict()["state"] in ("running", "failed")  # pid 1 is not our worker


def test_a_key_that_is_no_field_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    update_run(d, state="running")
    before = (d / "run.json").read_bytes()
    with pytest.raises(TypeError, match="run.json has no field epochs_dnoe"):
        update_run(d, epochs_dnoe=3)
    assert (d / "run.json").read_bytes() == before
