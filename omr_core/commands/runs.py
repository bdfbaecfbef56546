"""`omr runs`: list training runs with state and progress (or delete one)."""

from __future__ import annotations

import argparse
import json

from omr_core.errors import OmrError
from omr_core.training import delete_run, list_runs
from omr_core.workspace import get_workspace

VERB = "runs"
HELP = "list training runs (state, epoch, batch, best headline metric and its epoch, ETA)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--delete", metavar="NAME", help="delete this run's folder (never a running one)")
    p.add_argument("--yes", action="store_true", help="confirm --delete")
    p.add_argument("--add", metavar="PATH", help="list a run folder, or a folder of runs, from elsewhere with these "
                                                  "runs (read-only: never modified)")
    p.add_argument("--unlink", metavar="PATH", help="stop listing a folder added with --add (its files stay)")


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(args: argparse.Namespace) -> int:
    root = args.runs_dir or get_workspace().runs
    if getattr(args, "add", None):
        from omr_core.training import link_folder

        found = link_folder(root, args.add)
        print(f"linked {args.add}: {len(found)} run{'s' if len(found) != 1 else ''} (read-only)")
    if getattr(args, "unlink", None):
        from omr_core.training import unlink_folder

        unlink_folder(root, args.unlink)
        print(f"unlinked {args.unlink} (its files are untouched)")
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
    table = [("name", "state", "epoch", "batch", "best", "metric", "elapsed", "ETA", "s/batch")]
    notes: list[list[str]] = [[]]
    for r in runs:
        b = f"{r.batch}/{r.batches}" if r.batch is not None and r.live else "-"
        m = f"{r.best_map:.4f} @{r.best_epoch}" if r.best_map is not None else "-"
        spb = f"{r.s_per_batch:.2f}" if r.s_per_batch else "-"
        table.append((r.name, r.state, r.epoch_text, b, m, r.metric, _dur(r.elapsed_s), _dur(r.eta_s), spb))
        why = [r.reason] if r.reason and r.state in ("failed", "stopped", "early-stopped", "external") else []
        notes.append(why + list(r.damage))  # damaged logs: say what was skipped rather than fail or stay silent
    # Widths from the cells themselves, so a long run name never pushes the other columns out of line.
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    left = {0, 1, 5}
    for row, lines in zip(table, notes):
        print("  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        for line in lines:
            print(f"  └ {line}")
    return 0
