"""Class audit: per-class statistics, exclusion plans by name, the assigner memory forecast, data.yaml checks, convert to YOLO.

What the CLI and the dashboard use is exported here and imported on first use (the heavy modules load
only when a name of theirs is asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omr_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from omr_core.audit.convert import ConvertOptions, format_report
    from omr_core.audit.plan import (
        PRESETS,
        ExcludedClass,
        ExclusionPlan,
        NameLookup,
        canonical_in,
        effective_plan,
        excluded_classes,
        lookup_names,
        make_plan,
        resolve_ids,
        split_tokens,
        summarize,
    )
    from omr_core.audit.report import audit_report, forecasts
    from omr_core.audit.statistics import class_stats, instances_per_image, render_crop, sample_crops
    from omr_core.audit.summary import DatasetSummary, summarize_files
    from omr_core.audit.yaml_check import check_yaml

#: Exported name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    "ConvertOptions": "convert",
    "DatasetSummary": "summary",
    "ExcludedClass": "plan",
    "ExclusionPlan": "plan",
    "NameLookup": "plan",
    "PRESETS": "plan",
    "audit_report": "report",
    "canonical_in": "plan",
    "check_yaml": "yaml_check",
    "class_stats": "statistics",
    "effective_plan": "plan",
    "excluded_classes": "plan",
    "forecasts": "report",
    "format_report": "convert",
    "instances_per_image": "statistics",
    "lookup_names": "plan",
    "make_plan": "plan",
    "render_crop": "statistics",
    "resolve_ids": "plan",
    "sample_crops": "statistics",
    "split_tokens": "plan",
    "summarize": "plan",
    "summarize_files": "summary",
}
__all__ = [
    "ConvertOptions",
    "DatasetSummary",
    "ExcludedClass",
    "ExclusionPlan",
    "NameLookup",
    "PRESETS",
    "audit_report",
    "canonical_in",
    "check_yaml",
    "class_stats",
    "effective_plan",
    "excluded_classes",
    "forecasts",
    "format_report",
    "instances_per_image",
    "lookup_names",
    "make_plan",
    "render_crop",
    "resolve_ids",
    "sample_crops",
    "split_tokens",
    "summarize",
    "summarize_files",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
