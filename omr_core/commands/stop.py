"""`omr stop NAME`: stop a run gracefully (resumable), or kill it with --kill."""

from __future__ import annotations

import argparse

from omr_core.training.launcher import kill, stop

VERB = "stop"
HELP = "stop a training run gracefully, keeping a resumable checkpoint (--kill: SIGKILL now)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="run name (see `omr runs`)")
    p.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")
    p.add_argument("--kill", action="store_true", help="kill the process group now (SIGKILL)")
    p.add_argument("--at", choices=("batch", "epoch"), default="batch",
                   help="graceful stop after the current batch (default) or at the end of the epoch")


def run(args: argparse.Namespace) -> int:
    if args.kill:
        d = kill(args.name, args.runs_dir)
        print(f"killed {d}; `omr resume {args.name}` continues from the last saved epoch")
    else:
        d = stop(args.name, args.runs_dir, at=args.at)
        when = "after the current batch" if args.at == "batch" else "at the end of the current epoch"
        print(f"stop requested for {d} ({when}, then a last validation); `omr runs` shows when it has stopped")
    return 0
