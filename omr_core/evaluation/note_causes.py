"""Why a note was read wrong from a model's detections: the kind of symbol whose ground truth would have fixed it.

Each wrong note is explained by substitution: the page is read again with the detections of one kind of symbol
(accidentals, clefs, key signatures, flags, ...) replaced by the page's ground-truth symbols of that kind; the
first kind whose ground truth makes the note right is its cause, then told apart by what differs near the note
(a missed accidental, an extra one, a wrong one ...). A note wrong even from all ground-truth symbols is the
reader's own error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omr_core.evaluation.notes_score import NotesScore, WrongNote, notes_read_right
from omr_core.review.annotated_page import NoteTruth
from omr_core.review.reading import Glyph, Reading, SymbolLike, as_box, symbol_kind
from omr_core.review.reading_pipeline import pair_iou
from omr_core.review.staff import PageStaves

#: Kinds of symbol tried, in this order (the first whose ground truth fixes a note is its cause).
CAUSE_KINDS = ("notehead", "clef", "key", "accidental", "ledger", "stem", "flag", "beam", "dot", "tuplet", "rest", "time", "tie")
#: The cause of a note that is wrong even when read from the page's own symbols.
READER = "the reader (wrong from ground truth too)"
#: Several kinds of symbol at once (no single kind's ground truth fixes it).
SEVERAL = "several symbols"


@dataclass(frozen=True)
class ExplainedNote:
    """A wrong note and why.

    Attributes:
        wrong: What it is and what was read (`WrongNote`).
        pitch_cause: What made the pitch wrong ("" when the pitch is right).
        duration_cause: What made the duration wrong ("" when it is right).
    """

    wrong: WrongNote
    pitch_cause: str
    duration_cause: str

    @property
    def cause(self) -> str:
        """Both causes in one line (``missed accidental; missed flag``)."""
        return "; ".join(dict.fromkeys(c for c in (self.pitch_cause, self.duration_cause) if c))


def _kind(name: str) -> str:
    return "ledger" if name == "ledgerLine" else symbol_kind(name)


def _near(syms: Sequence[SymbolLike], kind: str, box: Sequence[float], left: float, right: float, up: float, down: float) -> list[SymbolLike]:
    x0, y0, x1, y1 = box
    return [
        s for s in syms
        if _kind(s.name) == kind and s.bbox[2] > x0 - left and s.bbox[0] < x1 + right and s.bbox[3] > y0 - up and s.bbox[1] < y1 + down
    ]


def _compare(truth: Sequence[SymbolLike], found: Sequence[SymbolLike], what: str) -> str:
    """``missed X`` / ``extra X`` / ``wrong X`` from the ground-truth and detected symbols near a note."""
    unmatched = list(found)
    wrong_name = False
    missed = False
    for t in truth:
        best = max(unmatched, key=lambda f: pair_iou(t.bbox, f.bbox), default=None)
        if best is None or pair_iou(t.bbox, best.bbox) < 0.3:
            missed = True
            continue
        unmatched.remove(best)
        wrong_name |= best.name != t.name
    if missed:
        return f"missed {what}"
    if unmatched:
        return f"extra {what}"
    if wrong_name:
        return f"wrong {what}"
    return what


def _label(kind: str, w: WrongNote, space: float, truth_syms: Sequence[SymbolLike], dets: Sequence[SymbolLike]) -> str:
    """Name the cause of kind ``kind`` by what differs between ground truth and detections near the note."""
    box = w.bbox
    sp = space
    if kind == "notehead":
        heads = _near(dets, "notehead", box, 0, 0, 0, 0)
        over = [h for h in heads if pair_iou(h.bbox, box) >= 0.3]
        if len(over) >= 2:
            return "duplicate notehead"
        if not over:
            return "missed notehead"
        h = max(over, key=lambda h: pair_iou(h.bbox, box))
        t = min(_near(truth_syms, "notehead", box, 0, 0, 0, 0), key=lambda g: -pair_iou(g.bbox, box), default=None)
        if t is not None and h.name != t.name:
            return f"wrong notehead ({h.name} for {t.name})"
        if abs((h.bbox[1] + h.bbox[3]) / 2 - (box[1] + box[3]) / 2) > 0.25 * sp:
            return "wrong staff position (notehead box off)"
        # its own head is right: a head missed or added beside it changed its chord, voice or measure length
        args = (box, 12 * sp, 12 * sp, 3 * sp, 3 * sp)
        got = _compare(_near(truth_syms, "notehead", *args), _near(dets, "notehead", *args), "notehead nearby")
        return got if got != "notehead nearby" else "a neighbouring notehead"
    if kind == "accidental":
        args = (box, 4 * sp, 0.0, 0.8 * sp, 0.8 * sp)
        got = _compare(_near(truth_syms, "accidental", *args), _near(dets, "accidental", *args), "accidental")
        return got if got != "accidental" else "accidental earlier in the measure"
    if kind == "flag":
        args = (box, 0.5 * sp, 2 * sp, 4 * sp, 4 * sp)
        return _compare(_near(truth_syms, "flag", *args), _near(dets, "flag", *args), "flag")
    if kind == "dot":
        args = (box, 0.0, 2 * sp, 0.8 * sp, 0.8 * sp)
        return _compare(_near(truth_syms, "dot", *args), _near(dets, "dot", *args), "augmentation dot")
    if kind == "tuplet":
        args = (box, 4 * sp, 4 * sp, 8 * sp, 8 * sp)
        return _compare(_near(truth_syms, "tuplet", *args), _near(dets, "tuplet", *args), "tuplet number")
    names = {"clef": "clef", "key": "key signature", "ledger": "ledger line", "stem": "stem", "beam": "beam",
             "tuplet": "tuplet number", "rest": "rest (measure length)", "time": "time signature", "tie": "tie"}
    if kind in ("clef", "key", "time"):
        staff_syms = lambda syms: [s for s in syms if _kind(s.name) == kind and abs((s.bbox[1] + s.bbox[3]) / 2 - (box[1] + box[3]) / 2) < 6 * sp and s.bbox[0] < box[0]]  # noqa: E731
        return _compare(staff_syms(truth_syms), staff_syms(dets), names[kind])
    return names.get(kind, kind)


def _read(gray: np.ndarray, symbols: Sequence[SymbolLike], page: PageStaves | None) -> Reading:
    from omr_core.review.reading_pipeline import read_symbols

    return read_symbols(gray, symbols, page=page)


def _by_truth(score: NotesScore) -> dict[tuple[float, ...], WrongNote]:
    return {tuple(w.bbox): w for w in score.wrong}


def explain_wrong_notes(
    gray: np.ndarray,
    detections: Sequence[SymbolLike],
    truth_symbols: Sequence[SymbolLike],
    truth: Sequence[NoteTruth],
    *,
    page: PageStaves | None = None,
    reading: Reading | None = None,
) -> tuple[NotesScore, list[ExplainedNote]]:
    """Score the reading of ``detections`` against the note truth and explain every wrong note.

    Args:
        gray: The page image.
        detections: The model's symbols on the page.
        truth_symbols: The page's ground-truth symbols (its DeepScoresV2 annotations).
        truth: The note truth (`DeepScoresPage.truth`).
        page: The page's staves (found once here when None).
        reading: The reading of ``detections`` when already done.

    Returns:
        The score and one `ExplainedNote` per wrong note (in the order of ``score.wrong``).
    """
    from omr_core.review.staff import NoStaffError, detect_staves

    if page is None:
        try:
            page = detect_staves(gray)
        except NoStaffError:
            page = None
    dets = list(detections)
    gts = [Glyph(as_box(s.bbox), s.name) for s in truth_symbols]
    base = reading if reading is not None else _read(gray, dets, page)
    score = notes_read_right(base, truth)
    if not score.wrong:
        return score, []
    space = float(np.median([s.space for s in page.staves])) if page is not None and page.staves else 10.0
    from_truth = _by_truth(notes_read_right(_read(gray, gts, page), truth))
    pitch_open = {tuple(w.bbox) for w in score.wrong if w.read_pitch != w.truth_pitch}
    dur_open = {tuple(w.bbox) for w in score.wrong if w.read_quarter_length != w.truth_quarter_length}
    pitch_cause: dict[tuple[float, ...], str] = {}
    dur_cause: dict[tuple[float, ...], str] = {}
    for key in list(pitch_open):
        t = from_truth.get(key)
        if t is not None and t.read_pitch != t.truth_pitch:
            pitch_cause[key] = READER
            pitch_open.discard(key)
    for key in list(dur_open):
        t = from_truth.get(key)
        if t is not None and t.read_quarter_length != t.truth_quarter_length:
            dur_cause[key] = READER
            dur_open.discard(key)
    wrong_by_key = {tuple(w.bbox): w for w in score.wrong}
    for kind in CAUSE_KINDS:
        if not pitch_open and not dur_open:
            break
        mixed = [s for s in dets if _kind(s.name) != kind] + [g for g in gts if _kind(g.name) == kind]
        still = _by_truth(notes_read_right(_read(gray, mixed, page), truth))
        for key in list(pitch_open):
            fixed = still.get(key)
            if fixed is None or fixed.read_pitch == fixed.truth_pitch:
                pitch_cause[key] = _label(kind, wrong_by_key[key], space, gts, dets)
                pitch_open.discard(key)
        for key in list(dur_open):
            fixed = still.get(key)
            if fixed is None or fixed.read_quarter_length == fixed.truth_quarter_length:
                dur_cause[key] = _label(kind, wrong_by_key[key], space, gts, dets)
                dur_open.discard(key)
    out = []
    for w in score.wrong:
        key = tuple(w.bbox)
        if w.read_pitch is None and w.read_quarter_length is None:
            label = _label("notehead", w, space, gts, dets)
            out.append(ExplainedNote(w, label, label))
            continue
        p = pitch_cause.get(key, SEVERAL if key in pitch_open else "")
        d = dur_cause.get(key, SEVERAL if key in dur_open else "")
        out.append(ExplainedNote(w, p, d))
    return score, out
