"""The run queue: order per device, holds, moves, a failed start that blocks nobody, one runner per folder, and
real CPU runs started one after the other by the detached runner (also after the runner was killed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from omr_core.errors import OmrError
from omr_core.training import launcher, queue
from omr_core.training.runs import read_json
from omr_core.training.spec import build_spec
from tests.core.training.run_fixtures import write_run
from tests.core.training.tiny_dataset import make_tiny_dataset


def _run_json(run_dir: Path) -> dict[str, Any] | None:
    """run.json as the plain dict it is on disk."""
    return read_json(Path(run_dir) / "run.json")

def _spec(name: str, device: str = "cpu", data: str = "coco8.yaml", epochs: int = 1) -> Any:
    return build_spec(name, "yolov8n.yaml", data, preset="ultralytics",
                      args={"epochs": epochs, "imgsz": 64, "batch": 4, "device": device, "workers": 0, "nbs": 4},
                      deep=False)


class FakeLaunch:
    """Records launches; names in ``fail`` raise as a launch that cannot start would."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.names: list[str] = []
        self.fail = fail

    def __call__(self, spec: Any, runs: Path) -> Path:
        if spec.name in self.fail:
            raise OmrError(f"data for {spec.name} is gone")
        self.names.append(spec.name)
        return runs / spec.name


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    yield p
    p.kill()
    p.wait()


def test_lanes() -> None:
    assert queue.lanes_of("cpu") == ("cpu",) and queue.lanes_of("0,1") == ("gpu0", "gpu1")
    assert queue.lanes_of("cuda:1") == ("gpu1",) and queue.lanes_of("mps") == ("mps",)
    with pytest.raises(OmrError, match="not valid"):
        queue.lanes_of("gpu-please")


def test_order_per_lane_hold_move_cancel_and_a_failed_start(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name, dev in [("a", "cpu"), ("b", "0"), ("c", "cpu"), ("d", "0,1"), ("e", "1"), ("f", "cpu")]:
        queue.add(_spec(name, dev), runs, start_runner=False)
    with pytest.raises(queue.QueueError, match="exists already"):
        queue.add(_spec("a"), runs, start_runner=False)
    queue.hold(runs, "c")
    queue.move(runs, "f", -10)  # to the front of the line
    launch = FakeLaunch(fail=("f",))
    started = queue.step(runs, launch=launch)
    # f fails to start and blocks nobody; a takes the CPU; b takes GPU 0; d (0,1) waits for GPU 0, so e (GPU 1),
    # which is behind d on GPU 1, waits too: first come, first served per lane. c is held.
    assert started == ["a", "b"] and launch.names == ["a", "b"]
    st = {e.name: e for e in queue.entries(runs)}
    assert st["f"].state == "not_started" and "gone" in st["f"].reason
    assert st["c"].state == "held" and st["d"].state == st["e"].state == "waiting"
    queue.cancel(runs, "e")
    with pytest.raises(queue.QueueError, match="has started"):
        queue.cancel(runs, "a")
    with pytest.raises(queue.QueueError, match="no queue entry"):
        queue.hold(runs, "zzz")
    assert [e.name for e in queue.entries(runs)] == ["f", "a", "b", "c", "d"]
    assert queue.clear_done(runs) == 3 and [e.name for e in queue.entries(runs)] == ["c", "d"]


def test_a_live_run_launched_directly_occupies_its_lane(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    runs = tmp_path / "runs"
    write_run(runs / "direct", epochs_done=1, epochs=5, state="running", pid=sleeper.pid,
              pid_create_time=psutil.Process(sleeper.pid).create_time(), args={"device": "cpu"})
    queue.add(_spec("next"), runs, start_runner=False)
    launch = FakeLaunch()
    assert queue.step(runs, launch=launch) == []
    sleeper.kill()
    sleeper.wait()
    assert queue.step(runs, launch=launch) == ["next"]


def test_a_damaged_queue_file_drops_the_bad_entries_only(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    queue.add(_spec("good"), runs, start_runner=False)
    doc = json.loads((runs / "queue.json").read_text())
    doc["entries"].insert(0, {"id": 3, "spec": "nonsense"})
    (runs / "queue.json").write_text(json.dumps(doc))
    assert [e.name for e in queue.entries(runs)] == ["good"]


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def _runner_processes(runs: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "omr_core.training.queue" in cmd and str(runs) in cmd:
            out.append(p)
    return out


@pytest.mark.slow
def test_runner_starts_runs_one_after_the_other_and_survives_being_killed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    data = make_tiny_dataset(tmp_path / "tiny", n_train=8, n_val=4)
    broken = tmp_path / "broken.yaml"  # exists when queued, names no images: its run fails, the queue goes on
    broken.write_text(f"path: {tmp_path / 'nowhere'}\ntrain: images\nval: images\nnames: {{0: a}}\n")
    env = {**os.environ}
    for name, d, epochs in [("one", str(data), "200"), ("bad", str(broken), "1"), ("two", str(data), "1")]:
        subprocess.run([sys.executable, "-m", "omr_core.cli", "train", "--queue", "--runs-dir", str(runs), "--data", d,
                        "--name", name, "--epochs", epochs, "--imgsz", "64", "--batch", "4", "--device", "cpu",
                        "--preset", "ultralytics", "workers=0", "nbs=4"], check=True, capture_output=True, env=env,
                       timeout=120)
    _wait(lambda: (runs / "one" / "run.json").exists(), 60, "one did not start")
    pid = queue.runner_pid(runs)
    assert pid is not None  # "bad" and "two" wait for the CPU that "one" (200 epochs) holds
    os.kill(pid, signal.SIGKILL)  # the machine rebooted, say: the queue file is all that is left
    _wait(lambda: not _runner_processes(runs), 30, "runner still running")
    assert queue.runner_pid(runs) is None
    launcher.kill("one", runs)
    _wait(lambda: (_run_json(runs / "one") or {}).get("state") == "failed", 60, "one did not end")
    # No runner process exists, so nothing can start "bad": it is still in line.
    assert not _runner_processes(runs) and [e.state for e in queue.entries(runs)] == ["started", "waiting", "waiting"]
    out = subprocess.run([sys.executable, "-m", "omr_core.cli", "queue", "run", "--runs-dir", str(runs)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "PID" in out.stdout
    _wait(lambda: (_run_json(runs / "two") or {}).get("state") in ("finished", "failed"), 300, "two did not end")
    docs = {n: _run_json(runs / n) or {} for n in ("one", "bad", "two")}
    assert docs["bad"]["state"] == "failed" and docs["two"]["state"] == "finished"  # a failed run blocks nobody
    # One lane, one run at a time, in order.
    assert docs["one"]["ended"] <= docs["bad"]["launched"] and docs["bad"]["ended"] <= docs["two"]["launched"]
    _wait(lambda: not _runner_processes(runs), 30, "the runner did not exit with nothing waiting")
    listed = subprocess.run([sys.executable, "-m", "omr_core.cli", "queue", "--runs-dir", str(runs)],
                            capture_output=True, text=True, env=env, timeout=60).stdout
    assert listed.count("started") == 3 and "not running" in listed
    log = (runs / "queue.log").read_text()
    assert log.count("started one") == log.count("started bad") == log.count("started two") == 1


def test_one_runner_per_runs_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    queue.add(_spec("held"), runs, start_runner=False)
    queue.hold(runs, "held")
    queue.add(_spec("w", device="7"), runs, start_runner=False)  # waits for a GPU 7 that a live fake run holds
    env = {**os.environ}
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        write_run(runs / "busy7", epochs_done=1, epochs=5, state="running", pid=sleeper.pid,
                  pid_create_time=psutil.Process(sleeper.pid).create_time(), args={"device": "7"})
        procs = [subprocess.Popen([sys.executable, "-m", "omr_core.training.queue", str(runs)], env=env)
                 for _ in range(3)]
        _wait(lambda: sum(p.poll() is not None for p in procs) >= 2, 60, "extra runners did not leave")
        alive = [p for p in procs if p.poll() is None]
        assert len(alive) == 1 and queue.runner_pid(runs) == alive[0].pid
        queue.cancel(runs, "w")  # nothing waits any more (the held entry does not count): the runner leaves
        alive[0].wait(30)
        assert queue.runner_pid(runs) is None
    finally:
        sleeper.kill()
        for p in procs:
            if p.poll() is None:
                p.kill()
