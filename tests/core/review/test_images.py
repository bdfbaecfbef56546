"""Safe page loading: content sniffing, damaged and hostile files, PDF and multi-page TIFF pages."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omr_core.review.images import ImageLoadError, load_page, page_count, sniff
from tests.core.review.recon_fixtures import bomb_png, draw_page, png_bytes


@pytest.fixture(scope="module")
def page_png() -> bytes:
    return png_bytes(draw_page().gray)


def test_png_roundtrip(page_png: bytes, tmp_path: Path) -> None:
    p = tmp_path / "page.png"
    p.write_bytes(page_png)
    page = load_page(p)
    assert page.kind == "png" and page.gray.dtype == np.uint8 and page.gray.shape == (1200, 1600)
    assert page.source == str(p)


def test_type_comes_from_the_content_not_the_name(page_png: bytes, tmp_path: Path) -> None:
    p = tmp_path / "really-a-png.pdf"
    p.write_bytes(page_png)
    assert load_page(p).kind == "png"
    t = tmp_path / "text.png"
    t.write_text("hello, I am not an image")
    with pytest.raises(ImageLoadError, match="not a PNG, JPEG, TIFF"):
        load_page(t)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b'{"images": []}', "looks like text"),
        (b"GIF89a\x01\x00", "not a PNG"),
    ],
)
def test_unusable_bytes(data: bytes, match: str) -> None:
    with pytest.raises(ImageLoadError, match=match):
        load_page(data, source="up")


def test_truncated_png(page_png: bytes) -> None:
    with pytest.raises(ImageLoadError, match="damaged or truncated"):
        load_page(page_png[: len(page_png) // 2], source="cut.png")


def test_truncated_jpeg() -> None:
    b = io.BytesIO()
    Image.fromarray(draw_page().gray).save(b, "JPEG")
    with pytest.raises(ImageLoadError, match="damaged or truncated"):
        load_page(b.getvalue()[:2000], source="cut.jpg")


def test_one_pixel_image() -> None:
    b = io.BytesIO()
    Image.new("L", (1, 1)).save(b, "PNG")
    with pytest.raises(ImageLoadError, match=r"1×1 px, too small"):
        load_page(b.getvalue(), source="dot.png")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = bomb_png(20000)
    assert len(data) < 200_000  # tiny file, 400 Mpx once decoded
    with pytest.raises(ImageLoadError, match="Mpx limit"):
        load_page(data, source="bomb.png")


def test_our_pixel_limit_applies_below_pils(page_png: bytes) -> None:
    with pytest.raises(ImageLoadError, match="above the 1 Mpx limit"):
        load_page(page_png, source="big.png", max_pixels=1_000_000)


def test_rgba_is_composed_on_white() -> None:
    rgba = np.zeros((100, 120, 4), np.uint8)  # fully transparent black
    rgba[40:60, :, 3] = 255  # an opaque black band
    b = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(b, "PNG")
    g = load_page(b.getvalue()).gray
    assert g[0, 0] == 255 and g[50, 50] == 0


def _pdf(pages: int) -> bytes:
    ims = [Image.fromarray(draw_page(tops=(200 + 40 * i,), join=()).gray).convert("RGB") for i in range(pages)]
    b = io.BytesIO()
    ims[0].save(b, "PDF", resolution=200.0, save_all=True, append_images=ims[1:])
    return b.getvalue()


def test_pdf_pages() -> None:
    data = _pdf(2)
    assert sniff(data) == "pdf" and page_count(data) == 2
    p = load_page(data, page=1, source="score.pdf")
    assert p.kind == "pdf" and p.pages == 2 and p.page == 1
    # 1600 px at 200 dpi is 8 in; rendered at 240 dpi: 1920 px.
    assert abs(p.width - 1920) <= 2
    assert p.gray.min() < 50 and p.gray.max() > 200
    with pytest.raises(ImageLoadError, match="page 3 asked for, the PDF has 2"):
        load_page(data, page=2, source="score.pdf")


def test_pdf_rendered_smaller_to_fit_the_limit() -> None:
    p = load_page(_pdf(1), max_pixels=1_000_000)
    assert p.width * p.height <= 1_000_000 and p.notes


def test_damaged_pdf() -> None:
    with pytest.raises(ImageLoadError, match="PDF cannot be opened"):
        load_page(b"%PDF-1.4\n" + b"garbage" * 100, source="bad.pdf")


def test_multipage_tiff() -> None:
    frames = [Image.fromarray(draw_page(tops=(200 + 100 * i,), join=()).gray) for i in range(3)]
    b = io.BytesIO()
    frames[0].save(b, "TIFF", save_all=True, append_images=frames[1:])
    assert page_count(b.getvalue()) == 3
    g = load_page(b.getvalue(), page=2).gray
    assert g[401, 500] == 0 and g[201, 500] == 255


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        load_page(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="not a file"):
        load_page(tmp_path)
