"""Confidence analysis per class: P/R against threshold, the F1-optimal threshold, what a global threshold drops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from omr_core.evaluation.evaluate import Evaluation


def _at(px: np.ndarray, curve: np.ndarray, t: float) -> float:
    return float(np.interp(t, px, curve))


def class_curves(ev: Evaluation, class_index: int) -> pd.DataFrame:
    """Ultralytics' precision, recall and F1 against confidence for one class (empty if it has no labels).

    Returns:
        Columns ``conf, precision, recall, f1`` (1000 rows from Ultralytics' curves).
    """
    c = ev.curves()
    rows = np.flatnonzero(c["class_index"] == class_index)
    if not len(rows):
        return pd.DataFrame(columns=["conf", "precision", "recall", "f1"])
    i = int(rows[0])
    return pd.DataFrame({"conf": c["px"], "precision": c["p"][i], "recall": c["r"][i], "f1": c["f1"][i]})


def confidence_table(ev: Evaluation, threshold: float = 0.25) -> pd.DataFrame:
    """Per class: the F1-optimal threshold and what the global ``threshold`` costs.

    P/R/F1 come from Ultralytics' confidence curves (IoU 0.5). ``dropped`` counts the objects a correct detection
    found below ``threshold`` (they were found, the threshold threw them away), from our matching of the same
    predictions; ``tp`` the correct detections kept.

    Returns:
        One row per model class: ``class_index, class, instances, best_threshold, best_f1, precision_at_best,
        recall_at_best, precision, recall, f1`` (at ``threshold``), ``tp, dropped, dropped_share``. Classes without
        labels have NaN.
    """
    per = ev.per_class()
    c = ev.curves()
    nc = ev.nc
    out = pd.DataFrame({"class_index": np.arange(nc), "class": list(ev.names), "instances": per["instances"].to_numpy()})
    cols = {k: np.full(nc, np.nan) for k in ("best_threshold", "best_f1", "precision_at_best", "recall_at_best", "precision", "recall", "f1")}
    px = c["px"].astype(np.float64)
    for row, ci in enumerate(c["class_index"]):
        f1 = c["f1"][row].astype(np.float64)
        b = int(f1.argmax())
        cols["best_threshold"][ci] = px[b]
        cols["best_f1"][ci] = f1[b]
        cols["precision_at_best"][ci] = c["p"][row][b]
        cols["recall_at_best"][ci] = c["r"][row][b]
        cols["precision"][ci] = _at(px, c["p"][row], threshold)
        cols["recall"][ci] = _at(px, c["r"][row], threshold)
        cols["f1"][ci] = _at(px, f1, threshold)
    for k, v in cols.items():
        out[k] = v
    cases = ev.cases(threshold)
    kind = cases["kind"].astype(str).to_numpy()
    cls = cases["cls"].to_numpy()
    out["tp"] = np.bincount(cls[kind == "tp"], minlength=nc)[:nc]
    dropped = (kind == "fn") & ~np.isnan(cases["below_conf"].to_numpy())
    out["dropped"] = np.bincount(cls[dropped], minlength=nc)[:nc]
    found = out["tp"] + out["dropped"]
    out["dropped_share"] = np.where(found > 0, out["dropped"] / found.where(found > 0, 1), np.nan)
    labelled = per["labelled"].to_numpy(bool)
    out.loc[~labelled, ["tp", "dropped"]] = 0
    return out
