"""A real model trained in the test: engrave pages, convert with the reading recipe (tiled), one CPU epoch via a run.

Small enough to take well under a minute on two busy cores; it detects little, but every file and record the
real recipe writes (dataset_scale.json, run.json ``scale``, the ``omr_scale`` checkpoint key) is the real one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from omr_core.training.record import RunRecord


@dataclass(frozen=True)
class TinyModel:
    """What `train_tiny_reading_model` made."""

    weights: Path
    run_dir: Path
    data_yaml: Path
    synth: Path


def wait_finished(run_dir: Path, timeout: float = 600) -> RunRecord:
    """Poll run.json until the run ended; fail with its log otherwise."""
    from omr_core.training.runs import read_run

    deadline = time.time() + timeout
    doc = None
    while time.time() < deadline:
        doc = read_run(run_dir)
        if doc is not None and doc.state in ("finished", "failed", "stopped"):
            break
        time.sleep(0.5)
    log = (run_dir / "log.txt").read_text(errors="replace")[-3000:] if (run_dir / "log.txt").exists() else ""
    assert doc is not None and doc.state == "finished", f"run ended as {doc and doc.state!r}: {doc and doc.reason}\n{log}"
    return doc


def train_tiny_reading_model(root: Path, *, pages: int = 3, tile: int = 640, imgsz: int = 64, seed: int = 5) -> TinyModel:
    """Engrave ``pages`` pages at 0.8 scale, convert them with the reading preset, train one epoch at ``imgsz``."""
    from omr_core.datasets.discovery import load_dataset
    from omr_core.datasets.synth import synth_dataset
    from omr_core.training.demo import convert_reading
    from omr_core.training.launcher import launch
    from omr_core.training.spec import build_spec

    synth = root / "synth"
    synth_dataset(synth, pages=pages, seed=seed, test_fraction=0.34, scale=0.8)
    ds = load_dataset([synth / "deepscores_train.json", synth / "deepscores_test.json"])
    rep = convert_reading(ds, root / "yolo", tile=tile, imgsz=imgsz)
    spec = build_spec("tiny", "yolov8n.yaml", str(rep.data_yaml), preset="cpu-small",
                      args={"epochs": 1, "imgsz": imgsz, "batch": 8, "nbs": 8, "workers": 0, "val": True})
    run_dir = launch(spec, root / "runs")
    wait_finished(run_dir)
    return TinyModel(weights=run_dir / "weights" / "best.pt", run_dir=run_dir, data_yaml=rep.data_yaml, synth=synth)
