"""Benchmark `omr convert`: a >=1,000-page, >=700,000-annotation DeepScoresV2 dataset to YOLO, images linked.

The annotation file comes from ``bench/make_big_deepscores.py`` (released format, dense-test class frequencies);
the page images are one real PNG hard-linked once per page (the converter links images, it does not decode them).
Run ``.venv/bin/python -m bench.bench_convert [--annotations N] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.make_big_deepscores import make_big_deepscores

HERE = Path(__file__).resolve().parent

TARGET_S = 60.0
EXCLUDE = ("stem", "ledgerLine", "beam", "tie", "slur")


def _placeholder_png(path: Path) -> None:
    """One real page-sized PNG (white, a few staff lines) that every page links to."""
    import numpy as np
    from PIL import Image

    a = np.full((2772, 1960), 255, np.uint8)
    for y in range(300, 2600, 220):
        for k in range(5):
            a[y + 21 * k : y + 21 * k + 2, 150:1810] = 0
    Image.fromarray(a).save(path, optimize=False, compress_level=1)


def build(workdir: Path, annotations: int) -> Path:
    """Write ``workdir/deepscores_train.json`` and ``workdir/images/*`` (hard links of one PNG); returns the JSON."""
    js = workdir / "deepscores_train.json"
    if not js.exists():
        make_big_deepscores(js, annotations, per_page=680)
    imgdir = workdir / "images"
    imgdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "placeholder.png"
    if not src.exists():
        _placeholder_png(src)
    for im in orjson.loads(js.read_bytes())["images"]:
        p = imgdir / im["filename"]
        if not p.exists():
            os.link(src, p)
    return js


def main(argv: list[str] | None = None) -> list[dict]:
    """Build the dataset, convert it as `omr convert` does (progress bar on stderr), return the rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--annotations", type=int, default=720_000)
    ap.add_argument("--keep", type=Path, default=None, help="build the input here and keep it (reused next time)")
    a = ap.parse_args(argv if argv is not None else [])
    from omr_core.audit.convert import ConvertOptions, convert
    from omr_core.audit.plan import make_plan
    from omr_core.commands._progress import progress_bar
    from omr_core.datasets.discovery import load_dataset

    tmp = Path(tempfile.mkdtemp(prefix="omr-bench-convert-"))
    work = a.keep or tmp / "src"
    try:
        t = time.perf_counter()
        js = build(work, a.annotations)
        build_s = time.perf_counter() - t

        t0 = time.perf_counter()
        with progress_bar("reading") as cb:
            ds = load_dataset([js], progress=cb)
        t1 = time.perf_counter()
        plan = make_plan(ds.names, EXCLUDE)
        with progress_bar("converting") as cb:
            rep = convert(ds, tmp / "out", plan, ConvertOptions(imgsz=1024, val_from="split"), progress=cb)
        t2 = time.perf_counter()
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        pages, anns = len(ds.data.images), len(ds.data.annotations)
        total = t2 - t0
        rows = [
            {"figure": "pages", "value": pages, "target": ">= 1000", "ok": pages >= 1000},
            {"figure": "annotations", "value": anns, "target": ">= 700000", "ok": anns >= 700_000},
            {"figure": "labels written (5 thin classes excluded)", "value": rep.labels, "target": "", "ok": rep.verification.ok},
            {"figure": "read JSON (s)", "value": round(t1 - t0, 2), "target": "", "ok": True},
            {"figure": "convert + verify (s)", "value": round(t2 - t1, 2), "target": "", "ok": True},
            {"figure": "omr convert total (s)", "value": round(total, 2), "target": f"<= {TARGET_S:.0f}", "ok": total <= TARGET_S},
            {"figure": "verification", "value": "ok" if rep.verification.ok else "FAIL", "target": "ok", "ok": rep.verification.ok},
            {"figure": "peak RSS (GB)", "value": round(rss_gb, 2), "target": "", "ok": True},
            {"figure": "(setup: build input, s)", "value": round(build_s, 1), "target": "", "ok": True},
        ]
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _print(rows: list[dict]) -> None:
    print(f"{'figure':<44} {'value':>12} {'target':>10}  ok")
    for r in rows:
        print(f"{r['figure']:<44} {r['value']!s:>12} {r['target']:>10}  {'pass' if r['ok'] else 'FAIL'}")


if __name__ == "__main__":
    result = main(sys.argv[1:])
    _print(result)
    sys.exit(0 if all(r["ok"] for r in result) else 1)
