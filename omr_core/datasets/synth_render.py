"""Rasterising engraved pages (resvg-py, or skia-python when installed) and mild scan-like damage."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from omr_core.errors import OmrError

RENDERERS = ("auto", "resvg", "skia")

#: verovio's hidden placeholders (``class="… placeholder"``, hidden by its CSS): removed before rendering
#: so a renderer that ignores CSS cannot draw them.
_PLACEHOLDER = re.compile(r'<g [^>]*class="[^"]*\bplaceholder\b[^"]*"[^>]*>\s*(?:<ellipse[^>]*/>\s*)*</g>|'
                          r'<g [^>]*class="[^"]*\bplaceholder\b[^"]*"[^>]*/>')
_SHAPE_OPEN = re.compile(r"<(path|polygon|polyline|rect|ellipse) ")
#: Text in a SMuFL music font (tempo marks' note symbols): no text font has these glyphs, so a renderer
#: would draw "missing glyph" boxes; they carry no DeepScoresV2 class either.
_SMUFL_TSPAN = re.compile(r'<tspan font-family="(?:Leipzig|Bravura|Gootville|Leland|Petaluma)"[^>]*>[^<]*</tspan>')


class RenderError(OmrError):
    """No usable rasteriser, or one that failed on a page."""


@lru_cache(maxsize=1)
def text_fonts() -> tuple[str, ...]:
    """Serif text fonts shipped inside installed wheels (matplotlib's DejaVu), so text renders the same anywhere."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return ()
    folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    names = ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf")
    return tuple(str(folder / n) for n in names if (folder / n).is_file())


def available_renderer(choice: str = "auto") -> str:
    """Resolve ``auto`` to ``skia`` when skia-python is importable, else ``resvg``; check an explicit choice."""
    if choice not in RENDERERS:
        raise RenderError(f"unknown renderer {choice!r}; choose one of {', '.join(RENDERERS)}")
    has_skia = importlib.util.find_spec("skia") is not None
    if choice == "auto":
        return "skia" if has_skia else "resvg"
    if choice == "skia" and not has_skia:
        raise RenderError("renderer 'skia' needs skia-python: `pip install skia-python` (or use --renderer resvg)")
    return choice


def prepare_svg(svg: str) -> str:
    """Remove what no renderer should draw (hidden placeholders, SMuFL glyphs inside text)."""
    return _SMUFL_TSPAN.sub("", _PLACEHOLDER.sub("", svg))


def rasterise(svg: str, width: int, height: int, renderer: str = "resvg") -> np.ndarray:
    """Render an engraved page to a grayscale image (uint8, white paper, black ink).

    Args:
        svg: The page SVG (after `prepare_svg`).
        width: Expected width in pixels (the SVG's own width).
        height: Expected height in pixels.
        renderer: ``resvg`` (resvg-py, draws text with matplotlib's DejaVu fonts) or ``skia`` (skia-python,
            several times faster; its SVG module draws no text, so titles, lyrics and labels are missing).

    Returns:
        The page as a ``(height, width)`` uint8 array.
    """
    if renderer == "skia":
        img = _render_skia(svg, width, height)
    elif renderer == "resvg":
        img = _render_resvg(svg)
    else:
        raise RenderError(f"unknown renderer {renderer!r}")
    if img.shape != (height, width):
        raise RenderError(f"renderer {renderer} returned {img.shape[1]}x{img.shape[0]} for a {width}x{height} page")
    return img


def _render_resvg(svg: str) -> np.ndarray:
    import cv2
    import resvg_py

    fonts = list(text_fonts())
    try:
        png = resvg_py.svg_to_bytes(
            svg_string=svg,
            background="#ffffff",
            skip_system_fonts=True,  # the same fonts on every machine: the output is reproducible
            font_files=fonts or None,
            serif_family="DejaVu Serif",
            font_family="DejaVu Serif",
        )
    except ValueError as exc:
        raise RenderError(f"resvg could not render the page: {exc}") from exc
    img = cv2.imdecode(np.frombuffer(bytes(png), np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise RenderError("resvg returned an unreadable PNG")
    return img


def _render_skia(svg: str, width: int, height: int) -> np.ndarray:
    import cv2
    import skia

    # skia's SVG module ignores <style>: give every shape the stroke verovio's CSS gives it
    data = _SHAPE_OPEN.sub(r'<\1 stroke="black" ', svg).encode("utf-8")
    dom = skia.SVGDOM.MakeFromStream(skia.MemoryStream(data, True))
    if dom is None:
        raise RenderError("skia could not parse the page SVG")
    buf = np.full((height, width, 4), 255, np.uint8)
    surface = skia.Surface(buf)
    with surface as canvas:
        dom.render(canvas)
    return cv2.cvtColor(buf, cv2.COLOR_RGBA2GRAY)


def encode_png(img: np.ndarray) -> bytes:
    """Encode a grayscale page as PNG (deterministic bytes for the same pixels)."""
    import cv2

    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RenderError("PNG encoding failed")
    return buf.tobytes()


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
    f = out.astype(np.float32)
    # paper: a slightly grey, unevenly lit sheet (a low-frequency gradient plus a soft vignette)
    yy, xx = np.mgrid[0:h:8, 0:w:8].astype(np.float32)
    gx, gy = rng.uniform(-1, 1, 2)
    light = 1.0 - 0.06 * (gx * (xx / w - 0.5) + gy * (yy / h - 0.5)) - 0.05 * (((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2)
    light = cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)
    paper = float(rng.uniform(232, 250))
    ink = float(rng.uniform(10, 45))
    f = (ink + (paper - ink) * (f / 255.0)) * light
    blur = float(rng.uniform(0.3, 0.8))
    f = cv2.GaussianBlur(f, (0, 0), blur)
    noise = float(rng.uniform(2.0, 7.0))
    f += rng.normal(0.0, noise, f.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    quality = int(rng.integers(55, 90))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if ok:
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    mat = ((float(m[0, 0]), float(m[0, 1]), float(m[0, 2])), (float(m[1, 0]), float(m[1, 1]), float(m[1, 2])))
    return out, ScanDamage(angle, mat, blur, noise, quality)


def rotated_box(damage: ScanDamage, box: tuple[float, float, float, float]) -> np.ndarray:
    """The four corners of ``box`` after damage, in DeepScoresV2's ``o_bbox`` order.

    The released files list corners as (x1, y1), (x1, y0), (x0, y0), (x0, y1) for axis-aligned boxes.
    """
    x0, y0, x1, y1 = box
    pts = np.array([[x1, y1], [x1, y0], [x0, y0], [x0, y1]], dtype=np.float64)
    return damage.apply(pts)
