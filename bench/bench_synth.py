"""Benchmark of `omr synth`: full-size pages per second per core, and where the time goes."""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from pathlib import Path

TARGET_PAGES_PER_S = 3.0
PAGES = 12


def _stages(jobs: int = 6) -> tuple[int, dict[str, float]]:
    """CPU seconds per page spent engraving (verovio + SVG geometry + classes), rasterising, damaging, encoding."""
    import numpy as np

    from omr_core.datasets.synth import engrave_job
    from omr_core.datasets.synth_render import degrade_scan, rasterise
    from omr_core.raster import encode_png

    spent: Counter[str] = Counter()
    pages = 0
    for j in range(jobs):
        t = time.process_time()
        done = list(engrave_job(123, j, 1.0))
        spent["engrave + geometry + classes"] += time.process_time() - t
        for page in done:
            pages += 1
            geo = page.geometry
            texts = [(p.element, p.matrix, p.ctx.get("ancestors", ())) for p in geo.prims if p.kind == "text"]
            t = time.process_time()
            img = rasterise(page.svg, geo.width, geo.height, texts)  # type: ignore[arg-type]
            spent["rasterise (skia-python)"] += time.process_time() - t
            t = time.process_time()
            encode_png(img)
            spent["PNG encode, clean"] += time.process_time() - t
            t = time.process_time()
            damaged, _ = degrade_scan(img, np.random.default_rng([123, j, pages, 1]))
            spent["scan damage (--degrade scan)"] += time.process_time() - t
            t = time.process_time()
            encode_png(damaged, noisy=True)
            spent["PNG encode, scan"] += time.process_time() - t
    return pages, {k: v / max(pages, 1) for k, v in spent.items()}


def _cpu_rate(**kw: object) -> tuple[float, float, int]:
    """``(pages per CPU second, pages per wall second, annotations per page)`` of one in-process engraving.

    Per core means CPU time of this process with OpenCV on one thread: on a shared machine wall time
    measures the other jobs' load as much as the engraver (the wall rate is reported beside it).
    """
    from omr_core.datasets.synth import synth_dataset

    with tempfile.TemporaryDirectory() as tmp:
        c0, w0 = time.process_time(), time.perf_counter()
        report = synth_dataset(Path(tmp) / "ds", pages=PAGES, seed=123, **kw)  # type: ignore[arg-type]
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return report.pages / cpu, report.pages / wall, round(report.annotations / report.pages)


def main() -> list[dict]:
    """Run the benchmark (one process, one OpenCV thread, full-size pages) and return its rows."""
    import cv2

    from omr_core.datasets.synth import synth_dataset

    cv2.setNumThreads(1)
    rows: list[dict] = []
    synth_dataset(Path(tempfile.mkdtemp()) / "warm", pages=1, seed=99)  # imports, fonts, corpus index
    for degrade in ("none", "scan"):
        rate, wall_rate, per_page = _cpu_rate(degrade=degrade)
        rows.append(
            {
                "figure": f"pages/s per core (CPU time), full size, degrade {degrade}",
                "value": round(rate, 2),
                "target": f">= {TARGET_PAGES_PER_S}",
                "ok": rate >= TARGET_PAGES_PER_S,
            }
        )
        rows.append({"figure": f"  pages/s wall clock (load average {os.getloadavg()[0]:.1f})", "value": round(wall_rate, 2), "target": "", "ok": True})
        if degrade == "none":
            rows.append({"figure": "annotations per page", "value": per_page, "target": "", "ok": True})
    pages, stages = _stages()
    for stage, sec in stages.items():
        rows.append({"figure": f"s/page: {stage}", "value": round(sec, 3), "target": "", "ok": True})
    return rows


if __name__ == "__main__":
    rows = main()
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>8}  {'target':>8}  result")
    for r in rows:
        result = "" if not r["target"] else ("pass" if r["ok"] else "FAIL")
        print(f"{r['figure']:<{width}}  {r['value']!s:>8}  {r['target']:>8}  {result}")
