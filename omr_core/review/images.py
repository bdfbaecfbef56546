"""Safe loading of score pages: content sniffing, pixel limits against decompression bombs, PDF pages."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omr_core.errors import OmrError

#: Largest page accepted, in pixels (a 600-dpi A3 scan is ~70 Mpx; a 20000×20000 "image" is a bomb).
MAX_PIXELS = 80_000_000
#: Smallest side that can hold a staff.
MIN_SIDE = 32
#: Resolution PDF pages are rendered at by default (DeepScoresV2 pages are ~240 dpi A4: 1960×2772).
PDF_DPI = 240.0
#: Largest upload read into memory.
MAX_BYTES = 200 * 1024 * 1024

SUPPORTED = "PNG, JPEG, TIFF, BMP, WebP or PDF"


class ImageLoadError(OmrError):
    """A file that cannot be used as a score page (wrong type, damaged, empty, too small or too large)."""


@dataclass(frozen=True)
class PageImage:
    """One page ready for review.

    Attributes:
        gray: uint8 grayscale pixels (H×W), alpha composed on white.
        source: File name or description of where the page came from.
        kind: Detected content type (``png``, ``jpeg``, ``tiff``, ``bmp``, ``webp``, ``pdf``).
        page: Index of this page in a multi-page file (0-based).
        pages: Number of pages in the file.
        notes: Things people should know (e.g. a PDF page rendered at a lower resolution to fit the limit).
    """

    gray: np.ndarray = field(repr=False)
    source: str
    kind: str
    page: int = 0
    pages: int = 1
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.gray.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.gray.shape[0])


def sniff(data: bytes) -> str | None:
    """Content type from the first bytes (never from the file name): ``png``, ``jpeg``, ``tiff``, ``pdf``…

    Returns None when the bytes are not a supported type.
    """
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    # PDF files may have junk before the header; the spec allows the marker within the first 1024 bytes.
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return None


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> bytes:
    """Read a file for loading, refusing folders, missing files and files above ``max_bytes``."""
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"{p}: no such file")
    if not p.is_file():
        raise ImageLoadError(f"{p}: not a file (expected a {SUPPORTED} page)")
    size = p.stat().st_size
    if size > max_bytes:
        raise ImageLoadError(f"{p}: {size / 2**20:.0f} MiB is larger than the {max_bytes / 2**20:.0f} MiB limit")
    return p.read_bytes()


def page_count(data: bytes, *, source: str = "upload") -> int:
    """Number of pages in an image or PDF file (TIFF and PDF may hold several)."""
    kind = _kind_or_raise(data, source)
    if kind == "pdf":
        pdf = _open_pdf(data, source)
        try:
            return len(pdf)
        finally:
            pdf.close()
    if kind == "tiff":
        img = _open_pil(data, source)
        return int(getattr(img, "n_frames", 1))
    return 1


def load_page(
    data: bytes | str | os.PathLike[str],
    *,
    page: int = 0,
    source: str | None = None,
    max_pixels: int = MAX_PIXELS,
    pdf_dpi: float = PDF_DPI,
) -> PageImage:
    """Load one page of an image or PDF as grayscale, refusing anything unsafe or useless.

    The type comes from the content (a PDF renamed ``.png`` still works, a text file renamed ``.png`` is
    refused). The pixel count is checked from the header before any pixels are decoded, so a decompression
    bomb costs nothing. PDF pages are rendered with pypdfium2 (a wheel, no system poppler) at ``pdf_dpi``,
    lowered when the page would exceed ``max_pixels``.

    Args:
        data: File content, or a path to read.
        page: Page index for PDF and multi-page TIFF files (0-based).
        source: Name used in messages (default: the path, or "upload").
        max_pixels: Largest accepted width × height.
        pdf_dpi: Rendering resolution for PDF pages.

    Returns:
        The page.

    Raises:
        ImageLoadError: For empty, unknown, damaged, too small or too large files, and pages out of range.
    """
    if isinstance(data, (str, os.PathLike)):
        source = source or str(data)
        data = read_bytes(data)
    source = source or "upload"
    kind = _kind_or_raise(data, source)
    if kind == "pdf":
        return _load_pdf(data, page=page, source=source, max_pixels=max_pixels, dpi=pdf_dpi)
    return _load_raster(data, kind=kind, page=page, source=source, max_pixels=max_pixels)


def _kind_or_raise(data: bytes, source: str) -> str:
    if not data:
        raise ImageLoadError(f"{source}: the file is empty (0 bytes); expected a {SUPPORTED} page")
    kind = sniff(data)
    if kind is None:
        hint = ""
        if data[:1] in (b"{", b"[") or data[:5].lower() in (b"<?xml", b"<svg ", b"<!doc", b"<html"):
            hint = " (it looks like text: JSON, XML or HTML)"
        raise ImageLoadError(f"{source}: not a {SUPPORTED} file{hint}; the content does not start like any of them")
    return kind


def _check_size(w: int, h: int, source: str, max_pixels: int) -> None:
    if w < MIN_SIDE or h < MIN_SIDE:
        raise ImageLoadError(
            f"{source}: the image is {w}×{h} px, too small to hold a staff (each side needs at least {MIN_SIDE} px)"
        )
    if w * h > max_pixels:
        raise ImageLoadError(
            f"{source}: the image is {w}×{h} px ({w * h / 1e6:.0f} Mpx), above the {max_pixels / 1e6:.0f} Mpx limit "
            "(a page scanned at 600 dpi is ~35 Mpx); scale it down first"
        )


def _open_pil(data: bytes, source: str):  # type: ignore[no-untyped-def]
    from PIL import Image

    try:
        # Image.open reads the header only; the bomb check happens before decoding.
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(_bomb_message(source, exc)) from None
    except Exception as exc:  # PIL raises many types for bad headers
        raise ImageLoadError(f"{source}: the image header cannot be read ({exc}); the file is damaged") from None


def _bomb_message(source: str, exc: Exception) -> str:
    import re

    m = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" declares {int(m.group(1)) / 1e6:.0f} Mpx and" if m else ""
    return (
        f"{source}: refused: the image{size} would expand far beyond the {MAX_PIXELS / 1e6:.0f} Mpx limit "
        "(a decompression bomb, or a scan at a needlessly high resolution); scale it down first"
    )


def _load_raster(data: bytes, *, kind: str, page: int, source: str, max_pixels: int) -> PageImage:
    import warnings

    from PIL import Image, ImageOps

    img = _open_pil(data, source)
    w, h = img.size
    _check_size(w, h, source, max_pixels)
    pages = int(getattr(img, "n_frames", 1))
    if not 0 <= page < pages:
        raise ImageLoadError(f"{source}: page {page + 1} asked for, the file has {pages} page(s)")
    try:
        with warnings.catch_warnings():
            # Our own limit was checked above; PIL's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if pages > 1:
                img.seek(page)
                w, h = img.size
                _check_size(w, h, source, max_pixels)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            gray = _to_gray(img)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(_bomb_message(source, exc)) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"{source}: the {kind.upper()} data is damaged or truncated ({exc})") from None
    return PageImage(gray=gray, source=source, kind=kind, page=page, pages=pages)


def _to_gray(img) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Any PIL mode to uint8 gray, transparent areas composed on white."""
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        return np.ascontiguousarray((arr * (255.0 / max(hi, 255.0))).clip(0, 255).astype(np.uint8))
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = arr * 255.0 if float(np.nanmax(arr)) <= 1.0 else arr
        return np.ascontiguousarray(np.nan_to_num(arr, nan=255.0).clip(0, 255).astype(np.uint8))
    return np.ascontiguousarray(np.asarray(img.convert("L"), dtype=np.uint8))


def _open_pdf(data: bytes, source: str):  # type: ignore[no-untyped-def]
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except Exception as exc:  # PdfiumError for damaged, encrypted or truncated files
        msg = str(exc) or type(exc).__name__
        if "password" in msg.lower():
            raise ImageLoadError(f"{source}: the PDF is password-protected; save an unprotected copy") from None
        raise ImageLoadError(f"{source}: the PDF cannot be opened ({msg}); the file is damaged or truncated") from None


def _load_pdf(data: bytes, *, page: int, source: str, max_pixels: int, dpi: float) -> PageImage:
    pdf = _open_pdf(data, source)
    try:
        n = len(pdf)
        if n == 0:
            raise ImageLoadError(f"{source}: the PDF has no pages")
        if not 0 <= page < n:
            raise ImageLoadError(f"{source}: page {page + 1} asked for, the PDF has {n} page(s)")
        pg = pdf[page]
        try:
            wpt, hpt = pg.get_size()
            scale = dpi / 72.0
            notes: list[str] = []
            if wpt * hpt * scale * scale > max_pixels:
                scale = float(np.sqrt(max_pixels / max(wpt * hpt, 1e-9))) * 0.999
                notes.append(f"page rendered at {scale * 72:.0f} dpi (instead of {dpi:.0f}) to stay under the pixel limit")
            w, h = int(round(wpt * scale)), int(round(hpt * scale))
            _check_size(w, h, source, max_pixels)
            bitmap = pg.render(scale=scale, grayscale=True)
            arr = bitmap.to_numpy()
        finally:
            pg.close()
    except ImageLoadError:
        raise
    except Exception as exc:
        raise ImageLoadError(f"{source}: page {page + 1} of the PDF cannot be rendered ({exc})") from None
    finally:
        pdf.close()
    gray = arr if arr.ndim == 2 else arr[..., 0]
    return PageImage(
        gray=np.ascontiguousarray(gray.astype(np.uint8)),
        source=source,
        kind="pdf",
        page=page,
        pages=n,
        notes=tuple(notes),
    )
