"""SVG geometry for the engraver: walk a verovio page SVG and return every drawn primitive in page pixels."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

#: An affine matrix (a, b, c, d, e, f) as in SVG: x' = a*x + c*y + e, y' = b*x + d*y + f.
Matrix = tuple[float, float, float, float, float, float]
Box = tuple[float, float, float, float]

IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)

#: Stroke width an SVG shape gets from verovio's CSS (``path, polygon, … {stroke:currentColor}``) when it
#: has no stroke-width attribute: the SVG default of 1 user unit, which still widens the ink a little.
DEFAULT_STROKE = 1.0

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATH_TOKEN = re.compile(rf"([MmZzLlHhVvCcSsQqTtAa])|({_NUM})")
_NUMBERS = re.compile(_NUM)
_TRANSFORM = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")


def mul(m: Matrix, n: Matrix) -> Matrix:
    """The matrix that applies ``n`` first, then ``m``."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (
        a * a2 + c * b2,
        b * a2 + d * b2,
        a * c2 + c * d2,
        b * c2 + d * d2,
        a * e2 + c * f2 + e,
        b * e2 + d * f2 + f,
    )


def parse_transform(text: str | None) -> Matrix:
    """Parse an SVG ``transform`` attribute into one matrix."""
    m = IDENTITY
    if not text:
        return m
    for name, args in _TRANSFORM.findall(text):
        v = [float(x) for x in _NUMBERS.findall(args)]
        if name == "translate":
            t: Matrix = (1.0, 0.0, 0.0, 1.0, v[0], v[1] if len(v) > 1 else 0.0)
        elif name == "scale":
            t = (v[0], 0.0, 0.0, v[1] if len(v) > 1 else v[0], 0.0, 0.0)
        elif name == "matrix":
            t = (v[0], v[1], v[2], v[3], v[4], v[5])
        elif name == "rotate":
            r = math.radians(v[0])
            cs, sn = math.cos(r), math.sin(r)
            t = (cs, sn, -sn, cs, 0.0, 0.0)
            if len(v) == 3:
                t = mul(mul((1.0, 0.0, 0.0, 1.0, v[1], v[2]), t), (1.0, 0.0, 0.0, 1.0, -v[1], -v[2]))
        elif name == "skewX":
            t = (1.0, 0.0, math.tan(math.radians(v[0])), 1.0, 0.0, 0.0)
        else:
            t = (1.0, math.tan(math.radians(v[0])), 0.0, 1.0, 0.0, 0.0)
        m = mul(m, t)
    return m


def apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    """Map a point through ``m``."""
    return m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]


def is_axis_aligned(m: Matrix) -> bool:
    """True when ``m`` only scales and translates (boxes map to boxes exactly)."""
    return abs(m[1]) < 1e-12 and abs(m[2]) < 1e-12


def map_box(m: Matrix, box: Box) -> Box:
    """The axis-aligned box of ``box`` mapped through ``m`` (exact for axis-aligned matrices)."""
    x0, y0, x1, y1 = box
    pts = [apply(m, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def union(boxes: list[Box]) -> Box:
    """The smallest box holding every box in ``boxes``."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _cubic_extrema(p0: float, p1: float, p2: float, p3: float) -> list[float]:
    """Parameter values in (0, 1) where a cubic Bezier coordinate has a local extremum."""
    a = -p0 + 3 * p1 - 3 * p2 + p3
    b = 2 * (p0 - 2 * p1 + p2)
    c = p1 - p0
    out: list[float] = []
    if abs(a) < 1e-12:
        if abs(b) > 1e-12:
            out.append(-c / b)
    else:
        disc = b * b - 4 * a * c
        if disc >= 0:
            sq = math.sqrt(disc)
            out += [(-b + sq) / (2 * a), (-b - sq) / (2 * a)]
    return [t for t in out if 0.0 < t < 1.0]


def _cubic_at(p0: float, p1: float, p2: float, p3: float, t: float) -> float:
    u = 1 - t
    return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3


@dataclass(frozen=True)
class PathGeometry:
    """Exact bounding box, filled area and a flattened outline of an SVG path (its own coordinates).

    Attributes:
        box: Tight box of the path outline (Bezier extrema included).
        area: Filled area by the shoelace formula on the flattened outline (nonzero fill approximated).
        points: Flattened outline points, used to map the path through rotating transforms.
    """

    box: Box
    area: float
    points: tuple[tuple[float, float], ...]


#: Numbers each path command takes per segment.
_ARITY = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}


def _segments(d: str) -> Iterator[tuple[str, list[float]]]:
    """Path data as ``(command letter, its numbers)`` per segment, implicit repeats spelled out.

    Numbers after a move-to are line-tos (``m`` gives ``l``); a letter followed by several groups of numbers
    yields one segment per group.
    """
    tokens = _PATH_TOKEN.findall(d)
    cmd = ""
    i, n = 0, len(tokens)
    while i < n:
        if tokens[i][0]:
            cmd = tokens[i][0]
            i += 1
            if cmd in "Zz":
                yield cmd, []
                continue
        elif not cmd:
            raise ValueError(f"path data starts with a number: {d[:40]!r}")
        elif cmd in "Zz":
            raise ValueError(f"numbers after a close-path command in {d[:40]!r}")
        k = _ARITY[cmd.upper()]
        args = [float(tokens[j][1]) for j in range(i, i + k)]
        i += k
        yield cmd, args
        if cmd in "Mm":
            cmd = "l" if cmd == "m" else "L"


class _Pen:
    """The pen walking one path: where it is, the last control points, and what it has drawn so far."""

    __slots__ = ("flatten", "xs", "ys", "pts", "sub", "area", "cx", "cy", "sx", "sy", "last_ctrl", "last_q")

    def __init__(self, flatten: int) -> None:
        self.flatten = flatten
        self.xs: list[float] = []  # every x the outline reaches (end points and Bezier extrema): the box
        self.ys: list[float] = []
        self.pts: list[tuple[float, float]] = []  # flattened outline of the closed subpaths
        self.sub: list[tuple[float, float]] = []  # flattened outline of the open subpath
        self.area = 0.0
        self.cx = self.cy = self.sx = self.sy = 0.0
        self.last_ctrl: tuple[float, float] | None = None  # for S: the previous cubic's second control point
        self.last_q: tuple[float, float] | None = None  # for T: the previous quadratic's control point

    def close(self) -> None:
        """End the subpath: add its shoelace area and keep its outline."""
        sub = self.sub
        if len(sub) > 2:
            s = 0.0
            for (x0, y0), (x1, y1) in zip(sub, sub[1:] + sub[:1]):
                s += x0 * y1 - x1 * y0
            self.area += s / 2
        self.pts.extend(sub)
        self.sub = []

    def move(self, x: float, y: float) -> None:
        self.close()
        self.cx, self.cy = self.sx, self.sy = x, y
        self.xs.append(x)
        self.ys.append(y)
        self.sub.append((x, y))
        self.last_ctrl = self.last_q = None

    def line(self, x: float, y: float) -> None:
        self.cx, self.cy = x, y
        self.xs.append(x)
        self.ys.append(y)
        self.sub.append((x, y))

    def cubic(self, x1: float, y1: float, x2: float, y2: float, x: float, y: float) -> None:
        cx, cy = self.cx, self.cy
        for t in _cubic_extrema(cx, x1, x2, x):
            self.xs.append(_cubic_at(cx, x1, x2, x, t))
        for t in _cubic_extrema(cy, y1, y2, y):
            self.ys.append(_cubic_at(cy, y1, y2, y, t))
        flatten = self.flatten
        for k in range(1, flatten):
            t = k / flatten
            self.sub.append((_cubic_at(cx, x1, x2, x, t), _cubic_at(cy, y1, y2, y, t)))
        self.line(x, y)

    def quadratic(self, qx: float, qy: float, x: float, y: float) -> None:
        """A quadratic is the cubic with control points 2/3 of the way to the quadratic one."""
        cx, cy = self.cx, self.cy
        self.cubic(cx + 2 / 3 * (qx - cx), cy + 2 / 3 * (qy - cy), x + 2 / 3 * (qx - x), y + 2 / 3 * (qy - y), x, y)

    def geometry(self) -> PathGeometry:
        self.close()
        if not self.xs:
            return PathGeometry((0.0, 0.0, 0.0, 0.0), 0.0, ())
        return PathGeometry((min(self.xs), min(self.ys), max(self.xs), max(self.ys)), abs(self.area), tuple(self.pts))


def _draw(pen: _Pen, cmd: str, v: list[float]) -> None:
    """Draw one segment (absolute or relative) with ``pen``."""
    c = cmd.upper()
    if c == "Z":
        pen.close()
        pen.cx, pen.cy = pen.sx, pen.sy
        pen.last_ctrl = pen.last_q = None
        return
    ox, oy = (pen.cx, pen.cy) if cmd.islower() else (0.0, 0.0)
    if c == "M":
        pen.move(v[0] + ox, v[1] + oy)
    elif c in "LA":  # arcs: their end point only (verovio never writes arcs)
        pen.line(v[-2] + ox, v[-1] + oy)
    elif c == "H":
        pen.line(v[0] + ox, pen.cy)
    elif c == "V":
        pen.line(pen.cx, v[0] + oy)
    elif c in "CS":
        if c == "C":
            x1, y1 = v[0] + ox, v[1] + oy
        else:  # the first control point mirrors the previous cubic's second one
            ctrl = pen.last_ctrl
            x1, y1 = (2 * pen.cx - ctrl[0], 2 * pen.cy - ctrl[1]) if ctrl else (pen.cx, pen.cy)
        x2, y2, x, y = v[-4] + ox, v[-3] + oy, v[-2] + ox, v[-1] + oy
        pen.cubic(x1, y1, x2, y2, x, y)
        pen.last_ctrl, pen.last_q = (x2, y2), None
        return
    else:  # Q, T
        if c == "Q":
            qx, qy = v[0] + ox, v[1] + oy
        else:  # the control point mirrors the previous quadratic's
            q = pen.last_q
            qx, qy = (2 * pen.cx - q[0], 2 * pen.cy - q[1]) if q else (pen.cx, pen.cy)
        pen.quadratic(qx, qy, v[-2] + ox, v[-1] + oy)
        pen.last_q, pen.last_ctrl = (qx, qy), None
        return
    pen.last_ctrl = pen.last_q = None


def path_geometry(d: str, flatten: int = 8) -> PathGeometry:
    """Parse SVG path data and return its geometry.

    Three steps: `_segments` splits the data into segments, `_draw` moves a `_Pen` along each, the pen's
    `geometry` is the result. docs/benchmarks.md compares this parser with svgelements and svgpathtools.

    Args:
        d: The ``d`` attribute (absolute and relative commands; arcs are approximated by their end points
            and the box of their ellipse is not taken: verovio never writes arcs).
        flatten: Points per curve segment for the area and the outline.

    Returns:
        The path's `PathGeometry`.

    Raises:
        ValueError: The data starts with a number or has numbers after a close-path.
    """
    pen = _Pen(flatten)
    for cmd, v in _segments(d):
        _draw(pen, cmd, v)
    return pen.geometry()


@dataclass
class Prim:
    """One drawn primitive of a verovio page, in page pixels.

    Attributes:
        kind: ``glyph``, ``line``, ``path``, ``polygon``, ``polyline``, ``ellipse``, ``rect`` or ``text``.
        owner: Class of the nearest ancestor ``<g>`` that has one (``note`` ancestors are skipped for glyphs
            that belong to a ``notehead`` group), e.g. ``stem``, ``accid``, ``staff``.
        group: Identity of that owner element (primitives of one owner share it).
        box: Tight box of the ink ``(x0, y0, x1, y1)`` in page pixels (floats, continuous coordinates).
        area: Area of the ink in square pixels (analytic: filled outline plus stroke).
        glyph: SMuFL code point (``"E0A4"``) for glyphs, else None.
        origin: Where the glyph's origin lands on the page (pixels), for glyphs.
        glyph_scale: Pixels per font unit of the glyph (1000 units = 1 em = 4 staff spaces at full size).
        ctx: Context of the primitive: ``system`` index, ``staff`` index within the measure, the note's
            ``dur``/``dots``/``grace``, ``tuplet`` ratio, ``layer`` order, and the ancestor classes.
        element: The SVG element (kept so tests can render one symbol on its own).
        matrix: Transform from the element's parent user space to page pixels (a ``use`` element's own
            transform is not included).
        geom: Outline geometry of glyphs and paths (in their own coordinates), else None.
        geom_matrix: Transform of ``geom`` to page pixels.
        pad: Half the stroke width in pixels (outline points lie that far inside the ink edge).
    """

    kind: str
    owner: str
    group: int
    box: Box
    area: float
    glyph: str | None = None
    origin: tuple[float, float] = (0.0, 0.0)
    glyph_scale: float = 0.0
    ctx: dict[str, object] = field(default_factory=dict)
    element: ET.Element | None = None
    matrix: Matrix = IDENTITY
    geom: PathGeometry | None = None
    geom_matrix: Matrix = IDENTITY
    pad: float = 0.0


@dataclass(frozen=True)
class StaffLines:
    """The five lines of one staff in one measure, in page pixels.

    Attributes:
        system: System index on the page.
        index: Staff index within the system (top to bottom).
        x0: Left end of the lines.
        x1: Right end of the lines.
        ys: Centre y of each line, top to bottom.
        box: Tight ink box of the lines.
        area: Ink area of the lines.
    """

    system: int
    index: int
    x0: float
    x1: float
    ys: tuple[float, ...]
    box: Box
    area: float

    @property
    def space(self) -> float:
        """Distance between neighbouring lines."""
        return (self.ys[-1] - self.ys[0]) / max(1, len(self.ys) - 1)

    @property
    def middle(self) -> float:
        """Centre y of the middle line."""
        return (self.ys[0] + self.ys[-1]) / 2


@dataclass
class PageGeometry:
    """Everything the classifier needs from one rendered page.

    Attributes:
        width: Page width in pixels (the raster size).
        height: Page height in pixels.
        prims: Drawn primitives in drawing order.
        staves: Staff lines per measure and staff.
        glyph_defs: SMuFL code -> the ``<path>`` element that draws it (for isolated renders in tests).
        root: The parsed SVG.
    """

    width: int
    height: int
    prims: list[Prim]
    staves: list[StaffLines]
    glyph_defs: dict[str, ET.Element]
    root: ET.Element


#: MEI accidental values -> alteration in semitones.
ACCID_ALTER = {"s": 1, "f": -1, "n": 0, "x": 2, "ss": 2, "ff": -2, "ns": 1, "nf": -1, "xs": 3, "ts": 3, "tf": -3}


def note_pitch(el: ET.Element) -> dict[str, object]:
    """The encoded pitch of a verovio ``<g class="note">`` (from the ``data-`` attributes the engraver asks for).

    The alteration is the one the note sounds with: its own accidental when it shows one, else the gestural
    one verovio derives from the key signature and earlier accidentals in the measure (``accid.ges``).

    Returns:
        ``note_id``, and ``pname`` (a-g), ``oct`` and ``alter`` when the note has a pitch.
    """
    out: dict[str, object] = {"note_id": el.get("id", "")}
    pname, octave = el.get("data-pname"), el.get("data-oct")
    if not pname or octave is None:
        return out
    accid = el.get("data-accid") or el.get("data-accid.ges")
    for child in el.iter(f"{SVG_NS}g"):
        if (child.get("class") or "").split()[:1] == ["accid"]:
            accid = child.get("data-accid") or child.get("data-accid.ges") or accid
    out.update(pname=pname.lower(), oct=int(octave), alter=ACCID_ALTER.get(accid or "n", 0))
    return out


def _length(v: str | None) -> float:
    if not v:
        return 0.0
    m = _NUMBERS.match(v.strip())
    return float(m.group(0)) if m else 0.0


def _viewbox_matrix(width: float, height: float, viewbox: str | None) -> Matrix:
    """The viewport transform of SVG's default ``preserveAspectRatio="xMidYMid meet"``."""
    if not viewbox:
        return IDENTITY
    vx, vy, vw, vh = (float(x) for x in _NUMBERS.findall(viewbox))
    s = min(width / vw, height / vh)
    tx = (width - vw * s) / 2 - vx * s
    ty = (height - vh * s) / 2 - vy * s
    return (s, 0.0, 0.0, s, tx, ty)


def _stroke_width(el: ET.Element, inherited: float) -> float:
    sw = el.get("stroke-width")
    return float(sw) if sw is not None else inherited


def _line_box(x1: float, y1: float, x2: float, y2: float, w: float, cap: str) -> list[tuple[float, float]]:
    """Corners of the outline of a stroked straight segment."""
    dx, dy = x2 - x1, y2 - y1
    ln = math.hypot(dx, dy)
    if ln == 0:
        ux, uy = 1.0, 0.0
    else:
        ux, uy = dx / ln, dy / ln
    nx, ny = -uy * w / 2, ux * w / 2
    ex, ey = (ux * w / 2, uy * w / 2) if cap in ("square", "round") else (0.0, 0.0)
    return [
        (x1 - ex + nx, y1 - ey + ny),
        (x1 - ex - nx, y1 - ey - ny),
        (x2 + ex + nx, y2 + ey + ny),
        (x2 + ex - nx, y2 + ey - ny),
    ]


def _polyline_outline(
    pts: list[tuple[float, float]], w: float, cap: str, join: str, closed: bool
) -> list[tuple[float, float]]:
    """Points whose hull is the outline of a stroked polyline (butt/square caps, miter/bevel joins)."""
    out: list[tuple[float, float]] = []
    segs = list(zip(pts, pts[1:] + (pts[:1] if closed else [])))
    for k, ((x1, y1), (x2, y2)) in enumerate(segs):
        c = cap if (not closed and (k == 0 or k == len(segs) - 1)) else "butt"
        corners = _line_box(x1, y1, x2, y2, w, c)
        if not closed and len(segs) > 1:
            # caps only at the open ends of the polyline
            if k == 0:
                corners = _line_box(x1, y1, x2, y2, w, cap)[:2] + _line_box(x1, y1, x2, y2, w, "butt")[2:]
            elif k == len(segs) - 1:
                corners = _line_box(x1, y1, x2, y2, w, "butt")[:2] + _line_box(x1, y1, x2, y2, w, cap)[2:]
            else:
                corners = _line_box(x1, y1, x2, y2, w, "butt")
        out += corners
    if join == "miter":
        n = len(pts)
        idx = range(n) if closed else range(1, n - 1)
        for k in idx:
            px, py = pts[k - 1]
            qx, qy = pts[k]
            rx, ry = pts[(k + 1) % n]
            a1 = math.atan2(qy - py, qx - px)
            a2 = math.atan2(ry - qy, rx - qx)
            turn = (a2 - a1 + math.pi) % (2 * math.pi) - math.pi
            theta = math.pi - abs(turn)  # interior angle between the two segments
            if theta <= 1e-9:
                continue
            ratio = 1 / math.sin(theta / 2)
            if ratio > 4.0:  # SVG's default stroke-miterlimit: a bevel instead
                continue
            bis = a1 + turn / 2 + math.pi / 2 * (1 if turn < 0 else -1)
            dist = w / 2 * ratio
            out.append((qx + math.cos(bis) * dist, qy + math.sin(bis) * dist))
            out.append((qx - math.cos(bis) * dist, qy - math.sin(bis) * dist))
    return out


class _Walker:
    """Depth-first walk of a verovio SVG collecting `Prim`s."""

    def __init__(self, root: ET.Element) -> None:
        self.root = root
        self.prims: list[Prim] = []
        self.staves: list[StaffLines] = []
        self.glyph_defs: dict[str, ET.Element] = {}
        self.glyph_geom: dict[str, tuple[PathGeometry, Matrix]] = {}
        self.system = -1
        self.group = 0
        self.staff_in_measure = 0

    def glyph(self, code: str) -> tuple[PathGeometry, Matrix] | None:
        return self.glyph_geom.get(code)

    def read_defs(self, defs: ET.Element) -> None:
        for g in defs:
            gid = g.get("id", "")
            code = gid.split("-")[0]
            paths = [p for p in g.iter(f"{SVG_NS}path")]
            if not paths:
                continue
            p = paths[0]
            self.glyph_defs[code] = p
            self.glyph_geom[code] = (_geometry_cached(p.get("d", "")), parse_transform(p.get("transform")))

    def walk(self, el: ET.Element, m: Matrix, owner: str, group: int, ctx: dict[str, object], sw: float) -> None:
        tag = el.tag[len(SVG_NS) :] if el.tag.startswith(SVG_NS) else el.tag
        if tag == "defs":
            self.read_defs(el)
            return
        if tag in ("desc", "style", "title"):
            return
        cls = el.get("class") or ""
        if "placeholder" in cls.split():
            return  # hidden by verovio's CSS (visibility:hidden): not drawn
        if el.get("visibility") == "hidden" or el.get("display") == "none":
            return
        if tag == "svg":
            w = _length(el.get("width"))
            h = _length(el.get("height"))
            if el is self.root:
                self.width, self.height = int(round(w)), int(round(h))
                vm = _viewbox_matrix(w, h, el.get("viewBox"))
            else:
                vm = _viewbox_matrix(w or self.width, h or self.height, el.get("viewBox"))
                vm = mul(parse_transform(el.get("transform")), vm)
            m = mul(m, vm)
        elif el.get("transform") and tag != "use":
            m = mul(m, parse_transform(el.get("transform")))
        sw = _stroke_width(el, sw)
        if tag == "g" and cls:
            first = cls.split()[0]
            ctx = dict(ctx)
            ctx.setdefault("ancestors", ())
            ctx["ancestors"] = (*ctx["ancestors"], first)  # type: ignore[misc]
            if first == "system":
                self.system += 1
                ctx["system"] = self.system
            elif first == "measure":
                self.staff_in_measure = 0
            elif first == "staff":
                ctx["staff"] = self.staff_in_measure
                self.staff_in_measure += 1
                self.read_staff_lines(el, m, ctx, sw)
            elif first in ("note", "chord", "rest", "mRest", "multiRest"):
                for key in ("dur", "dots", "grace", "dur.ppq"):
                    v = el.get(f"data-{key}")
                    if v is not None:
                        ctx[key] = v
                if first == "note":
                    ctx.update(note_pitch(el))
            elif first == "tuplet":
                num, base = el.get("data-num"), el.get("data-numbase")
                if num and base:
                    ctx["tuplet"] = f"{base}/{num}"
            self.group += 1
            owner, group = first, self.group
        for child in el:
            ctag = child.tag[len(SVG_NS) :] if child.tag.startswith(SVG_NS) else child.tag
            if ctag in ("g", "svg", "defs", "desc", "style", "title"):
                self.walk(child, m, owner, group, ctx, sw)
            elif ctag == "path" and owner == "staff" and child.get("_staffline") == "1":
                continue  # already recorded as staff lines
            else:
                self.shape(child, ctag, m, owner, group, ctx, _stroke_width(child, sw))

    def read_staff_lines(self, el: ET.Element, m: Matrix, ctx: dict[str, object], sw: float) -> None:
        lines: list[tuple[float, float, float, float]] = []  # x0, x1, y, stroke width (px)
        boxes: list[Box] = []
        area = 0.0
        for child in el:
            if child.tag != f"{SVG_NS}path":
                continue
            d = child.get("d", "")
            v = [float(x) for x in _NUMBERS.findall(d)]
            if len(v) != 4 or v[1] != v[3]:
                continue
            w = _stroke_width(child, sw)
            outline = [
                apply(m, x, y) for x, y in _line_box(v[0], v[1], v[2], v[3], w, child.get("stroke-linecap", "butt"))
            ]
            xs = [p[0] for p in outline]
            ys = [p[1] for p in outline]
            boxes.append((min(xs), min(ys), max(xs), max(ys)))
            x0, y0 = apply(m, v[0], v[1])
            x1, _ = apply(m, v[2], v[3])
            lines.append((min(x0, x1), max(x0, x1), y0, w))
            area += (max(xs) - min(xs)) * (max(ys) - min(ys))
            child.set("_staffline", "1")
        if len(lines) >= 2:
            self.staves.append(
                StaffLines(
                    system=int(ctx.get("system", 0)),  # type: ignore[call-overload]
                    index=int(ctx.get("staff", 0)),  # type: ignore[call-overload]
                    x0=min(ln[0] for ln in lines),
                    x1=max(ln[1] for ln in lines),
                    ys=tuple(sorted(ln[2] for ln in lines)),
                    box=union(boxes),
                    area=area,
                )
            )

    def shape(
        self, el: ET.Element, tag: str, m: Matrix, owner: str, group: int, ctx: dict[str, object], sw: float
    ) -> None:
        """Record the primitive of one drawing element (in page pixels, with its ink area)."""
        if el.get("visibility") == "hidden" or el.get("display") == "none":
            return
        draw = _SHAPES.get(tag)  # w: the stroke width in the element's own units (a glyph's: its path's units)
        if draw is not None:
            draw(self, el, tag, m, owner, group, ctx, sw if el.get("stroke") != "none" else 0.0, el.get("fill") != "none")

    def _use(
        self, el: ET.Element, tag: str, m: Matrix, owner: str, group: int, ctx: dict[str, object], w: float, filled: bool
    ) -> None:
        """A ``<use>`` of a glyph: its outline mapped through the use's and the glyph's transforms."""
        href = el.get(XLINK_HREF) or el.get("href") or ""
        code = href.lstrip("#").split("-")[0]
        geo = self.glyph(code)
        um = mul(m, parse_transform(el.get("transform")))
        if geo is None:
            return
        pg, pm = geo
        full = mul(um, pm)
        box = _outline_box(full, pg, w)
        det = abs(full[0] * full[3] - full[1] * full[2])
        origin = apply(um, 0.0, 0.0)
        scale = math.sqrt(det)
        k = math.sqrt(abs(full[0] * full[3] - full[1] * full[2]))
        self.prims.append(
            Prim("glyph", owner, group, box, pg.area * det, code, origin, scale, ctx, el, m, pg, full, w / 2 * k)
        )

    def _path(
        self, el: ET.Element, tag: str, m: Matrix, owner: str, group: int, ctx: dict[str, object], w: float, filled: bool
    ) -> None:
        """A ``<path>``: a straight stroked line (stems, ledger lines, barlines) or any outline."""
        d = el.get("d", "")
        v = _NUMBERS.findall(d)
        cap = el.get("stroke-linecap", "butt")
        if re.fullmatch(r"\s*M\s*" + _NUM + r"[ ,]+" + _NUM + r"\s*L\s*" + _NUM + r"[ ,]+" + _NUM + r"\s*", d):
            x1, y1, x2, y2 = (float(x) for x in v)
            outline = [apply(m, x, y) for x, y in _line_box(x1, y1, x2, y2, w, cap)]
            box = _pts_box(outline)
            k = math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
            area = math.hypot(x2 - x1, y2 - y1) * w * k * k
            self.prims.append(Prim("line", owner, group, box, area, ctx=ctx, element=el, matrix=m, pad=0.0))
            return
        pg = _geometry_cached(d)
        box = _outline_box(m, pg, w)
        det = abs(m[0] * m[3] - m[1] * m[2])
        perim = _perimeter(pg.points)
        area = ((pg.area if filled else 0.0) + perim * w / 2) * det
        self.prims.append(
            Prim(
                "path",
                owner,
                group,
                box,
                area,
                ctx=ctx,
                element=el,
                matrix=m,
                geom=pg,
                geom_matrix=m,
                pad=w / 2 * math.sqrt(det),
            )
        )

    def _poly(
        self, el: ET.Element, tag: str, m: Matrix, owner: str, group: int, ctx: dict[str, object], w: float, filled: bool
    ) -> None:
        """A ``<polygon>``/``<polyline>``: its stroked (and filled, when closed) outline."""
        v = [float(x) for x in _NUMBERS.findall(el.get("points", ""))]
        pts = list(zip(v[0::2], v[1::2]))
        if not pts:
            return
        closed = tag == "polygon"
        outline = _polyline_outline(
            pts, w, el.get("stroke-linecap", "butt"), el.get("stroke-linejoin", "miter"), closed
        )
        if filled and closed:
            outline += pts
        box = _pts_box([apply(m, x, y) for x, y in outline])
        det = abs(m[0] * m[3] - m[1] * m[2])
        shoelace = abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))) / 2
        perim = _perimeter(tuple(pts) if closed else tuple(pts))
        area = ((shoelace if filled and closed else 0.0) + perim * w) * det
        self.prims.append(Prim(tag, owner, group, box, area, ctx=ctx, element=el, matrix=m))

    def _ellipse(
        self, el: ET.Element, tag: str, m: Matrix, owner: str, group: int, ctx: dict[str, object], w: float, filled: bool
    ) -> None:
        """An ``<ellipse>``/``<circle>``."""
        cx, cy = _length(el.get("cx")), _length(el.get("cy"))
        rx = _length(el.get("rx") or el.get("r"))
        ry = _length(el.get("ry") or el.get("r"))
        b = (cx - rx - w / 2, cy - ry - w / 2, cx + rx + w / 2, cy + ry + w / 2)
        det = abs(m[0] * m[3] - m[1] * m[2])
        self.prims.append(
            Prim(
                "ellipse",
                owner,
                group,
                map_box(m, b),
                math.pi * (rx + w / 2) * (ry + w / 2) * det,
                ctx=ctx,
                element=el,
                matrix=m,
            )
        )

    def _rect(
        self, el: ET.Element, tag: str, m: Matrix, owner: str, group: int, ctx: dict[str, object], w: float, filled: bool
    ) -> None:
        """A ``<rect>``."""
        x, y = _length(el.get("x")), _length(el.get("y"))
        wd, ht = _length(el.get("width")), _length(el.get("height"))
        b = (x - w / 2, y - w / 2, x + wd + w / 2, y + ht + w / 2)
        det = abs(m[0] * m[3] - m[1] * m[2])
        self.prims.append(
            Prim("rect", owner, group, map_box(m, b), (wd + w) * (ht + w) * det, ctx=ctx, element=el, matrix=m)
        )

    def _text(
        self, el: ET.Element, tag: str, m: Matrix, owner: str, group: int, ctx: dict[str, object], w: float, filled: bool
    ) -> None:
        """A ``<text>``: its anchor point and content (lyrics, dynamics, tempo words)."""
        content = "".join(el.itertext()).strip()
        if not content:
            return
        ctx = dict(ctx)
        ctx["text"] = content
        x, y = apply(m, _length(el.get("x")), _length(el.get("y")))
        self.prims.append(Prim("text", owner, group, (x, y, x, y), 0.0, ctx=ctx, element=el, matrix=m))


# The drawing elements `_Walker.shape` records, by tag (``w``: the stroke width, 0 when not stroked).
_SHAPES = {
    "use": _Walker._use,
    "path": _Walker._path,
    "polygon": _Walker._poly,
    "polyline": _Walker._poly,
    "ellipse": _Walker._ellipse,
    "circle": _Walker._ellipse,
    "rect": _Walker._rect,
    "text": _Walker._text,
}


def _outline_box(m: Matrix, pg: PathGeometry, w: float) -> Box:
    """Page box of an outline drawn through ``m`` with a stroke of width ``w`` (its own units).

    Round caps/joins widen the outline by half the stroke in every direction; for miter joins on verovio's
    smooth slur/tie outlines the same holds up to rounding.
    """
    b = pg.box
    b = (b[0] - w / 2, b[1] - w / 2, b[2] + w / 2, b[3] + w / 2)
    if is_axis_aligned(m):
        return map_box(m, b)
    return _pts_box([apply(m, x, y) for x, y in pg.points])


def _pts_box(pts: list[tuple[float, float]]) -> Box:
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _perimeter(pts: tuple[tuple[float, float], ...]) -> float:
    return sum(math.hypot(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in zip(pts, pts[1:]))


_GEOM_CACHE: dict[str, PathGeometry] = {}


def _geometry_cached(d: str) -> PathGeometry:
    g = _GEOM_CACHE.get(d)
    if g is None:
        if len(_GEOM_CACHE) > 20000:  # slurs and ties are unique: keep the cache for glyph outlines bounded
            _GEOM_CACHE.clear()
        g = _GEOM_CACHE[d] = path_geometry(d)
    return g


def parse_page(svg: str) -> PageGeometry:
    """Parse one verovio page SVG into primitives and staff lines (page pixel coordinates).

    Args:
        svg: The SVG text from ``toolkit.renderToSVG``.

    Returns:
        The page's `PageGeometry`.
    """
    root = ET.fromstring(svg)
    w = _Walker(root)
    w.width = int(round(_length(root.get("width"))))
    w.height = int(round(_length(root.get("height"))))
    # defs come first in verovio output, but read them up front so order never matters
    for defs in root.iter(f"{SVG_NS}defs"):
        w.read_defs(defs)
    w.walk(root, IDENTITY, "", 0, {}, DEFAULT_STROKE)
    return PageGeometry(w.width, w.height, w.prims, w.staves, w.glyph_defs, root)


_POINTS_CACHE: dict[int, np.ndarray] = {}


def _points_array(g: PathGeometry) -> np.ndarray:
    arr = _POINTS_CACHE.get(id(g))
    if arr is None:
        if len(_POINTS_CACHE) > 20000:
            _POINTS_CACHE.clear()
        arr = _POINTS_CACHE[id(g)] = np.asarray(g.points, dtype=np.float64).reshape(-1, 2)
    return arr


def _map_points(m: Matrix, pts: np.ndarray) -> np.ndarray:
    a, b, c, d, e, f = m
    return np.column_stack((pts[:, 0] * a + pts[:, 1] * c + e, pts[:, 0] * b + pts[:, 1] * d + f))


def prim_outline(p: Prim) -> np.ndarray:
    """Points on the outline of a primitive's ink in page pixels (``(n, 2)``), for exact boxes under rotation.

    Curves are sampled (8 points per segment) and strokes are widened by ``pad`` in every direction
    (the points of the four compass extremes), which is exact for round joins and near-exact otherwise.
    """
    if p.geom is not None and p.geom.points:
        pts = _map_points(p.geom_matrix, _points_array(p.geom))
    elif p.kind in ("polygon", "polyline") and p.element is not None:
        v = np.asarray([float(x) for x in _NUMBERS.findall(p.element.get("points", ""))]).reshape(-1, 2)
        pts = _map_points(p.matrix, v)
    elif p.kind == "ellipse" and p.element is not None:
        cx, cy = _length(p.element.get("cx")), _length(p.element.get("cy"))
        rx = _length(p.element.get("rx") or p.element.get("r"))
        ry = _length(p.element.get("ry") or p.element.get("r"))
        t = np.arange(32) * (np.pi / 16)
        pts = _map_points(p.matrix, np.column_stack((cx + rx * np.cos(t), cy + ry * np.sin(t))))
    else:
        x0, y0, x1, y1 = p.box
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)
    d = p.pad
    if d <= 0:
        return pts
    offsets = np.array([(-d, 0.0), (d, 0.0), (0.0, -d), (0.0, d)])
    return (pts[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
