"""Benchmark: load a 1,000,000-annotation DeepScoresV2 file, build the audit class table, measure peak memory.

Run ``.venv/bin/python -m bench.bench_load [--annotations N] [--repeats R]``. The file is built once by
``bench/make_big_deepscores.py`` and cached under ``build/bench/``. Each repeat runs in a fresh subprocess so
its peak RSS (``ru_maxrss``) is the loader's own, Python and pandas included. Targets (issue 3, 2-core machine):
load ≤ 6 s of CPU time (imports not included; the wall time is printed beside it, with the load average: on a
shared machine it measures the other jobs as much as the loader), peak RSS ≤ 3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / "build" / "bench"
FORMAT_VERSION = 2  # bump when make_big_deepscores changes what it writes

LOAD_TARGET_S = 6.0
RSS_TARGET_GB = 3.0


def big_file(n_annotations: int = 1_000_000, seed: int = 0) -> Path:
    """The cached benchmark file (built on first use, ~240 MB for 1M annotations)."""
    from bench.make_big_deepscores import make_big_deepscores

    path = CACHE / f"deepscores_train_{n_annotations}_s{seed}_v{FORMAT_VERSION}.json"
    if not path.exists():
        t = time.perf_counter()
        make_big_deepscores(path, n_annotations, seed=seed)
        print(f"built {path} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def _audit_table(data: Any) -> tuple[Any, str]:
    """The audit module's class table when it exists, else a groupby stand-in (count, images, median w/h)."""
    try:
        from omr_core.audit.statistics import class_stats
        from omr_core.classes import class_table
        from omr_core.datasets.discovery import LoadedDataset

        ds = LoadedDataset(paths=data.sources, kind="deepscores", data=data, names=tuple(class_table().names()))
        return class_stats(ds, 1024), "omr_core.audit.class_stats"
    except ImportError:
        ann = data.annotations
        frame = ann.assign(w=ann["x1"] - ann["x0"], h=ann["y1"] - ann["y0"])
        table = frame.groupby("name", observed=False).agg(
            instances=("image", "size"), images=("image", "nunique"), median_w=("w", "median"), median_h=("h", "median")
        )
        return table, "groupby stand-in"


def _child(path: str) -> None:
    """Run in a fresh interpreter: load, build the audit table, print timings and peak RSS as JSON."""
    import resource

    t0 = time.perf_counter()
    c0 = time.process_time()
    from omr_core.datasets.deepscores import load_deepscores

    t_import = time.perf_counter() - t0
    import_cpu = time.process_time() - c0
    t1, c1 = time.perf_counter(), time.process_time()
    data = load_deepscores(path, check_images=True)
    load_s = time.perf_counter() - t1
    load_cpu = time.process_time() - c1
    t2 = time.perf_counter()
    table, how = _audit_table(data)
    audit_s = time.perf_counter() - t2
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "import_s": t_import,
                "load_s": load_s,
                "load_cpu_s": load_cpu,
                "import_cpu_s": import_cpu,
                "audit_s": audit_s,
                "audit_how": how,
                "audit_rows": len(table),
                "rss_gb": rss_kb * 1024 / 1e9,
                "annotations": len(data.annotations),
                "images": len(data.images),
                "issues": data.issues_text(),
            }
        )
    )


def run_once(path: Path) -> dict[str, Any]:
    """One measured load in a subprocess."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(n_annotations: int = 1_000_000, repeats: int = 3) -> list[dict[str, Any]]:
    """Build (or reuse) the file, load it ``repeats`` times, return the table rows."""
    path = big_file(n_annotations)
    runs = [run_once(path) for _ in range(repeats)]
    load = statistics.median(r["load_s"] for r in runs)
    cpu = statistics.median(r["load_cpu_s"] for r in runs)
    import_cpu = statistics.median(r["import_cpu_s"] for r in runs)
    audit = statistics.median(r["audit_s"] for r in runs)
    rss = max(r["rss_gb"] for r in runs)
    first = runs[0]
    load1 = os.getloadavg()[0]
    return [
        {
            "figure": "annotations loaded",
            "value": f"{first['annotations']:,}",
            "target": f">= {n_annotations:,}",
            "ok": first["annotations"] >= n_annotations,
        },
        {"figure": "pages", "value": f"{first['images']:,}", "target": "", "ok": True},
        {"figure": "file size (MB)", "value": f"{path.stat().st_size / 1e6:.0f}", "target": "", "ok": True},
        {
            "figure": f"load CPU time, median of {repeats} (s)",
            "value": f"{cpu:.2f}",
            "target": f"<= {LOAD_TARGET_S:g}",
            "ok": cpu <= LOAD_TARGET_S,
        },
        {"figure": f"  load wall time, median / best (s, load average {load1:.1f})",
         "value": f"{load:.2f} / {min(r['load_s'] for r in runs):.2f}", "target": "", "ok": True},
        {"figure": "import CPU time (s)", "value": f"{import_cpu:.2f}", "target": "", "ok": True},
        {"figure": f"audit table build ({first['audit_how']}) (s)", "value": f"{audit:.2f}", "target": "", "ok": True},
        {
            "figure": "peak RSS (GB)",
            "value": f"{rss:.2f}",
            "target": f"<= {RSS_TARGET_GB:g}",
            "ok": rss <= RSS_TARGET_GB,
        },
        {
            "figure": "load issues",
            "value": "; ".join(i.split(":")[0] for i in first["issues"]) or "none",
            "target": "",
            "ok": True,
        },
        {"figure": "1-min load average during run", "value": f"{load1:.2f}", "target": "", "ok": True},
    ]


def _print(rows: list[dict[str, Any]]) -> None:
    w = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{w}}  {'value':>12}  {'target':>12}  result")
    for r in rows:
        print(f"{r['figure']:<{w}}  {r['value']:>12}  {r['target']:>12}  {'pass' if r['ok'] else 'FAIL'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
    else:
        rows = main(args.annotations, args.repeats)
        _print(rows)
        sys.exit(0 if all(r["ok"] for r in rows) else 1)
