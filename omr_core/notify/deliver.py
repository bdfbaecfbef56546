"""Sending: Apprise in a background thread with retries; failures recorded in the run's events, secrets scrubbed."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omr_core.notify.messages import Notice
from omr_core.notify.settings import NotifySettings, Target, scrub

_APPRISE_LOGGERS = ("apprise", "urllib3", "requests")


@dataclass(frozen=True)
class Delivery:
    """What happened to one notice at one target (number as listed, masked URL)."""

    target: int
    masked: str
    ok: bool
    attempts: int
    error: str = ""


class _Capture(logging.Handler):
    """Keeps Apprise's own warnings (they explain a failure) for this thread; nothing reaches stderr or log files."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # pragma: no cover - a broken record
            pass


def _quiet_apprise() -> None:
    for name in _APPRISE_LOGGERS:
        lg = logging.getLogger(name)
        lg.propagate = False  # URLs appear in their debug/info lines: never let them reach a handler of ours
        if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
            lg.addHandler(logging.NullHandler())


def send_once(target: Target, notice: Notice, urls: list[str]) -> tuple[bool, str]:
    """One try at one target: (ok, scrubbed error)."""
    import apprise

    _quiet_apprise()
    cap = _Capture()
    lg = logging.getLogger("apprise")
    lg.addHandler(cap)
    try:
        a = apprise.Apprise()
        if not a.add(target.url):
            return False, "Apprise does not understand this URL"
        ok = bool(a.notify(title=notice.title, body=notice.body, notify_type=notice.level))
    except Exception as exc:  # a plugin that raises: scrub and report
        return False, scrub(f"{type(exc).__name__}: {exc}", urls)
    finally:
        lg.removeHandler(cap)
    return ok, "" if ok else scrub("; ".join(cap.messages[-2:]) or "the service refused the message", urls)


def deliver(notice: Notice, settings: NotifySettings, *, sleep: Callable[[float], None] = time.sleep) -> list[Delivery]:
    """Send ``notice`` to every target that wants its kind, retrying as the settings say (blocking)."""
    urls = [t.url for t in settings.targets]
    out = []
    for number, target in settings.targets_for(notice.kind):
        ok, err, n = False, "", 0
        for n in range(1, max(1, settings.retry.attempts) + 1):
            if n > 1:
                sleep(settings.retry.wait(n))
            ok, err = send_once(target, notice, urls)
            if ok:
                break
        out.append(Delivery(number, target.masked, ok, n, err))
    return out


class Outbox:
    """A background sender: `put` never blocks (the caller's loop goes on); `close` waits a bounded time.

    Args:
        settings: Targets and retry policy.
        on_result: Called in the sender thread with each notice and its deliveries (records them).
    """

    def __init__(self, settings: NotifySettings, on_result: Callable[[Notice, list[Delivery]], None]) -> None:
        self.settings = settings
        self.on_result = on_result
        self._q: queue.Queue[Notice | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="omr-notify", daemon=True)
        self._thread.start()

    def put(self, notice: Notice) -> None:
        self._q.put(notice)

    def _run(self) -> None:
        while True:
            notice = self._q.get()
            if notice is None:
                return
            try:
                self.on_result(notice, deliver(notice, self.settings))
            except Exception:  # noqa: S110 - a recorder that fails must not end the sender
                pass

    def close(self, timeout: float = 300.0) -> bool:
        """Send what is queued (retries included), at most ``timeout`` s; True when everything was tried."""
        self._q.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()


def record_result(run_dir: Path) -> Callable[[Notice, list[Delivery]], None]:
    """A recorder for `Outbox`: failures become ``notify_failed`` events, successes lines in ``.notify/sent.jsonl``."""
    from omr_core.training.runs import append_event, append_jsonl

    def rec(notice: Notice, results: list[Delivery]) -> None:
        for d in results:
            if d.ok:
                (run_dir / ".notify").mkdir(exist_ok=True)
                append_jsonl(run_dir / ".notify" / "sent.jsonl",
                             {"t": time.time(), "kind": notice.kind, "target": d.target, "attempts": d.attempts,
                              "pid": os.getpid()})
            else:
                append_event(run_dir, "notify_failed",
                             f"Could not deliver the '{notice.kind}' notification to target {d.target} ({d.masked}) "
                             f"after {d.attempts} attempt(s): {d.error}",
                             notification=notice.kind, target=d.target, attempts=d.attempts, pid=os.getpid())

    return rec
