"""What Ultralytics' result layouts mean, per version and task: epochs, headline metric, best.pt's fitness, run state.

Every rule here was read from the code of the released wheels (``pip download ultralytics==X --no-deps``; YOLOv5
from the ``yolov5`` 7.0.14 wheel), and each switch point found by bisecting the releases on PyPI:

- ``results.csv`` writer, ``engine/trainer.py save_metrics``: up to 8.0.161 the 0-based epoch
  (8.0.161 trainer.py:560 ``tuple([self.epoch] + vals)``), from 8.0.162 ``[self.epoch + 1] + vals`` (trainer.py:559);
  every cell right-aligned ``%23.5g`` up to 8.3.8 (trainer.py:660); from 8.3.9 plain ``%.6g`` cells and a ``time``
  column (8.3.9 trainer.py:659 ``tuple([self.epoch + 1, t] + vals)``). YOLOv5 ``train.py`` writes the 0-based epoch.
  The reader in ``tail.py`` strips the padding; here we only fix the epoch base (from the data: 0 in the first row).
- Fitness, the number best.pt is chosen by (``utils/metrics.py``): ``Metric.fitness`` weights ``[P, R, mAP50,
  mAP50-95]`` by ``[0.0, 0.0, 0.1, 0.9]`` up to 8.3.197 (metrics.py:983) and by ``[0.0, 0.0, 0.0, 1.0]`` from 8.3.198
  (metrics.py:983); NaN cells count as 0 from 8.3.133 (metrics.py:791 ``np.nan_to_num(np.array(self.mean_results()))``),
  before that a NaN makes the fitness NaN. YOLOv5 7.0.14 ``utils/metrics.py:19`` ``w = [0.0, 0.0, 0.1, 0.9]``.
  ``SegmentMetrics.fitness`` = mask + box (8.0.239 metrics.py:1001 ``self.seg.fitness() + self.box.fitness()``, 8.4.0
  metrics.py:1270), ``PoseMetrics`` = pose + box (8.0.239 metrics.py:1143), ``OBBMetrics`` = box.
  ``ClassifyMetrics.fitness`` = ``self.top5`` up to 8.0.136 (metrics.py:967), ``(self.top1 + self.top5) / 2`` from
  8.0.137 (metrics.py:967).
- Best epoch (``engine/trainer.py validate``): ``if not self.best_fitness or self.best_fitness < fitness`` from 8.0.0
  to 8.4.95 (8.4.95 trainer.py:819; while the best is 0 every epoch replaces it), ``if self.best_fitness is None or
  self.best_fitness < fitness`` from 8.4.96 (trainer.py:819). YOLOv5 7.0.14 ``train.py:387`` ``if fi > best_fitness``
  from ``best_fitness = 0.0`` (train.py:188). Strictly greater: a tie keeps the earlier epoch.
- Early stopping (``utils/torch_utils.py EarlyStopping``): ``self.patience = patience or float("inf")`` (8.4.0
  torch_utils.py:875, patience 0 never stops); the stopper's best moves on ``if fitness >= self.best_fitness`` up to
  8.3.74 (torch_utils.py:749) and YOLOv5 (7.0.14 utils/torch_utils.py:390), on ``if fitness > self.best_fitness or
  self.best_fitness == 0`` from 8.3.75 (torch_utils.py:749); ``stop = delta >= self.patience`` (torch_utils.py:754).
- Which release wrote a run: ``args.yaml`` is ``vars(self.args)``, every key of that release's ``cfg/default.yaml``,
  so the key set dates it (see `ERAS`); a rule that changed inside the dated range is applied as the newest release
  of that range had it, except early stopping, which counts a run as stopped if either rule stops it there.

Fitness is recomputed from the CSV's rounded cells (5 significant digits before 8.3.9, 6 after); two epochs whose
true fitness differs below that precision can tie here, where Ultralytics saw a difference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Release families whose layouts or rules differ.
FAMILIES = ("yolov5", "8.0", "8.1-8.3", "8.4")
TASKS = ("detect", "segment", "classify", "pose", "obb")

#: A results.csv written to this recently belongs to a run that is still going (Ultralytics appends one row an epoch).
LIVE_WINDOW_S = 120.0

#: The metric a person judges each task by (and the one the runs table shows as "best").
HEADLINE = {
    "detect": "metrics/mAP50-95(B)",
    "segment": "metrics/mAP50-95(M)",
    "pose": "metrics/mAP50-95(P)",
    "obb": "metrics/mAP50-95(B)",
    "classify": "metrics/accuracy_top1",
}
V5_HEADLINE = "metrics/mAP_0.5:0.95"
HEADLINE_NAME = {"detect": "mAP50-95", "segment": "mask mAP50-95", "pose": "pose mAP50-95", "obb": "OBB mAP50-95",
                 "classify": "top-1"}

_BOX = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)")
_MASK = ("metrics/precision(M)", "metrics/recall(M)", "metrics/mAP50(M)", "metrics/mAP50-95(M)")
_POSE = ("metrics/precision(P)", "metrics/recall(P)", "metrics/mAP50(P)", "metrics/mAP50-95(P)")
_V5 = ("metrics/precision", "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95")

#: Ultralytics releases as (major, minor, patch); `LAST` stands for "any later release".
Version = tuple[int, int, int]
LAST: Version = (8, 99, 999)

#: Dating an args.yaml by its keys, newest era first: (first release, last release, keys it must have, keys it must
#: lack). Bisected over every release's ``cfg/default.yaml`` on PyPI: ``v5loader`` dropped in 8.0.135, ``time`` added
#: in 8.0.228, ``label_smoothing`` dropped in 8.3.38, ``save_hybrid`` in 8.3.105, ``crop_fraction`` in 8.3.108,
#: ``cutmix`` added in 8.3.119, ``compile`` in 8.3.196, ``rle``/``angle`` in 8.4.0, ``cls_remap`` in 8.4.91,
#: ``dgrad`` in 8.4.104.
ERAS: tuple[tuple[Version, Version, frozenset[str], frozenset[str]], ...] = tuple(
    (lo, hi, frozenset(need), frozenset(lack)) for lo, hi, need, lack in (
        ((8, 4, 104), LAST, ("dgrad",), ()),
        ((8, 4, 91), (8, 4, 103), ("cls_remap",), ()),
        ((8, 4, 0), (8, 4, 90), ("rle",), ()),
        ((8, 3, 196), (8, 3, 253), ("compile",), ()),
        ((8, 3, 119), (8, 3, 195), ("cutmix",), ()),
        ((8, 3, 108), (8, 3, 118), ("time",), ("label_smoothing", "save_hybrid", "crop_fraction")),
        ((8, 3, 105), (8, 3, 107), ("time",), ("label_smoothing", "save_hybrid")),
        ((8, 3, 38), (8, 3, 104), ("time",), ("label_smoothing",)),
        ((8, 0, 228), (8, 3, 37), ("time",), ()),
        ((8, 0, 135), (8, 0, 227), (), ("v5loader",)),
        ((8, 0, 0), (8, 0, 134), ("v5loader",), ()),
    ))
#: The time column arrived in results.csv with 8.3.9 (trainer.py save_metrics).
_TIME_COLUMN: Version = (8, 3, 9)

#: Where each rule changed (first release with the new rule), see the module docstring for the code.
CLASSIFY_MEAN_FROM: Version = (8, 0, 137)  # ClassifyMetrics.fitness: top5 -> (top1 + top5) / 2
MAP95_ONLY_FROM: Version = (8, 3, 198)  # Metric.fitness weights [0, 0, 0.1, 0.9] -> [0, 0, 0, 1]
NAN_TO_0_FROM: Version = (8, 3, 133)  # Metric.fitness: np.nan_to_num
STRICT_STOPPER_FROM: Version = (8, 3, 75)  # EarlyStopping: `>=` -> `> or best == 0`
BEST_IS_NONE_FROM: Version = (8, 4, 96)  # trainer.validate: `not best_fitness` -> `best_fitness is None`

#: External run states (ours come from run.json): finished, early-stopped, stopped short, still being written, unknown.
STATES = ("finished", "early-stopped", "stopped short", "running", "unknown")


@dataclass(frozen=True)
class Layout:
    """How one run's results are read.

    Attributes:
        family: Release family (see `FAMILIES`).
        release: The first and last Ultralytics release that writes such a run, as "8.3.196" strings ("" for YOLOv5;
            "8.99.999" stands for any later release).
        task: detect, segment, classify, pose or obb.
        headline: Column of the task's headline metric, None when the CSV has none.
        epoch_offset: Added to the CSV's ``epoch`` cells to make them 1-based (1 for 0-based writers).
        patience: Early-stopping patience from the run's arguments (None: off or unknown).
        time_limit_h: Ultralytics' ``time`` argument (hours; 8.1+), which ends training before ``epochs``.
    """

    family: str
    task: str
    headline: str | None
    epoch_offset: int
    patience: int | None
    time_limit_h: float | None = None
    release: tuple[str, str] = ("", "")

    @property
    def newest(self) -> Version:
        """The newest release the run can come from, whose rules apply where they changed inside `release`."""
        return _version(self.release[1]) if self.release[1] else LAST

    @property
    def oldest(self) -> Version:
        return _version(self.release[0]) if self.release[0] else (8, 0, 0)

    @property
    def headline_name(self) -> str:
        return "mAP50-95" if self.family == "yolov5" else HEADLINE_NAME.get(self.task, "mAP50-95")


@dataclass(frozen=True)
class Reading:
    """What a run's results say, by Ultralytics' own rules.

    Attributes:
        layout: How the results were read.
        epochs_done: Epochs completed, 1-based (the last row's epoch).
        epochs_planned: Epochs asked for, None when unknown.
        best: Headline metric at the best epoch (the one best.pt holds), None before any validation.
        best_epoch: That epoch, 1-based.
        best_fitness: Ultralytics' fitness at that epoch.
        last: Headline metric of the last epoch.
        state: One of `STATES`.
        reason: A sentence for people, e.g. "early-stopped: no improvement in 20 epochs (patience 20)".
    """

    layout: Layout
    epochs_done: int
    epochs_planned: int | None
    best: float | None
    best_epoch: int | None
    best_fitness: float | None
    last: float | None
    state: str
    reason: str


def _version(text: str) -> Version:
    a, b, c = (int(x) for x in text.split("."))
    return a, b, c


def _text(v: Version) -> str:
    return ".".join(str(x) for x in v)


def is_yolov5(args: Mapping[str, Any], columns: Sequence[str]) -> bool:
    """YOLOv5's train.py wrote it (opt.yaml's ``hyp``/``batch_size``, ``metrics/mAP_0.5:0.95``)."""
    return "metrics/mAP_0.5:0.95" in columns or ("hyp" in args and "task" not in args) or "batch_size" in args


def release_of(args: Mapping[str, Any], columns: Sequence[str]) -> tuple[Version, Version]:
    """The first and last Ultralytics release that writes this args.yaml's key set and results.csv's columns."""
    lo, hi = (8, 0, 0), LAST
    keys = set(args)
    if keys:
        for first, last, need, lack in ERAS:
            if need <= keys and not (lack & keys):
                lo, hi = first, last
                break
    elif any(c.endswith(("/sem_loss", "/dis_loss")) for c in columns):
        lo = (8, 4, 0)  # YOLO26's loss columns
    if "epoch" in columns:  # the time column dates the writer too (8.3.9+)
        if "time" in columns:
            lo = max(lo, _TIME_COLUMN)
        else:
            hi = min(hi, (8, 3, 8))
    return (lo, hi) if lo <= hi else (lo, lo)


def family(args: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The release family that wrote a run (a label for people; the rules go by `release_of`)."""
    if is_yolov5(args, columns):
        return "yolov5"
    lo, hi = release_of(args, columns)
    if hi < (8, 1, 0):
        return "8.0"
    if lo >= (8, 4, 0):
        return "8.4"
    return "8.1-8.3"


def task_of(args: Mapping[str, Any], columns: Sequence[str]) -> str:
    """detect, segment, classify, pose or obb: args.yaml's ``task``, else what the CSV's columns show."""
    t = str(args.get("task") or "")
    if t in TASKS:
        return t
    cols = set(columns)
    if "metrics/accuracy_top1" in cols:
        return "classify"
    if "metrics/mAP50-95(M)" in cols:
        return "segment"
    if "metrics/mAP50-95(P)" in cols:
        return "pose"
    if any("angle_loss" in c for c in cols):
        return "obb"
    return "detect"


def headline_column(task: str, columns: Sequence[str], fam: str = "8.1-8.3") -> str | None:
    """The task's headline metric column if the CSV has it (any mAP50-95 column as a last resort)."""
    want = V5_HEADLINE if fam == "yolov5" else HEADLINE.get(task, HEADLINE["detect"])
    if want in columns:
        return want
    return next((c for c in columns if "mAP50-95" in c or "mAP_0.5:0.95" in c), None)


def _patience(args: Mapping[str, Any]) -> int | None:
    try:
        p = int(args.get("patience") or 0)
    except (TypeError, ValueError):
        return None
    return p if p > 0 else None  # Ultralytics: `patience or float("inf")`


def layout_of(args: Mapping[str, Any], columns: Sequence[str], rows: Sequence[Mapping[str, float]]) -> Layout:
    """How to read a run's results (family, task, headline column, epoch base, patience)."""
    fam = family(args, columns)
    task = "detect" if fam == "yolov5" else task_of(args, columns)
    lo, hi = release_of(args, columns)
    release = ("", "") if fam == "yolov5" else (_text(lo), _text(hi))
    first = rows[0].get("epoch") if rows else None
    # 0-based writers (YOLOv5, 8.0.x) start at 0; a resumed 8.0 run still has its 0 row above the resumed ones.
    zero_based = fam in ("yolov5", "8.0") and first is not None and first == 0
    if fam not in ("yolov5", "8.0") and first == 0:
        zero_based = True  # no other release writes epoch 0; trust the data over the guessed family
    return Layout(fam, task, headline_column(task, columns, fam), 1 if zero_based else 0, _patience(args),
                  _time_limit(args) if fam not in ("yolov5", "8.0") else None, release)


def _time_limit(args: Mapping[str, Any]) -> float | None:
    try:
        t = float(args.get("time") or 0)
    except (TypeError, ValueError):
        return None
    return t if t > 0 else None


def _cell(row: Mapping[str, float], col: str) -> float:
    v = row.get(col, math.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _metric_fitness(row: Mapping[str, float], cols: Sequence[str], weights: Sequence[float], nan_to_0: bool) -> float:
    total = 0.0
    for c, w in zip(cols, weights):
        if w == 0.0 or c not in row:  # a column the CSV lacks altogether (not Ultralytics-written): weigh the rest
            continue
        v = _cell(row, c)
        if math.isnan(v):
            if not nan_to_0:
                return math.nan
            v = 0.0
        total += w * v
    return total


def fitness(row: Mapping[str, float], lay: Layout) -> float:
    """Ultralytics' fitness of one results row (NaN when the row has no validation metrics)."""
    if lay.family == "yolov5":
        return _metric_fitness(row, _V5, (0.0, 0.0, 0.1, 0.9), False)
    if lay.task == "classify":
        if lay.newest < CLASSIFY_MEAN_FROM:
            return _cell(row, "metrics/accuracy_top5")
        return (_cell(row, "metrics/accuracy_top1") + _cell(row, "metrics/accuracy_top5")) / 2
    w = (0.0, 0.0, 0.0, 1.0) if lay.newest >= MAP95_ONLY_FROM else (0.0, 0.0, 0.1, 0.9)
    nan0 = lay.newest >= NAN_TO_0_FROM
    box = _metric_fitness(row, _BOX, w, nan0)
    if lay.task == "segment":
        return _metric_fitness(row, _MASK, w, nan0) + box
    if lay.task == "pose":
        return _metric_fitness(row, _POSE, w, nan0) + box
    return box


def best_index(fits: Sequence[float], lay: Layout) -> int | None:
    """Row index of the epoch best.pt holds, replaying the trainer's comparison of the run's release."""
    best_i: int | None = None
    best = 0.0 if lay.family == "yolov5" else None
    is_none = lay.newest >= BEST_IS_NONE_FROM
    for i, f in enumerate(fits):
        if math.isnan(f):
            continue
        if lay.family == "yolov5":
            better = f > best  # type: ignore[operator]
        elif is_none:
            better = best is None or best < f
        else:
            better = not best or best < f  # a best of 0 (or none yet) is replaced by anything
        if better:
            best_i, best = i, f
    return best_i


def stopper_rules(lay: Layout) -> tuple[bool, ...]:
    """The EarlyStopping comparisons the run's release range had: False for ``>=``, True for ``> or best == 0``."""
    if lay.family == "yolov5":
        return (False,)
    return tuple(sorted({lay.oldest >= STRICT_STOPPER_FROM, lay.newest >= STRICT_STOPPER_FROM}))


def early_stop_index(fits: Sequence[float], strict: bool, patience: int | None) -> tuple[int | None, int | None]:
    """(row index where EarlyStopping would stop, row index of the stopper's best), or (None, best) if it never does.

    Args:
        fits: Fitness per row (NaN: no validation that epoch).
        strict: The stopper's best moves on ``fitness > best or best == 0`` (8.3.75+), else on ``fitness >= best``.
        patience: Epochs without improvement that stop training (None: never).
    """
    best_f, best_i = 0.0, 0
    for i, f in enumerate(fits):
        if math.isnan(f):
            continue
        moved = (f > best_f or best_f == 0) if strict else f >= best_f
        if moved:
            best_f, best_i = f, i
        if patience is not None and i - best_i >= patience:
            return i, best_i
    return None, best_i


def read_run(
    rows: Sequence[Mapping[str, float]],
    columns: Sequence[str],
    args: Mapping[str, Any],
    *,
    mtime: float | None = None,
    now: float | None = None,
    live_window_s: float = LIVE_WINDOW_S,
) -> Reading:
    """Read a run's results the way Ultralytics meant them.

    Args:
        rows: The results.csv rows (column -> number), in file order.
        columns: The CSV's columns.
        args: The run's args.yaml (YOLOv5: opt.yaml), {} if none.
        mtime: When results.csv last changed (epoch seconds); a recent change means the run is still going.
        now: The time to judge "recent" against (default: now).
        live_window_s: How recent counts as still being written.

    Returns:
        Epochs done/planned (1-based), the headline metric's best and last values, the best epoch by the
        release's own fitness, and the state of the run.

    Examples:
        >>> r = read_run([{"epoch": 0, "metrics/mAP50-95(B)": 0.2}, {"epoch": 1, "metrics/mAP50-95(B)": 0.3}],
        ...              ["epoch", "metrics/mAP50-95(B)"], {"task": "detect", "epochs": 2, "v5loader": False})
        >>> (r.epochs_done, r.epochs_planned, r.best_epoch, r.state)
        (2, 2, 2, 'finished')
    """
    lay = layout_of(args, columns, rows)
    planned = _planned(args)
    done = 0
    if rows:
        last_ep = _cell(rows[-1], "epoch")
        done = int(last_ep) + lay.epoch_offset if math.isfinite(last_ep) else len(rows)
    fits = [fitness(r, lay) for r in rows]
    bi = best_index(fits, lay)
    best = best_epoch = best_fit = None
    if bi is not None:
        best_fit = fits[bi]
        best = _fin(_cell(rows[bi], lay.headline)) if lay.headline else None
        best_epoch = _epoch_of(rows[bi], bi, lay)
    last = _fin(_cell(rows[-1], lay.headline)) if rows and lay.headline else None
    state, reason = _state(rows, fits, lay, done, planned, mtime, time.time() if now is None else now, live_window_s)
    return Reading(lay, done, planned, best, best_epoch, best_fit, last, state, reason)


def _fin(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _epoch_of(row: Mapping[str, float], i: int, lay: Layout) -> int:
    e = _cell(row, "epoch")
    return int(e) + lay.epoch_offset if math.isfinite(e) else i + 1


def _planned(args: Mapping[str, Any]) -> int | None:
    try:
        e = int(args.get("epochs"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return e if e > 0 else None


def _state(rows: Sequence[Mapping[str, float]], fits: Sequence[float], lay: Layout, done: int, planned: int | None,
           mtime: float | None, now: float, live_window_s: float) -> tuple[str, str]:
    if not rows:
        if mtime is not None and now - mtime < live_window_s:
            return "running", "results.csv was created moments ago: the first epoch is still training"
        return "unknown", "no epoch finished yet"
    if planned is not None and done >= planned:
        return "finished", ""
    # Before the clock: a run EarlyStopping ended writes no further row, however recent its last one is.
    for strict in stopper_rules(lay):
        stop_i, stop_best = early_stop_index(fits, strict, lay.patience)
        if stop_i is None or stop_i != len(rows) - 1:
            continue
        best_ep = _epoch_of(rows[stop_best or 0], stop_best or 0, lay)
        return "early-stopped", (f"early-stopped at epoch {done}: no improvement since epoch {best_ep} "
                                 f"(patience {lay.patience})")
    if mtime is not None and now - mtime < live_window_s:
        return "running", f"results.csv changed {max(0, int(now - mtime))} s ago: still being written"
    if lay.time_limit_h:  # trainer: `self.stop |= (time.time() - self.train_time_start) > (self.args.time * 3600)`
        return "finished", f"ended by its time limit (time: {lay.time_limit_h:g} h) after {done} epochs"
    if planned is None:
        return "unknown", "epochs planned unknown (no args.yaml)"
    return "stopped short", f"stopped at epoch {done} of {planned} (killed, crashed or interrupted)"


def default_metric(runs: Sequence[tuple[Layout, Sequence[str]]]) -> str | None:
    """The metric a comparison of these runs should open on: one every run has, when there is one.

    The runs' shared headline when they share one (top-1 for classifiers, mask mAP for segmenters...), else the
    first headline all of them carry, else the first ``metrics/`` column, validation loss or column common to all.
    Runs that share no column at all (YOLOv5 next to classifiers next to detectors) open on the headline most of
    them carry; the page names the runs that lack it.

    Args:
        runs: (layout, results columns) of each selected run.
    """
    if not runs:
        return None
    common = set(runs[0][1]).intersection(*(set(c) for _, c in runs[1:])) - {"epoch", "time"}
    heads = [lay.headline for lay, _ in runs if lay.headline]
    for h in heads:
        if h in common:
            return h
    for prefix in ("metrics/mAP50-95", "metrics/", "val/", ""):
        cands = sorted(c for c in common if c.startswith(prefix))
        if cands:
            return cands[0]
    if not heads:
        return None
    carried = {h: sum(h in cols for _, cols in runs) for h in heads}
    return max(heads, key=lambda h: carried[h])  # max keeps the first of equals: the earliest picked run's
