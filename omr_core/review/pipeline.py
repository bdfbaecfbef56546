"""Review one page end to end (detections, staves, rebuilt stems and ledger lines) and export the result."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.atomic import write_bytes
from omr_core.classes import group_color
from omr_core.raster import encode_png
from omr_core.review.inference import Detection, InferencePlan, LoadedModel, ModelInfo, plan_inference, predict
from omr_core.review.reconstruct import LedgerLine, Notehead, Stem, parse_noteheads, reconstruct
from omr_core.review.staff import NoStaffError, Staff, System, detect_staves, long_line_warning

#: Colours of the reconstructed layers.
LAYER_COLORS: dict[str, str] = {"staff": "#00a0ff", "stem": "#ff0044", "ledger": "#ff8800"}


@dataclass(frozen=True)
class ReviewResult:
    """Everything the review of one page produced.

    Attributes:
        source: Page file name.
        width: Page width in pixels.
        height: Page height in pixels.
        detections: Model detections (empty without a model).
        noteheads: Noteheads reconstruction started from (model noteheads, or the uploaded list).
        staves: Detected staves.
        systems: Staves grouped into systems.
        stems: Reconstructed stems (``noteheads`` index into `noteheads`).
        ledger_lines: Reconstructed ledger lines.
        messages: Things people should know (no staff found, staves probably missed, model warnings…).
        timings: Seconds per stage (``inference``, ``staff``, ``reconstruct``, ``total``).
        model: The model's class information, when a model ran.
        inference: How the model was run (whole page or tiles, imgsz), when a model ran.
    """

    source: str
    width: int
    height: int
    detections: tuple[Detection, ...] = ()
    noteheads: tuple[Notehead, ...] = ()
    staves: tuple[Staff, ...] = ()
    systems: tuple[System, ...] = ()
    stems: tuple[Stem, ...] = ()
    ledger_lines: tuple[LedgerLine, ...] = ()
    messages: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    model: ModelInfo | None = None
    inference: InferencePlan | None = None

    def counts(self) -> dict[str, int]:
        """Detections per class name plus the reconstructed layers, most frequent first."""
        c: dict[str, int] = {}
        for d in self.detections:
            c[d.name] = c.get(d.name, 0) + 1
        out = dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
        out["staff (detected)"] = len(self.staves)
        out["stem (rebuilt)"] = len(self.stems)
        out["ledgerLine (rebuilt)"] = len(self.ledger_lines)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON export: detections, staves, systems, stems, ledger lines (page pixels) and run details."""
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "model": None
            if self.model is None
            else {"path": self.model.path, "classes": len(self.model.names), "warning": self.model.warning,
                  "scale": self.model.scale.to_dict() if self.model.scale else None},
            "inference": self.inference.to_dict() if self.inference else None,
            "detections": [d.to_dict() for d in self.detections],
            "noteheads": [{"bbox": [round(v, 2) for v in h.bbox], "name": h.name} for h in self.noteheads],
            "staves": [s.to_dict() for s in self.staves],
            "systems": [s.to_dict() for s in self.systems],
            "stems": [s.to_dict() for s in self.stems],
            "ledger_lines": [ll.to_dict() for ll in self.ledger_lines],
            "messages": list(self.messages),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def to_deepscores(self, filename: str | None = None) -> dict[str, Any]:
        """The page as a DeepScoresV2 annotation file (detections + staves, stems, ledger lines).

        Classes outside the deepscores annotation set are left out. Comments say where each box came from
        (``source:model;conf:…`` or ``source:reconstructed``) so the audit can tell them apart.
        """
        from omr_core.classes import class_table

        table = class_table()
        cats = {
            str(c.id): {"name": c.name, "annotation_set": c.annotation_set, "color": c.color}
            for c in table.categories
        }
        anns: dict[str, Any] = {}

        def add(name: str, bbox: Sequence[float], comment: str) -> None:
            x0, y0, x1, y1 = (round(float(v), 1) for v in bbox)
            cat = table.by_name(name)
            key = str(len(anns) + 1)
            anns[key] = {
                "a_bbox": [x0, y0, x1, y1],
                "o_bbox": [x1, y1, x1, y0, x0, y0, x0, y1],
                "cat_id": [str(cat.id), str(cat.muscima_id) if cat.muscima_id is not None else None],
                "area": int(round(max(0.0, x1 - x0) * max(0.0, y1 - y0))),
                "img_id": "1",
                "comments": f"instance:#{len(anns) + 1:06x};{comment}",
            }

        deepscores = {c.name for c in table.deepscores}
        for d in self.detections:
            if d.name in deepscores:
                add(d.name, d.bbox, f"source:model;conf:{d.conf:.3f};")
        for s in self.staves:
            half = s.line_thickness / 2
            top = min(s.y_at(0, s.x0), s.y_at(0, s.x1)) - half
            bot = max(s.y_at(4, s.x0), s.y_at(4, s.x1)) + half
            add("staff", (s.x0, top, s.x1, bot), "source:reconstructed;")
        for st in self.stems:
            add("stem", st.bbox, f"source:reconstructed;evidence:{st.source};")
        for ll in self.ledger_lines:
            add("ledgerLine", ll.bbox, "source:reconstructed;")
        return {
            "info": {"description": f"omr review of {self.source}", "version": "2.0", "contributor": "omr-dashboard review"},
            "annotation_sets": ["deepscores", "muscima++"],
            "categories": cats,
            "images": [
                {
                    "id": 1,
                    "filename": filename or Path(self.source).name,
                    "width": self.width,
                    "height": self.height,
                    "ann_ids": list(anns),
                }
            ],
            "annotations": anns,
        }


def noteheads_from_detections(detections: Sequence[Detection]) -> list[Notehead]:
    """The detections that are noteheads, as reconstruction input."""
    return [Notehead(d.bbox, d.name) for d in detections if d.name.startswith("notehead")]


def review_page(
    gray: np.ndarray,
    *,
    source: str = "page",
    model: LoadedModel | None = None,
    noteheads: Sequence[Notehead | dict[str, Any]] | None = None,
    conf: float = 0.25,
    iou: float = 0.5,
    imgsz: int | None = None,
    tile: bool | None = None,
    overlap: float | None = None,
    device: str | None = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> ReviewResult:
    """Review one page: run the model (if any), find the staves, rebuild stems and ledger lines.

    Reconstruction starts from ``noteheads`` when given (e.g. an uploaded ``heads.json``), else from the
    model's notehead detections. A page without staves is not an error here: the result says so in
    ``messages`` and keeps the detections.

    Args:
        gray: The page (uint8 grayscale).
        source: Name for reports.
        model: A model from `load_model`, or None for staff detection (and reconstruction) only.
        noteheads: Notehead boxes to rebuild from (overrides the model's).
        conf: Detection confidence threshold.
        iou: NMS IoU threshold.
        imgsz: Inference size; None: the size the model was trained at (see `plan_inference`).
        tile: Tiled inference (see `predict`); None: tiled exactly when the model was trained on tiles.
        overlap: Tile overlap; None: the training overlap.
        device: Torch device.
        progress: Called with (steps done, steps total).

    Raises:
        ModelError: When prediction fails.
        DataFormatError: When ``noteheads`` is malformed.
    """
    t0 = time.perf_counter()
    msgs: list[str] = []
    steps = 3
    tick = (lambda i: progress(i, steps)) if progress else (lambda i: None)
    dets: list[Detection] = []
    plan: InferencePlan | None = None
    if model is not None:
        plan = plan_inference(model.info, int(gray.shape[1]), int(gray.shape[0]), imgsz=imgsz, tile=tile, overlap=overlap)
        dets = predict(model, gray, conf=conf, iou=iou, imgsz=plan.imgsz, tile=plan.tile is not None,
                       tile_size=plan.tile, overlap=plan.overlap, device=device)
        if model.info.warning:
            msgs.append(model.info.warning)
        if plan.note:
            msgs.append(plan.note)
    tick(1)
    t1 = time.perf_counter()
    heads = parse_noteheads(list(noteheads)) if noteheads is not None else noteheads_from_detections(dets)

    def result(**parts: Any) -> ReviewResult:
        return ReviewResult(source=source, width=int(gray.shape[1]), height=int(gray.shape[0]), detections=tuple(dets),
                            noteheads=tuple(heads), messages=tuple(msgs), model=model.info if model else None,
                            inference=plan, **parts)

    try:
        page = detect_staves(gray)
    except NoStaffError as exc:
        msgs.append(str(exc))
        tick(3)
        return result(
            timings={"inference": t1 - t0, "staff": time.perf_counter() - t1, "reconstruct": 0.0, "total": time.perf_counter() - t0},
        )
    tick(2)
    missed = long_line_warning(page)
    if missed:
        msgs.append(missed)
    t2 = time.perf_counter()
    rec = reconstruct(gray, heads, page=page)
    t3 = time.perf_counter()
    tick(3)
    if model is not None and not heads and noteheads is None:
        msgs.append("the model found no noteheads at this confidence: no stems or ledger lines were rebuilt")
    return result(
        staves=rec.staves,
        systems=rec.systems,
        stems=rec.stems,
        ledger_lines=rec.ledger_lines,
        timings={"inference": t1 - t0, "staff": t2 - t1, "reconstruct": t3 - t2, "total": t3 - t0},
    )


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def draw_overlay(
    gray: np.ndarray,
    result: ReviewResult,
    *,
    groups: set[str] | None = None,
    layers: Sequence[str] = ("staff", "stem", "ledger", "boxes"),
) -> np.ndarray:
    """The annotated page as an RGB array: boxes in their group colour, staff lines, stems and ledger lines.

    No text is drawn on the page, so nothing covers the music (the dashboard shows names on hover).
    """
    import cv2

    img = cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2RGB)
    # Lighten the page so coloured marks stand out.
    img = (img.astype(np.uint16) * 3 // 4 + 64).astype(np.uint8)
    if "staff" in layers:
        col = _rgb(LAYER_COLORS["staff"])
        for s in result.staves:
            for i in range(5):
                p0 = (int(round(s.x0)), int(round(s.y_at(i, s.x0))))
                p1 = (int(round(s.x1)), int(round(s.y_at(i, s.x1))))
                cv2.line(img, p0, p1, col, 1, cv2.LINE_AA)
    if "boxes" in layers:
        # Without a model the noteheads reconstruction started from are the boxes.
        boxes = [(d.bbox, d.group) for d in result.detections] or [(n.bbox, "noteheads") for n in result.noteheads]
        for bbox, group in boxes:
            if groups is not None and result.detections and group not in groups:
                continue
            bx0, by0, bx1, by1 = (int(round(v)) for v in bbox)
            cv2.rectangle(img, (bx0, by0), (max(bx0, bx1 - 1), max(by0, by1 - 1)), _rgb(group_color(group)), 1)
    if "ledger" in layers:
        col = _rgb(LAYER_COLORS["ledger"])
        for ll in result.ledger_lines:
            lx0, ly0, lx1, ly1 = ll.bbox
            yc = int(round((ly0 + ly1) / 2))
            cv2.line(img, (int(round(lx0)), yc), (int(round(lx1)) - 1, yc), col, 2)
    if "stem" in layers:
        col = _rgb(LAYER_COLORS["stem"])
        for st in result.stems:
            sx0, sy0, sx1, sy1 = st.bbox
            xc = int(round((sx0 + sx1) / 2))
            cv2.line(img, (xc, int(round(sy0))), (xc, int(round(sy1)) - 1), col, 2)
    return img


def json_bytes(obj: Any) -> bytes:
    """Indented JSON bytes (orjson; NumPy scalars accepted)."""
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as JSON atomically (temp file + rename)."""
    return write_bytes(path, json_bytes(obj))


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> Path:
    """Write an RGB array as PNG atomically."""
    return write_bytes(path, encode_png(rgb))
