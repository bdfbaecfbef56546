"""A real `omr train` on a DeepScoresV2-named tiny dataset: the default preset, the optimizer auto picks, the steps
it takes, and the "not learning" alert on the run's own files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from omr_core.cli import main
from omr_core.training.alerts import live_alerts
from omr_core.training.optimizer import optimizer_steps, plan_optimizer
from omr_core.training.runs import RunView, read_run
from omr_core.training.spec import default_preset, ultralytics_defaults
from tests.core.training.tiny_dataset import make_tiny_dataset

pytestmark = pytest.mark.slow

SHEET_NAMES = ("noteheadBlackOnLine", "clefG", "restQuarter")


def _sheet_music(root: Path) -> Path:
    data = make_tiny_dataset(root, n_train=16, n_val=4)
    text = data.read_text()
    for i, n in enumerate(("box", "ellipse", "bar")):
        text = text.replace(f"{i}: {n}", f"{i}: {SHEET_NAMES[i]}")
    data.write_text(text)
    return data


def test_default_preset_follows_the_class_names(tmp_path: Path) -> None:
    assert default_preset(_sheet_music(tmp_path / "s")).name == "sheet-music"
    plain = default_preset(make_tiny_dataset(tmp_path / "p", n_train=2, n_val=1))
    assert plain.name == "ultralytics" and "0 of 3" in plain.reason
    assert default_preset(tmp_path / "missing.yaml").name == "ultralytics"


def test_real_run_matches_the_plan_and_says_it_is_not_learning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _sheet_music(tmp_path / "ds")
    runs = tmp_path / "runs"
    # batch 4 with Ultralytics' nbs 64: one optimizer step per 16 batches (capped at the run's 12 batches).
    argv = ["train", "--data", str(data), "--name", "few", "--runs-dir", str(runs), "--model", "yolov8n.yaml",
            "--epochs", "3", "--imgsz", "64", "--batch", "4", "--device", "cpu", "workers=0", "save_period=1"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "preset sheet-music" in out.err and "3 of 3 class names are DeepScoresV2's" in out.err
    run_dir = Path(out.out.strip())
    view = RunView(run_dir)
    deadline = time.time() + 240
    while view.poll().summary().live and time.time() < deadline:
        time.sleep(0.5)
    s = view.poll().summary()
    assert s.state == "finished", (s, (run_dir / "log.txt").read_text(errors="replace")[-2000:])
    doc = read_run(run_dir)
    assert doc is not None and doc.spec["preset"] == "sheet-music" and doc.spec["args"]["fliplr"] == 0.0

    # What optimizer=auto really picked (Ultralytics writes its choice into the trainer's args).
    got = doc.train_args
    plan = plan_optimizer({**ultralytics_defaults(), **doc.spec["args"]}, nc=3, train_images=16)
    assert (plan.optimizer, plan.auto, plan.iterations) == ("AdamW", True, 3)
    assert got["optimizer"] == plan.optimizer and got["lr0"] == pytest.approx(plan.lr0, abs=1e-9)
    assert plan.lr0 == pytest.approx(0.002 * 5 / 7, abs=1e-6)

    # The steps it took: AdamW counts them in its state, saved in the periodic checkpoints (Ultralytics strips the
    # optimizer from last.pt at the end, not from these); epoch2.pt is the third epoch (0-based names).
    import torch

    ckpt = torch.load(run_dir / "weights" / "epoch2.pt", map_location="cpu", weights_only=False)
    taken = {int(st["step"]) for st in ckpt["optimizer"]["state"].values()}
    snap = view.poll()
    nb = int(snap.batches.col("nb")[-1])
    assert nb == 4 and len(taken) == 1
    assert taken.pop() == optimizer_steps(3 * nb, nb, 4, 64, 3, 3.0)

    # And the monitor says why nothing is learned, from the run's own files.
    maps = snap.results.column("metrics/mAP50(B)")
    assert maps.max() < 1e-3, maps  # three steps of a from-scratch model on 64-px images
    alerts = [a for a in live_alerts(snap, time.time()) if a.kind == "not_learning"]
    steps = optimizer_steps(3 * nb, nb, 4, 64, 3, 3.0)
    assert len(alerts) == 1 and f"only {steps} step" in alerts[0].message and "nbs=4" in alerts[0].message
