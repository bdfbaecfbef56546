"""Per-class statistics of a dataset: counts, box sizes, density per page, crop galleries of a class."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omr_core.classes import official_category
from omr_core.errors import OmrError
from omr_core.raster import crop_with_boxes, grey_page

if TYPE_CHECKING:
    from omr_core.audit.plan import ExclusionPlan
    from omr_core.audit.summary import DatasetSummary
    from omr_core.datasets.tables import AnnotationTables
from omr_core.datasets.discovery import LoadedDataset

#: Median box side (px at the training imgsz) under which a class is flagged as too small to learn.
TINY_PX = 2.0


def class_codes(ann: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Position of each annotation's class in ``names`` (-1 outside it)."""
    return np.asarray(pd.Categorical(ann["name"].astype(str), categories=list(names)).codes, dtype=np.int64)


def image_rows(data: AnnotationTables) -> np.ndarray:
    """Row of each annotation's image in the images table (-1 where the image is unknown)."""
    return np.asarray(pd.Index(data.images["image"]).get_indexer(data.annotations["image"]), dtype=np.int64)


def box_sizes(data: AnnotationTables, imgsz: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Width, height (px) and letterbox scale of every annotation.

    The scale is ``imgsz / max(page width, page height)`` per image, as Ultralytics' letterbox resizes the long side
    to ``imgsz``; it is 1 when ``imgsz`` is None.
    """
    ann = data.annotations
    w = (ann["x1"].to_numpy(np.float64) - ann["x0"].to_numpy(np.float64)).clip(min=0)
    h = (ann["y1"].to_numpy(np.float64) - ann["y0"].to_numpy(np.float64)).clip(min=0)
    if imgsz is None:
        return w, h, np.ones_like(w)
    imgs = data.images
    long_side = np.maximum(imgs["width"].to_numpy(np.float64), imgs["height"].to_numpy(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        img_scale = np.where(long_side > 0, imgsz / long_side, np.nan)
    rows = image_rows(data)
    scale = np.where(rows >= 0, img_scale[np.clip(rows, 0, None)] if len(img_scale) else np.nan, np.nan)
    return w, h, scale


def class_stats(ds: LoadedDataset | DatasetSummary, imgsz: int = 1024, *, tiny_px: float = TINY_PX) -> pd.DataFrame:
    """One row per class of the universe, in source order.

    Columns: ``id`` (official id, <NA> for unofficial names), ``yolo_index`` (index in the source), ``name``,
    ``group``, ``critical``, ``no_samples`` (flagged by the dataset authors), ``official``, ``instances``,
    ``images`` (images containing it), ``share`` (of all instances, 0-1), ``median_w``/``median_h`` (px),
    ``median_w_at``/``median_h_at`` (px at ``imgsz``), ``tiny`` (median side < ``tiny_px`` at ``imgsz``),
    ``empty`` (no instance in this dataset). A `DatasetSummary` (many files, from the cache) gives the same table.
    """
    from omr_core.audit.summary import DatasetSummary

    if isinstance(ds, DatasetSummary):
        return ds.class_stats(imgsz, tiny_px=tiny_px)
    names = list(ds.names)
    ann = ds.data.annotations
    codes = class_codes(ann, names)
    valid = codes >= 0
    k = len(names)
    counts = np.bincount(codes[valid], minlength=k)
    rows = image_rows(ds.data)
    n_img = max(len(ds.data.images), 1)
    pairs = np.unique(codes[valid] * (n_img + 1) + (rows[valid] + 1))
    img_counts = np.bincount(pairs // (n_img + 1), minlength=k)
    w, h, scale = box_sizes(ds.data, imgsz)
    frame = pd.DataFrame({"c": codes[valid], "w": w[valid], "h": h[valid], "wa": (w * scale)[valid], "ha": (h * scale)[valid]})
    med = frame.groupby("c").median().reindex(range(k))
    return stats_frame(names, counts, img_counts, {c: med[c].to_numpy() for c in ("w", "h", "wa", "ha")}, tiny_px)


def stats_frame(
    names: Sequence[str], counts: np.ndarray, img_counts: np.ndarray, med: dict[str, np.ndarray], tiny_px: float = TINY_PX
) -> pd.DataFrame:
    """The `class_stats` table from per-class counts, image counts and medians (``med``: ``w h wa ha`` per class)."""
    total = int(counts.sum())
    recs: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        cat = official_category(name)
        recs.append(
            {
                "id": cat.id if cat else pd.NA,
                "yolo_index": i,
                "name": name,
                "group": cat.group if cat else "unofficial",
                "critical": bool(cat.critical) if cat else False,
                "no_samples": bool(cat.no_samples) if cat else False,
                "official": cat is not None,
            }
        )
    out = pd.DataFrame.from_records(recs)
    out["id"] = out["id"].astype("Int64")
    out["instances"] = counts.astype(np.int64)
    out["images"] = img_counts.astype(np.int64)
    out["share"] = counts / total if total else 0.0
    out["median_w"] = med["w"]
    out["median_h"] = med["h"]
    out["median_w_at"] = med["wa"]
    out["median_h_at"] = med["ha"]
    side = np.fmin(out["median_w_at"].to_numpy(np.float64), out["median_h_at"].to_numpy(np.float64))
    out["tiny"] = np.nan_to_num(side, nan=np.inf) < tiny_px
    out["empty"] = out["instances"] == 0
    return out


def instances_per_image(ds: LoadedDataset | DatasetSummary, plan: ExclusionPlan | None = None) -> np.ndarray:
    """Label count of every image (zeros included), after ``plan`` when given."""
    from omr_core.audit.summary import DatasetSummary

    if isinstance(ds, DatasetSummary):
        return ds.instances_per_image(plan)
    rows = image_rows(ds.data)
    keep = rows >= 0
    if plan is not None:
        keep &= plan.kept_mask(ds.data.annotations)
    return np.bincount(rows[keep], minlength=len(ds.data.images)).astype(np.int64)


def density_summary(counts: np.ndarray) -> dict[str, float | int]:
    """Min/median/mean/p95/max of per-image label counts."""
    if len(counts) == 0:
        return {"images": 0, "min": 0, "median": 0.0, "mean": 0.0, "p95": 0.0, "max": 0, "total": 0}
    return {
        "images": int(len(counts)),
        "min": int(counts.min()),
        "median": float(np.median(counts)),
        "mean": round(float(counts.mean()), 2),
        "p95": float(np.percentile(counts, 95)),
        "max": int(counts.max()),
        "total": int(counts.sum()),
    }


@dataclass(frozen=True)
class CropRef:
    """One annotation to show in the visual audit.

    Attributes:
        ann_id: Annotation id in the source.
        name: Class name.
        image_path: Page image on disk.
        filename: Page file name as the source spells it.
        box: ``(x0, y0, x1, y1)`` in page pixels.
    """

    ann_id: str
    name: str
    image_path: str
    filename: str
    box: tuple[float, float, float, float]

    @property
    def caption(self) -> str:
        """``"file.png · ann 1234"`` for under the thumbnail."""
        return f"{self.filename} · ann {self.ann_id}"


def sample_crops(ds: LoadedDataset, name: str, n: int = 12, seed: int = 0) -> list[CropRef]:
    """Pick up to ``n`` random annotations of class ``name`` whose page image exists (seeded, repeatable)."""
    ann = ds.data.annotations
    imgs = ds.data.images
    rows = image_rows(ds.data)
    if "path" not in imgs.columns:
        return []
    paths = imgs["path"].to_numpy(dtype=object)
    has_img = np.array([bool(p) and not (isinstance(p, float) and np.isnan(p)) for p in paths] + [False], dtype=bool)
    sel = (ann["name"].astype(str).to_numpy() == name) & has_img[np.where(rows >= 0, rows, len(paths))]
    idx = np.flatnonzero(sel)
    if len(idx) == 0:
        return []
    rng = random.Random(f"{seed}:{name}")
    pick = sorted(rng.sample(range(len(idx)), min(n, len(idx))))
    sub = ann.iloc[idx[pick]]
    fn = imgs["filename"].to_numpy(dtype=object)
    out = []
    for (ai, r), x0, y0, x1, y1 in zip(
        zip(sub["ann_id"].tolist(), rows[idx[pick]].tolist()),
        sub["x0"].tolist(),
        sub["y0"].tolist(),
        sub["x1"].tolist(),
        sub["y1"].tolist(),
    ):
        out.append(CropRef(str(ai), name, str(paths[r]), str(fn[r]), (float(x0), float(y0), float(x1), float(y1))))
    return out


#: The colour of the annotation's box in gallery crops (RGB).
CROP_BOX_COLOR = (230, 30, 30)


def render_crop(path: str, box: Sequence[float], *, context: float = 0.5, min_context_px: int = 12, thumb: int = 160) -> np.ndarray:
    """Cut ``box`` with some context from a page image, draw the box, and fit it into a ``thumb`` square.

    Args:
        path: Page image.
        box: ``(x0, y0, x1, y1)`` in page pixels.
        context: Context margin on each axis as a fraction of the box's extent on that axis.
        min_context_px: Smallest margin in page pixels (tiny symbols still get surroundings).
        thumb: Longest side of the returned thumbnail.

    Returns:
        An RGB ``uint8`` array.

    Raises:
        OmrError: The page cannot be read, or the box lies outside it (the message names the file).
    """
    page = grey_page(path)
    try:
        return crop_with_boxes(page, [(box, CROP_BOX_COLOR)], context=context, min_context=min_context_px, size=thumb)
    except OmrError as exc:
        raise OmrError(f"{path}: {exc}") from None
