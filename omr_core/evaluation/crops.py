"""Gallery crops of evaluation cases: the object with context, ground truth and prediction drawn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.raster import crop_with_boxes, finite_box, grey_page

#: Colours (RGB): ground truth green, prediction red.
GT_COLOR = (0, 170, 60)
PRED_COLOR = (220, 30, 30)


def crop_case(
    page: str | os.PathLike[str] | np.ndarray,
    gt_box: Any = None,
    pred_box: Any = None,
    *,
    context: float = 1.0,
    min_context: int = 24,
    size: int = 192,
) -> np.ndarray:
    """An RGB crop around a case, scaled so its longer side is ``size`` pixels.

    Args:
        page: Page image file, or a page already in memory as a grey ``(h, w)`` array.
        gt_box: Ground-truth xyxy box in page pixels (None or NaN: none).
        pred_box: Predicted xyxy box (None or NaN: none).
        context: Margin around the boxes, as a fraction of their size.
        min_context: Smallest margin in page pixels (thin symbols need to show their neighbours).
        size: Longer side of the result.

    Returns:
        ``(h, w, 3)`` uint8 RGB array with the ground truth in green and the prediction in red.
    """
    grey = page if isinstance(page, np.ndarray) else grey_page(page)
    return crop_with_boxes(
        grey, [(gt_box, GT_COLOR), (pred_box, PRED_COLOR)], context=context, min_context=min_context, size=size
    )


def case_boxes(row: Any) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The (ground truth, prediction) boxes of a cases-table row (None where absent)."""
    g = finite_box((row["gx0"], row["gy0"], row["gx1"], row["gy1"]))
    p = finite_box((row["px0"], row["py0"], row["px1"], row["py1"]))
    return g, p


def image_path(images: Any, image_id: int) -> Path:
    """Path of ``image_id`` in an evaluation's images table."""
    return Path(str(images["path"].iloc[int(image_id)]))
