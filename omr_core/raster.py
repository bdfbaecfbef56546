"""Page pixels shared by every package: grey pages from a small cache, PNG bytes, crops with boxes drawn, tiles."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from omr_core.errors import OmrError

__all__ = ["Rgb", "crop_with_boxes", "encode_png", "finite_box", "grey_page", "tile_origins"]

#: An RGB colour, 0-255 per channel.
Rgb = tuple[int, int, int]


def encode_png(img: np.ndarray, *, noisy: bool = False) -> bytes:
    """Encode a grey ``(h, w)`` or RGB ``(h, w, 3)`` uint8 array as PNG (the same pixels give the same bytes).

    Args:
        img: The pixels; RGB channel order (not OpenCV's BGR).
        noisy: A scan-damaged page: grain defeats deflate's matching, so Huffman coding alone is both
            faster (2x) and smaller.

    Raises:
        OmrError: The array is not an image OpenCV can encode (the message gives its shape and type).
    """
    import cv2

    arr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 and img.shape[2] == 3 else img
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    if noisy:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    # One row filter instead of libpng's per-row trial of all five (OpenCV >= 4.10), measured on full-size
    # engraved pages: clean pages (flat paper) 12 ms instead of 36 ms and 3% smaller with no filter; scan-damaged
    # ones 67 ms instead of 89 ms at the same size with Paeth.
    row_filter = getattr(cv2, "IMWRITE_PNG_FILTER", None)
    if row_filter is not None:
        params += [row_filter, cv2.IMWRITE_PNG_FILTER_PAETH if noisy else cv2.IMWRITE_PNG_FILTER_NONE]
    try:
        ok, buf = cv2.imencode(".png", arr, params)
    except cv2.error as exc:
        raise OmrError(f"cannot encode a {img.dtype} array of shape {img.shape} as PNG: {exc.msg}") from None
    if not ok:
        raise OmrError(f"cannot encode a {img.dtype} array of shape {img.shape} as PNG")
    return buf.tobytes()


@lru_cache(maxsize=8)
def _page(path: str, mtime_ns: int) -> np.ndarray:
    import cv2

    # Grey decoding is 3x smaller in memory and score pages are grey; colour is added per crop.
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OmrError(f"cannot read page image {path}: not an image OpenCV can decode")
    return img


def grey_page(path: str | os.PathLike[str]) -> np.ndarray:
    """A page as a grey array, from a small cache keyed on path and mtime (crops of a page come together)."""
    p = str(path)
    try:
        mtime = os.stat(p).st_mtime_ns
    except OSError as exc:
        raise OmrError(f"page image {p} is missing or unreadable ({exc.strerror}): was it moved?") from None
    return _page(p, mtime)


def finite_box(box: Any) -> tuple[float, float, float, float] | None:
    """``box`` as four floats, or None when it is None, not four values, or has a NaN/infinite value."""
    if box is None:
        return None
    vals = [float(v) for v in box]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        return None
    return vals[0], vals[1], vals[2], vals[3]


def crop_with_boxes(
    page: np.ndarray,
    boxes: Sequence[tuple[Any, Rgb]],
    *,
    context: float = 1.0,
    min_context: int = 24,
    size: int = 192,
) -> np.ndarray:
    """Cut the region around ``boxes`` with some context, fit it into a ``size`` square and draw the boxes.

    Args:
        page: Grey ``(h, w)`` page.
        boxes: ``(xyxy box in page pixels, colour)`` pairs; a None or NaN box is skipped.
        context: Margin on each axis as a fraction of the boxes' extent on that axis.
        min_context: Smallest margin in page pixels (thin and tiny symbols need to show their neighbours).
        size: Longer side of the result.

    Returns:
        ``(h, w, 3)`` uint8 RGB array.

    Raises:
        OmrError: No usable box, or the boxes lie outside the page.
    """
    import cv2

    drawn = [(b, color) for b, color in ((finite_box(b), c) for b, c in boxes) if b is not None]
    if not drawn:
        raise OmrError("a crop needs at least one box with four finite coordinates")
    x0 = min(b[0] for b, _ in drawn)
    y0 = min(b[1] for b, _ in drawn)
    x1 = max(b[2] for b, _ in drawn)
    y1 = max(b[3] for b, _ in drawn)
    mx = max(min_context, (x1 - x0) * context)
    my = max(min_context, (y1 - y0) * context)
    h, w = page.shape[:2]
    cx0, cy0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
    cx1, cy1 = min(w, int(math.ceil(x1 + mx))), min(h, int(math.ceil(y1 + my)))
    if cx1 <= cx0 or cy1 <= cy0:
        raise OmrError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} page")
    crop = cv2.cvtColor(page[cy0:cy1, cx0:cx1], cv2.COLOR_GRAY2RGB)
    scale = size / max(crop.shape[:2])
    interp = cv2.INTER_NEAREST if scale > 2 else cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))), interpolation=interp)
    thick = max(1, size // 120)
    for box, color in drawn:
        p0 = (round((box[0] - cx0) * scale), round((box[1] - cy0) * scale))
        p1 = (round((box[2] - cx0) * scale), round((box[3] - cy0) * scale))
        cv2.rectangle(crop, p0, p1, color, thick)
    return crop


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of ``tile``-px tiles covering ``length`` px with at least ``overlap`` (a fraction) between
    neighbours, spread evenly so the last tile ends exactly at the border; ``[0]`` when one tile covers it all.

    `omr convert` cuts training tiles and `predict` cuts inference tiles with this same rule.
    """
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]
