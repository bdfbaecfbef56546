"""Per-class status on real evaluations: a real model, labels sabotaged on disk so each failure is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omr_core.evaluation.evaluate import Evaluation, evaluate
from omr_core.evaluation.match import box_iou
from omr_core.evaluation.report import per_class_export
from tests.core.evaluation.trained_fixture import SIZE, TrainedRun, copy_dataset

pytestmark = pytest.mark.slow

CONF = 0.1  # the threshold of the shared `ev` fixture (conftest.py)
NOTE, CLEF_G, REST, CLEF_F = 0, 1, 2, 3


def _status(per: pd.DataFrame) -> dict[str, str]:
    return dict(zip(per["class"], per["status"], strict=True))


def _empty_spots(taken: np.ndarray, size: int = 16) -> list[np.ndarray]:
    """Boxes of ``size`` px touching no box in ``taken`` (ground truth and every stored prediction)."""
    spots: list[np.ndarray] = []
    for y in range(2, SIZE - size - 2, size + 2):
        for x in range(2, SIZE - size - 2, size + 2):
            b = np.array([x, y, x + size, y + size], float)
            if box_iou(b[None], np.vstack([taken, *spots]) if spots else taken).max(initial=0) == 0:
                spots.append(b)
    return spots


def _label(cls: int, b: np.ndarray) -> str:
    x0, y0, x1, y1 = (float(v) for v in b)
    return f"{cls} {(x0 + x1) / 2 / SIZE:.6f} {(y0 + y1) / 2 / SIZE:.6f} {(x1 - x0) / SIZE:.6f} {(y1 - y0) / SIZE:.6f}"


def _sabotage(run: TrainedRun, ev: Evaluation, dst: Path) -> Path:
    """Every restQuarter relabelled clefF, clefG boxes 1.25x too large, and restQuarters planted where nothing is."""
    data = copy_dataset(run.dataset, dst)
    images = ev.images()
    preds = ev.predictions()
    for _, im in images.iterrows():
        label_file = dst / "labels" / "val" / (Path(str(im["image"])).stem + ".txt")
        rows = np.array(label_file.read_text().split(), float).reshape(-1, 5)
        out = []
        boxes = []
        for c, cx, cy, w, h in rows.tolist():
            if int(c) == CLEF_G:
                w, h = min(w * 1.25, 1.0), min(h * 1.25, 1.0)
            boxes.append([(cx - w / 2) * SIZE, (cy - h / 2) * SIZE, (cx + w / 2) * SIZE, (cy + h / 2) * SIZE])
            out.append(_label(CLEF_F if int(c) == REST else int(c), np.array(boxes[-1])))
        mine = preds[preds["image_id"] == im["image_id"]][["x0", "y0", "x1", "y1"]].to_numpy(float)
        for spot in _empty_spots(np.vstack([np.array(boxes, float).reshape(-1, 4), mine]))[:2]:
            out.append(_label(REST, spot))
        label_file.write_text("\n".join(out) + "\n")
    return data


def test_the_trained_model(ev: Evaluation) -> None:
    per = per_class_export(ev, CONF).set_index("class")
    status = per["status"].to_dict()
    assert status["clefF"] == "no labels"
    assert status["noteheadBlackOnLine"] == status["clefG"] == "ok", status
    # The tiny model's weak class: few objects, and it says "restQuarter" on many clefs and noteheads.
    rest = per.loc["restQuarter"]
    assert rest["fp"] > rest["instances"] and rest["precision"] < 0.5 and rest["fp_class"] * 2 >= rest["fp"]
    assert status["restQuarter"] == (
        f"many false detections: {int(rest['fp'])} for {int(rest['instances'])}, {int(rest['fp_class'])} on other classes"
    )


def test_each_failure_is_named(run: TrainedRun, ev: Evaluation, tmp_path: Path) -> None:
    bad = evaluate(run.weights, _sabotage(run, ev, tmp_path / "sabotaged"), "val", imgsz=SIZE, batch=4, conf=CONF, out=tmp_path / "ev")
    per = per_class_export(bad, CONF).set_index("class")
    status = per["status"].to_dict()
    # Planted where nothing is: AP 0, every instance missed, no box of another class there.
    assert per.loc["restQuarter", "ap50_95"] == pytest.approx(0.0, abs=1e-3)
    assert per.loc["restQuarter", "tp"] == 0
    n = int(per.loc["restQuarter", "instances"])
    assert status["restQuarter"] == f"never detected: 0 of {n} found"
    # The model (rightly) says restQuarter where the labels now say clefF.
    assert status["clefF"].startswith("confused with restQuarter: "), status
    # The boxes are found at IoU 0.5 but the labels are too large for the strict IoUs.
    assert status["clefG"].startswith("localisation: AP50 "), status


def test_a_high_threshold_is_mostly_missed_with_the_reason(ev: Evaluation) -> None:
    cases = ev.cases(CONF)
    tp = cases[(cases["kind"].astype(str) == "tp") & (cases["cls"] == NOTE)]
    conf = float(np.quantile(tp["conf"], 0.8))  # keeps about a fifth of the correct noteheads
    per = per_class_export(ev, conf).set_index("class")
    row = per.loc["noteheadBlackOnLine"]
    assert 0 < row["tp"] < row["instances"] / 2
    assert row["fn_below_threshold"] > 0
    assert per.loc["noteheadBlackOnLine", "status"] == (
        f"mostly missed: {int(row['tp'])} of {int(row['instances'])} found, {int(row['fn_below_threshold'])} below threshold"
    )
    top = float(cases["conf"].max()) + 1e-3
    none = per_class_export(ev, min(top, 1.0)).set_index("class")
    assert none.loc["noteheadBlackOnLine", "status"].startswith("never detected: 0 of ")
