"""Per-release rules read from each Ultralytics wheel's own code (the citations are in training/layouts.py).

Each case takes a real args.yaml from the collection (its keys date the release) and results rows that tell the
rules apart; the expected epoch is worked out by hand from the rule the release's code has.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from omr_core.training.layouts import read_run

DATA = Path(__file__).resolve().parents[2] / "data" / "ultralytics_runs"
BOX = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)")


def _args(folder: str, **override) -> dict:
    args = yaml.safe_load((DATA / folder / "args.yaml").read_text())
    args.update(override)
    return args


def _box_rows(pairs: list[tuple[float, float]]) -> tuple[list[dict], list[str]]:
    # As 8.3.9+ write them: a time column (seconds since the start) after the epoch.
    cols = ["epoch", "time", *BOX]
    rows = [{"epoch": i + 1, "time": 60.0 * (i + 1), BOX[0]: 0.5, BOX[1]: 0.5, BOX[2]: m50, BOX[3]: m95}
            for i, (m50, m95) in enumerate(pairs)]
    return rows, cols


# mAP50 high at epoch 1, mAP50-95 a little higher at epoch 2:
# 0.1*mAP50 + 0.9*mAP50-95 -> epoch 1 (0.540 vs 0.509); mAP50-95 alone -> epoch 2.
WEIGHED = [(0.9, 0.50), (0.5, 0.51)]


@pytest.mark.parametrize(("folder", "best_epoch", "release"), [
    ("v83_segment_cups", 1, ("8.3.9", "8.3.37")),        # label_smoothing: 8.3.37 or older, 0.1/0.9
    ("v83_detect_helmets", 2, ("8.3.196", "8.3.253")),   # compile: 8.3.196+, mAP50-95 alone from 8.3.198
    ("v84_detect_cpu", 2, ("8.4.0", "8.4.90")),
])
def test_best_epoch_follows_the_fitness_weights_of_the_release(folder, best_epoch, release):
    rows, cols = _box_rows(WEIGHED)
    r = read_run(rows, cols, _args(folder, task="detect", epochs=2), mtime=0.0)
    assert r.best_epoch == best_epoch
    assert r.layout.release == release


def test_an_early_8_0_classifier_kept_best_pt_by_top5_alone():
    # 8.0.0-8.0.136 ClassifyMetrics.fitness returned top-5; 8.0.137+ the mean of top-1 and top-5.
    top = "metrics/accuracy_top1", "metrics/accuracy_top5"
    cols = ["epoch", *top]
    rows = [{"epoch": 0, top[0]: 0.2, top[1]: 0.9}, {"epoch": 1, top[0]: 0.6, top[1]: 0.8}]
    v5loader = _args("v80_detect_2ep_zero_based", task="classify", epochs=2)
    r = read_run(rows, cols, v5loader, mtime=0.0)
    assert (r.best_epoch, r.layout.release) == (1, ("8.0.0", "8.0.134"))
    newer = _args("v81_classify_weather", epochs=2)
    rows = [dict(r, epoch=r["epoch"] + 1) for r in rows]
    assert read_run(rows, cols, newer, mtime=0.0).best_epoch == 2


def test_all_zero_fitness_keeps_the_last_zero_epoch_until_8_4_96():
    # `if not self.best_fitness or ...` (to 8.4.95) replaces a zero best every epoch; `is None` (8.4.96+) keeps the first.
    rows, cols = _box_rows([(0.0, 0.0)] * 3)
    old = _args("v84_detect_cpu", epochs=3)  # rle, no cls_remap: 8.4.0-8.4.90
    assert read_run(rows, cols, old, mtime=0.0).best_epoch == 3
    new = _args("v84_detect_cpu", epochs=3, cls_remap=None, dgrad=False)  # dgrad: 8.4.104+
    r = read_run(rows, cols, new, mtime=0.0)
    assert r.best_epoch == 1 and r.layout.release[0] == "8.4.104"


@pytest.mark.parametrize(("folder", "state"), [
    ("v83_segment_cups", "stopped short"),            # <=8.3.37: ties move the stopper's best
    ("v83_detect_helmets", "early-stopped"),          # 8.3.75+: ties do not
    ("v11_detect_coco8_zero_map", "early-stopped"),   # 8.3.38-8.3.104: either rule; this one stopped it
])
def test_early_stopping_ties_follow_the_release(folder, state):
    # Three equal epochs of 10 with patience 2: `fitness >= best` (to 8.3.74) keeps moving the best (no stop);
    # `fitness > best or best == 0` (8.3.75+) stops at epoch 3.
    rows, cols = _box_rows([(0.5, 0.4)] * 3)
    args = _args(folder, task="detect", epochs=10, patience=2)
    assert read_run(rows, cols, args, mtime=0.0).state == state
