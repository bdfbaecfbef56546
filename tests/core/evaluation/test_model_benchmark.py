"""`omr bench model` / bench/bench_model.py on a tiny model trained in the test: every stage runs for real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omr_core.cli import main
from omr_core.evaluation.model_bench import DEGRADES, bench_model, notehead_counts, per_class_markdown
from omr_core.evaluation.reconstruct_bench import Counts
from tests.tiny_reading_model import TinyModel, train_tiny_reading_model

REPO = Path(__file__).resolve().parents[3]


def test_notehead_matching_is_one_to_one_at_iou_half() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    pred = np.array([[1, 1, 11, 11], [0, 0, 10, 10], [21, 0, 31, 10], [50, 50, 60, 60]], float)
    # Two predictions on the first head: one is a false positive; [21..31] overlaps the second at IoU 9/11.
    assert notehead_counts(pred, gt) == Counts(tp=2, pred=4, gt=2)
    assert notehead_counts(np.array([[0, 0, 10, 10]], float), np.array([[5, 0, 15, 10]], float)) == Counts(0, 1, 1)
    assert notehead_counts(np.zeros((0, 4)), gt) == Counts(0, 0, 2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_reading_model(tmp_path_factory.mktemp("tiny-bench"))


@pytest.mark.slow
def test_bench_model_runs_every_stage(tiny: TinyModel, tmp_path: Path) -> None:
    ticks: list[tuple[int, int]] = []
    rep = bench_model(tiny.weights, tmp_path / "work", pages=2, page_scale=0.8, progress=lambda d, t: ticks.append((d, t)))
    assert ticks == [(i, 8) for i in range(1, 9)]  # per degrade: engrave + convert, validate, each page reviewed
    assert {p.degrade for p in rep.pages} == set(DEGRADES) and len(rep.pages) == 4
    assert rep.inference.startswith("tiled 640 px → imgsz 64,")
    for d in DEGRADES:
        t = rep.per_class[d]
        assert list(t["class"]) == _names(tiny)  # the model's classes, in its order
        assert t["labelled"].any() and rep.summary[d]["images"] > 2  # tiles of 2 pages through the validator
    for p in rep.pages:
        assert not p.error and p.noteheads.gt > 20 and p.stems.gt > 0 and p.seconds > 0
    rows = {r["figure"]: r["value"] for r in rep.rows()}
    assert any(k.startswith("clean: notehead precision / recall") for k in rows)
    assert any(k.startswith("scan: stems F1") for k in rows)
    assert "class | AP50 none" in per_class_markdown(rep)


@pytest.mark.slow
def test_omr_bench_model_verb_and_bench_script(tiny: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "model", "--model", str(tiny.weights), "--pages", "1", "--work", str(tmp_path / "w"),
                 "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert len(d["pages"]) == 2 and d["inference"].startswith("tiled 640 px") and set(d["per_class"]) == set(DEGRADES)
    assert "whole review, s/page on one core" in capsys.readouterr().out
    assert main(["bench", "model", "--model", str(tiny.weights), "--seed", "101"]) == 2  # the reference's own pages
    from bench import bench_model

    assert bench_model.main([])[0]["value"].startswith("skipped")  # no shipped model in the test environment
    rows = bench_model.main(["--model", str(tiny.weights), "--pages", "1", "--work", str(tmp_path / "w")])
    assert all(r["figure"].startswith("best.pt: ") for r in rows) and len(rows) == 11


def _names(tiny: TinyModel) -> list[str]:
    import yaml

    names = yaml.safe_load(tiny.data_yaml.read_text())["names"]
    return list(names.values())
