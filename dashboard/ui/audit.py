"""Figures and widgets of the Class audit page: class table, distribution chart, crop gallery, density plots."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from omr_core.atomic import write_bytes
from omr_core.audit import (
    DatasetSummary,
    ExcludedClass,
    ExclusionPlan,
    NameLookup,
    class_stats,
    render_crop,
    sample_crops,
    summarize_files,
)
from omr_core.classes import GROUP_COLORS
from omr_core.datasets import LoadedDataset, find_datasets, load_dataset

# flags right after the name: at 1400 px the last columns are off-screen, and the flags are what matter most
TABLE_COLUMNS = [
    "id", "yolo_index", "name", "flags", "group", "instances", "images", "share",
    "median_w", "median_h", "median_w_at", "median_h_at",
]


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def dataset_key(paths: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """Cache key of a dataset: each path with its modification time."""
    return tuple((p, _mtime(p)) for p in paths)


# cache_resource, not cache_data: a dense dataset has ~1M annotation rows; cache_data would unpickle a copy on every
# rerun (every click). The tables are treated as read-only by every caller; the key includes each file's mtime.
@st.cache_resource(max_entries=3, show_spinner=False)
def load_cached(key: tuple[tuple[str, int], ...], images_dir: str | None = None) -> LoadedDataset:
    """Load a dataset once per (paths, mtimes)."""
    return load_dataset([p for p, _ in key], images_dir=images_dir or None)


@st.cache_resource(max_entries=3, show_spinner=False)
def summary_cached(
    key: tuple[tuple[str, int], ...], images_dir: str | None = None, _progress: Callable[[int, int, str], None] | None = None
) -> DatasetSummary:
    """The streaming audit of many files once per (paths, mtimes); each file comes from the Parquet cache or is read once."""
    return summarize_files([Path(p) for p, _ in key], images_dir=images_dir or None, progress=_progress)


def page_images(ds: LoadedDataset | DatasetSummary) -> pd.DataFrame:
    """The images table of a loaded dataset or of a streaming summary."""
    return ds.images if isinstance(ds, DatasetSummary) else ds.data.images


@st.cache_data(max_entries=16, show_spinner=False)
def stats_cached(key: tuple[tuple[str, int], ...], imgsz: int, images_dir: str | None = None) -> pd.DataFrame:
    """`class_stats` of a cached dataset at ``imgsz``."""
    return class_stats(load_cached(key, images_dir), imgsz)


def workspace_datasets(root: Path) -> list[str]:
    """Dataset files found in the workspace datasets folder (cached briefly: the folder changes rarely)."""
    return _find(str(root), _mtime(str(root)))


@st.cache_data(ttl=30, show_spinner=False)
def _find(root: str, _mtime_ns: int) -> list[str]:
    return [str(p) for p in find_datasets(root)]


def save_uploads(files: list[Any]) -> list[str]:
    """Write uploaded annotation files to a private temp folder (uploads have no page images)."""
    out = []
    d = Path(tempfile.gettempdir()) / f"omr-audit-uploads-{os.getuid() if hasattr(os, 'getuid') else 0}"
    d.mkdir(mode=0o700, exist_ok=True)
    for f in files:
        name = Path(f.name).name
        p = d / name
        data = f.getvalue()
        if not p.exists() or p.read_bytes() != data:
            write_bytes(p, data)
        out.append(str(p))
    return out


def table_view(stats: pd.DataFrame, query: str, excluded: set[str]) -> pd.DataFrame:
    """Rows of ``stats`` matching ``query`` (name, group, id or flag), with a readable flags column."""
    df = stats.copy()
    flags = []
    for r in df.to_dict("records"):
        f = []
        if r["name"] in excluded:
            f.append("EXCLUDED")
        if r["critical"]:
            f.append("critical")
        if r["no_samples"]:
            f.append("no samples (authors)")
        if r["empty"]:
            f.append("empty here")
        if r["tiny"]:
            f.append("< 2 px at imgsz")
        if not r["official"]:
            f.append("unofficial name")
        flags.append(", ".join(f))
    df["flags"] = flags
    df["share"] = df["share"] * 100
    q = query.strip().lower()
    if q:
        hay = (
            df["name"].str.lower() + " " + df["group"].str.lower() + " " + df["flags"].str.lower() + " #" + df["id"].astype(str)
        )
        if q.isdigit():
            df = df[(df["id"].astype("Int64") == int(q)).fillna(False) | hay.str.contains(q, regex=False)]
        else:
            df = df[hay.str.contains(q, regex=False)]
    return df[TABLE_COLUMNS]


def column_config(imgsz: int) -> dict[str, Any]:
    """st.dataframe column configuration of the class table."""
    cc = st.column_config
    return {
        "id": cc.NumberColumn("id", help="official DeepScoresV2 id", format="%d", width="small"),
        "yolo_index": cc.NumberColumn("YOLO", help="index in the source (DeepScoresV2: id - 1)", format="%d", width="small"),
        "name": cc.TextColumn("name", width="medium"),
        "group": cc.TextColumn("group", width=125),
        "instances": cc.NumberColumn("instances", format="localized"),
        "images": cc.NumberColumn("images", help="images containing the class", format="localized"),
        "share": cc.ProgressColumn("share %", help="share of all instances", format="%.2f%%", min_value=0.0, max_value=30.0),
        "median_w": cc.NumberColumn("med w px", format="%.1f"),
        "median_h": cc.NumberColumn("med h px", format="%.1f"),
        "median_w_at": cc.NumberColumn(f"w @{imgsz}", help=f"median width after letterbox to {imgsz}", format="%.2f"),
        "median_h_at": cc.NumberColumn(f"h @{imgsz}", help=f"median height after letterbox to {imgsz}", format="%.2f"),
        "flags": cc.TextColumn("flags", width=280),
    }


def distribution_figure(stats: pd.DataFrame, *, log_x: bool = True, hide_empty: bool = False, excluded: set[str] | None = None) -> go.Figure:
    """Horizontal bar chart of instances per class, coloured by group, tall enough for 136 labels."""
    excluded = excluded or set()
    df = stats[["name", "group", "instances", "id"]].copy()
    if hide_empty:
        df = df[df["instances"] > 0]
    df = df.sort_values("instances", ascending=True)
    fig = go.Figure()
    for group in [g for g in GROUP_COLORS if g in set(df["group"])]:
        sub = df[df["group"] == group]
        x = sub["instances"].to_numpy(dtype=float)
        if log_x:
            x = np.where(x > 0, x, np.nan)  # log axis: empty classes show as gaps (their label stays)
        fig.add_bar(
            y=sub["name"],
            x=x,
            orientation="h",
            name=group,
            marker_color=GROUP_COLORS[group],
            marker_pattern_shape=["/" if n in excluded else "" for n in sub["name"]],
            customdata=np.stack([sub["id"].astype(str), sub["instances"]], axis=1),
            hovertemplate="%{y} (id %{customdata[0]}): %{customdata[1]:,} instances<extra>" + group + "</extra>",
        )
    # The chart is ~2,400 px tall for 136 classes: a second, matched x-axis on top keeps the scale readable
    # without scrolling to the bottom. It needs a trace of its own (invisible) for plotly to draw it.
    pos = df[df["instances"] > 0]
    fig.add_scatter(
        x=pos["instances"], y=pos["name"], xaxis="x2", mode="markers", marker={"opacity": 0},
        showlegend=False, hoverinfo="skip",
    )
    top = float(pos["instances"].max()) if len(pos) else 1.0
    # one explicit range for both axes (plotly's "matches" draws odd ticks such as 1.000017 on log axes)
    x_range = [-0.1, float(np.log10(top)) + 0.1] if log_x else [0.0, top * 1.05]
    axis: dict[str, Any] = {"type": "log" if log_x else "linear", "title": "instances" + (" (log)" if log_x else ""), "range": x_range}
    if log_x:  # plain powers of ten: plotly's own log ticks on an overlaying axis read 1.000033, 9.99983
        ticks = [10**k for k in range(int(np.ceil(x_range[1])))]
        axis |= {"tickvals": ticks, "ticktext": [f"{t:,}" for t in ticks]}
    height = max(360, 15 * len(df) + 180)
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 140, "b": 30},
        barmode="overlay",
        # below the plotly toolbar (about 30 px), above the top axis
        legend={"orientation": "h", "yref": "container", "y": 1 - 34 / height, "yanchor": "top"},
        yaxis={"categoryorder": "array", "categoryarray": list(df["name"]), "tickfont": {"size": 10}, "automargin": True,
               "range": [-0.5, len(df) - 0.5]},
        xaxis=axis,
        xaxis2={**axis, "overlaying": "x", "side": "top", "showgrid": False},
    )
    return fig


def density_figure(before: np.ndarray, after: np.ndarray) -> go.Figure:
    """Overlaid histograms of labels per image before and after the plan."""
    fig = go.Figure()
    top = int(max(before.max(initial=0), after.max(initial=0))) + 1
    size = max(1, top // 40)
    fig.add_histogram(x=before, name="before plan", opacity=0.6, xbins={"start": 0, "end": top, "size": size})
    fig.add_histogram(x=after, name="after plan", opacity=0.6, xbins={"start": 0, "end": top, "size": size})
    fig.update_layout(
        barmode="overlay", height=300, margin={"l": 10, "r": 10, "t": 30, "b": 30},
        xaxis_title="labels per image", yaxis_title="images",
    )
    return fig


@st.cache_data(max_entries=256, show_spinner=False)
def gallery_cached(
    key: tuple[tuple[str, int], ...], name: str, n: int, seed: int, thumb: int, images_dir: str | None = None
) -> list[tuple[np.ndarray, str]]:
    """Thumbnails (RGB arrays) and captions of random crops of one class; keyed on paths+mtimes+class+seed."""
    ds = load_cached(key, images_dir)
    out = []
    for ref in sample_crops(ds, name, n=n, seed=seed):
        try:
            out.append((render_crop(ref.image_path, ref.box, thumb=thumb), ref.caption))
        except Exception as exc:  # one unreadable page must not hide the others
            out.append((np.full((thumb // 2, thumb, 3), 240, np.uint8), f"{ref.caption}: {exc}"))
    return out


def show_gallery(items: list[tuple[np.ndarray, str]], columns: int = 6) -> None:
    """Draw thumbnails in a grid with their captions."""
    cols = st.columns(columns)
    for i, (img, cap) in enumerate(items):
        with cols[i % columns]:
            st.image(img, caption=cap, width="stretch")


def plan_table(rows: Sequence[ExcludedClass]) -> pd.DataFrame:
    """The excluded classes as a small table: name, id, instances here, why."""
    return pd.DataFrame(
        {
            "name": [r.name for r in rows],
            "id": [r.id for r in rows],
            "instances": [r.instances for r in rows],
            "why": [r.reason for r in rows],
            "critical": ["critical (override)" if r.critical else "" for r in rows],
        }
    )


def show_lookup(found: NameLookup | None, universe: Sequence[str], add: Callable[[str, str], None], columns: int = 4) -> None:
    """What the last typed names did: the exact names added, and one button per candidate of each unknown name."""
    if found is None:
        return
    if found.exact:
        st.success("Added exactly: " + ", ".join(found.exact), icon=":material/check:")
    planned = set(st.session_state.get("audit_exclude", ()))
    for tok, cands in found.unknown:
        if tok.isdigit():
            st.warning(f"'{tok}' is not a class name: ids go in the \"Exclude by id\" field, where they are shown as "
                       "names and must be confirmed. Nothing was added for it.")
            continue
        if not cands:
            st.warning(f"'{tok}' is not a class name, and no class of this dataset is spelled like it. Nothing was added for it.")
            continue
        st.warning(
            f"'{tok}' is not a class name, so nothing was added for it. {len(cands)} classes contain it or are spelled "
            "closest to it; click each one you mean to exclude:"
        )
        cols = st.columns(columns)
        for i, name in enumerate(cands):
            cols[i % columns].button(
                name, key=f"audit_pick_{tok}_{name}", on_click=add, args=(name, f"picked from the matches of '{tok}'"),
                disabled=name in planned or name not in universe, width="stretch",
            )


def acknowledge_plan(plan: ExclusionPlan, rows: Sequence[ExcludedClass]) -> bool:
    """One summary of the whole plan before converting, and whether the user acknowledged exactly this plan.

    The checkbox key is derived from the plan's text, so any change of the plan shows a fresh, unticked box.
    """
    lines = [r.line for r in rows]
    digest = hashlib.sha1("\n".join([*lines, plan.override_log()]).encode()).hexdigest()[:16]
    with st.container(border=True, key="audit_convert_summary"):
        st.markdown(f"**The plan: keep {len(plan.kept)} classes, exclude {len(rows)}**")
        st.code("\n".join(lines) if lines else "nothing is excluded: every class is kept", language=None, wrap_lines=True)
        if plan.override_log():
            st.warning(plan.override_log(), icon=":material/priority_high:")
        st.caption("The same list is written to convert.log and excluded_classes.json.")
        return bool(st.checkbox(f"I have read this list: exclude exactly these {len(rows)} classes", key=f"audit_ack_{digest}"))
