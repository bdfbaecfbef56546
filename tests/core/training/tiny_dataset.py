"""A tiny real YOLO dataset (drawn rectangles/ellipses/lines, 3 classes) for CPU training tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("box", "ellipse", "bar")


def make_tiny_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 128, seed: int = 0) -> Path:
    """Draw ``n_train + n_val`` grayscale-on-white images with YOLO labels; returns the data.yaml path."""
    import cv2

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        img_dir, lab_dir = root / "images" / split, root / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lab_dir.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = np.full((size, size, 3), 255, np.uint8)
            lines = []
            for _ in range(int(rng.integers(2, 6))):
                c = int(rng.integers(0, len(CLASSES)))
                w, h = (int(v) for v in rng.integers(size // 10, size // 3, 2))
                if c == 2:  # thin horizontal bar, like a beam
                    h = max(3, h // 5)
                x0 = int(rng.integers(0, size - w))
                y0 = int(rng.integers(0, size - h))
                if c == 0:
                    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), 2)
                elif c == 1:
                    cv2.ellipse(img, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), 0, 0, 360, (0, 0, 0), -1)
                else:
                    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), -1)
                lines.append(f"{c} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            cv2.imwrite(str(img_dir / f"{split}{k:03d}.png"), img)
            (lab_dir / f"{split}{k:03d}.txt").write_text("\n".join(lines) + "\n")
    data = root / "data.yaml"
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data
