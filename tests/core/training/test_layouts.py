"""Ultralytics result layouts read right, on 30 real run folders people committed to public repositories.

Each expectation is computed here a second way (pandas over the raw CSV, the fitness weights and tie rules written
out per release) rather than by calling the module's own helpers, and the states are the ones a person reads off
the files (see tests/data/ultralytics_runs/README.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from omr_core.training.layouts import read_run
from omr_core.training.tail import ResultsCsvTail

DATA = Path(__file__).resolve().parents[2] / "data" / "ultralytics_runs"
FOLDERS = sorted(p.name for p in DATA.iterdir() if p.is_dir())

#: What the files themselves say, read by a person: every run finished except these.
STATES = {
    "yolo26_obb_early_stop": "early-stopped",  # 50 of 120 epochs, best mAP50-95 at epoch 30, patience 20
    "v83_obb_stopped_short": "stopped short",  # 2 of 100
    "v83_pose_stopped_short": "stopped short",  # 2 of 100
}


#: The releases each folder's args.yaml keys and CSV columns allow, worked out by hand from the key changes the
#: wheels' cfg/default.yaml show (v5loader until 8.0.134, time from 8.0.228, label_smoothing until 8.3.37,
#: save_hybrid until 8.3.104, crop_fraction until 8.3.107, cutmix from 8.3.119, compile from 8.3.196, rle from 8.4.0,
#: cls_remap from 8.4.91) and the time column (from 8.3.9).
RELEASE = {
    "v80_detect_100ep_zero_based": ("8.0.0", "8.0.134"), "v80_detect_2ep_zero_based": ("8.0.0", "8.0.134"),
    "v81_classify_traffic": ("8.0.228", "8.3.8"), "v81_classify_weather": ("8.0.228", "8.3.8"),
    "v81_segment_cars": ("8.0.228", "8.3.8"), "v81_segment_lab3": ("8.0.228", "8.3.8"),
    "v83_segment_cups": ("8.3.9", "8.3.37"), "v83_detect_helmets": ("8.3.196", "8.3.253"),
    **{n: ("8.3.38", "8.3.104") for n in ("v11_classify_mnist160", "v11_classify_ties", "v11_detect_coco8_zero_map",
                                          "v11_obb_dota8", "v11_pose_coco8", "v11_segment_coco8",
                                          "v83_obb_stopped_short", "v83_pose_keypoint", "v83_pose_stopped_short")},
    **{n: ("8.4.0", "8.4.90") for n in ("v84_classify_cpu", "v84_classify_fire", "v84_detect_cpu", "v84_obb_cpu",
                                        "v84_obb_dota_20ep", "v84_obb_mujoco", "v84_pose_cpu",
                                        "v84_segment_best_by_mask", "yolo26_obb_early_stop")},
}


def _newest(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in RELEASE[name][1].split(".")) if name in RELEASE else (0, 0, 0)


def _family(name: str) -> str:
    # The folder names carry the release family the README dates from each args.yaml's keys.
    if name.startswith("v5_"):
        return "yolov5"
    if name.startswith("v80_"):
        return "8.0"
    if name.startswith(("v84_", "yolo26_")):
        return "8.4"
    return "8.1-8.3"


def _args(d: Path) -> dict:
    f = d / "args.yaml" if (d / "args.yaml").exists() else d / "opt.yaml"
    return yaml.safe_load(f.read_text())


def _frame(d: Path) -> pd.DataFrame:
    df = pd.read_csv(d / "results.csv", skipinitialspace=True)
    df.columns = [c.strip() for c in df.columns]
    return df


def expected(name: str) -> dict:
    """What Ultralytics' own rules give for a collected folder, computed here from the raw files."""
    d, fam = DATA / name, _family(name)
    df, args = _frame(d), _args(d)
    task = "detect" if fam == "yolov5" else args["task"]
    newest = _newest(name)
    w50, w95 = (0.0, 1.0) if newest >= (8, 3, 198) else (0.1, 0.9)  # metrics.py Metric.fitness from 8.3.198

    def box(sfx: str) -> pd.Series:
        a, b = df[f"metrics/mAP50({sfx})"], df[f"metrics/mAP50-95({sfx})"]
        return w50 * a + w95 * b

    if fam == "yolov5":
        fit = 0.1 * df["metrics/mAP_0.5"] + 0.9 * df["metrics/mAP_0.5:0.95"]
        head = "metrics/mAP_0.5:0.95"
    elif task == "classify" and newest < (8, 0, 137):
        fit, head = df["metrics/accuracy_top5"], "metrics/accuracy_top1"  # ClassifyMetrics.fitness was top-5
    elif task == "classify":
        fit = (df["metrics/accuracy_top1"] + df["metrics/accuracy_top5"]) / 2
        head = "metrics/accuracy_top1"
    elif task == "segment":
        fit, head = box("B") + box("M"), "metrics/mAP50-95(M)"
    elif task == "pose":
        fit, head = box("B") + box("P"), "metrics/mAP50-95(P)"
    else:
        fit, head = box("B"), "metrics/mAP50-95(B)"
    fit = fit.to_numpy()
    top = fit.max()
    if fam != "yolov5" and newest < (8, 4, 96) and top == 0:
        i = int(np.flatnonzero(fit == 0)[-1])  # `not self.best_fitness`: each zero epoch replaces a zero best
    else:
        i = int(np.flatnonzero(fit == top)[0])  # strictly better only: the first of equal epochs stays
    base = 1 if df["epoch"].iloc[0] == 0 else 0
    return {
        "task": task,
        "done": int(df["epoch"].iloc[-1]) + base,
        "planned": int(args["epochs"]),
        "best_epoch": int(df["epoch"].iloc[i]) + base,
        "best": float(df[head].iloc[i]),
        "last": float(df[head].iloc[-1]),
        "state": STATES.get(name, "finished"),
        "head": head,
    }


def _read(d: Path, **kw):
    t = ResultsCsvTail(d / "results.csv")
    t.poll()
    assert t.damage() == []
    return read_run(t.rows(), t.columns, _args(d), **kw)


def test_collection_is_what_the_readme_lists():
    readme = (DATA / "README.md").read_text()
    listed = dict(re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, flags=re.M))
    files = {f"{p.parent.name}/{p.name}": p for p in DATA.glob("*/*")}
    assert len(FOLDERS) >= 30
    assert set(listed.values()) == set(files), "README's sha256 list and the folders differ"
    for digest, rel in listed.items():
        assert hashlib.sha256(files[rel].read_bytes()).hexdigest() == digest, f"{rel} was edited"
    tasks = {_args(DATA / n).get("task", "detect") for n in FOLDERS}
    assert tasks == {"detect", "segment", "classify", "pose", "obb"}
    assert {_family(n) for n in FOLDERS} == {"yolov5", "8.0", "8.1-8.3", "8.4"}


@pytest.mark.parametrize("name", FOLDERS)
def test_real_run_read_like_ultralytics(name):
    exp = expected(name)
    r = _read(DATA / name, mtime=0.0, now=time.time())
    assert r.layout.family == _family(name)
    assert r.layout.release == RELEASE.get(name, ("", ""))
    assert r.layout.task == exp["task"]
    assert (r.epochs_done, r.epochs_planned) == (exp["done"], exp["planned"])
    assert r.best_epoch == exp["best_epoch"]
    assert r.best == pytest.approx(exp["best"]) and r.last == pytest.approx(exp["last"])
    assert r.state == exp["state"], r.reason


def test_the_cases_the_issue_names():
    by = {n: _read(DATA / n, mtime=0.0) for n in FOLDERS}
    assert (by["v80_detect_100ep_zero_based"].epochs_done, by["v80_detect_100ep_zero_based"].epochs_planned) == (100, 100)
    es = by["yolo26_obb_early_stop"]
    assert (es.best_epoch, es.layout.patience) == (30, 20) and "patience 20" in es.reason
    seg = by["v84_segment_best_by_mask"]  # box mAP50-95 alone peaks at 50; best.pt holds 40 (box + mask fitness)
    assert seg.best_epoch == 40 and seg.layout.headline == "metrics/mAP50-95(M)"
    v5 = by["v5_detect_50ep"]
    assert v5.layout.headline == "metrics/mAP_0.5:0.95" and v5.best is not None and v5.epochs_planned == 50
    cls = by["v84_classify_cpu"]
    assert cls.layout.headline == "metrics/accuracy_top1" and cls.best == pytest.approx(0.92228)


def test_a_results_csv_written_seconds_ago_is_a_live_run(tmp_path):
    run = tmp_path / "live"
    shutil.copytree(DATA / "v83_obb_stopped_short", run)
    now = time.time()
    os.utime(run / "results.csv", (now - 5, now - 5))
    r = _read(run, mtime=(run / "results.csv").stat().st_mtime, now=now)
    assert r.state == "running" and "still being written" in r.reason
    r = _read(run, mtime=now - 3600, now=now)
    assert r.state == "stopped short"


def test_no_args_yaml_leaves_planned_epochs_unknown(tmp_path):
    run = tmp_path / "bare"
    run.mkdir()
    shutil.copy(DATA / "v83_obb_stopped_short" / "results.csv", run / "results.csv")
    t = ResultsCsvTail(run / "results.csv")
    t.poll()
    r = read_run(t.rows(), t.columns, {}, mtime=0.0)
    assert (r.epochs_done, r.epochs_planned, r.state) == (2, None, "unknown")
    assert r.layout.task == "detect"  # no args, no angle_loss column: the CSV cannot tell it was obb


def test_a_time_limited_run_that_ended_early_is_finished(tmp_path):
    # The same real run, as if started with `time=0.25` (8.1+ end training after that many hours, whatever `epochs`).
    run = tmp_path / "timed"
    shutil.copytree(DATA / "v83_obb_stopped_short", run)
    args = (run / "args.yaml").read_text().replace("time: null", "time: 0.25")
    (run / "args.yaml").write_text(args)
    r = _read(run, mtime=0.0)
    assert r.state == "finished" and "time limit (time: 0.25 h)" in r.reason
