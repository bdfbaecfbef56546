"""Compare two evaluations class by class: deltas of AP, P, R and instances, and the classes that got worse."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from omr_core.evaluation.evaluate import Evaluation

METRICS: tuple[str, ...] = ("ap50_95", "ap50", "precision", "recall")


def compare_evaluations(a: Evaluation, b: Evaluation, tolerance: float = 0.005) -> pd.DataFrame:
    """Per-class deltas ``B - A``, matched by class name, worst change first.

    Args:
        a: The reference evaluation (e.g. the older run).
        b: The evaluation compared with it.
        tolerance: A change of AP50-95 smaller than this is "same".

    Returns:
        Columns ``class, group, instances_a, instances_b, d_instances`` and for each of `METRICS`
        ``<m>_a, <m>_b, d_<m>``, plus ``status``: ``worse``, ``better``, ``same``, ``no labels`` (in either),
        ``only in A`` or ``only in B``.
    """
    pa = a.per_class().set_index("class")
    pb = b.per_class().set_index("class")
    names = list(dict.fromkeys([*pa.index, *pb.index]))
    out = pd.DataFrame({"class": names})
    out["group"] = [pa["group"].get(n, pb["group"].get(n, "")) for n in names]
    for m in ("instances", *METRICS):
        va = pa[m].reindex(names).to_numpy(np.float64)
        vb = pb[m].reindex(names).to_numpy(np.float64)
        out[f"{m}_a"] = va
        out[f"{m}_b"] = vb
        out[f"d_{m}"] = vb - va
    la = pa["labelled"].reindex(names)
    lb = pb["labelled"].reindex(names)
    d = out["d_ap50_95"].to_numpy()
    status = np.where(d < -tolerance, "worse", np.where(d > tolerance, "better", "same")).astype(object)
    status[(la == False).to_numpy() | (lb == False).to_numpy()] = "no labels"  # noqa: E712 (NaN-aware)
    status[la.isna().to_numpy()] = "only in B"
    status[lb.isna().to_numpy()] = "only in A"
    out["status"] = status
    return out.sort_values(["d_ap50_95", "class"], na_position="last", kind="stable").reset_index(drop=True)


def worse_classes(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `compare_evaluations` table whose AP50-95 dropped beyond the tolerance."""
    return table[table["status"] == "worse"]
