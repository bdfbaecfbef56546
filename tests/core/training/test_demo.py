"""`omr demo` end to end at a tiny size: engrave, convert with the core-symbols preset, start a CPU run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from omr_core.training.demo import run_demo
from omr_core.training.launcher import kill
from omr_core.training.runs import read_run_json
from omr_core.workspace import Workspace

pytestmark = pytest.mark.slow


def test_demo_engraves_converts_and_launches(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, tmp_path / "runs", tmp_path / "datasets")
    lines: list[str] = []
    res = run_demo(ws, pages=3, epochs=1, imgsz=128, log=lines.append)
    try:
        names = yaml.safe_load(res.data_yaml.read_text())["names"]
        kept = set(names.values() if isinstance(names, dict) else names)
        assert {"stem", "ledgerLine", "beam", "tie", "slur"} == set(res.excluded)
        assert not kept & set(res.excluded) and "noteheadBlackOnLine" in kept
        doc = read_run_json(res.run_dir)
        assert doc is not None and doc["state"] in ("starting", "running", "finished")
        assert doc["args"]["model"] == "yolov8n.yaml" and doc["args"]["device"] == "cpu" and doc["args"]["fliplr"] == 0.0
        assert not res.reused and any("engraving 3 pages" in m for m in lines)
    finally:
        try:
            kill(res.run_dir.name, ws.runs)
        except Exception:
            pass
    again = run_demo(ws, pages=3, epochs=1, imgsz=128)
    kill(again.run_dir.name, ws.runs)
    assert again.reused and again.run_dir.name == "demo-2" and again.data_yaml == res.data_yaml
