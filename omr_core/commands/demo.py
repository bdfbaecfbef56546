"""`omr demo`: engrave a small dataset, convert it ("core symbols" preset) and start a short CPU training."""

from __future__ import annotations

import argparse
import sys

from omr_core.training.demo import CORE_PRESET, run_demo
from omr_core.workspace import get_workspace

VERB = "demo"
HELP = "first start: engrave a small dataset, convert it and start a short CPU training of yolov8n"
DESCRIPTION = (
    "Engrave pages from music21's corpus with verovio (DeepScoresV2 format), convert them to YOLO with the exclusion "
    f"preset '{CORE_PRESET}', and start yolov8n.yaml on the CPU in the background, so every page of the dashboard "
    "has something to show within about ten minutes. An existing demo dataset is reused."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pages", type=int, default=30, help="pages to engrave (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=640, help="training image size (default: %(default)s)")
    p.add_argument("--follow", action="store_true", help="print training progress until it ends")


def run(args: argparse.Namespace) -> int:
    from omr_core.commands._progress import tqdm_progress

    progress, close = tqdm_progress()

    def log(msg: str) -> None:
        close()  # each phase of the demo gets its own bar
        print(msg, file=sys.stderr, flush=True)

    res = run_demo(get_workspace(), pages=args.pages, epochs=args.epochs, imgsz=args.imgsz, log=log, progress=progress)
    log("")
    print(res.run_dir)
    if args.follow:
        from omr_core.commands.train import follow

        return follow(res.run_dir)
    return 0
