"""Loading detection checkpoints for review (and refusing the wrong ones), whole-page and tiled prediction."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from omr_core.classes import GROUPS, class_table
from omr_core.raster import tile_origins
from omr_core.review.inference import (
    ModelError,
    _not_cut,
    describe_names,
    find_checkpoints,
    load_model,
    predict,
)
from tests.core.review.recon_fixtures import deepscores_names, draw_page, make_model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    return {
        "ds": make_model(d / "ds.pt", deepscores_names()),
        "coco": make_model(d / "coco.pt"),  # yolov8n.yaml's own 80 COCO-style names
        "cls": make_model(d / "cls.pt", task="classify"),
    }


def test_tile_origins_cover_with_overlap() -> None:
    assert tile_origins(500, 1024, 0.25) == [0]
    for length, tile in [(2772, 1024), (1960, 640), (3000, 1000)]:
        o = tile_origins(length, tile, 0.25)
        assert o[0] == 0 and o[-1] == length - tile
        assert all(b - a <= tile * 0.75 + 1 for a, b in zip(o, o[1:]))


def test_boxes_cut_by_inner_tile_edges_are_dropped() -> None:
    b = np.array([[0, 10, 20, 30], [100, 100, 120, 130], [600, 5, 640, 20], [0, 0, 639, 639]], np.float32)
    keep = _not_cut(b, 640, 640, left=True, top=False, right=True, bottom=True, overlap_px=160)
    # Touching the left edge (small) and the right edge (small) go; the huge box is kept (no tile holds it whole).
    assert keep.tolist() == [False, True, False, True]


def test_describe_names() -> None:
    canonical, unknown, warning = describe_names({0: "legerLine", 1: "stem", 2: "person"})
    assert canonical == {0: "ledgerLine", 1: "stem", 2: "person"}
    assert unknown == ("person",) and "1 of the model's 3" in warning
    _, unknown, warning = describe_names({0: "cat", 1: "dog"})
    assert len(unknown) == 2 and "none of the model's 2" in warning


def test_find_checkpoints(tmp_path: Path) -> None:
    for rel in ["a/weights/best.pt", "a/weights/last.pt", "b/weights/epoch3.pt", "detect/c/weights/best.pt"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"PK")
    found = {str(p.relative_to(tmp_path)) for p in find_checkpoints(tmp_path)}
    assert found == {"a/weights/best.pt", "a/weights/last.pt", "detect/c/weights/best.pt"}
    assert find_checkpoints(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty"), (b"this is text", "not a PyTorch checkpoint"), (None, "not a loadable Ultralytics")],
)
def test_files_that_are_not_models(tmp_path: Path, content: bytes | None, match: str) -> None:
    p = tmp_path / "model.pt"
    if content is None:  # a zip archive that is not a torch checkpoint
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("hello.txt", "hi")
    else:
        p.write_bytes(content)
    with pytest.raises(ModelError, match=match):
        load_model(p)
    with pytest.raises(ModelError, match="no such model"):
        load_model(tmp_path / "missing.pt")


@pytest.mark.slow
def test_classifier_is_refused(models: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match="'classify' model, not a detector"):
        load_model(models["cls"])


@pytest.mark.slow
def test_names_are_checked(models: dict[str, Path]) -> None:
    coco = load_model(models["coco"], warm_up=False)
    assert "none of the model's 80 class names" in coco.info.warning
    ds = load_model(models["ds"], warm_up=False)
    assert ds.info.warning == "" and ds.info.canonical[41] == "stem" and len(ds.info.names) == 136


@pytest.mark.slow
def test_predict_whole_page_and_tiled(models: dict[str, Path]) -> None:
    loaded = load_model(models["ds"])
    gray = draw_page(width=900, height=700, tops=(150, 400), x1=850).gray
    names = {c.name for c in class_table().deepscores}
    # An untrained head scores everything low: a tiny threshold gives plenty of boxes to check.
    whole = predict(loaded, gray, conf=1e-6, imgsz=320, max_det=300)
    tiled = predict(loaded, gray, conf=1e-6, imgsz=320, tile=True, max_det=300)
    assert whole and tiled
    for dets in (whole, tiled):
        assert all(d.name in names and d.group in GROUPS for d in dets)
        b = np.array([d.bbox for d in dets])
        assert (b[:, 0] >= -1).all() and (b[:, 2] <= 901).all() and (b[:, 3] <= 701).all()
        confs = [d.conf for d in dets]
        assert confs == sorted(confs, reverse=True)
    assert predict(loaded, gray, conf=0.99, imgsz=320) == []
