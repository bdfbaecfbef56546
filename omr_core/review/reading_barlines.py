"""Barlines from the ink: DeepScoresV2 has no barline class, so measures are found as full-height staff columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omr_core.review.staff import Staff, System

#: Share of a column between a staff's top and bottom line that must be ink for a barline.
FULL = 0.94
#: Widest ink column run that can be one barline (thick final barlines are about half a staff space).
MAX_WIDTH_SPACES = 0.75
#: Barlines closer than this (staff spaces) are one barline (double bars, repeat bars).
MERGE_SPACES = 1.6


def staff_barlines(
    binary: np.ndarray, staff: Staff, blocked: Sequence[tuple[float, float, float, float]] = ()
) -> list[float]:
    """Centre x of every barline crossing one staff, left to right.

    A column counts when at least `FULL` of it is ink from the top line to the bottom line, following the
    staff's skew (a barline leans the other way by the same angle). Runs wider than `MAX_WIDTH_SPACES` are
    not barlines; columns inside ``blocked`` boxes (stems, noteheads, clefs, digits: anything that can be
    a full-height vertical stroke without being a barline) are ignored; the line that opens a system
    is not a measure boundary and is dropped.

    Args:
        binary: Ink mask of the page (True = ink).
        staff: The staff.
        blocked: Boxes ``(x0, y0, x1, y1)`` of symbols that are not barlines.
    """
    h, w = binary.shape
    x0, x1 = max(0, int(np.floor(staff.x0))), min(w, int(np.ceil(staff.x1)) + 1)
    if x1 - x0 < 3:
        return []
    xs = np.arange(x0, x1)
    rows = np.arange(int(np.ceil(staff.y_at(0, staff.xc))), int(np.floor(staff.y_at(4, staff.xc))) + 1)
    if rows.size < 4:
        return []
    # rows follow the staff skew; a barline drawn perpendicular to the lines shifts by -slope per row
    dy = staff.slope * (xs - staff.xc)
    x_shift = -staff.slope * (rows - staff.y_at(2, staff.xc))

    def ink_at(r: np.ndarray, cols: np.ndarray) -> np.ndarray:
        yi = np.clip(np.rint(r[:, None] + dy[cols - x0][None, :]).astype(np.intp), 0, h - 1)
        xi = np.clip(np.rint(cols[None, :] + x_shift[r - rows[0]][:, None]).astype(np.intp), 0, w - 2)
        return binary[yi, xi] | binary[yi, xi + 1]  # a leaning line can step one column aside

    # cheap first pass: a barline is ink in the middle of all four spaces
    mids = np.clip(np.rint(rows[0] + staff.space * np.array([0.5, 1.5, 2.5, 3.5])).astype(np.intp), rows[0], rows[-1])
    cand = xs[ink_at(mids, xs).all(axis=0)]
    full = np.zeros(len(xs), dtype=bool)
    if cand.size:
        full[cand - x0] = ink_at(rows, cand).mean(axis=0) >= FULL
    if len(blocked):
        bb = np.asarray(blocked, dtype=np.float64).reshape(-1, 4)
        top = min(staff.y_at(0, staff.x0), staff.y_at(0, staff.x1))
        bottom = max(staff.y_at(4, staff.x0), staff.y_at(4, staff.x1))
        bb = bb[(bb[:, 3] >= top) & (bb[:, 1] <= bottom) & (bb[:, 2] >= x0) & (bb[:, 0] <= x1)]
        for bx0, _, bx1, _ in bb:
            lo, hi = max(0, int(np.floor(bx0)) - 1 - x0), min(len(xs), int(np.ceil(bx1)) + 1 - x0)
            if hi > lo:
                full[lo:hi] = False
    out: list[float] = []
    max_w = MAX_WIDTH_SPACES * staff.space
    i = 0
    n = len(xs)
    while i < n:
        if not full[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and full[j + 1]:
            j += 1
        if j - i + 1 <= max_w:
            out.append(float(xs[i] + xs[j]) / 2.0)
        i = j + 1
    return _merge([x for x in out if x > staff.x0 + staff.space], MERGE_SPACES * staff.space)


def _merge(xs: list[float], gap: float) -> list[float]:
    """One x per group of barlines closer than ``gap`` (the rightmost: a measure ends at its last stroke)."""
    out: list[float] = []
    for x in sorted(xs):
        if out and x - out[-1] < gap:
            out[-1] = x
        else:
            out.append(x)
    return out


def system_barlines(per_staff: Sequence[Sequence[float]], system: System, space: float) -> list[float]:
    """Barlines of a system: those found on at least half of its staves (within `MERGE_SPACES`)."""
    all_x = sorted(x for xs in per_staff for x in xs)
    groups: list[list[float]] = []
    for x in all_x:
        if groups and x - groups[-1][-1] < MERGE_SPACES * space:
            groups[-1].append(x)
        else:
            groups.append([x])
    need = max(1, (len(system.staves) + 1) // 2)
    return [max(g) for g in groups if len(g) >= need]
