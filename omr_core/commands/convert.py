"""`omr convert`: write a YOLO dataset from DeepScoresV2 JSON (or a data.yaml) with an exclusion plan by name."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from omr_core.commands._progress import progress_bar
from omr_core.commands.audit import add_plan_arguments, plan_from_args
from omr_core.errors import OmrError

VERB = "convert"
HELP = "convert DeepScoresV2 JSON (or a YOLO dataset) to a YOLO dataset, excluding classes by name, verified"
DESCRIPTION = (
    "Write a YOLO dataset (data.yaml with the real class names in new index order, labels with contiguous indices, "
    "excluded_classes.json, convert.log) to OUT. Written to a temporary folder next to OUT, verified by re-reading, "
    "then renamed; the source is never modified. One conversion writes OUT at a time: another one to the same OUT "
    "is refused while it runs. Page images are hard-linked (symlinked where a hard link is "
    "impossible) unless --symlink-images or --copy-images."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="DATASET… OUT", help="DeepScoresV2 JSON file(s) or one data.yaml, then OUT")
    add_plan_arguments(p)
    p.add_argument("--imgsz", type=int, default=None, help="training image size (tiny-class warnings, memory forecast)")
    p.add_argument("--tile", type=int, default=None, metavar="SIZE", help="cut pages into SIZE x SIZE tiles (source pixels)")
    p.add_argument("--overlap", type=float, default=None, metavar="F", help="tile overlap fraction (default 0.2)")
    p.add_argument("--val-from", choices=("test", "split"), default="test", help="val = the source's test split, or carved from train")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of train moved to val with --val-from split")
    p.add_argument("--seed", type=int, default=0, help="seed of --val-from split")
    p.add_argument("--images-dir", default=None, help="page images folder for DeepScoresV2 JSON (default: next to the JSON)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="convert DeepScoresV2 JSON files N at a time in worker processes (default 2 for a folder or a "
                   "glob such as 'data/deepscores-complete-*'): memory is one file per worker, the output is verified as a whole")
    p.add_argument("--cache", default=None, metavar="DIR", help="Parquet cache of the per-file class counts (with --workers, a folder or a glob)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--link-images", dest="images", action="store_const", const="hardlink",
                   help="link page images (default): hard links, symlinks where a hard link is impossible")
    g.add_argument("--symlink-images", dest="images", action="store_const", const="symlink", help="symlink page images")
    g.add_argument("--copy-images", dest="images", action="store_const", const="copy", help="copy page images")
    p.set_defaults(images="hardlink")


def run(args: argparse.Namespace) -> int:
    from omr_core.audit import class_stats, excluded_classes, summarize
    from omr_core.audit.convert import ConvertOptions, convert, format_report
    from omr_core.datasets import load_dataset

    if len(args.paths) < 2:
        raise OmrError("give the dataset (DeepScoresV2 JSON files or a data.yaml) and then the output folder OUT")
    *sources, out = args.paths
    _preset_scale(args)
    opts = ConvertOptions(
        imgsz=args.imgsz,
        tile=args.tile,
        overlap=args.overlap,
        val_from=args.val_from,
        val_fraction=args.val_fraction,
        seed=args.seed,
        images=args.images,
        overwrite=args.overwrite,
    )
    opts.validate()
    from omr_core.datasets import is_multi_source

    if args.workers is not None or is_multi_source(sources):
        return _run_files(args, sources, out, opts)
    with progress_bar("reading") as cb:
        ds = load_dataset(sources, images_dir=args.images_dir, progress=cb)
    stats = class_stats(ds, args.imgsz or 1024)
    plan = plan_from_args(args, ds.names, stats.loc[stats["empty"], "name"].tolist())
    plan.check()
    summ = summarize(stats, plan)
    print(
        f"plan: keep {summ.kept_classes} classes, exclude {summ.excluded_classes} "
        f"({', '.join(plan.excluded) or 'none'}); removes {summ.instances_removed} of {summ.instances_total} instances "
        f"({summ.removed_pct:.1f}%)"
    )
    for excl in excluded_classes(plan, stats):
        print(f"  exclude {excl.line}")
    if plan.not_in_source:
        print(f"note: not in this dataset (nothing to drop): {', '.join(plan.not_in_source)}")
    if args.imgsz:
        tiny = [n for n, t in zip(stats["name"], stats["tiny"]) if t and not plan.is_excluded(n)]
        if tiny:
            print(f"warning: median box under 2 px at imgsz {args.imgsz}: {', '.join(tiny)}")
    with progress_bar("converting") as cb:
        rep = convert(ds, out, plan, opts, progress=cb, log=lambda m: print(m, file=sys.stderr) if m.startswith("critical") else None)
    print(format_report(rep))
    return 0


def _run_files(args: argparse.Namespace, sources: list[str], out: str, opts: Any) -> int:
    """Many DeepScoresV2 files: class counts from the Parquet cache, then one file per worker process."""
    from omr_core.audit import format_report, summarize_files
    from omr_core.audit.convert_files import convert_files
    from omr_core.datasets import ColumnarCache, expand_sources

    files = expand_sources(sources)
    if any(f.suffix.lower() != ".json" for f in files):
        raise OmrError("--workers, a folder or a glob converts DeepScoresV2 .json files only; give a data.yaml on its own")
    cache = ColumnarCache(args.cache)
    summ = summarize_files(files, cache=cache, images_dir=args.images_dir, check_images=False,
                           progress=lambda d, t, n: print(f"read {d}/{t} {n}", file=sys.stderr, flush=True))
    stats = summ.class_stats(args.imgsz or 1024)
    plan = plan_from_args(args, summ.names, stats.loc[stats["empty"], "name"].tolist())
    plan.check()
    workers = args.workers or 2
    print(f"converting {len(files)} files in {workers} worker processes; plan excludes {', '.join(plan.excluded) or 'nothing'}")
    with progress_bar("converting", unit="page") as cb:
        rep = convert_files(files, out, plan, opts, workers=workers, images_dir=args.images_dir, cache=cache, progress=cb,
                            log=lambda m: print(m, file=sys.stderr) if m.startswith("critical") else None)
    print(format_report(rep))
    return 0


def _preset_scale(args: argparse.Namespace) -> None:
    """Fill --tile/--overlap/--imgsz from a preset that proposes them (the reading recipe), unless given."""
    from omr_core.commands.audit import preset_named

    for name in args.preset:
        pr = preset_named(name)
        args.tile = args.tile if args.tile is not None else pr.tile
        args.overlap = args.overlap if args.overlap is not None else pr.overlap
        args.imgsz = args.imgsz if args.imgsz is not None else pr.imgsz
    if args.overlap is None:
        args.overlap = 0.2
