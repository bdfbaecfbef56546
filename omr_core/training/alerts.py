"""Alerts over a run's live data: non-finite or diverging loss, not learning, OOM / assigner fallback, stalled, VRAM
full, throughput collapse."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from omr_core.training.record import RunRecord

if TYPE_CHECKING:
    from omr_core.training.runs import RunSnapshot

#: Event kinds written by the worker that are alerts by themselves, with their severity.
EVENT_ALERTS: dict[str, str] = {
    "nonfinite_loss": "error",
    "cuda_oom": "error",
    "nan_recovery": "error",
    "assigner_oom": "warning",
    "batch_reduced": "warning",
    "exception": "error",
}


@dataclass(frozen=True)
class Thresholds:
    """When live alerts fire.

    Attributes:
        stall_factor: Stalled when no batch for this many times the run's median batch time ...
        stall_min_s: ... and at least this long.
        val_stall_min_s: Validation may take this long before it counts as stalled (first epoch: twice this).
        vram_fraction: Device memory used above this fraction of its capacity.
        collapse_factor: Recent batch time this many times the run's median.
        collapse_min_batches: Batches logged before throughput collapse can fire.
        collapse_window: Recent batches whose median is compared.
        sample_max_age_s: GPU samples older than this are ignored.
        diverge_start_factor: A loss this many times its own first value is diverging ...
        diverge_growth: ... and so is one this many times the lowest value it had reached (orders of magnitude).
        diverge_floor: Loss values below this count as this when compared: box and DFL losses sit near 0 while the
            assigner has no positives yet and then wake up to their usual 1-5 (a real tiny run: val/box_loss 6e-05
            in epoch 1, 2.08 in epoch 32), so a near-zero first value is no yardstick.
        diverge_window: Batches per median when per-batch losses are compared (one noisy batch is not a trend).
        flat_epochs: Epochs with mAP50 under ``flat_map`` before "not learning" can fire ...
        flat_map: ... (what counts as zero) ...
        few_steps: ... and only when the optimizer has taken fewer steps than this so far.
    """

    stall_factor: float = 10.0
    stall_min_s: float = 120.0
    val_stall_min_s: float = 1800.0
    vram_fraction: float = 0.95
    collapse_factor: float = 3.0
    collapse_min_batches: int = 30
    collapse_window: int = 10
    sample_max_age_s: float = 30.0
    diverge_start_factor: float = 10.0
    diverge_growth: float = 100.0
    diverge_floor: float = 1.0
    diverge_window: int = 10
    flat_epochs: int = 3
    flat_map: float = 1e-3
    few_steps: int = 100


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Alert:
    """Something the person watching the run should see now.

    Attributes:
        kind: nonfinite_loss, diverging, not_learning, cuda_oom, assigner_oom, batch_reduced, nan_recovery,
            exception, stalled, vram_high, throughput_collapse or worker_vanished.
        severity: "error" or "warning".
        message: What happened, with numbers.
        t: When it happened or was first seen (epoch seconds), None when unknown.
        count: How many times (events of the same kind).
    """

    kind: str
    severity: str
    message: str
    t: float | None = None
    count: int = 1


def event_alerts(events: Iterable[Mapping[str, Any]]) -> list[Alert]:
    """One alert per alerting event kind in the run's events (latest message, count of occurrences)."""
    latest: dict[str, Mapping[str, Any]] = {}
    counts: dict[str, int] = {}
    severity: dict[str, str] = {}
    for e in events:
        kind = str(e.get("kind", ""))
        if kind == "alert":  # a live alert the worker recorded when it fired (stalled, VRAM, throughput)
            kind = str(e.get("alert", "alert"))
            severity[kind] = "warning"  # it may have cleared since; the live check says whether it still holds
        elif kind in EVENT_ALERTS:
            severity[kind] = EVENT_ALERTS[kind]
        else:
            continue
        latest[kind] = e
        counts[kind] = counts.get(kind, 0) + 1
    out = []
    for kind, e in latest.items():
        msg = str(e.get("message", kind))
        if e.get("kind") == "alert":
            msg = f"recorded during the run: {msg}"
        out.append(Alert(kind, severity[kind], msg, e.get("t"), counts[kind]))
    return sorted(out, key=lambda a: (a.severity != "error", -(a.t or 0)))


def _median(a: np.ndarray) -> float | None:
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else None


def live_alerts(view: RunSnapshot, now: float, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Alert]:
    """Alerts computed from the current data (state, batch log, samples), not from recorded events."""
    out: list[Alert] = []
    state, reason = view.state(now)
    if state == "failed" and "vanished" in reason:
        out.append(Alert("worker_vanished", "error", f"Run failed: {reason}.", now))
    b = view.batches
    live = state == "running"

    # Non-finite loss in the latest batch (the worker also records an event the first time per epoch).
    if len(b):
        last = b.last_row()
        bad = [k.split("/", 1)[1] for k in b.names if k.startswith("loss/") and not math.isfinite(b.col(k)[-1])]
        if bad:
            out.append(Alert("nonfinite_loss", "error", f"Non-finite loss in the last batch: {', '.join(bad)}.", last.get("t")))

    out.extend(learning_alerts(view, th))

    sec = b.col("sec") if len(b) else np.array([])
    med = _median(sec)
    doc = view.doc or RunRecord()
    if live:
        phase = doc.phase or "setup"
        phase_since = doc.phase_since or doc.started or now
        last_t = b.last("t") if len(b) else None
        if phase == "train":
            ref = max(last_t or 0.0, phase_since)
            limit = max(th.stall_min_s, th.stall_factor * (med or 0.0))
            idle = now - ref
            if idle > limit:
                out.append(Alert("stalled", "error", f"Stalled: no batch for {idle:.0f} s (usual {med or 0:.2f} s per batch).", ref))
        elif phase == "val":
            prev = doc.val_seconds
            limit = max(th.val_stall_min_s, 5 * float(prev)) if prev else 2 * th.val_stall_min_s
            idle = now - phase_since
            if idle > limit:
                out.append(Alert("stalled", "error", f"Stalled: validation has run for {idle / 60:.0f} min.", phase_since))

        # Throughput collapse: recent batches several times slower than the run's median.
        finite = sec[np.isfinite(sec)]
        if finite.size >= th.collapse_min_batches and med:
            recent = float(np.median(finite[-th.collapse_window :]))
            if recent > th.collapse_factor * med:
                out.append(
                    Alert(
                        "throughput_collapse",
                        "warning",
                        f"Throughput collapse: {recent:.2f} s per batch lately, {recent / med:.1f}× the run's median "
                        f"{med:.2f} s.",
                        last_t,
                    )
                )

        # VRAM close to the device's capacity (NVML samples).
        s = view.samples
        if len(s):
            t_last = s.last("t")
            if t_last is not None and now - t_last <= th.sample_max_age_s:
                row = s.last_row()
                for k, used in row.items():
                    if not (k.startswith("gpu") and k.endswith("_used")):
                        continue
                    total = row.get(k[: -len("_used")] + "_total")
                    if total and used / total > th.vram_fraction:
                        gpu = k[3 : -len("_used")]
                        out.append(
                            Alert(
                                "vram_high",
                                "warning",
                                f"GPU {gpu} memory at {100 * used / total:.1f} % of {total / 2**30:.1f} GiB.",
                                t_last,
                            )
                        )
    return out


def _diverged(v: np.ndarray, th: Thresholds) -> tuple[float, float, str] | None:
    """(last, reference, "its first value" / "its lowest value") when the series diverged, else None."""
    v = v[np.isfinite(v)]
    if v.size < 2:
        return None
    last, first, low = float(v[-1]), float(v[0]), float(v[:-1].min())
    if last > th.diverge_start_factor * max(first, th.diverge_floor):
        return last, first, "its first value"
    if last >= th.diverge_growth * max(low, th.diverge_floor):
        return last, low, "its lowest value"
    return None


def _window_medians(v: np.ndarray, w: int) -> np.ndarray:
    """Medians of consecutive windows of ``w`` values (the last window may be shorter), NaN ignored."""
    v = v[np.isfinite(v)]
    if not v.size:
        return v
    k = v.size // w
    med = np.median(v[: k * w].reshape(k, w), axis=1) if k else np.zeros(0)
    return np.append(med, np.median(v[k * w :])) if v.size > k * w else med


def learning_alerts(view: RunSnapshot, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Alert]:
    """Diverging losses (per epoch and per batch) and "not learning" (mAP flat at 0 with almost no optimizer steps).

    A run can blow up without ever going non-finite (val/cls_loss at 5.8e21 with lr0 = 1); and with batch 4 and the
    default nbs 64 Ultralytics steps the optimizer once per 16 batches, so a small dataset barely trains at all.
    """
    from omr_core.training.runs import run_args

    out: list[Alert] = []
    args = run_args(view)
    rows = view.results.rows()
    worst: tuple[float, str, str] | None = None  # (ratio, name, message)
    for col in (c for c in view.results.columns if "loss" in c):
        vals = np.array([r.get(col, math.nan) for r in rows], dtype=float)
        hit = _diverged(vals, th)
        if hit:
            last, ref, what = hit
            ep = int(rows[-1].get("epoch", len(rows)))
            msg = f"{col} is {last:.3g} at epoch {ep}, {last / ref:.3g}× {what} {ref:.3g}"
            if worst is None or last / ref > worst[0]:
                worst = (last / ref, col, msg)
    b = view.batches
    for col in (n for n in b.names if n.startswith("loss/")):
        hit = _diverged(_window_medians(b.col(col), th.diverge_window), th)
        if hit:
            last, ref, what = hit
            name = f"train {col.split('/', 1)[1]} (median of {th.diverge_window} batches)"
            if worst is None or last / ref > worst[0]:
                worst = (last / ref, name, f"{name} is {last:.3g}, {last / ref:.3g}× {what} {ref:.3g}")
    if worst is not None:
        lr = f"lr0 {args['lr0']:g}" if isinstance(args.get("lr0"), (int, float)) else "the learning rate"
        out.append(Alert("diverging", "error", f"Diverging: {worst[2]}. Stop it and lower {lr} (or use the 'stable' "
                                               "preset): it will not come back on its own.", b.last("t") if len(b) else None))
    na = _not_learning(view, rows, args, th)
    if na:
        out.append(Alert("not_learning", "warning", na, b.last("t") if len(b) else None))
    return out


def _not_learning(view: RunSnapshot, rows: list[dict[str, float]], args: dict[str, Any], th: Thresholds) -> str | None:
    from omr_core.training.optimizer import accumulate_of, optimizer_steps

    col = next((c for c in view.results.columns if c.startswith("metrics/mAP50(")), None)
    if col is None or len(rows) < th.flat_epochs:
        return None
    maps = np.array([r.get(col, math.nan) for r in rows], dtype=float)
    if not np.isfinite(maps).all() or maps.max() >= th.flat_map:
        return None
    b = view.batches
    nb_col = b.col("nb") if len(b) else np.array([])
    nb = int(nb_col[np.isfinite(nb_col)][-1]) if np.isfinite(nb_col).any() else ((view.doc.batches if view.doc else None) or 0)
    try:
        batch, nbs = int(args.get("batch", 16)), int(args.get("nbs", 64))
        epochs, warmup = int(args.get("epochs") or len(rows)), float(args.get("warmup_epochs", 3.0))
    except (TypeError, ValueError):
        return None
    if nb <= 0 or batch < 1:
        return None
    steps = optimizer_steps(len(rows) * nb, nb, batch, nbs, epochs, warmup)
    if steps >= th.few_steps:
        return None
    acc = accumulate_of(batch, nbs)
    msg = f"Not learning: mAP50 is 0 after {len(rows)} epochs, and the optimizer has taken only {steps} step{'s' if steps != 1 else ''} ({nb} batches per epoch"
    if acc > 1:
        return (msg + f"; batch {batch} with nbs {nbs} adds up {acc} batches per step). Set nbs={batch} for one step "
                "per batch, or raise the batch.")
    return msg + "). A dataset this small needs many more epochs (or more images)."


def evaluate(view: RunSnapshot, now: float, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Alert]:
    """Every alert of a run: live ones first, then recorded events (errors before warnings), no duplicate kinds."""
    live = live_alerts(view, now, th)
    kinds = {a.kind for a in live}
    rest = [a for a in event_alerts(view.events) if a.kind not in kinds]
    return sorted(live + rest, key=lambda a: a.severity != "error")
