"""run.json as one typed record: the run's state (an enum) and every key the launcher and the worker write."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from functools import cache
from typing import Any


class RunState(str, Enum):
    """What a run is doing. A str: run.json holds the plain value and ``state == "running"`` still holds."""

    STARTING = "starting"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    EXTERNAL = "external"  # a folder trained elsewhere (no run.json) that did not finish
    EARLY_STOPPED = "early-stopped"  # trained elsewhere, ended by Ultralytics' EarlyStopping (training/layouts.py)

    def __str__(self) -> str:
        return self.value


LIVE_STATES = frozenset({RunState.STARTING, RunState.RUNNING})


@dataclass(frozen=True)
class RunRecord:
    """The content of a run's run.json.

    Written by the launcher (launch, resume, kill, the reaper) and the worker (session start, callbacks, end);
    read by `omr_core.training.runs`. Reading is tolerant: a missing key takes its default, a value of the wrong
    type too (a damaged or hand-edited file must not take the monitor down), and keys this version does not know
    are kept in `extra` and written back unchanged.
    """

    format: int = 1
    name: str = ""
    mode: str = "train"  # "train" (a fresh session) or "resume"
    state: RunState = RunState.FAILED  # a run.json without a state never got far enough to be anything else
    reason: str = ""  # why it failed or stopped
    external: bool = False  # trained elsewhere, then resumed from here
    created: float | None = None
    launched: float | None = None  # the current session's launch
    updated: float | None = None  # the last write of this file
    spec: dict[str, Any] | None = None  # the TrainSpec (fresh runs)
    args: dict[str, Any] = field(default_factory=dict)  # what the person asked for (model, data, overrides)
    train_args: dict[str, Any] | None = None  # Ultralytics' arguments of the first session
    resume_args: dict[str, Any] = field(default_factory=dict)
    scale: dict[str, Any] | None = None  # how the weights must be run (training/scale.py)
    command: list[str] = field(default_factory=list)
    sample_interval: float = 1.0
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier sessions: started, ended, state, ...
    # the current session
    session: int | None = None
    python: str | None = None
    pid: int | None = None
    pid_create_time: float | None = None
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    stopping: bool = False  # a stop was requested and the trainer told
    phase: str | None = None  # setup, train, val, final
    phase_since: float | None = None
    val_seconds: float | None = None
    # progress, as Ultralytics reports it
    epochs: int | None = None
    start_epoch: int | None = None
    epoch: int | None = None  # the epoch in progress, 1-based
    batches: int | None = None  # per epoch
    epochs_done: int | None = None
    checkpoint_epoch: int | None = None
    resume_from: str | None = None  # checkpoint a resume starts from, relative to the run folder
    final_metrics: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @classmethod
    def from_dict(cls, doc: typing.Mapping[str, Any]) -> RunRecord:
        """The record of a parsed run.json, whatever its age or damage (see the class docstring)."""
        kinds = _kinds()
        known: dict[str, Any] = {}
        for k, v in doc.items():
            if k in kinds and k != "extra":
                ok, value = _coerce(v, kinds[k])
                if ok:
                    known[k] = value
        extra = {k: v for k, v in doc.items() if k not in kinds}
        if isinstance(doc.get("extra"), dict):
            extra = {**doc["extra"], **extra}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """run.json's content: the known keys, then the unknown ones kept from the file."""
        d = asdict(self)
        extra = d.pop("extra")
        d["state"] = self.state.value
        return {**d, **{k: v for k, v in extra.items() if k not in d}}

    def changed(self, **changes: Any) -> RunRecord:
        """A copy with ``changes`` applied (coerced like a read value).

        Raises:
            TypeError: A key that is not a run.json field (a typo must not write a key nobody reads).
        """
        unknown = sorted(set(changes) - set(_kinds()) | ({"extra"} & set(changes)))
        if unknown:
            raise TypeError(f"run.json has no field {', '.join(unknown)}")
        return RunRecord.from_dict({**self.to_dict(), **changes})


@cache
def _kinds() -> dict[str, Any]:
    hints = typing.get_type_hints(RunRecord)
    return {f.name: hints[f.name] for f in fields(RunRecord)}


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """(True, the value as ``hint`` wants it) or (False, None) when it cannot be read as that type."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        if value is None:
            return True, None
        hint = next(a for a in args if a is not type(None))
    base = typing.get_origin(hint) or hint
    if base is RunState:
        try:
            return True, RunState(value)
        except ValueError:
            return False, None
    if base is bool:
        return isinstance(value, bool), value
    if base is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if base in (str, dict, list):
        return isinstance(value, base), value
    return True, value
