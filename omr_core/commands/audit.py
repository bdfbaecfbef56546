"""`omr audit`: per-class report of a dataset, the exclusion plan by name, and the assigner memory forecast."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from omr_core.commands._progress import progress_bar
from omr_core.errors import OmrError
from omr_core.recipe import READING_PRESET

VERB = "audit"
HELP = "audit a DeepScoresV2/YOLO dataset's classes, check an exclusion plan by name, forecast assigner memory"
DESCRIPTION = (
    "Show every class (id, YOLO index, name, group, instances, images, median size at --imgsz) of DeepScoresV2 "
    "JSON file(s) or a YOLO data.yaml, the effect of --exclude NAME..., and the TaskAlignedAssigner memory forecast. "
    "Exit status: 0 fine, 1 the plan excludes a critical class without --allow-critical (or --check-yaml found a "
    "mismatch), 2 bad input."
)


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `omr audit` and `omr convert` for building an exclusion plan by name."""
    p.add_argument(
        "--exclude",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="class names to exclude (official DeepScoresV2 spelling; ids are refused, see `omr classes ID`)",
    )
    p.add_argument("--keep-only", nargs="+", action="extend", default=None, metavar="NAME", help="exclude every class not named here")
    p.add_argument("--preset", action="append", default=[], metavar="NAME", help="add a preset: 'core' (stem, ledgerLine, beam, tie, slur), 'harmony', or 'reading' (the CPU "
                   "recipe's 49 reading classes that occur; with `omr convert` also its tile size and imgsz)")
    p.add_argument("--drop-empty", action="store_true", help="also exclude classes with no instance in this dataset")
    p.add_argument("--allow-critical", action="store_true", help="explicitly allow excluding critical classes (logged)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("datasets", nargs="*", metavar="DATASET",
                   help="DeepScoresV2 JSON file(s), a folder of them or a glob ('data/deepscores-complete-*'), or one YOLO data.yaml")
    add_plan_arguments(p)
    p.add_argument("--imgsz", type=int, default=1024, help="training image size for sizes and the forecast (default 1024)")
    p.add_argument("--batch", type=int, default=16, help="batch size for the forecast (default 16)")
    p.add_argument("--vram-gb", type=float, default=0.0, help="GPU memory (GiB) for the largest-batch forecast")
    p.add_argument("--images-dir", default=None, help="page images folder for DeepScoresV2 JSON (default: next to the JSON)")
    p.add_argument("--check-yaml", default=None, metavar="DATA_YAML", help="check an existing data.yaml against --exclude/--keep-only")
    p.add_argument("--all", action="store_true", help="list classes with no instance too (text output)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="read DeepScoresV2 JSON file by file through this Parquet cache (a folder or glob uses the "
                   "workspace cache, OMR_CACHE_DIR or <workspace>/.cache/deepscores): a reopened audit parses nothing, "
                   "an interrupted one resumes, a damaged file is skipped and named")


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [t for t in v.replace(",", " ").split() if t]
    return out


_PRESET_ALIASES = {"core": "core symbols, reconstruct thin ones", "thin": "core symbols, reconstruct thin ones",
                   "reading": READING_PRESET}
_PRESET_HELP = "presets: core, harmony, reading"


def preset_named(name: str) -> Any:
    """The audit `Preset` a ``--preset`` value names (an alias or the full name)."""
    from omr_core.audit import PRESETS

    key = _PRESET_ALIASES.get(name, name)
    if key not in PRESETS:
        raise OmrError(f"unknown preset {name!r}; {_PRESET_HELP}")
    return PRESETS[key]


def plan_from_args(args: argparse.Namespace, universe: tuple[str, ...], empty: list[str] | None = None) -> Any:
    """Build the `ExclusionPlan` the shared plan options describe."""
    from omr_core.audit import make_plan

    exclude = _split(args.exclude)
    reasons: dict[str, str] = {}
    absent = set(empty or ())
    for pr in args.preset:
        preset = preset_named(pr)
        for n in preset.exclusions(universe, [u for u in universe if u not in absent] if empty is not None else None):
            exclude.append(n)
            reasons.setdefault(n, f"preset {preset.name}")
    keep = _split(args.keep_only) if args.keep_only is not None else None
    return make_plan(
        universe,
        exclude,
        keep_only=keep,
        allow_critical=args.allow_critical,
        reasons=reasons,
        drop_empty=empty if args.drop_empty and empty else (),
    )


def intent_from_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``(exclude, keep)`` names the plan options mean, over the official deepscores classes (for --check-yaml)."""
    from omr_core.audit import canonical_in
    from omr_core.classes import class_table

    universe = tuple(class_table().names())
    exclude = _split(args.exclude)
    for pr in args.preset:
        exclude += list(preset_named(pr).exclusions(universe))
    keep = _split(args.keep_only)
    if args.keep_only is not None:
        keep_set = {canonical_in(universe, k) for k in keep}
        exclude += [n for n in universe if n not in keep_set]
    return exclude, keep


def _fmt(x: Any) -> str:
    return "" if x is None else f"{x:.1f}"


def _print_text(rep: dict[str, Any], show_all: bool) -> None:
    imgs = rep["images"]
    print(f"dataset: {', '.join(rep['sources'])} ({rep['kind']})")
    splits = ", ".join(f"{k} {v}" for k, v in imgs["by_split"].items())
    print(f"images: {imgs['count']}" + (f" ({splits})" if splits else "") + f" · instances: {rep['instances']}")
    for issue in rep["issues"]:
        print(f"warning: {issue['message']}")
    print()
    print(f"{'id':>4} {'yolo':>4} {'new':>4}  {'name':<30} {'group':<16} {'count':>8} {'images':>6} {'share':>6} "
          f"{'w px':>6} {'h px':>6} {'w@' + str(rep['imgsz']):>7} {'h@' + str(rep['imgsz']):>7}  flags")
    hidden = 0
    for c in rep["classes"]:
        if not show_all and c["count"] == 0:
            hidden += 1
            continue
        flags = [f for f, on in (("EXCLUDED", c["excluded"]), ("critical", c["critical"]), ("no-samples", c["no_samples"]),
                                 ("tiny@imgsz", c["tiny_at_imgsz"])) if on]
        new = "" if c["new_index"] is None else c["new_index"]
        cid = "" if c["id"] is None else c["id"]
        print(f"{cid:>4} {c['yolo_index']:>4} {new:>4}  {c['name']:<30} {c['group']:<16} {c['count']:>8} {c['images']:>6} "
              f"{100 * c['share']:>5.1f}% {_fmt(c['median_w_px']):>6} {_fmt(c['median_h_px']):>6} "
              f"{_fmt(c['median_w_at_imgsz']):>7} {_fmt(c['median_h_at_imgsz']):>7}  {' '.join(flags)}")
    if hidden:
        print(f"({hidden} classes with no instance not shown; --all lists them)")
    tiny = [c["name"] for c in rep["classes"] if c["tiny_at_imgsz"] and not c["excluded"]]
    if tiny:
        print(f"\nunder 2 px at imgsz {rep['imgsz']} (median): {', '.join(tiny)}")
    d0, d1 = rep["instances_per_image"]["before"], rep["instances_per_image"]["after"]
    print(f"\ninstances per image: median {d0['median']:.0f}, p95 {d0['p95']:.0f}, max {d0['max']}"
          f"  →  after plan: median {d1['median']:.0f}, p95 {d1['p95']:.0f}, max {d1['max']}")
    plan = rep["plan"]
    print(f"\nplan: keep {plan['kept_classes']} classes, exclude {plan['excluded_classes']}")
    for e in rep["exclusions"]:
        crit = " CRITICAL" if e["critical"] else ""
        print(f"  - {e['name']} (id {e['id']}){crit}: {e['count']} instances [{e['reason']}]")
    if rep["not_in_source"]:
        print(f"  (not in this dataset, nothing to drop: {', '.join(rep['not_in_source'])})")
    print(f"  instances removed: {plan['instances_removed']} of {plan['instances_total']} ({plan['removed_pct']:.1f}%)")
    if plan["become_empty"]:
        print(f"  kept classes with no instance (never learned): {len(plan['become_empty'])}: {', '.join(plan['become_empty'])}")
    if rep["allow_critical"] and plan["critical_excluded"]:
        print(f"  critical-class override in effect for: {', '.join(plan['critical_excluded'])}")
    fb, fa = rep["forecast"]["before"], rep["forecast"]["after"]
    print(f"\nTaskAlignedAssigner forecast (Ultralytics AutoBatch envelope), imgsz {fb['imgsz']}, batch {fb['batch']}:")
    for label, f in (("before", fb), ("after plan", fa)):
        line = (f"  {label:<10} nc {f['nc']:>3}, max labels/image {f['max_labels']:>5} (max_num_obj {f['max_num_obj']}): "
                f"{f['gib']:.2f} GiB")
        if f["max_batch"] is not None:
            line += f"; fits {f['vram_bytes'] / (1 << 30):.0f} GiB: {'yes' if f['fits'] else 'NO'}; largest batch {f['max_batch']}"
        print(line)


def _file_progress(done: int, total: int, name: str) -> None:
    print(f"read {done}/{total} {name}", file=sys.stderr, flush=True)


def _read(args: argparse.Namespace) -> Any:
    """The dataset: file by file through the Parquet cache for a folder, a glob or --cache, else the full reader."""
    from omr_core.datasets import is_multi_source

    if args.cache is not None or is_multi_source(args.datasets):
        from omr_core.audit import summarize_files
        from omr_core.datasets import ColumnarCache, expand_sources

        files = expand_sources(args.datasets)
        if any(f.suffix.lower() != ".json" for f in files):
            raise OmrError("a folder, a glob or --cache reads DeepScoresV2 .json files only; give a data.yaml on its own")
        cache = ColumnarCache(args.cache)
        try:
            summ = summarize_files(files, cache=cache, images_dir=args.images_dir, progress=_file_progress)
        except KeyboardInterrupt:
            print(f"omr audit: interrupted; the files read so far are cached in {cache.root}, run the same command "
                  "again to resume", file=sys.stderr)
            raise
        print(f"read {len(files)} files: {summ.cached} from the cache, {summ.parsed} parsed, {len(summ.skipped)} skipped",
              file=sys.stderr)
        return summ
    from omr_core.datasets import load_dataset

    with progress_bar("reading") if not args.json else contextlib.nullcontext() as cb:  # JSON: no bar on stderr
        return load_dataset(args.datasets, images_dir=args.images_dir, progress=cb)


def run(args: argparse.Namespace) -> int:
    from omr_core.audit import audit_report as build
    from omr_core.audit import check_yaml, class_stats

    if not args.datasets and not args.check_yaml:
        raise OmrError("give a dataset (DeepScoresV2 JSON files or a data.yaml) and/or --check-yaml DATA_YAML")
    out: dict[str, Any] = {}
    status = 0
    if args.datasets:
        ds = _read(args)
        stats = class_stats(ds, args.imgsz)
        plan = plan_from_args(args, ds.names, stats.loc[stats["empty"], "name"].tolist())
        rep = build(ds, plan, imgsz=args.imgsz, batch=args.batch, vram_gb=args.vram_gb, stats=stats)
        out = rep
        if not args.json:
            _print_text(rep, args.all)
        if plan.violations:
            status = 1
            names = ", ".join(plan.critical_excluded)
            print(
                f"omr audit: refused: the plan excludes critical class(es) {names} without --allow-critical; "
                "remove them from the plan, or pass --allow-critical if this is really meant (it is logged)",
                file=sys.stderr,
            )
        elif plan.override_log():
            print(f"omr audit: {plan.override_log()} (--allow-critical)", file=sys.stderr)
    if args.check_yaml:
        chk = check_yaml(args.check_yaml, *intent_from_args(args))
        if args.json:
            out = {**out, "check_yaml": chk.to_dict()} if out else {"check_yaml": chk.to_dict()}
        else:
            print("\ncheck " + "\n  ".join(chk.lines()))
        if not chk.ok:
            status = 1
            print(f"omr audit: {args.check_yaml} does not match the intent (see above)", file=sys.stderr)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
    return status
