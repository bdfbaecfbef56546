"""The engraver's SVG path parser: the same geometry as before it was split into steps, on real verovio paths."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

from omr_core.datasets.synth_svg import path_geometry

# (path data, box, area, outline points, sha256 of repr(points)[:16]) as the one-function parser computed them
# before it became `_segments` + `_Pen` + `_draw`. The first six are paths verovio writes (a slur, a stem, glyphs
# of Leipzig/Bravura/Leland: the commands M L C c v l h s z it uses); the rest cover every other command letter,
# relative and absolute, and implicit repeats.
CASES = [
    ("M2828,11619 C3327,11266 4185,11225 4717,11529",
     (2828.0, 11325.180299337673, 4717.0, 11619.0), 316559.4499511719, 9, "50ef4600b03d24c8"),
    ("M13 656 L13 7484", (13.0, 656.0, 13.0, 7484.0), 0.0, 2, "b2e5cfd0406b0c7b"),
    ("M97 245v-488h-35v356h-47v39c38 6 47 21 55 93h27z", (15.0, -243.0, 97.0, 245.0), 19222.4365234375, 15,
     "796860b958995fef"),
    ("M0 122c-1.22465e-16 2 9 11 16 11s16 -9 16 -11v-82s-9 -10 -16 -10s-16 8 -16 10v82z",
     (0.0, 30.0, 32.0, 133.0), 3068.158203125, 35, "a0fc58d9c4634057"),
    ("M0 -125v125l289 -75v-125z", (0.0, -200.0, 289.0, 0.0), 36125.0, 4, "5dec71d27fbc7eb4"),
    ("M0 0c0 28 22 50 50 50s50 -22 50 -50s-22 -50 -50 -50s-50 22 -50 50z", (0.0, -50.0, 100.0, 50.0), 7838.9375, 33,
     "78237dad3fee5ef9"),
    ("M10 10 20 10 20 20H5V30h1v1Z m5 5 l3 0 0 3 z", (5.0, 10.0, 20.0, 31.0), 92.5, 10, "6886905ae91fc535"),
    ("M0 0 Q10 20 20 0 T40 0 t20 0 q5 -10 10 0 S50 20 60 0 A5 5 0 0 1 70 0 a5 5 0 0 1 10 0 Z",
     (0.0, -10.0, 80.0, 10.0), 39.99023437500003, 43, "a7988887814cdbe0"),
    ("M0 0 C0 10 10 10 10 0 S20 -10 20 0 c0 5 5 5 5 0 z M30 30 h10 v10 h-10 z", (0.0, -7.5, 40.0, 40.0),
     85.38818359375, 29, "06e531e5ede187f0"),
    ("", (0.0, 0.0, 0.0, 0.0), 0.0, 0, "2e38e77b22c314a4"),
]


@pytest.mark.parametrize(("d", "box", "area", "n_points", "digest"), CASES)
def test_path_geometry_is_what_it_was(d: str, box: tuple, area: float, n_points: int, digest: str) -> None:
    g = path_geometry(d)
    assert g.box == box and g.area == area and len(g.points) == n_points
    assert hashlib.sha256(repr(g.points).encode()).hexdigest()[:16] == digest


@pytest.mark.parametrize("bad", ["5 5 L 1 1", "M0 0 z 3 4"])
def test_path_data_it_cannot_read_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="path data starts with a number|numbers after a close-path"):
        path_geometry(bad)


def test_no_function_of_the_engraver_is_over_100_lines() -> None:
    folder = Path(__file__).resolve().parents[3] / "omr_core" / "datasets"
    long = [
        f"{p.name}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for p in sorted(folder.glob("synth*.py"))
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.FunctionDef) and n.end_lineno and n.end_lineno - n.lineno + 1 > 100
    ]
    assert long == []
