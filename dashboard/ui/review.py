"""Widgets and the Plotly overlay of the "Review a score" page."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from omr_core.atomic import write_bytes
from omr_core.classes import GROUPS, group_color
from omr_core.raster import encode_png
from omr_core.review import (
    LAYER_COLORS,
    LoadedModel,
    PageImage,
    Reading,
    ReviewResult,
    load_model,
    load_page,
    musicxml_bytes,
    page_count,
    read_review,
    review_page,
    system_reading,
    verovio_svg,
)

#: Layers the overlay can show (key -> label).
LAYERS: dict[str, str] = {
    "boxes": "detection boxes",
    "staff": "staff lines",
    "stem": "stems (rebuilt)",
    "ledger": "ledger lines (rebuilt)",
}
#: Longest side of the page picture sent to the browser (zooming shows the boxes in page pixels anyway).
MAX_DISPLAY_SIDE = 2400


def digest(data: bytes) -> str:
    """Short content hash used as a cache key for uploads."""
    return hashlib.sha256(data).hexdigest()[:16]


@st.cache_data(max_entries=16, show_spinner=False)
def count_pages(key: str, _data: bytes) -> int:
    """Pages of an uploaded file (cached by content hash ``key``)."""
    return page_count(_data)


@st.cache_data(max_entries=8, show_spinner="Reading the page…")
def load_page_cached(key: str, page: int, name: str, _data: bytes) -> PageImage:
    """One page of an upload as grayscale (cached by content hash ``key`` and page)."""
    return load_page(_data, page=page, source=name)


@st.cache_resource(max_entries=2, show_spinner="Loading the model (once)…")
def model_cached(path: str, mtime: float) -> LoadedModel:
    """The model at ``path`` loaded once per file version (``mtime`` is part of the key)."""
    return load_model(path)


@st.cache_data(max_entries=8, show_spinner="Reviewing the page…")
def review_cached(
    page_key: str,
    model_key: str,
    heads_key: str,
    conf: float,
    iou: float,
    imgsz: int | None,
    tile: bool | None,
    source: str,
    _gray: np.ndarray,
    _model: LoadedModel | None,
    _heads: list[Any] | None,
) -> ReviewResult:
    """`review_page` cached on the page, model, notehead list and settings (None: as the model was trained)."""
    return review_page(
        _gray, source=source, model=_model, noteheads=_heads, conf=conf, iou=iou, imgsz=imgsz, tile=tile
    )


def save_upload(name: str, data: bytes) -> Path:
    """Write an uploaded model to a private temp folder (a model is loaded from a file), named by content."""
    d = Path(tempfile.gettempdir()) / f"omr-review-models-{os.getuid() if hasattr(os, 'getuid') else 0}"
    d.mkdir(mode=0o700, exist_ok=True)
    p = d / f"{digest(data)}-{Path(name).name}"
    if not p.exists():
        write_bytes(p, data)
    return p


def _page_png_uri(gray: np.ndarray) -> str:
    import cv2

    h, w = gray.shape
    scale = min(1.0, MAX_DISPLAY_SIDE / max(h, w))
    img = gray if scale >= 1.0 else cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    return "data:image/png;base64," + base64.b64encode(encode_png(img)).decode("ascii")


@st.cache_data(max_entries=8, show_spinner=False)
def page_uri_cached(page_key: str, _gray: np.ndarray) -> str:
    """The page as a PNG data URI for the figure background (cached per page)."""
    return _page_png_uri(_gray)


def _rect_path(boxes: list[tuple[float, float, float, float]]) -> tuple[list[float | None], list[float | None]]:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for x0, y0, x1, y1 in boxes:
        xs += [x0, x1, x1, x0, x0, None]
        ys += [y0, y0, y1, y1, y0, None]
    return xs, ys


def overlay_figure(
    result: ReviewResult,
    page_uri: str,
    *,
    groups: set[str] | None = None,
    layers: set[str] | None = None,
    height: int = 1100,
) -> go.Figure:
    """Zoomable overlay: the page as background, boxes per class group, staff lines, stems, ledger lines.

    Names and confidences appear on hover only, so no label covers the music.
    """
    layers = set(LAYERS) if layers is None else layers
    w, h = result.width, result.height
    fig = go.Figure()
    fig.add_layout_image(
        source=page_uri, xref="x", yref="y", x=0, y=0, sizex=w, sizey=h, sizing="stretch", layer="below", opacity=1.0
    )
    if "boxes" in layers:
        # (bbox, hover text) per group; without a model the uploaded noteheads are the boxes.
        by_group: dict[str, list[tuple[tuple[float, float, float, float], str]]] = {}
        for d in result.detections:
            if groups is None or d.group in groups:
                by_group.setdefault(d.group, []).append((d.bbox, f"{d.name}<br>conf {d.conf:.2f}"))
        if not result.detections:
            for i, n in enumerate(result.noteheads):
                by_group.setdefault("noteheads", []).append((n.bbox, f"{n.name} (input #{i})"))
        for g in [g for g in GROUPS if g in by_group]:
            ds = by_group[g]
            color = group_color(g)
            xs, ys = _rect_path([b for b, _ in ds])
            fig.add_trace(
                go.Scatter(x=xs, y=ys, mode="lines", line={"color": color, "width": 1}, name=f"{g} ({len(ds)})", legendgroup=g, hoverinfo="skip")
            )
            fig.add_trace(
                go.Scatter(
                    x=[(b[0] + b[2]) / 2 for b, _ in ds],
                    y=[(b[1] + b[3]) / 2 for b, _ in ds],
                    mode="markers",
                    marker={"size": 10, "color": "rgba(0,0,0,0)"},
                    text=[f"{t}<br>{b[2] - b[0]:.0f}×{b[3] - b[1]:.0f} px" for b, t in ds],
                    hovertemplate="%{text}<extra></extra>",
                    legendgroup=g,
                    showlegend=False,
                    name=g,
                )
            )
    if "staff" in layers and result.staves:
        xs, ys = [], []
        for s in result.staves:
            for i in range(5):
                xs += [s.x0, s.x1, None]
                ys += [s.y_at(i, s.x0), s.y_at(i, s.x1), None]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": LAYER_COLORS["staff"], "width": 1}, name=f"staff lines ({len(result.staves)} staves)", hoverinfo="skip", opacity=0.8)
        )
    if "stem" in layers and result.stems:
        xs, ys, tx = [], [], []
        for st_ in result.stems:
            xc = (st_.bbox[0] + st_.bbox[2]) / 2
            label = f"stem {st_.direction} ({st_.source}), {len(st_.noteheads)} notehead(s)"
            xs += [xc, xc, None]
            ys += [st_.bbox[1], st_.bbox[3], None]
            tx += [label, label, ""]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": LAYER_COLORS["stem"], "width": 3}, name=f"stems ({len(result.stems)})", text=tx, hovertemplate="%{text}<extra></extra>")
        )
    if "ledger" in layers and result.ledger_lines:
        xs, ys, tx = [], [], []
        for ll in result.ledger_lines:
            yc = (ll.bbox[1] + ll.bbox[3]) / 2
            label = f"ledger line {ll.position} (staff {ll.staff + 1}){'' if ll.confirmed else ', not seen in the ink'}"
            xs += [ll.bbox[0], ll.bbox[2], None]
            ys += [yc, yc, None]
            tx += [label, label, ""]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": LAYER_COLORS["ledger"], "width": 3, "dash": "solid"}, name=f"ledger lines ({len(result.ledger_lines)})", text=tx, hovertemplate="%{text}<extra></extra>")
        )
    fig.update_xaxes(range=[0, w], showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=[h, 0], showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(
        height=height,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        dragmode="pan",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        plot_bgcolor="white",
        uirevision=result.source,  # keep the zoom when toggles change
    )
    return fig


def counts_table(result: ReviewResult) -> pd.DataFrame:
    """Detections per class (with group) and the rebuilt layers, for the table beside the overlay."""
    from omr_core.classes import group_of

    rows = []
    for name, n in result.counts().items():
        if name.endswith("(rebuilt)") or name.endswith("(detected)"):
            rows.append({"class": name, "group": "rebuilt", "count": n})
        else:
            rows.append({"class": name, "group": group_of(name), "count": n})
    return pd.DataFrame(rows, columns=["class", "group", "count"])


@st.cache_data(max_entries=8, show_spinner="Reading the music…")
def read_cached(page_key: str, symbols_key: str, _gray: np.ndarray, _symbols: list[Any]) -> Reading:
    """`read_review` cached on the page and the symbols it reads (model settings or uploaded JSON)."""
    return read_review(_gray, _symbols)


@st.cache_data(max_entries=8, show_spinner="Engraving what was read…")
def system_svgs_cached(page_key: str, symbols_key: str, _reading: Reading) -> list[str]:
    """Each system of a reading rendered by verovio (SVG), cached like the reading."""
    return [verovio_svg(musicxml_bytes(system_reading(_reading, k))) for k in range(len(_reading.systems))]


def system_crop(gray: np.ndarray, reading: Reading, system: int) -> np.ndarray:
    """The page around one system (three staff spaces above and below)."""
    sy = reading.systems[system]
    sp = reading.staves[sy.staves[0]].space
    h, w = gray.shape
    y0, y1 = max(0, int(sy.y0 - 4 * sp)), min(h, int(sy.y1 + 4 * sp))
    x0, x1 = max(0, int(sy.x0 - 2 * sp)), min(w, int(sy.x1 + sp))
    return gray[y0:y1, x0:x1]
