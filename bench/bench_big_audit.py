"""Benchmark the streaming audit of DeepScoresV2 complete at a fraction of its size (issue #15).

Makes ``deepscores-complete-NN.json`` files with bench/make_big_deepscores.py (kept and reused in ``--data``), then
audits them in a fresh process through an empty Parquet cache (parse + aggregate + report, end to end), and again in
another fresh process from the cache (reopen). Reports read time, peak RSS, throughput per core (annotations per CPU
second of the process, all its threads), reopen time, the memory the merged aggregates take, and the extrapolation to
the complete set (255,385 pages, 151 M annotations). The scale is a fraction of the complete set: ``--scale`` or
``OMR_BENCH_BIG_SCALE`` (default 0.1, one tenth: 20 files, about 15 M annotations, 26,000 pages).
Run ``python -m bench.bench_big_audit [--scale 0.1] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The complete set, as its release describes it.
FULL_PAGES = 255_385
FULL_ANNOTATIONS = 151_000_000
#: One tenth of it is 20 files of 760,000 annotations, 580 per page on average.
FILES_PER_UNIT_SCALE = 200
ANNOTATIONS_PER_UNIT_SCALE = 152_000_000
PER_PAGE = 580

TARGET_RSS_GB = 4.0
TARGET_PER_CORE = 400_000
TARGET_REOPEN_S = 3.0
TARGET_CONVERT_S = 300
MACHINE_GB = 24.0


def make_files(folder: Path, scale: float) -> list[Path]:
    """The benchmark's files for ``scale`` (made once, reused when present with the same name)."""
    from bench.make_big_deepscores import make_big_deepscores

    n_files = max(2, round(FILES_PER_UNIT_SCALE * scale))
    per_file = max(1_000, round(ANNOTATIONS_PER_UNIT_SCALE * scale / n_files))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_files):
        p = folder / f"deepscores-complete-{i:02d}.json"
        if not p.is_file():
            make_big_deepscores(p, per_file, per_page=PER_PAGE, seed=100 + i)
        out.append(p)
    return out


def _child(data: Path, cache: Path) -> dict[str, Any]:
    """One audit in this process: scan (through the cache), class table and report; times, CPU and peak RSS."""
    import pyarrow.parquet  # noqa: F401  (imports are timed apart: every command pays them once)

    from omr_core.audit.plan import make_plan
    from omr_core.audit.report import audit_report
    from omr_core.audit.summary import summarize_files
    from omr_core.datasets.columnar import COMPLETE_GLOB, ColumnarCache, expand_sources

    t0, c0 = time.perf_counter(), os.times()
    files = expand_sources([str(data / COMPLETE_GLOB)])
    summ = summarize_files(files, cache=ColumnarCache(cache), check_images=False)
    t_scan = time.perf_counter() - t0
    plan = make_plan(summ.names, ["stem", "ledgerLine"])
    rep = audit_report(summ, plan, imgsz=1024)
    wall = time.perf_counter() - t0
    c1 = os.times()
    agg = sum(int(f.memory_usage(deep=True).sum()) for f in (summ.images, summ.sizes, summ.pairs))
    biggest = max(f.stat().st_size for f in files)
    return {
        "files": len(files),
        "pages": int(rep["images"]["count"]),
        "annotations": int(rep["instances"]),
        "parsed": summ.parsed,
        "cached": summ.cached,
        "scan_s": t_scan,
        "wall_s": wall,
        "cpu_s": (c1.user - c0.user) + (c1.system - c0.system),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20),
        "aggregate_gb": agg / (1 << 30),
        "largest_file_gb": biggest / (1 << 30),
    }


def _convert_child(data: Path, cache: Path, out: Path, workers: int) -> dict[str, Any]:
    """One parallel conversion in this process (the audit's cache warm): wall time, peak RSS of parent and workers."""
    from bench.make_big_deepscores import link_page_images
    from omr_core.audit.convert import ConvertOptions
    from omr_core.audit.convert_files import convert_files
    from omr_core.audit.plan import make_plan
    from omr_core.classes import class_table
    from omr_core.datasets.columnar import COMPLETE_GLOB, ColumnarCache, expand_sources

    files = expand_sources([str(data / COMPLETE_GLOB)])
    for f in files:
        link_page_images(f)
    plan = make_plan(tuple(class_table().names()), ["stem", "ledgerLine"])
    t0, c0 = time.perf_counter(), os.times()
    rep = convert_files(files, out, plan, ConvertOptions(val_from="split", overwrite=True), workers=workers, cache=ColumnarCache(cache))
    wall, c1 = time.perf_counter() - t0, os.times()
    shutil.rmtree(out, ignore_errors=True)
    return {
        "wall_s": wall,
        "labels": rep.labels,
        "verified": rep.verification.ok,
        "workers": workers,
        "cpu_s": sum(getattr(c1, f) - getattr(c0, f) for f in ("user", "system", "children_user", "children_system")),
        "parent_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20),
        "worker_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / (1 << 20),
    }


def _run_child(data: Path, cache: Path, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "bench.bench_big_audit", "--child", "--data", str(data), "--cache", str(cache), *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def identity_row(path: Path, cache: Path) -> dict[str, Any]:
    """Per-class counts, sizes and density from the cache against today's full reader on one file of the set."""
    import numpy as np
    import pandas as pd

    from omr_core.audit.statistics import class_stats, density_summary, instances_per_image
    from omr_core.audit.summary import summarize_files
    from omr_core.datasets.columnar import ColumnarCache
    from omr_core.datasets.discovery import load_dataset

    full = load_dataset([path], check_images=False)
    summ = summarize_files([path], cache=ColumnarCache(cache), check_images=False)
    same = all(class_stats(full, z).equals(summ.class_stats(z)) for z in (640, 1024))
    a, b = instances_per_image(full), summ.instances_per_image()
    same = same and bool(np.array_equal(a, b)) and density_summary(a) == density_summary(b)
    same = same and bool(pd.Index(full.data.images["image_id"]).equals(pd.Index(summ.images["image_id"])))
    n = len(full.data.annotations)
    return _row(f"identical to the full reader on {path.name} ({n:,} annotations)", "yes" if same else "NO", "identical", same)


def _row(figure: str, value: str, target: str = "", ok: bool = True) -> dict[str, Any]:
    return {"figure": figure, "value": value, "target": target, "ok": ok}


def convert_rows(conv: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Convert figures: wall time on the given workers, peak memory (parent + workers x the largest worker)."""
    rss = conv["parent_rss_gb"] + conv["workers"] * conv["worker_rss_gb"]
    full_min = conv["wall_s"] * FULL_ANNOTATIONS / max(n, 1) / 60
    return [
        _row(f"convert, {conv['workers']} worker processes (wall)", f"{conv['wall_s']:.0f} s, {conv['labels']:,} labels, verified {conv['verified']}",
             f"<= {TARGET_CONVERT_S // 60} min", conv["wall_s"] <= TARGET_CONVERT_S and conv["verified"]),
        _row("convert CPU time (parent + workers)", f"{conv['cpu_s']:.0f} s ({conv['cpu_s'] / max(conv['wall_s'], 1e-9):.2f} cores busy)"),
        _row("convert peak RSS (parent + workers x largest worker)", f"{rss:.2f} GB ({conv['parent_rss_gb']:.2f} + "
             f"{conv['workers']} x {conv['worker_rss_gb']:.2f})", f"<= {TARGET_RSS_GB:g} GB", rss <= TARGET_RSS_GB),
        _row(f"full set: convert on {conv['workers']} workers (extrapolated, linear)", f"{full_min:.0f} min"),
    ]


def rows_of(cold: dict[str, Any], warm: dict[str, Any], scale: float) -> list[dict[str, Any]]:
    """The table: measured figures against the issue's targets, and the extrapolation to the complete set."""
    n = cold["annotations"]
    per_core = n / max(cold["cpu_s"], 1e-9)
    factor = FULL_ANNOTATIONS / max(n, 1)
    full_cpu_h = FULL_ANNOTATIONS / per_core / 3600
    # Memory: one file at a time plus the merged aggregates, which grow with the set (pages x classes present).
    full_rss = cold["peak_rss_gb"] + (factor - 1) * cold["aggregate_gb"]
    full_reopen = warm["wall_s"] * factor  # per file: the aggregates of a file are read whole
    return [
        _row("scale (of the complete set), files", f"{scale:g}, {cold['files']}"),
        _row("pages", f"{cold['pages']:,}", ">= 25,000 at scale 0.1", scale < 0.1 or cold["pages"] >= 25_000),
        _row("annotations", f"{n:,}", ">= 15,000,000 at scale 0.1", scale < 0.1 or n >= 15_000_000),
        _row("largest file", f"{cold['largest_file_gb']:.2f} GB"),
        _row("audit from JSON, end to end (wall)", f"{cold['wall_s']:.1f} s ({cold['parsed']} files parsed)"),
        _row("audit peak RSS", f"{cold['peak_rss_gb']:.2f} GB", f"<= {TARGET_RSS_GB:g} GB", cold["peak_rss_gb"] <= TARGET_RSS_GB),
        _row("throughput per core (annotations / CPU s)", f"{per_core:,.0f}", f">= {TARGET_PER_CORE:,}", per_core >= TARGET_PER_CORE),
        _row("throughput (annotations / wall s)", f"{n / max(cold['wall_s'], 1e-9):,.0f}"),
        _row("reopen from the cache (wall)", f"{warm['wall_s']:.2f} s ({warm['cached']} cached, {warm['parsed']} parsed)",
             f"<= {TARGET_REOPEN_S:g} s, 0 parsed", warm["wall_s"] <= TARGET_REOPEN_S and warm["parsed"] == 0),
        _row("reopen CPU time", f"{warm['cpu_s']:.2f} s"),
        _row("reopen peak RSS", f"{warm['peak_rss_gb']:.2f} GB"),
        _row("merged aggregates in memory", f"{cold['aggregate_gb'] * 1024:.0f} MB"),
        _row("full set: CPU time of the audit", f"{full_cpu_h:.2f} core-hours ({full_cpu_h * 60 / 2:.0f} min on 2 cores)"),
        _row("full set: audit peak RSS (extrapolated)", f"{full_rss:.2f} GB", f"fits {MACHINE_GB:g} GB", full_rss <= MACHINE_GB),
        _row("full set: reopen (extrapolated, linear)", f"{full_reopen:.1f} s"),
    ]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Make the files if needed, audit cold and warm in fresh processes; returns the rows (figure, value, target, ok)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=float(os.environ.get("OMR_BENCH_BIG_SCALE", "0.1")))
    ap.add_argument("--data", default=os.environ.get("OMR_BENCH_BIG_DATA"), help="keep the generated files here")
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--convert", type=int, default=2, metavar="WORKERS", help="also time a conversion on WORKERS processes (0: skip)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-convert", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv if argv is not None else [])
    if args.child:
        if args.child_convert:
            print(json.dumps(_convert_child(Path(args.data), Path(args.cache), Path(args.child_convert), args.convert)))
        else:
            print(json.dumps(_child(Path(args.data), Path(args.cache))))
        return []
    ctx = tempfile.TemporaryDirectory(prefix="omr-big-") if not args.data else None
    root = Path(args.data) if args.data else Path(ctx.name)  # type: ignore[union-attr]
    data = root / f"scale-{args.scale:g}"
    cache = root / f"cache-{args.scale:g}"
    try:
        make_files(data, args.scale)
        shutil.rmtree(cache, ignore_errors=True)
        cold = _run_child(data, cache)
        warm = _run_child(data, cache)
        rows = rows_of(cold, warm, args.scale)
        rows.append(identity_row(sorted(data.glob("deepscores-complete-*.json"))[0], cache))
        if args.convert:
            out = root / f"yolo-{args.scale:g}"
            rows += convert_rows(_run_child(data, cache, "--convert", str(args.convert), "--child-convert", str(out)), cold["annotations"])
    finally:
        if ctx is not None:
            ctx.cleanup()
    return rows


if __name__ == "__main__":
    out = main(sys.argv[1:])
    if out:
        from omr_core.evaluation.reconstruct_bench import format_rows

        print(format_rows(out))
        sys.exit(0 if all(r["ok"] for r in out) else 1)
