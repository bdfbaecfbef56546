"""The first pages of the real DeepScoresV2 sample with a page image drawn for each (their boxes in black)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw


def first_pages_with_images(source: Path, folder: Path, n_pages: int) -> Path:
    """Write ``folder/deepscores_train.json`` with the first ``n_pages`` of ``source`` and their images.

    Returns:
        The path of the written annotation file; page images are in ``folder/images``.
    """
    raw = json.loads(source.read_text())
    (folder / "images").mkdir(parents=True)
    keep = raw["images"][:n_pages]
    for im in keep:
        page = Image.new("L", (im["width"], im["height"]), 255)
        d = ImageDraw.Draw(page)
        for k in im["ann_ids"]:
            x0, y0, x1, y1 = raw["annotations"][k]["a_bbox"]
            d.rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=0)
        page.save(folder / "images" / im["filename"], compress_level=1)
    ids = {str(im["id"]) for im in keep}
    sub = {**raw, "images": keep, "annotations": {k: a for k, a in raw["annotations"].items() if str(a["img_id"]) in ids}}
    out = folder / "deepscores_train.json"
    out.write_text(json.dumps(sub))
    return out
