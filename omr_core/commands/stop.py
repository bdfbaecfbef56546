"""`omr stop NAME`: stop a run gracefully (resumable), or kill it with --kill."""

from __future__ import annotations

import argparse

from omr_core.training import STOP_MODES, RunView, kill, stop, stop_consequence

VERB = "stop"
HELP = "stop a training run gracefully, keeping a resumable checkpoint (--kill: SIGKILL now)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="run name (see `omr runs`)")
    p.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")
    p.add_argument("--kill", action="store_true", help="kill the process group now (SIGKILL)")
    p.add_argument("--at", choices=STOP_MODES, default=STOP_MODES[0],
                   help="graceful stop at the end of the epoch in progress (default) or after the current batch "
                        "(Ultralytics then saves the partial epoch as done: the rest of it is skipped)")


def run(args: argparse.Namespace) -> int:
    if args.kill:
        d = kill(args.name, args.runs_dir)
        print(f"killed {d}; `omr resume {args.name}` continues from the last saved epoch")
    else:
        d = stop(args.name, args.runs_dir, at=args.at)
        s = RunView(d).poll(samples=False).summary()
        print(f"stop requested for {d}: {stop_consequence(args.at, s.current_epoch, s.batch, s.batches)} "
              "`omr runs` shows when it has stopped")
    return 0
