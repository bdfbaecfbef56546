"""The run's notifier, ``python -m omr_core.notify.watch RUN_DIR WORKER_PID EVENTS_OFFSET``.

A small process of its own session, started by the launcher beside each worker session when notifications are
configured. It reads the run's events.jsonl as it grows and the run's state, and pushes what the settings ask for:
the training loop never waits for a network, the run is notified when no dashboard is open, and a worker killed
with SIGKILL (which takes its whole process group) is noticed here, because this process is not in that group.

One message per event kind per run: a claim file ``.notify/<key>`` (created with O_EXCL) decides who sends, across
sessions and processes; later occurrences are counted and named in the run's final message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omr_core.notify.deliver import Outbox, record_result
from omr_core.notify.messages import Notice, end_notice, event_notice
from omr_core.notify.settings import NotifySettings, load_settings

POLL_S = 1.0
FINAL_STATES = frozenset({"finished", "failed", "stopped"})


def claim(run_dir: Path, key: str) -> bool:
    """True for exactly one caller per run and key (the one that gets to send)."""
    d = run_dir / ".notify"
    d.mkdir(exist_ok=True)
    try:
        fd = os.open(d / key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.write(fd, f"{time.time()} {os.getpid()}\n".encode())
    os.close(fd)
    return True


class RunNotifier:
    """Turns one worker session's events and end into notices (pure bookkeeping; `Outbox` sends)."""

    def __init__(self, run_dir: Path, settings: NotifySettings, run_name: str, session: int) -> None:
        self.run_dir, self.settings, self.run, self.session = run_dir, settings, run_name, session
        self.link = settings.run_link(run_name)
        self.counts: dict[str, int] = {}

    def on_event(self, event: Mapping[str, Any]) -> Notice | None:
        n = event_notice(event, self.run, self.link)
        if n is None or not self.settings.targets_for(n.kind):
            return None
        self.counts[n.kind] = self.counts.get(n.kind, 0) + 1
        return n if claim(self.run_dir, n.kind) else None

    def on_end(self, state: str, summary: Any) -> Notice | None:
        if state not in FINAL_STATES or not self.settings.targets_for(state):
            return None
        if not claim(self.run_dir, f"end-session-{self.session}"):
            return None
        return end_notice(state, self.run, reason=summary.reason, epoch=summary.epoch, epochs=summary.epochs,
                          best_map=summary.best_map, best_epoch=summary.best_epoch, elapsed_s=summary.elapsed_s,
                          repeats=self.counts, link=self.link)


def watch(run_dir: Path, worker_pid: int, events_offset: int, *, poll_s: float = POLL_S) -> int:
    """Follow the run until its session ends, sending as we go; returns 0 (nothing to do is not an error)."""
    from omr_core.training.runs import EVENTS, RunView, effective_state, read_run
    from omr_core.training.tail import JsonlTail

    settings = load_settings()
    if not settings.targets:
        return 0
    rec = read_run(run_dir)
    session = int((rec.session if rec else None) or len(rec.history if rec else []) + 1)
    notifier = RunNotifier(run_dir, settings, run_dir.name, session)
    outbox = Outbox(settings, record_result(run_dir))
    tail = JsonlTail(run_dir / EVENTS, offset=events_offset)  # this session's events: earlier watchers had theirs
    try:
        while True:
            records, _ = tail.poll()
            for ev in records:
                n = notifier.on_event(ev)
                if n is not None:
                    outbox.put(n)
            rec = read_run(run_dir)
            if rec is not None and rec.pid not in (None, worker_pid):
                return 0  # a newer session (resume) has its own notifier
            state, _ = effective_state(rec)  # run.json and one process check: cheap enough to do every poll
            if state in FINAL_STATES:
                s = RunView(run_dir, batch_tail_bytes=0).poll(samples=False).summary()  # the numbers, once
                for ev in tail.poll()[0]:  # the worker's last events were written before its end state
                    n = notifier.on_event(ev)
                    if n is not None:
                        outbox.put(n)
                n = notifier.on_end(s.state, s)
                if n is not None:
                    outbox.put(n)
                return 0
            time.sleep(poll_s)
    finally:
        outbox.close()


def spawn_watcher(run_dir: Path, worker_pid: int, events_offset: int, env: Mapping[str, str] | None = None) -> int | None:
    """Start the notifier of a worker session (only when some target is configured); returns its PID or None."""
    try:
        if not load_settings(env=dict(env) if env is not None else None).targets:
            return None
    except Exception:  # unreadable settings: the page and `omr notify show` say why; training goes on
        return None
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "omr_core.notify.watch", str(run_dir), str(worker_pid), str(events_offset)],
        cwd=run_dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the worker's process group: `omr kill` must not take the notifier along
        close_fds=True, env=dict(env) if env is not None else None,
    )
    return proc.pid


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m omr_core.notify.watch RUN_DIR WORKER_PID EVENTS_OFFSET", file=sys.stderr)
        return 2
    return watch(Path(argv[0]).resolve(), int(argv[1]), int(argv[2]))


if __name__ == "__main__":
    sys.exit(main())
