"""Alerts from synthetic run folders: non-finite loss, OOM/assigner events, stalled, VRAM, throughput collapse."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from omr_core.training.alerts import Thresholds, evaluate, event_alerts, live_alerts
from omr_core.training.runs import RunView, append_event, append_jsonl, atomic_write_json

NOW = 1_800_000_000.0


def _run(tmp_path: Path, *, phase: str = "train", phase_since: float = NOW - 900, live: bool = True) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    p = psutil.Process()
    pid, ctime = (p.pid, p.create_time()) if live else (None, None)
    atomic_write_json(d / "run.json", {"state": "running" if live else "finished", "pid": pid, "pid_create_time": ctime,
                                       "phase": phase, "phase_since": phase_since, "started": NOW - 1000,
                                       "args": {"epochs": 10}})
    return d


def _batches(d: Path, secs: list[float], t_end: float = NOW - 1, loss: float | None = 1.0) -> None:
    t = t_end - sum(secs)
    for i, s in enumerate(secs):
        t += s
        append_jsonl(d / "batches.jsonl", {"t": t, "epoch": 0, "i": i + 1, "nb": len(secs), "sec": s,
                                           "loss/box_loss": 1.0, "loss/cls_loss": loss})


def kinds(alerts: list) -> set[str]:  # type: ignore[type-arg]
    return {a.kind for a in alerts}


def test_healthy_run_has_no_alert(tmp_path: Path) -> None:
    d = _run(tmp_path)
    _batches(d, [1.0] * 50)
    assert evaluate(RunView(d).poll(), NOW) == []


def test_nonfinite_loss_in_last_batch(tmp_path: Path) -> None:
    d = _run(tmp_path)
    _batches(d, [1.0] * 5, loss=None)  # the worker writes NaN/inf losses as null
    a = live_alerts(RunView(d).poll(), NOW)
    assert kinds(a) == {"nonfinite_loss"} and "cls_loss" in a[0].message and a[0].severity == "error"


def test_stalled_training_and_validation(tmp_path: Path) -> None:
    d = _run(tmp_path)
    _batches(d, [2.0] * 20, t_end=NOW - 500)
    a = live_alerts(RunView(d).poll(), NOW)
    assert kinds(a) == {"stalled"} and "500 s" in a[0].message
    assert live_alerts(RunView(d).poll(), NOW - 450) == []  # 50 s without a batch is normal
    v = tmp_path / "v"
    v.mkdir()
    d2 = _run(v, phase="val", phase_since=NOW - 7200)
    atomic_write_json(d2 / "run.json", {**(RunView(d2).poll().doc or {}), "val_seconds": 60.0})
    assert kinds(live_alerts(RunView(d2).poll(), NOW)) == {"stalled"}
    assert live_alerts(RunView(d2).poll(), NOW - 7200 + 600) == []


def test_throughput_collapse(tmp_path: Path) -> None:
    d = _run(tmp_path)
    _batches(d, [1.0] * 60 + [5.0] * 10)
    a = live_alerts(RunView(d).poll(), NOW)
    assert kinds(a) == {"throughput_collapse"} and "5.0×" in a[0].message
    assert live_alerts(RunView(d).poll(), NOW, Thresholds(collapse_factor=6)) == []


def test_vram_above_95_percent(tmp_path: Path) -> None:
    d = _run(tmp_path)
    _batches(d, [1.0] * 5)
    gib = 2**30
    append_jsonl(d / "gpu.jsonl", {"t": NOW - 1, "kind": "gpu", "gpu0_used": 23.5 * gib, "gpu0_total": 24 * gib,
                                   "gpu1_used": 10 * gib, "gpu1_total": 24 * gib})
    a = live_alerts(RunView(d).poll(), NOW)
    assert kinds(a) == {"vram_high"} and "GPU 0" in a[0].message and "97.9 %" in a[0].message
    assert "vram_high" not in kinds(live_alerts(RunView(d).poll(), NOW + 60))  # a stale sample says nothing


def test_recorded_events_become_alerts(tmp_path: Path) -> None:
    d = _run(tmp_path, live=False)
    append_event(d, "assigner_oom", "CUDA OutOfMemoryError in TaskAlignedAssigner, using CPU")
    append_event(d, "assigner_oom", "CUDA OutOfMemoryError in TaskAlignedAssigner, using CPU")
    append_event(d, "nan_recovery", "Loss NaN/Inf detected (attempt 1/3), recovering from last.pt...")
    append_event(d, "stop_requested", "Stop requested.")
    append_event(d, "alert", "Throughput collapse: 9.00 s per batch lately", alert="throughput_collapse")
    a = evaluate(RunView(d).poll(), time.time())
    assert [x.kind for x in a] == ["nan_recovery", "throughput_collapse", "assigner_oom"]
    assert a[2].count == 2 and a[2].severity == "warning"
    assert a[1].severity == "warning" and a[1].message.startswith("recorded during the run")
    assert event_alerts([]) == []


def test_vanished_worker_is_an_alert(tmp_path: Path) -> None:
    d = tmp_path / "r"
    d.mkdir()
    atomic_write_json(d / "run.json", {"state": "running", "pid": 2**22 + 7, "pid_create_time": 1.0})
    assert kinds(live_alerts(RunView(d).poll(), NOW)) == {"worker_vanished"}
