"""A real trained detector for evaluation tests: drawn DeepScoresV2-named symbols, trained ~45 s on the CPU.

Import it as ``tests.core.evaluation.trained_fixture`` (the name pytest gives it too) so every test module of a
session shares one trained model through `trained_run`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Official names; the last one never appears in the labels (a "no labels" class).
NAMES = ("noteheadBlackOnLine", "clefG", "restQuarter", "clefF")
SIZE = 160
EPOCHS = 40


def _draw(img: np.ndarray, c: int, x: int, y: int, s: int) -> tuple[int, int, int, int]:
    import cv2

    if c == 0:  # filled tilted ellipse
        cv2.ellipse(img, (x, y), (s // 2, int(s * 0.38)), -20, 0, 360, (0, 0, 0), -1)
        return x - s // 2, y - int(s * 0.42), x + s // 2, y + int(s * 0.42)
    if c == 1:  # a tall line with a ring
        w, h = int(s * 0.6), int(s * 1.6)
        cv2.line(img, (x, y - h // 2), (x, y + h // 2), (0, 0, 0), 2)
        cv2.circle(img, (x, y + h // 5), w // 2, (0, 0, 0), 2)
        return x - w // 2 - 1, y - h // 2, x + w // 2 + 1, y + h // 2
    w, h = int(s * 0.35), int(s * 1.1)  # a zigzag
    pts = np.array([[x - w // 2, y - h // 2], [x + w // 2, y - h // 6], [x - w // 2, y + h // 6], [x + w // 2, y + h // 2]], np.int32)
    cv2.polylines(img, [pts], False, (0, 0, 0), 3)
    return x - w // 2 - 2, y - h // 2 - 2, x + w // 2 + 2, y + h // 2 + 2


def make_symbols_dataset(root: Path, n_train: int = 16, n_val: int = 8, seed: int = 0) -> Path:
    """Draw staff-lined 160x160 pages with 4-7 separated symbols of 3 classes; returns data.yaml."""
    import cv2

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.full((SIZE, SIZE, 3), 255, np.uint8)
            for yy in range(20, SIZE, 24):
                cv2.line(img, (0, yy), (SIZE, yy), (120, 120, 120), 1)
            lines, placed = [], []
            for _ in range(int(rng.integers(4, 8))):
                for _try in range(20):
                    c, s = int(rng.integers(0, 3)), int(rng.integers(14, 22))
                    x, y = int(rng.integers(20, SIZE - 20)), int(rng.integers(25, SIZE - 25))
                    if all(abs(x - ox) > 28 or abs(y - oy) > 34 for ox, oy in placed):
                        break
                else:
                    continue
                placed.append((x, y))
                x0, y0, x1, y1 = _draw(img, c, x, y, s)
                x0, y0, x1, y1 = max(0, x0), max(0, y0), min(SIZE, x1), min(SIZE, y1)
                lines.append(f"{c} {(x0 + x1) / 2 / SIZE:.6f} {(y0 + y1) / 2 / SIZE:.6f} {(x1 - x0) / SIZE:.6f} {(y1 - y0) / SIZE:.6f}")
            cv2.imwrite(str(root / "images" / split / f"p{i:03d}.png"), img)
            (root / "labels" / split / f"p{i:03d}.txt").write_text("\n".join(lines) + "\n")
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return data


def train_model(data: Path, project: Path, name: str = "symbols", epochs: int = EPOCHS) -> Path:
    """Train yolov8n from its YAML on the CPU; returns the run folder (weights/best.pt, last.pt, args.yaml)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(2)
    # nbs=batch: one optimizer step per batch (the default nbs=64 would step every 16 batches and learn nothing
    # in 40 short epochs); flips/colour jitter off because the symbols are not symmetric.
    YOLO("yolov8n.yaml").train(
        data=str(data), epochs=epochs, imgsz=SIZE, batch=4, nbs=4, workers=0, device="cpu", plots=False,
        project=str(project), name=name, exist_ok=True, verbose=False, seed=0, deterministic=True, val=False,
        warmup_epochs=0, mosaic=0, close_mosaic=0, amp=False, pretrained=False, optimizer="SGD", lr0=0.02,
        fliplr=0, hsv_h=0, hsv_s=0, hsv_v=0, translate=0.05, scale=0.1,
    )  # fmt: skip
    return project / name


@dataclass(frozen=True)
class TrainedRun:
    """The shared fixture: dataset, run folder and weights."""

    data: Path
    dataset: Path
    run: Path

    @property
    def weights(self) -> Path:
        return self.run / "weights" / "last.pt"


_SHARED: dict[str, TrainedRun] = {}


def trained_run(base: Path) -> TrainedRun:
    """Build the dataset and train once per test session (later calls return the same run)."""
    if "run" not in _SHARED:
        dataset = base / "symbols"
        data = make_symbols_dataset(dataset)
        run = train_model(data, base / "runs")
        _SHARED["run"] = TrainedRun(data=data, dataset=dataset, run=run)
    return _SHARED["run"]


def copy_dataset(src: Path, dst: Path) -> Path:
    """Copy a dataset (without Ultralytics' .cache files) and point its data.yaml at the copy; returns data.yaml."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.cache"))
    data = dst / "data.yaml"
    text = data.read_text().replace(f"path: {src}\n", f"path: {dst}\n")
    data.write_text(text)
    return data


def install_run(run: Path, runs_dir: Path, name: str = "symbols") -> Path:
    """Copy a run folder (args.yaml, weights) into a workspace's runs folder."""
    dst = runs_dir / name
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("evaluation"))
    return dst
