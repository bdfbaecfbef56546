"""Real CPU training through the CLI: live records, graceful stop, resume, SIGKILL, resume again, failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import psutil
import pytest

from omr_core.cli import main
from omr_core.training.runs import RunSummary, RunView, read_run
from tests.core.training.run_fixtures import csv_epochs, read_jsonl
from tests.core.training.tiny_dataset import make_tiny_dataset

pytestmark = pytest.mark.slow

ARGS = ["--model", "yolov8n.yaml", "--epochs", "6", "--imgsz", "64", "--batch", "4", "--device", "cpu", "workers=0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"), n_train=16, n_val=4)


def wait_for(view: RunView, cond: Callable[[RunSummary], bool], timeout: float = 120) -> RunSummary:
    deadline = time.time() + timeout
    s = view.poll().summary()
    while time.time() < deadline:
        s = view.poll().summary()
        if cond(s):
            return s
        time.sleep(0.2)
    log = (view.path / "log.txt").read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out; last summary {s}\n--- log ---\n{log}")


def _ckpt(path: Path) -> dict:  # type: ignore[type-arg]
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def test_train_stop_resume_kill_resume(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(["train", "--data", str(data), "--name", "tiny", "--runs-dir", str(runs), *ARGS]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    assert run_dir == runs / "tiny"
    view = RunView(run_dir)

    # Running: PID + start time recorded, batches logged with losses, lr, instances and timing.
    s = wait_for(view, lambda s: s.state == "running" and (s.current_epoch or 0) >= 2 and (s.batch or 0) >= 1)
    doc = read_run(run_dir)
    assert doc is not None and psutil.Process(doc.pid).create_time() == pytest.approx(doc.pid_create_time, abs=0.5)
    assert doc.command[1:3] == ["-m", "omr_core.training.worker"]
    rec = orjson.loads((run_dir / "batches.jsonl").read_bytes().splitlines()[0])
    assert rec["epoch"] == 0 and rec["i"] == 1 and rec["nb"] == 4 and rec["sec"] > 0 and rec["inst"] > 0
    assert {k for k in rec if k.startswith("loss/")} == {"loss/box_loss", "loss/cls_loss", "loss/dfl_loss"}
    assert "lr" in rec

    # Graceful stop: stopped, resumable copy kept, Ultralytics stripped last.pt.
    assert main(["stop", "tiny", "--runs-dir", str(runs)]) == 0
    s = wait_for(view, lambda s: not s.live)
    assert s.state == "stopped" and s.resumable == "weights/last_resumable.pt", s
    stopped_epoch = s.epoch
    assert 2 <= stopped_epoch < 6
    assert _ckpt(run_dir / "weights" / "last_resumable.pt")["optimizer"] is not None
    assert _ckpt(run_dir / "weights" / "last.pt").get("optimizer") is None
    assert read_run(run_dir).exit_code == 0  # type: ignore[union-attr]

    # Resume, then SIGKILL the worker's process group from outside (like the OOM killer).
    capsys.readouterr()
    assert main(["resume", "tiny", "--runs-dir", str(runs)]) == 0
    s = wait_for(view, lambda s: s.state == "running" and (s.current_epoch or 0) > stopped_epoch + 1 and (s.batch or 0) >= 2)
    pid = read_run(run_dir).pid  # type: ignore[union-attr]
    os.killpg(pid, signal.SIGKILL)
    s = wait_for(view, lambda s: not s.live)
    assert s.state == "failed" and ("SIGKILL" in s.reason or "vanished" in s.reason), s
    assert s.epoch > stopped_epoch and s.best_epoch is not None and s.resumable == "weights/last.pt"
    killed = _ckpt(run_dir / "weights" / "last.pt")
    assert killed["optimizer"] is not None  # the checkpoint survived the kill
    # Epochs the checkpoint holds. The kill may land after Ultralytics wrote an epoch's results.csv row but before
    # it saved last.pt: then results.csv is one epoch ahead of the checkpoint and that epoch is trained again.
    saved, rows_at_kill = int(killed["epoch"]) + 1, s.epoch
    assert rows_at_kill in (saved, saved + 1), (rows_at_kill, saved)
    redo_batches = [r for r in read_jsonl(run_dir / "batches.jsonl") if r["epoch"] >= saved]
    assert redo_batches and {r["s"] for r in redo_batches} == {2}  # the epoch in progress when killed

    # Epochs cannot be raised on resume; resume continues where the kill left it and finishes.
    assert main(["resume", "tiny", "epochs=50", "--runs-dir", str(runs)]) == 2
    assert "cannot raise epochs" in capsys.readouterr().err
    assert main(["resume", "tiny", "--runs-dir", str(runs)]) == 0
    s = wait_for(view, lambda s: s.state in ("finished", "failed") and s.pid != pid)
    assert s.state == "finished", s
    assert s.epoch == 6 and s.resumable is None and not (run_dir / "weights" / "last_resumable.pt").exists()
    df = view.poll().results.frame()
    assert df["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    # The files themselves, not only the deduplicating reader: each epoch once in results.csv, and each epoch's
    # batches from one session, numbered 1, 2, … without a gap or a repeat.
    assert csv_epochs(run_dir / "results.csv") == [1, 2, 3, 4, 5, 6]
    batches = read_jsonl(run_dir / "batches.jsonl")
    assert {r["s"] for r in batches} == {1, 2, 3}
    for epoch in range(6):
        mine = [r for r in batches if r["epoch"] == epoch]
        assert len({r["s"] for r in mine}) == 1 and [r["i"] for r in mine] == list(range(1, len(mine) + 1)), epoch
    hist = read_run(run_dir).history  # type: ignore[union-attr]
    assert [h["state"] for h in hist] == ["stopped", "failed"] and s.elapsed_s and s.elapsed_s > 5
    first_new = next(r for r in batches if r["s"] == 3)
    assert first_new["epoch"] == saved  # resumed at the first epoch the checkpoint does not hold
    # What the killed session did of the redone epoch is kept aside, and the run says it was redone.
    assert read_jsonl(run_dir / "batches.redone.jsonl") == redo_batches
    redone = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "epoch_redone"]
    assert len(redone) == 1 and redone[0]["epoch"] == saved + 1, redone
    assert redone[0]["results_rows"] == rows_at_kill - saved and redone[0]["batches"] == len(redo_batches)
    assert f"Epoch {saved + 1} is trained again" in redone[0]["message"]
    if rows_at_kill > saved:
        assert "results.csv" in redone[0]["message"] and csv_epochs(run_dir / "results.redone.csv") == [rows_at_kill]
    samples = (run_dir / "gpu.jsonl").read_bytes().splitlines()
    assert len(samples) >= 5 and orjson.loads(samples[-1])["kind"] in ("cpu", "gpu")
    events = [orjson.loads(x)["kind"] for x in (run_dir / "events.jsonl").read_bytes().splitlines()]
    assert events.count("no_nvml") == 3 and "stop_requested" in events and events.count("resumed") == 2

    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "tiny" and listed[0]["state"] == "finished" and listed[0]["epoch"] == 6


def test_two_cli_launches_one_name(data: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "omr_core.cli", "train", "--data", str(data), "--name", "twin", "--runs-dir", str(runs),
           *ARGS]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    assert any("already exists" in err for _, err in outs)
    assert main(["stop", "twin", "--kill", "--runs-dir", str(runs)]) == 0
    s = RunView(runs / "twin").poll().summary()
    assert s.state == "failed" and "killed" in s.reason


def test_failure_is_recorded_with_its_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: [a]\n")  # no images
    runs = tmp_path / "runs"
    assert main(["train", "--data", str(data), "--name", "bad", "--runs-dir", str(runs), *ARGS]) == 0
    s = wait_for(RunView(runs / "bad"), lambda s: not s.live, timeout=90)
    assert s.state == "failed" and s.reason
    events = [orjson.loads(x) for x in (runs / "bad" / "events.jsonl").read_bytes().splitlines()]
    assert any(e["kind"] == "exception" and "Traceback" in e["traceback"] for e in events)
    assert read_run(runs / "bad").exit_code == 1  # type: ignore[union-attr]
