"""Objectives chosen by the user: the mean AP of chosen classes, read from each epoch's validation of a real tiny
CPU trial (the worker's class_ap.jsonl) and told to the pruner epoch by epoch; the critical set and notes read
right are refused where the data cannot give them."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import optuna
import orjson
import pytest

from omr_core.training import sweep, sweep_objective
from tests.core.training.test_sweep import _wait
from tests.core.training.tiny_dataset import make_tiny_dataset


@pytest.mark.slow
def test_a_real_trial_is_scored_by_the_chosen_classes_epoch_by_epoch(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    data = make_tiny_dataset(tmp_path / "tiny", n_train=16, n_val=6, size=96)
    out = subprocess.run(
        [sys.executable, "-m", "omr_core.cli", "sweep", "new", "c", "--runs-dir", str(runs), "--data", str(data),
         "--preset", "ultralytics", "--sampler", "grid", "--param", "lr0=0.02", "--classes", "box,bar",
         "--trials", "1", "--epochs", "3", "--fixed", "imgsz=96", "device=cpu", "workers=0", "batch=8", "nbs=8",
         "mosaic=0", "warmup_epochs=0.5"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sweep.load(runs, "c").objective == "classes" and sweep.load(runs, "c").classes == ("box", "bar")
    _wait(lambda: len(sweep.trials(runs, "c")) == 1, 600, "the trial did not end")
    [t] = sweep.trials(runs, "c")
    assert t["state"] == "complete", t
    # The worker wrote each epoch's per-class AP from Ultralytics' validator ...
    rows = [orjson.loads(x) for x in (runs / "c-t0" / "class_ap.jsonl").read_bytes().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(set(r["ap50_95"]) <= {"box", "ellipse", "bar"} and r["ap50_95"] for r in rows)
    per_epoch = [sweep_objective.mean_class_ap(r["ap50_95"], ("box", "bar")) for r in rows]
    # ... the pruner was told the chosen classes' mean after every epoch, and the trial's value is the best epoch.
    study = optuna.load_study(study_name="c", storage=f"sqlite:///{runs / 'sweeps' / 'c' / 'study.db'}")
    [ft] = study.trials
    told = [ft.intermediate_values[k] for k in sorted(ft.intermediate_values)]
    assert told == pytest.approx([v for v in per_epoch if v is not None])
    assert t["value"] == pytest.approx(max(v for v in per_epoch if v is not None)) == pytest.approx(ft.value)
    # Not mAP50-95 in disguise: the chosen classes' mean differs from the all-class column where ellipse counts.
    res = (runs / "c-t0" / "results.csv").read_text().splitlines()
    col = [h.strip() for h in res[0].split(",")].index("metrics/mAP50-95(B)")
    map_all = [float(x.split(",")[col]) for x in res[1:]]
    all_three = [sweep_objective.mean_class_ap(r["ap50_95"], ("box", "ellipse", "bar")) for r in rows]
    assert all_three == pytest.approx(map_all, abs=2e-3)  # the per-class numbers are Ultralytics' own
    status = subprocess.run([sys.executable, "-m", "omr_core.cli", "sweep", "status", "c", "--runs-dir", str(runs)],
                            capture_output=True, text=True, timeout=60).stdout
    assert "objective mean AP50-95 of box, bar" in status


def test_objectives_the_data_cannot_give_are_refused_with_the_reason(tmp_path: Path) -> None:
    data = str(make_tiny_dataset(tmp_path / "tiny", n_train=2, n_val=1))

    def spec(name: str, objective: str, classes: tuple[str, ...] = ()) -> sweep.SweepSpec:
        return sweep.SweepSpec(name, "yolov8n.yaml", data, (sweep.parse_param("lr0=0.01,0.02"),),
                               objective=objective, classes=classes)

    with pytest.raises(sweep.SweepError, match=r"boxx not among the classes .*closest box"):
        sweep.create(spec("a", "classes", ("boxx",)), tmp_path / "runs")
    with pytest.raises(sweep.SweepError, match="needs the classes"):
        sweep.create(spec("b", "classes"), tmp_path / "runs")
    with pytest.raises(sweep.SweepError, match="has none of the critical classes"):
        sweep.create(spec("c", "critical"), tmp_path / "runs")
    with pytest.raises(sweep.SweepError, match="carries note truth"):
        sweep.create(spec("d", "notes"), tmp_path / "runs")
    assert not (tmp_path / "runs" / "sweeps").exists() or not any((tmp_path / "runs" / "sweeps").iterdir())


def test_the_mean_skips_classes_without_validation_instances() -> None:
    row = {"box": 0.4, "bar": 0.2}
    assert sweep_objective.mean_class_ap(row, ("box", "bar", "ellipse")) == pytest.approx(0.3)
    assert sweep_objective.mean_class_ap(row, ("ellipse",)) is None
    assert math.isclose(sweep_objective.mean_class_ap({"box": 0.5}, ("box",)) or 0, 0.5)


@pytest.mark.slow
def test_notes_read_right_is_a_trials_final_value_where_the_pages_have_note_truth(tmp_path: Path) -> None:
    """The shipped reference model stands in for a trial's best.pt: on engraved pages converted to YOLO, a notes
    sweep accepts the data, and a completed trial's value is the pitch read right on the validation pages only."""
    import shutil

    from omr_core.evaluation.model_bench import _validator_set, engrave_heldout
    from omr_core.evaluation.notes import data_truth_pages
    from omr_core.review.inference import load_model
    from tests.core.evaluation.test_notes import REFERENCE, SEED

    info = load_model(REFERENCE, warm_up=False).info
    test_json = engrave_heldout(tmp_path, 3, SEED, "none")
    data = _validator_set(test_json, tmp_path / "yolo", [info.canonical[i] for i in sorted(info.canonical)], 640, 0.2)
    val_pages = sweep_objective.notes_pages(str(data))
    all_pages = data_truth_pages(str(data), [str(p) for p in (tmp_path / "yolo" / "images").rglob("*.png")])
    assert len(val_pages) == 1 and len(all_pages) == 3  # one page in val, two in train: only val is read
    spec = sweep.SweepSpec("n", "yolov8n.yaml", str(data),
                           (sweep.parse_param("lr0=0.01,0.02"),), objective="notes")
    assert sweep.create(spec, tmp_path / "runs").is_dir()  # the data has note truth: accepted
    run_dir = tmp_path / "runs" / "n-t0"
    (run_dir / "weights").mkdir(parents=True)
    shutil.copyfile(REFERENCE, run_dir / "weights" / "best.pt")
    value, note = sweep._final_value(sweep.load(tmp_path / "runs", "n"), run_dir, 0.5)  # noqa: SLF001
    assert value is not None and value >= 0.9 and note == "best epoch mAP50-95 0.5000"
    assert value == pytest.approx(sweep_objective.notes_value(run_dir / "weights" / "best.pt", str(data)))
    shutil.rmtree(run_dir / "weights")
    value, note = sweep._final_value(sweep.load(tmp_path / "runs", "n"), run_dir, 0.5)  # noqa: SLF001
    assert value is None and "could not be read" in note  # no best.pt: failed, never a score
