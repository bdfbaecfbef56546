"""Test-wide settings: keep Ultralytics offline and its settings inside a temporary folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.notify_receiver import Receiver

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "omr-tests-ultralytics"))
os.environ.setdefault("MPLBACKEND", "Agg")
# Pages default to a shipped reference model: tests see none unless they put one in a folder of their own.
os.environ.setdefault("OMR_MODELS_DIR", str(Path(tempfile.gettempdir()) / "omr-tests-no-shipped-models"))

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
DATA = REPO / "tests" / "data"  # everything the tests read, inside the repository (see tests/data/README.md)
#: The real DeepScoresV2 sample: 10 pages of the dense test split (annotations only).
REAL_SAMPLE = DATA / "deepscores_test_small.json"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real loopback receiver for push notifications (Apprise ``json://``): see tests/notify_receiver.py."""
    r = Receiver()
    yield r
    r.server.shutdown()
