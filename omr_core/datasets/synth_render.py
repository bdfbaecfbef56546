"""Rasterising engraved pages (skia-python) and mild scan-like damage."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.errors import OmrError

#: verovio's hidden placeholders (``class="… placeholder"``, hidden by its CSS): removed before rendering
#: so skia, which ignores CSS, cannot draw them.
_PLACEHOLDER = re.compile(
    # a self-closing placeholder must not be read as an open one (that would eat its parent's </g>)
    r'<g [^>]*class="[^"]*\bplaceholder\b[^"]*"[^>]*/>|'
    r'<g [^>]*class="[^"]*\bplaceholder\b[^"]*"[^>]*(?<!/)>\s*(?:<ellipse[^>]*/>\s*)*</g>'
)
_SHAPE_OPEN = re.compile(r"<(path|polygon|polyline|rect|ellipse) ")
#: Text in a SMuFL music font (tempo marks' note symbols): no text font has these glyphs, so a renderer
#: would draw "missing glyph" boxes; they carry no DeepScoresV2 class either.
_SMUFL_TSPAN = re.compile(r'<tspan font-family="(?:Leipzig|Bravura|Gootville|Leland|Petaluma)"[^>]*>[^<]*</tspan>')


class RenderError(OmrError):
    """The rasteriser is missing or failed on a page."""


#: The text fonts of every engraved page: DejaVu Serif in its four faces, as the matplotlib wheel ships them
#: (matplotlib is a dependency for these files alone; no system font is ever used, so pages are reproducible).
TEXT_FONT_FILES = ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf")


@lru_cache(maxsize=1)
def text_fonts() -> tuple[str, ...]:
    """Paths of `TEXT_FONT_FILES` inside the installed matplotlib.

    Raises:
        RenderError: matplotlib or one of the files is missing (the message says how to install it).
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        raise RenderError(
            "the engraver draws text with matplotlib's DejaVu Serif fonts, but matplotlib is not installed: "
            "`pip install matplotlib` (it is a dependency of omr-dashboard)"
        )
    folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    missing = [n for n in TEXT_FONT_FILES if not (folder / n).is_file()]
    if missing:
        raise RenderError(f"{folder} lacks {', '.join(missing)}: reinstall matplotlib (`pip install --force-reinstall matplotlib`)")
    return tuple(str(folder / n) for n in TEXT_FONT_FILES)


def prepare_svg(svg: str) -> str:
    """Remove what must not be drawn (hidden placeholders, SMuFL glyphs inside text)."""
    return _SMUFL_TSPAN.sub("", _PLACEHOLDER.sub("", svg))


#: A text element to draw: the element, its parent-to-pixel matrix, the classes of its ancestor groups.
TextItem = tuple[ET.Element, tuple[float, float, float, float, float, float], tuple[str, ...]]

#: verovio's CSS styles text by the class of an ancestor group.
_ITALIC_GROUPS = {"dir", "dynam", "mNum"}
_BOLD_GROUPS = {"ending", "fing", "reh", "tempo"}


def rasterise(svg: str, width: int, height: int, texts: Sequence[TextItem] = ()) -> np.ndarray:
    """Render an engraved page to a grayscale image (uint8, white paper, black ink) with skia-python.

    skia's SVG module draws no text, so ``texts`` are laid out and drawn here with the same DejaVu fonts
    (`text_fonts`); docs/benchmarks.md says how this rasteriser was chosen.

    Args:
        svg: The page SVG (after `prepare_svg`).
        width: Page width in pixels (the SVG's own width).
        height: Page height in pixels.
        texts: Text elements of the page (see `TextItem`).

    Returns:
        The page as a ``(height, width)`` uint8 array.

    Raises:
        RenderError: skia-python is missing or cannot parse the SVG.
    """
    skia = _import_skia()
    # skia's SVG module ignores <style>: give every shape the stroke verovio's CSS gives it
    data = _SHAPE_OPEN.sub(r'<\1 stroke="black" ', svg).encode("utf-8")
    dom = skia.SVGDOM.MakeFromStream(skia.MemoryStream(data, True))
    if dom is None:
        raise RenderError("skia could not parse the page SVG")
    # straight into an 8-bit grey page: a quarter of the memory of RGBA and no colour conversion (7 ms a page)
    buf = np.full((height, width), 255, np.uint8)
    surface = skia.Surface(buf, colorType=skia.kGray_8_ColorType, alphaType=skia.kOpaque_AlphaType)
    with surface as canvas:
        dom.render(canvas)
        if texts:
            _draw_texts_skia(canvas, texts)
    return buf


#: System libraries skia-python's wheel links (Debian/Ubuntu packages); chromium, which `make test` installs,
#: pulls them all in.
_SKIA_SYSTEM_LIBS = {"libEGL": "libegl1", "libGL": "libgl1", "libX11": "libx11-6", "libexpat": "libexpat1"}


def _import_skia() -> Any:
    """skia-python, or a `RenderError` that says what is missing: the package, or a system library it links."""
    try:
        import skia
    except ImportError as exc:
        lib = re.search(r"(lib[A-Za-z0-9_+-]+)\.so[0-9.]*", str(exc))
        if lib:
            pkg = _SKIA_SYSTEM_LIBS.get(lib.group(1), "the package that ships it")
            how = f"the system library {lib.group(0)} is missing: install {pkg} (`sudo apt-get install {' '.join(_SKIA_SYSTEM_LIBS.values())}`)"
        else:
            how = "`pip install skia-python` (it is a dependency of omr-dashboard)"
        raise RenderError(f"the engraver rasterises pages with skia-python, which does not import ({exc}): {how}") from exc
    return skia


@lru_cache(maxsize=1)
def _skia_typefaces() -> dict[tuple[bool, bool], Any]:
    import skia

    fonts = text_fonts()
    faces: dict[tuple[bool, bool], Any] = {}
    for path in fonts:
        name = Path(path).stem
        key = ("Bold" in name, "Italic" in name)
        faces[key] = skia.Typeface.MakeFromFile(path)
    return faces


def _font_size(el: ET.Element) -> float | None:
    v = el.get("font-size")
    if not v:
        return None
    m = re.match(r"[-+]?\d*\.?\d+", v.strip())
    return float(m.group(0)) if m else None


def _draw_texts_skia(canvas: Any, texts: Sequence[TextItem]) -> None:
    """Lay out and draw SVG text the way SVG does for verovio's simple text (chunks, anchors, tspans)."""
    import skia

    faces = _skia_typefaces()
    if not faces:
        return
    paint = skia.Paint(AntiAlias=True, Color=skia.ColorBLACK)
    for el, m, ancestors in texts:
        italic0 = any(a in _ITALIC_GROUPS for a in ancestors)
        bold0 = any(a in _BOLD_GROUPS for a in ancestors) and "label" not in ancestors
        chunks: list[list[Any]] = []  # [x, y, anchor, [(text, size, bold, italic)]]

        def visit(
            node: ET.Element, size: float, bold: bool, italic: bool, anchor: str, chunks: list[list[Any]]
        ) -> None:
            tag = node.tag.rsplit("}", 1)[-1]
            if tag == "title":
                return
            size = _font_size(node) or size
            bold = bold or node.get("font-weight") == "bold"
            italic = italic or node.get("font-style") == "italic"
            anchor = node.get("text-anchor") or anchor
            if node.get("x") is not None or node.get("y") is not None or not chunks:
                last = chunks[-1] if chunks else [0.0, 0.0, anchor, []]
                nx, ny = node.get("x"), node.get("y")
                x = float(nx) if nx is not None else (None if chunks else 0.0)
                y = float(ny) if ny is not None else last[1]
                chunks.append([x, y, anchor, []])
            if len(node) == 0 and node.text and node.text.strip():
                chunks[-1][3].append((" ".join(node.text.split()), size, bold, italic))
            for child in node:
                visit(child, size, bold, italic, anchor, chunks)

        visit(el, 0.0, bold0, italic0, "start", chunks)
        canvas.save()
        canvas.concat(skia.Matrix.MakeAll(m[0], m[2], m[4], m[1], m[3], m[5], 0.0, 0.0, 1.0))
        pen_x = 0.0
        for x, y, anchor, runs in chunks:
            if not runs:
                continue
            fonts = [skia.Font(faces.get((b, i)) or faces.get((False, False)), sz) for _, sz, b, i in runs]
            total = sum(f.measureText(t) for f, (t, *_r) in zip(fonts, runs))
            pen_x = pen_x if x is None else x
            if anchor == "middle":
                pen_x -= total / 2
            elif anchor == "end":
                pen_x -= total
            for f, (t, sz, _b, _i) in zip(fonts, runs):
                if sz > 0:
                    canvas.drawString(t, pen_x, y, f, paint)
                pen_x += f.measureText(t)
        canvas.restore()


@dataclass(frozen=True)
class ScanDamage:
    """What `degrade_scan` did to a page.

    Attributes:
        angle: Rotation in degrees (counter-clockwise on screen, about the page centre).
        matrix: The 2x3 affine that maps clean page pixels to damaged page pixels.
        blur: Gaussian blur sigma in pixels (0 for none).
        noise: Gaussian noise sigma in grey levels.
        jpeg_quality: JPEG quality the page went through (0 for none).
    """

    angle: float
    matrix: tuple[tuple[float, float, float], tuple[float, float, float]]
    blur: float
    noise: float
    jpeg_quality: int

    def apply(self, pts: np.ndarray) -> np.ndarray:
        """Map ``(n, 2)`` clean-page points to the damaged page."""
        m = np.asarray(self.matrix)
        return pts @ m[:, :2].T + m[:, 2]


def degrade_scan(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ScanDamage]:
    """Mild scan damage: uneven lighting, rotation up to 1 degree, blur, noise and JPEG artefacts.

    The geometry change is only the rotation (returned as an affine matrix), so annotation boxes can be
    mapped exactly; blur and JPEG move ink edges by well under a pixel.

    Args:
        img: Clean grayscale page.
        rng: Source of randomness (the page's own generator, for determinism).

    Returns:
        The damaged page and what was done.
    """
    import cv2

    h, w = img.shape
    angle = float(rng.uniform(-1.0, 1.0))
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    blur = float(rng.uniform(0.3, 0.8))
    out = cv2.GaussianBlur(out, (0, 0), blur)
    # paper: a slightly grey, unevenly lit sheet (a low-frequency gradient plus a soft vignette); the light is a
    # function of x plus one of y, so a row and a column make it (an interpolated grid cost 13 ms a page)
    gx, gy = rng.uniform(-1, 1, 2)
    u = np.arange(w, dtype=np.float32) / w - 0.5
    v = np.arange(h, dtype=np.float32) / h - 0.5
    light = (1.0 - 0.06 * gx * u - 0.1 * u * u).astype(np.float32)[None, :] + (-0.06 * gy * v - 0.1 * v * v).astype(
        np.float32
    )[:, None]
    paper = float(rng.uniform(232, 250))
    ink = float(rng.uniform(10, 45))
    f = out.astype(np.float32)
    f *= (paper - ink) / 255.0
    f += ink
    f *= light
    # grain at half resolution (two-pixel specks, as a 300 dpi scan shows them): a quarter of the draws
    noise = float(rng.uniform(2.0, 7.0))
    grain = rng.standard_normal(((h + 1) // 2, (w + 1) // 2), dtype=np.float32)
    grain *= noise
    f += cv2.resize(grain, (w, h), interpolation=cv2.INTER_NEAREST)
    # in place: a full-page float copy costs more than the clip itself
    out = np.clip(f, 0, 255, out=f).astype(np.uint8)
    quality = int(rng.integers(55, 90))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if ok:
        decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if decoded is not None:
            out = decoded
    mat = ((float(m[0, 0]), float(m[0, 1]), float(m[0, 2])), (float(m[1, 0]), float(m[1, 1]), float(m[1, 2])))
    return out, ScanDamage(angle, mat, blur, noise, quality)


def rotated_box(damage: ScanDamage, box: tuple[float, float, float, float]) -> np.ndarray:
    """The four corners of ``box`` after damage, in DeepScoresV2's ``o_bbox`` order.

    The released files list corners as (x1, y1), (x1, y0), (x0, y0), (x0, y1) for axis-aligned boxes.
    """
    x0, y0, x1, y1 = box
    pts = np.array([[x1, y1], [x1, y0], [x0, y0], [x0, y1]], dtype=np.float64)
    return damage.apply(pts)
