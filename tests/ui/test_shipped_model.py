"""The shipped reference model is what Review a score and Per-class failures offer first, and it runs as trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.review.models import list_models, shipped_models
from omr_core.workspace import Workspace
from tests.core.review.recon_fixtures import deepscores_names, make_model
from tests.tiny_reading_model import TinyModel, train_tiny_reading_model

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_reading_model(tmp_path_factory.mktemp("tiny-shipped"))


@pytest.fixture
def shipped(tiny: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with one run of its own, and a models folder holding the tiny model as 'reading-tiny'."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(tiny.weights, models / "reading-tiny.pt")
    (models / "reading-tiny.md").write_text("# reading-tiny\n")
    weights = tmp_path / "ws" / "runs" / "exp1" / "weights"
    weights.mkdir(parents=True)
    make_model(weights / "best.pt", deepscores_names())
    monkeypatch.setenv("OMR_MODELS_DIR", str(models))
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path / "ws"))
    return models


def test_list_models_puts_shipped_first(shipped: Path, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", tmp_path / "ws" / "runs", tmp_path / "ws" / "datasets")
    found = list_models(ws)
    assert [(m.label, m.shipped) for m in found] == [("reference: reading-tiny", True), ("exp1/weights/best.pt", False)]
    assert found[0].card == shipped / "reading-tiny.md"
    assert shipped_models(tmp_path / "nothing-here") == []


def test_review_page_reviews_an_upload_with_the_shipped_model(shipped: Path, tiny: TinyModel) -> None:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("app_pages/review.py")
    at.run()
    assert at.selectbox(key="rv_model").value == "reference: reading-tiny"
    assert at.select_slider(key="rv_imgsz").value == "as trained" and at.selectbox(key="rv_tiling").value == "as trained"
    test = json.loads((tiny.synth / "deepscores_test.json").read_text())
    page = tiny.synth / "images" / test["images"][0]["filename"]
    at.file_uploader(key="rv_page").set_value((page.name, page.read_bytes(), "image/png"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    captions = " ".join(c.value for c in at.caption)
    assert "Reference model shipped with the project · card: reading-tiny.md" in captions
    assert "Model run: tiled 640 px → imgsz 64," in captions and "NMS-merged" in captions
    assert int(at.metric[0].value) >= 3  # staves found on the engraved page


def test_failures_page_offers_the_shipped_model_first(shipped: Path, tiny: TinyModel, tmp_path: Path) -> None:
    data = tmp_path / "ws" / "datasets" / "yolo"
    shutil.copytree(tiny.data_yaml.parent, data)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/failures.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="fail_run").value == "reference: reading-tiny"
    assert "card: reading-tiny.md" in " ".join(c.value for c in at.caption)
    assert "Give the data.yaml" in " ".join(i.value for i in at.info)
    at.text_input(key="fail_data_reference: reading-tiny").set_value(str(data / "data.yaml")).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert at.number_input(key="fail_imgsz_reference: reading-tiny").value == 64  # the imgsz it was trained at
