"""The assigner memory forecast follows Ultralytics' own AutoBatch envelope, and the batch search is exact."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from omr_core.audit.forecast import GIB, anchors, assigner_bytes, forecast, max_batch_that_fits, max_num_obj


def _ultralytics_file(rel: str) -> str:
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.origin, "ultralytics is a dependency"
    return (Path(spec.origin).parent / rel).read_text(encoding="utf-8")


def test_envelope_is_still_ultralytics_own() -> None:
    # If Ultralytics changes its AutoBatch envelope, this fails and omr_core.audit.forecast must follow it.
    src = _ultralytics_file("utils/torch_utils.py")
    assert "x.shape[0] * anchors * 6 * (max_num_obj + 2 * len(m.names)) * 4" in src
    assert "anchors = int(sum((x.shape[-1] / s) * (x.shape[-2] / s) for s in m.stride.tolist()))" in src
    train = _ultralytics_file("models/yolo/detect/train.py")
    assert 'max(len(label["cls"]) for label in train_dataset.labels) * 4' in train


@pytest.mark.parametrize(("imgsz", "n"), [(640, 8400), (1024, 21504), (1280, 33600), (320, 2100)])
def test_anchors(imgsz: int, n: int) -> None:
    assert anchors(imgsz) == n == int(sum((imgsz / s) ** 2 for s in (8, 16, 32)))


def test_assigner_bytes_formula() -> None:
    # batch x anchors x 6 x (max_num_obj + 2 nc) x 4, max_num_obj = 4 x max labels
    assert max_num_obj(1528) == 6112
    assert assigner_bytes(32, 1024, 1528, 136) == 32 * 21504 * 6 * (6112 + 272) * 4
    assert assigner_bytes(0, 1024, 1528, 136) == 0
    with pytest.raises(ValueError):
        assigner_bytes(1, 0, 1, 1)


def test_users_oom_case() -> None:
    # 32-image batches of dense pages (~1,500 labels on the densest) at imgsz 1024 do not fit a 32 GB card.
    f = forecast(32, 1024, 1528, 136, vram_bytes=32 * GIB)
    assert f.fits is False and f.gib > 32
    assert f.max_batch is not None and 0 < f.max_batch < 32
    assert forecast(16, 1024, 1528, 136).fits is None  # no VRAM given: no verdict


@pytest.mark.parametrize("vram_gib", [1, 8, 24, 32, 80])
@pytest.mark.parametrize(("imgsz", "labels", "nc"), [(640, 300, 136), (1024, 1528, 136), (1024, 900, 131), (1280, 50, 10)])
def test_max_batch_is_the_largest_that_fits(vram_gib: int, imgsz: int, labels: int, nc: int) -> None:
    vram = vram_gib * GIB
    b = max_batch_that_fits(vram, imgsz, labels, nc)
    assert assigner_bytes(b, imgsz, labels, nc) <= vram
    assert assigner_bytes(b + 1, imgsz, labels, nc) > vram


def test_fraction_and_model_memory_lower_the_batch() -> None:
    full = max_batch_that_fits(24 * GIB, 1024, 800, 136)
    assert max_batch_that_fits(24 * GIB, 1024, 800, 136, fraction=0.6) < full
    assert max_batch_that_fits(24 * GIB, 1024, 800, 136, model_bytes_per_image=GIB) < full
    assert max_batch_that_fits(1024, 1024, 800, 136) == 0


def test_fewer_labels_after_exclusion_fit_more() -> None:
    before = max_batch_that_fits(32 * GIB, 1024, 1528, 136)
    after = max_batch_that_fits(32 * GIB, 1024, 1000, 131)
    assert after > before
    d = forecast(8, 1024, 1000, 131, 32 * GIB).to_dict()
    assert d["max_num_obj"] == 4000 and d["anchors"] == 21504 and d["gib"] == pytest.approx(d["bytes"] / GIB, abs=1e-3)
