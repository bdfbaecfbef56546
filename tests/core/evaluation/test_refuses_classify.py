"""Per-class failures refuses a classification model with a message that says why and what to pick instead."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omr_core.evaluation.evaluate import evaluate
from omr_core.evaluation.validate import EvaluationError

DATA = Path(__file__).resolve().parents[2] / "data" / "ultralytics_runs"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    from ultralytics import YOLO

    out = tmp_path_factory.mktemp("cls") / "yolov8n-cls.pt"
    YOLO("yolov8n-cls.yaml").save(str(out))  # a real classification checkpoint, built from the model YAML
    return out


def test_weights_of_a_classify_run_are_refused_before_anything_loads(tmp_path: Path, classifier: Path) -> None:
    run = tmp_path / "runs" / "cls"
    shutil.copytree(DATA / "v84_classify_cpu", run)  # a real classify run folder: task: classify, data: a folder
    (run / "weights").mkdir()
    shutil.copy(classifier, run / "weights" / "best.pt")
    with pytest.raises(EvaluationError) as e:
        evaluate(run / "weights" / "best.pt")
    msg = str(e.value)
    assert "classify run" in msg and "needs a detection model" in msg and "data.yaml" not in msg


def test_a_classification_checkpoint_outside_a_run_is_refused_when_loaded(tmp_path: Path, classifier: Path) -> None:
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (64, 64), "white").save(tmp_path / "images" / "page.png")  # a valid dataset, so the model decides
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: {0: a}\n")
    with pytest.raises(EvaluationError, match=r"is a classify model: per-class failures .* needs a detection model"):
        evaluate(classifier, data)
