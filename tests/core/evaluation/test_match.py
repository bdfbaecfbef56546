"""Matching rules on hand-made boxes: every kind of case, threshold behaviour, confusion cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omr_core.evaluation.match import (
    CASE_COLUMNS,
    box_iou,
    cell_cases,
    claim,
    claim_all,
    confusion_counts,
    failure_counts,
    match_cases,
)


def _gt(rows: list[tuple[int, int, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["image_id", "cls", "x0", "y0", "x1", "y1"])


def _pr(rows: list[tuple[int, int, float, float, float, float, float]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["image_id", "cls", "conf", "x0", "y0", "x1", "y1"])
    return df.sort_values(["image_id", "conf"], ascending=[True, False], kind="stable").reset_index(drop=True)


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert box_iou(a, b) == pytest.approx(np.array([[1.0, 50 / 150, 0.0]]), abs=1e-6)
    assert box_iou(a, b[:0]).shape == (1, 0)


def test_claim_is_greedy_by_confidence_and_class_aware() -> None:
    g_cls = np.array([0, 1])
    g_box = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    p_cls = np.array([0, 0, 1])
    p_conf = np.array([0.5, 0.9, 0.3])
    p_box = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 10, 10]], float)
    pred_gt, gt_pred = claim(g_cls, g_box, p_cls, p_conf, p_box)
    # The 0.9 box claims the class-0 object even though the 0.5 box overlaps it better.
    assert pred_gt.tolist() == [-1, 0, 1]
    assert gt_pred.tolist() == [1, 2]


def test_every_kind() -> None:
    gt = _gt(
        [
            (0, 0, 0, 0, 10, 10),  # found (tp) and found again (duplicate)
            (0, 1, 50, 50, 60, 60),  # seen as class 2 only (wrong class + paired miss)
            (0, 0, 100, 100, 110, 110),  # poorly localised box only (loc FP + miss)
            (0, 2, 200, 0, 210, 10),  # found only at 0.1 (dropped by threshold 0.25)
            (1, 1, 0, 0, 10, 10),  # image 1: plain miss
        ]
    )
    pr = _pr(
        [
            (0, 0, 0.9, 0, 0, 10, 10),
            (0, 0, 0.8, 0, 0, 10, 9),
            (0, 2, 0.7, 50, 50, 60, 60),
            (0, 0, 0.6, 104, 104, 114, 114),  # IoU with its object ~0.22
            (0, 2, 0.1, 200, 0, 210, 10),
            (0, 1, 0.5, 300, 300, 310, 310),  # background
        ]
    )
    cases = match_cases(gt, pr, 2, conf=0.25)
    kinds = sorted(cases["kind"].astype(str))
    assert kinds == sorted(["tp", "fp_dup", "fp_class", "fn", "fp_loc", "fn", "fn", "fn", "fp_bg"])
    by = {k: cases[cases["kind"].astype(str) == k] for k in ("fp_class", "fp_loc", "fp_dup", "fp_bg")}
    assert by["fp_class"]["true_cls"].tolist() == [1] and by["fp_class"]["pred_cls"].tolist() == [2]
    assert by["fp_loc"]["iou"].iloc[0] == pytest.approx(36 / 164, abs=1e-4)
    assert by["fp_dup"]["cls"].tolist() == [0]
    assert by["fp_bg"]["true_cls"].tolist() == [-1]
    fn = cases[cases["kind"].astype(str) == "fn"].set_index("true_cls")
    assert fn.loc[1].shape[0] == 2  # the class-1 miss in image 0 (paired) and in image 1
    paired = cases[(cases["kind"].astype(str) == "fn") & (cases["pred_cls"] == 2)]
    assert len(paired) == 1 and paired["conf"].iloc[0] == pytest.approx(0.7)
    dropped = cases[(cases["kind"].astype(str) == "fn") & (cases["true_cls"] == 2)]
    assert dropped["below_conf"].iloc[0] == pytest.approx(0.1)
    # At a threshold of 0.05 the class-2 object is found.
    low = match_cases(gt, pr, 2, conf=0.05)
    assert ((low["kind"].astype(str) == "tp") & (low["cls"] == 2)).sum() == 1


def test_threshold_only_removes_matches() -> None:
    rng = np.random.default_rng(1)
    rows_g, rows_p = [], []
    for img in range(5):
        for _ in range(20):
            c = int(rng.integers(0, 3))
            x, y = rng.uniform(0, 500, 2)
            rows_g.append((img, c, x, y, x + 20, y + 20))
            for _ in range(int(rng.integers(0, 3))):
                dx, dy = rng.normal(0, 4, 2)
                rows_p.append((img, int(rng.integers(0, 3)) if rng.random() < 0.2 else c, float(rng.random()), x + dx, y + dy, x + dx + 20, y + dy + 20))
    gt, pr = _gt(rows_g), _pr(rows_p)
    claims = claim_all(gt, pr, 5)
    prev = None
    for t in (0.0, 0.2, 0.5, 0.8):
        c = match_cases(gt, pr, 5, t, claims=claims)
        tp = int((c["kind"].astype(str) == "tp").sum())
        fn = int((c["kind"].astype(str) == "fn").sum())
        assert tp + fn == len(gt)  # every object is found or missed, once
        n_fp = int(c["kind"].astype(str).str.startswith("fp").sum())
        assert tp + n_fp == int((pr["conf"] >= t).sum())  # every kept prediction is a TP or one FP
        if prev is not None:
            assert tp <= prev
        prev = tp
        m = confusion_counts(c, 3)
        # Columns count objects once except where extra wrong-class boxes sit on found objects.
        assert m[:3, :3].trace() == tp
        for p in range(4):
            for q in range(4):
                if (p, q) != (3, 3):
                    assert len(cell_cases(c, p, q, 3)) == m[p, q]
        counts = failure_counts(c, ["a", "b", "c"])
        assert counts["fn"].sum() == fn and counts["tp"].sum() == tp


def test_empty_inputs() -> None:
    gt = _gt([(0, 0, 0, 0, 10, 10)])
    pr = _pr([])
    c = match_cases(gt, pr, 2, 0.25)
    assert c["kind"].astype(str).tolist() == ["fn"] and np.isnan(c["below_conf"].iloc[0])
    c = match_cases(_gt([]), _pr([(1, 0, 0.9, 0, 0, 5, 5)]), 2, 0.25)
    assert c["kind"].astype(str).tolist() == ["fp_bg"] and c["image_id"].tolist() == [1]
    assert len(match_cases(_gt([]), _pr([]), 3, 0.25)) == 0


def test_cases_table_row_by_row() -> None:
    # Every column of every row, in the order the table comes in: pins how `classify` sorts an image into kinds
    # (a second same-class box on a wrong-class object is poor localisation, not a second wrong class).
    gt = _gt([(0, 0, 0, 0, 10, 10), (0, 1, 50, 50, 60, 60), (0, 0, 100, 100, 110, 110), (0, 2, 200, 0, 210, 10),
              (1, 1, 0, 0, 10, 10)])  # fmt: skip
    pr = _pr([(0, 0, 0.9, 0, 0, 10, 10), (0, 0, 0.8, 0, 0, 10, 9), (0, 2, 0.7, 50, 50, 60, 60),
              (0, 0, 0.6, 104, 104, 114, 114), (0, 2, 0.1, 200, 0, 210, 10), (0, 1, 0.5, 300, 300, 310, 310),
              (0, 1, 0.4, 52, 52, 62, 62)])  # fmt: skip
    cases = match_cases(gt, pr, 2, conf=0.25)
    nan = np.nan
    expected = [  # image, kind, cls, true, pred, conf, iou, below_conf, g box, p box
        (0, "tp", 0, 0, 0, 0.9, 1.0, nan, 0, 0, 10, 10, 0, 0, 10, 10),
        (0, "fp_class", 2, 1, 2, 0.7, 1.0, nan, 50, 50, 60, 60, 50, 50, 60, 60),
        (0, "fp_loc", 0, 0, 0, 0.6, 36 / 164, nan, 100, 100, 110, 110, 104, 104, 114, 114),
        (0, "fp_loc", 1, 1, 1, 0.4, 64 / 136, nan, 50, 50, 60, 60, 52, 52, 62, 62),
        (0, "fp_dup", 0, 0, 0, 0.8, 0.9, nan, 0, 0, 10, 10, 0, 0, 10, 9),
        (0, "fp_bg", 1, -1, 1, 0.5, 0.0, nan, nan, nan, nan, nan, 300, 300, 310, 310),
        (0, "fn", 1, 1, 2, 0.7, 1.0, nan, 50, 50, 60, 60, 50, 50, 60, 60),
        (0, "fn", 0, 0, -1, nan, nan, nan, 100, 100, 110, 110, nan, nan, nan, nan),
        (0, "fn", 2, 2, -1, nan, nan, 0.1, 200, 0, 210, 10, nan, nan, nan, nan),
        (1, "fn", 1, 1, -1, nan, nan, nan, 0, 0, 10, 10, nan, nan, nan, nan),
    ]
    assert list(cases.columns) == list(CASE_COLUMNS)
    assert cases["kind"].astype(str).tolist() == [r[1] for r in expected]
    got = cases.drop(columns="kind").to_numpy(dtype=np.float64)
    want = np.array([[r[0], *r[2:]] for r in expected], dtype=np.float64)
    np.testing.assert_allclose(got, want, atol=1e-5)  # NaN where NaN
