"""Benchmark reading the music from ground-truth symbols on held-out engraved pages (clean and scan).

Engraves pages with the offline engraver (seed 29, not used while writing the reader), reads every page from its
own DeepScoresV2 annotations plus its image (staves, barlines and beam lines from the ink), and scores the notes
against the note truth the engraver recorded (`pitch`/`duration` comments): share of notes with the right pitch,
with the right pitch and duration, MusicXML reopened in music21 and verovio, reading time per page on one core.
The same pages are also read from a model's detections, run as it was trained (default: the shipped reference
model ``models/reading-v2.pt``; ``--no-model`` skips it): target pitch >= 0.95 (issue #14), detection time per page.
Exits non-zero when a target is missed.
Run ``.venv/bin/python -m bench.bench_read [--pages N] [--data DIR] [--model best.pt | --no-model]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
os.environ.setdefault("YOLO_OFFLINE", "1")

from omr_core.evaluation.model_bench import engrave_heldout  # noqa: E402
from omr_core.evaluation.reading_bench import bench_reading, model_detector  # noqa: E402
from omr_core.evaluation.reconstruct_bench import format_rows  # noqa: E402

REFERENCE = HERE.parent / "models" / "reading-v2.pt"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Engrave, read and score; returns the rows (figure, value, target, ok)."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # one core: detection and reading times are per core
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pages", type=int, default=64, help="pages engraved per degrade (half are test pages, read here)")
    ap.add_argument("--data", help="keep the engraved datasets here (reused when present)")
    ap.add_argument("--seed", type=int, default=29, help="engraver seed")
    ap.add_argument("--model", default=str(REFERENCE), help="also read from this model's detections (default: %(default)s)")
    ap.add_argument("--no-model", action="store_true", help="read from ground-truth symbols only")
    args = ap.parse_args(argv if argv is not None else [])
    rows: list[dict[str, Any]] = []
    ctx = tempfile.TemporaryDirectory() if not args.data else None
    root = Path(args.data) if args.data else Path(ctx.name)  # type: ignore[union-attr]
    detector = model_detector(args.model) if not args.no_model else None
    try:
        for degrade in ("none", "scan"):
            test_json = engrave_heldout(root, args.pages, args.seed, degrade, test_fraction=0.5, name="read")
            rep = bench_reading(test_json)
            rows += rep.rows(f"{degrade}, ground truth")
            for p in rep.pages:
                if not p.export_ok:
                    rows.append({"figure": f"  export failed: {p.filename}", "value": p.export_message[:60], "target": "", "ok": False})
            if detector is not None:
                rows += bench_reading(test_json, detector=detector).rows(f"{degrade}, model {Path(args.model).stem}", model=True)
    finally:
        if ctx is not None:
            ctx.cleanup()
    return rows


if __name__ == "__main__":
    out = main(sys.argv[1:])
    print(format_rows(out))
    sys.exit(0 if all(r["ok"] for r in out) else 1)
