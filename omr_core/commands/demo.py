"""`omr demo`: engrave a small dataset, convert it with the CPU recipe (tiled) and train within a time budget."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from omr_core.training import BUDGET_MIN, CORE_PRESET, run_demo
from omr_core.workspace import get_workspace

VERB = "demo"
HELP = "first start: engrave pages, convert them with the CPU recipe and train a model that detects (≤ 20 min on 2 cores)"
DESCRIPTION = (
    "Engrave pages from music21's corpus with verovio (DeepScoresV2 format), convert them to 640 px tiles with the "
    f"preset '{CORE_PRESET}', and train yolov8n.yaml on the CPU with the 'cpu-small' preset in the background, "
    f"bounded by wall time (Ultralytics time=) so that the whole demo fits --minutes (default {BUDGET_MIN:.0f}). "
    "With --follow: a progress bar until the training ends, then the model is run on a held-out page and its "
    "noteheads are scored. An existing demo dataset is reused. The recipe: docs/recipe.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pages", type=int, default=40, help="pages to engrave (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=BUDGET_MIN,
                   help="wall-time budget of the whole demo, engraving included (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=10,
                   help="epochs planned at first; with a budget Ultralytics re-plans them after epoch 1 (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=None, help="training image size (default: the recipe's 320)")
    p.add_argument("--follow", action="store_true", help="show training progress until it ends, then check the model")


def run(args: argparse.Namespace) -> int:
    from omr_core.commands._progress import tqdm_progress

    progress, close = tqdm_progress()

    def log(msg: str) -> None:
        close()  # each phase of the demo gets its own bar
        print(msg, file=sys.stderr, flush=True)

    res = run_demo(get_workspace(), pages=args.pages, minutes=args.minutes, epochs=args.epochs, imgsz=args.imgsz,
                   log=log, progress=progress)
    log("")
    print(res.run_dir)
    if not args.follow:
        return 0
    code = follow_bar(res.run_dir, (res.train_hours or 0) * 3600)
    best = res.run_dir / "weights" / "best.pt"
    if code == 0 and best.is_file():
        from omr_core.training import score_demo

        val, page = score_demo(res.run_dir, res.data_yaml, res.synth)
        print(f"{best}: {val.summary()}", file=sys.stderr)
        print(f"{best}: {page.summary()}", file=sys.stderr)
    return code


def follow_bar(run_dir: Path, budget_s: float, interval: float = 2.0) -> int:
    """A progress bar over the training's time budget (epochs and mAP beside it) until the run ends."""
    from tqdm import tqdm

    from omr_core.training import RunView

    view = RunView(run_dir)
    bar = tqdm(total=int(budget_s) or None, desc="training", unit="s", file=sys.stderr, dynamic_ncols=True)
    try:
        while True:
            s = view.poll().summary()
            elapsed = time.time() - s.started if s.started else 0.0
            bar.n = int(min(elapsed, budget_s)) if budget_s else int(elapsed)
            post = f"{s.state} epoch {s.epoch}/{s.epochs or '?'}"
            if s.batch is not None and s.batches:
                post += f" (batch {s.batch}/{s.batches} of epoch {s.current_epoch})"
            if s.best_map is not None:
                post += f" best mAP50-95 {s.best_map:.3f}"
            bar.set_postfix_str(post)
            bar.refresh()
            if not s.live:
                bar.close()
                if s.reason:
                    print(f"{s.state}: {s.reason}", file=sys.stderr)
                return 1 if s.state == "failed" else 0
            time.sleep(interval)
    except KeyboardInterrupt:
        bar.close()
        print("detached; the run goes on", file=sys.stderr)
        return 0
