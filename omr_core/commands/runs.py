"""`omr runs`: list training runs with state and progress (or delete one)."""

from __future__ import annotations

import argparse
import json
import time

from omr_core.errors import OmrError
from omr_core.training.runs import delete_run, list_runs
from omr_core.workspace import get_workspace

VERB = "runs"
HELP = "list training runs (state, epoch, batch, best mAP50-95, ETA)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--delete", metavar="NAME", help="delete this run's folder (never a running one)")
    p.add_argument("--yes", action="store_true", help="confirm --delete")


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(args: argparse.Namespace) -> int:
    root = args.runs_dir or get_workspace().runs
    if args.delete:
        if not args.yes:
            raise OmrError(f"add --yes to delete run {args.delete!r} and all its files")
        print(f"deleted {delete_run(root, args.delete)}")
        return 0
    runs = list_runs(root)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {root}")
        return 0
    now = time.time()
    print(f"{'name':<28} {'state':<9} {'epoch':>20} {'batch':>11} {'best mAP':>8} {'elapsed':>9} {'ETA':>9} {'s/batch':>7}")
    for r in runs:
        ep = r.epoch_text
        b = f"{r.batch}/{r.batches}" if r.batch is not None and r.live else "-"
        m = f"{r.best_map:.4f}" if r.best_map is not None else "-"
        spb = f"{r.s_per_batch:.2f}" if r.s_per_batch else "-"
        print(f"{r.name:<28} {r.state:<9} {ep:>20} {b:>11} {m:>8} {_dur(r.elapsed_s):>9} {_dur(r.eta_s):>9} {spb:>7}")
        if r.reason and r.state in ("failed", "stopped"):
            print(f"{'':<28} └ {r.reason}")
        for line in r.damage:  # damaged logs: say what was skipped rather than fail or stay silent
            print(f"{'':<28} └ {line}")
    del now
    return 0
