"""Widgets of the "Per-class failures" page: per-class table, clickable confusion matrix, paged galleries."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from omr_core.errors import OmrError
from omr_core.evaluation import (
    FAILURE_KINDS,
    KIND_LABELS,
    ORDERS,
    STATUS_HELP,
    Evaluation,
    NotesEvaluation,
    WrongNoteCase,
    case_boxes,
    cell_cases,
    confusion_counts,
    confusion_figure,
    crop_case,
    readable_cases,
    wrong_note_crop,
)

PAGE_SIZES = (12, 24, 48, 96)
_METRIC_COLS = ("precision", "recall", "f1", "ap50", "ap75", "ap50_95")


def per_class_view(per: pd.DataFrame) -> None:
    """The per-class table (already worst first) with 3-decimal metrics and 'no labels' marked."""
    cols = ["status", "class", "group", "images", "instances", *_METRIC_COLS, "tp", "fn", "fp", "fp_class", "fp_loc", "fp_dup", "fp_bg", "fn_below_threshold"]
    view = per[[c for c in cols if c in per.columns]]
    cfg: dict[str, Any] = {c: st.column_config.NumberColumn(c.replace("_", "-").replace("ap", "AP"), format="%.3f") for c in _METRIC_COLS}
    cfg.update(
        {
            "status": st.column_config.TextColumn("status", help=STATUS_HELP, width="large"),
            "fn_below_threshold": st.column_config.NumberColumn("FN found below thr.", help="misses a correct detection found below the threshold"),
            "fp_class": st.column_config.NumberColumn("FP wrong class"),
            "fp_loc": st.column_config.NumberColumn("FP localisation"),
            "fp_dup": st.column_config.NumberColumn("FP duplicate"),
            "fp_bg": st.column_config.NumberColumn("FP background"),
        }
    )
    st.dataframe(view, hide_index=True, column_config=cfg, width="stretch", height=min(38 + 35 * len(view), 560), key="fail_per_class_table")


def confusion_view(ev: Evaluation, cases: pd.DataFrame, groups: Sequence[str]) -> tuple[int, int] | None:
    """Draw the confusion matrix with its controls; return the (predicted, true) cell picked by click or selectboxes."""
    nc = ev.nc
    c1, c2, c3, c4 = st.columns(4)
    order = c1.selectbox("Order classes by", ORDERS, key="fail_cm_order", help="group: class groups of DeepScoresV2, separated by lines")
    hide = c2.checkbox("Hide empty classes", value=True, key="fail_cm_hide")
    norm = c3.checkbox("Share of true class", value=False, key="fail_cm_norm")
    correct = c4.checkbox("Show correct (diagonal)", value=True, key="fail_cm_diag")
    counts = confusion_counts(cases, nc)
    fig = confusion_figure(counts, ev.names, groups, order=order, hide_empty=hide, normalize=norm, show_correct=correct)
    st.caption("Click a cell (or box-select) to list its cases; x: true class, y: predicted class, background last.")
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box"), key="fail_cm_chart", width="content")
    picked = _picked_cell(event, nc)
    labels = [*ev.names, "background"]
    with st.expander("Pick a cell by name", expanded=picked is None):
        a, b = st.columns(2)
        t = a.selectbox("True class", range(nc + 1), format_func=lambda i: labels[i], key="fail_cm_true", index=None)
        p = b.selectbox("Predicted class", range(nc + 1), format_func=lambda i: labels[i], key="fail_cm_pred", index=None)
        if picked is None and t is not None and p is not None:
            picked = (int(p), int(t))
    return picked


def _picked_cell(event: object, nc: int) -> tuple[int, int] | None:
    """The (predicted, true) cell of the first selected point, or None (selection payloads vary by version)."""
    try:
        points = event["selection"]["points"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    for pt in points or []:
        cd = pt.get("customdata") if isinstance(pt, dict) else None
        if isinstance(cd, dict):  # a typed-array row arrives as {"0": .., "1": ..}
            cd = [cd[k] for k in sorted(cd, key=lambda k: int(k))]
        try:
            p, t = int(cd[0]), int(cd[1])  # type: ignore[index]
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if 0 <= p <= nc and 0 <= t <= nc:
            return p, t
    return None


@st.cache_data(max_entries=4000, show_spinner=False)
def _crop_png(path: str, mtime: int, gt: tuple[float, ...] | None, pred: tuple[float, ...] | None, size: int) -> np.ndarray:
    return crop_case(path, gt, pred, size=size)


def _caption(row: pd.Series) -> str:
    bits = [row["kind_label"]]
    if row["kind"] == "fn":
        bits.append(f"missed {row['true_class']}")
        if row["pred_class"]:
            bits.append(f"seen as {row['pred_class']}")
        if not math.isnan(row["below_conf"]):
            bits.append(f"found at conf {row['below_conf']:.2f} (below threshold)")
    else:
        bits.append(f"pred {row['pred_class']} {row['conf']:.2f}")
        if row["kind"] == "fp_class":
            bits.append(f"true {row['true_class']}")
        elif not math.isnan(row["iou"]) and row["kind"] != "fp_bg":
            bits.append(f"IoU {row['iou']:.2f}")
    bits.append(str(row["image"]))
    return " · ".join(bits)


def gallery(ev: Evaluation, cases: pd.DataFrame, key: str, columns: int = 6, size: int = 192) -> None:
    """A paged grid of case crops (GT green, prediction red); only the visible page is cropped."""
    n = len(cases)
    if not n:
        st.info("No cases.")
        return
    c1, c2, c3 = st.columns([1, 1, 2])
    per_page = c1.selectbox("Per page", PAGE_SIZES, index=1, key=f"{key}_size")
    pages = max(1, math.ceil(n / per_page))
    page = int(c2.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key=f"{key}_page"))
    c3.caption(f"{n} cases · showing {(page - 1) * per_page + 1}–{min(page * per_page, n)}")
    chunk = cases.iloc[(page - 1) * per_page : page * per_page]
    rows = readable_cases(ev, chunk)
    images = ev.images()
    cols = st.columns(columns)
    for k in range(len(rows)):  # rows keeps chunk's order (and index): position k is the same case in both
        row, case = rows.iloc[k], chunk.iloc[k]
        path = str(images["path"].iloc[int(case["image_id"])])
        g, p = case_boxes(case)
        with cols[k % columns]:
            try:
                img = _crop_png(path, _mtime(path), g, p, size)
            except OmrError as exc:
                st.warning(str(exc))
                continue
            st.image(img, caption=_caption(row), width="stretch")


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def sort_cases(cases: pd.DataFrame, how: str) -> pd.DataFrame:
    """Order gallery cases: most confident first (misses by the confidence they were found at), or by image."""
    if how == "image":
        return cases.sort_values(["image_id", "kind"], kind="stable")
    key = cases["conf"].fillna(cases["below_conf"]).fillna(-1.0)
    return cases.assign(_k=key).sort_values(["_k", "image_id"], ascending=[False, True], kind="stable").drop(columns="_k")


def cell_view(ev: Evaluation, cases: pd.DataFrame, cell: tuple[int, int]) -> None:
    """List and show the cases behind a confusion cell."""
    p, t = cell
    labels = [*ev.names, "background"]
    sel = cell_cases(cases, p, t, ev.nc)
    st.markdown(f"**True {labels[t]} · predicted {labels[p]}**: {len(sel)} case(s)")
    if not len(sel):
        return
    st.dataframe(readable_cases(ev, sel).drop(columns=["kind"]), hide_index=True, width="stretch", height=220, key="fail_cell_table")
    gallery(ev, sort_cases(sel, "confidence"), key="fail_cell_gallery")


def failure_options(counts: pd.DataFrame) -> list[int]:
    """Class indices with failures, most failures first."""
    tot = counts[["fn", "fp"]].sum(axis=1)
    order = counts.assign(_t=tot).sort_values(["_t", "class"], ascending=[False, True])
    return [int(i) for i in order[order["_t"] > 0]["class_index"]]


KIND_CHOICES = {k: KIND_LABELS[k] for k in FAILURE_KINDS}


ALL_CAUSES = "all causes"


@st.cache_data(show_spinner=False, max_entries=512)
def _note_crop(image: str, mtime: int, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    return wrong_note_crop(WrongNoteCase(image, box, "", "", ""), size=size)


def notes_view(notes: NotesEvaluation, key: str, columns: int = 6) -> None:
    """Notes read right: the two shares, the causes of the wrong notes, and the wrong notes as crops."""
    c1, c2, c3 = st.columns(3)
    c1.metric("Pitch right", f"{notes.pitch_share:.3f}", help=f"{notes.pitch_right} of {notes.notes} notes")
    c2.metric("Pitch + duration right", f"{notes.both_share:.3f}", help=f"{notes.both_right} of {notes.notes} notes")
    c3.metric("Wrong notes", len(notes.wrong), help=f"on {notes.pages} pages, read at threshold {notes.conf:g}")
    if not notes.wrong:
        st.success(f"Every one of the {notes.notes} notes was read right.")
        return
    causes = notes.causes()
    st.dataframe(pd.DataFrame(causes, columns=["cause", "wrong notes"]), hide_index=True, width="stretch",
                 height=min(38 + 35 * len(causes), 320), key=f"{key}_causes")
    pick = st.selectbox("Cause", [ALL_CAUSES, *(c for c, _ in causes)], key=f"{key}_cause",
                        format_func=lambda c: c if c == ALL_CAUSES else f"{c} ({dict(causes)[c]})")
    chosen = [w for w in notes.wrong if pick == ALL_CAUSES or pick in w.cause.split("; ")]
    per_page = 24
    pages = max(1, math.ceil(len(chosen) / per_page))
    page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key=f"{key}_page_{pick}"))
    st.caption(f"{len(chosen)} wrong notes · green: the true notehead · showing {(page - 1) * per_page + 1}–"
               f"{min(page * per_page, len(chosen))}")
    cols = st.columns(columns)
    for k, w in enumerate(chosen[(page - 1) * per_page : page * per_page]):
        with cols[k % columns]:
            try:
                img = _note_crop(w.image, _mtime(w.image), w.bbox, 160)
            except OmrError as exc:
                st.warning(str(exc))
                continue
            st.image(img, caption=f"should be {w.truth} · read {w.read} · {w.cause}", width="stretch")
