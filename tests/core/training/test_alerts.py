"""Alerts from synthetic run folders: non-finite loss, OOM/assigner events, stalled, VRAM, throughput collapse."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from omr_core.atomic import write_json
from omr_core.training.alerts import Thresholds, evaluate, event_alerts, live_alerts
from omr_core.training.runs import RunView, append_event, append_jsonl, update_run

NOW = 1_800_000_000.0


def _run(tmp_path: Path, *, phase: str = "train", phase_since: float = NOW - 900, live: bool = True) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    p = psutil.Process()
    pid, ctime = (p.pid, p.create_time()) if live else (None, None)
    write_json(d / "run.json", {"state": "running" if live else "finished", "pid": pid, "pid_create_time": ctime,
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
    update_run(d2, val_seconds=60.0)
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
    write_json(d / "run.json", {"state": "running", "pid": 2**22 + 7, "pid_create_time": 1.0})
    assert kinds(live_alerts(RunView(d).poll(), NOW)) == {"worker_vanished"}


def _results(d: Path, rows: list[dict[str, float]]) -> None:
    """results.csv the way Ultralytics writes it (padded header, one row per epoch)."""
    cols = list(rows[0])
    lines = [",".join(f"{c:>20s}" for c in cols)] + [",".join(f"{r[c]:>20.6g}" for c in cols) for r in rows]
    (d / "results.csv").write_text("\n".join(lines) + "\n")


def _epoch(e: int, cls: float, m50: float = 0.2, box: float = 1.5, train_cls: float | None = None) -> dict[str, float]:
    return {"epoch": e, "train/box_loss": box, "train/cls_loss": cls if train_cls is None else train_cls, "metrics/mAP50(B)": m50,
            "metrics/mAP50-95(B)": m50 / 2, "val/box_loss": box, "val/cls_loss": cls, "lr/pg0": 0.01}


def test_divergence_without_nan(tmp_path: Path) -> None:
    # The reported run: lr0 = 1, val/cls_loss 5.8e21 at epoch 4, never non-finite.
    d = _run(tmp_path)
    update_run(d, args={"epochs": 10, "lr0": 1.0})
    _batches(d, [1.0] * 20)
    _results(d, [_epoch(1, 3.1, train_cls=3.5), _epoch(2, 4.0e3, train_cls=60), _epoch(3, 2.2e12, train_cls=900),
                 _epoch(4, 5.8e21, train_cls=2e4)])
    a = [x for x in live_alerts(RunView(d).poll(), NOW) if x.kind == "diverging"]
    assert len(a) == 1 and a[0].severity == "error"
    assert "val/cls_loss is 5.8e+21 at epoch 4" in a[0].message and "its first value 3.1" in a[0].message
    assert "lr0 1" in a[0].message
    # A loss that falls and then climbs back by orders of magnitude, still below its start.
    (tmp_path / "b").mkdir()
    d2 = _run(tmp_path / "b")
    _batches(d2, [1.0] * 20)
    _results(d2, [_epoch(1, 30.0), _epoch(2, 0.2), _epoch(3, 0.3), _epoch(4, 250.0)])
    a = [x for x in live_alerts(RunView(d2).poll(), NOW) if x.kind == "diverging"]
    assert len(a) == 1 and "its lowest value 0.2" in a[0].message


def test_a_loss_starting_near_zero_is_no_yardstick(tmp_path: Path) -> None:
    # Seen on real tiny runs: box loss 0.0029 (and 6e-05) in epoch 1, while no positives are assigned yet, then
    # its usual size once the model starts finding objects (2.08 at epoch 32).
    d = _run(tmp_path)
    _batches(d, [1.0] * 20)
    _results(d, [_epoch(1, 3.0, box=0.0029), _epoch(2, 2.5, box=0.01), _epoch(3, 2.0, box=0.0316),
                 _epoch(4, 1.8, box=2.08)])
    assert [x for x in live_alerts(RunView(d).poll(), NOW) if x.kind == "diverging"] == []


def test_batch_losses_diverging(tmp_path: Path) -> None:
    d = _run(tmp_path)
    _batches(d, [1.0] * 30)
    t = NOW
    for i in range(30):  # the next epoch's batches blow up (no epoch finished: nothing in results.csv)
        append_jsonl(d / "batches.jsonl", {"t": t + i, "epoch": 1, "i": i + 1, "nb": 30, "sec": 1.0,
                                           "loss/box_loss": 1.0, "loss/cls_loss": 10.0 ** (i / 3)})
    a = [x for x in live_alerts(RunView(d).poll(), NOW + 30) if x.kind == "diverging"]
    assert len(a) == 1 and "train cls_loss (median of 10 batches)" in a[0].message


def test_healthy_losses_and_noise_do_not_alert(tmp_path: Path) -> None:
    d = _run(tmp_path)
    _batches(d, [1.0] * 50)
    t = NOW
    for i in range(50):  # one wild batch in every 10 is noise, not a trend
        append_jsonl(d / "batches.jsonl", {"t": t + i, "epoch": 1, "i": i + 1, "nb": 50, "sec": 1.0,
                                           "loss/box_loss": 1.0, "loss/cls_loss": 500.0 if i % 10 == 3 else 0.9})
    _results(d, [_epoch(e, 3.0 / e, m50=0.1 * e) for e in range(1, 9)])
    assert live_alerts(RunView(d).poll(), NOW + 50) == []


def _flat_run(tmp_path: Path, batch: int, nbs: int, nb: int, epochs_done: int = 3) -> RunView:
    d = _run(tmp_path)
    update_run(d, args={"epochs": 8, "batch": batch, "nbs": nbs, "warmup_epochs": 3.0})
    for e in range(epochs_done):
        for i in range(nb):
            append_jsonl(d / "batches.jsonl", {"t": NOW - 100 + e * nb + i, "epoch": e, "i": i + 1, "nb": nb,
                                               "sec": 1.0, "loss/box_loss": 4.0, "loss/cls_loss": 5.0})
    _results(d, [_epoch(e + 1, 5.0, m50=0.0) for e in range(epochs_done)])
    return RunView(d).poll()


def test_not_learning_with_almost_no_optimizer_steps(tmp_path: Path) -> None:
    # batch 4 with the default nbs 64 on 8 images: 2 batches per epoch, one optimizer step per 16 batches.
    a = [x for x in live_alerts(_flat_run(tmp_path, 4, 64, 2), NOW) if x.kind == "not_learning"]
    assert len(a) == 1 and a[0].severity == "warning"
    assert "mAP50 is 0 after 3 epochs" in a[0].message and "only 1 step (2 batches per epoch" in a[0].message
    assert "adds up 16 batches per step" in a[0].message and "nbs=4" in a[0].message


def test_flat_metrics_with_many_steps_or_too_early_do_not_alert(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert live_alerts(_flat_run(tmp_path / "a", 16, 16, 60), NOW) == []  # 180 steps: it is stepping
    (tmp_path / "b").mkdir()
    assert live_alerts(_flat_run(tmp_path / "b", 4, 64, 2, epochs_done=2), NOW) == []  # two epochs: too early
