"""Gallery crops of evaluation cases: the object with context, ground truth and prediction drawn."""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.errors import OmrError

#: Colours (RGB): ground truth green, prediction red.
GT_COLOR = (0, 170, 60)
PRED_COLOR = (220, 30, 30)


@lru_cache(maxsize=6)
def _page(path: str, mtime: int) -> np.ndarray:
    import cv2

    # Grey decoding is 3x smaller in memory and DeepScores pages are grey; colour is added per crop.
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OmrError(f"cannot read image {path}")
    return img


def read_page(path: str | os.PathLike[str]) -> np.ndarray:
    """A page as a grey array, from a small cache (crops of one page are usually looked at together)."""
    p = str(path)
    try:
        mtime = os.stat(p).st_mtime_ns
    except OSError as exc:
        raise OmrError(f"image {p} is missing (moved since the evaluation?)") from exc
    return _page(p, mtime)


def _finite_box(box: Any) -> tuple[float, float, float, float] | None:
    if box is None:
        return None
    vals = [float(v) for v in box]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        return None
    return vals[0], vals[1], vals[2], vals[3]


def crop_case(
    path: str | os.PathLike[str],
    gt_box: Any = None,
    pred_box: Any = None,
    *,
    context: float = 1.0,
    min_context: int = 24,
    size: int = 192,
) -> np.ndarray:
    """An RGB crop around a case, scaled so its longer side is ``size`` pixels.

    Args:
        path: Page image.
        gt_box: Ground-truth xyxy box in page pixels (None or NaN: none).
        pred_box: Predicted xyxy box (None or NaN: none).
        context: Margin around the boxes, as a fraction of their size.
        min_context: Smallest margin in page pixels (thin symbols need to show their neighbours).
        size: Longer side of the result.

    Returns:
        ``(h, w, 3)`` uint8 RGB array with the ground truth in green and the prediction in red.
    """
    return crop_boxes(read_page(path), gt_box, pred_box, context=context, min_context=min_context, size=size)


def crop_boxes(
    page: np.ndarray,
    gt_box: Any = None,
    pred_box: Any = None,
    *,
    context: float = 1.0,
    min_context: int = 24,
    size: int = 192,
) -> np.ndarray:
    """`crop_case` on a page already in memory (a grey ``(h, w)`` array)."""
    import cv2

    boxes = [b for b in (_finite_box(gt_box), _finite_box(pred_box)) if b is not None]
    if not boxes:
        raise OmrError("a case needs a ground-truth or a predicted box")
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[2] for b in boxes)
    y1 = max(b[3] for b in boxes)
    mx = max(min_context, (x1 - x0) * context)
    my = max(min_context, (y1 - y0) * context)
    h, w = page.shape[:2]
    cx0, cy0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    cx1, cy1 = min(w, int(math.ceil(x1 + mx))), min(h, int(math.ceil(y1 + my)))
    if cx1 <= cx0 or cy1 <= cy0:
        cx0, cy0, cx1, cy1 = 0, 0, w, h
    crop = cv2.cvtColor(page[cy0:cy1, cx0:cx1], cv2.COLOR_GRAY2RGB)
    scale = size / max(crop.shape[:2])
    interp = cv2.INTER_NEAREST if scale > 2 else cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))), interpolation=interp)
    thick = max(1, size // 120)
    for box, color in ((_finite_box(gt_box), GT_COLOR), (_finite_box(pred_box), PRED_COLOR)):
        if box is None:
            continue
        p0 = (round((box[0] - cx0) * scale), round((box[1] - cy0) * scale))
        p1 = (round((box[2] - cx0) * scale), round((box[3] - cy0) * scale))
        cv2.rectangle(crop, p0, p1, color, thick)
    return crop


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB array as PNG bytes (for HTML reports and downloads)."""
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OmrError("PNG encoding failed")
    return bytes(buf)


def case_boxes(row: Any) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The (ground truth, prediction) boxes of a cases-table row (None where absent)."""
    g = _finite_box((row["gx0"], row["gy0"], row["gx1"], row["gy1"]))
    p = _finite_box((row["px0"], row["py0"], row["px1"], row["py1"]))
    return g, p


def image_path(images: Any, image_id: int) -> Path:
    """Path of ``image_id`` in an evaluation's images table."""
    return Path(str(images["path"].iloc[int(image_id)]))
