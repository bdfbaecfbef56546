"""Side by side: skia-python vs resvg-py on the same full-size pages, clean and scan-damaged, in one run.

Per page: CPU time of each rasteriser, whether every symbol box has ink in both, and how the two images differ
(mean absolute grey-level difference, share of pixels more than 64 levels apart, relative change in ink pixels),
on the clean page and after the same `degrade_scan` draw. Run ``python -m bench.compare_rasterisers [JOBS]``.
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np


def main(jobs: int = 6) -> list[dict]:
    from omr_core.datasets.synth import engrave_job, ink_box
    from omr_core.datasets.synth_render import degrade_scan, rasterise
    cv2.setNumThreads(1)
    warm = next(iter(engrave_job(99, 0, 0.3)))
    rasterise(warm.svg, warm.geometry.width, warm.geometry.height, "resvg")  # imports, fonts
    cpu = {"skia": 0.0, "resvg": 0.0}
    stats = {k: [] for k in ("clean_mad", "clean_big", "clean_ink", "scan_mad", "scan_big", "scan_ink")}
    pages = boxes = 0
    boxes_ok = {"skia": 0, "resvg": 0}
    for j in range(jobs):
        for page in engrave_job(123, j, 1.0):
            geo = page.geometry
            texts = [(p.element, p.matrix, p.ctx.get("ancestors", ())) for p in geo.prims if p.kind == "text"]
            imgs = {}
            for r in ("skia", "resvg"):
                t = time.process_time()
                imgs[r] = rasterise(page.svg, geo.width, geo.height, r, texts)
                cpu[r] += time.process_time() - t
            pages += 1
            for sym in page.classified.symbols:
                b = ink_box(sym.box, geo.width, geo.height)
                if b is None:
                    continue
                boxes += 1
                for r in imgs:
                    boxes_ok[r] += bool((imgs[r][b[1]:b[3], b[0]:b[2]] < 128).any())
            for kind in ("clean", "scan"):
                if kind == "scan":
                    a = degrade_scan(imgs["skia"], np.random.default_rng([123, j, pages, 1]))[0]
                    b_ = degrade_scan(imgs["resvg"], np.random.default_rng([123, j, pages, 1]))[0]
                else:
                    a, b_ = imgs["skia"], imgs["resvg"]
                d = np.abs(a.astype(np.int16) - b_.astype(np.int16))
                stats[f"{kind}_mad"].append(float(d.mean()))
                stats[f"{kind}_big"].append(float((d > 64).mean()))
                ia, ib = int((a < 128).sum()), int((b_ < 128).sum())
                stats[f"{kind}_ink"].append((ia - ib) / max(ib, 1))
            print(j, pages, geo.width, geo.height, {k: round(v[-1], 4) for k, v in stats.items()}, flush=True)
    rows = [{"figure": f"pages compared (seed 123, jobs 0-{jobs - 1}, full size)", "value": pages}]
    for r in cpu:
        rows.append({"figure": f"rasterise CPU s/page, {r}", "value": round(cpu[r] / pages, 4)})
        rows.append({"figure": f"symbol boxes with ink ({r})", "value": f"{boxes_ok[r]}/{boxes}"})
    rows.append({"figure": "speed ratio resvg/skia", "value": round(cpu["resvg"] / cpu["skia"], 1)})
    for k, v in stats.items():
        agg = max(v, key=abs)
        rows.append({"figure": k, "value": f"mean {np.mean(v):.4f}, worst page {agg:.4f}"})
    return rows

if __name__ == "__main__":
    for r in main(int(sys.argv[1]) if len(sys.argv) > 1 else 6):
        print(f"{r['figure']:<50} {r['value']}")
