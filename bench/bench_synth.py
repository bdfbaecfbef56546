"""Benchmark of `omr synth`: full-size pages per second per core, and where the time goes."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_PAGES_PER_S = 3.0
PAGES = 12


def _stages(renderer: str, jobs: int = 6) -> tuple[int, dict[str, float]]:
    """Seconds per page spent engraving (verovio + SVG geometry + classes), rasterising and encoding."""
    from omr_core.datasets.synth import engrave_job
    from omr_core.datasets.synth_render import rasterise
    from omr_core.raster import encode_png

    spent: Counter[str] = Counter()
    pages = 0
    for j in range(jobs):
        t = time.perf_counter()
        done = list(engrave_job(123, j, 1.0))
        spent["engrave + geometry + classes"] += time.perf_counter() - t
        for page in done:
            pages += 1
            t = time.perf_counter()
            img = rasterise(page.svg, page.geometry.width, page.geometry.height, renderer)
            spent[f"rasterise ({renderer})"] += time.perf_counter() - t
            t = time.perf_counter()
            encode_png(img)
            spent["PNG encode"] += time.perf_counter() - t
    return pages, {k: v / max(pages, 1) for k, v in spent.items()}


def main() -> list[dict]:
    """Run the benchmark (one process, full-size pages) and return its rows."""
    from omr_core.datasets.synth import synth_dataset

    renderers = ["resvg"] + (["skia"] if importlib.util.find_spec("skia") else [])
    rows: list[dict] = []
    synth_dataset(Path(tempfile.mkdtemp()) / "warm", pages=1, seed=99)  # imports, fonts, corpus index
    for renderer in renderers:
        for degrade in ("none", "scan"):
            with tempfile.TemporaryDirectory() as tmp:
                report = synth_dataset(Path(tmp) / "ds", pages=PAGES, seed=123, degrade=degrade, renderer=renderer)
            rate = report.pages / report.seconds
            rows.append(
                {
                    "figure": f"pages/s per core, full size, renderer {renderer}, degrade {degrade}",
                    "value": round(rate, 2),
                    "target": f">= {TARGET_PAGES_PER_S}",
                    "ok": rate >= TARGET_PAGES_PER_S,
                }
            )
            if degrade == "none":
                rows.append(
                    {
                        "figure": f"annotations per page (renderer {renderer})",
                        "value": round(report.annotations / report.pages),
                        "target": "",
                        "ok": True,
                    }
                )
        pages, stages = _stages(renderer)
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
