"""Build a large synthetic annotation file in the released DeepScoresV2 format (for load benchmarks and tests).

The file looks like the dense train split to a reader: string annotation ids, interleaved category keys
(``"1","137","2","138",…``), ``cat_id`` pairs with the muscima++ id or null, ``o_bbox`` (rotated floats for
slurs/ties and some other symbols), int ``area``, ``comments`` with ``duration``/``rel_position`` on noteheads,
class frequencies from the dense test split (``test_instances`` column of the shipped class table), page sizes
1960×2772 mostly, about 700 annotations per page, and a few degenerate (zero-width) boxes. Boxes are plausible
sizes, not engraved music: this is for reading speed, not for training.

Run ``python -m bench.make_big_deepscores OUT.json [--annotations N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.atomic import write_atomic

#: Page sizes seen in DeepScoresV2 and how often this generator draws them.
PAGE_SIZES: tuple[tuple[tuple[int, int], float], ...] = (
    ((1960, 2772), 0.70),
    ((2368, 3349), 0.12),
    ((2211, 3126), 0.12),
    ((2707, 3828), 0.06),
)

# (width, height) in staff spaces; the first matching prefix wins, so specific names come first.
_SIZES: tuple[tuple[str, tuple[float, float]], ...] = (
    ("staff", (80.0, 4.0)),
    ("stem", (0.12, 3.5)),
    ("ledgerLine", (2.0, 0.1)),
    ("beam", (5.0, 0.5)),
    ("slur", (8.0, 1.5)),
    ("tie", (3.0, 0.7)),
    ("brace", (1.0, 10.0)),
    ("noteheadWhole", (1.8, 1.1)),
    ("noteheadDouble", (2.2, 1.1)),
    ("notehead", (1.3, 1.0)),
    ("clefG", (2.6, 7.0)),
    ("clefF", (2.6, 3.0)),
    ("clef", (2.6, 4.0)),
    ("accidentalSharp", (1.0, 2.8)),
    ("keySharp", (1.0, 2.8)),
    ("accidentalFlat", (0.9, 2.4)),
    ("keyFlat", (0.9, 2.4)),
    ("accidental", (0.8, 2.6)),
    ("key", (0.8, 2.6)),
    ("timeSig", (1.6, 2.0)),
    ("restWhole", (1.2, 0.5)),
    ("restHalf", (1.2, 0.5)),
    ("rest", (1.0, 2.4)),
    ("flag", (1.0, 3.0)),
    ("augmentationDot", (0.4, 0.4)),
    ("artic", (1.0, 0.6)),
    ("dynamicCrescendoHairpin", (8.0, 1.5)),
    ("dynamicDiminuendoHairpin", (8.0, 1.5)),
    ("dynamic", (2.0, 1.5)),
    ("fingering", (0.7, 1.0)),
    ("tupletBracket", (5.0, 1.0)),
    ("ottavaBracket", (10.0, 1.0)),
    ("tuplet", (0.7, 1.0)),
)
_ROTATED = ("slur", "tie", "dynamicCrescendoHairpin", "dynamicDiminuendoHairpin", "beam")
_DURATIONS = ("8", "4", "16", "2", "4.", "2.", "8*2/3", "8.", "1", "32", "16.")
_DURATION_P = np.array([1052, 472, 224, 199, 156, 120, 39, 33, 6, 1, 1], dtype=float)


def _class_rows() -> list[dict[str, str]]:
    text = resources.files("omr_core").joinpath("data/categories.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _size_of(name: str) -> tuple[float, float]:
    for prefix, size in _SIZES:
        if name.startswith(prefix):
            return size
    return (1.5, 1.5)


def _categories_block(rows: list[dict[str, str]]) -> dict[str, dict[str, object]]:
    """Category definitions with keys interleaved like the released files (1, 137, 2, 138, …)."""
    ds = [r for r in rows if r["annotation_set"] == "deepscores"]
    mu = [r for r in rows if r["annotation_set"] != "deepscores"]
    out: dict[str, dict[str, object]] = {}
    for i in range(max(len(ds), len(mu))):
        for group in (ds, mu):
            if i < len(group):
                r = group[i]
                out[r["id"]] = {"name": r["name"], "annotation_set": r["annotation_set"], "color": int(r["color"])}
    return out


def make_big_deepscores(
    path: Path | str,
    n_annotations: int = 1_000_000,
    *,
    seed: int = 0,
    per_page: int = 700,
    float_boxes: bool = False,
) -> Path:
    """Write a DeepScoresV2-format annotation file with at least ``n_annotations`` annotations.

    Args:
        path: Output JSON path (written atomically).
        n_annotations: Minimum number of annotations; pages are added until it is reached.
        seed: Random seed (same seed, same file).
        per_page: Mean annotations per page (pages draw 0.3x to 1.7x of it).
        float_boxes: Write ``a_bbox`` as floats (some released files do) instead of ints.

    Returns:
        The output path.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    rows = _class_rows()
    ds_rows = [r for r in rows if r["annotation_set"] == "deepscores"]
    weights = np.array([float(r["test_instances_dmgonzalez8_yolov8x_val"] or 0) for r in ds_rows])
    probs = weights / weights.sum()
    ids = np.array([int(r["id"]) for r in ds_rows])
    names = [r["name"] for r in ds_rows]
    # The table writes "null" where the released files pair a class with no muscima++ id.
    muscima = [r["muscima_pp_cat_id_paired_in_samples"].strip() or None for r in ds_rows]
    muscima = [None if m in (None, "null") else m for m in muscima]
    base_w = np.array([_size_of(n)[0] for n in names])
    base_h = np.array([_size_of(n)[1] for n in names])
    is_head = np.array([n.startswith("notehead") for n in names])
    rotated = np.array([n.startswith(_ROTATED) for n in names])

    # Page plan first: the images block (with every ann_id) precedes the annotations in the released files.
    counts: list[int] = []
    while sum(counts) < n_annotations:
        counts.append(int(rng.integers(int(per_page * 0.3), int(per_page * 1.7) + 1)))
    size_idx = rng.choice(len(PAGE_SIZES), size=len(counts), p=[p for _, p in PAGE_SIZES])
    first_id = 160131
    images: list[dict[str, Any]] = []
    next_id = first_id
    for page, (n, si) in enumerate(zip(counts, size_idx)):
        w, h = PAGE_SIZES[si][0]
        images.append(
            {
                "id": page + 1,
                "filename": f"lg-{rng.integers(10**8):08d}-aug-{('beethoven', 'emmentaler', 'gonville', 'lilyjazz')[page % 4]}-page-{page % 5 + 1}.png",
                "width": w,
                "height": h,
                "ann_ids": [str(i) for i in range(next_id, next_id + n)],
            }
        )
        next_id += n

    head = {
        "info": {
            "description": "Synthetic DeepScoresV2-format file for load benchmarks (not real data)",
            "version": "2.0",
            "year": 2026,
            "contributor": "omr_dashboard bench/make_big_deepscores.py",
            "date_created": "2026-11-22",
            "url": "",
        },
        "annotation_sets": ["deepscores", "muscima++"],
        "categories": _categories_block(rows),
        "images": images,
    }

    def stream(tmp: Path) -> None:  # streamed: the file is too big to build in memory first
        with tmp.open("xb") as f:
            # The released files are written by Python's json with its default ", " and ": " separators.
            f.write(json.dumps(head).encode()[:-1])  # drop the closing brace, annotations follow
            f.write(b', "annotations": {')
            ann_id = first_id
            for page, img in enumerate(images):
                n = counts[page]
                w, h = int(img["width"]), int(img["height"])
                sp = 21.0 * w / 1960
                cls = rng.choice(len(ids), size=n, p=probs)
                jitter = rng.lognormal(0.0, 0.15, size=(n, 2))
                bw = np.maximum(1, np.rint(base_w[cls] * sp * jitter[:, 0])).astype(np.int64)
                bh = np.maximum(1, np.rint(base_h[cls] * sp * jitter[:, 1])).astype(np.int64)
                bw = np.minimum(bw, w - 2 * 100)
                bh = np.minimum(bh, h - 2 * 100)
                x0 = rng.integers(100, w - 100 - bw + 1)
                y0 = rng.integers(100, h - 100 - bh + 1)
                degenerate = rng.random(n) < 0.0003  # the real 10-page sample has 2 in 7,404
                bw = np.where(degenerate, 0, bw)
                x1, y1 = x0 + bw, y0 + bh
                area = np.maximum(0, np.rint(bw * bh * rng.uniform(0.3, 1.0, size=n))).astype(np.int64)
                rot = rotated[cls] | (rng.random(n) < 0.2)
                angle = rng.normal(0.0, 0.15, size=n)
                dur = rng.choice(len(_DURATIONS), size=n, p=_DURATION_P / _DURATION_P.sum())
                relpos = rng.integers(-12, 15, size=n)
                chunk: dict[str, dict[str, object]] = {}
                for k in range(n):
                    c = int(cls[k])
                    a0, b0, a1, b1 = int(x0[k]), int(y0[k]), int(x1[k]), int(y1[k])
                    if rot[k]:
                        cx, cy, hw, hh = (a0 + a1) / 2, (b0 + b1) / 2, (a1 - a0) / 2, (b1 - b0) / 2
                        ca, sa = float(np.cos(angle[k])), float(np.sin(angle[k]))
                        obox: list[float | int] = []
                        for dx, dy in ((hw, hh), (hw, -hh), (-hw, -hh), (-hw, hh)):
                            obox += [cx + dx * ca - dy * sa, cy + dx * sa + dy * ca]
                    else:
                        obox = [a1, b1, a1, b0, a0, b0, a0, b1]
                    comment = f"instance:#{(ann_id * 2654435761) % 0xFFFFFF:06x};"
                    if is_head[c]:
                        comment += f"duration:{_DURATIONS[dur[k]]};rel_position:{relpos[k]};"
                    abox: list[float | int] = (
                        [float(a0), float(b0), float(a1), float(b1)] if float_boxes else [a0, b0, a1, b1]
                    )
                    chunk[str(ann_id)] = {
                        "a_bbox": abox,
                        "o_bbox": obox,
                        "cat_id": [str(ids[c]), muscima[c]],
                        "area": int(area[k]),
                        "img_id": str(img["id"]),
                        "comments": comment,
                    }
                    ann_id += 1
                body = json.dumps(chunk).encode()[1:-1]
                if page:
                    f.write(b", ")
                f.write(body)
            f.write(b"}}")

    write_atomic(path, stream)
    return path


def link_page_images(path: Path | str) -> Path:
    """Give every page of an annotation file an image in ``images/`` next to it: hard links to one small PNG.

    Conversions need the page files to exist; their pixels do not matter to a benchmark of label writing.
    """
    from PIL import Image

    path = Path(path)
    folder = path.parent / "images"
    folder.mkdir(exist_ok=True)
    blank = path.parent / ".blank-page.png"
    if not blank.is_file():
        Image.new("L", (64, 64), 255).save(blank)
    head = path.read_bytes()[: 64 << 20]
    for name in re.findall(rb'"filename": "([^"]+)"', head):
        target = folder / name.decode()
        if not target.exists():
            os.link(blank, target)
    return folder


def main(argv: list[str] | None = None) -> int:
    """Command line: write the file and print its size."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("out", type=Path)
    p.add_argument("--annotations", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float-boxes", action="store_true")
    a = p.parse_args(argv)
    out = make_big_deepscores(a.out, a.annotations, seed=a.seed, float_boxes=a.float_boxes)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
