"""`omr queue`: the run queue per device: list, cancel, hold, release, reorder, run (add with `omr train --queue`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from omr_core.training import queue
from omr_core.workspace import get_workspace

VERB = "queue"
HELP = "runs waiting their turn per device: list, cancel, hold, release, up, down (add: omr train --queue)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", default="list",
                   choices=["list", "cancel", "hold", "release", "up", "down", "clear", "run"],
                   help="list (default); cancel/hold/release/up/down ENTRY; clear (forget started entries); "
                        "run (make sure the queue runner is running, e.g. from a @reboot cron line)")
    p.add_argument("entry", nargs="?", help="entry id or run name (as `omr queue` lists them)")
    p.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")


def _list(runs: Path) -> int:
    es = queue.entries(runs)
    if not es:
        print("the queue is empty (add runs with `omr train --queue ...`)")
        return 0
    pid = queue.runner_pid(runs)
    print(f"{'id':<9} {'name':<32} {'device':<10} {'state':<12} added")
    for e in es:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.added))
        print(f"{e.id:<9} {e.name:<32} {','.join(e.lanes):<10} {e.state:<12} {when}")
        if e.reason:
            print(f"{'':<9} └ {e.reason}")
    print(f"runner: {'PID ' + str(pid) if pid else 'not running (nothing waits, or run `omr queue run`)'}")
    return 0


def run(args: argparse.Namespace) -> int:
    runs = Path(args.runs_dir) if args.runs_dir else get_workspace().runs
    a = args.action
    if a in ("cancel", "hold", "release", "up", "down") and not args.entry:
        raise queue.QueueError(f"`omr queue {a}` needs an entry id or run name")
    if a == "cancel":
        queue.cancel(runs, args.entry)
    elif a in ("hold", "release"):
        queue.hold(runs, args.entry, held=a == "hold")
    elif a in ("up", "down"):
        queue.move(runs, args.entry, -1 if a == "up" else 1)
    elif a == "clear":
        print(f"forgot {queue.clear_done(runs)} started entries (their runs stay)")
    elif a == "run":
        pid = queue.ensure_runner(runs)
        print(f"queue runner: {'PID ' + str(pid) if pid else 'nothing waits'}")
        return 0
    return _list(runs)
