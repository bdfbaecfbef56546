"""`omr demo` end to end at a tiny size: engrave, convert with the reading recipe (tiled), start a bounded CPU run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from omr_core.recipe import READING_CLASSES
from omr_core.training.demo import MIN_TRAIN_H, RESERVE_MIN, run_demo, train_hours
from omr_core.training.launcher import kill
from omr_core.training.runs import read_run
from omr_core.workspace import Workspace


def test_train_hours_fill_the_budget() -> None:
    assert train_hours(20, 120) == round((20 - 2 - RESERVE_MIN) / 60, 4)
    assert train_hours(1, 600) == MIN_TRAIN_H  # over budget already: the shortest run, not a negative time


@pytest.mark.slow
def test_demo_engraves_converts_and_launches(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, tmp_path / "runs", tmp_path / "datasets")
    lines: list[str] = []
    res = run_demo(ws, pages=3, epochs=1, imgsz=64, minutes=None, log=lines.append)
    try:
        names = yaml.safe_load(res.data_yaml.read_text())["names"]
        kept = set(names.values() if isinstance(names, dict) else names)
        assert kept <= set(READING_CLASSES) and not kept & set(res.excluded) and "noteheadBlackOnLine" in kept
        assert {"stem", "ledgerLine", "beam", "tie", "slur"} <= set(res.excluded)
        scale = json.loads((res.data_yaml.parent / "dataset_scale.json").read_text())
        assert scale["tile"] == 640 and scale["overlap"] == 0.2
        doc = read_run(res.run_dir)
        assert doc is not None and doc.state in ("starting", "running", "finished")
        a = doc.args
        assert a["model"] == "yolov8n.yaml" and a["device"] == "cpu" and a["fliplr"] == 0.0
        assert (a["optimizer"], a["lr0"], a["nbs"], a["batch"], a["imgsz"]) == ("SGD", 0.02, 8, 8, 64)
        assert doc.scale == {"tile": 640, "overlap": 0.2, "imgsz": 64, "scale": 1.0} and "time" not in a
        assert not res.reused and any("engraving 3 pages" in m for m in lines)
        assert any("tiles" in m and "converted" in m for m in lines)
    finally:
        try:
            kill(res.run_dir.name, ws.runs)
        except Exception:
            pass
    lines.clear()
    again = run_demo(ws, pages=3, minutes=20, log=lines.append)
    kill(again.run_dir.name, ws.runs)
    assert again.reused and again.run_dir.name == "demo-2" and again.data_yaml == res.data_yaml
    assert not any("converting" in m for m in lines)  # the tiled dataset is reused too
    doc = read_run(again.run_dir)
    assert doc is not None and again.train_hours is not None and doc.args["time"] == again.train_hours
    assert (20 - RESERVE_MIN - 1) / 60 <= again.train_hours <= (20 - RESERVE_MIN) / 60
    assert doc.args["imgsz"] == 320 and any(f"time={again.train_hours} h" in m for m in lines)


def test_validation_score_means_the_classes_with_enough_instances(tmp_path: Path) -> None:
    import numpy as np

    from omr_core.datasets.yolo import write_data_yaml, write_labels
    from omr_core.training.demo import validation_score
    from omr_core.training.runs import CLASS_AP

    root = tmp_path / "demo-yolo"
    names = ("clefG", "noteheadBlackOnLine", "restHalf", "keyFlat")
    per_image = {"a": [1] * 12 + [0] * 3 + [2], "b": [1] * 10 + [0] * 2 + [3] * 20}  # 22 heads, 5 clefs, 1 rest, 20 keys
    for split in ("train", "val"):
        for stem, classes in per_image.items():
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "images" / split / f"{stem}.png").write_bytes(b"")
            labels = np.array([[c, 0.5, 0.5, 0.1, 0.1] for c in classes], dtype=np.float64)
            write_labels(root / "labels" / split / f"{stem}.txt", labels)
    data = write_data_yaml(root / "data.yaml", root, names, {"train": "images/train", "val": "images/val"})
    run = tmp_path / "run"
    run.mkdir()
    ap50 = {"clefG": 0.9, "noteheadBlackOnLine": 0.5, "restHalf": 0.0, "keyFlat": 0.8}
    (run / CLASS_AP).write_text(
        '{"epoch": 1, "ap50": {"noteheadBlackOnLine": 0.1}}\n'  # an earlier epoch
        + '{"epoch": 3, "ap50_95": {}, "ap50": ' + json.dumps(ap50) + "}\n"
        + '{"epoch": 4, "ap50": {"clefG": 0.'  # a line still being written
    )
    s = validation_score(run, data)
    assert s.classes == ("noteheadBlackOnLine", "keyFlat") and s.map50 == pytest.approx((0.5 + 0.8) / 2)
    assert s.all_map50 == pytest.approx((0.9 + 0.5 + 0.0 + 0.8) / 4) and s.tiles == 2
    assert s.per_class[0] == ("noteheadBlackOnLine", 22, 0.5) and s.reached  # 0.65 >= the target 0.60
    assert "mAP50 0.650" in s.summary() and "2 classes with ≥ 20 instances (target 0.60: reached)" in s.summary()
