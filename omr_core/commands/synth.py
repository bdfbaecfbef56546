"""`omr synth`: engrave music21 corpus pieces into a DeepScoresV2-format dataset with exact boxes."""

from __future__ import annotations

import argparse
from pathlib import Path

VERB = "synth"
HELP = "engrave real corpus pieces into DeepScoresV2-format pages (images + train/test JSON)"
DESCRIPTION = (
    "Engrave pieces from music21's bundled corpus (Bach chorales, string quartets, piano music, songs) with "
    "verovio, rasterise them, and write OUT/images/*.png, OUT/deepscores_train.json and "
    "OUT/deepscores_test.json in the released DeepScoresV2 format with pixel-exact boxes."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="dataset folder to create (must be empty unless --overwrite)")
    p.add_argument("--pages", type=int, required=True, help="number of pages to engrave")
    p.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same dataset (default 0)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of pages in the test file (default 0.2)")
    p.add_argument("--degrade", choices=("none", "scan"), default="none", help="mild scan damage (default none)")
    p.add_argument(
        "--layout",
        choices=("normal", "dense"),
        default="normal",
        help="normal (verovio's spacing, 2-20 staves a page) or dense (like DeepScoresV2's dense pages: large "
        "pages, staves packed with no spacing beyond what their notes need, 15-35 staves a page; default normal)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the dataset files of an earlier run in OUT")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (the output does not depend on it)")
    p.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)  # small pages for quick tests


def run(args: argparse.Namespace) -> int:
    from omr_core.commands._progress import progress_bar
    from omr_core.datasets import synth_dataset

    with progress_bar("engraving", unit="page", leave=True) as progress:
        report = synth_dataset(
            args.out,
            args.pages,
            seed=args.seed,
            test_fraction=args.test_fraction,
            degrade=args.degrade,
            progress=progress,
            scale=args.scale,
            overwrite=args.overwrite,
            workers=args.workers,
            layout=args.layout,
        )
    rate = report.pages / report.seconds if report.seconds > 0 else 0.0
    print(
        f"wrote {report.pages} pages ({report.train_pages} train, {report.test_pages} test), "
        f"{report.annotations} annotations to {report.out} in {report.seconds:.1f} s ({rate:.2f} pages/s)"
    )
    print(f"\nannotations per class ({len(report.class_counts)} classes):")
    for name, n in report.class_counts.items():
        print(f"  {name:<32} {n:>8}")
    if report.unmapped_glyphs:
        print(f"\ndrawn but not annotated (no DeepScoresV2 class; {sum(report.unmapped_glyphs.values())} in all):")
        for name, n in report.unmapped_glyphs.items():
            print(f"  {name:<32} {n:>8}")
    else:
        print("\nevery drawn glyph was mapped to a class")
    return 0
