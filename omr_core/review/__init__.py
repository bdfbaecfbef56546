"""One score page: images and PDF pages, staves, inference at the training scale, reconstruction of thin symbols, reading the music (notes, MusicXML).

What the CLI and the dashboard use is exported here and imported on first use (the heavy modules load
only when a name of theirs is asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omr_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from omr_core.review.annotated_page import NoteTruth, deepscores_page_from_bytes, load_deepscores_page
    from omr_core.review.images import PageImage, load_page, page_count
    from omr_core.review.inference import LoadedModel, load_model
    from omr_core.review.models import list_models, models_dir, shipped_models, trained_imgsz
    from omr_core.review.musicxml import midi_bytes, musicxml_bytes, system_reading, verovio_svg
    from omr_core.review.pipeline import (
        LAYER_COLORS,
        ReviewResult,
        draw_overlay,
        json_bytes,
        review_page,
        write_json,
        write_png,
    )
    from omr_core.review.reading import Reading
    from omr_core.review.reading_pipeline import read_deepscores_page, read_review
    from omr_core.review.reconstruct import parse_noteheads

#: Exported name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    "LAYER_COLORS": "pipeline",
    "LoadedModel": "inference",
    "NoteTruth": "annotated_page",
    "PageImage": "images",
    "Reading": "reading",
    "ReviewResult": "pipeline",
    "deepscores_page_from_bytes": "annotated_page",
    "draw_overlay": "pipeline",
    "json_bytes": "pipeline",
    "list_models": "models",
    "load_deepscores_page": "annotated_page",
    "load_model": "inference",
    "load_page": "images",
    "midi_bytes": "musicxml",
    "models_dir": "models",
    "musicxml_bytes": "musicxml",
    "page_count": "images",
    "parse_noteheads": "reconstruct",
    "read_deepscores_page": "reading_pipeline",
    "read_review": "reading_pipeline",
    "review_page": "pipeline",
    "shipped_models": "models",
    "system_reading": "musicxml",
    "trained_imgsz": "models",
    "verovio_svg": "musicxml",
    "write_json": "pipeline",
    "write_png": "pipeline",
}
__all__ = [
    "LAYER_COLORS",
    "LoadedModel",
    "NoteTruth",
    "PageImage",
    "Reading",
    "ReviewResult",
    "deepscores_page_from_bytes",
    "draw_overlay",
    "json_bytes",
    "list_models",
    "load_deepscores_page",
    "load_model",
    "load_page",
    "midi_bytes",
    "models_dir",
    "musicxml_bytes",
    "page_count",
    "parse_noteheads",
    "read_deepscores_page",
    "read_review",
    "review_page",
    "shipped_models",
    "system_reading",
    "trained_imgsz",
    "verovio_svg",
    "write_json",
    "write_png",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
