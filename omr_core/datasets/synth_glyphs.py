"""Glyph mapping for the engraver: verovio primitives to official DeepScoresV2 classes, decided from geometry."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from omr_core.datasets.synth_svg import Box, PageGeometry, Prim, StaffLines, union

#: SMuFL glyph name -> DeepScoresV2 class, for glyphs whose class does not depend on context.
GLYPH_CLASSES: dict[str, str] = {
    **{f"timeSig{d}": f"timeSig{d}" for d in range(10)},
    "timeSigCommon": "timeSigCommon",
    "timeSigCutCommon": "timeSigCutCommon",
    **{f"flag{v}{ud}": f"flag{v}{ud}" for v in ("8th", "16th", "32nd", "64th", "128th") for ud in ("Up", "Down")},
    "restDoubleWhole": "restDoubleWhole",
    "restWhole": "restWhole",
    "restHalf": "restHalf",
    "restQuarter": "restQuarter",
    "rest8th": "rest8th",
    "rest16th": "rest16th",
    "rest32nd": "rest32nd",
    "rest64th": "rest64th",
    "rest128th": "rest128th",
    "restHBar": "restHBar",
    "restHBarLeft": "restHBar",
    "restHBarMiddle": "restHBar",
    "restHBarRight": "restHBar",
    "articAccentAbove": "articAccentAbove",
    "articAccentBelow": "articAccentBelow",
    "articStaccatoAbove": "articStaccatoAbove",
    "articStaccatoBelow": "articStaccatoBelow",
    "articTenutoAbove": "articTenutoAbove",
    "articTenutoBelow": "articTenutoBelow",
    "articStaccatissimoAbove": "articStaccatissimoAbove",
    "articStaccatissimoBelow": "articStaccatissimoBelow",
    "articStaccatissimoWedgeAbove": "articStaccatissimoAbove",
    "articStaccatissimoWedgeBelow": "articStaccatissimoBelow",
    "articStaccatissimoStrokeAbove": "articStaccatissimoAbove",
    "articStaccatissimoStrokeBelow": "articStaccatissimoBelow",
    "articMarcatoAbove": "articMarcatoAbove",
    "articMarcatoBelow": "articMarcatoBelow",
    "fermataAbove": "fermataAbove",
    "fermataBelow": "fermataBelow",
    "fermataShortAbove": "fermataAbove",
    "fermataShortBelow": "fermataBelow",
    "fermataLongAbove": "fermataAbove",
    "fermataLongBelow": "fermataBelow",
    "fermataVeryShortAbove": "fermataAbove",
    "fermataVeryShortBelow": "fermataBelow",
    "fermataVeryLongAbove": "fermataAbove",
    "fermataVeryLongBelow": "fermataBelow",
    "caesura": "caesura",
    "dynamicPiano": "dynamicP",
    "dynamicMezzo": "dynamicM",
    "dynamicForte": "dynamicF",
    "dynamicSforzando": "dynamicS",
    "dynamicZ": "dynamicZ",
    "dynamicRinforzando": "dynamicR",
    "ornamentTrill": "ornamentTrill",
    "ornamentTurn": "ornamentTurn",
    "ornamentTurnInverted": "ornamentTurnInverted",
    "ornamentMordent": "ornamentMordent",
    "stringsDownBow": "stringsDownBow",
    "stringsUpBow": "stringsUpBow",
    "keyboardPedalPed": "keyboardPedalPed",
    "keyboardPedalUp": "keyboardPedalUp",
    "segno": "segno",
    "coda": "coda",
    "repeatDot": "repeatDot",
    "brace": "brace",
    "tremolo1": "tremolo1",
    "tremolo2": "tremolo2",
    "tremolo3": "tremolo3",
    "tremolo4": "tremolo4",
    "tremolo5": "tremolo5",
    **{f"fingering{d}": f"fingering{d}" for d in range(6)},
}

#: Accidental glyphs: note accidentals keep the SMuFL name, key signatures use key* classes.
ACCIDENTALS = {
    "accidentalFlat": "keyFlat",
    "accidentalNatural": "keyNatural",
    "accidentalSharp": "keySharp",
    "accidentalDoubleSharp": None,
    "accidentalDoubleFlat": None,
}

#: Classes that have a ``…Small`` variant for grace and cue notes.
SMALL_VARIANTS = {
    "accidentalFlat",
    "accidentalNatural",
    "accidentalSharp",
    "flag8thUp",
    "flag8thDown",
}

NOTEHEADS = {
    "noteheadBlack": "noteheadBlack",
    "noteheadHalf": "noteheadHalf",
    "noteheadWhole": "noteheadWhole",
    "noteheadDoubleWhole": "noteheadDoubleWhole",
    "noteheadDoubleWholeSquare": "noteheadDoubleWhole",
}

CLEFS = {
    "gClef": "clefG",
    "gClefChange": "clefG",
    "fClef": "clefF",
    "fClefChange": "clefF",
    "cClef": "clefC",
    "cClefChange": "clefC",
    "unpitchedPercussionClef1": "clefUnpitchedPercussion",
    "unpitchedPercussionClef2": "clefUnpitchedPercussion",
    "gClef8vb": "clefG+8",
    "gClef8va": "clefG+8",
    "gClef15mb": "clefG+15",
    "gClef15ma": "clefG+15",
    "fClef8vb": "clefF+8",
    "fClef8va": "clefF+8",
}

#: Owner groups whose primitives together make one symbol (one box).
MERGED_OWNERS = {"tupletNum", "tupletBracket", "grpSym", "arpeg", "octave", "hairpin"}

#: How a grace/cue glyph compares to a full-size one: SMuFL glyphs are drawn at 1 em = 4 staff spaces;
#: verovio draws grace notes at 75% and cue notes at 70–75%.
SMALL_RATIO = 0.9


@lru_cache(maxsize=1)
def glyph_names() -> dict[str, str]:
    """SMuFL code point (``"E0A4"``) -> glyph name, from the font metadata verovio ships."""
    import verovio

    data = Path(verovio.__file__).parent / "data"
    names: dict[str, str] = {}
    for xml in sorted(data.glob("*.xml")):
        for code, name in re.findall(r'<g c="([0-9A-Fa-f]+)"[^>]*? n="([^"]+)"', xml.read_text(encoding="utf-8")):
            names.setdefault(code.upper(), name)
    return names


def glyph_name(code: str | None) -> str:
    """The SMuFL name of a code point, or ``uniXXXX`` when verovio's fonts do not name it."""
    if not code:
        return "?"
    return glyph_names().get(code.upper(), f"uni{code.upper()}")


@dataclass
class Symbol:
    """One annotated symbol of a page before it becomes a DeepScoresV2 annotation.

    Attributes:
        name: Official DeepScoresV2 class name.
        box: Tight ink box in page pixels (continuous coordinates, floats).
        area: Ink area in square pixels (analytic).
        comment: Extra ``key:value;`` pairs (duration and rel_position for noteheads).
        prims: The primitives drawn for this symbol.
    """

    name: str
    box: Box
    area: float
    comment: str
    prims: list[Prim]


@dataclass
class Classified:
    """The classifier's output for one page.

    Attributes:
        symbols: Annotated symbols.
        unmapped: Count per glyph name (or ``owner kind`` for non-glyph shapes) of what got no class.
    """

    symbols: list[Symbol]
    unmapped: Counter[str]


def _nearest_staff(staves: list[StaffLines], x: float, y: float) -> StaffLines | None:
    best: StaffLines | None = None
    best_d = math.inf
    for s in staves:
        dx = 0.0 if s.x0 - 1 <= x <= s.x1 + 1 else min(abs(x - s.x0), abs(x - s.x1)) * 10
        d = abs(y - s.middle) + dx
        if d < best_d:
            best, best_d = s, d
    return best


def staff_ppq(mei: str) -> dict[int, int]:
    """Staff index (0-based) -> MEI ``ppq`` (ticks per quarter) of a page's staff definitions."""
    out: dict[int, int] = {}
    for m in re.finditer(r"<staffDef\b[^>]*>", mei):
        n, q = re.search(r'\bn="(\d+)"', m.group(0)), re.search(r'\bppq="(\d+)"', m.group(0))
        if n and q and int(q.group(1)) > 0:
            out.setdefault(int(n.group(1)) - 1, int(q.group(1)))
    return out


_DUR_QUARTERS = {"long": Fraction(16), "breve": Fraction(8)}


def _duration(ctx: dict[str, object], ppq: Mapping[int, int] | None = None) -> str | None:
    """verovio's written duration (``4``, ``8.``), with the tuplet ratio ``*a/b`` when the note is in one.

    The ratio comes from the drawn tuplet, or else from the note's real length in ticks (``dur.ppq``): a
    source may time notes as triplets (MusicXML ``time-modification``) without a tuplet to draw.
    """
    dur = ctx.get("dur")
    if dur is None:
        return None
    text = str(dur)
    dots = int(str(ctx.get("dots") or 0))
    text += "." * dots
    tup = ctx.get("tuplet")
    if tup:
        return text + f"*{tup}"
    ticks, staff = ctx.get("dur.ppq"), ctx.get("staff")
    if ppq and ticks is not None and staff is not None and int(str(staff)) in ppq and not ctx.get("grace"):
        written = _DUR_QUARTERS.get(str(dur)) or (Fraction(4, int(str(dur))) if str(dur).isdigit() and int(str(dur)) else None)
        if written and int(str(ticks)) > 0:
            ratio = Fraction(int(str(ticks)), ppq[int(str(staff))]) / (written * (2 - Fraction(1, 2**dots)))
            if ratio != 1:
                text += f"*{ratio.numerator}/{ratio.denominator}"
    return text


def pitch_text(step: str, alter: int, octave: int) -> str:
    """Scientific pitch spelling used in the ``pitch`` comment: ``C4``, ``F#5``, ``Bb3``, ``G##2``."""
    return f"{step.upper()}{'#' * alter if alter > 0 else 'b' * -alter}{octave}"


def _truth(ctx: dict[str, object]) -> str:
    """The source note of a notehead as comment pairs: ``pitch``, ``grace`` and verovio's ``note`` id."""
    parts = []
    if "pname" in ctx:
        parts.append(f"pitch:{pitch_text(str(ctx['pname']), int(ctx['alter']), int(ctx['oct']))};")  # type: ignore[call-overload]
    if ctx.get("grace"):
        parts.append(f"grace:{ctx['grace']};")
    if ctx.get("note_id"):
        parts.append(f"note:{ctx['note_id']};")
    return "".join(parts)


def _small(p: Prim, staff: StaffLines | None) -> bool:
    if staff is None or p.glyph_scale <= 0:
        return False
    return p.glyph_scale < SMALL_RATIO * 4 * staff.space / 1000


def _split_octave_clef(p: Prim, staff: StaffLines | None) -> tuple[Box, Box]:
    """Split a clef-with-octave glyph box into the clef body and the small 8/15 (below or above)."""
    x0, y0, x1, y1 = p.box
    space = staff.space if staff else (y1 - y0) / 8
    # the octave figure is about one staff space tall and sits outside the staff
    if staff is not None and y1 > staff.ys[-1] + 1.5 * space:
        cut = y1 - 1.25 * space
        num = (x0 + (x1 - x0) * 0.3, cut, x0 + (x1 - x0) * 0.7, y1)
        return (x0, y0, x1, cut - 0.1 * space), num
    cut = y0 + 1.25 * space
    num = (x0 + (x1 - x0) * 0.3, y0, x0 + (x1 - x0) * 0.7, cut)
    return (x0, cut + 0.1 * space, x1, y1), num


def classify(page: PageGeometry, known: Set[str], *, ppq: Mapping[int, int] | None = None) -> Classified:
    """Decide the official class of every primitive of a page.

    Args:
        page: The parsed page.
        known: Official deepscores-set class names (a class missing here is reported as unmapped).
        ppq: Ticks per quarter per staff index (`staff_ppq` of the page's MEI), so notes timed as tuplets
            without a drawn tuplet get their ratio in the ``duration`` comment.

    Returns:
        Symbols to annotate and the unmapped counts.
    """
    c = _Classifier(page.staves, known, ppq)
    c.staff_boxes()
    merged: dict[int, list[Prim]] = {}  # symbols drawn as several primitives, by their SVG group
    for p in page.prims:
        if p.owner in MERGED_OWNERS:
            merged.setdefault(p.group, []).append(p)
        elif p.kind == "text":
            c.unmapped[f"text ({p.owner or 'page'})"] += 1
        elif p.kind == "glyph":
            c.glyph(p)
        else:
            c.geometry(p)
    for prims in merged.values():
        c.group(prims)
    return Classified(_drop_duplicates(c.symbols, c.unmapped), c.unmapped)


#: Shapes drawn as SVG geometry: (owner, primitive kind) -> class.
_GEOMETRY_CLASSES = {
    ("stem", "line"): "stem",
    ("ledgerLines", "line"): "ledgerLine",
    ("beam", "polygon"): "beam",
    ("beamSpan", "polygon"): "beam",
    ("slur", "path"): "slur",
    ("tie", "path"): "tie",
    ("dots", "ellipse"): "augmentationDot",
}


class _Classifier:
    """The symbols of one page as `classify` finds them, and what it could not map."""

    def __init__(self, staves: list[StaffLines], known: Set[str], ppq: Mapping[int, int] | None) -> None:
        self.staves = staves
        self.known = known
        self.ppq = ppq
        self.symbols: list[Symbol] = []
        self.unmapped: Counter[str] = Counter()

    def add(self, name: str, prims: list[Prim], comment: str = "", box: Box | None = None, area: float | None = None) -> None:
        if name not in self.known:
            self.unmapped[name] += 1
            return
        self.symbols.append(
            Symbol(
                name,
                box if box is not None else union([p.box for p in prims]),
                area if area is not None else sum(p.area for p in prims),
                comment,
                prims,
            )
        )

    def staff_boxes(self) -> None:
        """One staff box per staff of a system, across its measures (DeepScoresV2 boxes the whole staff)."""
        by_staff: dict[tuple[int, int], list[StaffLines]] = {}
        for s in self.staves:
            by_staff.setdefault((s.system, s.index), []).append(s)
        for segs in by_staff.values():
            self.symbols.append(Symbol("staff", union([s.box for s in segs]), sum(s.area for s in segs), "", []))

    def glyph(self, p: Prim) -> None:
        """A SMuFL glyph: noteheads by staff position, accidentals, clefs (C clefs by line, octave clefs split), flags."""
        name = glyph_name(p.glyph)
        owner = p.owner
        cx, cy = (p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2
        if name in NOTEHEADS and owner == "notehead":
            self.notehead(p, name)
        elif name in ACCIDENTALS:
            if owner == "keyAccid":
                self.add(ACCIDENTALS[name] or name, [p])
            else:
                staff = _nearest_staff(self.staves, cx, cy)
                self.add(name + ("Small" if name in SMALL_VARIANTS and _small(p, staff) else ""), [p])
        elif name in CLEFS:
            self.clef(p, name)
        elif name.startswith("flag"):
            cls = GLYPH_CLASSES.get(name, name)
            staff = _nearest_staff(self.staves, cx, cy)
            if cls in SMALL_VARIANTS and _small(p, staff):
                cls += "Small"
            self.add(cls, [p])
        elif name in GLYPH_CLASSES:
            self.add(GLYPH_CLASSES[name], [p])
        else:
            self.unmapped[name] += 1

    def notehead(self, p: Prim, name: str) -> None:
        ox, oy = p.origin
        staff = _nearest_staff(self.staves, ox, oy)
        if staff is None:
            self.unmapped[name] += 1
            return
        rel = round((staff.middle - oy) / (staff.space / 2))
        base = NOTEHEADS[name] + ("OnLine" if rel % 2 == 0 else "InSpace")
        if _small(p, staff):
            base += "Small"
        parts = []
        dur = _duration(p.ctx, self.ppq)
        if dur:
            parts.append(f"duration:{dur};")
        parts.append(f"rel_position:{rel};")
        parts.append(_truth(p.ctx))
        self.add(base, [p], "".join(parts))

    def clef(self, p: Prim, name: str) -> None:
        cls = CLEFS[name]
        ox, oy = p.origin
        staff = _nearest_staff(self.staves, ox, oy)
        if cls == "clefC":
            if staff is None:
                self.unmapped[name] += 1
                return
            line = 1 + round((staff.ys[-1] - oy) / staff.space)
            self.add({3: "clefCAlto", 4: "clefCTenor"}.get(line, f"cClef (line {line})"), [p])
        elif "+" in cls:
            body, octave = cls.split("+")
            clef_box, num_box = _split_octave_clef(p, staff)
            # boxes split from one glyph: no primitive of their own (approximate, see _split_octave_clef)
            self.add(body, [], box=clef_box, area=p.area * 0.85)
            self.add(f"clef{octave}", [], box=num_box, area=p.area * 0.15)
        else:
            self.add(cls, [p])

    def geometry(self, p: Prim) -> None:
        """Shapes drawn as SVG geometry: stems, ledger lines, beams, slurs, ties, dots."""
        cls = _GEOMETRY_CLASSES.get((p.owner, p.kind))
        if cls is None:
            self.unmapped[f"{p.owner or 'page'} {p.kind}"] += 1
        else:
            self.add(cls, [p])

    def group(self, prims: list[Prim]) -> None:
        """A symbol drawn as several primitives of one SVG group (tuplet numbers, brackets, braces, hairpins…)."""
        owner = prims[0].owner
        n_text = sum(1 for p in prims if p.kind == "text")
        if n_text:
            self.unmapped[f"text ({owner})"] += n_text
        drawn = [p for p in prims if p.kind != "text"]
        if not drawn:
            return
        if owner == "tupletNum":
            digits = "".join(glyph_name(p.glyph).removeprefix("tuplet") for p in drawn if p.kind == "glyph")
            self.add(f"tuplet{digits}" if digits.isdigit() else "tupletNum (other)", drawn)
        elif owner == "tupletBracket":
            self.add("tupletBracket", drawn)
        elif owner == "grpSym":
            names = {glyph_name(p.glyph) for p in drawn if p.kind == "glyph"}
            if "brace" in names or all(p.kind == "path" for p in drawn):
                self.add("brace", drawn)
            else:
                self.unmapped["bracket"] += 1
        elif owner == "arpeg":
            self.add("arpeggiato", drawn)
        elif owner == "octave":
            self.add("ottavaBracket", drawn)
        elif owner == "hairpin":
            self.hairpin(drawn)

    def hairpin(self, drawn: list[Prim]) -> None:
        pts = []
        for p in drawn:
            if p.element is not None and p.kind == "polyline":
                v = [float(x) for x in re.findall(r"[-+]?\d*\.?\d+", p.element.get("points", ""))]
                pts += list(zip(v[0::2], v[1::2]))
        if len(pts) >= 3:
            apex_x = pts[len(pts) // 2][0]
            ends = (pts[0][0] + pts[-1][0]) / 2
            self.add("dynamicCrescendoHairpin" if apex_x < ends else "dynamicDiminuendoHairpin", drawn)
        else:
            self.unmapped[f"hairpin {'+'.join(p.kind for p in drawn)}"] += 1


def _drop_duplicates(symbols: list[Symbol], unmapped: Counter[str]) -> list[Symbol]:
    """Keep one of several same-class symbols drawn on the very same spot (verovio draws a clef change
    shared by two layers once per layer): one symbol on the page, one annotation; the rest are counted.

    Noteheads are exempt: two voices in unison are two notes, each with its notehead box.
    """
    seen: set[tuple[str, int, int, int, int]] = set()
    out: list[Symbol] = []
    for sym in symbols:
        x0, y0, x1, y1 = sym.box
        key = (sym.name, round(x0 * 2), round(y0 * 2), round(x1 * 2), round(y1 * 2))
        if sym.name.startswith("notehead"):
            out.append(sym)
            continue
        if key in seen:
            unmapped[f"{sym.name} drawn twice on one spot"] += 1
            continue
        seen.add(key)
        out.append(sym)
    return out
