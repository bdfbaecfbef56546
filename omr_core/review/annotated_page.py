"""A DeepScoresV2 page's annotations as the reader's glyphs, with the note truth (pitch, duration) the engraver wrote."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from omr_core.errors import DataFormatError
from omr_core.review.reading import Glyph

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
