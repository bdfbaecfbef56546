"""Read a page end to end: from a DeepScoresV2 page (ground truth) or from a review's detections and staves."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from omr_core.review.annotated_page import DeepScoresPage
from omr_core.review.reading import Glyph, Reading, SymbolLike, as_box, read_page, staves_from_boxes, symbol_kind
from omr_core.review.staff import NoStaffError, PageStaves, detect_staves


def read_symbols(
    gray: np.ndarray | None,
    symbols: Sequence[SymbolLike],
    *,
    page: PageStaves | None = None,
) -> Reading:
    """Read a page from any symbol boxes (ground truth or detections) and, when given, the page image.

    Staves come from the image (`detect_staves`) or, without one, from ``staff`` boxes. When the symbols
    hold no stems but noteheads (a model trained without the thin classes), stems are rebuilt from the ink
    (`reconstruct`) so rhythm can still be read.
    """
    t0 = time.perf_counter()
    msgs: list[str] = []
    syms, dropped = drop_duplicates(symbols)
    if dropped:
        msgs.append(f"{dropped} duplicate detections dropped (two classes of one kind on one symbol: the more confident kept)")
    binary = None
    if gray is not None:
        try:
            page = page or detect_staves(gray)
        except NoStaffError as exc:
            msgs.append(str(exc))
            page = None
    if page is not None:
        staves, systems, binary = list(page.staves), list(page.systems), page.binary
    else:
        staves, systems = staves_from_boxes(syms), None
        if gray is None and staves:
            msgs.append("staves taken from the 'staff' boxes (no page image)")
    has = {s.name for s in syms}
    if gray is not None and page is not None and ("stem" not in has or "ledgerLine" not in has):
        from omr_core.review.reconstruct import Notehead, reconstruct

        heads = [Notehead(as_box(s.bbox), s.name) for s in syms if s.name.startswith("notehead")]
        if heads:
            rec = reconstruct(gray, heads, page=page)
            if "stem" not in has:
                syms += [Glyph(st.bbox, "stem", "rebuilt") for st in rec.stems]
                msgs.append(f"no stems among the symbols: {len(rec.stems)} stems rebuilt from the ink")
            if "ledgerLine" not in has:
                syms += [Glyph(ll.bbox, "ledgerLine", "rebuilt") for ll in rec.ledger_lines]
    t1 = time.perf_counter()
    reading = read_page(syms, staves, systems, binary=binary, beams_from_ink="beam" not in has)
    timings = dict(reading.timings)
    timings["staves"] = t1 - t0
    timings["total"] = time.perf_counter() - t0
    return Reading(
        reading.staves,
        reading.systems,
        reading.barlines,
        reading.notes,
        reading.rests,
        reading.contexts,
        tuple(msgs) + reading.messages,
        timings,
    )


#: Kinds of symbol that never overlap their own kind on a page: two boxes of them on one spot are one symbol.
_ONE_PER_SPOT = frozenset({"notehead", "accidental", "key", "clef", "rest", "flag", "time", "dot", "tuplet"})
#: Box IoU at which two detections of one kind are one symbol.
DUPLICATE_IOU = 0.5


def drop_duplicates(symbols: Sequence[SymbolLike]) -> tuple[list[SymbolLike], int]:
    """Drop detections of one kind (two notehead classes, two accidentals ...) on the same spot as a more
    confident one (IoU >= `DUPLICATE_IOU`): Ultralytics' NMS is per class, so a head can come out as
    noteheadBlackOnLine and noteheadBlackInSpace at once. Symbols without a confidence (ground truth) are kept.
    (Detections of different kinds on one spot are left: dropping the less confident one measured worse.)

    Returns:
        The symbols kept (in their order) and how many were dropped.
    """
    syms = list(symbols)
    confs = [getattr(s, "conf", None) for s in syms]
    order = sorted((i for i, c in enumerate(confs) if c is not None and symbol_kind(syms[i].name) in _ONE_PER_SPOT),
                   key=lambda i: -float(confs[i]))  # type: ignore[arg-type]
    kept: list[tuple[str, tuple[float, float, float, float]]] = []
    drop: set[int] = set()
    for i in order:
        box, kind = as_box(syms[i].bbox), symbol_kind(syms[i].name)
        if any(k == kind and pair_iou(box, b) >= DUPLICATE_IOU for k, b in kept):
            drop.add(i)
        else:
            kept.append((kind, box))
    return [s for i, s in enumerate(syms) if i not in drop], len(drop)


def pair_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def read_deepscores_page(page: DeepScoresPage) -> Reading:
    """Read a DeepScoresV2 page from its own annotations (ground truth), with its image when it is there."""
    gray = None
    if page.image is not None:
        from omr_core.review.images import load_page

        gray = load_page(page.image).gray
    return read_symbols(gray, page.glyphs)


def read_review(gray: np.ndarray, detections: Sequence[SymbolLike]) -> Reading:
    """Read a page from a model's detections (`review_page` output) on its image.

    Any symbol list works (tests pass ground-truth boxes as "detections"); stems and ledger lines the model
    does not detect are rebuilt from the ink.
    """
    return read_symbols(gray, detections)
