"""What is wrong with each class, in words, from its per-class numbers and its confusion column."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

NO_LABELS = "no labels"
OK = "ok"

#: Below this share of instances found at the threshold a class is "mostly missed".
MOSTLY_MISSED = 0.5
#: A class whose misses are at least this share wrong-class boxes is "confused with" the most frequent one.
CONFUSED_SHARE = 0.5
#: Found at IoU 0.5 (AP50 at least this) but AP50-95 below this share of AP50: the boxes are in the wrong place.
LOCALISATION_AP50 = 0.5
LOCALISATION_RATIO = 0.5
#: Below this AP50-95 a class is called weak even when no single cause stands out.
WEAK_AP = 0.1

#: One line per status for tooltips and the report.
STATUS_HELP = (
    "never detected: no object of the class is found at the threshold; "
    "confused with X: most misses have a box of class X on them; "
    "mostly missed: fewer than half of the objects are found ('below the threshold': found with a lower confidence); "
    "localisation: found at IoU 0.5 but AP50-95 is under half of AP50 (boxes off or the wrong size); "
    "many false detections: more false boxes than objects and Ultralytics' precision under 0.5; "
    "weak: AP50-95 under 0.1 without one clear cause; "
    "no labels: the split has no object of this class, Ultralytics would show the mean of the others."
)


def class_status(row: pd.Series, confused_with: pd.Series) -> str:
    """The status of one class.

    Args:
        row: A row of `per_class_export` (``labelled, instances, tp, fn, fp, fn_below_threshold, precision, ap50,
            ap50_95``).
        confused_with: This class's missed objects that a box of another class covers, by that class's name.

    Returns:
        A short phrase: ``ok``, ``no labels``, ``never detected``, ``confused with X: n of N``, ``mostly missed``,
        ``localisation``, ``many false detections`` or ``weak``, with the numbers behind it (kept short: it is
        one line of the per-class table).
    """
    n = int(row["instances"])
    if not bool(row["labelled"]) or n <= 0:
        return NO_LABELS
    tp, fn, fp = int(row["tp"]), int(row["fn"]), int(row["fp"])
    ap50, ap = float(row["ap50"]), float(row["ap50_95"])
    confused = int(confused_with.sum())
    if confused and confused >= CONFUSED_SHARE * max(fn, 1) and tp < MOSTLY_MISSED * n:
        top = confused_with.idxmax()
        return f"confused with {top}: {int(confused_with.max())} of {n}"
    below = int(row.get("fn_below_threshold", 0))
    hint = f", {below} below threshold" if below else ""  # short: the status column is one line in the table
    if tp == 0:
        return f"never detected: 0 of {n} found{hint}"
    if tp < MOSTLY_MISSED * n:
        return f"mostly missed: {tp} of {n} found{hint}"
    if ap50 >= LOCALISATION_AP50 and ap < LOCALISATION_RATIO * ap50:
        return f"localisation: AP50 {ap50:.2f}, AP50-95 {ap:.2f}"
    precision = float(row["precision"])
    if fp > n and precision < MOSTLY_MISSED:  # Ultralytics' P is at its best threshold: low there, low anywhere
        on_others = int(row.get("fp_class", 0))
        where = f", {on_others} on other classes" if on_others * 2 >= fp else ""
        return f"many false detections: {fp} for {n}{where}"
    if not np.isnan(ap) and ap < WEAK_AP:
        return f"weak: AP50-95 {ap:.3f}"
    return OK


def missed_as(cases: pd.DataFrame, nc: int) -> np.ndarray:
    """``[true, predicted]`` counts of missed objects covered by a box of another class (each object once)."""
    m = np.zeros((nc, nc), dtype=np.int64)
    kind = cases["kind"].astype(str).to_numpy()
    pred = cases["pred_cls"].to_numpy()
    sel = (kind == "fn") & (pred >= 0)
    np.add.at(m, (cases["true_cls"].to_numpy()[sel], pred[sel]), 1)
    return m


def statuses(per: pd.DataFrame, cases: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """`class_status` of every row of ``per`` (rows carry ``class_index``) from the cases at one threshold."""
    m = missed_as(cases, len(names))
    return [class_status(row, pd.Series(m[int(row["class_index"])], index=list(names))) for _, row in per.iterrows()]
