"""Benchmark reading the music: notes read right and time per page over the pages of a DeepScoresV2 file."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.evaluation.notes_score import NotesScore, combine, notes_read_right
from omr_core.review.annotated_page import DeepScoresPage, load_deepscores_page
from omr_core.review.reading import Reading, SymbolLike

#: Targets of issue #14 (reading from ground-truth symbols on engraved pages).
PITCH_TARGET = 0.995
BOTH_TARGET = 0.97
SECONDS_TARGET = 1.0
#: Target of issue #14 for reading from the reference model's detections (pitch; pitch + duration has none).
MODEL_PITCH_TARGET = 0.95

#: Detections for a page: called with the page and its grayscale image, returns symbols to read.
Detector = Callable[[DeepScoresPage, np.ndarray], Sequence[SymbolLike]]


@dataclass(frozen=True)
class PageResult:
    """One page of the benchmark."""

    filename: str
    score: NotesScore
    read_s: float
    cpu_s: float
    export_ok: bool
    export_message: str = ""
    detect_cpu_s: float = 0.0


@dataclass
class ReadBenchReport:
    """Notes read right, export checks and reading time over a set of pages."""

    pages: list[PageResult] = field(default_factory=list)

    @property
    def total(self) -> NotesScore:
        """All pages' notes as one score."""
        return combine([p.score for p in self.pages])

    def rows(self, label: str = "", *, model: bool = False) -> list[dict[str, Any]]:
        """Benchmark rows ``{figure, value, target, ok}``; ``model``: the pages were read from a model's detections
        (its pitch target, no pitch + duration target, and the detection time per page)."""
        t = self.total
        pitch_target, both_target = (MODEL_PITCH_TARGET, None) if model else (PITCH_TARGET, BOTH_TARGET)
        times = sorted(p.read_s for p in self.pages) or [0.0]
        cpu = sorted(p.cpu_s for p in self.pages) or [0.0]
        exports = sum(p.export_ok for p in self.pages)
        pre = f"[{label}, {len(self.pages)} pages, {t.notes} notes] " if label else ""
        return [
            {"figure": f"{pre}pitch right", "value": f"{t.pitch_share:.4f}", "target": f">= {pitch_target}", "ok": t.pitch_share >= pitch_target},
            {"figure": f"{pre}pitch + duration right", "value": f"{t.both_share:.4f}", "target": f">= {both_target}" if both_target else "",
             "ok": both_target is None or t.both_share >= both_target},
            {"figure": f"{pre}MusicXML opens in music21 and verovio", "value": f"{exports}/{len(self.pages)}", "target": "all", "ok": exports == len(self.pages)},
            {"figure": f"{pre}reading per page, CPU on one core, median (ms)", "value": round(float(np.median(cpu)) * 1000, 1), "target": "", "ok": True},
            {"figure": f"{pre}reading per page, CPU on one core, slowest (ms)", "value": round(cpu[-1] * 1000, 1), "target": f"<= {SECONDS_TARGET * 1000:.0f}", "ok": cpu[-1] <= SECONDS_TARGET},
            {"figure": f"{pre}reading per page, wall clock, median / slowest (ms)", "value": f"{float(np.median(times)) * 1000:.0f} / {times[-1] * 1000:.0f}", "target": "", "ok": True},
        ] + ([{"figure": f"{pre}detection per page (the model as trained), CPU, median (s)",
               "value": round(float(np.median([p.detect_cpu_s for p in self.pages] or [0.0])), 2), "target": "", "ok": True}]
             if model else [])


def bench_reading(
    json_path: str | Path,
    *,
    detector: Detector | None = None,
    check_exports: bool = True,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReadBenchReport:
    """Read every page of a DeepScoresV2 file that carries note truth and score it.

    Args:
        json_path: ``deepscores_*.json`` written by `omr synth` (images next to it).
        detector: Where the symbols come from; None reads the page's own annotations (ground truth).
        check_exports: Write MusicXML and reopen it in music21 and verovio.
        limit: Read only the first pages.
        progress: Called with (pages done, pages total).

    The time per page is the reading alone after detection: staff detection, stems rebuilt when missing,
    barlines, rhythm and pitch (image decoding and the MusicXML export are not counted), as CPU time of this
    process (the benchmark runs single-threaded: one core) and as wall-clock time.
    """
    import orjson

    from omr_core.review.images import load_page
    from omr_core.review.musicxml import check_musicxml, musicxml_bytes
    from omr_core.review.reading_pipeline import read_symbols

    doc = orjson.loads(Path(json_path).read_bytes())
    n = len(doc["images"]) if limit is None else min(limit, len(doc["images"]))
    del doc
    report = ReadBenchReport()
    for k in range(n):
        page = load_deepscores_page(json_path, k)
        if not page.truth or page.image is None:
            if progress is not None:
                progress(k + 1, n)
            continue
        gray = load_page(page.image).gray
        c_det = time.process_time()
        symbols = page.glyphs if detector is None else detector(page, gray)
        c_det = time.process_time() - c_det
        t0, c0 = time.perf_counter(), time.process_time()
        reading: Reading = read_symbols(gray, symbols)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        ok, msg = True, ""
        if check_exports:
            chk = check_musicxml(musicxml_bytes(reading, title=page.filename))
            ok, msg = chk.music21_ok and chk.verovio_ok, chk.message
        report.pages.append(PageResult(page.filename, notes_read_right(reading, page.truth), dt, dc, ok, msg, c_det))
        if progress is not None:
            progress(k + 1, n)
    return report


def model_detector(path: str | Path, *, conf: float = 0.25) -> Detector:
    """Detections of a model (loaded once) as the symbols to read, run the way it was trained (tile size and
    imgsz recorded in the checkpoint, as Review a score runs it): the reference-model half of the benchmark."""
    from omr_core.review.inference import load_model, plan_inference, predict

    model = load_model(path)

    def detect(page: DeepScoresPage, gray: np.ndarray) -> Sequence[SymbolLike]:
        plan = plan_inference(model.info, int(gray.shape[1]), int(gray.shape[0]))
        return predict(model, gray, conf=conf, iou=0.5, imgsz=plan.imgsz, tile=plan.tile is not None,
                       tile_size=plan.tile, overlap=plan.overlap, device="cpu")

    return detect
