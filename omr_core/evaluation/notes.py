"""Notes read right of an evaluation: the evaluated pages whose note truth is known, read from the model's detections.

mAP says whether boxes are right; a reader needs the notes. For an evaluation on a dataset converted from pages
engraved by `omr synth` (their noteheads carry the source pitch and duration), every page behind the evaluated
images is run through the model the way it was trained, read (`omr_core.review.reading`), scored against the
note truth, and every wrong note is explained (`omr_core.evaluation.note_causes`). The result is cached in the
evaluation folder.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.errors import OmrError
from omr_core.evaluation.evaluate import Evaluation, dataset_root

#: Pages read by default (each is a whole-page inference plus a few readings: about 1-3 s on a CPU core).
DEFAULT_PAGES = 20
_TILE = re.compile(r"_x\d+_y\d+$")


@dataclass(frozen=True)
class WrongNoteCase:
    """One note read wrong, with where to crop it and why.

    Attributes:
        image: The page image.
        bbox: The true notehead box (page pixels).
        truth: What it is (``F#5 1/2``: pitch and quarter length).
        read: What was read (``F5 1/2``; ``not read`` when no note was).
        cause: Which symbol made it wrong (see `omr_core.evaluation.note_causes`).
    """

    image: str
    bbox: tuple[float, float, float, float]
    truth: str
    read: str
    cause: str


@dataclass(frozen=True)
class NotesEvaluation:
    """Notes read right over the evaluated pages with note truth.

    Attributes:
        key: The evaluation's key and the threshold it was read at.
        conf: Detection threshold the pages were read at.
        pages: Pages read.
        notes: True notes on them.
        pitch_right: Notes with the right pitch.
        both_right: Notes with the right pitch and duration.
        wrong: The wrong notes.
        seconds: Time the reading took.
        message: Why nothing could be read ("" when pages were).
    """

    key: str
    conf: float
    pages: int = 0
    notes: int = 0
    pitch_right: int = 0
    both_right: int = 0
    wrong: tuple[WrongNoteCase, ...] = ()
    seconds: float = 0.0
    message: str = ""
    page_names: tuple[str, ...] = field(default=())

    @property
    def pitch_share(self) -> float:
        """Share of notes with the right pitch (nan without notes)."""
        return self.pitch_right / self.notes if self.notes else float("nan")

    @property
    def both_share(self) -> float:
        """Share of notes with the right pitch and duration (nan without notes)."""
        return self.both_right / self.notes if self.notes else float("nan")

    def causes(self) -> list[tuple[str, int]]:
        """Causes of the wrong notes, most frequent first (a note wrong for two reasons counts under both)."""
        c: Counter[str] = Counter()
        for w in self.wrong:
            for part in w.cause.split("; "):
                c[part] += 1
        return c.most_common()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        d = asdict(self)
        d["pitch_share"], d["both_share"] = self.pitch_share, self.both_share
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NotesEvaluation:
        """Inverse of `to_dict`."""
        wrong = tuple(WrongNoteCase(w["image"], tuple(w["bbox"]), w["truth"], w["read"], w["cause"]) for w in d["wrong"])  # type: ignore[arg-type]
        return cls(d["key"], float(d["conf"]), int(d["pages"]), int(d["notes"]), int(d["pitch_right"]), int(d["both_right"]),
                   wrong, float(d["seconds"]), str(d.get("message", "")), tuple(d.get("page_names", ())))


def _file(ev: Evaluation, conf: float) -> Path:
    return ev.folder / f"notes-c{conf:g}.json"


def _key(ev: Evaluation, conf: float, limit: int | None) -> str:
    return f"{ev.key}-c{conf:g}-n{limit}"


def truth_sources(ev: Evaluation) -> list[Path]:
    """The DeepScoresV2 files the evaluated dataset was converted from (its ``excluded_classes.json`` names them)."""
    return data_truth_sources(ev.data)


def data_truth_sources(data: str | os.PathLike[str]) -> list[Path]:
    """The DeepScoresV2 files a converted dataset came from (its ``excluded_classes.json`` names them)."""
    root = dataset_root(data)
    manifest = root / "excluded_classes.json"
    if not manifest.is_file():
        return []
    try:
        sources = json.loads(manifest.read_text(encoding="utf-8")).get("sources", [])
    except (OSError, ValueError, AttributeError):
        return []
    out = []
    for s in sources:
        p = Path(str(s))
        for cand in (p, root / p, Path.cwd() / p):
            if cand.suffix == ".json" and cand.is_file():
                out.append(cand.resolve())
                break
    return out


def truth_pages(ev: Evaluation) -> list[tuple[Path, str]]:
    """``(DeepScoresV2 file, page image name)`` of the evaluated pages (tiles map back to their page) whose
    noteheads carry note truth and whose image is next to the file."""
    return data_truth_pages(ev.data, [str(p) for p in ev.images()["path"]])


def data_truth_pages(data: str | os.PathLike[str], images: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, str]]:
    """``(DeepScoresV2 file, page image name)`` of the pages behind ``images`` of a converted dataset (tiles map
    back to their page) whose noteheads carry note truth and whose image is next to the file."""
    import orjson

    stems = {_TILE.sub("", Path(str(p)).stem) for p in images}
    out: list[tuple[Path, str]] = []
    for src in data_truth_sources(data):
        doc = orjson.loads(src.read_bytes())
        anns = doc.get("annotations", {})
        for im in doc.get("images", []):
            name = str(im.get("filename", ""))
            if Path(name).stem not in stems or not (src.parent / "images" / name).is_file():
                continue
            if any("pitch:" in str(anns.get(str(a), {}).get("comments", "")) for a in im.get("ann_ids", [])):
                out.append((src, name))
    return out


def load_notes(ev: Evaluation, conf: float | None = None) -> NotesEvaluation | None:
    """The cached notes reading of ``ev`` at ``conf`` (default: the evaluation's threshold), or None."""
    c = ev.conf if conf is None else conf
    f = _file(ev, c)
    if not f.is_file():
        return None
    try:
        got = NotesEvaluation.from_dict(json.loads(f.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return got if got.key.startswith(f"{ev.key}-c{c:g}-") else None


def evaluate_notes(
    ev: Evaluation,
    conf: float | None = None,
    *,
    limit: int | None = DEFAULT_PAGES,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> NotesEvaluation:
    """Read the evaluated pages with note truth from the evaluation's model and score the notes.

    Args:
        ev: The evaluation (its model and the dataset its images came from).
        conf: Detection threshold (default: the evaluation's).
        limit: Read at most this many pages (None: all).
        force: Read again even when a cached result exists.
        progress: Called with (pages done, pages total).

    Returns:
        The `NotesEvaluation` (with a ``message`` and no pages when the dataset has no pages with note truth).

    Raises:
        ModelError: The evaluation's model cannot be loaded.
    """
    from omr_core.evaluation.note_causes import explain_wrong_notes
    from omr_core.review.annotated_page import load_deepscores_page
    from omr_core.review.images import load_page
    from omr_core.review.inference import load_model, plan_inference, predict
    from omr_core.review.pipeline import write_json
    from omr_core.review.staff import NoStaffError, detect_staves

    c = ev.conf if conf is None else float(conf)
    if not force:
        cached = load_notes(ev, c)
        if cached is not None and cached.key == _key(ev, c, limit):
            return cached
    t0 = time.perf_counter()
    pages = truth_pages(ev)
    key = _key(ev, c, limit)
    if not pages:
        return NotesEvaluation(key, c, message=(
            f"none of the {ev.n_images} evaluated images comes from a page with note truth: notes read right needs a "
            "dataset converted (`omr convert`) from pages engraved by `omr synth`, whose noteheads carry pitch comments"))
    pages = pages[:limit] if limit is not None else pages
    model = load_model(ev.model)
    notes = pitch = both = 0
    wrong: list[WrongNoteCase] = []
    for k, (src, name) in enumerate(pages):
        page = load_deepscores_page(src, name)
        gray = load_page(src.parent / "images" / name).gray
        plan = plan_inference(model.info, int(gray.shape[1]), int(gray.shape[0]))
        dets = predict(model, gray, conf=c, iou=0.5, imgsz=plan.imgsz, tile=plan.tile is not None,
                       tile_size=plan.tile, overlap=plan.overlap)
        try:
            staves = detect_staves(gray)
        except NoStaffError:
            staves = None
        score, explained = explain_wrong_notes(gray, dets, page.glyphs, page.truth, page=staves)
        notes, pitch, both = notes + score.notes, pitch + score.pitch_right, both + score.both_right
        image = str(src.parent / "images" / name)
        wrong += [WrongNoteCase(image, e.wrong.bbox, _note(e.wrong.truth_pitch, e.wrong.truth_quarter_length),
                                _note(e.wrong.read_pitch, e.wrong.read_quarter_length), e.cause) for e in explained]
        if progress is not None:
            progress(k + 1, len(pages))
    out = NotesEvaluation(key, c, len(pages), notes, pitch, both, tuple(wrong), time.perf_counter() - t0,
                          page_names=tuple(n for _, n in pages))
    try:
        write_json(_file(ev, c), out.to_dict())
    except OSError as exc:
        raise OmrError(f"cannot write {_file(ev, c)}: {exc}") from exc
    return out


def _note(pitch: str | None, ql: Any) -> str:
    if pitch is None and ql is None:
        return "not read"
    return f"{pitch or '?'} {ql if ql is not None else '?'}"


def wrong_note_crop(case: WrongNoteCase, size: int = 160) -> np.ndarray:
    """An RGB crop of a wrong note with its true box drawn (the evaluation galleries' crop)."""
    from omr_core.evaluation.crops import crop_case

    return crop_case(case.image, gt_box=case.bbox, context=3.0, size=size)
