"""The worker's pieces that need no training: Ultralytics log messages → events, DDP-safe callbacks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from omr_core.atomic import write_json
from omr_core.training.worker import Worker, _EventHandler, classify_log_line


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("WARNING ⚠️ CUDA OutOfMemoryError in TaskAlignedAssigner, using CPU", "assigner_oom"),
        ("CUDA out of memory in TaskAlignedAssigner with batch_size=16 and max_num_obj=2400; retrying assignment one "
         "image at a time on GPU. Model forward batch size is unchanged.", "assigner_oom"),
        ("CUDA out of memory with batch=16. Reducing to batch=8 and retrying (1/3).", "batch_reduced"),
        ("CUDA backend memory error with batch=8. Reducing to batch=4 and retrying (2/3).", "batch_reduced"),
        ("Loss NaN/Inf detected (attempt 1/3), recovering from last.pt...", "nan_recovery"),
        ("Fitness NaN/Inf detected but can not recover from last.pt...", "nan_recovery"),
        ("Resume ignores ['epochs'], using checkpoint values. Start a new run to change them.", "resume_ignored"),
        ("Starting training for 100 epochs...", None),
    ],
)
def test_ultralytics_messages_are_classified(message: str, kind: str | None) -> None:
    assert classify_log_line(message) == kind


def test_log_handler_records_events(tmp_path: Path) -> None:
    log = logging.getLogger("omr-test-ultralytics")
    log.setLevel(logging.INFO)
    h = _EventHandler(tmp_path)
    log.addHandler(h)
    try:
        log.warning("CUDA out of memory with batch=%d. Reducing to batch=%d and retrying (1/3).", 32, 16)
        log.info("nothing to see")
    finally:
        log.removeHandler(h)
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 1 and '"batch_reduced"' in lines[0] and "batch=16" in lines[0]


def test_worker_callbacks_survive_ddp_pickling(tmp_path: Path) -> None:
    """Ultralytics cloudpickles trainer.callbacks into each DDP rank: our bound callbacks must pickle."""
    cloudpickle = pytest.importorskip("cloudpickle")  # Ultralytics installs it for DDP

    from omr_core.training.runs import RunView

    d = tmp_path / "run"
    d.mkdir()
    write_json(d / "run.json", {"state": "starting", "args": {"epochs": 3}})
    w = Worker(d)
    w.alerts.view = RunView(d).poll()  # holds locks: must not travel
    fn = w._guard(w.on_train_batch_end)
    clone = cloudpickle.loads(cloudpickle.dumps({"on_train_batch_end": [fn]}))
    assert callable(clone["on_train_batch_end"][0]) and w.alerts.view is not None


def test_worker_records_a_live_alert_once(tmp_path: Path) -> None:
    import time

    import orjson
    import psutil

    from omr_core.training.runs import append_jsonl

    d = tmp_path / "run"
    d.mkdir()
    me = psutil.Process()
    now = time.time()
    write_json(d / "run.json", {"state": "running", "pid": me.pid, "pid_create_time": me.create_time(),
                                       "phase": "train", "phase_since": now - 100, "args": {"epochs": 3}})
    t = now - 60
    for i, sec in enumerate([0.5] * 40 + [3.0] * 10):
        t += sec
        append_jsonl(d / "batches.jsonl", {"t": min(t, now - 1), "epoch": 0, "i": i + 1, "nb": 50, "sec": sec})
    w = Worker(d)
    w.alerts.on_sample({"t": now})
    w.alerts.on_sample({"t": now + 1})  # within ALERT_CHECK_S: not checked again
    w.alerts.on_sample({"t": now + 6})  # checked again, still active: not recorded twice
    events = [orjson.loads(x) for x in (d / "events.jsonl").read_bytes().splitlines()]
    assert [(e["kind"], e["alert"]) for e in events] == [("alert", "throughput_collapse")]
