"""Run folders: PID + start-time identity, effective state, listing foreign runs, delete confinement, exclusivity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from omr_core.atomic import write_json
from omr_core.training import launcher
from omr_core.training.record import RunRecord
from omr_core.training.runs import (
    RunError,
    RunExistsError,
    RunView,
    delete_run,
    effective_state,
    find_run,
    list_runs,
    process_alive,
    read_run,
    update_run,
)
from omr_core.training.spec import build_spec

HEADER = "epoch,time,train/box_loss,metrics/mAP50-95(B),lr/pg0\n"


def _me() -> tuple[int, float]:
    p = psutil.Process()
    return p.pid, p.create_time()


def test_pid_is_trusted_only_with_its_start_time() -> None:
    pid, ctime = _me()
    assert process_alive(pid, ctime)
    assert not process_alive(pid, ctime - 3600)  # same PID, other start time: a reused PID
    assert not process_alive(None, ctime) and not process_alive(pid, None)


def test_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ctime = psutil.Process(proc.pid).create_time()
    deadline = time.time() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.time() < deadline:
        time.sleep(0.05)
    assert not process_alive(proc.pid, ctime)
    proc.wait()


def test_effective_state_reports_vanished_worker() -> None:
    pid, ctime = _me()
    assert effective_state(RunRecord.from_dict({"state": "running", "pid": pid, "pid_create_time": ctime})) == ("running", "")
    state, reason = effective_state(RunRecord.from_dict({"state": "running", "pid": pid, "pid_create_time": ctime - 100}))
    assert state == "failed" and "another process" in reason
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state, reason = effective_state(RunRecord.from_dict({"state": "running", "pid": dead.pid, "pid_create_time": 1.0}))
    assert state == "failed" and "no longer running" in reason
    assert effective_state(RunRecord.from_dict({"state": "starting", "launched": time.time()}))[0] == "starting"
    assert effective_state(RunRecord.from_dict({"state": "starting", "launched": time.time() - 3600}))[0] == "failed"
    assert effective_state(RunRecord.from_dict({"state": "stopped", "reason": "stopped on request"})) == ("stopped", "stopped on request")
    assert effective_state(None) == ("external", "")


def _foreign_run(d: Path, rows: int, epochs: int) -> Path:
    d.mkdir(parents=True)
    (d / "args.yaml").write_text(f"model: yolov8n.yaml\ndata: /x/data.yaml\nepochs: {epochs}\n")
    (d / "results.csv").write_text(HEADER + "".join(f"{e},{e * 60.0},1.0,{e / 10},0.01\n" for e in range(1, rows + 1)))
    return d


def test_vanished_run_shows_failed_with_last_metrics(tmp_path: Path) -> None:
    d = _foreign_run(tmp_path / "runs" / "crashed", rows=3, epochs=10)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_json(d / "run.json", {"state": "running", "pid": dead.pid, "pid_create_time": 1.0,
                                       "started": time.time() - 200, "updated": time.time() - 20,
                                       "args": {"epochs": 10, "model": "m.yaml", "data": "d.yaml"}})
    s = RunView(d).poll().summary()
    assert s.state == "failed" and "vanished" in s.reason
    assert s.epoch == 3 and s.best_map == pytest.approx(0.3) and s.best_epoch == 3 and s.eta_s is None


def test_list_runs_includes_foreign_nested_runs(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _foreign_run(root / "detect" / "train3", rows=5, epochs=5)
    t4 = _foreign_run(root / "detect" / "train4", rows=2, epochs=50)
    (root / "not-a-run").mkdir()
    runs = {r.name: r for r in list_runs(root)}
    assert set(runs) == {"detect/train3", "detect/train4"}
    # 2 of 50 epochs, results.csv written just now: a `yolo train` elsewhere that is still going (read-only, live).
    assert runs["detect/train3"].state == "finished" and runs["detect/train4"].state == "running"
    assert not runs["detect/train4"].managed and "read-only" in runs["detect/train4"].reason
    old = time.time() - 3600
    os.utime(t4 / "results.csv", (old, old))  # the same run an hour later, results.csv unchanged: abandoned
    runs = {r.name: r for r in list_runs(root)}
    assert runs["detect/train4"].state == "external"
    assert runs["detect/train4"].elapsed_s == pytest.approx(120.0) and runs["detect/train4"].model == "yolov8n.yaml"
    assert find_run(root, "detect/train3") == (root / "detect" / "train3").resolve()
    with pytest.raises(RunError, match="did you mean|Did you mean"):
        find_run(root, "detect/trian3")


def test_delete_is_confined_to_the_runs_folder(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _foreign_run(root / "a", rows=1, epochs=1)
    outside = _foreign_run(tmp_path / "outside", rows=1, epochs=1)
    for name in ("../outside", str(outside), ".", "/"):
        with pytest.raises(RunError):
            delete_run(root, name)
    assert outside.exists()
    pid, ctime = _me()
    write_json(root / "a" / "run.json", {"state": "running", "pid": pid, "pid_create_time": ctime})
    with pytest.raises(RunError, match="stop or kill"):
        delete_run(root, "a")
    update_run(root / "a", state="stopped")
    assert delete_run(root, "a") == (root / "a").resolve() and not (root / "a").exists()


def test_update_run_is_atomic_and_merges(tmp_path: Path) -> None:
    d = tmp_path / "r"
    d.mkdir()
    fields = ("epoch", "batches", "epochs_done", "checkpoint_epoch")  # one writer each, all at once

    def writer(key: str) -> None:
        for i in range(30):
            update_run(d, **{key: i})

    threads = [threading.Thread(target=writer, args=(k,)) for k in fields]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = read_run(d)
    assert doc is not None and all(getattr(doc, k) == 29 for k in fields)
    assert not [p for p in os.listdir(d) if p.endswith(".tmp")]


def test_two_launches_of_one_name_exactly_one_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("train: a\nval: a\nnames: [x]\n")
    spawned: list[Path] = []
    monkeypatch.setattr(launcher, "_spawn", lambda run_dir, env=None: spawned.append(run_dir) or 1)
    spec = build_spec("same", "yolov8n.yaml", str(data), deep=False)
    barrier = threading.Barrier(8)
    results: list[object] = []

    def go() -> None:
        barrier.wait()
        try:
            results.append(launcher.launch(spec, tmp_path / "runs"))
        except RunExistsError as exc:
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if isinstance(r, Path)]
    errors = [r for r in results if isinstance(r, RunExistsError)]
    assert len(ok) == 1 and len(errors) == 7 and len(spawned) == 1
    assert "already exists" in str(errors[0]) and "omr resume same" in str(errors[0])
    doc = read_run(ok[0])
    assert doc is not None and doc.state == "starting" and doc.args["model"] == "yolov8n.yaml"


def test_controls_refuse_what_cannot_be_done(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _foreign_run(root / "done", rows=5, epochs=5)
    with pytest.raises(RunError, match="not started by omr"):
        launcher.stop("done", root)
    with pytest.raises(RunError, match="cannot raise epochs"):
        launcher.resume("done", root)
    with pytest.raises(RunError, match="cannot change epochs"):
        launcher.resume("done", root, overrides={"epochs": 500})
    half = _foreign_run(root / "half", rows=2, epochs=5)
    with pytest.raises(RunError, match="is running: nothing to resume"):  # results.csv just written: still going
        launcher.resume("half", root)
    with pytest.raises(RunError, match="not started by omr"):
        launcher.stop("half", root)
    old = time.time() - 3600
    os.utime(half / "results.csv", (old, old))  # abandoned an hour ago
    with pytest.raises(RunError, match="no resumable checkpoint"):
        launcher.resume("half", root)


def test_reaper_of_a_run_folder_deleted_meanwhile_stays_quiet(tmp_path: Path) -> None:
    # Someone removes the folder by hand (or a test's temp folder is cleaned up) while the worker still runs:
    # the launcher's reaper thread must end quietly, not with a traceback in the dashboard's log.
    run_dir = tmp_path / "gone"
    run_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    shutil.rmtree(run_dir)
    assert proc.stdin is not None
    proc.stdin.close()  # now the worker exits
    launcher._reap(proc, run_dir)  # type: ignore[arg-type]
    assert proc.returncode == 0 and not run_dir.exists()

def test_runs_verb_names_the_epoch_in_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import psutil

    from omr_core.cli import main
    from tests.core.training.run_fixtures import write_run

    me = psutil.Process()
    write_run(tmp_path / "runs" / "first", epochs_done=0, epochs=10, batches_per_epoch=6, state="running", pid=me.pid,
              pid_create_time=me.create_time())
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "1 of 10, in progress" in out and "0/10" not in out and "3/6" in out  # batch 3 of 6 in the first epoch
