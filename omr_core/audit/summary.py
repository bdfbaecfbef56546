"""The audit of many DeepScoresV2 files from their per-file aggregates: class counts, exact median sizes, density.

`summarize_files` merges the cached `FileColumns` of each file (see `omr_core.datasets.columnar`) into a
`DatasetSummary`; its `class_stats` and `instances_per_image` give the same numbers as
`omr_core.audit.statistics` on the fully loaded tables, without ever holding every annotation at once. Medians are
exact: they are taken from histograms of (class, size, page long side), so the size at any ``imgsz`` is computed with
the same float64 arithmetic as `box_sizes` on the same values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from omr_core.datasets.columnar import ColumnarCache, Progress, scan_files, skipped_issue
from omr_core.datasets.tables import IMAGE_COLUMNS, LoadIssue

if TYPE_CHECKING:
    from omr_core.audit.plan import ExclusionPlan

KIND_DEEPSCORES = "deepscores"


@dataclass(frozen=True, eq=False)
class DatasetSummary:
    """What the audit needs of a DeepScoresV2 dataset, merged from per-file aggregates.

    Attributes:
        paths: The files audited (the skipped ones are not among them).
        names: The class universe (the full class table, as `load_dataset` gives it for DeepScoresV2 JSON).
        images: One row per page, the columns of `AnnotationTables.images` (``image`` unique across files).
        sizes: Box-size histogram: ``code`` (deepscores id - 1), ``axis`` (0 width, 1 height), ``value`` (px),
            ``long_side`` (px), ``count``.
        pairs: Labels per page and class: ``image``, ``code``, ``count``.
        issues: The reader's issues per file, image lookups, and the skipped files.
        skipped: ``(file, why)`` of each file that could not be read.
        cached: Files that came from the cache; parsed: files parsed in this call.
    """

    paths: tuple[Path, ...]
    names: tuple[str, ...]
    images: pd.DataFrame
    sizes: pd.DataFrame
    pairs: pd.DataFrame
    issues: tuple[LoadIssue, ...]
    skipped: tuple[tuple[Path, str], ...] = ()
    cached: int = 0
    parsed: int = 0
    kind: str = KIND_DEEPSCORES

    @cached_property
    def _name_of_code(self) -> np.ndarray:
        """Position in `names` of each deepscores code (id - 1)."""
        from omr_core.datasets.deepscores import deepscores_names

        index = {n: i for i, n in enumerate(self.names)}
        return np.array([index.get(n, -1) for n in deepscores_names()], dtype=np.int64)

    @property
    def n_annotations(self) -> int:
        return int(self.pairs["count"].sum())

    def class_stats(self, imgsz: int = 1024, *, tiny_px: float | None = None) -> pd.DataFrame:
        """The `omr_core.audit.statistics.class_stats` table, from the aggregates (same values)."""
        from omr_core.audit.statistics import TINY_PX, stats_frame

        k = len(self.names)
        codes = self._name_of_code[self.pairs["code"].to_numpy(np.int64)]
        counts = np.bincount(codes, weights=self.pairs["count"].to_numpy(np.float64), minlength=k).astype(np.int64)
        img_counts = np.bincount(codes, minlength=k).astype(np.int64)
        med = {}
        for axis, col in ((0, "w"), (1, "h")):
            part = self.sizes[self.sizes["axis"] == axis]
            code = self._name_of_code[part["code"].to_numpy(np.int64)]
            value = part["value"].to_numpy(np.float64)
            count = part["count"].to_numpy(np.int64)
            long_side = part["long_side"].to_numpy(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(long_side > 0, imgsz / long_side, np.nan)
            med[col] = _weighted_medians(code, value, count, k)
            med[col + "a"] = _weighted_medians(code, value * scale, count, k)
        return stats_frame(self.names, counts, img_counts, med, TINY_PX if tiny_px is None else tiny_px)

    def instances_per_image(self, plan: ExclusionPlan | None = None) -> np.ndarray:
        """Label count of every page (zeros included), after ``plan`` when given."""
        codes = self._name_of_code[self.pairs["code"].to_numpy(np.int64)]
        weights = self.pairs["count"].to_numpy(np.float64)
        if plan is not None:
            keep = np.array([not plan.is_excluded(n) and n in plan.universe for n in self.names] + [False])
            weights = weights * keep[np.where(codes >= 0, codes, len(self.names))]
        n = np.bincount(self.pairs["image"].to_numpy(np.int64), weights=weights, minlength=len(self.images))
        return np.rint(n).astype(np.int64)


def _weighted_medians(code: np.ndarray, value: np.ndarray, count: np.ndarray, k: int) -> np.ndarray:
    """Median of ``value`` repeated ``count`` times, per ``code`` in 0..k-1 (NaN values skipped, NaN when empty).

    For an even total it is the mean of the two middle values, ``(a + b) / 2``, as pandas' groupby median takes it.
    """
    out = np.full(k, np.nan)
    ok = (code >= 0) & ~np.isnan(value)
    code, value, count = code[ok], value[ok], count[ok]
    order = np.lexsort((value, code))
    code, value, count = code[order], value[order], count[order]
    bounds = np.flatnonzero(np.diff(code)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(code)]):
        if lo == hi:
            continue
        cum = np.cumsum(count[lo:hi])
        n = int(cum[-1])
        a = value[lo:hi][np.searchsorted(cum, (n - 1) // 2, side="right")]
        b = value[lo:hi][np.searchsorted(cum, n // 2, side="right")]
        out[code[lo]] = a if n % 2 else (a + b) / 2
    return out


def summarize_files(
    paths: Sequence[Path],
    *,
    cache: ColumnarCache | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    check_images: bool = True,
    progress: Progress | None = None,
) -> DatasetSummary:
    """Audit aggregates of DeepScoresV2 files, each from the cache or parsed once; damaged files are skipped and named.

    Args:
        paths: Annotation files (`omr_core.datasets.columnar.expand_sources` turns folders and globs into them).
        cache: The Parquet cache (default: beside the workspace).
        images_dir: Page images folder (default: ``images/`` next to each JSON, as `load_deepscores`).
        check_images: Look the page images up (missing ones are reported).
        progress: Called with (files done, files total, file name).

    Raises:
        OmrError: No file given, or none of them could be read.
    """
    from omr_core.classes import class_table
    from omr_core.datasets.deepscores import attach_image_files, empty_tables
    from omr_core.errors import OmrError

    scan = scan_files(list(paths), cache, progress=progress)
    if not scan.files:
        raise OmrError("none of the annotation files could be read: " + "; ".join(m for _, m in scan.skipped))
    image_frames, size_frames, pair_frames = [], [], []
    issues: list[LoadIssue] = []
    folders: list[Path | None] = []
    offset = 0
    for path, cols in scan.files:
        img = cols.images.copy()
        img.insert(0, "image", np.arange(len(img), dtype=np.int64) + offset)
        img["source"] = str(path)
        img["path"] = ""
        image_frames.append(img[list(IMAGE_COLUMNS)])
        pairs = cols.pairs.copy()
        pairs["image"] = pairs["image"].to_numpy(np.int64) + offset
        pair_frames.append(pairs)
        size_frames.append(cols.sizes)
        issues += cols.issues
        folders += [Path(images_dir) if images_dir is not None else path.parent / "images"] * len(img)
        offset += len(img)
    images = pd.concat(image_frames, ignore_index=True)
    empty_img, _ = empty_tables()
    images = images.astype({c: empty_img[c].dtype for c in IMAGE_COLUMNS if c not in ("filename", "source", "split", "path")})
    issues += attach_image_files(images, folders, images_dir is not None, check_images)
    issues += skipped_issue(scan.skipped)
    sizes = pd.concat(size_frames, ignore_index=True).groupby(["code", "axis", "value", "long_side"], sort=True)["count"].sum().reset_index()
    return DatasetSummary(
        paths=tuple(p for p, _ in scan.files),
        names=tuple(class_table().names()),
        images=images,
        sizes=sizes,
        pairs=pd.concat(pair_frames, ignore_index=True),
        issues=tuple(issues),
        skipped=scan.skipped,
        cached=scan.cached,
        parsed=scan.parsed,
    )
