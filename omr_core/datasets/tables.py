"""The tables every dataset reader returns (DeepScoresV2 JSON and YOLO folders alike), and what reading found.

Downstream code (audit, convert, the dashboard) sees only these: an images table, an annotations table and the
counted `LoadIssue`s, whichever format the data came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: Issue kinds whose items were dropped from the tables (the others are kept and only reported).
DROPPING_KINDS: frozenset[str] = frozenset(
    {
        "bad_field",
        "unknown_category",
        "muscima_only",
        "missing_image_record",
        "duplicate_annotation_id",
        "image_unreadable",
    }
)

#: Columns of `AnnotationTables.images`, in order.
IMAGE_COLUMNS: tuple[str, ...] = (
    "image",
    "image_id",
    "filename",
    "width",
    "height",
    "source",
    "split",
    "path",
    "n_annotations",
)

#: Columns of `AnnotationTables.annotations`, in order.
ANNOTATION_COLUMNS: tuple[str, ...] = (
    "ann_id",
    "image",
    "cat_id",
    "muscima_id",
    "name",
    "x0",
    "y0",
    "x1",
    "y1",
    "area",
    "ox0",
    "oy0",
    "ox1",
    "oy1",
    "ox2",
    "oy2",
    "ox3",
    "oy3",
    "rel_position",
    "duration",
)


@dataclass(frozen=True)
class LoadIssue:
    """Something in the input that was dropped, repaired or is worth knowing, with how many times it occurred.

    Attributes:
        kind: Machine-readable kind: ``unknown_category``, ``muscima_only``, ``missing_image_record``,
            ``bad_field``, ``duplicate_annotation_id``, ``image_unreadable`` (YOLO) (those were dropped,
            see `DROPPING_KINDS`);
            ``degenerate_box``, ``box_outside_image``, ``filled_field``, ``unknown_muscima_id``,
            ``ann_ids_mismatch``, ``category_name_mismatch``, ``unknown_category_definition``,
            ``image_file_missing``, ``label_file_missing`` and ``duplicate_image`` (YOLO) (kept, reported).
        message: What happened, for people; names the file and the key or id.
        count: How many items.
        examples: A few offending ids or keys.
    """

    kind: str
    message: str
    count: int
    examples: tuple[str, ...] = ()

    @property
    def dropped(self) -> bool:
        """True when the counted items are not in the tables."""
        return self.kind in DROPPING_KINDS

    def text(self) -> str:
        """One line for people: kind, message and examples."""
        ex = f" (e.g. {', '.join(self.examples)})" if self.examples else ""
        return f"{self.kind}: {self.message}{ex}"


@dataclass(frozen=True, eq=False)
class AnnotationTables:
    """The tables read from one or more DeepScoresV2 annotation files or a YOLO dataset (same columns either way).

    Attributes:
        images: One row per page, index 0..N-1, columns `IMAGE_COLUMNS`. ``image`` equals the index and is
            unique across all loaded files; ``image_id`` is the id as written in the file; ``split`` is
            ``"train"``/``"test"`` from the file name (YOLO: the split name); ``path`` is the image file
            (``""`` when not found or not checked); ``n_annotations`` counts the rows kept in `annotations`.
        annotations: One row per annotated object (a ``cat_id`` pair is ONE object), columns
            `ANNOTATION_COLUMNS`. ``image`` refers to ``images.image``; ``cat_id`` is the deepscores id
            (1-136; -1 for a YOLO class that is not an official name); ``name`` is a Categorical whose
            categories are the 136 official names in id order (YOLO: followed by the dataset's other names);
            ``x0..y1`` the axis-aligned box and ``ox0..oy3`` the four oriented-box corners, in pixels;
            ``rel_position`` (nullable) and ``duration`` (``""`` when absent) come from ``comments``.
        issues: Everything dropped, repaired or suspicious, counted.
        sources: The files read.
    """

    images: pd.DataFrame
    annotations: pd.DataFrame
    issues: tuple[LoadIssue, ...]
    sources: tuple[Path, ...]

    def issues_text(self) -> list[str]:
        """One line per issue, for a CLI or an ``st.warning``."""
        return [i.text() for i in self.issues]

    @property
    def n_dropped(self) -> int:
        """Number of items (annotations or image records) dropped while reading."""
        return sum(i.count for i in self.issues if i.dropped)
