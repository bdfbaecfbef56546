"""`omr resume NAME`: continue a stopped or failed run from its last resumable checkpoint."""

from __future__ import annotations

import argparse

from omr_core.training import RESUME_ALLOWED, parse_extra, resume

VERB = "resume"
HELP = "resume a stopped or failed run (epochs cannot be raised on resume)"
DESCRIPTION = (
    "Resume a stopped or failed run in its own folder from weights/last_resumable.pt or weights/last.pt. "
    "Ultralytics resumes with the checkpoint's arguments, so epochs cannot be raised on resume: to train longer, "
    "start a new run with model=<run>/weights/last.pt. Allowed key=value changes: " + ", ".join(sorted(RESUME_ALLOWED))
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="run name (see `omr runs`)")
    p.add_argument("extra", nargs="*", metavar="key=value",
                   help="allowed changes right after the name, e.g. batch=8 device=0 workers=2")
    p.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")


def run(args: argparse.Namespace) -> int:
    d = resume(args.name, args.runs_dir, overrides=parse_extra(args.extra))
    print(d)
    return 0
