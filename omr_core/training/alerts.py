"""Alerts over a run's live data: non-finite loss, OOM / assigner fallback, stalled, VRAM full, throughput collapse."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from omr_core.training.runs import RunView

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
    """

    stall_factor: float = 10.0
    stall_min_s: float = 120.0
    val_stall_min_s: float = 1800.0
    vram_fraction: float = 0.95
    collapse_factor: float = 3.0
    collapse_min_batches: int = 30
    collapse_window: int = 10
    sample_max_age_s: float = 30.0


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Alert:
    """Something the person watching the run should see now.

    Attributes:
        kind: nonfinite_loss, cuda_oom, assigner_oom, batch_reduced, nan_recovery, exception, stalled, vram_high,
            throughput_collapse or worker_vanished.
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


def live_alerts(view: RunView, now: float, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Alert]:
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

    sec = b.col("sec") if len(b) else np.array([])
    med = _median(sec)
    doc = view.doc or {}
    if live:
        phase = doc.get("phase") or "setup"
        phase_since = float(doc.get("phase_since") or doc.get("started") or now)
        last_t = b.last("t") if len(b) else None
        if phase == "train":
            ref = max(last_t or 0.0, phase_since)
            limit = max(th.stall_min_s, th.stall_factor * (med or 0.0))
            idle = now - ref
            if idle > limit:
                out.append(Alert("stalled", "error", f"Stalled: no batch for {idle:.0f} s (usual {med or 0:.2f} s per batch).", ref))
        elif phase == "val":
            prev = doc.get("val_seconds")
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


def evaluate(view: RunView, now: float, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Alert]:
    """Every alert of a run: live ones first, then recorded events (errors before warnings), no duplicate kinds."""
    live = live_alerts(view, now, th)
    kinds = {a.kind for a in live}
    rest = [a for a in event_alerts(view.events) if a.kind not in kinds]
    return sorted(live + rest, key=lambda a: a.severity != "error")
