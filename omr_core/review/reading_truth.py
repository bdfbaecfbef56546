"""Notes read right: a page's reading scored against the note truth the engraver wrote into its annotations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.errors import DataFormatError
from omr_core.review.reading import Glyph, Reading

_PITCH = re.compile(r"(?:^|;)\s*pitch:\s*([A-G](?:#{1,2}|b{1,2})?-?\d+)\s*;")
_DURATION = re.compile(r"(?:^|;)\s*duration:\s*([^;]+);")
_GRACE = re.compile(r"(?:^|;)\s*grace:")
_DUR = re.compile(r"(long|breve|\d+)(\.*)(?:\*(\d+)/(\d+))?")
_DUR_QL = {"long": Fraction(16), "breve": Fraction(8)}


@dataclass(frozen=True)
class NoteTruth:
    """What the engraver says one notehead is.

    Attributes:
        ref: Annotation id.
        bbox: The notehead box.
        pitch: Scientific pitch (``F#5``).
        quarter_length: Written duration in quarter notes (dots and tuplet included).
        grace: A grace note.
    """

    ref: str
    bbox: tuple[float, float, float, float]
    pitch: str
    quarter_length: Fraction | None
    grace: bool


@dataclass(frozen=True)
class DeepScoresPage:
    """One page of a DeepScoresV2 annotation file, ready to read.

    Attributes:
        source: The JSON file.
        filename: The page's image file name (as the JSON has it).
        image: The image file when it is found next to the JSON (``images/`` or the same folder), else None.
        width: Page width.
        height: Page height.
        glyphs: Every deepscores-set annotation as a `Glyph` (``ref`` = annotation id).
        truth: Note truth of the noteheads that carry a ``pitch`` comment (empty for released DeepScoresV2).
    """

    source: Path
    filename: str
    image: Path | None
    width: int
    height: int
    glyphs: tuple[Glyph, ...]
    truth: tuple[NoteTruth, ...]


def duration_quarter_length(text: str) -> Fraction | None:
    """Quarter notes of a DeepScoresV2/verovio duration comment (``4``, ``8.``, ``4*2/3``, ``breve``)."""
    m = _DUR.fullmatch(text.strip())
    if not m:
        return None
    base, dots, a, b = m.groups()
    if base in _DUR_QL:
        ql = _DUR_QL[base]
    elif int(base) > 0:
        ql = Fraction(4, int(base))
    else:
        return None
    ql = ql * (2 - Fraction(1, 2 ** len(dots)))
    if a and b and int(b) > 0:
        ql = ql * Fraction(int(a), int(b))
    return ql


def note_truth(ref: str, bbox: Sequence[float], comment: str) -> NoteTruth | None:
    """The `NoteTruth` in one annotation's comments, or None when it has no ``pitch``."""
    m = _PITCH.search(comment or "")
    if not m:
        return None
    d = _DURATION.search(comment)
    return NoteTruth(
        ref,
        tuple(float(v) for v in bbox),  # type: ignore[arg-type]
        m.group(1),
        duration_quarter_length(d.group(1)) if d else None,
        bool(_GRACE.search(comment)),
    )


def load_deepscores_page(path: str | Path, page: str | int | None = None) -> DeepScoresPage:
    """One page of a DeepScoresV2 JSON file: its symbols, its note truth and its image when it is there.

    Args:
        path: ``deepscores_*.json`` (or a one-page file written by ``omr review --deepscores``).
        page: Image file name, or 0-based index in ``images`` (default: the first page).

    Raises:
        DataFormatError: The file is not DeepScoresV2 JSON, or the page is not in it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc}") from exc
    return deepscores_page_from_bytes(raw, path, page)


def deepscores_page_from_bytes(raw: bytes, source: str | Path, page: str | int | None = None) -> DeepScoresPage:
    """`load_deepscores_page` for JSON already in memory (an upload); ``source`` names it in messages and
    is where the page image is looked for (``images/`` next to it)."""
    import orjson

    from omr_core.classes import class_table

    path = Path(source)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DataFormatError(f"{path} is not JSON ({exc}); expected a DeepScoresV2 annotation file") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("annotations"), dict):
        raise DataFormatError(f"{path}: expected a DeepScoresV2 annotation file with 'images' (list) and 'annotations' (dict)")
    images: list[dict[str, Any]] = doc["images"]
    if not images:
        raise DataFormatError(f"{path} has no page in 'images'")
    if page is None:
        im = images[0]
    elif isinstance(page, int) or str(page).isdigit():
        k = int(page)
        if not 0 <= k < len(images):
            raise DataFormatError(f"{path} has {len(images)} pages; page index {k} is out of range (0-{len(images) - 1})")
        im = images[k]
    else:
        found = [i for i in images if i.get("filename") == page or Path(str(i.get("filename"))).name == Path(str(page)).name]
        if not found:
            raise DataFormatError(f"{path} has no page with filename {page!r} (first pages: {[i.get('filename') for i in images[:3]]})")
        im = found[0]
    table = class_table()
    names = {c.id: c.name for c in table.deepscores}
    anns = doc["annotations"]
    glyphs: list[Glyph] = []
    truth: list[NoteTruth] = []
    for key in im.get("ann_ids", []):
        a = anns.get(str(key))
        if not isinstance(a, dict):
            continue
        try:
            cat = int(a["cat_id"][0])
            bbox = tuple(float(v) for v in a["a_bbox"])
        except (KeyError, TypeError, ValueError, IndexError):
            raise DataFormatError(f"{path}: annotation {key} has no usable 'cat_id'/'a_bbox'") from None
        if cat not in names or len(bbox) != 4:
            continue
        glyphs.append(Glyph(bbox, names[cat], str(key)))  # type: ignore[arg-type]
        t = note_truth(str(key), bbox, str(a.get("comments", "")))
        if t is not None:
            truth.append(t)
    filename = str(im.get("filename", ""))
    image = next((p for p in (path.parent / "images" / filename, path.parent / filename) if filename and p.is_file()), None)
    return DeepScoresPage(path, filename, image, int(im.get("width", 0)), int(im.get("height", 0)), tuple(glyphs), tuple(truth))


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
