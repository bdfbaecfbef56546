"""What a sweep maximises: mAP50-95 or mAP50 (results.csv), the mean AP of chosen classes or of the critical set
(each epoch's per-class validation AP, class_ap.jsonl), or notes read right on the pages with note truth."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from omr_core.errors import OmrError
from omr_core.training.runs import CLASS_AP, MAP5095

#: Objectives read from results.csv after every epoch (higher is better).
COLUMN_OBJECTIVES: dict[str, str] = {"map50-95": MAP5095, "map50": "metrics/mAP50(B)"}
#: The mean AP50-95 of chosen classes (``classes``) or of the critical classes the data has (``critical``), from each
#: epoch's validation.
CLASS_OBJECTIVES = ("classes", "critical")
#: Notes read right (share of notes with the right pitch) on the validation pages with note truth, read from the
#: trial's best.pt once it ends (a final value only: reading pages every epoch would cost more than the epoch);
#: the pruner meanwhile compares the trials' mAP50-95.
NOTES = "notes"
OBJECTIVES: tuple[str, ...] = (*COLUMN_OBJECTIVES, *CLASS_OBJECTIVES, NOTES)
#: Pages read for the notes objective (each is one tiled inference plus a reading: 1-3 s on a CPU core).
NOTES_PAGES = 20


class ObjectiveError(OmrError):
    """An objective the data cannot give."""


def results_rows(run_dir: Path) -> list[dict[str, float]]:
    """results.csv rows as floats (columns stripped), complete lines only."""
    p = run_dir / "results.csv"
    try:
        lines = p.read_text().splitlines()
    except OSError:
        return []
    if len(lines) < 2:
        return []
    head = [h.strip() for h in lines[0].split(",")]
    out = []
    for ln in lines[1:]:
        vals = ln.split(",")
        if len(vals) != len(head):
            continue
        try:
            out.append({h: float(v) for h, v in zip(head, vals)})
        except ValueError:
            continue
    return out


def class_ap_rows(run_dir: Path) -> list[dict[str, float]]:
    """Each validated epoch's AP50-95 per class (classes without a validation instance are absent)."""
    p = run_dir / CLASS_AP
    try:
        raw = p.read_bytes()
    except OSError:
        return []
    out = []
    for ln in raw.splitlines():
        try:
            out.append({str(k): float(v) for k, v in orjson.loads(ln).get("ap50_95", {}).items()})
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            continue  # a line being written
    return out


def mean_class_ap(row: dict[str, float], classes: Sequence[str]) -> float | None:
    """Mean AP50-95 of ``classes`` in one epoch, over those that have validation instances; None if none has."""
    vals = [row[c] for c in classes if c in row and math.isfinite(row[c])]
    return sum(vals) / len(vals) if vals else None


def epoch_values(objective: str, classes: Sequence[str], run_dir: Path) -> list[float | None]:
    """The objective after each validated epoch so far (what the pruner is told); notes: its mAP50-95."""
    if objective in CLASS_OBJECTIVES:
        return [mean_class_ap(r, classes) for r in class_ap_rows(run_dir)]
    col = COLUMN_OBJECTIVES.get(objective, MAP5095)
    return [r.get(col) for r in results_rows(run_dir)]


def data_names(data: str) -> list[str]:
    """The class names of a data.yaml ([] for one Ultralytics resolves itself, like coco8.yaml)."""
    from omr_core.datasets.yolo import read_names

    try:
        return [str(n) for n in read_names(data)]
    except Exception:
        return []


def notes_pages(data: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """The validation pages of ``data`` with note truth (``(DeepScoresV2 file, image name)``)."""
    from omr_core.datasets.yolo import read_data_yaml
    from omr_core.evaluation.notes import data_truth_pages

    try:
        splits = read_data_yaml(data).splits
    except Exception:
        return []
    return data_truth_pages(data, [str(p) for p in splits.get("val", ())])


def resolve_classes(objective: str, classes: Sequence[str], data: str) -> tuple[str, ...]:
    """The classes the objective averages, checked against the data (``critical``: the critical ones it has).

    Raises:
        ObjectiveError: Unknown classes, no critical class, or (``notes``) no page with note truth.
    """
    if objective in COLUMN_OBJECTIVES:
        return ()
    if objective == NOTES:
        if not notes_pages(data):
            raise ObjectiveError(f"objective notes: no validation page of {data} carries note truth (pages engraved "
                                 "by `omr synth`, converted with `omr convert`, do); choose map50-95 or classes")
        return ()
    names = data_names(data)
    if objective == "critical":
        from omr_core.classes import class_table

        crit = {c.name for c in class_table().critical}
        picked = tuple(n for n in names if n in crit)
        if not picked:
            raise ObjectiveError(f"objective critical: {data} has none of the critical classes (`omr classes` marks "
                                 "them); name the classes instead: --objective classes --classes a,b")
        return picked
    if not classes:
        raise ObjectiveError("objective classes needs the classes, e.g. --classes noteheadBlackOnLine,clefG")
    unknown = [c for c in classes if names and c not in names]
    if unknown:
        import difflib

        hints = "; ".join(f"{u}: closest {', '.join(difflib.get_close_matches(u, names, 3)) or 'none'}" for u in unknown)
        raise ObjectiveError(f"objective classes: {', '.join(unknown)} not among the classes of {data} ({hints})")
    return tuple(classes)


def label(objective: str, classes: Sequence[str]) -> str:
    """The objective as people read it: ``map50-95``, ``mean AP50-95 of clefG, clefF``, ``notes read right``."""
    if objective in CLASS_OBJECTIVES:
        shown = ", ".join(classes[:6]) + (f" … ({len(classes)} classes)" if len(classes) > 6 else "")
        return f"mean AP50-95 of {'the critical classes ' if objective == 'critical' else ''}{shown}"
    return "notes read right (pitch, final)" if objective == NOTES else objective


def notes_value(model: str | os.PathLike[str], data: str, *, limit: int = NOTES_PAGES) -> float | None:
    """Notes read right (pitch) by ``model`` on the validation pages of ``data`` with note truth; None without any."""
    from omr_core.evaluation.notes_score import combine, notes_read_right
    from omr_core.evaluation.reading_bench import model_detector
    from omr_core.review.annotated_page import load_deepscores_page
    from omr_core.review.images import load_page
    from omr_core.review.reading_pipeline import read_symbols

    pages = notes_pages(data)[:limit]
    if not pages:
        return None
    detect = model_detector(Path(model))
    scores = []
    for src, name in pages:
        page = load_deepscores_page(src, name)
        gray = load_page(src.parent / "images" / name).gray
        scores.append(notes_read_right(read_symbols(gray, detect(page, gray)), page.truth))
    total = combine(scores)
    return total.pitch_share if total.notes else None
