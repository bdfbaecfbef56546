"""Start training as a detached worker process (own session) and control it: stop, kill, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omr_core.atomic import write_json
from omr_core.training.record import LIVE_STATES, RunRecord, RunState
from omr_core.training.runs import (
    EVENTS,
    LOG,
    STOP_REQUEST,
    RunError,
    RunExistsError,
    RunView,
    append_event,
    effective_state,
    find_run,
    process_alive,
    process_start_time,
    read_json,
    read_run,
    run_lock,
    update_run,
    write_run,
)
from omr_core.training.scale import run_scale
from omr_core.training.spec import RESUME_ALLOWED, SpecError, TrainSpec, check_keys, normalize_device
from omr_core.workspace import REPO_ROOT, get_workspace

WORKER_MODULE = "omr_core.training.worker"


def _runs_dir(runs_dir: str | os.PathLike[str] | None) -> Path:
    return Path(runs_dir).expanduser().resolve() if runs_dir else get_workspace().runs


def worker_command(run_dir: Path) -> list[str]:
    """The worker's argv (no shell): this Python, ``-m omr_core.training.worker``, the run folder."""
    return [sys.executable, "-m", WORKER_MODULE, str(run_dir)]


def worker_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    # The worker must import this omr_core even when the package is not installed (a checkout run in place).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # the log file is read live
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra or {})
    return env


def _reap(proc: subprocess.Popen[bytes], run_dir: Path) -> None:
    """Wait for the worker (no zombie while we live) and record an exit the worker could not record itself."""
    code = proc.wait()
    reason = f"worker exited with code {code}"
    if code < 0:
        try:
            reason = f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    try:
        with run_lock(run_dir):
            doc = read_run(run_dir)
            if doc is None or not doc.live or doc.pid != proc.pid:
                return
        update_run(run_dir, state=RunState.FAILED, reason=reason, exit_code=code, ended=time.time(), phase=None)
    except FileNotFoundError:  # the folder was deleted by hand while the worker ran: nobody is left to tell
        return


def _start_worker(run_dir: Path, env: Mapping[str, str] | None) -> None:
    """`_spawn` the worker; a worker that cannot start leaves the run failed with the reason, not starting forever."""
    try:
        _spawn(run_dir, env)
    except OSError as exc:
        update_run(run_dir, state=RunState.FAILED, reason=f"could not start the worker: {exc}", ended=time.time())
        raise RunError(f"could not start the training worker: {exc}") from exc


def _spawn(run_dir: Path, env: Mapping[str, str] | None = None) -> int:
    cmd = worker_command(run_dir)
    events = run_dir / EVENTS
    events_offset = events.stat().st_size if events.is_file() else 0  # this session's events start here
    with open(run_dir / LOG, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd,
            cwd=run_dir,  # stray files Ultralytics writes to the working directory land in the run folder
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the dashboard and the terminal; kill targets its process group
            close_fds=True,
            env=worker_env(env),
        )
    update_run(run_dir, pid=proc.pid, pid_create_time=process_start_time(proc.pid), command=cmd)
    threading.Thread(target=_reap, args=(proc, run_dir), name=f"omr-reap-{proc.pid}", daemon=True).start()
    _start_notifier(run_dir, proc.pid, events_offset, env)
    return proc.pid


def _start_notifier(run_dir: Path, worker_pid: int, events_offset: int, env: Mapping[str, str] | None) -> None:
    """Push notifications for this session, from a process of its own (see `omr_core.notify.watch`)."""
    from omr_core.notify import spawn_watcher

    try:
        pid = spawn_watcher(run_dir, worker_pid, events_offset, worker_env(env))
    except OSError as exc:
        append_event(run_dir, "notify_failed", f"the notifier did not start: {exc}")
        return
    if pid is not None:
        (run_dir / ".notify").mkdir(exist_ok=True)
        (run_dir / ".notify" / "watcher.pid").write_text(f"{pid}\n")


def launch(
    spec: TrainSpec,
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    sample_interval: float = 1.0,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Create the run folder and start its worker detached; returns the folder.

    The folder is created with one ``os.mkdir``: of two launches with the same name, exactly one succeeds.

    Args:
        spec: What to train (see `omr_core.training.spec.build_spec`).
        runs_dir: Runs folder (default: the workspace's).
        sample_interval: Seconds between GPU/CPU samples (>= 0.2).
        env: Extra environment variables for the worker.

    Raises:
        RunExistsError: A run with that name exists (or is being created by another launch).
    """
    from omr_core.training.gpu import MIN_INTERVAL_S

    if sample_interval < MIN_INTERVAL_S:
        raise SpecError(f"sample interval must be at least {MIN_INTERVAL_S} s")
    root = _runs_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    run_dir = root / spec.name
    try:
        os.mkdir(run_dir)
    except FileExistsError:
        raise RunExistsError(
            f"a run named {spec.name!r} already exists in {root}: choose another name, "
            f"resume it (omr resume {spec.name}) or delete it"
        ) from None
    now = time.time()
    write_run(run_dir, RunRecord(
        name=spec.name,
        mode="train",
        state=RunState.STARTING,
        created=now,
        launched=now,
        updated=now,
        spec=spec.to_dict(),
        args={"model": spec.model, "data": spec.data, **spec.args},
        scale=run_scale(spec.data, dict(spec.args)),  # how the weights must be run (training/scale.py)
        command=worker_command(run_dir),
        sample_interval=float(sample_interval),
    ))
    _start_worker(run_dir, env)
    return run_dir


def unique_name(runs_dir: str | os.PathLike[str] | None, base: str) -> str:
    """``base`` or ``base-2``, ``base-3`` ... whichever does not exist yet in the runs folder."""
    root = _runs_dir(runs_dir)
    name, k = base, 1
    while (root / name).exists():
        k += 1
        name = f"{base}-{k}"
    return name


def _live_doc(run_dir: Path) -> RunRecord:
    doc = read_run(run_dir)
    state, reason = effective_state(doc)
    if doc is None:
        raise RunError(f"{run_dir.name} was not started by omr (no run.json): it cannot be controlled from here")
    if state not in LIVE_STATES:
        raise RunError(f"run {run_dir.name!r} is not running (state: {state}{'; ' + reason if reason else ''})")
    return doc


#: How a graceful stop can happen, default first.
STOP_MODES = ("epoch", "batch")


def stop_consequence(at: str, epoch: int | None, batch: int | None, batches: int | None) -> str:
    """What a stop ``at`` "epoch" or "batch" does to the epoch in progress, in one sentence for the person.

    Ultralytics leaves the batch loop when asked to stop, validates and saves that epoch as done: a stop mid-epoch
    silently skips the rest of it, and resume starts with the next epoch.

    Examples:
        >>> stop_consequence("batch", 3, 1, 2)
        'Stops after batch 1/2 of epoch 3: the other 1 batch of epoch 3 is skipped, yet Ultralytics saves epoch 3 as done and resume starts at epoch 4.'
    """
    if epoch is None:
        return "Stops at the end of the epoch in progress." if at == "epoch" else "Stops after the batch in progress."
    left = (batches - batch) if batch is not None and batches else None
    if at == "epoch":
        more = f" ({left} more batch{'es' if left != 1 else ''})" if left else ""
        return f"Finishes epoch {epoch}{more}, validates it, then stops; resume starts at epoch {epoch + 1}."
    where = f"batch {batch}/{batches} of epoch {epoch}" if batch is not None and batches else f"this batch of epoch {epoch}"
    lost = (f"the other {left} batch{'es' if left != 1 else ''} of epoch {epoch} {'are' if left != 1 else 'is'} skipped"
            if left else f"the rest of epoch {epoch} is skipped")
    return f"Stops after {where}: {lost}, yet Ultralytics saves epoch {epoch} as done and resume starts at epoch {epoch + 1}."


def pending_stop(run_dir: str | os.PathLike[str]) -> str | None:
    """The mode ("epoch" or "batch") of a stop requested and not yet done, or None."""
    req = Path(run_dir) / STOP_REQUEST
    if not req.is_file():
        return None
    doc = read_json(req) or {}
    return "epoch" if doc.get("mode") == "epoch" else "batch"


def stop(run: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None, *, at: str = "epoch") -> Path:
    """Ask a run to stop gracefully, keeping a resumable checkpoint.

    Args:
        run: Run name (or folder).
        runs_dir: Runs folder.
        at: "epoch" (default) finishes the epoch in progress first; "batch" stops after the current batch, and
            Ultralytics then validates and saves the partial epoch as done (see `stop_consequence`).
    """
    if at not in STOP_MODES:
        raise RunError(f"stop at {at!r}: use 'batch' or 'epoch'")
    run_dir = find_run(_runs_dir(runs_dir), str(run))
    _live_doc(run_dir)
    write_json(run_dir / STOP_REQUEST, {"mode": at, "t": time.time()})
    append_event(run_dir, "stop_requested", f"Stop requested ({'after this batch' if at == 'batch' else 'at the end of this epoch'}).")
    return run_dir


def kill(run: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """Kill a run now (SIGKILL to its whole process group: dataloader workers and DDP ranks included).

    The last ``weights/last.pt`` stays resumable unless the run was in its final step.
    """
    run_dir = find_run(_runs_dir(runs_dir), str(run))
    doc = _live_doc(run_dir)
    pid, ctime = doc.pid, doc.pid_create_time
    if not pid or not process_alive(pid, ctime):  # still starting, no worker yet
        update_run(run_dir, state=RunState.FAILED, reason="killed before the worker started", ended=time.time())
        return run_dir
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    update_run(run_dir, state=RunState.FAILED, reason="killed by user (SIGKILL)", exit_code=-signal.SIGKILL,
               ended=time.time(), phase=None)
    append_event(run_dir, "killed", "Killed by user (SIGKILL to the process group).")
    return run_dir


def resume(
    run: str | os.PathLike[str],
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Resume a stopped or failed run from its last resumable checkpoint, in the same folder.

    Ultralytics resumes with the checkpoint's own arguments: ``epochs`` cannot be raised on resume (to train
    longer, start a new run with ``model=<run>/weights/last.pt``). Only memory/device-type arguments may change:
    see `omr_core.training.spec.RESUME_ALLOWED`.

    Raises:
        RunError: The run is live, finished, or has no resumable checkpoint; or an override is not allowed.
    """
    over = dict(overrides or {})
    check_keys(over)
    refused = sorted(set(over) - RESUME_ALLOWED)
    if refused:
        extra = " Ultralytics cannot raise epochs on resume: start a new run from weights/last.pt instead." if "epochs" in refused else ""
        raise RunError(f"cannot change {', '.join(refused)} on resume (allowed: {', '.join(sorted(RESUME_ALLOWED))}).{extra}")
    if "device" in over:
        over["device"] = normalize_device(over["device"])
    run_dir = find_run(_runs_dir(runs_dir), str(run))
    with run_lock(run_dir):  # two resumes at once: the second sees "starting" and refuses
        view = RunView(run_dir, batch_tail_bytes=0).poll(samples=False)
        s = view.summary()
        if s.live:
            raise RunError(f"run {s.name!r} is {s.state}: nothing to resume")
        if s.state == "finished":
            raise RunError(
                f"run {s.name!r} finished all {s.epochs} epochs. Ultralytics cannot raise epochs on resume: "
                f"start a new run with model={run_dir / 'weights' / 'last.pt'} to train longer"
            )
        if not s.resumable:
            raise RunError(f"run {s.name!r} has no resumable checkpoint (weights/last.pt with optimizer state)")
        doc = view.doc or RunRecord(name=run_dir.name, created=time.time(), args=dict(view.args), external=True)
        history = list(doc.history)
        if doc.started:
            end = doc.ended or doc.updated  # a vanished worker wrote no end: its last sign of life
            history.append({"session": doc.session, "started": doc.started, "ended": doc.ended, "state": s.state.value,
                            "exit_code": doc.exit_code, "reason": s.reason,
                            "duration_s": max(0.0, end - doc.started) if end else None})
        now = time.time()
        write_run(run_dir, doc.changed(
            mode="resume", state=RunState.STARTING, launched=now, resume_from=s.resumable, resume_args=over,
            history=history, pid=None, pid_create_time=None, started=None, ended=None, exit_code=None, duration_s=None,
            reason="", phase=None, updated=now))
    (run_dir / STOP_REQUEST).unlink(missing_ok=True)
    append_event(run_dir, "resumed", f"Resuming from {s.resumable} (epoch {s.epoch} done of {s.epochs}).")
    _start_worker(run_dir, env)
    return run_dir
