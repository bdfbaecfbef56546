"""Sweeps with Optuna on real tiny CPU runs: two controllers on one storage, a trial killed, the best launched;
pruning from per-epoch metrics on runs whose results.csv a stand-in worker writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from omr_core.atomic import write_json
from omr_core.notify import add_target
from omr_core.training import queue, sweep
from omr_core.training.runs import RunView, read_json
from tests.core.training.run_fixtures import write_run
from tests.core.training.tiny_dataset import make_tiny_dataset
from tests.notify_receiver import Receiver


def _run_json(run_dir: Path) -> dict[str, Any] | None:
    """run.json as the plain dict it is on disk."""
    return read_json(Path(run_dir) / "run.json")

def test_parse_param() -> None:
    assert sweep.parse_param("lr0=0.001:0.1:log") == sweep.Param("lr0", 0.001, 0.1, log=True)
    assert sweep.parse_param("imgsz=256:640:int").integer
    assert sweep.parse_param("batch=4,8,16").choices == (4, 8, 16)
    assert sweep.parse_param("optimizer=SGD,AdamW").choices == ("SGD", "AdamW")
    for bad, msg in [("lr0", "name=low"), ("lr0=0.1:0.01", "low < high"), ("lr0=0:1:log", "> 0 with log"),
                     ("lr0=a:b", "must be numbers")]:
        with pytest.raises(sweep.SweepError, match=msg):
            sweep.parse_param(bad)


def test_create_refuses_what_cannot_run(tmp_path: Path) -> None:
    base = {"model": "yolov8n.yaml", "data": "coco8.yaml"}
    with pytest.raises(sweep.SweepError, match="grid sweep needs a list"):
        sweep.create(sweep.SweepSpec("g", **base, space=(sweep.parse_param("lr0=0.001:0.1"),), sampler="grid"),
                     tmp_path)
    with pytest.raises(Exception, match="not an Ultralytics train argument"):
        sweep.create(sweep.SweepSpec("h", **base, space=(sweep.parse_param("lrr0=1,2"),)), tmp_path)


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


@pytest.mark.slow
def test_two_controllers_one_storage_a_killed_trial_and_the_best_launched(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    data = make_tiny_dataset(tmp_path / "tiny", n_train=8, n_val=4)
    out = subprocess.run(
        [sys.executable, "-m", "omr_core.cli", "sweep", "new", "s", "--runs-dir", str(runs), "--data", str(data),
         "--preset", "ultralytics", "--sampler", "grid", "--param", "lr0=0.01,0.02", "--param", "batch=4,8",
         "--trials", "4", "--epochs", "2", "--workers", "2", "--fixed", "imgsz=64", "device=cpu", "workers=0", "nbs=4"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # Kill the first trial's worker once it trains: that trial fails, the sweep goes on.
    _wait(lambda: (runs / "s-t0" / "run.json").exists() or (runs / "s-t1" / "run.json").exists(), 180, "no trial")
    first = runs / ("s-t0" if (runs / "s-t0" / "run.json").exists() else "s-t1")
    view = RunView(first)
    _wait(lambda: (view.poll().summary().batch or 0) >= 1, 180, "first trial did not train")
    os.killpg(int((_run_json(first) or {})["pid"]), signal.SIGKILL)
    _wait(lambda: len(sweep.trials(runs, "s")) == 4, 600, "the sweep did not finish its 4 trials")
    ts = sweep.trials(runs, "s")
    assert sorted(t["number"] for t in ts) == [0, 1, 2, 3]  # two controllers, never the same trial twice
    assert sorted(t["run"] for t in ts) == ["s-t0", "s-t1", "s-t2", "s-t3"]
    assert sorted(tuple(sorted(t["params"].items())) for t in ts) == sorted(
        (("batch", b), ("lr0", lr)) for lr in (0.01, 0.02) for b in (4, 8))  # the grid, each point once
    killed = next(t for t in ts if t["run"] == first.name)
    # Who noticed decides the words: the queue runner that launched it ("worker killed by SIGKILL") or, when that
    # process is gone, the run's own state check ("worker vanished").
    assert killed["state"] == "failed" and ("SIGKILL" in killed["reason"] or "vanished" in killed["reason"])
    b = sweep.best(runs, "s")
    assert b is not None and b["state"] == "complete" and b["run"] != first.name
    status = subprocess.run([sys.executable, "-m", "omr_core.cli", "sweep", "status", "s", "--runs-dir", str(runs)],
                            capture_output=True, text=True, timeout=60).stdout
    assert f"best: t{b['number']}" in status and "failed" in status
    name = sweep.launch_best(runs, "s", epochs=1)
    assert [e.spec["args"]["lr0"] for e in queue.entries(runs) if e.name == name] == [b["params"]["lr0"]]
    _wait(lambda: (_run_json(runs / name) or {}).get("state") in ("finished", "failed"), 300, "best run")
    assert (_run_json(runs / name) or {})["args"]["batch"] == b["params"]["batch"]


def _results(run_dir: Path, values: list[float]) -> None:
    head = "epoch,train/box_loss,train/cls_loss,metrics/mAP50(B),metrics/mAP50-95(B)\n"
    rows = "".join(f"{i + 1},1.0,1.0,{v},{v}\n" for i, v in enumerate(values))
    (run_dir / "results.csv").write_text(head + rows)


def test_a_loser_is_pruned_at_an_epoch_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    """Stand-in runs (a sleeping process as worker, results.csv written by the test) instead of trainings, so the
    objective per epoch is chosen: two good trials, then a poor one that the median pruner must stop."""
    runs = tmp_path / "runs"
    spec = sweep.SweepSpec("p", "yolov8n.yaml", "coco8.yaml", (sweep.parse_param("lr0=0.01,0.02,0.03"),),
                           sampler="grid", trials=3, epochs=4)
    sweep.create(spec, runs)
    curves = iter([[0.5, 0.6, 0.7, 0.8], [0.5, 0.6, 0.7, 0.8], [0.1, 0.1, 0.1, 0.1]])
    stops: list[str] = []

    def fake_add(s: Any, runs_: Path, **_: Any) -> Any:
        curve = next(curves)
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        run_dir = runs_ / s.name

        write_run(run_dir, epochs_done=0, epochs=4, state="running", pid=sleeper.pid,
                  pid_create_time=psutil.Process(sleeper.pid).create_time())

        def worker() -> None:  # writes one epoch at a time; a stop request ends it at the next epoch end
            for k in range(1, 5):
                _results(run_dir, curve[:k])
                time.sleep(0.6)
                if (run_dir / "stop.request").exists():
                    break
            doc = _run_json(run_dir) or {}
            write_json(run_dir / "run.json", {**doc, "state": "stopped" if k < 4 else "finished"})
            sleeper.kill()

        threading.Thread(target=worker, daemon=True).start()
        return None

    from omr_core.training import launcher

    real_stop = launcher.stop
    monkeypatch.setattr(queue, "add", fake_add)
    monkeypatch.setattr(launcher, "stop", lambda name, r, at="epoch": (stops.append(f"{name}@{at}"),
                                                                        real_stop(name, r, at=at))[1])
    study = sweep._study(spec, runs)  # noqa: SLF001 - the controller's own study, driven step by step here
    outs = [sweep.run_trial(spec, runs, study, poll_s=0.1) for _ in range(3)]
    assert [o.state for o in outs if o] == ["complete", "complete", "pruned"], outs
    assert stops == ["p-t2@epoch"] and outs[2] is not None and outs[2].epochs < 4
    assert outs[2].reason.startswith("pruned at epoch 2")  # 0.1 against the median 0.6 at the first checked epoch
    assert sweep.run_trial(spec, runs, study) is None  # the budget is spent
    # "sweep finished" with the best trial: once, however many controllers end.
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("OMR_NOTIFY", raising=False)
    add_target(receiver.url)
    sweep._notify_finished(runs, spec)  # noqa: SLF001 - what run_sweep calls once its loop ends
    sweep._notify_finished(runs, spec)  # noqa: SLF001
    assert [m["title"] for m in receiver.got] == ["OMR sweep p: sweep finished"]
    assert "Best: trial 0 (p-t0) 0.8000" in receiver.got[0]["message"] and "1 pruned" in receiver.got[0]["message"]


def test_orphan_check_leaves_a_trial_whose_controller_is_still_writing_who_it_is(tmp_path: Path) -> None:
    """CI once lost a trial: controller B's orphan check read controller A's trial between A's two writes (pid
    written, start time not yet) and failed it as orphaned; A then crashed telling its result. A trial is an
    orphan only when its controller is known dead, or when it stays anonymous past the grace period."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s", direction="maximize")
    being_set_up = study.ask()  # asked this instant, no controller recorded yet
    half_written = study.ask()
    half_written.set_user_attr("controller_pid", os.getpid())  # one of the two writes done, the other not yet
    other_half = study.ask()
    other_half.set_user_attr("controller_ctime", sweep.process_start_time(os.getpid()))
    alive = study.ask()
    alive.set_user_attr("controller_ctime", sweep.process_start_time(os.getpid()))
    alive.set_user_attr("controller_pid", os.getpid())
    dead = study.ask()
    dead.set_user_attr("controller_ctime", 1.0)  # a process that started at another time: that controller is gone
    dead.set_user_attr("controller_pid", os.getpid())
    sweep.fail_orphans(study)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states == {being_set_up.number: TrialState.RUNNING, half_written.number: TrialState.RUNNING,
                      other_half.number: TrialState.RUNNING, alive.number: TrialState.RUNNING,
                      dead.number: TrialState.FAIL}
    # a trial another controller ended is still told and recorded by its own controller, never a crash
    study.tell(half_written, 0.5, skip_if_finished=True)
    study.tell(dead, state=TrialState.FAIL, skip_if_finished=True)
