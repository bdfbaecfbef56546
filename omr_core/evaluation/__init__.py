"""A model measured on a dataset: validation, matching, failure cases, figures, crops, confidence, reports, benchmarks.

What the CLI and the dashboard use is exported here and imported on first use (the heavy modules load
only when a name of theirs is asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omr_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from omr_core.evaluation.compare import compare_evaluations, worse_classes
    from omr_core.evaluation.confidence import class_curves, confidence_table
    from omr_core.evaluation.crops import case_boxes, crop_case
    from omr_core.evaluation.evaluate import (
        Evaluation,
        data_splits,
        default_batch,
        find_cached,
        list_evaluations,
        run_choices,
    )
    from omr_core.evaluation.figures import (
        ORDERS,
        compare_figure,
        confidence_figure,
        confusion_figure,
        per_class_figure,
    )
    from omr_core.evaluation.match import FAILURE_KINDS, KIND_LABELS, cell_cases, confusion_counts, failure_counts
    from omr_core.evaluation.model_bench import HELDOUT_SEED, bench_model, per_class_markdown
    from omr_core.evaluation.notes import (
        DEFAULT_PAGES,
        NotesEvaluation,
        WrongNoteCase,
        evaluate_notes,
        load_notes,
        truth_pages,
        wrong_note_crop,
    )
    from omr_core.evaluation.notes_score import notes_read_right
    from omr_core.evaluation.reading_bench import bench_reading, model_detector
    from omr_core.evaluation.reconstruct_bench import bench_reconstruct, format_rows
    from omr_core.evaluation.report import (
        NO_LABELS,
        confusion_export,
        export_evaluation,
        failures_export,
        per_class_export,
        readable_cases,
        report_html,
    )
    from omr_core.evaluation.status import STATUS_HELP

#: Exported name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    "DEFAULT_PAGES": "notes",
    "Evaluation": "evaluate",
    "FAILURE_KINDS": "match",
    "HELDOUT_SEED": "model_bench",
    "KIND_LABELS": "match",
    "NO_LABELS": "report",
    "NotesEvaluation": "notes",
    "ORDERS": "figures",
    "STATUS_HELP": "status",
    "WrongNoteCase": "notes",
    "bench_model": "model_bench",
    "bench_reading": "reading_bench",
    "bench_reconstruct": "reconstruct_bench",
    "case_boxes": "crops",
    "cell_cases": "match",
    "class_curves": "confidence",
    "compare_evaluations": "compare",
    "compare_figure": "figures",
    "confidence_figure": "figures",
    "confidence_table": "confidence",
    "confusion_counts": "match",
    "confusion_export": "report",
    "confusion_figure": "figures",
    "crop_case": "crops",
    "data_splits": "evaluate",
    "default_batch": "evaluate",
    "evaluate_notes": "notes",
    "export_evaluation": "report",
    "failure_counts": "match",
    "failures_export": "report",
    "find_cached": "evaluate",
    "format_rows": "reconstruct_bench",
    "list_evaluations": "evaluate",
    "load_notes": "notes",
    "model_detector": "reading_bench",
    "notes_read_right": "notes_score",
    "per_class_export": "report",
    "per_class_figure": "figures",
    "per_class_markdown": "model_bench",
    "readable_cases": "report",
    "report_html": "report",
    "run_choices": "evaluate",
    "truth_pages": "notes",
    "worse_classes": "compare",
    "wrong_note_crop": "notes",
}
__all__ = [
    "DEFAULT_PAGES",
    "Evaluation",
    "FAILURE_KINDS",
    "HELDOUT_SEED",
    "KIND_LABELS",
    "NO_LABELS",
    "NotesEvaluation",
    "ORDERS",
    "STATUS_HELP",
    "WrongNoteCase",
    "bench_model",
    "bench_reading",
    "bench_reconstruct",
    "case_boxes",
    "cell_cases",
    "class_curves",
    "compare_evaluations",
    "compare_figure",
    "confidence_figure",
    "confidence_table",
    "confusion_counts",
    "confusion_export",
    "confusion_figure",
    "crop_case",
    "data_splits",
    "default_batch",
    "evaluate_notes",
    "export_evaluation",
    "failure_counts",
    "failures_export",
    "find_cached",
    "format_rows",
    "list_evaluations",
    "load_notes",
    "model_detector",
    "notes_read_right",
    "per_class_export",
    "per_class_figure",
    "per_class_markdown",
    "readable_cases",
    "report_html",
    "run_choices",
    "truth_pages",
    "worse_classes",
    "wrong_note_crop",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
