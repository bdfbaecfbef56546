"""Rebuild stems and ledger lines from notehead boxes, the page's staves and the ink around each notehead."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omr_core.errors import DataFormatError
from omr_core.review.staff import PageStaves, Staff, System, detect_staves

#: Fallback stem length from the notehead centre, in staff spaces (engraving rule).
STEM_SPACES = 3.5
#: Where a stem starts, measured from the notehead centre towards the stem end, in staff spaces.
STEM_ATTACH = 0.15
#: How far a ledger line reaches past the notehead on each side when the ink cannot tell, in staff spaces.
LEDGER_EXTENSION = 0.27


@dataclass(frozen=True)
class Notehead:
    """One notehead box in page pixels with its DeepScoresV2 class name."""

    bbox: tuple[float, float, float, float]
    name: str

    @property
    def stemmed(self) -> bool:
        """Whole and double-whole notes have no stem; every other notehead has one."""
        return "Whole" not in self.name


@dataclass(frozen=True)
class Stem:
    """A reconstructed stem.

    Attributes:
        bbox: ``(x0, y0, x1, y1)`` in page pixels.
        noteheads: Indices of the noteheads it carries (one for a single note, several for a chord).
        direction: ``"up"`` or ``"down"``.
        source: ``"ink"`` when measured on the page, ``"rule"`` when the engraving rule filled in.
    """

    bbox: tuple[float, float, float, float]
    noteheads: tuple[int, ...]
    direction: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of `omr reconstruct` (``bbox``, ``noteheads``, plus ``direction`` and ``source``)."""
        return {
            "bbox": [round(v, 2) for v in self.bbox],
            "noteheads": list(self.noteheads),
            "direction": self.direction,
            "source": self.source,
        }


@dataclass(frozen=True)
class LedgerLine:
    """A reconstructed ledger line.

    Attributes:
        bbox: ``(x0, y0, x1, y1)`` in page pixels.
        staff: Index of the staff it extends.
        position: Staff position in half spaces above the bottom line (10, 12, … above; -2, -4, … below).
        noteheads: Indices of the noteheads that need it.
        confirmed: True when ink was found where the line should be.
    """

    bbox: tuple[float, float, float, float]
    staff: int
    position: int
    noteheads: tuple[int, ...]
    confirmed: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of `omr reconstruct` (``bbox`` plus details)."""
        return {
            "bbox": [round(v, 2) for v in self.bbox],
            "staff": self.staff,
            "position": self.position,
            "noteheads": list(self.noteheads),
            "confirmed": self.confirmed,
        }


@dataclass(frozen=True)
class Reconstruction:
    """Everything rebuilt on one page.

    Attributes:
        staves: The staves found on the page.
        systems: Staves grouped into systems.
        stems: Reconstructed stems.
        ledger_lines: Reconstructed ledger lines.
        notehead_staff: Staff index of every input notehead (-1 when the page has no staff).
        timings: Seconds spent per stage (``staff``, ``stems``, ``ledger_lines``).
    """

    staves: tuple[Staff, ...]
    systems: tuple[System, ...]
    stems: tuple[Stem, ...]
    ledger_lines: tuple[LedgerLine, ...]
    notehead_staff: tuple[int, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The output schema of `omr reconstruct`: ``staves``, ``systems``, ``stems``, ``ledger_lines``."""
        return {
            "staves": [s.to_dict() for s in self.staves],
            "systems": [s.to_dict() for s in self.systems],
            "stems": [s.to_dict() for s in self.stems],
            "ledger_lines": [ll.to_dict() for ll in self.ledger_lines],
        }


def parse_noteheads(items: Iterable[Any], *, source: str = "noteheads") -> list[Notehead]:
    """Validate a notehead list (``[{"bbox": [x0, y0, x1, y1], "name": "noteheadBlackOnLine"}, …]``).

    Names are checked against the DeepScoresV2 table; ``legerLine``-style aliases are accepted.

    Raises:
        DataFormatError: When an entry has no 4-number bbox or its name is not a notehead class.
    """
    from omr_core.classes import class_table

    table = class_table()
    out: list[Notehead] = []
    if not isinstance(items, (list, tuple)):
        raise DataFormatError(f"{source}: expected a JSON list of {{'bbox': [x0, y0, x1, y1], 'name': ...}} objects")
    for i, item in enumerate(items):
        if isinstance(item, Notehead):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise DataFormatError(f"{source}[{i}]: expected an object with 'bbox' and 'name', got {type(item).__name__}")
        bbox = item.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise DataFormatError(f"{source}[{i}]: 'bbox' must be [x0, y0, x1, y1], got {bbox!r}")
        try:
            x0, y0, x1, y1 = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise DataFormatError(f"{source}[{i}]: 'bbox' must hold 4 numbers, got {bbox!r}") from None
        if not all(np.isfinite([x0, y0, x1, y1])) or x1 < x0 or y1 < y0:
            raise DataFormatError(f"{source}[{i}]: 'bbox' must be finite with x0 <= x1 and y0 <= y1, got {bbox!r}")
        name = str(item.get("name", "noteheadBlackOnLine"))
        try:
            name = table.canonical_name(name)
        except Exception as exc:
            raise DataFormatError(f"{source}[{i}]: {exc}") from None
        if not name.startswith("notehead"):
            raise DataFormatError(f"{source}[{i}]: {name!r} is not a notehead class (expected notehead…)")
        out.append(Notehead((x0, y0, x1, y1), name))
    return out


def reconstruct(
    gray: np.ndarray,
    noteheads: Sequence[Notehead | Mapping[str, Any]],
    *,
    page: PageStaves | None = None,
) -> Reconstruction:
    """Rebuild stems and ledger lines on a page from its notehead boxes.

    Stems: for every notehead that takes a stem, vertical ink is measured next to it on the four possible
    sides (right going up, left going down, and the two chord-second cases); the longest run wins and ends
    where the ink ends (so beamed notes stop at their beam). Noteheads with no usable ink get the engraving
    rule: 3.5 staff spaces, up below the middle line, down on or above it. Noteheads whose runs share a column
    form a chord with one stem. Ledger lines: the number follows from the notehead's staff position, each
    spans the notehead plus the extension found in the ink (or the default extension), merged per chord.

    Args:
        gray: The page as a uint8 grayscale (or RGB) array.
        noteheads: Notehead boxes with DeepScoresV2 names (`Notehead` or mappings with ``bbox``/``name``).
        page: Staff detection result for the page (computed when None).

    Returns:
        The staves, systems, stems and ledger lines.

    Raises:
        NoStaffError: When no staff is found on the page.
        DataFormatError: When a notehead entry is malformed.
    """
    import time

    t0 = time.perf_counter()
    heads = parse_noteheads(list(noteheads))
    if page is None:
        page = detect_staves(gray)
    t1 = time.perf_counter()
    ink = page.binary
    staves = list(page.staves)
    if not heads or not staves:
        return Reconstruction(tuple(staves), page.systems, (), (), tuple(-1 for _ in heads), {"staff": t1 - t0})
    boxes = np.array([h.bbox for h in heads], dtype=np.float64)
    # Heads reaching past the page edge (detections, hand-written heads.json) are measured on the page part only.
    ph, pw = ink.shape[:2]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, pw)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, ph)
    staff_idx = _assign_staves(boxes, staves)
    stems = _stems(ink, boxes, heads, staff_idx, staves)
    t2 = time.perf_counter()
    ledgers = _ledger_lines(ink, boxes, heads, staff_idx, staves, stems)
    t3 = time.perf_counter()
    return Reconstruction(
        staves=tuple(staves),
        systems=page.systems,
        stems=tuple(stems),
        ledger_lines=tuple(ledgers),
        notehead_staff=tuple(int(v) for v in staff_idx),
        timings={"staff": t1 - t0, "stems": t2 - t1, "ledger_lines": t3 - t2},
    )


# --------------------------------------------------------------------------------------------- staves


def _staff_arrays(staves: Sequence[Staff]) -> dict[str, np.ndarray]:
    return {
        "top": np.array([s.lines_y[0] for s in staves]),
        "bottom": np.array([s.lines_y[4] for s in staves]),
        "xc": np.array([s.xc for s in staves]),
        "slope": np.array([s.slope for s in staves]),
        "space": np.array([s.space for s in staves]),
        "thick": np.array([s.line_thickness for s in staves]),
        "x0": np.array([s.x0 for s in staves]),
        "x1": np.array([s.x1 for s in staves]),
    }


def _assign_staves(boxes: np.ndarray, staves: Sequence[Staff]) -> np.ndarray:
    """Index of the staff each notehead belongs to: the nearest staff vertically (0 inside it)."""
    sa = _staff_arrays(staves)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    dx = cx[:, None] - sa["xc"][None, :]
    top = sa["top"][None, :] + sa["slope"][None, :] * dx
    bot = sa["bottom"][None, :] + sa["slope"][None, :] * dx
    dist = np.maximum(top - cy[:, None], 0) + np.maximum(cy[:, None] - bot, 0)
    # A note far left/right of a staff's extent (another column of staves) should not pick that staff.
    outside = np.maximum(sa["x0"][None, :] - cx[:, None], 0) + np.maximum(cx[:, None] - sa["x1"][None, :], 0)
    return np.asarray(np.argmin(dist + 4 * outside, axis=1), dtype=np.int64)


def _positions(
    boxes: np.ndarray,
    heads: Sequence[Notehead],
    staff_idx: np.ndarray,
    staves: Sequence[Staff],
    sa: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Integer staff position of each notehead (half spaces above the bottom line), snapped by its name.

    ``sa`` is `_staff_arrays` of ``staves`` when the caller has it (one call per chord on dense pages).
    """
    sa = _staff_arrays(staves) if sa is None else sa
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    k = staff_idx
    bottom = sa["bottom"][k] + sa["slope"][k] * (cx - sa["xc"][k])
    raw = (bottom - cy) / (sa["space"][k] / 2)
    pos = np.rint(raw).astype(np.int64)
    # When the box is ambiguous (a detector's box drifts), the class name says line or space: snap to the
    # nearest position of that parity. A clear position wins over the name: names may be relative to the
    # nearest staff, which for a note between staves is not the staff whose ledger lines it sits on.
    on_line = np.array(["OnLine" in h.name for h in heads])
    in_space = np.array(["InSpace" in h.name for h in heads])
    even = 2 * np.rint(raw / 2).astype(np.int64)
    odd = 2 * np.floor(raw / 2).astype(np.int64) + 1
    unclear = np.abs(raw - pos) > 0.3
    pos = np.where(unclear & on_line, even, np.where(unclear & in_space, odd, pos))
    return pos


# ---------------------------------------------------------------------------------------------- stems


def _runs(
    ink: np.ndarray, cols: np.ndarray, start: np.ndarray, step: int, length: int, lead: int, gap: int
) -> np.ndarray:
    """Length of the ink run in each column, scanning ``step`` (+1 down, -1 up) from ``start``.

    The run may begin up to ``lead`` rows after the start (the stem attaches a little off the notehead centre)
    and tolerates white gaps of up to ``gap`` rows (scan noise). Returns the index (rows from ``start``) just
    past the last ink row; 0 when there is no ink within ``lead`` rows.

    Args:
        ink: Page ink mask (bool, H×W).
        cols: (N, C) column per candidate.
        start: (N,) start row per candidate.
        step: +1 to scan down, -1 to scan up.
        length: Rows scanned.
        lead: Rows in which the run must begin.
        gap: Longest white gap bridged.
    """
    h, w = ink.shape
    n, c = cols.shape
    ks = np.arange(length)
    rows = start[:, None] + step * ks[None, :]  # (N, L)
    valid_r = (rows >= 0) & (rows < h)
    rows_c = np.clip(rows, 0, h - 1)
    cols_c = np.clip(cols, 0, w - 1)
    valid_c = (cols >= 0) & (cols < w)
    flat = rows_c[:, None, :] * w + cols_c[:, :, None]  # (N, C, L)
    v = np.take(ink.ravel(), flat) & valid_r[:, None, :] & valid_c[:, :, None]
    first = np.argmax(v[:, :, :lead], axis=2)
    has = v[:, :, :lead].any(axis=2)
    # A run ends at the first white stretch longer than `gap` after it began.
    white = ~v
    stretch = white[:, :, : length - gap]
    for g in range(1, gap + 1):
        stretch = stretch & white[:, :, g : length - gap + g]
    after = ks[None, None, : length - gap] >= first[:, :, None]
    ends = stretch & after
    end = np.where(ends.any(axis=2), np.argmax(ends, axis=2), length)
    return np.where(has, end, 0)


@dataclass(frozen=True)
class StemSearch:
    """Tuning of the stem search, gathered from `_stems` (tuned on engraved and DeepScoresV2 pages).

    Attributes:
        inner: Columns examined inside the head on each side, as a fraction of the median head width…
        min_inner: …and at least this many.
        outer: Columns examined outside the box edge (detector boxes are off by a pixel or two), fraction…
        min_outer: …and at least this many.
        lead: The run must begin within this fraction of the head height from where the scan starts…
        min_lead: …or this many rows.
        start: The scan starts this fraction of the head height past the centre (inside the head).
        window: Scan length in staff spaces: the longest chord plus its stem.
        rescan: Where a run reached the window's end (long chords, beams), scan again this many times further.
        gap: White pixels a run may cross (scan noise, a thin beam gap).
        width_px: A neighbouring column whose run reaches within ``max(width_px, width_frac * reach)`` of
            the best one belongs to the stem's width…
        width_frac: …see ``width_px``.
        min_length: Shortest stem, in staff spaces, measured past the head.
        two_voices: Both usual stems at least this long (staff spaces): two voices share the notehead.
        join_px: A notehead without ink evidence joins a chord stem this close horizontally (px)…
        join_spaces: …reaching to within this many staff spaces of its centre.
        middle_line: Staff positions below this (the middle line) take the rule's stem up, others down.
    """

    inner: float = 0.3
    min_inner: int = 3
    outer: float = 0.1
    min_outer: int = 2
    lead: float = 0.6
    min_lead: int = 2
    start: float = 0.25
    window: float = 7.0
    rescan: int = 4
    gap: int = 2
    width_px: float = 2.0
    width_frac: float = 0.08
    min_length: float = 1.0
    two_voices: float = 2.0
    join_px: float = 2.0
    join_spaces: float = 1.0
    middle_line: int = 4


DEFAULT_STEM_SEARCH = StemSearch()

#: The four sides a stem can take, as (name, right column?, going up?): the usual right-up and left-down
#: first, then the chord seconds (left-up, right-down).
_SIDES = (("RU", True, True), ("LD", False, False), ("LU", False, True), ("RD", True, False))

# A side's best run per stemmed head: (length past the head, stem x0, stem x1, row where the run ends).
_Side = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Heads:
    """The stemmed noteheads being searched, as arrays (one row each)."""

    idx: np.ndarray  # indices into the page's noteheads
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    cy: np.ndarray
    sp: np.ndarray  # staff space of each head's staff
    attach: np.ndarray  # where a stem starts, from the centre (px)


def _stems(
    ink: np.ndarray,
    boxes: np.ndarray,
    heads: Sequence[Notehead],
    staff_idx: np.ndarray,
    staves: Sequence[Staff],
    prm: StemSearch = DEFAULT_STEM_SEARCH,
) -> list[Stem]:
    """Find the stem of every stemmed notehead (ink first, engraving rule as fallback) and merge chords."""
    sa = _staff_arrays(staves)
    idx = np.nonzero(np.array([h.stemmed for h in heads]))[0]
    if idx.size == 0:
        return []
    b = boxes[idx]
    sp = sa["space"][staff_idx[idx]]
    hd = _Heads(idx, b[:, 0], b[:, 1], b[:, 2], b[:, 3], (b[:, 1] + b[:, 3]) / 2, sp, STEM_ATTACH * sp)
    med_sp = float(np.median(sp))
    sides = _scan_sides(ink, boxes, hd, med_sp, prm)
    stems = _merge_stems(_ink_pieces(hd, sides, prm), med_sp)
    extra = _unclaimed_heads(stems, hd, _positions(boxes, heads, staff_idx, staves), float(np.median(sa["thick"])), prm)
    out = stems + extra
    out.sort(key=lambda s: (s.bbox[0], s.bbox[1]))
    return out


def _scan_sides(ink: np.ndarray, boxes: np.ndarray, hd: _Heads, med_sp: float, prm: StemSearch) -> dict[str, _Side]:
    """Measure vertical ink next to every head on each of the four sides; the best column of each side."""
    w = np.maximum(hd.x1 - hd.x0, 1.0)
    hgt = np.maximum(hd.y1 - hd.y0, 1.0)
    # Columns examined on each side: a part of the head inside the box and a little outside.
    inner = max(prm.min_inner, int(np.ceil(prm.inner * float(np.median(w)))))
    outer = max(prm.min_outer, int(np.ceil(prm.outer * float(np.median(w)))))
    offs = np.arange(-inner, outer + 1)  # relative to the right edge, going right
    right_cols = (np.floor(hd.x1).astype(np.int64) - 1)[:, None] + offs[None, :]
    left_cols = np.floor(hd.x0).astype(np.int64)[:, None] - offs[None, :]
    # Scan from a little before the centre (the run must start inside the head) over the longest chord + stem.
    lead_max = int(np.maximum(prm.min_lead, np.ceil(prm.lead * hgt)).astype(np.int64).max())
    start_up = np.floor(hd.cy + prm.start * hgt).astype(np.int64)
    start_dn = np.floor(hd.cy - prm.start * hgt).astype(np.int64)
    length = int(np.ceil(prm.window * med_sp))
    gap = prm.gap
    # Where a run ends inside another notehead it is the inside of a chord, not a stem end.
    hmask = np.zeros(ink.shape, dtype=bool)
    hh, ww = ink.shape
    for bx0, by0, bx1, by1 in boxes:
        hmask[max(0, int(by0) - 1) : max(0, int(np.ceil(by1)) + 1), max(0, int(bx0)) : max(0, int(np.ceil(bx1)))] = True
    rows = np.arange(hd.idx.size)
    cands: dict[str, _Side] = {}
    for name, right, up in _SIDES:
        cols = right_cols if right else left_cols
        start, step = (start_up, -1) if up else (start_dn, +1)
        end = _runs(ink, cols, start, step, length, lead_max, gap)
        # Long chords and beams: scan again, further, where a run reached the end of the window.
        more = np.nonzero((end >= length - gap).any(axis=1))[0]
        if more.size:
            end2 = _runs(ink, cols[more], start[more], step, prm.rescan * length, lead_max, gap)
            end[more] = np.maximum(end[more], end2)
        if step < 0:
            reach = start[:, None] - end + 1  # top row (continuous) of the run
            beyond = hd.y0[:, None] - reach
        else:
            reach = start[:, None] + end
            beyond = reach - hd.y1[:, None]
        end_row = np.clip(np.where(step < 0, reach, reach - 1), 0, hh - 1)
        in_head = hmask[end_row, np.clip(cols, 0, ww - 1)]
        beyond = np.where(in_head, -1e9, beyond)
        best = np.argmax(beyond, axis=1)
        bb = beyond[rows, best]
        # Stem width: neighbouring columns whose run reaches (almost) as far.
        close = beyond >= (bb[:, None] - np.maximum(prm.width_px, prm.width_frac * np.abs(bb[:, None])))
        ci = np.arange(cols.shape[1])[None, :]
        # Contiguous block around the best column.
        left_stop = np.where(~close & (ci < best[:, None]), ci, -1).max(axis=1) + 1
        right_stop = np.where(~close & (ci > best[:, None]), ci, cols.shape[1]).min(axis=1) - 1
        ca = cols[rows, left_stop]
        cb = cols[rows, right_stop]
        cands[name] = (bb, np.minimum(ca, cb), np.maximum(ca, cb) + 1, reach[rows, best])
    return cands


def _ink_pieces(
    hd: _Heads, cands: dict[str, _Side], prm: StemSearch
) -> list[tuple[int, float, float, float, float, bool, bool]]:
    """Choose each head's side (two for two voices) from the measured runs: its stem piece, as `_merge_stems` takes."""
    names = tuple(name for name, _, _ in _SIDES)
    scores = np.stack([cands[n][0] for n in names], axis=1)
    valid: np.ndarray = scores >= (prm.min_length * hd.sp)[:, None]
    # The usual sides (right-up, left-down) win whenever one of them has a stem: the chord-second sides
    # (left-up, right-down) only count when neither does, else a neighbouring voice's stem would be taken.
    usual = np.asarray(valid[:, :2].any(axis=1))
    masked = np.where(valid & (usual[:, None] == np.array([True, True, False, False])[None, :]), scores, -np.inf)
    choice = np.argmax(masked, axis=1)
    found = np.asarray(valid.any(axis=1))
    both = (scores[:, 0] >= prm.two_voices * hd.sp) & (scores[:, 1] >= prm.two_voices * hd.sp)
    # Per notehead stem pieces: (head, x0, x1, top, bottom, up, from_ink)
    pieces: list[tuple[int, float, float, float, float, bool, bool]] = []
    for r, i in enumerate(hd.idx):
        if not found[r]:
            continue
        for k in ((0, 1) if both[r] else (int(choice[r]),)):
            nm = names[k]
            ca, cb, reach = cands[nm][1][r], cands[nm][2][r], cands[nm][3][r]
            if nm.endswith("U"):
                pieces.append((int(i), float(ca), float(cb), float(reach), float(hd.cy[r] - hd.attach[r]), True, True))
            else:
                pieces.append((int(i), float(ca), float(cb), float(hd.cy[r] + hd.attach[r]), float(reach), False, True))
    return pieces


def _unclaimed_heads(
    stems: list[Stem], hd: _Heads, positions: np.ndarray, thick: float, prm: StemSearch
) -> list[Stem]:
    """Heads without ink evidence join a chord stem that passes through them (in place), else get the rule's stem."""
    claimed = {i for s in stems for i in s.noteheads}
    extra: list[Stem] = []
    x0, x1, cy, sp, attach = hd.x0, hd.x1, hd.cy, hd.sp, hd.attach
    for r, i in enumerate(hd.idx):
        if int(i) in claimed:
            continue
        joined = False
        for k, s in enumerate(stems):
            sx0, sy0, sx1, sy1 = s.bbox
            if sx1 < x0[r] - prm.join_px or sx0 > x1[r] + prm.join_px:
                continue
            if sy0 - prm.join_spaces * sp[r] <= cy[r] <= sy1 + prm.join_spaces * sp[r]:
                if s.direction == "down":
                    ny0, ny1 = min(sy0, cy[r] + attach[r]), sy1
                else:
                    ny0, ny1 = sy0, max(sy1, cy[r] - attach[r])
                stems[k] = Stem((sx0, ny0, sx1, ny1), tuple(sorted((*s.noteheads, int(i)))), s.direction, s.source)
                joined = True
                break
        if joined:
            continue
        # Below the middle line: stem up on the right; on it or above: down on the left.
        up = int(positions[i]) < prm.middle_line
        sw = max(1.0, thick)
        length = STEM_SPACES * sp[r]
        if up:
            bbox = (float(x1[r] - sw), float(cy[r] - length), float(x1[r]), float(cy[r] - attach[r]))
        else:
            bbox = (float(x0[r]), float(cy[r] + attach[r]), float(x0[r] + sw), float(cy[r] + length))
        extra.append(Stem(bbox, (int(i),), "up" if up else "down", "rule"))
    return extra


def _merge_stems(pieces: list[tuple[int, float, float, float, float, bool, bool]], space: float) -> list[Stem]:
    """Merge per-notehead stem pieces in the same column and direction that overlap vertically (chords)."""
    if not pieces:
        return []
    order = sorted(range(len(pieces)), key=lambda j: (pieces[j][5], pieces[j][1] + pieces[j][2]))
    # Per group: [members, sum of centres, top, bottom, up]
    groups: list[list[Any]] = []
    tol = max(2.0, 0.15 * space)
    for j in order:
        _, a0, a1, top, bot, up, _ink = pieces[j]
        pc = (a0 + a1) / 2
        for g in reversed(groups[-8:]):
            if g[4] != up or abs(g[1] / len(g[0]) - pc) > tol:
                continue
            if top <= g[3] + 0.5 * space and bot >= g[2] - 0.5 * space:
                g[0].append(j)
                g[1] += pc
                g[2] = min(g[2], top)
                g[3] = max(g[3], bot)
                break
        else:
            groups.append([[j], pc, top, bot, up])
    out: list[Stem] = []
    for members, _sum, top, bot, up in groups:
        ps = [pieces[m] for m in members]
        sx0 = float(np.median([p[1] for p in ps])) if len(ps) > 1 else ps[0][1]
        sx1 = float(np.median([p[2] for p in ps])) if len(ps) > 1 else ps[0][2]
        heads = tuple(sorted(p[0] for p in ps))
        out.append(Stem((sx0, float(top), sx1, float(bot)), heads, "up" if up else "down", "ink"))
    return out


# --------------------------------------------------------------------------------------------- ledgers


def _chords(boxes: np.ndarray, heads: Sequence[Notehead], stems: Sequence[Stem], space: float) -> list[list[int]]:
    """Noteheads that form one chord: those sharing a stem, and stemless heads touching each other."""
    n = boxes.shape[0]
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for s in stems:
        for a in s.noteheads[1:]:
            union(a, s.noteheads[0])
    loose = [i for i in range(n) if not heads[i].stemmed]
    loose.sort(key=lambda i: boxes[i, 0])
    for j, a in enumerate(loose):
        for b in loose[j + 1 :]:
            if boxes[b, 0] > boxes[a, 2] + 1:
                break
            if abs((boxes[a, 1] + boxes[a, 3]) - (boxes[b, 1] + boxes[b, 3])) / 2 <= 1.2 * space:
                union(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _ledger_lines(
    ink: np.ndarray,
    boxes: np.ndarray,
    heads: Sequence[Notehead],
    staff_idx: np.ndarray,
    staves: Sequence[Staff],
    stems: Sequence[Stem],
) -> list[LedgerLine]:
    """Ledger lines for noteheads above or below their staff, one per line position and chord.

    A chord between two staves (piano music) is tried against the staff above and the staff below; the one
    whose ledger lines the ink confirms most (confirmed lines minus unconfirmed ones) wins; ties go to the nearest staff.
    """
    h, w = ink.shape
    sa = _staff_arrays(staves)
    med_space = float(np.median(sa["space"]))
    pos_all = _positions(boxes, heads, staff_idx, staves, sa)
    outside = (pos_all >= 10) | (pos_all <= -2)
    if not outside.any():
        return []
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    # Planned lines: (staff, position) -> list of (lo, hi, members); filled per chord, then resolved.
    plans: dict[tuple[int, int], list[tuple[float, float, list[int]]]] = {}
    for members in _chords(boxes, heads, stems, med_space):
        if not outside[members].any():
            continue
        mx = float(cx[members].mean())
        my = float(cy[members].mean())
        inside = [int(staff_idx[m]) for m in members if -1 <= pos_all[m] <= 9]
        # A chord with a note on the staff belongs to that staff; otherwise try the staves on both sides.
        cands = [inside[0]] if inside else _candidate_staves(staves, mx, my, int(staff_idx[members[0]]))
        best: tuple[int, dict[int, tuple[float, float, list[int]]], int] | None = None
        for k in cands:
            kk = np.full(len(members), k)
            pos = _positions(boxes[members], [heads[m] for m in members], kk, staves, sa)
            lines: dict[int, tuple[float, float, list[int]]] = {}
            for m, p in zip(members, pos):
                p = int(p)
                rng = range(10, p + 1, 2) if p >= 10 else range(-2, p - 1, -2) if p <= -2 else range(0)
                for lp in rng:
                    lo, hi, ms = lines.get(lp, (np.inf, -np.inf, []))
                    lines[lp] = (min(lo, float(boxes[m, 0])), max(hi, float(boxes[m, 2])), ms + [m])
            st = staves[k]
            conf = 0
            for lp, (lo, hi, _ms) in lines.items():
                yc = st.y_at((8 - lp) / 2.0, (lo + hi) / 2)
                through = any(boxes[m, 1] < yc < boxes[m, 3] for m in _ms)
                ext_l, ext_r, ok, _y, _t = _ledger_extent(ink, lo, hi, yc, st.space, st.line_thickness, -np.inf, np.inf, through)
                # Ink running on as far as the walk reaches on a side is a longer line (a beam, a slur, a
                # hairpin between dense staves), not a ledger line: it does not vote for this staff.
                reach = max(3, int(np.ceil(0.8 * st.space)))
                conf += int(ok and ext_l < reach and ext_r < reach)
            # Each line the ink confirms counts for the staff, each it does not counts against it: a share of
            # confirmed lines would let the far staff of a dense page win with one stray line under the note
            # among many that are not there. Ties go to the nearer staff (tried first).
            score = 2 * conf - len(lines)
            if best is None or score > best[0]:
                best = (score, lines, k)
        assert best is not None
        _, lines, k = best
        for lp, item in lines.items():
            plans.setdefault((k, lp), []).append(item)
    out: list[LedgerLine] = []
    for (k, lp), items in plans.items():
        st = staves[k]
        sp, thick = st.space, st.line_thickness
        items.sort(key=lambda it: it[0])
        for j, (lo, hi, members) in enumerate(items):
            xc = (lo + hi) / 2
            yc = st.y_at((8 - lp) / 2.0, xc)
            # Do not let the ink walk run into the neighbouring ledger line of another chord.
            left_lim = (items[j - 1][1] + lo) / 2 if j > 0 else -np.inf
            right_lim = (items[j + 1][0] + hi) / 2 if j + 1 < len(items) else np.inf
            through = any(boxes[m, 1] < yc < boxes[m, 3] for m in members)
            ext_l, ext_r, conf, yfit, lt = _ledger_extent(ink, lo, hi, yc, sp, thick, left_lim, right_lim, through)
            y = yfit if yfit is not None else yc
            half = max(lt if lt is not None else thick, 1.0) / 2
            bbox = (max(0.0, lo - ext_l), max(0.0, y - half), min(float(w), hi + ext_r), min(float(h), y + half))
            out.append(LedgerLine(bbox, k, lp, tuple(sorted(members)), conf))
    out.sort(key=lambda ll: (ll.bbox[1], ll.bbox[0]))
    return out


def _candidate_staves(staves: Sequence[Staff], x: float, y: float, nearest: int) -> list[int]:
    """The staff a chord at (x, y) extends: the one containing it, else the nearest above and below."""
    above, below = -1, -1
    da, db = np.inf, np.inf
    for k, st in enumerate(staves):
        if x < st.x0 - 2 * st.space or x > st.x1 + 2 * st.space:
            continue
        top, bot = st.y_at(0, x), st.y_at(4, x)
        if top <= y <= bot:
            return [k]
        if bot < y and y - bot < da:
            above, da = k, y - bot
        if top > y and top - y < db:
            below, db = k, top - y
    out = [k for k in (above, below) if k >= 0]
    if not out:
        return [nearest]
    # The nearer staff first: it wins ties.
    out.sort(key=lambda k: da if k == above else db)
    return out


def _ink_run(col: np.ndarray, start: int, step: int, edge: float, limit: float, reach: int) -> int:
    """Pixels of ink in ``col`` from ``start`` walking by ``step`` (1-px gaps bridged): at most ``reach`` pixels and
    never past ``limit``, where ``edge`` (the heads' edge) moves with the walk."""
    count = 0
    gap = 0
    k = 0
    while 0 <= start + step * k < col.size and k < reach and (edge - k > limit if step < 0 else edge + k < limit):
        if col[start + step * k]:
            count = k + 1
            gap = 0
        else:
            gap += 1
            if gap > 1:
                break
        k += 1
    return count


def _ledger_extent(
    ink: np.ndarray,
    lo: float,
    hi: float,
    yc: float,
    sp: float,
    thick: float,
    left_lim: float,
    right_lim: float,
    through: bool = False,
) -> tuple[float, float, bool, float | None, float | None]:
    """Measure a ledger line next to noteheads spanning [lo, hi] at expected centre ``yc``.

    ``through`` says the line crosses one of the noteheads (the note sits on it): then only ink beside the
    heads can confirm it, the heads' own ink would.

    Returns:
        (left extension, right extension, confirmed by ink, measured centre y or None, measured thickness or None).
    """
    h, w = ink.shape
    r = int(np.ceil(thick / 2 + 1))
    y0 = int(np.floor(yc)) - r
    y1 = int(np.floor(yc)) + r + 1
    reach = max(3, int(np.ceil(0.8 * sp)))
    c0 = max(0, int(np.floor(lo)) - reach)
    c1 = min(w, int(np.ceil(hi)) + reach)
    if y0 < 0 or y1 > h or c1 <= c0:
        return LEDGER_EXTENSION * sp, LEDGER_EXTENSION * sp, False, None, None
    band = ink[y0:y1, c0:c1]
    col: np.ndarray = np.asarray(band.any(axis=0))
    default = LEDGER_EXTENSION * sp
    # Walk outwards from the heads' edges while the row has ink (1-px gaps bridged).
    li = int(np.floor(lo)) - c0 - 1
    ri = int(np.ceil(hi)) - c0
    lcount = _ink_run(col, li, -1, lo, left_lim, reach)
    rcount = _ink_run(col, ri, 1, hi, right_lim, reach)
    # A line is thin: most ink of a window one space tall around it lies in the band (text, a slur or a
    # notehead would spread over the window).
    wy0, wy1 = max(0, int(np.floor(yc - 0.45 * sp))), min(h, int(np.ceil(yc + 0.45 * sp)) + 1)
    window = ink[wy0:wy1, c0:c1]

    def thin(a: int, b: int) -> bool:
        inside = float(band[:, a:b].sum())
        return inside > 0 and inside >= 0.6 * float(window[:, a:b].sum())

    inner = col[max(0, li + 1) : max(0, ri)]
    coverage = float(inner.mean()) if inner.size else 0.0
    side = max(2.0, 0.06 * sp)
    beside = (lcount >= side and thin(li - lcount + 1, li + 1)) or (rcount >= side and thin(ri, ri + rcount))
    # Ink under the whole span confirms a line between the staff and the heads; a line through the heads
    # shows beside them (some fonts extend ledger lines by two pixels only).
    if through:
        confirmed = beside
    else:
        confirmed = beside or (coverage >= 0.85 and thin(li + 1, ri))
    # Rows with ink in the extensions give the line's centre (stems and heads excluded).
    yfit: float | None = None
    lt: float | None = None
    if lcount or rcount:
        parts = []
        if lcount:
            parts.append(band[:, li - lcount + 1 : li + 1])
        if rcount:
            parts.append(band[:, ri : ri + rcount])
        sub = np.concatenate(parts, axis=1)
        prof = sub.sum(axis=1).astype(np.float64)
        if prof.sum() > 0:
            yfit = y0 + float((prof * (np.arange(prof.size) + 0.5)).sum() / prof.sum())
            lt = float(prof.sum() / sub.shape[1])
            if abs(yfit - yc) > 0.3 * sp:
                yfit, lt = None, None
    # Without ink on a side (a noisy scan, an accidental in the way) fall back to the default extension;
    # a confirmed line keeps even a short measured extension.
    short = 0.1 * sp if not confirmed else 1.0
    ext_l = float(lcount) if lcount >= short else default
    ext_r = float(rcount) if rcount >= short else default
    return ext_l, ext_r, confirmed, yfit, lt
