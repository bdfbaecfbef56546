"""Shared fixtures of the evaluation tests: one trained model per session and its evaluation at threshold 0.1."""

from __future__ import annotations

import pytest

from omr_core.evaluation.evaluate import Evaluation, evaluate
from tests.core.evaluation.trained_fixture import SIZE, TrainedRun, trained_run

#: The tiny model is weak, so the tests use a threshold its correct detections pass.
CONF = 0.1


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return trained_run(tmp_path_factory.mktemp("evaluate"))


@pytest.fixture(scope="session")
def ev(run: TrainedRun) -> Evaluation:
    return evaluate(run.weights, run.data, "val", imgsz=SIZE, batch=4, conf=CONF)
