"""Staff detection: line thickness and staff space from run lengths, the five lines of every staff, systems."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from omr_core.errors import OmrError


class NoStaffError(OmrError):
    """A page on which no staff could be found (blank page, photo, text page...)."""


@dataclass(frozen=True)
class Staff:
    """One five-line staff in page pixels.

    Attributes:
        lines_y: Centre y of the five lines, top to bottom, at the staff's horizontal centre.
        x0: Left end of the lines.
        x1: Right end of the lines.
        line_thickness: Thickness of the lines (px).
        space: Distance between two neighbouring line centres (px), the "staff space".
        slope: dy/dx of the lines (skewed scans); 0 for a straight page.
    """

    lines_y: tuple[float, float, float, float, float]
    x0: float
    x1: float
    line_thickness: float
    space: float
    slope: float = 0.0

    @property
    def xc(self) -> float:
        """Horizontal centre, where `lines_y` are measured."""
        return (self.x0 + self.x1) / 2.0

    @property
    def top(self) -> float:
        """Centre y of the top line at the horizontal centre."""
        return self.lines_y[0]

    @property
    def bottom(self) -> float:
        """Centre y of the bottom line at the horizontal centre."""
        return self.lines_y[4]

    def y_at(self, line: float, x: float) -> float:
        """Centre y of line ``line`` (0 = top, 4 = bottom; fractions and values outside 0-4 allowed) at ``x``."""
        y0 = self.lines_y[0] + line * (self.lines_y[4] - self.lines_y[0]) / 4.0
        return y0 + self.slope * (x - self.xc)

    def position(self, x: float, y: float) -> float:
        """Staff position of point (x, y) in half spaces above the bottom line (0 = bottom line, 8 = top line)."""
        bottom = self.y_at(4, x)
        return (bottom - y) / (self.space / 2.0)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``lines_y``, ``x0``, ``x1``, ``line_thickness``, ``space``, ``slope``)."""
        return {
            "lines_y": [round(v, 2) for v in self.lines_y],
            "x0": round(self.x0, 1),
            "x1": round(self.x1, 1),
            "line_thickness": round(self.line_thickness, 2),
            "space": round(self.space, 2),
            "slope": round(self.slope, 5),
        }


@dataclass(frozen=True)
class System:
    """Staves played together (joined by a brace, bracket or barlines).

    Attributes:
        staves: Indices into the page's staff list, top to bottom.
        x0: Leftmost staff start.
        x1: Rightmost staff end.
        y0: Top line of the first staff.
        y1: Bottom line of the last staff.
    """

    staves: tuple[int, ...]
    x0: float
    x1: float
    y0: float
    y1: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"staves": list(self.staves), "x0": self.x0, "x1": self.x1, "y0": self.y0, "y1": self.y1}


@dataclass(frozen=True)
class StaffMetrics:
    """Page-wide line thickness and staff space from vertical run lengths.

    Attributes:
        line_thickness: Most common vertical black run (px).
        space: Most common distance between the starts of two successive black runs in a column (px).
    """

    line_thickness: float
    space: float


@dataclass(frozen=True)
class PageStaves:
    """Everything staff detection found on one page.

    Attributes:
        staves: Staves top to bottom.
        systems: Systems top to bottom.
        metrics: Page-wide run-length estimates.
        binary: Ink mask of the page (True = ink) used for detection; reconstruction reuses it.
        long_lines: Long thin straight horizontal lines on the page, staff lines or not: one row
            ``(x0, x1, cx, top, bottom)`` (page pixels: extent, centre column, rows) per line at least
            `LONG_LINE_SPACES` staff spaces long.
    """

    staves: tuple[Staff, ...]
    systems: tuple[System, ...]
    metrics: StaffMetrics
    binary: np.ndarray = field(repr=False, compare=False)
    long_lines: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)), repr=False, compare=False)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Convert an image array (H×W, H×W×3 RGB or H×W×4 RGBA) to uint8 grayscale; alpha is composed on white."""
    img = np.asarray(image)
    if img.ndim == 2:
        gray = img
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        rgb = img[..., :3].astype(np.float32)
        g = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if img.shape[2] == 4:
            a = img[..., 3].astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
            g = g * a + 255.0 * (1.0 - a) if img.dtype == np.uint8 else g * a + (1.0 - a)
        gray = g
    else:
        raise OmrError(f"expected a grayscale or RGB(A) image, got an array of shape {img.shape}")
    if gray.dtype != np.uint8:
        gray = np.asarray(gray, dtype=np.float32)
        if gray.size and float(np.nanmax(gray)) <= 1.0:
            gray = gray * 255.0
        gray = np.clip(np.nan_to_num(gray, nan=255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(gray)


def otsu_threshold(gray: np.ndarray) -> float:
    """Otsu's threshold of a uint8 image from a subsampled histogram (pages are large and mostly paper)."""
    import cv2

    # Every other row and column: a quarter of the pixels give the same histogram shape, 4x faster.
    sub = np.ascontiguousarray(gray[::2, ::2]) if gray.size >= 1_000_000 else gray
    hist = cv2.calcHist([sub], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    total = hist.sum()
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - total * m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    return float(np.argmax(between))


def binarize(gray: np.ndarray) -> np.ndarray:
    """Ink mask (True = ink) by Otsu's threshold; a page with no contrast gives no ink."""
    import cv2

    g = to_gray(gray)
    if g.size == 0:
        return np.zeros(g.shape, dtype=bool)
    lo, hi = int(g.min()), int(g.max())
    if hi - lo < 32:  # a flat page: Otsu would split noise into "ink"
        return np.zeros(g.shape, dtype=bool)
    thr = otsu_threshold(g)
    # Otsu on a page that is 95 % paper can land in the paper's tail; stay below 3/4 of the range.
    thr = min(thr, lo + 0.75 * (hi - lo))
    _, b = cv2.threshold(g, thr, 1, cv2.THRESH_BINARY_INV)
    return b.view(np.bool_)


#: Slope difference (about 0.6 degrees) beyond which a staff found on a few strips is refitted at the page's skew.
SKEW_TOLERANCE = 0.01

#: Staff lines thinner than this (small staves on dense pages) are found on a lighter ink mask: anti-aliasing
#: spreads such a line over two rows of light grey that Otsu's threshold can drop both of.
HAIRLINE_PX = 1.5


def _light_ink(gray: np.ndarray) -> np.ndarray:
    """Ink mask that keeps light grey too (up to 80 % of the way from the darkest to the lightest value)."""
    lo, hi = int(gray.min()), int(gray.max())
    return (gray < lo + 0.8 * (hi - lo)).view(np.uint8)


def _vertical_runs(binary: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end (exclusive) and column of every vertical black run in every ``step``-th column."""
    cols = binary[:, ::step].T
    c, h = cols.shape
    padded = np.zeros((c, h + 2), dtype=np.int8)
    padded[:, 1:-1] = cols
    d = np.diff(padded, axis=1)
    sc, sr = np.nonzero(d == 1)
    _, er = np.nonzero(d == -1)
    return sr, er, sc


def measure(binary: np.ndarray) -> StaffMetrics:
    """Line thickness and staff space from vertical run-length statistics.

    The thickness is the most common black run; the space the most common distance between the starts of two
    successive black runs in one column whose lengths are both near the thickness (two staff lines).

    Raises:
        NoStaffError: When the page has no repeated thin horizontal structure (no staff lines).
    """
    h, w = binary.shape
    step = max(1, w // 240)
    starts, ends, cols = _vertical_runs(binary, step)
    if starts.size < 50:
        raise NoStaffError("no staff found: the page has (almost) no ink")
    lengths = ends - starts
    hist = np.bincount(np.minimum(lengths, 64))
    hist[0] = 0
    thick = int(np.argmax(hist[:64]))
    # Thickness is an integer mode; refine with the mean of runs near it (anti-aliased or scanned lines).
    near = (lengths >= max(1, thick - 1)) & (lengths <= thick + 1)
    thickness = float(lengths[near].mean()) if near.any() else float(thick)
    thin = lengths <= max(thick + 2, int(round(thick * 1.6)))
    same_col = cols[1:] == cols[:-1]
    pair = same_col & thin[1:] & thin[:-1]
    dist = (starts[1:] - starts[:-1])[pair]
    dist = dist[(dist > thick + 1) & (dist < min(h, 200))]
    if dist.size < 20:
        raise NoStaffError("no staff found: no repeated thin horizontal lines on the page")
    dh = np.bincount(dist, minlength=int(dist.max()) + 3)
    # Smooth by one bin so a space that falls between two integers is not split in two.
    sm = dh.astype(np.float64)
    sm[1:-1] += 0.5 * (dh[:-2] + dh[2:])
    mode = int(np.argmax(sm))
    lo, hi = max(mode - 1, 0), mode + 2
    weights = dh[lo:hi].astype(np.float64)
    space = float((np.arange(lo, hi) * weights).sum() / max(weights.sum(), 1.0))
    if space < 4:
        raise NoStaffError(f"no staff found: the line spacing ({space:.1f} px) is too small for music")
    return StaffMetrics(line_thickness=thickness, space=space)


@dataclass
class _Seg:
    """Five line candidates found in one vertical strip."""

    strip: int
    ys: np.ndarray


def _strip_peaks(
    prof: np.ndarray, thr: float, max_width: int, full: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Centres of the runs of rows above ``thr`` in each strip's profile (runs thicker than a line dropped).

    Args:
        prof: (rows, strips) ink counts.
        thr: Minimum count for a row to belong to a line.
        max_width: Runs with more rows are not lines (beams, text, clusters).
        full: Ink mass of one staff line crossing the whole strip.

    Returns:
        Per strip, the sorted centres and a line-likeness score of each run: its ink mass up to ``full``,
        minus any excess (a beam lying along a line is thicker than a line).
    """
    h, n = prof.shape
    above = np.zeros((n, h + 2), dtype=np.int8)
    above[:, 1:-1] = (prof >= thr).T
    d = np.diff(above, axis=1)
    sc, sr = np.nonzero(d == 1)
    _, er = np.nonzero(d == -1)
    keep = (er - sr) <= max_width
    sc, sr, er = sc[keep], sr[keep], er[keep]
    pt = prof.T
    c0 = np.zeros((n, h + 1))
    c0[:, 1:] = np.cumsum(pt, axis=1)
    c1 = np.zeros((n, h + 1))
    c1[:, 1:] = np.cumsum(pt * np.arange(h)[None, :], axis=1)
    mass = c0[sc, er] - c0[sc, sr]
    centre = (c1[sc, er] - c1[sc, sr]) / np.maximum(mass, 1e-9)
    bounds = np.searchsorted(sc, np.arange(n + 1))
    score = np.where(mass <= full, mass, 2 * full - mass)
    return [(centre[bounds[i] : bounds[i + 1]], score[bounds[i] : bounds[i + 1]]) for i in range(n)]


def _five_in_a_row(ys: np.ndarray, mass: np.ndarray, space: float) -> list[np.ndarray]:
    """Groups of five candidates spaced one staff space apart.

    Candidates are first chained while the spacing holds; a chain longer than five (ledger lines of a passage
    above or below the staff continue the pattern) keeps the five strongest consecutive lines, since staff lines
    cross the whole strip and ledger lines do not.
    """
    n = ys.size
    tol = max(1.5, 0.2 * space)
    # Python lists: the walk reads one candidate at a time, which NumPy scalars make several times slower.
    yl = ys.tolist()
    used = [False] * n
    found: list[np.ndarray] = []
    for i in range(n):
        if used[i]:
            continue
        chain = [i]
        while True:
            target = yl[chain[-1]] + space
            best, bestd = -1, tol
            for k in range(chain[-1] + 1, n):
                if yl[k] > target + tol:
                    break
                dk = abs(yl[k] - target)
                if dk <= bestd and not used[k]:
                    best, bestd = k, dk
            if best < 0:
                break
            chain.append(best)
        if len(chain) < 5:
            continue
        for c in chain:
            used[c] = True
        found.extend(_split_chain(ys[chain], mass[chain]))
    return found


def _split_chain(ys: np.ndarray, mass: np.ndarray) -> list[np.ndarray]:
    """The staves in one chain of evenly spaced lines.

    Staff lines cross the whole strip, ledger lines rarely do: a run of strong lines whose length is a multiple
    of five is that many staves stacked with no gap (dense pages); otherwise the strongest five lines are a
    staff and the rest of the chain is searched the same way, each side on its own.
    """
    if ys.size < 5:
        return []
    if ys.size == 5:
        return [ys]
    strong = mass >= 0.75 * mass.max()
    out: list[np.ndarray] = []
    edges = np.diff(np.concatenate(([0], strong.view(np.int8), [0])))
    for a, b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
        if b - a >= 10 and (b - a) % 5 == 0:
            out.extend(ys[k : k + 5] for k in range(a, b, 5))
    if out:
        return out
    j = int(np.argmax(np.convolve(mass, np.ones(5), mode="valid")))
    best = mass[j : j + 5]
    for part_ys, part_mass in ((ys[:j], mass[:j]), (ys[j + 5 :], mass[j + 5 :])):
        # a neighbouring staff is as strong as this one; ledger lines above or below it are not
        if part_ys.size >= 5 and np.sort(part_mass)[-5] >= 0.75 * best.min():
            out.extend(_split_chain(part_ys, part_mass))
    return [ys[j : j + 5], *out]


def detect_staves(
    gray: np.ndarray,
    *,
    binary: np.ndarray | None = None,
    metrics: StaffMetrics | None = None,
) -> PageStaves:
    """Find every five-line staff on a page and group the staves into systems.

    Works in vertical strips so a skewed scan (up to about 2°) or a staff with breaks still yields straight
    line fits; strip candidates are grouped into fives one staff space apart, linked across strips, and each
    staff is fitted with five parallel lines (one shared slope).

    Args:
        gray: The page, uint8 grayscale (or anything `to_gray` accepts).
        binary: Precomputed ink mask (True = ink); computed with `binarize` when None.
        metrics: Precomputed thickness/space; measured with `measure` when None.

    Returns:
        The staves and systems with the metrics and the ink mask.

    Raises:
        NoStaffError: When the page has no staff.

    Examples:
        >>> page = detect_staves(gray)  # doctest: +SKIP
        >>> page.staves[0].lines_y
    """
    import cv2

    g = to_gray(gray)
    if g.ndim != 2 or min(g.shape) < 16:
        raise NoStaffError(f"the image is too small to hold a staff ({g.shape[1]}×{g.shape[0]} px)")
    b = binarize(g) if binary is None else binary
    m = measure(b) if metrics is None else metrics
    h, w = b.shape
    space, thick = m.space, m.line_thickness
    b8 = b.view(np.uint8) if b.dtype == np.bool_ else (b > 0).astype(np.uint8)
    # Lines are horizontal: every `sx`-th column is enough to find them and halves the morphology cost.
    sx = 2 if w >= 800 else 1
    if thick < HAIRLINE_PX:
        light = _light_ink(g)
        bs = np.ascontiguousarray(light[:, ::sx])
        if binary is None:
            # Stems and ledger lines are as thin as the staff lines: systems and reconstruction need the
            # lighter mask too (line thickness is still measured on Otsu's, the ink's real width).
            b = light.view(np.bool_)
    else:
        bs = np.ascontiguousarray(b8[:, ::sx])
    # Keep long horizontal structure only; close 1-px holes first so scan noise does not cut the lines.
    k = max(5, int(round(2.0 * space / sx)))
    closed = cv2.morphologyEx(bs, cv2.MORPH_CLOSE, np.ones((1, 3), np.uint8))
    lines = cv2.morphologyEx(closed, cv2.MORPH_OPEN, np.ones((1, k), np.uint8))
    lw = lines.shape[1]
    sw = int(max(12, min(128, round(4 * space / sx))))
    nstrips = max(1, lw // sw)
    prof = lines[:, : nstrips * sw].reshape(h, nstrips, sw).sum(axis=2, dtype=np.int32).astype(np.float64)
    max_width = int(np.ceil(thick * 2.5 + 0.035 * sw * sx + 2))
    segs: list[_Seg] = []
    full = sw * (thick + 1.0)
    for s, (ys, mass) in enumerate(_strip_peaks(prof, 0.45 * sw, max_width, full)):
        if ys.size < 5:
            continue
        for five in _five_in_a_row(ys, mass, space):
            segs.append(_Seg(s, five))
    if not segs:
        raise NoStaffError("no staff found: no group of five evenly spaced horizontal lines on the page")
    chains = _link(segs, space)
    fits = [_fit_staff(chain, sw * sx, lines, sx, b8, m) for chain in chains]
    # The page's skew from the well-supported staves; a staff fitted on a few strips that disagrees with it
    # (a thick beam hid a line in most strips, a stray strip tilted the fit) is refitted at that skew.
    solid = [st.slope for st, ch in zip(fits, chains) if st is not None and len(ch) >= 5]
    skew = float(np.median(solid)) if solid else None
    found: list[tuple[Staff, int]] = []
    for chain, st in zip(chains, fits):
        if skew is not None and len(chain) < 5 and (st is None or abs(st.slope - skew) > SKEW_TOLERANCE):
            st = _fit_staff(chain, sw * sx, lines, sx, b8, m, slope=skew)
        if st is not None:
            found.append((st, len(chain)))
    if not found:
        raise NoStaffError("no staff found: line candidates did not form any staff")
    staves = _drop_overlaps(found)
    systems = group_systems(b, staves)
    long_lines = _long_lines(lines, sx, m, float(np.median([st.slope for st in staves])))
    return PageStaves(staves=tuple(staves), systems=tuple(systems), metrics=m, binary=b, long_lines=long_lines)


#: A horizontal line at least this many staff spaces long counts as a long line (staff lines are much longer).
LONG_LINE_SPACES = 10.0
#: Long lines off every staff found before the page warns (two staves' worth: a volta or an underline is not).
UNEXPLAINED_LINES_WARN = 10
#: Ledger lines reach this many staff spaces above the top line and below the bottom line.
LEDGER_REACH = 6


def _long_lines(lines: np.ndarray, sx: int, m: StaffMetrics, skew: float) -> np.ndarray:
    """Long thin straight runs of the horizontal-structure mask: ``(x0, x1, cx, top, bottom)`` per line.

    A run counts when it is as thin as a staff line (a beam is not) and as flat as the page's staff lines
    (``skew``: their slope), which a hairpin or a slanted beam is not. Outer contours are 50x faster to
    trace than labelling every pixel of a large page.
    """
    import cv2

    contours, _ = cv2.findContours(lines, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thick = max(1.0, m.line_thickness)
    min_cols = LONG_LINE_SPACES * m.space / sx
    out = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        if w < min_cols or h > thick + 2 + (abs(skew) + 0.002) * w * sx:
            continue
        # pixels of a blob ~ polygon area + half its perimeter: mean thickness per column, thin for a line
        ink = cv2.contourArea(c) + cv2.arcLength(c, True) / 2
        if ink / w > max(3.0, 2.5 * thick + 1.0):
            continue
        out.append((x * sx, (x + w) * sx, (x + w / 2) * sx, y, y + h))
    return np.array(out, dtype=np.float64).reshape(-1, 5)


def unexplained_lines(page: PageStaves) -> int:
    """Long lines of the page (`PageStaves.long_lines`) that lie on no line of the staves found."""
    ll = page.long_lines
    if ll.size == 0 or not page.staves:
        return len(ll)
    cx = ll[:, 2:3]
    x0 = np.array([s.x0 for s in page.staves])[None, :]
    x1 = np.array([s.x1 for s in page.staves])[None, :]
    slope = np.array([s.slope for s in page.staves])[None, :]
    xc = np.array([s.xc for s in page.staves])[None, :]
    top = np.array([s.lines_y[0] for s in page.staves])[None, :]
    step = np.array([(s.lines_y[4] - s.lines_y[0]) / 4 for s in page.staves])[None, :]
    # Ledger lines of neighbouring notes can join into one long run; they lie on the staff's grid (up to six
    # spaces out) and are much shorter than the staff. A missed staff's lines are as long as their neighbours'.
    short = (ll[:, 1:2] - ll[:, 0:1]) < 0.5 * (x1 - x0)
    on_a_line = np.zeros((len(ll), len(page.staves)), dtype=bool)
    for i in range(-LEDGER_REACH, 5 + LEDGER_REACH):
        y = top + i * step + slope * (cx - xc)
        # the run's rows hold the line there (a beam or a slur end lying on the line may widen the run)
        hit = (y >= ll[:, 3:4] - 1.0) & (y <= ll[:, 4:5] + 1.0)
        on_a_line |= hit if 0 <= i <= 4 else hit & short
    overlap = (ll[:, 0:1] < x1) & (ll[:, 1:2] > x0)
    return int((~(on_a_line & overlap).any(axis=1)).sum())


def long_line_warning(page: PageStaves) -> str | None:
    """A warning when the page's long horizontal lines are not explained by the staves found, else None.

    Every staff line is a long thin horizontal line; many such lines off every staff found mean staves were
    missed (an unusual layout, staves too close, too small or damaged), so stems and ledger lines rebuilt on
    this page are incomplete too.
    """
    off = unexplained_lines(page)
    if off < UNEXPLAINED_LINES_WARN:
        return None
    n = len(page.staves)
    return (
        f"staff detection may have missed about {max(1, round(off / 5))} staves: {off} long straight horizontal "
        f"lines (at least {LONG_LINE_SPACES:.0f} staff spaces long, as thin as staff lines) lie on none of the "
        f"{n} staves found, whose {5 * n} staff lines explain the other {len(page.long_lines) - off}. Check the "
        "staff overlay; stems and ledger lines are only rebuilt on staves that were found."
    )


def _link(segs: list[_Seg], space: float) -> list[list[_Seg]]:
    """Link strip segments into staves: a segment joins the chain whose last segment is near it."""
    segs = sorted(segs, key=lambda s: (s.strip, float(s.ys[0])))
    chains: list[list[_Seg]] = []
    ends: list[tuple[int, float]] = []  # (strip, middle-line y) of each chain's last segment
    max_gap = 12  # strips: a staff may be interrupted by a passage without lines (breaks)
    # Chains by the staff space their end lies in: a segment looks at the few chains that can reach it, not
    # at every chain of the page (dense pages have thousands of segments).
    reach = int(np.ceil(0.5 + 0.15 * max_gap)) + 1
    rows: dict[int, set[int]] = {}
    for seg in segs:
        mid = float(seg.ys[2])
        key = int(mid // space)
        best, bestd = -1, 0.0
        for r in range(key - reach, key + reach + 1):
            for j in rows.get(r, ()):
                strip, y = ends[j]
                gap = seg.strip - strip
                if gap <= 0 or gap > max_gap:
                    continue
                d = abs(mid - y)
                # A 4-space-wide strip moves a staff by < 0.15 space per strip at 2° skew.
                allow = 0.5 * space + 0.15 * space * gap
                # nearest first, then the oldest chain (as a scan of every chain in order would choose)
                if d <= allow and (best < 0 or d < bestd or (d == bestd and j < best)):
                    best, bestd = j, d
        if best < 0:
            best = len(chains)
            chains.append([seg])
            ends.append((seg.strip, mid))
        else:
            chains[best].append(seg)
            rows[int(ends[best][1] // space)].discard(best)
            ends[best] = (seg.strip, mid)
        rows.setdefault(key, set()).add(best)
    # Single-strip chains are usually five-line coincidences (beams, text); a staff spans 2+ strips.
    return [ch for ch in chains if len(ch) >= 2]


def _fit_staff(
    chain: list[_Seg],
    sw: int,
    lines: np.ndarray,
    sx: int,
    b8: np.ndarray,
    m: StaffMetrics,
    slope: float | None = None,
) -> Staff | None:
    """Fit five parallel lines to a chain of strip segments and find the staff's horizontal extent.

    ``slope`` fixes the lines' slope (the page's skew) instead of fitting it: for a chain of few strips, one
    bad strip would tilt the staff.
    """
    xs = np.array([(s.strip + 0.5) * sw for s in chain])
    ys = np.stack([s.ys for s in chain])  # (n, 5)
    fixed = slope is not None
    xm = float(xs.mean())
    if slope is None:
        slope = _slope(xs, ys)
        inter = (ys - slope * (xs - xm)[:, None]).mean(axis=0)  # line y at xm
    else:
        inter = np.median(ys - slope * (xs - xm)[:, None], axis=0)
    # Robust pass: drop strips that disagree (a beam or slur took a line's place) and refit.
    resid = np.abs(ys - (inter[None, :] + slope * (xs - xm)[:, None])).max(axis=1)
    keep = resid <= max(1.5, 0.25 * m.space)
    if keep.sum() >= (1 if fixed else 2) and not keep.all():
        xs, ys = xs[keep], ys[keep]
        xm = float(xs.mean())
        if not fixed:
            slope = _slope(xs, ys)
        inter = (ys - slope * (xs - xm)[:, None]).mean(axis=0)
    h, w = b8.shape
    x0, x1 = _extent(lines, sx, w, inter, slope, xm, float(xs.min()) - sw / 2, float(xs.max()) + sw / 2, m)
    if x1 - x0 < 4 * m.space:
        return None
    xc = (x0 + x1) / 2.0
    ys_c = inter + slope * (xc - xm)
    # +0.5: row r covers [r, r+1) in page coordinates, so its centre is r + 0.5.
    ys_c = _refine_y(lines, sx, ys_c, slope, xc, x0, x1, m) + 0.5
    diffs = np.diff(ys_c)
    space = float(diffs.mean())
    if diffs.min() < 0.6 * m.space or diffs.max() > 1.4 * m.space:
        return None
    thick = _thickness(b8, ys_c, slope, xc, x0, x1, m)
    return Staff(
        lines_y=tuple(float(v) for v in ys_c),  # type: ignore[arg-type]
        x0=float(x0),
        x1=float(x1),
        line_thickness=thick,
        space=space,
        slope=slope,
    )


def _slope(xs: np.ndarray, ys: np.ndarray) -> float:
    """Least-squares slope shared by five lines measured at columns ``xs`` (rows ``ys``: n x 5)."""
    if xs.size < 2 or np.ptp(xs) == 0:
        return 0.0
    dx = xs - xs.mean()
    return float((dx[:, None] * (ys - ys.mean(axis=0))).sum() / (5 * (dx**2).sum()))


def _line_rows(ys: np.ndarray, slope: float, xc: float, cols: np.ndarray, h: int) -> np.ndarray:
    """Row index of each of the lines ``ys`` (at ``xc``) in each column of ``cols``: shape (len(ys), len(cols))."""
    r = ys[:, None] + slope * (cols[None, :] - xc)
    return np.clip(np.rint(r).astype(np.int64), 0, h - 1)


def _extent(
    lines: np.ndarray,
    sx: int,
    w: int,
    ys: np.ndarray,
    slope: float,
    xm: float,
    lo: float,
    hi: float,
    m: StaffMetrics,
) -> tuple[float, float]:
    """Left and right end of the staff: the outermost columns where all 5 lines have ink (small gaps bridged).

    ``lines`` holds every ``sx``-th column of the page (width ``w``); the result is in page pixels.
    """
    h, lw = lines.shape
    cols = np.arange(lw)
    rows = _line_rows(ys, slope, xm, cols * sx, h)
    r = max(1, int(np.ceil(m.line_thickness / 2)) + 1)
    hit = np.zeros((5, lw), dtype=bool)
    for d in range(-r, r + 1):
        hit |= lines[np.clip(rows + d, 0, h - 1), cols[None, :]] > 0
    good = hit.all(axis=0)
    # Bridge gaps up to 3 spaces (scan dropouts, a broken line); a wider gap ends the staff (a coda apart).
    gap = max(2, int(round(3.0 * m.space / sx)))
    slo, shi = int(max(0, lo // sx)), int(min(lw, hi // sx + 1))
    idx = np.nonzero(good)[0]
    inside = idx[(idx >= slo) & (idx < shi)]
    if inside.size == 0:
        return lo, hi
    pos = int(np.searchsorted(idx, inside[inside.size // 2]))
    # Gaps between consecutive good columns; walk outwards while they are small.
    steps = np.diff(idx)
    big = np.nonzero(steps > gap)[0]
    left_breaks = big[big < pos]
    right_breaks = big[big >= pos]
    left = int(left_breaks[-1] + 1) if left_breaks.size else 0
    right = int(right_breaks[0]) if right_breaks.size else idx.size - 1
    return float(idx[left] * sx), float(min(w, idx[right] * sx + sx))


def _refine_y(
    lines: np.ndarray, sx: int, ys: np.ndarray, slope: float, xc: float, x0: float, x1: float, m: StaffMetrics
) -> np.ndarray:
    """Sub-pixel line centres: ink-weighted mean row around each fitted line over the whole staff length."""
    h, lw = lines.shape
    scols = np.arange(int(x0 // sx), int(min(lw, x1 // sx)), max(1, int((x1 - x0) // (400 * sx))))
    if scols.size == 0:
        return ys
    cols = scols * sx
    r = int(np.ceil(m.line_thickness / 2 + 1.5))
    offs = np.arange(-r, r + 1)
    base = ys[:, None] + slope * (cols[None, :] - xc)  # (5, c)
    rows = np.rint(base).astype(np.int64)
    rr = np.clip(rows[:, None, :] + offs[None, :, None], 0, h - 1)  # (5, o, c)
    vals = lines[rr, scols[None, None, :]].astype(np.float64)
    dy = rr - base[:, None, :]
    tot = vals.sum(axis=(1, 2))
    shift = (vals * dy).sum(axis=(1, 2)) / np.maximum(tot, 1e-9)
    return np.where(tot > 0, ys + shift, ys)


def _thickness(b8: np.ndarray, ys: np.ndarray, slope: float, xc: float, x0: float, x1: float, m: StaffMetrics) -> float:
    """Median vertical run of ink through the lines (sampled columns), i.e. the line thickness of this staff."""
    h, w = b8.shape
    cols = np.arange(int(x0), int(min(w, x1)), max(1, int((x1 - x0) // 200)))
    r = int(np.ceil(m.line_thickness + 2))
    offs = np.arange(-r, r + 1)
    vals = []
    for i in range(5):
        rows = np.rint(ys[i] + slope * (cols - xc)).astype(np.int64)
        rr = np.clip(rows[None, :] + offs[:, None], 0, h - 1)
        v = b8[rr, cols[None, :]].sum(axis=0)
        vals.append(v[(v > 0) & (v < 2 * r)])
    allv = np.concatenate(vals) if vals else np.zeros(0)
    return float(np.median(allv)) if allv.size else m.line_thickness


def _drop_overlaps(found: list[tuple[Staff, int]]) -> list[Staff]:
    """Resolve staves that overlap vertically (real staves never do).

    The same staff found twice (two chains split by a long break) is merged; a short "staff" made of ledger
    lines and a real staff's lines loses to the longer one (then the one found in more strips).
    """
    out: list[Staff] = []
    # The extent needs all five lines, so a fake staff (ledger lines, a beam) is short: longest first.
    for st, _support in sorted(found, key=lambda f: (-(f[0].x1 - f[0].x0), -f[1])):
        keep = True
        for j, o in enumerate(out):
            if st.x1 <= o.x0 or st.x0 >= o.x1:
                if abs(o.y_at(0, st.xc) - st.top) < 0.5 * st.space:
                    # Same staff, two pieces: join them.
                    x0, x1 = min(o.x0, st.x0), max(o.x1, st.x1)
                    xc = (x0 + x1) / 2
                    ys = tuple(o.y_at(i, xc) for i in range(5))
                    out[j] = Staff(ys, x0, x1, o.line_thickness, o.space, o.slope)  # type: ignore[arg-type]
                    keep = False
                    break
                continue
            otop, obot = o.y_at(0, st.xc), o.y_at(4, st.xc)
            # Staves never share lines. Dense pages pack staves closer than 2.5 spaces, so a close neighbour is
            # dropped only when it is also much shorter: ledger lines or a beam, which never span a system.
            if st.top < obot + 0.5 * st.space and st.bottom > otop - 0.5 * st.space:
                keep = False
                break
            near = st.top < obot + 2.5 * st.space and st.bottom > otop - 2.5 * st.space
            if near and (st.x1 - st.x0) < 0.5 * (o.x1 - o.x0):
                keep = False
                break
        if keep:
            out.append(st)
    out.sort(key=lambda s: s.top)
    return out


def group_systems(binary: np.ndarray, staves: list[Staff] | tuple[Staff, ...]) -> list[System]:
    """Group staves into systems: two neighbouring staves belong together when a vertical line joins them.

    A barline, brace or bracket joining staff i's bottom line to staff i+1's top line appears as a column that
    is (nearly) all ink across the gap. When no pair on the page is joined (single-staff parts), every staff is a
    system of its own.
    """
    n = len(staves)
    if n == 0:
        return []
    joined = [False] * (n - 1)
    h, w = binary.shape
    for i in range(n - 1):
        a, b = staves[i], staves[i + 1]
        lo = max(0, int(min(a.x0, b.x0) - 3 * a.space))
        hi = min(w, int(max(a.x1, b.x1) + 1))
        if hi <= lo:
            continue
        # Column-wise fraction of ink between the two staves (rows follow the skew via the mean slope).
        cols = np.arange(lo, hi)
        y_top = np.array([a.y_at(4, x) for x in (lo, hi)])
        y_bot = np.array([b.y_at(0, x) for x in (lo, hi)])
        top = int(np.floor(min(y_top))) + 1
        bot = int(np.ceil(max(y_bot)))
        if bot - top < 2:
            joined[i] = True
            continue
        band = binary[top:bot, lo:hi]
        frac = band.mean(axis=0)
        # Allow a skewed line to drift out of a single column: max over a small neighbourhood.
        frac3 = np.maximum(frac, np.maximum(np.roll(frac, 1), np.roll(frac, -1)))
        joined[i] = bool((frac3 >= 0.9).any()) and cols.size > 0
    if not any(joined):
        groups = [[i] for i in range(n)]
    else:
        groups = [[0]]
        for i in range(n - 1):
            if joined[i]:
                groups[-1].append(i + 1)
            else:
                groups.append([i + 1])
    out = []
    for gidx in groups:
        ss = [staves[i] for i in gidx]
        out.append(
            System(
                staves=tuple(gidx),
                x0=min(s.x0 for s in ss),
                x1=max(s.x1 for s in ss),
                y0=ss[0].top,
                y1=ss[-1].bottom,
            )
        )
    return out
