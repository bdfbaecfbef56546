"""Push notifications (Apprise), with a real receiver on the loopback: an HTTP server in the test and `json://`.

What is real: the Apprise delivery over HTTP, the notifier process the launcher starts beside each worker session,
CPU trainings through the launcher, SIGKILL of the worker's process group. The one thing written by hand is a
non-finite loss: a fake worker (a `sleep` process standing in for the worker's PID) appends the events the worker
writes when a loss goes NaN, because no argument Ultralytics accepts makes a tiny CPU run go NaN on purpose.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from omr_core.atomic import write_json
from omr_core.notify import (
    NotifySettingsError,
    add_target,
    load_settings,
    mask_url,
    remove_target,
    send_test,
    settings_path,
)
from omr_core.notify.settings import scrub
from omr_core.notify.watch import RunNotifier, claim
from omr_core.training import launcher
from omr_core.training.runs import RunView, append_event, process_start_time, read_json
from omr_core.training.spec import build_spec
from omr_core.workspace import get_workspace
from tests.core.training.tiny_dataset import make_tiny_dataset
from tests.notify_receiver import SECRET, Receiver


def _run_json(run_dir: Path) -> dict[str, Any] | None:
    """run.json as the plain dict it is on disk."""
    return read_json(Path(run_dir) / "run.json")

@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    (root / "runs").mkdir(parents=True)
    monkeypatch.setenv("OMR_WORKSPACE", str(root))
    monkeypatch.delenv("OMR_NOTIFY", raising=False)
    monkeypatch.delenv("OMR_RUNS_DIR", raising=False)
    return root


def _fast_retry(root: Path, attempts: int = 2) -> None:
    p = settings_path()
    doc = json.loads(p.read_text())
    doc["retry"] = {"attempts": attempts, "backoff_s": [0.1]}
    p.write_text(json.dumps(doc))


def _wait_gone(pid: int, timeout: float = 180) -> None:
    """Wait for a process to end (the notifier exits once its session ended and every delivery was tried)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise TimeoutError(f"process {pid} still running after {timeout} s")


def _watcher_pid(run_dir: Path, timeout: float = 60) -> int:
    p = run_dir / ".notify" / "watcher.pid"
    deadline = time.monotonic() + timeout
    while not p.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{p} was not written")
        time.sleep(0.05)
    return int(p.read_text())


def _assert_no_secret(run_dir: Path) -> None:
    for f in run_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert SECRET.encode() not in data and b"/hook/" not in data, f"notification URL leaked into {f}"


# -- settings ------------------------------------------------------------------------------------------------------


def test_settings_file_is_private_and_urls_are_masked(ws: Path, receiver: Receiver) -> None:
    s = add_target(receiver.url, ["finished", "failed"])
    p = settings_path()
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 and stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    assert [t.kinds for t in s.targets] == [("finished", "failed")]
    assert SECRET not in s.targets[0].masked and s.targets[0].masked == "json://127…"
    assert mask_url("ntfy://x") == "ntfy://****" and mask_url("nonsense") == "****"
    assert SECRET not in scrub(f"POST http://127.0.0.1:9/hook/{SECRET} failed", [receiver.url])
    with pytest.raises(NotifySettingsError, match="already a target"):
        add_target(receiver.url)
    with pytest.raises(NotifySettingsError, match="service://"):
        add_target("not a url")
    with pytest.raises(NotifySettingsError, match="unknown notification kind"):
        add_target("ntfy://topic", ["finishd"])
    assert remove_target(1).targets == ()


def test_env_targets_receive_every_kind(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMR_NOTIFY", "ntfy://a, ntfy://b")
    s = load_settings()
    assert [t.source for t in s.targets] == ["env", "env"] and all(t.wants("stalled") for t in s.targets)
    with pytest.raises(NotifySettingsError, match="OMR_NOTIFY"):
        remove_target(1)


def test_send_test_reaches_the_receiver_and_the_cli_says_so(ws: Path, receiver: Receiver) -> None:
    add_target(receiver.url)
    [d] = send_test()
    assert d.ok and receiver.titles() == ["OMR dashboard: test message"]
    out = subprocess.run([sys.executable, "-m", "omr_core.cli", "notify", "test"], capture_output=True, text=True,
                         env={**os.environ}, timeout=60)
    assert out.returncode == 0 and "sent" in out.stdout and SECRET not in out.stdout
    assert len(receiver.got) == 2
    shown = subprocess.run([sys.executable, "-m", "omr_core.cli", "notify", "show"], capture_output=True, text=True,
                           timeout=60)
    assert "json://127…" in shown.stdout and SECRET not in shown.stdout


def test_one_claim_per_key() -> None:
    import tempfile

    d = Path(tempfile.mkdtemp())
    assert claim(d, "failed") and not claim(d, "failed") and claim(d, "stalled")


# -- the notifier process ------------------------------------------------------------------------------------------


def _fake_run(ws: Path, name: str) -> tuple[Path, subprocess.Popen[bytes]]:
    """A run folder whose 'worker' is a sleeping process: the notifier follows it as it follows a real one."""
    run_dir = ws / "runs" / name
    run_dir.mkdir(parents=True)
    proc = subprocess.Popen(["sleep", "600"])
    write_json(run_dir / "run.json", {"format": 1, "name": name, "state": "running", "pid": proc.pid,
                                              "pid_create_time": process_start_time(proc.pid), "epochs": 3,
                                              "session": 1, "started": time.time()})
    return run_dir, proc


def test_nonfinite_loss_sends_one_alert_not_one_per_epoch(ws: Path, receiver: Receiver) -> None:
    add_target(receiver.url)
    _fast_retry(ws)
    run_dir, worker = _fake_run(ws, "nanrun")
    watcher = subprocess.Popen([sys.executable, "-m", "omr_core.notify.watch", str(run_dir), str(worker.pid), "0"])
    try:
        for epoch in (1, 2, 3):  # what the worker writes: once per epoch in which a loss was not finite
            append_event(run_dir, "nonfinite_loss", f"Non-finite loss (box_loss) at epoch {epoch}, batch 1/4.",
                         epoch=epoch, batch=1)
        append_event(run_dir, "nan_recovery", "Loss NaN/Inf detected (attempt 1/3), recovering from last.pt...")
        deadline = time.monotonic() + 60
        while not receiver.got and time.monotonic() < deadline:
            time.sleep(0.05)
        doc = _run_json(run_dir) or {}
        write_json(run_dir / "run.json", {**doc, "state": "finished", "ended": time.time()})
        watcher.wait(120)
    finally:
        worker.kill()
        worker.wait()
        if watcher.poll() is None:
            watcher.kill()
    assert receiver.titles() == ["OMR run nanrun: non-finite loss", "OMR run nanrun: finished"]
    assert "nonfinite_loss ×4" in receiver.got[1]["message"]  # later ones are counted in the final message
    _assert_no_secret(run_dir)


def _spec(name: str, data: Path, epochs: int) -> Any:
    return build_spec(name, "yolov8n.yaml", str(data), preset="ultralytics",
                      args={"epochs": epochs, "imgsz": 64, "batch": 4, "device": "cpu", "workers": 0, "nbs": 4})


@pytest.mark.slow
def test_finished_run_sends_exactly_one_finished(ws: Path, receiver: Receiver, tmp_path: Path) -> None:
    add_target(receiver.url)
    data = make_tiny_dataset(tmp_path / "tiny", n_train=8, n_val=4)
    run_dir = launcher.launch(_spec("fin", data, 1), get_workspace().runs)
    _wait_gone(_watcher_pid(run_dir))
    assert (_run_json(run_dir) or {}).get("state") == "finished"
    assert receiver.titles() == ["OMR run fin: finished"]
    assert "1 of 1 epochs done" in receiver.got[0]["message"]
    _assert_no_secret(run_dir)
    out = subprocess.run([sys.executable, "-m", "omr_core.cli", "runs", "--json"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and SECRET not in out.stdout and "/hook/" not in out.stdout


@pytest.mark.slow
def test_sigkill_sends_one_failed_from_the_notifier(ws: Path, receiver: Receiver, tmp_path: Path) -> None:
    """Launched by the CLI (which exits at once) and killed by a bare SIGKILL: nobody but the notifier is left to
    notice, and run.json still says "running"."""
    add_target(receiver.url)
    data = make_tiny_dataset(tmp_path / "tiny", n_train=16, n_val=4)
    subprocess.run([sys.executable, "-m", "omr_core.cli", "train", "--data", str(data), "--name", "killed",
                    "--epochs", "200", "--imgsz", "64", "--batch", "4", "--device", "cpu", "workers=0", "nbs=4"],
                   check=True, capture_output=True, timeout=120)
    run_dir = get_workspace().runs / "killed"
    watcher = _watcher_pid(run_dir)
    view = RunView(run_dir)
    deadline = time.monotonic() + 180
    while (view.poll().summary().batch or 0) < 1:  # training, not just starting
        assert time.monotonic() < deadline, "no batch within 180 s"
        time.sleep(0.1)
    pid = int((_run_json(run_dir) or {})["pid"])
    os.killpg(pid, signal.SIGKILL)  # the worker's whole process group, as the OOM killer or `kill -9 -PGID` would
    _wait_gone(watcher)
    assert (_run_json(run_dir) or {}).get("state") == "running"  # nobody recorded the end: the notifier noticed
    assert receiver.titles() == ["OMR run killed: FAILED"]
    msg = receiver.got[0]["message"]
    assert "Reason: worker vanished" in msg and "Last epoch completed" in msg
    _assert_no_secret(run_dir)


class _Blackhole:
    """A port that accepts connections and never answers: the worst endpoint (each try waits for its timeout)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"json://127.0.0.1:{self.sock.getsockname()[1]}/hook/{SECRET}?cto=1&rto=1"


@pytest.mark.slow
def test_unreachable_endpoint_is_reported_in_events_by_the_notifier_not_the_worker(ws: Path, tmp_path: Path) -> None:
    hole = _Blackhole()
    try:
        add_target(hole.url, ["finished"])
        _fast_retry(ws, attempts=2)
        data = make_tiny_dataset(tmp_path / "tiny", n_train=8, n_val=4)
        run_dir = launcher.launch(_spec("hole", data, 1), get_workspace().runs)
        watcher = _watcher_pid(run_dir)
        _wait_gone(watcher)
    finally:
        hole.sock.close()
    doc = _run_json(run_dir) or {}
    assert doc.get("state") == "finished"
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines() if x.strip()]
    failed = [e for e in events if e["kind"] == "notify_failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 2 and failed[0]["notification"] == "finished"
    # Delivered (and waited for) by the notifier process, never by the worker: the training loop cannot be slowed.
    assert failed[0]["pid"] == watcher != doc.get("pid")
    _assert_no_secret(run_dir)


def test_notifier_bookkeeping_skips_kinds_nobody_wants(ws: Path, receiver: Receiver) -> None:
    add_target(receiver.url, ["finished"])
    run_dir = ws / "runs" / "r"
    run_dir.mkdir()
    n = RunNotifier(run_dir, load_settings(), "r", 1)
    assert n.on_event({"kind": "alert", "alert": "stalled", "message": "no batch"}) is None
    assert n.on_event({"kind": "epoch_redone", "message": "x"}) is None
