"""How v84_tiny/ was made: Ultralytics' own tuner (`model.tune`, 8.4.190) for 3 iterations of 15 epochs on the tiny
drawn-shapes dataset (64 train / 16 val images of 96 px), on a CPU.

    PYTHONPATH=. YOLO_OFFLINE=1 python tests/data/ultralytics_tune/make_v84_tiny.py /tmp/tune

then keep OUT/tune-tiny/tune_results.ndjson and best_hyperparameters.yaml (about 5 minutes on 2 busy cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ultralytics import YOLO

from tests.core.training.tiny_dataset import make_tiny_dataset

root = Path(sys.argv[1])
data = make_tiny_dataset(root / "tiny64", n_train=64, n_val=16, size=96, seed=0)
YOLO("yolov8n.yaml").tune(
    data=str(data), epochs=15, iterations=3, imgsz=96, lr0=0.02, warmup_epochs=0.5, mosaic=0.0, close_mosaic=0,
    fliplr=0.0, batch=8, nbs=8, workers=0, device="cpu", plots=False, save=False, val=True, optimizer="SGD",
    project=str(root / "out"), name="tune-tiny", amp=False,
    space={"lr0": (1e-3, 5e-2), "momentum": (0.6, 0.98), "box": (1.0, 20.0), "cls": (0.1, 4.0)})
