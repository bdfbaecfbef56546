"""What a notification says: run events (events.jsonl lines) and run ends turned into short messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: events.jsonl kinds (and live-alert names the worker records as ``kind: alert``) -> notification kind.
EVENT_KINDS: dict[str, str] = {
    "nonfinite_loss": "nonfinite_loss",
    "nan_recovery": "nonfinite_loss",
    "cuda_oom": "cuda_oom",
    "batch_reduced": "cuda_oom",
    "assigner_oom": "assigner_fallback",
    "diverging": "diverging",
    "not_learning": "not_learning",
    "stalled": "stalled",
    "vram_high": "vram_high",
    "throughput_collapse": "throughput_collapse",
}

_TITLES = {
    "finished": "finished",
    "failed": "FAILED",
    "stopped": "stopped",
    "nonfinite_loss": "non-finite loss",
    "diverging": "loss diverging",
    "not_learning": "not learning",
    "cuda_oom": "CUDA out of memory",
    "assigner_fallback": "assigner fell back (GPU memory)",
    "stalled": "stalled",
    "vram_high": "GPU memory above 95 %",
    "throughput_collapse": "throughput collapsed",
    "sweep_finished": "sweep finished",
    "test": "test message",
}


@dataclass(frozen=True)
class Notice:
    """One message to send: its kind, the run it is about, a title and a body (numbers included)."""

    kind: str
    run: str
    title: str
    body: str
    level: str = "warning"  # info, success, warning, failure (Apprise's notify types)


def title(kind: str, run: str) -> str:
    return f"OMR run {run}: {_TITLES.get(kind, kind)}"


def event_notice(event: Mapping[str, Any], run: str, link: str = "") -> Notice | None:
    """The notice for one events.jsonl record, or None when that event is not something to push."""
    raw = str(event.get("kind", ""))
    name = str(event.get("alert", "")) if raw == "alert" else raw
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return None
    body = str(event.get("message") or name)
    extra = {k: event[k] for k in ("epoch", "batch") if k in event}
    if extra:
        body += " (" + ", ".join(f"{k} {v}" for k, v in extra.items()) + ")"
    if link:
        body += f"\n{link}"
    level = "failure" if kind in {"nonfinite_loss", "cuda_oom", "diverging"} else "warning"
    return Notice(kind, run, title(kind, run), body, level)


def _fmt_map(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def end_notice(
    state: str,
    run: str,
    *,
    reason: str = "",
    epoch: int = 0,
    epochs: int | None = None,
    best_map: float | None = None,
    best_epoch: int | None = None,
    elapsed_s: float | None = None,
    repeats: Mapping[str, int] | None = None,
    link: str = "",
) -> Notice:
    """The notice for a run that ended: finished, failed (reason and last epoch) or stopped."""
    of = f" of {epochs}" if epochs else ""
    lines = [f"{epoch}{of} epochs done."]
    if state == "failed":
        lines.insert(0, f"Reason: {reason or 'unknown'}.")
        lines[1] = f"Last epoch completed: {epoch}{of}."
    elif state == "stopped" and reason:
        lines.insert(0, reason[0].upper() + reason[1:] + ".")
    if best_map is not None:
        lines.append(f"Best mAP50-95 {_fmt_map(best_map)} (epoch {best_epoch}).")
    if elapsed_s:
        lines.append(f"Training time {elapsed_s / 3600:.2f} h.")
    more = {k: n for k, n in (repeats or {}).items() if n > 1}
    if more:
        lines.append("Repeated alerts (notified once each): " + ", ".join(f"{k} ×{n}" for k, n in sorted(more.items())) + ".")
    if link:
        lines.append(link)
    level = {"finished": "success", "failed": "failure"}.get(state, "info")
    return Notice(state, run, title(state, run), "\n".join(lines), level)
