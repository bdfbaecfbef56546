"""A model knows how it was trained (dataset sidecar → run.json → checkpoint) and review runs it that way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omr_core.cli import main
from omr_core.raster import tile_origins
from omr_core.review.images import load_page
from omr_core.review.inference import load_model, plan_inference
from omr_core.review.pipeline import review_page
from omr_core.training.scale import CKPT_KEY, TrainingScale
from tests.core.review.recon_fixtures import deepscores_names, make_model
from tests.tiny_reading_model import TinyModel, train_tiny_reading_model

pytestmark = pytest.mark.slow
RECORD = {"tile": 640, "overlap": 0.2, "imgsz": 64, "scale": 1.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_reading_model(tmp_path_factory.mktemp("tiny-reading"))


@pytest.fixture(scope="module")
def page(tiny: TinyModel) -> Path:
    test = json.loads((tiny.synth / "deepscores_test.json").read_text())
    return tiny.synth / "images" / test["images"][0]["filename"]


def test_run_json_and_weights_record_the_scale(tiny: TinyModel) -> None:
    import torch
    from ultralytics import YOLO

    from omr_core.training.runs import read_run

    assert json.loads((tiny.data_yaml.parent / "dataset_scale.json").read_text())["tile"] == 640
    doc = read_run(tiny.run_dir)
    assert doc is not None and doc.scale == RECORD  # the run's own imgsz (64), not the convert preset's 320
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(tiny.run_dir / "weights" / name, map_location="cpu", weights_only=False)
        assert ckpt[CKPT_KEY] == RECORD and ckpt["train_args"]["imgsz"] == 64
    y = YOLO(str(tiny.weights))  # Ultralytics still loads it and keeps the key
    assert y.task == "detect" and y.ckpt[CKPT_KEY] == RECORD


def test_review_runs_the_model_as_trained(tiny: TinyModel, page: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    loaded = load_model(tiny.weights)
    assert loaded.info.scale == TrainingScale(640, 0.2, 64, 1.0)
    gray = load_page(page).gray
    h, w = gray.shape
    n = len(tile_origins(w, 640, 0.2)) * len(tile_origins(h, 640, 0.2))
    res = review_page(gray, source=page.name, model=loaded)
    assert res.inference is not None and (res.inference.tile, res.inference.imgsz, res.inference.tiles) == (640, 64, n)
    assert res.inference.summary == f"tiled 640 px → imgsz 64, {n} tiles, NMS-merged" and n > 4
    assert not res.inference.note and not any("record" in m for m in res.messages)

    out = tmp_path / "r.json"
    assert main(["review", str(page), "--model", str(tiny.weights), "--out", str(out)]) == 0
    assert f"ran the model tiled 640 px → imgsz 64, {n} tiles, NMS-merged" in capsys.readouterr().err
    d = json.loads(out.read_text())
    assert d["inference"]["tiles"] == n and d["model"]["scale"] == RECORD

    by_hand = review_page(gray, source=page.name, model=loaded, imgsz=128, tile=False)
    assert by_hand.inference is not None and by_hand.inference.tile is None and by_hand.inference.imgsz == 128
    assert "settings chosen by hand; the model was trained on 640 px tiles (overlap 20%) at imgsz 64" in by_hand.messages


def test_a_model_without_the_record_says_what_was_assumed(tmp_path: Path, page: Path) -> None:
    loaded = load_model(make_model(tmp_path / "old.pt", deepscores_names()))
    assert loaded.info.scale is None
    gray = load_page(page).gray
    res = review_page(gray, source=page.name, model=loaded, conf=0.9)
    assert res.inference is not None and res.inference.tile is None and res.inference.imgsz == 1024
    assert any("does not record how it was trained" in m and "assumed whole pages at imgsz 1024" in m for m in res.messages)


def test_plan_inference_fills_what_the_user_left_open() -> None:
    from omr_core.review.inference import ModelInfo

    info = ModelInfo("m.pt", "detect", {0: "clefG"}, {0: "clefG"}, (), scale=TrainingScale(640, 0.2, 320))
    p = plan_inference(info, 2211, 3126)
    assert (p.tile, p.imgsz, p.tiles, p.note) == (640, 320, 30, "")
    only_size = plan_inference(info, 2211, 3126, imgsz=640)  # tiling stays as trained
    assert only_size.tile == 640 and only_size.imgsz == 640 and "by hand" in only_size.note
    whole = plan_inference(info, 2211, 3126, tile=False)
    assert whole.tile is None and whole.imgsz == 320 and whole.summary == "whole page 2211×3126 px → imgsz 320"
    plain = ModelInfo("m.pt", "detect", {0: "clefG"}, {0: "clefG"}, (), train_imgsz=640)
    assert "train_args say imgsz 640" in plan_inference(plain, 100, 100).note
