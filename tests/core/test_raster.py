"""PNG bytes and symbol crops, written once for the engraver, the audit gallery, failure galleries and reviews."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omr_core.errors import OmrError
from omr_core.raster import crop_with_boxes, encode_png, grey_page


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_png_round_trips_grey_and_rgb_in_rgb_order() -> None:
    grey = np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    assert np.array_equal(_decode(encode_png(grey)), grey)
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 220  # red stays red: OpenCV's BGR is not leaked
    out = _decode(encode_png(rgb))
    assert out.shape == (10, 12, 3) and (out[..., 0] == 220).all() and (out[..., 2] == 0).all()
    assert encode_png(grey) == encode_png(grey.copy())  # deterministic bytes for the same pixels


def test_noisy_pages_use_huffman_only_and_stay_lossless() -> None:
    rng = np.random.default_rng(0)
    grain = rng.integers(0, 256, (256, 256), dtype=np.uint8)
    png = encode_png(grain, noisy=True)
    assert np.array_equal(_decode(png), grain)
    assert len(png) <= len(encode_png(grain)) * 1.01


def test_png_error_names_the_array() -> None:
    with pytest.raises(OmrError, match=r"shape \(4, 4, 2\)"):
        encode_png(np.zeros((4, 4, 2), np.float64))


def test_crop_fits_the_size_draws_each_box_in_its_colour_and_shows_context() -> None:
    page = np.full((400, 300), 255, np.uint8)
    page[100:140, 100:104] = 0  # a stem-like ink mark
    green, red = (0, 170, 60), (220, 30, 30)
    img = crop_with_boxes(page, [((100, 100, 104, 140), green), ((98, 96, 106, 142), red), (None, (0, 0, 255))], size=160)
    assert img.dtype == np.uint8 and img.shape[2] == 3 and max(img.shape[:2]) == 160
    flat = img.reshape(-1, 3)
    assert (flat == green).all(1).any() and (flat == red).all(1).any() and not (flat == (0, 0, 255)).all(1).any()
    assert (flat.min(axis=1) == 0).any() and (flat.min(axis=1) == 255).any()  # ink and paper around it


def test_crop_refuses_what_it_cannot_show() -> None:
    page = np.full((50, 50), 255, np.uint8)
    with pytest.raises(OmrError, match="at least one box"):
        crop_with_boxes(page, [((np.nan, 0, 1, 1), (0, 0, 0))])
    with pytest.raises(OmrError, match="outside the 50x50 page"):
        crop_with_boxes(page, [((500, 500, 510, 510), (0, 0, 0))])


def test_grey_page_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(OmrError, match="gone.png is missing"):
        grey_page(tmp_path / "gone.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(OmrError, match="bad.png: not an image"):
        grey_page(bad)
    good = tmp_path / "good.png"
    good.write_bytes(encode_png(np.full((5, 7), 9, np.uint8)))
    assert grey_page(good).shape == (5, 7)
