"""Ultralytics' own tuner output read as a sweep: a public run's tune_results.csv (Ultralytics 8.x) and our real
8.4 run's tune_results.ndjson (tests/data/ultralytics_tune/README.md says how each was made), found in a runs
folder and in a linked folder, listed by `omr sweep status`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from omr_core.training import sweep, sweep_view, tune_results
from omr_core.training.runs import link_folder

DATA = Path(__file__).resolve().parents[2] / "data" / "ultralytics_tune"
CSV_RUN = DATA / "v8_detect_wing"
NDJSON_RUN = DATA / "v84_tiny"


def test_the_csv_a_public_tuner_wrote_reads_as_its_iterations() -> None:
    tr = tune_results.read_tune(CSV_RUN)
    assert tr.source.name == "tune_results.csv" and len(tr.iterations) == 10
    assert tr.params[:3] == ("lr0", "lrf", "momentum") and len(tr.params) == 22
    best = tr.best()
    # best_hyperparameters.yaml says "Best fitness=0.9066 observed at iteration 3"; its values are that row's.
    assert best is not None and best.number == 3 and best.fitness == pytest.approx(0.9066)
    assert tr.best_saved == pytest.approx(best.params) and tr.best_saved["lr0"] == pytest.approx(0.01043)
    assert tr.base is not None and tr.base["lr0"] == 0.01 and tr.base["momentum"] == 0.937  # iteration 1


def test_the_ndjson_our_tuner_run_wrote_reads_as_its_iterations() -> None:
    tr = tune_results.read_tune(NDJSON_RUN)
    lines = (NDJSON_RUN / "tune_results.ndjson").read_text().splitlines()
    assert tr.source.name == "tune_results.ndjson" and len(tr.iterations) == len(lines) >= 2
    assert set(tr.params) == {"lr0", "momentum", "box", "cls"}
    best = tr.best()
    assert best is not None
    saved = yaml.safe_load((NDJSON_RUN / "best_hyperparameters.yaml").read_text())
    assert saved == pytest.approx(best.params)  # what Ultralytics saved as best is the best iteration we pick
    assert all(it.metrics and "metrics/mAP50-95(B)" in it.metrics for it in tr.iterations)


def test_a_tuner_folder_in_the_runs_folder_and_one_linked_are_sweeps(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(CSV_RUN, runs / "detect" / "tune")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(NDJSON_RUN, elsewhere / "tune")
    (elsewhere / "train").mkdir()
    (elsewhere / "train" / "results.csv").write_text("epoch,metrics/mAP50-95(B)\n1,0.1\n")  # makes it linkable
    link_folder(runs, elsewhere)
    keys = sweep_view.list_views(runs)
    assert keys == ["tune:detect/tune", "tune:@elsewhere/tune"]
    v = sweep_view.load_view(runs, "tune:detect/tune")
    assert v.kind == "ultralytics" and not v.launchable and len(v.trials) == 10
    assert v.best is not None and v.best["number"] == 3
    diff = dict((k, (base, new)) for k, base, new in v.diff())
    assert diff["lr0"] == (0.01, 0.01043) and diff["cls"] == (0.5, 0.3863)
    imp = v.importance()
    assert set(imp) <= set(v.params) and imp and sum(imp.values()) == pytest.approx(1.0)
    assert sweep_view.load_view(runs, str(elsewhere / "tune")).kind == "ultralytics"  # a path works too
    with pytest.raises(sweep.SweepError, match="tune:detect/tune"):
        sweep_view.load_view(runs, "tune:detect/tune9")


def test_omr_sweep_status_lists_and_shows_a_tuner_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(CSV_RUN, runs / "detect" / "tune")

    def status(*extra: str) -> str:
        out = subprocess.run([sys.executable, "-m", "omr_core.cli", "sweep", "status", *extra, "--runs-dir", str(runs)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert status().split() == ["tune:detect/tune"]
    text = status("tune:detect/tune")
    assert "Ultralytics' tuner" in text and "10 iterations" in text and "best: t3 0.9066" in text
    assert "lr0 0.01 -> 0.01043" in text and "what mattered" in text


def test_importance_follows_the_argument_that_decides_the_objective() -> None:
    mosaics = [0.2, 0.9, 0.5, 0.1, 0.7, 0.3, 0.8, 0.4, 0.6, 0.0, 1.0, 0.45, 0.15, 0.85, 0.35, 0.65]
    rows = [({"lr0": 0.005 * (k + 1), "mosaic": m}, 0.005 * (k + 1) * 10) for k, m in enumerate(mosaics)]
    imp = sweep_view.param_importance(rows)
    assert imp["lr0"] > 3 * imp["mosaic"]
    assert sweep_view.param_importance(rows) == imp  # deterministic
    assert sweep_view.param_importance([(p, 0.5) for p, _ in rows]) == {}  # one value: nothing to attribute
    assert sweep_view.param_importance(rows[:1]) == {}


def test_files_that_are_not_a_tuners_say_which_and_why(tmp_path: Path) -> None:
    with pytest.raises(tune_results.TuneResultsError, match="has no tune_results.csv"):
        tune_results.read_tune(tmp_path)
    (tmp_path / "tune_results.csv").write_text("lr0,fitness\n0.01,0.5\n")
    with pytest.raises(tune_results.TuneResultsError, match="must start with 'fitness'"):
        tune_results.read_tune(tmp_path)
    (tmp_path / "tune_results.csv").write_text("fitness,lr0\n0.5,0.01,3\n")
    with pytest.raises(tune_results.TuneResultsError, match="line 2: 3 values for 2 columns"):
        tune_results.read_tune(tmp_path)
    one = '{"iteration": 1, "fitness": 0.1, "hyperparameters": {"lr0": 0.01}}\n'
    (tmp_path / "tune_results.ndjson").write_text(one + '{"itera')  # a running tuner's last line, half written
    assert [it.number for it in tune_results.read_tune(tmp_path).iterations] == [1]
    (tmp_path / "tune_results.ndjson").write_text(one + "{oops\n" + one)
    with pytest.raises(tune_results.TuneResultsError, match="tune_results.ndjson line 2 is not JSON"):
        tune_results.read_tune(tmp_path)


def test_a_sweeps_base_is_its_preset_and_fixed_arguments(tmp_path: Path) -> None:
    """The base a best trial is compared with holds what the preset sets (cpu-small: lr0 0.02, batch 16), then the
    fixed arguments; "default" only for an argument neither sets."""
    from omr_core.training.runs import append_jsonl

    runs = tmp_path / "runs"
    spec = sweep.SweepSpec("b", "yolov8n.yaml", "coco8.yaml", (sweep.parse_param("lr0=0.01,0.05"),
                           sweep.parse_param("batch=4,8"), sweep.parse_param("cos_lr=true,false")),
                           preset="cpu-small", args={"batch": 8})
    sweep.create(spec, runs)
    append_jsonl(runs / "sweeps" / "b" / "trials.jsonl", {"number": 0, "run": "b-t0", "state": "complete", "value": 0.3,
                 "epochs": 2, "reason": "", "params": {"lr0": 0.05, "batch": 4, "cos_lr": True}})
    assert sweep_view.load_view(runs, "b").diff() == [("lr0", 0.02, 0.05), ("batch", 8, 4), ("cos_lr", None, True)]
