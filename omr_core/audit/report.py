"""The audit report: class statistics, the plan and the assigner memory forecasts in one JSON-ready record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from omr_core.audit.forecast import Forecast, forecast
from omr_core.classes import official_category

if TYPE_CHECKING:
    from omr_core.audit.summary import DatasetSummary
from omr_core.audit.plan import ExclusionPlan, summarize
from omr_core.audit.statistics import class_stats, density_summary, instances_per_image
from omr_core.datasets.discovery import LoadedDataset


def _images(ds: LoadedDataset | DatasetSummary) -> pd.DataFrame:
    return ds.images if not isinstance(ds, LoadedDataset) else ds.data.images


def forecasts(
    ds: LoadedDataset | DatasetSummary, plan: ExclusionPlan, *, imgsz: int, batch: int, vram_bytes: int = 0, splits: Sequence[str] = ("train",)
) -> tuple[Forecast, Forecast]:
    """Assigner forecasts before and after ``plan`` (max labels over the training images; all images if none)."""
    before = instances_per_image(ds)
    after = instances_per_image(ds, plan)
    images = _images(ds)
    if "split" in images.columns:
        sel = images["split"].astype(str).isin(list(splits)).to_numpy()
        if sel.any():
            before, after = before[sel], after[sel]
    mb = int(before.max()) if len(before) else 0
    ma = int(after.max()) if len(after) else 0
    return (
        forecast(batch, imgsz, mb, len(plan.universe), vram_bytes),
        forecast(batch, imgsz, ma, len(plan.kept), vram_bytes),
    )


def audit_report(
    ds: LoadedDataset | DatasetSummary,
    plan: ExclusionPlan,
    *,
    imgsz: int = 1024,
    batch: int = 16,
    vram_gb: float = 0.0,
    stats: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The whole audit as a JSON-ready dict (what ``omr audit --json`` prints)."""
    stats = class_stats(ds, imgsz) if stats is None else stats
    summary = summarize(stats, plan)
    before = instances_per_image(ds)
    after = instances_per_image(ds, plan)
    fb, fa = forecasts(ds, plan, imgsz=imgsz, batch=batch, vram_bytes=int(vram_gb * (1 << 30)))
    imgs = _images(ds)
    by_split = imgs["split"].astype(str).value_counts().sort_index().to_dict() if "split" in imgs.columns else {}
    classes = []
    new_index = plan.new_index
    r: dict[Any, Any]
    for r in stats.to_dict("records"):
        classes.append(
            {
                "id": None if pd.isna(r["id"]) else int(r["id"]),
                "yolo_index": int(r["yolo_index"]),
                "new_index": new_index.get(r["name"]),
                "name": r["name"],
                "group": r["group"],
                "critical": bool(r["critical"]),
                "no_samples": bool(r["no_samples"]),
                "count": int(r["instances"]),
                "images": int(r["images"]),
                "share": round(float(r["share"]), 6),
                "median_w_px": _num(r["median_w"]),
                "median_h_px": _num(r["median_h"]),
                "median_w_at_imgsz": _num(r["median_w_at"]),
                "median_h_at_imgsz": _num(r["median_h_at"]),
                "tiny_at_imgsz": bool(r["tiny"]),
                "excluded": plan.is_excluded(r["name"]),
            }
        )
    count_of = dict(zip(stats["name"], stats["instances"].astype(int)))
    return {
        "sources": [str(p) for p in ds.paths],
        "kind": ds.kind,
        "imgsz": imgsz,
        "images": {"count": int(len(imgs)), "by_split": {str(k): int(v) for k, v in by_split.items()}},
        "instances": int(stats["instances"].sum()),
        "classes": classes,
        "instances_per_image": {"before": density_summary(before), "after": density_summary(after)},
        "exclusions": [
            {
                "id": c.id if (c := official_category(n)) else None,
                "name": n,
                "critical": bool(c.critical) if c else False,
                "reason": plan.reason(n),
                "count": count_of.get(n, 0),
            }
            for n in plan.excluded
        ],
        "not_in_source": list(plan.not_in_source),
        "allow_critical": plan.allow_critical,
        "plan": summary.to_dict(),
        "violations": list(plan.violations),
        "forecast": {"before": fb.to_dict(), "after": fa.to_dict()},
        "issues": [_issue_dict(i) for i in ds.issues],
    }


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), 2)


def _issue_dict(issue: Any) -> dict[str, Any]:
    return {
        "kind": str(getattr(issue, "kind", "")),
        "message": str(getattr(issue, "message", issue)),
        "count": int(getattr(issue, "count", 1) or 0),
    }
