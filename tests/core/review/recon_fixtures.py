"""Test pages for staff detection and reconstruction: drawn pages with known geometry, engraved pages, models."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class DrawnPage:
    """A page drawn with NumPy: every line, stem and ledger line is where the test says it is."""

    gray: np.ndarray
    staves: list[list[float]] = field(default_factory=list)  # line centres per staff
    space: float = 0.0
    thickness: int = 0
    heads: list[dict] = field(default_factory=list)


def draw_page(
    width: int = 1600,
    height: int = 1200,
    tops: tuple[int, ...] = (200, 420, 800),
    space: int = 20,
    thickness: int = 2,
    x0: int = 100,
    x1: int = 1500,
    join: tuple[int, ...] = (0,),
) -> DrawnPage:
    """White page with staves whose top line starts at ``tops`` rows; staves i and i+1 joined by a barline for i in ``join``."""
    g = np.full((height, width), 255, np.uint8)
    page = DrawnPage(g, space=float(space), thickness=thickness)
    for top in tops:
        ys = []
        for i in range(5):
            r = top + i * space
            g[r : r + thickness, x0:x1] = 0
            ys.append(r + thickness / 2)
        page.staves.append(ys)
    for i in join:
        a, b = tops[i], tops[i + 1]
        for x in (x0, x1 - 3):
            g[a : b + 4 * space + thickness, x : x + 3] = 0
    return page


def four_line_page() -> DrawnPage:
    """Three five-line staves over eight groups of four long evenly spaced lines (no five-line staff finds those)."""
    page = draw_page(height=2200, tops=(200, 420, 800), join=())
    for k in range(8):
        for i in range(4):
            r = 1000 + 140 * k + 20 * i
            page.gray[r : r + 2, 100:1500] = 0
    return page


def notehead(g: np.ndarray, cx: float, cy: float, space: float, filled: bool = True) -> tuple[float, float, float, float]:
    """Draw a slanted elliptical notehead; returns its box (x0, y0, x1, y1) in continuous pixels."""
    import cv2

    w, h = 1.3 * space, 1.0 * space
    mask = np.zeros(g.shape, np.uint8)
    cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (int(w / 2), int(h / 2) - 1), -20, 0, 360, 255, -1 if filled else 2)
    g[mask > 0] = 0
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def stem(g: np.ndarray, x: int, y0: int, y1: int, width: int = 2) -> None:
    """Draw a vertical stem covering rows y0..y1-1 and columns x..x+width-1."""
    g[y0:y1, x : x + width] = 0


def ledger(g: np.ndarray, x0: int, x1: int, y: int, thickness: int = 2) -> None:
    """Draw a ledger line."""
    g[y : y + thickness, x0:x1] = 0


def rotate(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre (counter-clockwise, degrees); returns the image and the 2×3 matrix."""
    import cv2

    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255), m


def engraved(
    root: Path, degrade: str = "none", pages: int = 3, seed: int = 5, scale: float = 0.8, layout: str = "normal"
) -> Path:
    """Engrave a small dataset (all pages in the test file); returns deepscores_test.json."""
    from omr_core.datasets.synth import synth_dataset

    out = root / (f"synth-{degrade}-{seed}" if layout == "normal" else f"synth-{layout}-{degrade}-{seed}")
    if not (out / "deepscores_test.json").is_file():
        synth_dataset(
            out, pages=pages, seed=seed, test_fraction=0.99, degrade=degrade, overwrite=True, scale=scale, layout=layout
        )
    return out / "deepscores_test.json"


def make_model(path: Path, names: dict[int, str] | None = None, task: str = "detect") -> Path:
    """Save an untrained Ultralytics checkpoint built from a model YAML (no download): detect or classify."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    if task == "classify":
        YOLO("yolov8n-cls.yaml").save(str(path))
        return path
    y = YOLO("yolov8n.yaml")
    if names is not None:
        y.model = DetectionModel("yolov8n.yaml", nc=len(names), verbose=False)
        y.model.names = dict(names)
    y.save(str(path))
    return path


def deepscores_names() -> dict[int, str]:
    """YOLO index -> name for the 136 deepscores classes."""
    from omr_core.classes import class_table

    return {c.yolo_index: c.name for c in class_table().deepscores if c.yolo_index is not None}


def png_bytes(gray: np.ndarray) -> bytes:
    """Encode a grayscale array as PNG."""
    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(gray).save(b, "PNG")
    return b.getvalue()


def bomb_png(side: int = 20000) -> bytes:
    """A tiny PNG file that declares side×side pixels (a decompression bomb)."""
    from PIL import Image

    b = io.BytesIO()
    Image.new("1", (side, side), 1).save(b, "PNG")
    return b.getvalue()
