"""The scoring rules of `omr bench reconstruct`: one-to-one greedy matching and ground-truth line centres."""

from __future__ import annotations

import numpy as np
import pytest

from omr_core.evaluation.reconstruct_bench import Counts, greedy_match, gt_line_centres


def test_counts() -> None:
    c = Counts(8, 10, 16) + Counts(2, 0, 4)
    assert (c.tp, c.pred, c.gt) == (10, 10, 20)
    assert c.precision == 1.0 and c.recall == 0.5 and c.f1 == pytest.approx(2 / 3)
    assert Counts().f1 == 1.0  # nothing expected, nothing found
    assert Counts(0, 3, 0).precision == 0.0


def test_stem_rule_thresholds() -> None:
    gt = np.array([[100, 100, 102, 170]], float)  # centre x 101, 70 px tall; space 20 -> 5 px tolerance
    ok = np.array([[104, 105, 106, 170]], float)  # dx 4, IoU 65/70
    far = np.array([[106.5, 100, 108.5, 170]], float)  # dx 6.5
    short = np.array([[100, 100, 102, 145]], float)  # IoU 45/70 < 0.7
    assert greedy_match(ok, gt, "stem", 20.0)[0].tolist() == [True]
    assert greedy_match(far, gt, "stem", 20.0)[0].tolist() == [False]
    assert greedy_match(short, gt, "stem", 20.0)[0].tolist() == [False]


def test_ledger_rule_thresholds() -> None:
    gt = np.array([[100, 200, 140, 202]], float)
    assert greedy_match(np.array([[110, 204, 150, 206]], float), gt, "ledger", 20.0)[0].tolist() == [True]  # dy 4, IoU .6
    assert greedy_match(np.array([[100, 206, 140, 208]], float), gt, "ledger", 20.0)[0].tolist() == [False]  # dy 6
    assert greedy_match(np.array([[125, 200, 165, 202]], float), gt, "ledger", 20.0)[0].tolist() == [False]  # IoU .23


def test_matching_is_one_to_one_and_best_first() -> None:
    gt = np.array([[100, 100, 102, 170], [103, 100, 105, 170]], float)
    pred = np.array([[103, 100, 105, 170]], float)  # fits both within tolerance; the exact one wins
    p, g = greedy_match(pred, gt, "stem", 20.0)
    assert p.tolist() == [True] and g.tolist() == [False, True]
    two = np.array([[103, 100, 105, 170], [103, 101, 105, 170]], float)
    p, g = greedy_match(two, gt[1:], "stem", 20.0)
    assert p.sum() == 1 and g.sum() == 1
    assert greedy_match(np.zeros((0, 4)), gt, "stem", 20.0)[1].tolist() == [False, False]


def test_gt_line_centres_straight_and_rotated() -> None:
    box = np.array([100, 200, 900, 282], float)  # ink box of five 2-px lines 20 px apart
    c = gt_line_centres(box, None, 2.0, np.array([100.0, 500.0]))
    assert c[:, 0].tolist() == [201, 221, 241, 261, 281]
    # The same staff rotated: the oriented corners carry the skew.
    ang = np.deg2rad(1.0)
    rot = np.array([[np.cos(ang), np.sin(ang)], [-np.sin(ang), np.cos(ang)]])
    x0, y0, x1, y1 = box
    corners = np.array([[x1, y1], [x1, y0], [x0, y0], [x0, y1]]) @ rot.T
    xs = np.array([200.0, 700.0])
    c = gt_line_centres(box, corners.ravel(), 2.0, xs)
    # Top line of the rotated staff at x: the rotated clean line y = 201.
    tl, tr = np.array([x0, 201.0]) @ rot.T, np.array([x1, 201.0]) @ rot.T
    expect = tl[1] + (xs - tl[0]) / (tr[0] - tl[0]) * (tr[1] - tl[1])
    assert np.abs(c[0] - expect).max() < 0.05
