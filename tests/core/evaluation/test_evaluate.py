"""`evaluate` on a real trained model: Ultralytics' numbers, planted label errors, cache, exports and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omr_core.cli import main
from omr_core.evaluation import evaluate as evaluate_mod
from omr_core.evaluation.compare import compare_evaluations, worse_classes
from omr_core.evaluation.confidence import class_curves, confidence_table
from omr_core.evaluation.crops import GT_COLOR, PRED_COLOR, case_boxes, crop_case
from omr_core.evaluation.evaluate import (
    Evaluation,
    EvaluationError,
    evaluate,
    find_cached,
    list_evaluations,
    load_evaluation,
)
from omr_core.evaluation.match import box_iou, claim_all
from omr_core.evaluation.report import export_evaluation, per_class_export

# The shared fixture module is imported by its file name from every test module (one training per session).
from tests.core.evaluation.trained_fixture import NAMES, SIZE, TrainedRun, copy_dataset

pytestmark = pytest.mark.slow

# The tiny model is weak, so the tests use a threshold its correct detections pass (fixtures: conftest.py).
CONF = 0.1


def test_per_class_equals_ultralytics(run: TrainedRun, ev: Evaluation, tmp_path: Path) -> None:
    from ultralytics import YOLO

    direct = YOLO(str(run.weights)).val(
        data=str(run.data), split="val", imgsz=SIZE, batch=4, plots=False, verbose=False, project=str(tmp_path), name="v"
    )
    per = ev.per_class()
    assert ev.folder.parent == run.run / "evaluation"  # cached in the run folder
    assert list(per["class"]) == list(NAMES)
    idx = list(direct.box.ap_class_index)
    assert idx == [0, 1, 2]
    for i, c in enumerate(idx):
        row = per.iloc[c]
        assert round(row["precision"], 3) == round(float(direct.box.p[i]), 3)
        assert round(row["recall"], 3) == round(float(direct.box.r[i]), 3)
        assert round(row["ap50"], 3) == round(float(direct.box.ap50[i]), 3)
        assert round(row["ap50_95"], 3) == round(float(direct.box.ap[i]), 3)
        assert row["instances"] == direct.nt_per_class[c] and row["images"] == direct.nt_per_image[c]
    assert ev.summary["map50_95"] == pytest.approx(direct.box.map, abs=5e-4)
    assert per["ap50"].iloc[:3].max() > 0.2, "the fixture model learned nothing: the comparison would be trivial"
    assert ev.n_instances == int(direct.nt_per_class.sum())


def test_class_without_labels_is_marked(run: TrainedRun, ev: Evaluation) -> None:
    per = ev.per_class().set_index("class")
    row = per.loc["clefF"]
    assert not row["labelled"] and row["instances"] == 0
    assert np.isnan(row[["precision", "recall", "f1", "ap50", "ap50_95"]].astype(float)).all()
    exported = per_class_export(ev, CONF)
    assert exported["class"].iloc[-1] == "clefF" and exported["status"].iloc[-1] == "no labels"
    assert "no labels" not in set(exported["status"].iloc[:3])  # what is wrong with them: test_evaluate_status.py


def test_stored_predictions_match_ultralytics_tp(ev: Evaluation) -> None:
    preds = ev.predictions()
    pred_gt, _ = claim_all(ev.ground_truth(), preds, ev.n_images)
    # Our greedy matching (original pixels) finds the same true positives as the validator (letterboxed pixels).
    assert ((pred_gt >= 0) == preds["tp50"].to_numpy()).mean() > 0.995
    assert preds["tp50"].sum() > 10


def test_planted_label_errors(run: TrainedRun, ev: Evaluation, tmp_path: Path) -> None:
    images = ev.images()
    cases = ev.cases(CONF)
    tps = cases[cases["kind"].astype(str) == "tp"].sort_values("conf", ascending=False)
    assert len(tps), "the fixture model finds nothing above the test threshold"
    victim = tps.iloc[0]
    image = images.loc[images["image_id"] == victim["image_id"], "image"].iloc[0]
    label_file = run.dataset / "labels" / "val" / (Path(image).stem + ".txt")
    lines = label_file.read_text().split()
    rows = np.array(lines, float).reshape(-1, 5)
    g = np.array([victim["gx0"], victim["gy0"], victim["gx1"], victim["gy1"]])
    boxes = np.column_stack([rows[:, 1] - rows[:, 3] / 2, rows[:, 2] - rows[:, 4] / 2, rows[:, 1] + rows[:, 3] / 2, rows[:, 2] + rows[:, 4] / 2]) * SIZE
    removed = int(box_iou(g[None], boxes)[0].argmax())
    assert int(rows[removed, 0]) == int(victim["true_cls"])

    # A fake restQuarter where no prediction of the tiny model stands above the threshold.
    preds = ev.predictions()
    kept = preds[(preds["image_id"] == victim["image_id"]) & (preds["conf"] >= CONF)]
    fake = None
    for x in range(10, SIZE - 30, 4):
        for y in range(10, SIZE - 30, 4):
            b = np.array([x, y, x + 16, y + 22], float)
            if box_iou(b[None], kept[["x0", "y0", "x1", "y1"]].to_numpy(float)).max(initial=0) < 0.05:
                fake = b
                break
        if fake is not None:
            break
    assert fake is not None
    fake_cls = 2
    planted = copy_dataset(run.dataset, tmp_path / "planted")
    new_rows = [r for k, r in enumerate(rows.tolist()) if k != removed]
    cx, cy, w, h = (fake[0] + fake[2]) / 2 / SIZE, (fake[1] + fake[3]) / 2 / SIZE, (fake[2] - fake[0]) / SIZE, (fake[3] - fake[1]) / SIZE
    new_rows.append([fake_cls, cx, cy, w, h])
    (tmp_path / "planted" / "labels" / "val" / label_file.name).write_text(
        "\n".join(f"{int(r[0])} {r[1]:.6f} {r[2]:.6f} {r[3]:.6f} {r[4]:.6f}" for r in new_rows) + "\n"
    )

    ev2 = evaluate(run.weights, planted, "val", imgsz=SIZE, batch=4, conf=CONF, out=tmp_path / "ev-planted")
    c2 = ev2.cases(CONF)
    img_id = int(ev2.images().set_index("image").loc[image, "image_id"])
    here = c2[c2["image_id"] == img_id]
    kinds = here["kind"].astype(str)
    # The removed real object: the model still finds it, and with no label it is a false detection of its class.
    pbox = here[["px0", "py0", "px1", "py1"]].to_numpy(float)
    at_removed = here[(box_iou(boxes[removed][None], np.nan_to_num(pbox, nan=-1e6))[0] > 0.5) & kinds.str.startswith("fp").to_numpy()]
    assert len(at_removed) >= 1
    assert set(at_removed["kind"].astype(str)) <= {"fp_bg", "fp_class", "fp_loc"}
    assert int(at_removed["pred_cls"].iloc[0]) == int(victim["pred_cls"])
    # The fake object: nothing is there, so it is a miss (FN) of the fake class at the fake place.
    gbox = here[["gx0", "gy0", "gx1", "gy1"]].to_numpy(float)
    at_fake = here[(box_iou(fake[None], np.nan_to_num(gbox, nan=-1e6))[0] > 0.95) & (kinds == "fn").to_numpy()]
    assert len(at_fake) == 1 and int(at_fake["true_cls"].iloc[0]) == fake_cls
    # Instances moved by one in the per-class table, and nothing else changed class-wise.
    d = compare_evaluations(ev, ev2).set_index("class")["d_instances"]
    expected = {n: 0 for n in NAMES[:3]}
    expected[NAMES[int(rows[removed, 0])]] -= 1
    expected[NAMES[fake_cls]] += 1
    assert {n: int(d[n]) for n in NAMES[:3]} == expected


def test_cache_hit_does_not_validate(run: TrainedRun, ev: Evaluation, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("the validator ran on a cache hit")

    monkeypatch.setattr(evaluate_mod, "run_validation", boom)
    again = evaluate(run.weights, run.data, "val", imgsz=SIZE, batch=4, conf=CONF)  # `boom` proves it did not validate
    assert again.cached and again.key == ev.key
    assert find_cached(run.weights, run.data, "val", imgsz=SIZE, batch=4) is not None
    assert find_cached(run.weights, run.data, "val", imgsz=SIZE, batch=8) is None  # other params: not a hit
    with pytest.raises(AssertionError, match="validator ran"):
        evaluate(run.weights, run.data, "val", imgsz=SIZE, batch=4, force=True)
    assert any(e.key == ev.key for e in list_evaluations(run.run))
    assert load_evaluation(ev.folder).names == NAMES


def test_progress_is_reported_per_batch(run: TrainedRun, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    evaluate(run.weights, run.data, "val", imgsz=SIZE, batch=2, out=tmp_path / "e", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 4) for i in range(1, 5)]  # 8 images in batches of 2


def test_confidence_table(ev: Evaluation) -> None:
    table = confidence_table(ev, CONF).set_index("class")
    low = ev.cases(ev.val_conf)
    preds = ev.predictions()
    for ci, name in enumerate(NAMES[:3]):
        found = int(((low["kind"].astype(str) == "tp") & (low["cls"] == ci)).sum())
        kept = int((preds["tp50"] & (preds["cls"] == ci) & (preds["conf"] >= CONF)).sum())
        assert table.loc[name, "tp"] == kept  # Ultralytics' own TP flags above the threshold
        assert table.loc[name, "tp"] + table.loc[name, "dropped"] == found
        curve = class_curves(ev, ci)
        assert table.loc[name, "best_threshold"] == pytest.approx(curve["conf"].iloc[int(curve["f1"].argmax())])
    assert np.isnan(table.loc["clefF", "best_threshold"]) and table.loc["clefF", "dropped"] == 0


def test_compare_names_worse_classes(ev: Evaluation) -> None:
    t = compare_evaluations(ev, ev)
    assert (t.loc[t["class"] != "clefF", "status"] == "same").all() and t.set_index("class").loc["clefF", "status"] == "no labels"
    assert worse_classes(t).empty


def test_exports_and_report(ev: Evaluation, tmp_path: Path) -> None:
    files = export_evaluation(ev, tmp_path / "x", CONF)
    per = pd.read_csv(files["per_class_csv"])
    assert list(per["class"])[-1] == "clefF" and per["status"].iloc[-1] == "no labels"
    fails = json.loads(files["failures_json"].read_text())
    assert fails and {"image", "kind", "class", "true_class", "pred_class", "conf", "gx0", "px0"} <= set(fails[0])
    assert len(pd.read_csv(files["failures_csv"])) == len(fails)
    cm = pd.read_csv(files["confusion_csv"], index_col=0)
    assert list(cm.columns) == [*NAMES, "background"]
    html = files["report_html"].read_text()
    assert "no labels" in html and "data:image/png;base64," in html
    import re

    assert not re.search(r"<script[^>]*\bsrc=", html)  # plotly.js is inline: the report opens offline
    assert html.count("<script") >= 3 and len(html) > 1_000_000


def test_crop_draws_both_boxes(ev: Evaluation) -> None:
    cases = ev.cases(CONF)
    row = cases[cases["kind"].astype(str) == "fp_class"]
    row = (row if len(row) else cases[cases["kind"].astype(str) == "tp"]).iloc[0]
    g, p = case_boxes(row)
    img = crop_case(ev.images()["path"].iloc[int(row["image_id"])], g, p, size=160)
    assert img.shape[2] == 3 and max(img.shape[:2]) == 160
    flat = img.reshape(-1, 3)
    assert (flat == GT_COLOR).all(1).any() and (flat == PRED_COLOR).all(1).any()


def test_bad_inputs_are_messages(run: TrainedRun, tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate(tmp_path / "nope.pt", run.data)
    with pytest.raises(EvaluationError, match="no 'test' split"):
        evaluate(run.weights, run.data, "test")


def test_cli(run: TrainedRun, ev: Evaluation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["evaluate", "--model", str(run.weights), "--data", str(run.data), "--imgsz", str(SIZE), "--batch", "4", "--conf", str(CONF), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "clefG" in text and "no labels" in text and "report.html" in text
    assert (out / "report.html").is_file() and (out / "per_class.csv").is_file()
    per = pd.read_csv(out / "per_class.csv").set_index("class")
    assert per.loc["clefG", "ap50_95"] == pytest.approx(ev.per_class().set_index("class").loc["clefG", "ap50_95"])
    assert main(["evaluate", "--model", str(run.weights), "--data", str(run.data), "--split", "test"]) == 2
    assert "no 'test' split" in capsys.readouterr().err
