"""Read a page end to end: from a DeepScoresV2 page (ground truth) or from a review's detections and staves."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from omr_core.review.reading import Glyph, Reading, SymbolLike, _box, read_page, staves_from_boxes
from omr_core.review.reading_truth import DeepScoresPage
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
    syms: list[SymbolLike] = list(symbols)
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

        heads = [Notehead(_box(s.bbox), s.name) for s in syms if s.name.startswith("notehead")]
        if heads:
            rec = reconstruct(gray, heads, page=page)
            if "stem" not in has:
                syms += [Glyph(st.bbox, "stem", "rebuilt") for st in rec.stems]
                msgs.append(f"no stems among the symbols: {len(rec.stems)} stems rebuilt from the ink")
            if "ledgerLine" not in has:
                syms += [Glyph(ll.bbox, "ledgerLine", "rebuilt") for ll in rec.ledger_lines]
    t1 = time.perf_counter()
    reading = read_page(syms, staves, systems, binary=binary)
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
