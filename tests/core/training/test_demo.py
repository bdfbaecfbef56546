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
        assert (a["optimizer"], a["lr0"], a["nbs"], a["batch"], a["imgsz"]) == ("SGD", 0.02, 16, 16, 64)
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
