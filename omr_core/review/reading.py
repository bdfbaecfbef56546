"""Read the music of one page: notes (pitch, duration), chords, rests, clefs, keys and measures from symbol boxes."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from omr_core.review.reading_barlines import staff_barlines, system_barlines
from omr_core.review.staff import Staff, System

STEPS = "CDEFGAB"
#: Diatonic number (octave * 7 + step) of the bottom staff line per clef class.
CLEF_BOTTOM = {"clefG": 4 * 7 + 2, "clefF": 2 * 7 + 4, "clefCAlto": 3 * 7 + 3, "clefCTenor": 3 * 7 + 1}
ACCIDENTAL_ALTER = {"Sharp": 1, "Flat": -1, "Natural": 0, "DoubleSharp": 2, "DoubleFlat": -2}
#: Where an accidental's pitch line sits, as a share of a staff space above the bottom of its box (flats and
#: double flats have their bowl on the line; sharps and naturals are centred on it, None).
_FLAT_LINE_ABOVE_BOTTOM = 0.65
REST_QL = {
    "restDoubleWhole": Fraction(8),
    "restWhole": Fraction(4),
    "restHalf": Fraction(2),
    "restQuarter": Fraction(1),
    "rest8th": Fraction(1, 2),
    "rest16th": Fraction(1, 4),
    "rest32nd": Fraction(1, 8),
    "rest64th": Fraction(1, 16),
    "rest128th": Fraction(1, 32),
}
FLAG_COUNT = {"8th": 1, "16th": 2, "32nd": 3, "64th": 4, "128th": 5}
TYPE_NAMES = {-1: "breve", 0: "whole", 1: "half", 2: "quarter", 3: "eighth", 4: "16th", 5: "32nd", 6: "64th", 7: "128th"}


class SymbolLike(Protocol):
    """Anything with a page-pixel box and a DeepScoresV2 class name (a `Detection`, a `Glyph`)."""

    @property
    def bbox(self) -> tuple[float, float, float, float]: ...  # pragma: no cover

    @property
    def name(self) -> str: ...  # pragma: no cover


@dataclass(frozen=True)
class Glyph:
    """One symbol box to read from (a ground-truth annotation or a detection).

    Attributes:
        bbox: ``(x0, y0, x1, y1)`` in page pixels.
        name: Official DeepScoresV2 class name.
        ref: Where it came from (annotation id, detection index), kept on the notes read from it.
    """

    bbox: tuple[float, float, float, float]
    name: str
    ref: str = ""


@dataclass(frozen=True)
class Placed:
    """Where a read symbol is: its index in the input, its staff, system, part and measure, and its box."""

    symbol: int
    staff: int
    system: int
    part: int
    measure: int
    bbox: tuple[float, float, float, float]

    @property
    def x(self) -> float:
        """Horizontal centre."""
        return (self.bbox[0] + self.bbox[2]) / 2


@dataclass(frozen=True)
class ReadNote(Placed):
    """One notehead read as a note (`Placed` says where: staff, system, part = staff index within its system,
    measure index within the system).

    Attributes:
        position: Staff position in half spaces above the bottom line.
        step: ``C`` … ``B`` (None when no clef could be used).
        alter: Semitones (-2 … 2).
        octave: Octave number (C4 = middle C), None when unknown.
        type_level: 0 whole, 1 half, 2 quarter, 3 eighth … (-1 breve).
        dots: Augmentation dots.
        tuplet: ``(actual, normal)`` notes of the tuplet it is in (``(3, 2)`` for a triplet), or None.
        grace: A grace note (small notehead).
        chord: Id of its chord (noteheads on one stem, or whole notes stacked at one x).
        stem: ``up``, ``down`` or ``""`` (whole notes, or no stem found).
        uncertain: Why this note may be wrong (empty when every part of it was decided from the page).
    """

    position: int
    step: str | None
    alter: int
    octave: int | None
    type_level: int
    dots: int
    tuplet: tuple[int, int] | None
    grace: bool
    chord: int
    stem: str
    uncertain: tuple[str, ...] = ()

    @property
    def pitch(self) -> str | None:
        """Scientific spelling (``F#5``), the same as the engraver's ``pitch`` comment."""
        if self.step is None or self.octave is None:
            return None
        return f"{self.step}{'#' * self.alter if self.alter > 0 else 'b' * -self.alter}{self.octave}"

    @property
    def quarter_length(self) -> Fraction:
        """Duration in quarter notes (dots and tuplet included)."""
        return written_quarter_length(self.type_level, self.dots, self.tuplet)

    @property
    def type_name(self) -> str:
        """MusicXML note type (``quarter``, ``eighth`` …)."""
        return TYPE_NAMES.get(self.type_level, "128th")


@dataclass(frozen=True)
class ReadRest(Placed):
    """One rest and how long it lasts (``measure_rest`` for a whole rest alone in a measure)."""

    quarter_length: Fraction
    dots: int
    measure_rest: bool = False


@dataclass(frozen=True)
class StaffContext:
    """Clefs, key signatures and time signatures read on one staff (each as ``(x, value)``, left to right)."""

    clefs: tuple[tuple[float, str], ...] = ()
    keys: tuple[tuple[float, int], ...] = ()
    times: tuple[tuple[float, tuple[int, int]], ...] = ()


@dataclass(frozen=True)
class Reading:
    """The music read from one page.

    Attributes:
        staves: Staves of the page.
        systems: Systems (parts follow the staves of each system).
        barlines: Barline x positions per system (measure boundaries).
        notes: Notes in reading order (system, part, x).
        rests: Rests in reading order.
        contexts: Per staff: clefs, key signatures, time signatures.
        messages: What could not be decided for the whole page, for people.
        timings: Seconds per stage.
    """

    staves: tuple[Staff, ...]
    systems: tuple[System, ...]
    barlines: tuple[tuple[float, ...], ...]
    notes: tuple[ReadNote, ...]
    rests: tuple[ReadRest, ...]
    contexts: tuple[StaffContext, ...]
    messages: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def parts(self) -> int:
        """Number of parts (the most staves any system has)."""
        return max((len(s.staves) for s in self.systems), default=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``notes`` with pitch, duration, place and doubts; ``rests``; ``messages``)."""
        return {
            "notes": [
                {
                    "symbol": n.symbol,
                    "bbox": [round(v, 1) for v in n.bbox],
                    "system": n.system,
                    "part": n.part,
                    "measure": n.measure,
                    "pitch": n.pitch,
                    "type": n.type_name,
                    "dots": n.dots,
                    "tuplet": list(n.tuplet) if n.tuplet else None,
                    "grace": n.grace,
                    "quarter_length": str(n.quarter_length),
                    "chord": n.chord,
                    "uncertain": list(n.uncertain),
                }
                for n in self.notes
            ],
            "rests": [
                {"symbol": r.symbol, "system": r.system, "part": r.part, "measure": r.measure, "quarter_length": str(r.quarter_length)}
                for r in self.rests
            ],
            "barlines": [[round(x, 1) for x in b] for b in self.barlines],
            "messages": list(self.messages),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def written_quarter_length(type_level: int, dots: int, tuplet: tuple[int, int] | None) -> Fraction:
    """Quarter notes of a written duration: ``type_level`` 0 = whole … with dots and a tuplet ratio."""
    base = Fraction(4) / Fraction(2) ** type_level if type_level >= 0 else Fraction(4 * 2 ** (-type_level))
    ql = base * (2 - Fraction(1, 2**dots))
    if tuplet:
        ql = ql * tuplet[1] / tuplet[0]
    return ql


# --------------------------------------------------------------------------------------------- the page


@dataclass
class _Sym:
    """A symbol being read, with its staff."""

    i: int
    name: str
    box: tuple[float, float, float, float]
    staff: int = -1

    @property
    def xc(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def yc(self) -> float:
        return (self.box[1] + self.box[3]) / 2


def read_page(
    symbols: Sequence[SymbolLike],
    staves: Sequence[Staff],
    systems: Sequence[System] | None = None,
    *,
    binary: np.ndarray | None = None,
    beams_from_ink: bool = False,
) -> Reading:
    """Read the notes of a page from its symbol boxes and staves.

    Pitch: the notehead's staff position under the clef in force, the key signature and the accidentals
    (an accidental holds for its line or space to the barline; ties carry it over). Rhythm: the notehead
    kind, the flags and beams at the end of its stem (beam lines counted in the ink when ``binary`` is
    given, else from beam boxes), augmentation dots and tuplet numbers. Noteheads on one stem are a chord.
    What cannot be decided is marked on the note (`ReadNote.uncertain`) or the page (`Reading.messages`).

    Args:
        symbols: Boxes with DeepScoresV2 names: ground-truth annotations or a model's detections.
        staves: The page's staves (from `detect_staves`, or `staves_from_boxes`).
        systems: Staves grouped into systems (one system per staff when None).
        binary: The page's ink mask; barlines and beam lines are found in it (without it, a page is one
            measure per system and accidentals hold to the end of the system).
        beams_from_ink: The symbols cannot hold beams (a detector trained without the beam class): beam
            lines are counted in the ink at the end of every stem without a flag, not only where a beam box is.

    Returns:
        The `Reading`.
    """
    t0 = time.perf_counter()
    staves = list(staves)
    systems = list(systems) if systems else [System((i,), s.x0, s.x1, s.top, s.bottom) for i, s in enumerate(staves)]
    msgs: list[str] = []
    syms = [_Sym(i, s.name, as_box(s.bbox)) for i, s in enumerate(symbols)]
    if not staves:
        n_heads = sum(1 for s in syms if s.name.startswith("notehead"))
        msgs.append(f"no staff found on the page: the {n_heads} noteheads cannot be given a pitch or a measure")
        return Reading((), (), (), (), (), (), tuple(msgs), {"total": time.perf_counter() - t0})
    for s in syms:
        s.staff = _nearest_staff(staves, s.xc, s.yc)
    by_kind = _by_kind(syms)
    _follow_ledger_lines(by_kind["notehead"], [s for s in syms if s.name == "ledgerLine"], staves)
    if not by_kind["notehead"]:
        msgs.append("no notehead among the symbols (does the model detect notehead classes?): no note can be read")
    sys_of = {st: k for k, sy in enumerate(systems) for st in sy.staves}
    part_of = {st: j for sy in systems for j, st in enumerate(sy.staves)}
    t1 = time.perf_counter()
    bars, bar_msg = _barlines(binary, staves, systems, by_kind)
    if bar_msg:
        msgs.append(bar_msg)
    contexts, ctx_msgs = _contexts(staves, systems, by_kind, part_of, sys_of, bars)
    msgs += ctx_msgs
    t2 = time.perf_counter()
    chords = _chords(staves, by_kind)
    rhythm = _rhythm(chords, staves, by_kind, binary, beams_from_ink)
    t3 = time.perf_counter()
    notes = _pitches(chords, rhythm, staves, contexts, bars, sys_of, part_of, by_kind)
    rests = _rests(staves, by_kind, bars, sys_of, part_of)
    notes = _infer_tuplets(notes, rests, staves, contexts)
    t4 = time.perf_counter()
    notes.sort(key=lambda n: (n.system, n.part, n.x, -n.position))
    rests.sort(key=lambda r: (r.system, r.part, r.x))
    return Reading(
        staves=tuple(staves),
        systems=tuple(systems),
        barlines=tuple(tuple(b) for b in bars),
        notes=tuple(notes),
        rests=tuple(rests),
        contexts=tuple(contexts),
        messages=tuple(msgs),
        timings={"barlines+context": t2 - t1, "rhythm": t3 - t2, "pitch": t4 - t3, "total": t4 - t0},
    )


def as_box(b: Sequence[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in b)
    return x0, y0, x1, y1


def staves_from_boxes(symbols: Iterable[SymbolLike]) -> list[Staff]:
    """Staves from ``staff`` boxes alone (a DeepScoresV2 page without its image): five even lines per box.

    Exact for straight engraved pages; a skewed scan needs `detect_staves` on the image instead.
    """
    out: list[Staff] = []
    for s in symbols:
        if s.name != "staff":
            continue
        x0, y0, x1, y1 = (float(v) for v in s.bbox)
        thick = max(1.0, (y1 - y0) / 40)  # a line is about a tenth of a space
        top, bottom = y0 + thick / 2, y1 - thick / 2
        space = (bottom - top) / 4
        lines = tuple(top + k * space for k in range(5))
        out.append(Staff(lines, x0, x1, thick, space))  # type: ignore[arg-type]
    out.sort(key=lambda s: s.top)
    return out


def _nearest_staff(staves: Sequence[Staff], x: float, y: float) -> int:
    best, best_d = 0, float("inf")
    for k, s in enumerate(staves):
        dx = 0.0 if s.x0 - s.space <= x <= s.x1 + s.space else 10 * min(abs(x - s.x0), abs(x - s.x1))
        d = abs(y - s.y_at(2, x)) + dx
        if d < best_d:
            best, best_d = k, d
    return best


def _follow_ledger_lines(heads: Sequence[_Sym], ledgers: Sequence[_Sym], staves: Sequence[Staff]) -> None:
    """A notehead between two staves belongs to the one its ledger lines lead to (not simply the nearer one)."""
    if not ledgers:
        return
    tops = [s.y_at(0, s.xc) for s in staves]
    for h in heads:
        st = staves[h.staff]
        pos = st.position(h.xc, h.yc)
        if -1.5 <= pos <= 9.5:
            continue
        other = h.staff + (1 if pos < 0 else -1)
        if not 0 <= other < len(staves) or not (tops[min(h.staff, other)] < h.yc < tops[max(h.staff, other)] + 4 * st.space):
            continue
        over = [g.yc for g in ledgers if g.box[0] < h.box[2] and g.box[2] > h.box[0]]
        if _ledger_chain(h, st, over) and not _ledger_chain(h, staves[other], over):
            continue
        if _ledger_chain(h, staves[other], over):
            h.staff = other


def _ledger_chain(h: _Sym, staff: Staff, ledgers_y: Sequence[float]) -> bool:
    """True when ledger lines lead from the staff's outer line to the notehead, one every staff space."""
    sp = staff.space
    above = h.yc < staff.y_at(2, h.xc)
    outer = staff.y_at(0 if above else 4, h.xc)
    dist = abs(outer - h.yc)
    k = 1
    while k * sp <= dist + 0.3 * sp:
        y = outer - k * sp if above else outer + k * sp
        if not any(abs(g - y) < 0.3 * sp for g in ledgers_y):
            return False
        k += 1
    return True


_KINDS = (
    ("notehead", "notehead"),
    ("clef", "clef"),
    ("keyboard", "other"),
    ("key", "key"),
    ("timeSig", "time"),
    ("accidental", "accidental"),
    ("flag", "flag"),
    ("stem", "stem"),
    ("beam", "beam"),
    ("augmentationDot", "dot"),
    ("rest", "rest"),
    ("tupletBracket", "bracket"),
    ("tuplet", "tuplet"),
    ("tie", "tie"),
)


def symbol_kind(name: str) -> str:
    """What the reader uses a DeepScoresV2 class for: ``notehead``, ``clef``, ``key``, ``accidental``, ``flag`` … or ``other``."""
    for prefix, kind in _KINDS:
        if name.startswith(prefix):
            return kind
    return "other"


def _by_kind(syms: Sequence[_Sym]) -> dict[str, list[_Sym]]:
    out: dict[str, list[_Sym]] = {k: [] for _, k in _KINDS}
    out["other"] = []
    for s in syms:
        for prefix, kind in _KINDS:
            if s.name.startswith(prefix):
                out[kind].append(s)
                break
        else:
            out["other"].append(s)
    return out


# --------------------------------------------------------------------------------------------- barlines


def _barlines(
    binary: np.ndarray | None, staves: Sequence[Staff], systems: Sequence[System], by_kind: dict[str, list[_Sym]]
) -> tuple[list[list[float]], str]:
    if binary is None:
        return [[] for _ in systems], (
            "no page image: barlines cannot be found, each system is read as one measure "
            "(accidentals hold to the end of the system)"
        )
    blocked = [s.box for k in ("notehead", "clef", "key", "time", "accidental", "stem", "rest", "flag") for s in by_kind[k]]
    out = []
    for sy in systems:
        per = [staff_barlines(binary, staves[i], blocked) for i in sy.staves]
        out.append(system_barlines(per, sy, staves[sy.staves[0]].space))
    return out, ""


def _measure(bars: Sequence[float], x: float) -> int:
    return int(np.searchsorted(np.asarray(bars), x))


# --------------------------------------------------------------------------------------------- context


def _pos(staff: Staff, x: float, y: float) -> int:
    return int(round(staff.position(x, y)))


def _clef_of(sym: _Sym, staff: Staff, octave_marks: Sequence[_Sym]) -> str:
    """The clef's name, with ``+8``/``-8``/``+15``/``-15`` when an octave figure sits on it."""
    name = sym.name
    if name == "clefG" or name == "clefF":
        for o in octave_marks:
            if o.box[0] < sym.box[2] and o.box[2] > sym.box[0] and abs(o.yc - sym.yc) < 4 * staff.space:
                shift = o.name.removeprefix("clef")
                return f"{name}{'+' if o.yc < staff.y_at(2, o.xc) else '-'}{shift}"
    return name


def _contexts(
    staves: Sequence[Staff],
    systems: Sequence[System],
    by_kind: dict[str, list[_Sym]],
    part_of: dict[int, int],
    sys_of: dict[int, int],
    bars: Sequence[Sequence[float]] = (),
) -> tuple[list[StaffContext], list[str]]:
    msgs: list[str] = []
    octave_marks = [s for s in by_kind["clef"] if s.name in ("clef8", "clef15")]
    clefs: dict[int, list[tuple[float, str]]] = {i: [] for i in range(len(staves))}
    for c in by_kind["clef"]:
        if c.name in ("clef8", "clef15") or not _on_staff_lines(c, staves[c.staff]):
            continue
        clefs[c.staff].append((c.box[0], _clef_of(c, staves[c.staff], octave_marks)))
    keys: dict[int, list[tuple[float, int]]] = {i: [] for i in range(len(staves))}
    times: dict[int, list[tuple[float, tuple[int, int]]]] = {i: [] for i in range(len(staves))}
    for i, st in enumerate(staves):
        clefs[i].sort()
        k_syms = sorted((s for s in by_kind["key"] if s.staff == i), key=lambda s: s.box[0])
        bar_x = list(bars[sys_of[i]]) if i in sys_of and sys_of[i] < len(bars) else []
        for group in _clusters(k_syms, 1.6 * st.space):
            if _key_in_place(group[0].box[0], st, [c.box[2] for c in by_kind["clef"] if c.staff == i], bar_x):
                keys[i].append((group[0].box[0], _key_fifths(group)))
        t_syms = sorted((s for s in by_kind["time"] if s.staff == i), key=lambda s: s.box[0])
        for group in _clusters(t_syms, 0.6 * st.space):
            t = _time_signature(group, st)
            if t is not None:
                times[i].append((group[0].box[0], t))
    # a staff without its own clef takes the one its part had on the staff above it in the score
    missing = [i for i in range(len(staves)) if not clefs[i]]
    for i in missing:
        same_part = [j for j in range(len(staves)) if part_of.get(j) == part_of.get(i) and clefs[j] and sys_of[j] < sys_of[i]]
        if same_part:
            clefs[i] = [(staves[i].x0, clefs[max(same_part)][-1][1])]
    # time signatures are drawn once: later systems keep the one their part had
    for i in range(len(staves)):
        if times[i] and times[i][0][0] < staves[i].x0 + 8 * staves[i].space:
            continue
        earlier = [j for j in range(len(staves)) if part_of.get(j) == part_of.get(i) and times[j] and sys_of[j] < sys_of[i]]
        if earlier:
            times[i].insert(0, (staves[i].x0, times[max(earlier)][-1][1]))
    if any(not clefs[i] for i in range(len(staves))):
        n = sum(1 for i in range(len(staves)) if not clefs[i])
        msgs.append(f"no clef found on {n} of {len(staves)} staves: their notes are read in treble clef and marked uncertain")
    return [StaffContext(tuple(clefs[i]), tuple(keys[i]), tuple(times[i])) for i in range(len(staves))], msgs


def _on_staff_lines(c: _Sym, staff: Staff) -> bool:
    """A clef covers at least half of its staff's height (a detector's clef between two staves does not)."""
    top, bottom = staff.y_at(0, c.xc), staff.y_at(4, c.xc)
    return min(bottom, c.box[3]) - max(top, c.box[1]) >= 0.5 * (bottom - top)


def _clusters(syms: Sequence[_Sym], gap: float) -> list[list[_Sym]]:
    out: list[list[_Sym]] = []
    for s in syms:
        if out and s.box[0] - out[-1][-1].box[2] < gap:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def _key_in_place(x: float, staff: Staff, clef_ends: Sequence[float], bar_x: Sequence[float]) -> bool:
    """A key signature stands at the start of a line, or right after a clef or a barline (a key change);
    key accidentals anywhere else are a detector's mistake (a beam end on a stem looks like a sharp)."""
    sp = staff.space
    if x - staff.x0 < 12 * sp:
        return True
    return any(0 <= x - e < 3 * sp for e in (*clef_ends, *bar_x))


def _key_fifths(group: Sequence[_Sym]) -> int:
    """Sharps (> 0) or flats (< 0) of a key signature cluster; naturals only cancel. The accidentals of a
    key signature stand side by side: boxes sharing most of their width are one accidental seen twice."""
    def columns(name: str) -> int:
        kept: list[_Sym] = []
        for s in sorted((s for s in group if s.name == name), key=lambda s: s.box[0]):
            last = kept[-1].box if kept else None
            width = min(s.box[2] - s.box[0], last[2] - last[0]) if last else 0.0
            if last is None or min(last[2], s.box[2]) - max(last[0], s.box[0]) <= 0.5 * width:
                kept.append(s)
        return len(kept)

    sharps, flats = columns("keySharp"), columns("keyFlat")
    return sharps if sharps >= flats else -flats


def _time_signature(group: Sequence[_Sym], staff: Staff) -> tuple[int, int] | None:
    names = [s.name for s in group]
    if "timeSigCommon" in names:
        return (4, 4)
    if "timeSigCutCommon" in names:
        return (2, 2)
    top = "".join(s.name[7:] for s in sorted(group, key=lambda s: s.xc) if s.yc < staff.y_at(2, s.xc) and s.name[7:].isdigit())
    bot = "".join(s.name[7:] for s in sorted(group, key=lambda s: s.xc) if s.yc >= staff.y_at(2, s.xc) and s.name[7:].isdigit())
    if top and bot and int(bot) > 0:
        return int(top), int(bot)
    return None


def value_at(items: Sequence[tuple[float, Any]], x: float) -> Any:
    """The value in force at ``x`` (the last one starting left of it), or None."""
    value = None
    for x0, v in items:
        if x0 <= x:
            value = v
        else:
            break
    return value


# --------------------------------------------------------------------------------------------- chords


@dataclass
class _Chord:
    """Noteheads on one stem (or stacked whole notes), with what decides their rhythm."""

    heads: list[_Sym]
    staff: int
    stem: _Sym | None = None
    direction: str = ""
    grace: bool = False

    @property
    def x(self) -> float:
        return min(h.box[0] for h in self.heads)


def _chords(staves: Sequence[Staff], by_kind: dict[str, list[_Sym]]) -> list[_Chord]:
    stems = by_kind["stem"]
    stem_x = np.array([s.xc for s in stems]) if stems else np.zeros(0)
    on_stem: dict[int, list[_Sym]] = {}
    loose: list[_Sym] = []
    for h in by_kind["notehead"]:
        sp = staves[h.staff].space
        k = _stem_of(h, stems, stem_x, sp) if "Whole" not in h.name else None
        if k is None:
            loose.append(h)
        else:
            on_stem.setdefault(k, []).append(h)
    out: list[_Chord] = []
    for k, heads in on_stem.items():
        st = stems[k]
        ys = [h.yc for h in heads]
        direction = "up" if abs(st.box[3] - max(ys)) < abs(st.box[1] - min(ys)) else "down"
        out.append(_Chord(heads, heads[0].staff, st, direction, any("Small" in h.name for h in heads)))
    # stemless heads: whole notes stacked at one x are one chord; other stemless heads stand alone
    loose.sort(key=lambda h: (h.staff, h.box[0]))
    for h in loose:
        sp = staves[h.staff].space
        last = out[-1] if out else None
        if (
            last is not None
            and last.stem is None
            and last.staff == h.staff
            and "Whole" in h.name
            and all("Whole" in o.name for o in last.heads)
            and abs(last.heads[0].box[0] - h.box[0]) < 0.8 * sp
        ):
            last.heads.append(h)
        else:
            out.append(_Chord([h], h.staff, grace="Small" in h.name))
    return out


def _stem_of(h: _Sym, stems: Sequence[_Sym], stem_x: np.ndarray, space: float) -> int | None:
    """The stem touching a notehead at its left or right edge, reaching its centre (None when none does)."""
    if not len(stem_x):
        return None
    x0, y0, x1, y1 = h.box
    best, best_d = None, 0.4 * space
    for k in np.nonzero((stem_x > x0 - 0.5 * space) & (stem_x < x1 + 0.5 * space))[0]:
        s = stems[int(k)]
        if not (s.box[1] - 0.2 * space <= y1 and y0 <= s.box[3] + 0.2 * space):
            continue
        # an up stem starts at the right edge of its notehead, a down stem at the left; heads pushed to the
        # other side of the stem (chord seconds) are allowed at a small cost
        up = abs(s.box[3] - h.yc) < abs(s.box[1] - h.yc)
        own, other = (x1, x0) if up else (x0, x1)
        d = min(abs(s.xc - own), abs(s.xc - other) + 0.2 * space)
        if d < best_d:
            best, best_d = int(k), d
    return best


# --------------------------------------------------------------------------------------------- rhythm


@dataclass(frozen=True)
class _Rhythm:
    type_level: int
    dots: int
    tuplet: tuple[int, int] | None
    doubts: tuple[str, ...]


def _rhythm(
    chords: Sequence[_Chord],
    staves: Sequence[Staff],
    by_kind: dict[str, list[_Sym]],
    binary: np.ndarray | None,
    beams_from_ink: bool = False,
) -> list[_Rhythm]:
    tuplets = _tuplet_spans(staves, by_kind, chords)
    out = []
    for c in chords:
        sp = staves[c.staff].space
        doubts: list[str] = []
        kind = c.heads[0].name
        if "DoubleWhole" in kind:
            level = -1
        elif "Whole" in kind:
            level = 0
        elif "Half" in kind:
            level = 1
        else:
            level = 2
            if c.stem is None:
                doubts.append("no stem found: read as a quarter note")
            else:
                flags = _flags(c, by_kind["flag"], sp)
                # a flagged stem has no beam; without beam boxes the ink beside a flag would count as one
                level += flags + (0 if flags and beams_from_ink else _beams(c, by_kind["beam"], sp, binary, beams_from_ink))
        dots = max(_dots(h, by_kind["dot"], sp, [g for g in by_kind["notehead"] if g.staff == c.staff]) for h in c.heads)
        tup = None
        for staff, x0, x1, ratio in tuplets:
            if staff == c.staff and x0 <= (c.stem.xc if c.stem else c.heads[0].xc) <= x1:
                tup = ratio
        out.append(_Rhythm(level, dots, tup, tuple(doubts)))
    return out


def _stem_end(c: _Chord) -> float:
    assert c.stem is not None
    return c.stem.box[1] if c.direction == "up" else c.stem.box[3]


def _flags(c: _Chord, flags: Sequence[_Sym], sp: float) -> int:
    assert c.stem is not None
    end = _stem_end(c)
    n = 0
    for f in flags:
        if abs(f.box[0] - c.stem.xc) > 0.5 * sp or f.staff != c.staff and abs(f.yc - end) > 4 * sp:
            continue
        if f.box[1] - 0.5 * sp <= end <= f.box[3] + 0.5 * sp:
            m = re.match(r"flag(\d+(?:th|nd))", f.name)
            n = max(n, FLAG_COUNT.get(m.group(1), 1) if m else 1)
    return n


def _beams(c: _Chord, beams: Sequence[_Sym], sp: float, binary: np.ndarray | None, from_ink: bool = False) -> int:
    """Beam lines at the stem end: ink runs beside the stem (or beam boxes across the stem without ink); with
    ``from_ink``, the ink decides alone (the symbols have no beam boxes)."""
    assert c.stem is not None
    end = _stem_end(c)
    toward = 1.0 if c.direction == "up" else -1.0
    xs = c.stem.xc
    lo, hi = sorted((end - toward * 0.5 * sp, end + toward * 3.0 * sp))
    touching = [b for b in beams if b.box[0] - 0.3 * sp <= xs <= b.box[2] + 0.3 * sp and b.box[1] <= hi and b.box[3] >= lo]
    if binary is None:
        return len(touching)
    if not touching and not from_ink:
        return 0
    n = max(
        _ink_beam_count(binary, int(round(col)), end, toward, sp)
        for col in (c.stem.box[0] - 0.4 * sp, c.stem.box[2] + 0.4 * sp)
    )
    return max(1, n) if touching else n


def _ink_beam_count(binary: np.ndarray, col: int, end: float, toward: float, sp: float) -> int:
    """Thick ink runs in one column from a stem end towards its notehead, stopping at the first wide gap."""
    h, w = binary.shape
    if not 0 <= col < w:
        return 0
    start = end - toward * 0.4 * sp
    stop = end + toward * 3.5 * sp
    a, b = int(round(min(start, stop))), int(round(max(start, stop)))
    a, b = max(0, a), min(h, b)
    column = binary[a:b, col]
    if toward < 0:
        column = column[::-1]
    runs: list[tuple[int, int]] = []
    i, n = 0, len(column)
    while i < n:
        if column[i]:
            j = i
            while j < n and column[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    count, last_end = 0, 0.0
    for r0, r1 in runs:
        length = r1 - r0
        if length < 0.28 * sp:
            continue  # staff lines, ledger lines, noise
        if length > 2.4 * sp:
            return 0  # a barline or another stem beside this one, not beams: the other side decides
        if r0 - last_end > (0.9 if count == 0 else 0.6) * sp:
            break
        count += max(1, int(round((length + 0.25 * sp) / (0.75 * sp))))
        last_end = r1
    return count


def _dots(h: _Sym, dots: Sequence[_Sym], sp: float, heads: Sequence[_Sym] = ()) -> int:
    """Augmentation dots right of a notehead (its space, or the space above or below when it sits on a line);
    further dots follow the first one at its height. A dot with another notehead in front of it at its
    height (a second voice's note beside this one) is that note's."""
    near = [d for d in dots if d.staff == h.staff and h.box[2] - 0.1 * sp < d.box[0] < h.box[2] + 1.6 * sp]
    first = [
        d
        for d in near
        if -0.9 * sp <= d.yc - h.yc <= 0.65 * sp
        and not any(
            g is not h and h.box[0] + 0.5 * sp < g.box[0] < d.box[0] and abs(g.yc - d.yc) < 0.8 * sp for g in heads
        )
    ]
    if not first:
        return 0
    # the closest in height wins (a chord's neighbouring head has its own dot a space away)
    cur = min(first, key=lambda d: (abs(d.yc - h.yc), d.box[0]))
    n = 1
    for d in sorted(near, key=lambda d: d.box[0]):
        if d.box[0] >= cur.box[2] - 0.05 * sp and d.box[0] - cur.box[2] < 1.0 * sp and abs(d.yc - cur.yc) < 0.3 * sp:
            n += 1
            cur = d
    return n


def _tuplet_spans(
    staves: Sequence[Staff], by_kind: dict[str, list[_Sym]], chords: Sequence[_Chord] = ()
) -> list[tuple[int, float, float, tuple[int, int]]]:
    """(staff, x0, x1, (actual, normal)) of every tuplet number: its bracket, its beam, the ``actual`` chords
    centred under it, or the notes beside it."""
    out = []
    for t in by_kind["tuplet"]:
        digits = t.name.removeprefix("tuplet")
        if not digits.isdigit():
            continue
        actual = int(digits)
        normal = 3 if actual == 2 else 2 ** (actual.bit_length() - 1)
        sp = staves[t.staff].space
        span = None
        for b in by_kind["bracket"]:
            if b.box[0] - sp <= t.xc <= b.box[2] + sp and abs(b.yc - t.yc) < 1.5 * sp:
                span = (b.box[0], b.box[2])
        if span is None:
            cands = [b for b in by_kind["beam"] if b.box[0] <= t.xc <= b.box[2] and (b.box[1] - t.box[3] < 3 * sp and t.box[1] - b.box[3] < 3 * sp)]
            if cands:
                b = max(cands, key=lambda b: b.box[2] - b.box[0])
                span = (b.box[0] - 0.3 * sp, b.box[2] + 0.3 * sp)
        if span is None:
            span = _chords_under(t, actual, [c for c in chords if c.staff == t.staff], sp)
        if span is None:
            span = (t.xc - 0.8 * actual * sp, t.xc + 0.8 * actual * sp)
        out.append((t.staff, span[0], span[1], (actual, normal)))
    return out


def _chords_under(t: _Sym, actual: int, chords: Sequence[_Chord], sp: float) -> tuple[float, float] | None:
    """The x span of the ``actual`` neighbouring chords centred on a tuplet number (no bracket or beam box to
    follow: a detector without those classes), or None when no such group is centred on it."""
    xs = sorted(c.stem.xc if c.stem else c.heads[0].xc for c in chords if not c.grace)
    best: tuple[float, float] | None = None
    best_d = 1.5 * sp
    for k in range(len(xs) - actual + 1):
        a, b = xs[k], xs[k + actual - 1]
        d = abs((a + b) / 2 - t.xc)
        if b - a <= 6 * actual * sp and d < best_d:
            best, best_d = (a - 0.3 * sp, b + 0.3 * sp), d
    return best


# --------------------------------------------------------------------------------------------- pitch


def _accidental_line(a: _Sym, sp: float) -> float:
    """The y of the line or space an accidental alters."""
    if "Flat" in a.name:
        return a.box[3] - _FLAT_LINE_ABOVE_BOTTOM * sp
    return a.yc


def _accidentals_of_heads(
    heads: Sequence[_Sym], accidentals: Sequence[_Sym], staves: Sequence[Staff]
) -> dict[int, int]:
    """Notehead symbol index -> alteration of the accidental written in front of it."""
    out: dict[int, int] = {}
    taken: set[int] = set()
    for a in sorted(accidentals, key=lambda a: -a.box[2]):
        st = staves[a.staff]
        sp = st.space
        y = _accidental_line(a, sp)
        best, best_d = None, 4.0 * sp
        for h in heads:
            if h.staff != a.staff or h.i in out or h.box[0] < a.box[2] - 0.3 * sp:
                continue
            if abs(h.yc - y) > 0.3 * sp:
                continue
            d = h.box[0] - a.box[2]
            if d < best_d:
                best, best_d = h, d
        m = re.match(r"accidental(DoubleSharp|DoubleFlat|Sharp|Flat|Natural)", a.name)
        if best is not None and m:
            out[best.i] = ACCIDENTAL_ALTER[m.group(1)]
            taken.add(a.i)
    return out


def _key_alters(fifths: int) -> dict[int, int]:
    """Step index (C=0) -> alteration of a key signature."""
    order = [3, 0, 4, 1, 5, 2, 6] if fifths > 0 else [6, 2, 5, 1, 4, 0, 3]
    return {s: (1 if fifths > 0 else -1) for s in order[: abs(fifths)]}


def _pitches(
    chords: Sequence[_Chord],
    rhythm: Sequence[_Rhythm],
    staves: Sequence[Staff],
    contexts: Sequence[StaffContext],
    bars: Sequence[Sequence[float]],
    sys_of: dict[int, int],
    part_of: dict[int, int],
    by_kind: dict[str, list[_Sym]],
) -> list[ReadNote]:
    written = _accidentals_of_heads(by_kind["notehead"], by_kind["accidental"], staves)
    ties = _tie_pairs(by_kind["notehead"], by_kind["tie"], staves)
    items = []
    for cid, (c, r) in enumerate(zip(chords, rhythm)):
        for h in c.heads:
            items.append((sys_of[h.staff], h.staff, h.box[0], cid, h, c, r))
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    held: dict[tuple[int, int, int], int] = {}  # (staff, measure, diatonic) -> alteration in force
    sounded: dict[int, int] = {}  # head symbol -> alteration it sounded with (for ties)
    out: list[ReadNote] = []
    for sy, si, _x, cid, h, c, r in items:
        st = staves[si]
        doubts = list(r.doubts)
        pos = _pos(st, h.xc, h.yc)
        clef = value_at(contexts[si].clefs, h.xc + st.space)
        if clef is None:
            clef = "clefG"
            doubts.append("no clef: read in treble clef")
        base = _clef_bottom(clef)
        if base is None:
            base = CLEF_BOTTOM["clefG"]
            doubts.append(f"{clef}: no pitch for this clef, read in treble clef")
        d = base + pos
        step = d % 7
        meas = _measure(bars[sy], h.xc)
        fifths = value_at(contexts[si].keys, h.xc) or 0
        alter = _key_alters(fifths).get(step, 0)
        if (si, meas, d) in held:
            alter = held[(si, meas, d)]
        start = ties.get(h.i)
        if start is not None and start in sounded:
            alter = sounded[start]
        if h.i in written:
            alter = written[h.i]
            held[(si, meas, d)] = alter
        sounded[h.i] = alter
        out.append(
            ReadNote(
                symbol=h.i,
                staff=si,
                system=sy,
                part=part_of[si],
                measure=meas,
                bbox=h.box,
                position=pos,
                step=STEPS[step],
                alter=alter,
                octave=d // 7,
                type_level=r.type_level,
                dots=r.dots,
                tuplet=r.tuplet,
                grace=c.grace,
                chord=cid,
                stem=c.direction,
                uncertain=tuple(doubts),
            )
        )
    return out


def _clef_bottom(clef: str) -> int | None:
    m = re.fullmatch(r"(clef[A-Za-z]+)(?:([+-])(8|15))?", clef)
    if not m or m.group(1) not in CLEF_BOTTOM:
        return None
    shift = {"8": 7, "15": 14}.get(m.group(3) or "", 0)
    return CLEF_BOTTOM[m.group(1)] + (shift if m.group(2) == "+" else -shift)


def _tie_pairs(heads: Sequence[_Sym], ties: Sequence[_Sym], staves: Sequence[Staff]) -> dict[int, int]:
    """Tie end notehead -> tie start notehead (same staff, same height, at the two ends of a tie box)."""
    out: dict[int, int] = {}
    for t in ties:
        sp = staves[t.staff].space
        near = [h for h in heads if h.staff == t.staff and abs(h.yc - t.yc) < 1.3 * sp]
        starts = [h for h in near if abs(h.box[2] - t.box[0]) < 0.9 * sp or h.box[0] <= t.box[0] <= h.box[2]]
        ends = [h for h in near if abs(h.box[0] - t.box[2]) < 0.9 * sp or h.box[0] <= t.box[2] <= h.box[2]]
        for e in ends:
            for s in starts:
                if s is not e and abs(s.yc - e.yc) < 0.3 * sp and s.xc < e.xc:
                    out[e.i] = s.i
    return out


# --------------------------------------------------------------------------------------------- voices

#: One event of a voice: (left x, ``"chord"`` or ``"rest"``, the chord's notes or the rest).
Event = tuple[float, str, Any]


def measure_voices(notes: Sequence[ReadNote], rests: Sequence[ReadRest], middle_y: float) -> list[list[Event]]:
    """The events of one staff-measure in voices: one voice, or two (up stems, down stems) when notes of both
    stem directions are stacked at one x; rests go to the voice on their side of the middle line."""
    chords: dict[int, list[ReadNote]] = {}
    for n in notes:
        chords.setdefault(n.chord, []).append(n)
    events: list[Event] = [(min(n.bbox[0] for n in ch), "chord", ch) for ch in chords.values()]
    events += [(r.bbox[0], "rest", r) for r in rests]
    events.sort(key=lambda e: (e[0], e[1]))
    if not events:
        return []
    ups = [e for e in events if e[1] == "chord" and e[2][0].stem == "up"]
    downs = [e for e in events if e[1] == "chord" and e[2][0].stem == "down"]
    if not any(abs(u[0] - d[0]) < 1.5 * (u[2][0].bbox[2] - u[2][0].bbox[0]) for u in ups for d in downs):
        return [events]
    v1: list[Event] = []
    v2: list[Event] = []
    for e in events:
        if e[1] == "chord":
            up = e[2][0].stem == "up" or (e[2][0].stem == "" and max(n.position for n in e[2]) >= 4)
        else:
            up = (e[2].bbox[1] + e[2].bbox[3]) / 2 < middle_y
        (v1 if up else v2).append(e)
    return [v for v in (v1, v2) if v]


def _infer_tuplets(
    notes: list[ReadNote], rests: Sequence[ReadRest], staves: Sequence[Staff], contexts: Sequence[StaffContext]
) -> list[ReadNote]:
    """Triplets drawn without their number: a voice that overfills its measure by exactly half is read with
    its beamed notes (eighths and shorter, not already in a tuplet) as triplets, and they are marked."""
    by_measure: dict[tuple[int, int], tuple[list[ReadNote], list[ReadRest]]] = {}
    for n in notes:
        by_measure.setdefault((n.staff, n.measure), ([], []))[0].append(n)
    for r in rests:
        by_measure.setdefault((r.staff, r.measure), ([], []))[1].append(r)
    fix: set[int] = set()
    plain: dict[Fraction, int] = {}  # voice totals of measures with nothing to reinterpret
    measured: list[tuple[tuple[int, int] | None, list[Event]]] = []
    for (si, _m), (ns, rs) in by_measure.items():
        if any(r.measure_rest for r in rs):
            continue
        t = value_at(contexts[si].times, min([n.x for n in ns] + [r.x for r in rs]))
        for voice in measure_voices(ns, rs, staves[si].y_at(2, staves[si].xc)):
            measured.append((t, voice))
    # a page without a time signature (a later page of a piece): the bar is what plain measures add up to
    for _t, voice in measured:
        total, cands = _voice_total(voice)
        if not cands and total > 0:
            plain[total] = plain.get(total, 0) + 1
    guess = max(plain, key=lambda k: plain[k]) if plain and max(plain.values()) >= 3 else None
    for t, voice in measured:
        bar = Fraction(4 * t[0], t[1]) if t is not None else guess
        if bar is None:
            continue
        total, cands = _voice_total(voice)
        cut = sum((c[0].quarter_length for c in cands), Fraction(0)) / 3
        if cands and total > bar and total - cut == bar:
            fix.update(n.symbol for c in cands for n in c)
    if not fix:
        return notes
    doubt = "triplet read from the measure length (no tuplet number on the page)"
    return [
        dataclasses.replace(n, tuplet=(3, 2), uncertain=(*n.uncertain, doubt)) if n.symbol in fix else n for n in notes
    ]


def _voice_total(voice: Sequence[Event]) -> tuple[Fraction, list[list[ReadNote]]]:
    """Quarter notes a voice lasts, and its chords that could be unnumbered triplets."""
    total = Fraction(0)
    cands: list[list[ReadNote]] = []
    for _x, kind, obj in voice:
        if kind == "rest":
            total += obj.quarter_length
        elif not obj[0].grace:
            total += obj[0].quarter_length
            if obj[0].tuplet is None and obj[0].type_level >= 3:
                cands.append(obj)
    return total, cands


# --------------------------------------------------------------------------------------------- rests


def _rests(
    staves: Sequence[Staff],
    by_kind: dict[str, list[_Sym]],
    bars: Sequence[Sequence[float]],
    sys_of: dict[int, int],
    part_of: dict[int, int],
) -> list[ReadRest]:
    out = []
    per_measure: dict[tuple[int, int], int] = {}
    rests = [r for r in by_kind["rest"] if r.name in REST_QL]
    for r in rests:
        sy = sys_of[r.staff]
        per_measure[(r.staff, _measure(bars[sy], r.xc))] = per_measure.get((r.staff, _measure(bars[sy], r.xc)), 0) + 1
    events_per_measure: dict[tuple[int, int], int] = {}
    for h in by_kind["notehead"]:
        key = (h.staff, _measure(bars[sys_of[h.staff]], h.xc))
        events_per_measure[key] = events_per_measure.get(key, 0) + 1
    for r in rests:
        sy = sys_of[r.staff]
        sp = staves[r.staff].space
        meas = _measure(bars[sy], r.xc)
        dots = _dots(r, by_kind["dot"], sp) if r.name != "restWhole" else 0
        ql = REST_QL[r.name] * (2 - Fraction(1, 2**dots))
        alone = r.name == "restWhole" and per_measure[(r.staff, meas)] == 1 and not events_per_measure.get((r.staff, meas))
        out.append(ReadRest(r.i, r.staff, sy, part_of[r.staff], meas, r.box, ql, dots, alone))
    return out
