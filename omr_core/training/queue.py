"""The run queue: runs wait their turn per device (each GPU, or the CPU) and start in order, unattended.

The queue is ``<runs>/queue.json`` (written atomically under ``<runs>/.queue.lock``), so it survives a dashboard
restart and a reboot. A runner process (``python -m omr_core.training.queue RUNS_DIR``, detached, one per runs
folder: it holds ``<runs>/.queue-runner.lock``) starts the next entry of a device as soon as that device is free,
and exits when nothing is waiting. Every command that edits the queue (the Training page, ``omr queue``) makes sure
a runner is there; after a reboot the first of them resumes the queue (or ``omr queue run`` from a ``@reboot``
cron line). A run that fails, or fails to start, never blocks the entries behind it.

A device is a *lane*: ``cpu``, ``mps``, ``gpu0``, ``gpu1``, ...; a DDP run (``device=0,1``) takes every lane it
names and waits until all are free. Runs launched directly (not through the queue) occupy their lanes too.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from omr_core.atomic import write_json
from omr_core.errors import OmrError
from omr_core.training.runs import (
    LIVE_STATES,
    discover_runs,
    effective_state,
    file_lock,
    process_alive,
    process_start_time,
    read_json,
    read_run,
)
from omr_core.training.spec import TrainSpec, normalize_device

QUEUE = "queue.json"
QUEUE_LOG = "queue.log"  # one line per start, failed start and runner start/exit: what happened overnight
_LOCK = ".queue.lock"
_RUNNER_LOCK = ".queue-runner.lock"
_RUNNER = ".queue-runner.json"
#: Seconds between the runner's looks at the runs (the gap between one run's end and the next one's start).
POLL_S = 0.2

#: Entry states: waiting (in line), held (kept in line but skipped), started (launched as ``run``),
#: not_started (its launch failed: ``reason``).
ENTRY_STATES = ("waiting", "held", "started", "not_started")


class QueueError(OmrError):
    """A queue edit that cannot be done as asked (unknown entry, a move past the end, ...)."""


@dataclass(frozen=True)
class Entry:
    """One queued run: its validated spec, its lanes, where it stands."""

    id: str
    spec: dict[str, Any]
    lanes: tuple[str, ...]
    state: str = "waiting"
    added: float = 0.0
    started: float | None = None
    reason: str = ""

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def device(self) -> str:
        return str((self.spec.get("args") or {}).get("device", "") or "")


def lanes_of(device: Any) -> tuple[str, ...]:
    """The lanes a run with this Ultralytics ``device`` occupies (empty device: GPU 0 when there is one, else CPU)."""
    d = normalize_device(device)
    if d in ("cpu", "mps"):
        return (d,)
    if d == "":
        from omr_core.training.gpu import probe

        return ("gpu0",) if probe().available else ("cpu",)
    ids = [p.replace("cuda:", "") for p in d.split(",")]
    return tuple(f"gpu{int(i)}" for i in ids if i.isdigit()) or ("gpu0",)


@contextlib.contextmanager
def _locked(runs: Path) -> Iterator[None]:
    runs.mkdir(parents=True, exist_ok=True)
    with file_lock(runs / _LOCK):
        yield


def _read(runs: Path) -> list[Entry]:
    doc = read_json(runs / QUEUE) or {}
    out = []
    for e in doc.get("entries") or []:
        try:
            out.append(Entry(str(e["id"]), dict(e["spec"]), tuple(e["lanes"]), str(e.get("state", "waiting")),
                             float(e.get("added") or 0), e.get("started"), str(e.get("reason") or "")))
        except (KeyError, TypeError, ValueError):
            continue  # a damaged entry is dropped, never fatal: the rest of the queue goes on
    return out


def _log(runs: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(runs / QUEUE_LOG, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {line}\n")


def _write(runs: Path, entries: list[Entry]) -> None:
    write_json(runs / QUEUE, {"format": 1, "entries": [asdict(e) for e in entries]})


def entries(runs: str | os.PathLike[str]) -> list[Entry]:
    """The queue in order (started and failed-to-start entries included, most recent last)."""
    return _read(Path(runs))


def add(spec: TrainSpec, runs: str | os.PathLike[str], *, start_runner: bool = True) -> Entry:
    """Put a validated spec at the end of its device's line; returns the entry."""
    runs = Path(runs)
    with _locked(runs):
        cur = _read(runs)
        if (runs / spec.name).exists() or any(e.name == spec.name and e.state in ("waiting", "held") for e in cur):
            raise QueueError(f"a run or queued run named {spec.name!r} exists already: choose another name")
        e = Entry(uuid.uuid4().hex[:8], spec.to_dict(), lanes_of(spec.args.get("device", "")), added=time.time())
        _write(runs, [*cur, e])
    if start_runner:
        ensure_runner(runs)
    return e


def _edit(runs: Path, ident: str, fn: Any) -> list[Entry]:
    with _locked(runs):
        cur = _read(runs)
        idx = [i for i, e in enumerate(cur) if e.id == ident or e.name == ident]
        if not idx:
            raise QueueError(f"no queue entry {ident!r} (see `omr queue`)")
        new = fn(cur, idx[0])
        _write(runs, new)
    return new


def cancel(runs: str | os.PathLike[str], ident: str) -> None:
    """Remove a waiting or held entry (a started one is a run: stop it instead)."""
    def fn(cur: list[Entry], i: int) -> list[Entry]:
        if cur[i].state == "started":
            raise QueueError(f"{cur[i].name!r} has started: stop the run instead (omr stop {cur[i].name})")
        return cur[:i] + cur[i + 1:]

    _edit(Path(runs), ident, fn)


def hold(runs: str | os.PathLike[str], ident: str, held: bool = True) -> None:
    """Hold an entry (it keeps its place, the ones behind it go first) or release it."""
    def fn(cur: list[Entry], i: int) -> list[Entry]:
        if cur[i].state not in ("waiting", "held"):
            raise QueueError(f"{cur[i].name!r} is {cur[i].state}: only waiting entries can be held or released")
        cur[i] = replace(cur[i], state="held" if held else "waiting")
        return cur

    _edit(Path(runs), ident, fn)
    if not held:
        ensure_runner(Path(runs))


def move(runs: str | os.PathLike[str], ident: str, by: int) -> None:
    """Move an entry ``by`` places (negative: earlier) among the entries still in line."""
    def fn(cur: list[Entry], i: int) -> list[Entry]:
        line = [k for k, e in enumerate(cur) if e.state in ("waiting", "held")]
        if i not in line:
            raise QueueError(f"{cur[i].name!r} is {cur[i].state}: only entries still in line can move")
        pos = line.index(i)
        to = max(0, min(len(line) - 1, pos + by))
        order = [cur[k] for k in line]
        order.insert(to, order.pop(pos))
        out = list(cur)
        for k, e in zip(line, order):
            out[k] = e
        return out

    _edit(Path(runs), ident, fn)


def clear_done(runs: str | os.PathLike[str]) -> int:
    """Forget started and failed-to-start entries (their runs stay); returns how many."""
    runs = Path(runs)
    with _locked(runs):
        cur = _read(runs)
        keep = [e for e in cur if e.state in ("waiting", "held")]
        _write(runs, keep)
    return len(cur) - len(keep)


def busy_lanes(runs: Path) -> set[str]:
    """Lanes held by live runs of this runs folder (queued or launched directly)."""
    busy: set[str] = set()
    for d in discover_runs(runs):
        rec = read_run(d)
        if rec is None or effective_state(rec)[0] not in LIVE_STATES:
            continue
        try:
            busy.update(lanes_of(rec.args.get("device", "")))
        except OmrError:
            busy.add("cpu")
    return busy


def step(runs: str | os.PathLike[str], *, launch: Any = None) -> list[str]:
    """Start every entry whose lanes are free, in order (an entry waiting for a lane keeps later ones of that lane
    waiting too); returns the names started. ``launch`` defaults to `omr_core.training.launcher.launch`."""
    from omr_core.training import launcher

    launch = launch or launcher.launch
    runs = Path(runs)
    started: list[str] = []
    with _locked(runs):
        cur = _read(runs)
        busy = busy_lanes(runs)
        blocked: set[str] = set()
        for i, e in enumerate(cur):
            if e.state != "waiting":
                continue
            lanes = set(e.lanes)
            if lanes & (busy | blocked):
                blocked |= lanes  # first come, first served on each lane
                continue
            try:
                launch(TrainSpec(**e.spec), runs)
            except (OmrError, OSError) as exc:
                cur[i] = replace(e, state="not_started", started=time.time(), reason=str(exc))
                _log(runs, f"could not start {e.name}: {exc}")
                continue
            cur[i] = replace(e, state="started", started=time.time())
            _log(runs, f"started {e.name} on {', '.join(e.lanes)}")
            busy |= lanes
            started.append(e.name)
        _write(runs, cur)
    return started


def waiting(runs: Path) -> bool:
    return any(e.state == "waiting" for e in _read(runs))


# -- the runner ----------------------------------------------------------------------------------------------------


def runner_pid(runs: str | os.PathLike[str]) -> int | None:
    """The PID of this runs folder's queue runner, or None when none runs."""
    doc = read_json(Path(runs) / _RUNNER) or {}
    pid, ctime = doc.get("pid"), doc.get("create_time")
    return int(pid) if pid and process_alive(pid, ctime) else None


def ensure_runner(runs: str | os.PathLike[str]) -> int | None:
    """Start the runner if entries wait and none runs; returns its PID (None when nothing waits).

    Checked under the queue lock, the lock under which a runner decides to exit: an entry added while the last
    runner leaves either is seen by that runner or finds no runner here and starts one.
    """
    from omr_core.training.launcher import worker_env

    runs = Path(runs)
    with _locked(runs):
        pid = runner_pid(runs)
        if pid is not None or not waiting(runs):
            return pid
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "omr_core.training.queue", str(runs)], cwd=runs, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
            env=worker_env(None),
        )
        # Recorded here, under the lock, not only by the runner once it has started: a second call meanwhile must
        # see this one instead of starting another.
        write_json(runs / _RUNNER, {"pid": proc.pid, "create_time": process_start_time(proc.pid),
                                           "since": time.time()})
    return proc.pid


def run_queue(runs: Path, *, poll_s: float = POLL_S) -> int:
    """The runner's loop: start what can start, until nothing waits. One runner per runs folder (a lock)."""
    import fcntl

    runs.mkdir(parents=True, exist_ok=True)
    fd = os.open(runs / _RUNNER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0  # another runner has this folder
    pid = os.getpid()
    write_json(runs / _RUNNER, {"pid": pid, "create_time": process_start_time(pid), "since": time.time()})
    _log(runs, "runner started")
    try:
        while True:
            step(runs)
            with _locked(runs):  # the exit decision and ensure_runner's check exclude each other
                if not waiting(runs):
                    _log(runs, "runner exits: nothing waits")
                    (runs / _RUNNER).unlink(missing_ok=True)
                    os.close(fd)  # releases the runner lock before the queue lock: a new runner can start at once
                    fd = -1
                    return 0
            time.sleep(poll_s)
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                (runs / _RUNNER).unlink()
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m omr_core.training.queue RUNS_DIR", file=sys.stderr)
        return 2
    return run_queue(Path(argv[0]).resolve())


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ENTRY_STATES", "Entry", "QueueError", "add", "busy_lanes", "cancel", "clear_done", "ensure_runner",
           "entries", "hold", "lanes_of", "move", "run_queue", "runner_pid", "step"]
