"""Notes read right: a page's reading scored against the note truth the engraver wrote into its annotations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from omr_core.review.annotated_page import NoteTruth
from omr_core.review.reading import Reading


@dataclass(frozen=True)
class WrongNote:
    """A note read wrong (or not read): where it is, what it is, what was read."""

    bbox: tuple[float, float, float, float]
    truth_pitch: str
    truth_quarter_length: Fraction | None
    read_pitch: str | None
    read_quarter_length: Fraction | None
    uncertain: tuple[str, ...]


@dataclass(frozen=True)
class NotesScore:
    """Notes read right on one page (or several, see `combine`).

    Attributes:
        notes: Notes with a known truth.
        pitch_right: Notes read with the right pitch (step, alteration, octave).
        both_right: Notes read with the right pitch and the right written duration.
        wrong: The notes not read fully right.
    """

    notes: int
    pitch_right: int
    both_right: int
    wrong: tuple[WrongNote, ...] = ()

    @property
    def pitch_share(self) -> float:
        """Share of notes with the right pitch (1.0 when there is nothing to read)."""
        return self.pitch_right / self.notes if self.notes else 1.0

    @property
    def both_share(self) -> float:
        """Share of notes with the right pitch and duration."""
        return self.both_right / self.notes if self.notes else 1.0


def combine(scores: Sequence[NotesScore]) -> NotesScore:
    """Several pages' scores as one."""
    return NotesScore(
        sum(s.notes for s in scores),
        sum(s.pitch_right for s in scores),
        sum(s.both_right for s in scores),
        tuple(w for s in scores for w in s.wrong),
    )


def notes_read_right(reading: Reading, truth: Sequence[NoteTruth], *, iou: float = 0.5) -> NotesScore:
    """Score a reading against the note truth: each true notehead is matched to the read note whose box
    overlaps it most (IoU >= ``iou``, one to one); a true note with no read note counts as wrong.

    Durations are compared as written (quarter lengths with dots and tuplets); grace notes by their
    written type too.
    """
    notes = list(reading.notes)
    pairs = _match([t.bbox for t in truth], [n.bbox for n in notes], iou)
    pitch_right = both = 0
    wrong: list[WrongNote] = []
    for ti, t in enumerate(truth):
        ni = pairs.get(ti)
        n = notes[ni] if ni is not None else None
        p_ok = n is not None and n.pitch == t.pitch
        d_ok = n is not None and t.quarter_length is not None and n.quarter_length == t.quarter_length
        pitch_right += p_ok
        both += p_ok and d_ok
        if not (p_ok and d_ok):
            wrong.append(
                WrongNote(
                    t.bbox,
                    t.pitch,
                    t.quarter_length,
                    n.pitch if n else None,
                    n.quarter_length if n else None,
                    n.uncertain if n else ("not read: no notehead matched",),
                )
            )
    return NotesScore(len(truth), pitch_right, both, tuple(wrong))


def _match(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], thr: float) -> dict[int, int]:
    """Greedy one-to-one box matching by IoU (index in ``a`` -> index in ``b``)."""
    if not a or not b:
        return {}
    A = np.asarray(a, dtype=np.float64)
    B = np.asarray(b, dtype=np.float64)
    ix0 = np.maximum(A[:, None, 0], B[None, :, 0])
    iy0 = np.maximum(A[:, None, 1], B[None, :, 1])
    ix1 = np.minimum(A[:, None, 2], B[None, :, 2])
    iy1 = np.minimum(A[:, None, 3], B[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (A[:, 2] - A[:, 0]) * (A[:, 3] - A[:, 1])
    area_b = (B[:, 2] - B[:, 0]) * (B[:, 3] - B[:, 1])
    ious = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
    out: dict[int, int] = {}
    used: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        i, j = divmod(int(flat), ious.shape[1])
        if ious[i, j] < thr:
            break
        if i in out or j in used:
            continue
        out[i] = j
        used.add(j)
    return out
