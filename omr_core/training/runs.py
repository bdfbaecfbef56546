"""Run folders: file names, run.json (atomic, locked), process identity, live views, listing and deleting runs."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from omr_core.atomic import write_json
from omr_core.errors import OmrError
from omr_core.training.tail import ColumnStore, JsonlTail, ResultsCsvTail, _flatten, tail_text

# Files inside a run folder, next to Ultralytics' own (args.yaml, results.csv, weights/).
RUN_JSON = "run.json"
BATCHES = "batches.jsonl"
BATCHES_REDONE = "batches.redone.jsonl"  # records of epochs a resume trained again (see training/redo.py)
EVENTS = "events.jsonl"
LOG = "log.txt"
GPU = "gpu.jsonl"
STOP_REQUEST = "stop.request"
RESULTS = "results.csv"
RESULTS_REDONE = "results.redone.csv"
ARGS_YAML = "args.yaml"
LAST = "weights/last.pt"
BEST = "weights/best.pt"
RESUMABLE = "weights/last_resumable.pt"
_LOCK = ".run.lock"

#: States written to run.json; "external" is a folder trained elsewhere (no run.json).
STATES = ("starting", "running", "finished", "failed", "stopped", "external")
LIVE_STATES = frozenset({"starting", "running"})

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
def _locked(run_dir: Path) -> Iterator[None]:
    """Exclusive lock on the run folder, so the launcher and the worker never lose each other's run.json updates."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic replace only
        yield
        return
    fd = os.open(run_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_run_json(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's run.json, or None for a folder trained elsewhere."""
    return read_json(Path(run_dir) / RUN_JSON)


def update_run_json(run_dir: str | os.PathLike[str], changes: Mapping[str, Any] | None = None, **kw: Any) -> dict:
    """Read-modify-write run.json under the folder lock; returns the new content."""
    run_dir = Path(run_dir)
    with _locked(run_dir):
        doc = read_run_json(run_dir) or {}
        doc.update(changes or {})
        doc.update(kw)
        doc["updated"] = time.time()
        write_json(run_dir / RUN_JSON, doc)
    return doc


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


def effective_state(doc: Mapping[str, Any] | None, now: float | None = None) -> tuple[str, str]:
    """(state, reason) of a run from its run.json, checking that a "running" worker really is alive.

    A run whose run.json says starting/running but whose PID is gone, or belongs to a process started at another
    time, is reported as failed ("worker vanished"): it was killed (SIGKILL, OOM killer, reboot).
    """
    if doc is None:
        return "external", ""
    state = str(doc.get("state") or "failed")
    reason = str(doc.get("reason") or "")
    if state not in LIVE_STATES:
        return state, reason
    pid, ctime = doc.get("pid"), doc.get("pid_create_time")
    if pid and process_alive(pid, ctime):
        return state, reason
    now = time.time() if now is None else now
    if state == "starting" and not pid and now - float(doc.get("launched") or doc.get("created") or 0) < STARTING_GRACE_S:
        return state, reason
    if not pid:
        return "failed", "worker never started"
    started = process_start_time(int(pid))
    if started is None or (ctime is not None and abs(started - float(ctime)) <= 0.5):  # gone, or a zombie
        return "failed", f"worker vanished (PID {pid} no longer running: killed or crashed)"
    return "failed", f"worker vanished (PID {pid} is now another process)"


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
        best_map: Best mAP50-95 so far, None when no validation yet.
        best_epoch: Epoch (1-based) of the best mAP50-95.
        last_map: mAP50-95 of the last epoch.
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
    state: str
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
        d["path"] = str(self.path)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _fin(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def map_column(columns: list[str]) -> str | None:
    """The mAP50-95 column of a results table (box first, then mask/pose), or None."""
    for c in (MAP5095, "metrics/mAP50-95(M)", "metrics/mAP50-95(P)", "metrics/mAP50-95"):
        if c in columns:
            return c
    return next((c for c in columns if "mAP50-95" in c), None)


@dataclass
class RunView:
    """Incremental readers over one run folder; `poll()` reads only what was appended since the last call.

    Thread-safe: the dashboard shares one view per run between browser tabs.

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
    results: ResultsCsvTail = field(init=False)
    batches: ColumnStore = field(init=False)
    samples: ColumnStore = field(init=False)
    events: list[dict[str, Any]] = field(init=False, default_factory=list)
    doc: dict[str, Any] | None = field(init=False, default=None)
    args: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.name = self.name or self.path.name
        self.results = ResultsCsvTail(self.path / RESULTS)
        self.batches = ColumnStore(self.max_batches)
        self.samples = ColumnStore(self.max_samples)
        self._batch_tail = JsonlTail(self.path / BATCHES, self.batch_tail_bytes)
        self._gpu_tail = JsonlTail(self.path / GPU, self.gpu_tail_bytes)
        self._event_tail = JsonlTail(self.path / EVENTS)
        self._mtimes: dict[str, float] = {}
        self._lock = threading.RLock()
        self._doc_unreadable = False
        self.last_poll = 0.0

    def _mtime_changed(self, name: str) -> bool:
        try:
            m = os.stat(self.path / name).st_mtime_ns
        except OSError:
            m = -1
        if self._mtimes.get(name) == m:
            return False
        self._mtimes[name] = m
        return True

    def poll(self, samples: bool = True) -> RunView:
        """Read what changed on disk; returns self.

        Args:
            samples: Also read the GPU/CPU samples (the runs table does not need them; a day of 1 Hz samples is
                the largest file of a run, so the monitor reads it only for the run on screen).
        """
        with self._lock:
            if self._mtime_changed(RUN_JSON):
                self.doc = read_run_json(self.path)
                self._doc_unreadable = self.doc is None and (self.path / RUN_JSON).exists()
            if self._mtime_changed(ARGS_YAML):
                self.args = _read_args_yaml(self.path / ARGS_YAML)
            self.results.poll()
            recs, restarted = self._batch_tail.poll()
            if restarted:
                self.batches.clear()
            self.batches.extend([_flatten(r) if type(r.get("loss")) is dict else r for r in recs])
            if samples:
                recs, restarted = self._gpu_tail.poll()
                if restarted:
                    self.samples.clear()
                self.samples.extend(recs)
            recs, restarted = self._event_tail.poll()
            if restarted:
                self.events = []
            self.events.extend(recs)
            self.last_poll = time.time()
        return self

    def state(self, now: float | None = None) -> tuple[str, str]:
        """(state, reason), checking the worker process (see `effective_state`)."""
        state, reason = effective_state(self.doc, now)
        if state == "external":
            rows, epochs = len(self.results), self.planned_epochs()
            if epochs and rows >= epochs:
                return "finished", ""
            return "external", "trained elsewhere (no run.json)"
        return state, reason

    def damage(self) -> list[str]:
        """What could not be read in the run's files, one line per file; empty when every file was clean.

        Damaged lines are skipped, never raised: a worker killed mid-write, a full disk or a crash that left
        NUL-filled blocks must not take the monitor down, but the person should know the charts have gaps.
        """
        out = []
        if self._doc_unreadable:
            out.append(f"{RUN_JSON}: not readable JSON (damaged?); the run is shown as trained elsewhere")
        csv = self.results.damage()
        if csv:
            out.append(f"{RESULTS}: {'; '.join(csv)}")
        for name, tail in ((BATCHES, self._batch_tail), (GPU, self._gpu_tail), (EVENTS, self._event_tail)):
            if tail.bad_lines:
                out.append(f"{name}: skipped {tail.bad_lines} malformed line{'s' if tail.bad_lines != 1 else ''}")
        return out

    def planned_epochs(self) -> int | None:
        args = (self.doc or {}).get("args") or self.args
        epochs = (self.doc or {}).get("epochs") or args.get("epochs")  # the worker writes Ultralytics' own value
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
        """The runs-table row of this run, from what was read at the last `poll`."""
        now = time.time() if now is None else now
        with self._lock:
            return _summarize(self, now)


def _read_args_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # OSError, YAMLError, and ValueError for "2024-02-30" and the like: a damaged args.yaml is no args
        return {}
    return obj if isinstance(obj, dict) else {}


def _summarize(view: RunView, now: float) -> RunSummary:
    doc = view.doc or {}
    state, reason = view.state(now)
    rows = view.results.rows()
    cols = view.results.columns
    mcol = map_column(cols)
    best_map = best_epoch = last_map = None
    if mcol and rows:
        vals = np.array([r.get(mcol, math.nan) for r in rows])
        if np.isfinite(vals).any():
            i = int(np.nanargmax(vals))
            best_map, best_epoch = float(vals[i]), int(rows[i].get("epoch", i + 1))
        last_map = _fin(vals[-1])
    epoch = int(rows[-1].get("epoch", len(rows))) if rows else 0
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

    started = _fin(doc.get("started")) or _fin(doc.get("created"))
    elapsed = None
    if doc:
        elapsed = float(sum(_fin(h.get("duration_s")) or 0.0 for h in doc.get("history") or []))
        cur_start = _fin(doc.get("started"))
        if cur_start:
            end = now if state in LIVE_STATES else (_fin(doc.get("ended")) or _fin(doc.get("updated")) or now)
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

    args = doc.get("args") or view.args
    updated = max(view._mtimes.values(), default=-1)
    return RunSummary(
        name=view.name,
        path=view.path,
        state=state,
        reason=reason,
        managed=bool(doc),
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
        pid=doc.get("pid"),
        started=started,
        updated=(updated / 1e9) if updated > 0 else None,
        model=str(args.get("model") or ""),
        data=str(args.get("data") or ""),
        resumable=_resumable(view.path, doc, state),
        damage=tuple(view.damage()),
    )


def _resumable(run_dir: Path, doc: Mapping[str, Any], state: str) -> str | None:
    """The checkpoint a resume would use, when the run is not live or finished and one exists."""
    if state in LIVE_STATES or state == "finished":
        return None
    rel = doc.get("resume_from")
    cands = ([rel] if rel else []) + [RESUMABLE, LAST] if state != "external" else [LAST]
    for cand in cands:
        if cand and (run_dir / cand).is_file():
            return str(cand)
    return None


# -- finding, listing, deleting --------------------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    """A folder is a run when it has our run.json or Ultralytics' results.csv / args.yaml."""
    return any((path / f).is_file() for f in (RUN_JSON, RESULTS, ARGS_YAML))


def discover_runs(runs_dir: str | os.PathLike[str], max_depth: int = 3) -> list[Path]:
    """Run folders under ``runs_dir`` (nested Ultralytics layouts like ``detect/train3`` included), sorted."""
    root = Path(runs_dir)
    found: list[Path] = []
    if not root.is_dir():
        return found

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


def run_name(runs_dir: str | os.PathLike[str], run_dir: Path) -> str:
    try:
        return run_dir.resolve().relative_to(Path(runs_dir).resolve()).as_posix()
    except ValueError:
        return run_dir.name


def list_runs(runs_dir: str | os.PathLike[str], now: float | None = None) -> list[RunSummary]:
    """Summaries of every run under ``runs_dir``, newest first (one-shot read; the dashboard keeps `RunView`s)."""
    out = []
    for d in discover_runs(runs_dir):
        out.append(RunView(d, name=run_name(runs_dir, d), batch_tail_bytes=64 << 10).poll(samples=False).summary(now))
    return sorted(out, key=lambda s: -(s.started or s.updated or 0))


def find_run(runs_dir: str | os.PathLike[str], name: str) -> Path:
    """The folder of run ``name`` (a name relative to the runs folder, or a path inside it)."""
    root = Path(runs_dir).resolve()
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
    state, _ = effective_state(read_run_json(target))
    if state in LIVE_STATES:
        raise RunError(f"run {name!r} is {state}: stop or kill it before deleting")
    shutil.rmtree(target)
    return target


# -- comparing runs --------------------------------------------------------------------------------------------------

#: Arguments that differ between runs by construction, not by choice.
_NOT_A_CHOICE = frozenset({"save_dir", "name", "project", "exist_ok", "resume", "mode", "model_save_dir"})


def run_args(view: RunView) -> dict[str, Any]:
    """A run's full train arguments as first launched.

    The worker's copy of Ultralytics' arguments from the first session (args.yaml is rewritten on resume with
    model=last.pt and resolved values), else args.yaml, overlaid with what the person asked for in run.json.
    """
    doc = view.doc or {}
    base = dict(doc.get("train_args") or view.args or {})
    base.update(doc.get("args") or {})
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
