"""Run folders: file names, run.json (atomic, locked), process identity, live views, listing and deleting runs."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from omr_core.atomic import write_json
from omr_core.errors import OmrError
from omr_core.training import layouts
from omr_core.training.record import LIVE_STATES, RunRecord, RunState
from omr_core.training.tail import (
    Columns,
    ColumnStore,
    JsonlTail,
    ResultsCsvTail,
    ResultsTable,
    flatten_record,
    tail_text,
)

# Files inside a run folder, next to Ultralytics' own (args.yaml, results.csv, weights/).
RUN_JSON = "run.json"
BATCHES = "batches.jsonl"
BATCHES_REDONE = "batches.redone.jsonl"  # records of epochs a resume trained again (see training/redo.py)
EVENTS = "events.jsonl"
CLASS_AP = "class_ap.jsonl"  # per-class AP of each epoch's validation (the worker writes it)
LOG = "log.txt"
GPU = "gpu.jsonl"
STOP_REQUEST = "stop.request"
RESULTS = "results.csv"
RESULTS_REDONE = "results.redone.csv"
ARGS_YAML = "args.yaml"
OPT_YAML = "opt.yaml"  # YOLOv5 wrote its arguments here
LAST = "weights/last.pt"
BEST = "weights/best.pt"
RESUMABLE = "weights/last_resumable.pt"
_LOCK = ".run.lock"

#: A run that stays "starting" without a worker process this long never started.
STARTING_GRACE_S = 120.0

#: Ultralytics' fitness metric, the one "best" refers to (detect; segment/pose runs add (M)/(P) columns).
MAP5095 = "metrics/mAP50-95(B)"


class RunError(OmrError):
    """A run that cannot be found, started, stopped, resumed or deleted as asked."""


class RunExistsError(RunError):
    """A run folder with that name exists already (or another launch is creating it right now)."""



def read_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A JSON object from a file, or None when missing or unreadable."""
    try:
        obj = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append one JSON line (a single write call, so concurrent appenders do not interleave lines)."""
    line = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def append_event(run_dir: str | os.PathLike[str], kind: str, message: str, **data: Any) -> dict[str, Any]:
    """Record an event (alert, OOM, NaN recovery, stop request, ...) in the run's events.jsonl."""
    rec = {"t": time.time(), "kind": kind, "message": message, **data}
    append_jsonl(Path(run_dir) / EVENTS, rec)
    return rec


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock (flock) on ``lock_path``, created if missing; a no-op where flock is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic replace only
        yield
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Exclusive lock on the run folder, so the launcher and the worker never lose each other's run.json updates."""
    with file_lock(run_dir / _LOCK):
        yield


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord | None:
    """The run's run.json as a record, or None for a folder trained elsewhere (or a run.json that is not JSON)."""
    doc = read_json(Path(run_dir) / RUN_JSON)
    return None if doc is None else RunRecord.from_dict(doc)


def write_run(run_dir: str | os.PathLike[str], record: RunRecord) -> None:
    """Atomically write the run's run.json (callers that read first hold `run_lock`)."""
    write_json(Path(run_dir) / RUN_JSON, record.to_dict())


def update_run(run_dir: str | os.PathLike[str], **changes: Any) -> RunRecord:
    """Read-modify-write run.json under the folder lock; returns the new record.

    Raises:
        TypeError: A key that is not a `RunRecord` field.
    """
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        record = (read_run(run_dir) or RunRecord()).changed(**changes, updated=time.time())
        write_run(run_dir, record)
    return record


# -- process identity ------------------------------------------------------------------------------------------------


def process_start_time(pid: int) -> float | None:
    """The process' start time (seconds since the epoch, as psutil computes it), or None if it does not exist."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError, OverflowError):
        return None


def process_alive(pid: int | None, create_time: float | None, tolerance: float = 0.5) -> bool:
    """True only if ``pid`` runs, is not a zombie, and started at ``create_time``: a reused PID is another process."""
    import psutil

    if not pid or create_time is None:
        return False
    try:
        p = psutil.Process(int(pid))
        if abs(p.create_time() - float(create_time)) > tolerance:
            return False
        return p.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError, OverflowError):
        return False


def effective_state(doc: RunRecord | None, now: float | None = None) -> tuple[RunState, str]:
    """(state, reason) of a run from its run.json, checking that a "running" worker really is alive.

    A run whose run.json says starting/running but whose PID is gone, or belongs to a process started at another
    time, is reported as failed ("worker vanished"): it was killed (SIGKILL, OOM killer, reboot).
    """
    if doc is None:
        return RunState.EXTERNAL, ""
    state, reason = doc.state, doc.reason
    if state not in LIVE_STATES:
        return state, reason
    pid, ctime = doc.pid, doc.pid_create_time
    if pid and process_alive(pid, ctime):
        return state, reason
    now = time.time() if now is None else now
    if state == RunState.STARTING and not pid and now - (doc.launched or doc.created or 0.0) < STARTING_GRACE_S:
        return state, reason
    if not pid:
        return RunState.FAILED, "worker never started"
    started = process_start_time(pid)
    if started is None or (ctime is not None and abs(started - ctime) <= 0.5):  # gone, or a zombie
        return RunState.FAILED, f"worker vanished (PID {pid} no longer running: killed or crashed)"
    return RunState.FAILED, f"worker vanished (PID {pid} is now another process)"


# -- the live view of one run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table.

    Attributes:
        name: Path relative to the runs folder (``exp1``, ``detect/train3``).
        path: The run folder.
        state: starting, running, finished, failed, stopped or external (trained elsewhere).
        reason: Why a run failed or stopped (empty otherwise).
        managed: True when we launched it (run.json present).
        epoch: Epochs completed (rows in results.csv).
        epochs: Epochs planned.
        batch: Batches done in the epoch in progress (from the batch log), None when unknown.
        batches: Batches per epoch, None when unknown.
        current_epoch: Epoch (1-based) the batch log is in, None when unknown.
        best_map: The task's headline metric (`metric`) at the epoch best.pt holds, chosen by the fitness of the
            Ultralytics release that trained the run; None when no validation yet.
        best_epoch: That epoch (1-based).
        last_map: The headline metric of the last epoch.
        elapsed_s: Training wall time so far (all sessions).
        eta_s: Estimated seconds left (live runs only).
        s_per_batch: Median seconds per batch over the recent batches.
        pid: Worker PID (managed runs).
        started: Start time of the first session (epoch seconds).
        updated: Last change of any of the run's files.
        model: Model argument.
        data: Data argument.
        resumable: Checkpoint a resume would start from (relative path), None when not resumable.
        damage: What was skipped in damaged files, one line per file (``batches.jsonl: skipped 3 malformed lines``).
    """

    name: str
    path: Path
    state: RunState
    reason: str = ""
    managed: bool = False
    epoch: int = 0
    epochs: int | None = None
    batch: int | None = None
    batches: int | None = None
    current_epoch: int | None = None
    best_map: float | None = None
    best_epoch: int | None = None
    last_map: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    s_per_batch: float | None = None
    pid: int | None = None
    started: float | None = None
    updated: float | None = None
    model: str = ""
    data: str = ""
    resumable: str | None = None
    damage: tuple[str, ...] = ()
    task: str = "detect"
    metric: str = "mAP50-95"

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def epoch_text(self) -> str:
        """``5 of 20, in progress`` while an epoch runs (``4/20`` next to ``batch 25/50`` read as a bug), else
        epochs done of planned (``12/12``)."""
        planned = self.epochs or "?"
        if self.live and self.current_epoch and self.current_epoch > self.epoch:
            return f"{self.current_epoch} of {planned}, in progress"
        return f"{self.epoch}/{planned}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"], d["state"] = str(self.path), self.state.value
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _fin(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def map_column(columns: Sequence[str]) -> str | None:
    """The mAP50-95 column of a results table (box first, then mask/pose), or None."""
    for c in (MAP5095, "metrics/mAP50-95(M)", "metrics/mAP50-95(P)", "metrics/mAP50-95"):
        if c in columns:
            return c
    return next((c for c in columns if "mAP50-95" in c), None)


@dataclass
class RunView:
    """Incremental readers over one run folder; `poll()` reads only what was appended since the last call.

    Thread-safe: the dashboard shares one view per run between browser sessions. Nobody reads the view itself:
    each `poll()` returns a `RunSnapshot`, which never changes, to draw from.

    Args:
        path: The run folder.
        name: Name to show (defaults to the folder name).
        batch_tail_bytes: Read at most this much of an existing batch log on the first poll.
        gpu_tail_bytes: Same for the GPU/CPU samples (None: everything).
        max_batches: Batch records kept in memory.
    """

    path: Path
    name: str = ""
    batch_tail_bytes: int | None = 8 << 20
    gpu_tail_bytes: int | None = None
    max_batches: int = 200_000
    max_samples: int | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.name = self.name or self.path.name
        self._results = ResultsCsvTail(self.path / RESULTS)
        self._batches = ColumnStore(self.max_batches)
        self._samples = ColumnStore(self.max_samples)
        self._batch_tail = JsonlTail(self.path / BATCHES, self.batch_tail_bytes)
        self._gpu_tail = JsonlTail(self.path / GPU, self.gpu_tail_bytes)
        self._event_tail = JsonlTail(self.path / EVENTS)
        self._events: list[dict[str, Any]] = []
        self._doc: RunRecord | None = None
        self._args: dict[str, Any] = {}
        self._mtimes: dict[str, float] = {}
        self._lock = threading.RLock()
        self._doc_unreadable = False

    def _mtime_changed(self, name: str) -> bool:
        try:
            m = os.stat(self.path / name).st_mtime_ns
        except OSError:
            m = -1
        if self._mtimes.get(name) == m:
            return False
        self._mtimes[name] = m
        return True

    def poll(self, samples: bool = True) -> RunSnapshot:
        """Read what changed on disk; returns everything read so far as an immutable snapshot.

        Args:
            samples: Also read the GPU/CPU samples (the runs table does not need them; a day of 1 Hz samples is
                the largest file of a run, so the monitor reads it only for the run on screen).
        """
        with self._lock:
            if self._mtime_changed(RUN_JSON):
                self._doc = read_run(self.path)
                self._doc_unreadable = self._doc is None and (self.path / RUN_JSON).exists()
            args_changed, opt_changed = self._mtime_changed(ARGS_YAML), self._mtime_changed(OPT_YAML)
            if args_changed or opt_changed:
                self._args = _read_args_yaml(self.path / ARGS_YAML) or _read_args_yaml(self.path / OPT_YAML)
            self._results.poll()
            recs, restarted = self._batch_tail.poll()
            if restarted:
                self._batches.clear()
            self._batches.extend([flatten_record(r) if type(r.get("loss")) is dict else r for r in recs])
            if samples:
                recs, restarted = self._gpu_tail.poll()
                if restarted:
                    self._samples.clear()
                self._samples.extend(recs)
            recs, restarted = self._event_tail.poll()
            if restarted:
                self._events = []
            self._events.extend(recs)
            updated = max(self._mtimes.values(), default=-1)
            return RunSnapshot(
                path=self.path,
                name=self.name,
                doc=self._doc,
                args=dict(self._args),
                results=self._results.snapshot(),
                batches=self._batches.snapshot(),
                samples=self._samples.snapshot(),
                events=tuple(self._events),
                damage_lines=tuple(self._damage()),
                updated=(updated / 1e9) if updated > 0 else None,
                polled=time.time(),
            )

    def _damage(self) -> list[str]:
        """What could not be read in the run's files, one line per file; empty when every file was clean.

        Damaged lines are skipped, never raised: a worker killed mid-write, a full disk or a crash that left
        NUL-filled blocks must not take the monitor down, but the person should know the charts have gaps.
        """
        out = []
        if self._doc_unreadable:
            out.append(f"{RUN_JSON}: not readable JSON (damaged?); the run is shown as trained elsewhere")
        csv = self._results.damage()
        if csv:
            out.append(f"{RESULTS}: {'; '.join(csv)}")
        for name, tail in ((BATCHES, self._batch_tail), (GPU, self._gpu_tail), (EVENTS, self._event_tail)):
            if tail.bad_lines:
                out.append(f"{name}: skipped {tail.bad_lines} malformed line{'s' if tail.bad_lines != 1 else ''}")
        return out


@dataclass(frozen=True, eq=False)
class RunSnapshot:
    """One run as a `RunView.poll()` read it: never changes, so any number of sessions and threads draw from it.

    Attributes:
        path: The run folder.
        name: Name to show.
        doc: run.json (None for a folder trained elsewhere).
        args: Ultralytics' args.yaml.
        results: results.csv.
        batches: The batch log's columns (the last ``max_batches`` records).
        samples: GPU/CPU samples (as of the last poll that read them).
        events: events.jsonl records.
        damage_lines: What could not be read in the run's files, one line per file.
        updated: Last change of any of the run's files seen (epoch seconds).
        polled: When the poll read the files.
    """

    path: Path
    name: str
    doc: RunRecord | None
    args: Mapping[str, Any]
    results: ResultsTable
    batches: Columns
    samples: Columns
    events: tuple[dict[str, Any], ...]
    damage_lines: tuple[str, ...]
    updated: float | None
    polled: float

    def state(self, now: float | None = None) -> tuple[RunState, str]:
        """(state, reason), checking the worker process (see `effective_state`)."""
        state, reason = effective_state(self.doc, now)
        if state == RunState.EXTERNAL:
            r = self.reading(now)
            if r.state in (RunState.FINISHED, RunState.EARLY_STOPPED):
                return RunState(r.state), r.reason
            if r.state == RunState.RUNNING:  # a `yolo train` elsewhere whose results.csv grows: live, read-only here
                return RunState.RUNNING, f"trained elsewhere (read-only here): {r.reason}"
            return RunState.EXTERNAL, f"trained elsewhere: {r.reason}" if r.reason else "trained elsewhere (no run.json)"
        return state, reason

    def reading(self, now: float | None = None) -> layouts.Reading:
        """The results read by the rules of the Ultralytics release and task that wrote them (training/layouts.py)."""
        try:
            mtime: float | None = os.stat(self.path / RESULTS).st_mtime
        except OSError:
            mtime = None
        args = (self.doc.args if self.doc else None) or self.args
        return layouts.read_run(self.results.rows(), self.results.columns, args, mtime=mtime, now=now)

    def damage(self) -> list[str]:
        """What could not be read in the run's files, one line per file (see `RunView`)."""
        return list(self.damage_lines)

    def planned_epochs(self) -> int | None:
        args = (self.doc.args if self.doc else None) or self.args
        epochs = (self.doc.epochs if self.doc else None) or args.get("epochs")  # the worker writes Ultralytics' own value
        try:
            return int(epochs) if epochs is not None else None
        except (TypeError, ValueError):
            return None

    def current_epoch_batches(self) -> np.ndarray:
        """Row indices of the batch log that belong to the epoch in progress (the last one logged)."""
        ep = self.batches.col("epoch")
        if len(ep) == 0:
            return np.arange(0)
        last = ep[-1]
        change = np.flatnonzero(ep != last)
        start = int(change[-1]) + 1 if change.size else 0
        return np.arange(start, len(ep))

    def log_tail(self, max_lines: int = 200) -> list[str]:
        return tail_text(self.path / LOG, max_lines=max_lines)

    def summary(self, now: float | None = None) -> RunSummary:
        """The runs-table row of this run."""
        return _summarize(self, time.time() if now is None else now)


def _read_args_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # OSError, YAMLError, and ValueError for "2024-02-30" and the like: a damaged args.yaml is no args
        return {}
    return obj if isinstance(obj, dict) else {}


def _summarize(view: RunSnapshot, now: float) -> RunSummary:
    doc = view.doc
    state, reason = view.state(now)
    rows = view.results.rows()
    cols = view.results.columns
    read = view.reading(now)  # epochs 1-based and best by the fitness of the release and task that wrote them
    best_map, best_epoch, last_map, epoch = read.best, read.best_epoch, read.last, read.epochs_done
    epochs = view.planned_epochs()

    b = view.batches
    batch = batches = current_epoch = None
    s_per_batch = None
    if len(b):
        last = b.last_row()
        if "i" in last and "nb" in last:
            batch, batches = int(last["i"]), int(last["nb"])
            current_epoch = int(last.get("epoch", epoch)) + 1
        sec = b.col("sec")[-50:]
        sec = sec[np.isfinite(sec)]
        s_per_batch = float(np.median(sec)) if sec.size else None

    # Epoch duration from Ultralytics' cumulative `time` column (it restarts at 0 on each resumed session).
    epoch_s = None
    if "time" in cols and len(rows) >= 2:
        t = np.array([r.get("time", math.nan) for r in rows])
        d = np.diff(t)
        d = d[np.isfinite(d) & (d > 0)]
        if d.size:
            epoch_s = float(np.median(d[-20:]))
    if epoch_s is None and s_per_batch and batches:
        epoch_s = s_per_batch * batches

    started = (_fin(doc.started) or _fin(doc.created)) if doc else None
    elapsed = None
    if doc:
        elapsed = float(sum(_fin(h.get("duration_s")) or 0.0 for h in doc.history if isinstance(h, dict)))
        cur_start = _fin(doc.started)
        if cur_start:
            end = now if state in LIVE_STATES else (_fin(doc.ended) or _fin(doc.updated) or now)
            elapsed += max(0.0, end - cur_start)
    elif "time" in cols and rows:
        elapsed = _fin(rows[-1].get("time"))

    eta = None
    if state in LIVE_STATES and epochs and epoch_s:
        left_in_epoch = 0.0
        if batch is not None and batches and s_per_batch and current_epoch == epoch + 1:
            left_in_epoch = max(0, batches - batch) * s_per_batch
            eta = left_in_epoch + max(0, epochs - epoch - 1) * epoch_s
        else:
            eta = max(0, epochs - epoch) * epoch_s

    args = (doc.args if doc else None) or view.args
    return RunSummary(
        name=view.name,
        path=view.path,
        state=state,
        reason=reason,
        managed=doc is not None,
        epoch=epoch,
        epochs=epochs,
        batch=batch,
        batches=batches,
        current_epoch=current_epoch,
        best_map=best_map,
        best_epoch=best_epoch,
        last_map=last_map,
        elapsed_s=elapsed,
        eta_s=eta,
        s_per_batch=s_per_batch,
        pid=doc.pid if doc else None,
        started=started,
        updated=view.updated,
        model=str(args.get("model") or ""),
        data=str(args.get("data") or ""),
        resumable=_resumable(view.path, doc, state),
        damage=tuple(view.damage()),
        task=read.layout.task,
        metric=read.layout.headline_name,
    )


def _resumable(run_dir: Path, doc: RunRecord | None, state: RunState) -> str | None:
    """The checkpoint a resume would use, when the run is not live or finished and one exists."""
    if state in LIVE_STATES or state in (RunState.FINISHED, RunState.EARLY_STOPPED):
        return None
    rel = doc.resume_from if doc else None
    cands = ([rel] if rel else []) + [RESUMABLE, LAST] if state != RunState.EXTERNAL else [LAST]
    for cand in cands:
        if cand and (run_dir / cand).is_file():
            return str(cand)
    return None


# -- finding, listing, deleting --------------------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    """A folder is a run when it has our run.json or Ultralytics' results.csv / args.yaml."""
    return any((path / f).is_file() for f in (RUN_JSON, RESULTS, ARGS_YAML))


def _walk_runs(root: Path, max_depth: int) -> list[Path]:
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        try:
            subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for p in subs:
            if is_run_dir(p):
                found.append(p)
            elif depth < max_depth and p.name != "weights":
                walk(p, depth + 1)

    walk(root, 1)
    return found


def discover_runs(runs_dir: str | os.PathLike[str], max_depth: int = 3) -> list[Path]:
    """Run folders under ``runs_dir`` (nested Ultralytics layouts like ``detect/train3`` included), sorted, then
    those of the folders linked to it from elsewhere (see `link_folder`)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = _walk_runs(root, max_depth)
    for folder in linked_folders(root):
        found.extend([folder] if is_run_dir(folder) else _walk_runs(folder, max_depth))
    return found


# -- run folders from elsewhere, linked read-only -------------------------------------------------------------------

LINKED = "linked.json"


def linked_folders(runs_dir: str | os.PathLike[str]) -> list[Path]:
    """Folders outside the runs folder that are listed with its runs (read-only: nothing here ever writes to them)."""
    doc = read_json(Path(runs_dir) / LINKED) or {}
    out = []
    for p in doc.get("folders") or []:
        if isinstance(p, str) and Path(p).is_dir():
            out.append(Path(p))
    return out


def link_folder(runs_dir: str | os.PathLike[str], folder: str | os.PathLike[str]) -> list[Path]:
    """List a run folder, or a folder of runs, from elsewhere with this runs folder's runs; returns its runs.

    Raises:
        RunError: Not a folder, no run in it, or already inside the runs folder.
    """
    root = Path(runs_dir).resolve()
    f = Path(folder).expanduser().resolve()
    if not f.is_dir():
        raise RunError(f"{folder} is not a folder")
    if f == root or root in f.parents:
        raise RunError(f"{f} is inside the runs folder already: its runs are listed without linking")
    if f in root.parents:
        raise RunError(f"{f} holds the runs folder itself: link a folder beside it, not one above it")
    runs = [f] if is_run_dir(f) else _walk_runs(f, 3)
    if not runs:
        raise RunError(f"{f} holds no run (a run folder has run.json, results.csv or args.yaml), not even in "
                       "subfolders three levels down")
    with file_lock(root / ".linked.lock"):
        have = [str(p) for p in linked_folders(root)]
        if str(f) not in have:
            write_json(root / LINKED, {"folders": [*have, str(f)]})
    return runs


def unlink_folder(runs_dir: str | os.PathLike[str], folder: str | os.PathLike[str]) -> None:
    """Stop listing a linked folder (its files are untouched)."""
    root = Path(runs_dir).resolve()
    f = str(Path(folder).expanduser().resolve())
    with file_lock(root / ".linked.lock"):
        have = [str(p) for p in linked_folders(root)]
        if f not in have:
            raise RunError(f"{folder} is not linked (linked: {', '.join(have) or 'none'})")
        write_json(root / LINKED, {"folders": [p for p in have if p != f]})


def _linked_owner(runs_dir: Path, run_dir: Path) -> Path | None:
    rd = run_dir.resolve()
    for folder in linked_folders(runs_dir):
        fr = folder.resolve()
        if rd == fr or fr in rd.parents:
            return fr
    return None


def run_name(runs_dir: str | os.PathLike[str], run_dir: Path) -> str:
    """The run's name: its path inside the runs folder, or ``@FOLDER/…`` for a run of a linked folder."""
    try:
        return run_dir.resolve().relative_to(Path(runs_dir).resolve()).as_posix()
    except ValueError:
        pass
    owner = _linked_owner(Path(runs_dir), run_dir)
    if owner is None:
        return run_dir.name
    rel = run_dir.resolve().relative_to(owner).as_posix()
    return f"@{owner.name}" + ("" if rel == "." else f"/{rel}")


def is_linked(runs_dir: str | os.PathLike[str], run_dir: Path) -> bool:
    """True for a run of a linked folder (read-only here)."""
    return _linked_owner(Path(runs_dir), run_dir) is not None


def list_runs(runs_dir: str | os.PathLike[str], now: float | None = None) -> list[RunSummary]:
    """Summaries of every run under ``runs_dir``, newest first (one-shot read; the dashboard keeps `RunView`s)."""
    out = []
    for d in discover_runs(runs_dir):
        out.append(RunView(d, name=run_name(runs_dir, d), batch_tail_bytes=64 << 10).poll(samples=False).summary(now))
    return sorted(out, key=lambda s: -(s.started or s.updated or 0))


def find_run(runs_dir: str | os.PathLike[str], name: str) -> Path:
    """The folder of run ``name`` (a name relative to the runs folder, or a path inside it)."""
    root = Path(runs_dir).resolve()
    if name.startswith("@") and any(run_name(root, d) == name for d in discover_runs(root)):
        raise RunError(f"run {name!r} is in a linked folder: it is shown read-only and never changed from here "
                       "(resume, stop or delete it where it lives)")
    p = Path(name)
    cand = (p if p.is_absolute() else root / p).resolve()
    if (cand == root or root in cand.parents) and cand.is_dir() and is_run_dir(cand):
        return cand
    names = [run_name(root, d) for d in discover_runs(root)]
    import difflib

    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else (f" Runs: {', '.join(names[:10])}" if names else "")
    raise RunError(f"no run named {name!r} in {root}.{hint}")


def delete_run(runs_dir: str | os.PathLike[str], name: str) -> Path:
    """Delete a run folder that is not running; refuses anything that is not strictly inside ``runs_dir``."""
    root = Path(runs_dir).resolve()
    target = find_run(root, name)
    if target == root or root not in target.parents:
        raise RunError(f"{target} is not inside the runs folder {root}; nothing deleted")
    state, _ = effective_state(read_run(target))
    if state in LIVE_STATES:
        raise RunError(f"run {name!r} is {state}: stop or kill it before deleting")
    shutil.rmtree(target)
    return target


# -- comparing runs --------------------------------------------------------------------------------------------------

#: Arguments that differ between runs by construction, not by choice.
_NOT_A_CHOICE = frozenset({"save_dir", "name", "project", "exist_ok", "resume", "mode", "model_save_dir"})


def run_args(view: RunSnapshot) -> dict[str, Any]:
    """A run's full train arguments as first launched.

    The worker's copy of Ultralytics' arguments from the first session (args.yaml is rewritten on resume with
    model=last.pt and resolved values), else args.yaml, overlaid with what the person asked for in run.json.
    """
    doc = view.doc
    base = dict((doc.train_args if doc else None) or view.args or {})
    base.update(doc.args if doc else {})
    return base


def args_that_differ(runs: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The argument names whose values differ between runs, and each run's values for them.

    Args:
        runs: Run name → its arguments.

    Returns:
        (sorted differing keys, {run name: {key: value or None}}).
    """
    keys: set[str] = set()
    for a in runs.values():
        keys |= set(a)
    diff = []
    for k in sorted(keys - _NOT_A_CHOICE):
        vals = {repr(a.get(k)) for a in runs.values()}
        if len(vals) > 1:
            diff.append(k)
    return diff, {name: {k: a.get(k) for k in diff} for name, a in runs.items()}


def best_and_final(rows: list[dict[str, float]], metric: str, higher_is_better: bool | None = None) -> dict[str, Any]:
    """Best value of ``metric`` (max for metrics, min for losses), its epoch, and the final value.

    Examples:
        >>> best_and_final([{"epoch": 1, "m": 0.2}, {"epoch": 2, "m": 0.5}, {"epoch": 3, "m": 0.4}], "m")
        {'best': 0.5, 'best_epoch': 2, 'final': 0.4, 'final_epoch': 3}
    """
    hib = ("loss" not in metric and not metric.startswith("lr/")) if higher_is_better is None else higher_is_better
    vals: list[tuple[float | None, float]] = []
    for r in rows:
        v = r.get(metric)
        if v is not None and math.isfinite(v):
            vals.append((r.get("epoch"), float(v)))
    if not vals:
        return {"best": None, "best_epoch": None, "final": None, "final_epoch": None}
    best = (max if hib else min)(vals, key=lambda ev: ev[1])
    return {"best": best[1], "best_epoch": int(best[0]) if best[0] is not None else None,
            "final": vals[-1][1], "final_epoch": int(vals[-1][0]) if vals[-1][0] is not None else None}
