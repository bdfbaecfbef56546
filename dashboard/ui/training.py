"""Figures and widgets of the training pages: runs table, live charts (losses, mAP, lr, batches, memory), compare."""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from omr_core.training import Alert, RunSnapshot, RunSummary, RunView, downsample, ema_smooth

#: Seconds between live refreshes of the monitor (OMR_MONITOR_REFRESH_S).
REFRESH_S = max(0.5, float(os.environ.get("OMR_MONITOR_REFRESH_S", "1.0")))
#: Points per trace sent to the browser; longer series are min/max-downsampled.
MAX_POINTS = 2000
GIB = 2**30

#: Badge colour of each state (Streamlit markdown ``:color-badge[...]``).
STATE_COLORS = {"running": "green", "starting": "orange", "finished": "blue", "stopped": "gray", "failed": "red",
                "external": "violet", "early-stopped": "blue"}


def state_badge(state: str) -> str:
    return f":{STATE_COLORS.get(state, 'gray')}-badge[{state}]"
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


@st.cache_resource(max_entries=256, show_spinner=False)
def run_view(path: str, name: str) -> RunView:
    """One incremental view per run folder, shared by every session (each refresh reads only appended bytes).

    Pages draw from the `RunSnapshot` its `poll()` returns, never from the view: it changes under other sessions.
    """
    return RunView(Path(path), name=name)


def _layout(fig: go.Figure, title: str, ytitle: str = "", height: int = 300) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 10, "t": 36, "b": 36},
        legend={"orientation": "h", "y": -0.18, "x": 0, "font": {"size": 10}},
        yaxis_title=ytitle,
        hovermode="x unified",
        uirevision=title,  # keep zoom/pan across live refreshes
    )
    return fig


def _times(t: np.ndarray) -> np.ndarray:
    """Epoch seconds → local-time datetime64 for plotly axes (NaT where a damaged log has no usable time)."""
    off = time.localtime().tm_gmtoff
    ms = (np.asarray(t, dtype=float) + off) * 1000
    ok = np.isfinite(ms) & (np.abs(ms) < 2.5e14)  # datetime64[ms] holds ±292 million years; keep to year ~9999
    out = np.full(ms.shape, np.datetime64("NaT"), dtype="datetime64[ms]")
    out[ok] = ms[ok].astype("datetime64[ms]")
    return out


def clock(t: float | None) -> str:
    """``HH:MM:SS`` of an epoch time, ``??:??:??`` when a damaged log holds no usable time."""
    try:
        return dt.datetime.fromtimestamp(float(t)).strftime("%H:%M:%S")  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return "??:??:??"


def fmt_duration(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    s = int(s)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def runs_table(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """The runs table: state, epoch k/N, batch progress, best headline metric (mAP50-95, top-1...), elapsed, ETA."""
    rows = []
    for s in summaries:
        prog = None
        if s.live and s.batch is not None and s.batches:
            prog = s.batch / s.batches
        rows.append(
            {
                "run": s.name,
                "state": s.state,
                "epoch": s.epoch_text,
                "batch": prog,
                "batch i/n": f"{s.batch}/{s.batches}" if s.live and s.batch is not None else "",
                "best": s.best_map,  # the task's headline metric at the epoch best.pt holds
                "metric": s.metric,
                "best epoch": s.best_epoch,
                "elapsed": fmt_duration(s.elapsed_s),
                "ETA": fmt_duration(s.eta_s) if s.live else "",
                "s/batch": s.s_per_batch,
                "model": Path(s.model).name if s.model else "",
                "note": " · ".join(x for x in (s.reason, *s.damage) if x),
            }
        )
    return pd.DataFrame(rows)


RUNS_TABLE_CONFIG = {
    "batch": st.column_config.ProgressColumn("batch", min_value=0.0, max_value=1.0, format="percent"),
    "best": st.column_config.NumberColumn(format="%.4f", help="the metric at the epoch best.pt holds"),
    "s/batch": st.column_config.NumberColumn(format="%.2f"),
}


def _add_series(fig: go.Figure, x: Any, y: np.ndarray, name: str, color: str, smoothing: float, dash: str = "solid",
                **kw: Any) -> None:
    y = np.asarray(y, dtype=float)
    if smoothing > 0 and len(y) > 2:
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", line={"color": color, "width": 1, "dash": dash},
                                 opacity=0.25, showlegend=False, hoverinfo="skip", **kw))
        y = ema_smooth(y, smoothing)
    fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers" if len(y) < 40 else "lines",
                             line={"color": color, "width": 2, "dash": dash}, marker={"size": 4}, **kw))


def _frame_cols(df: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in df.columns if c.startswith(prefix)]


def _log_y(fig: go.Figure, log_y: bool) -> go.Figure:
    """A log loss axis: a run diverging by orders of magnitude stays readable next to its normal start."""
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return fig


def losses_figure(df: pd.DataFrame, smoothing: float = 0.0, log_y: bool = False) -> go.Figure:
    """Train (solid) and val (dashed) losses per epoch, one colour per loss (box/cls/dfl, or giou/l1)."""
    fig = go.Figure()
    names = sorted({c.split("/", 1)[1] for c in df.columns if c.startswith(("train/", "val/")) and "loss" in c})
    for i, n in enumerate(names):
        color = _PALETTE[i % len(_PALETTE)]
        for split, dash in (("train", "solid"), ("val", "dash")):
            col = f"{split}/{n}"
            if col in df.columns:
                _add_series(fig, df["epoch"], df[col].to_numpy(), col, color, smoothing, dash)
    return _log_y(_layout(fig, "Losses per epoch (train solid, val dashed)", "loss (log)" if log_y else "loss"), log_y)


def metrics_figure(df: pd.DataFrame, smoothing: float = 0.0) -> go.Figure:
    """Precision, recall, mAP50, mAP50-95 per epoch."""
    fig = go.Figure()
    for i, c in enumerate(_frame_cols(df, "metrics/")):
        _add_series(fig, df["epoch"], df[c].to_numpy(), c.replace("metrics/", ""), _PALETTE[i % len(_PALETTE)], smoothing)
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, "Validation metrics per epoch", "")


def lr_figure(df: pd.DataFrame) -> go.Figure:
    """Learning rate of each parameter group per epoch."""
    fig = go.Figure()
    for i, c in enumerate(_frame_cols(df, "lr/")):
        fig.add_trace(go.Scatter(x=df["epoch"], y=df[c], name=c, mode="lines", line={"color": _PALETTE[i % 10]}))
    return _layout(fig, "Learning rate", "lr")


def batch_figure(view: RunSnapshot, smoothing: float = 0.0, log_y: bool = False) -> go.Figure:
    """Per-batch losses inside the epoch in progress (x = batch), and seconds per batch on a second axis."""
    b = view.batches
    idx = view.current_epoch_batches()
    fig = go.Figure()
    title = "Batches of the current epoch"
    if idx.size:
        x = b.col("i")[idx]
        for i, c in enumerate(n for n in b.names if n.startswith("loss/")):
            _add_series(fig, x, b.col(c)[idx], c.split("/", 1)[1], _PALETTE[i % 10], smoothing)
        fig.add_trace(go.Scatter(x=x, y=b.col("sec")[idx], name="s/batch", mode="lines", yaxis="y2",
                                 line={"color": "#999", "width": 1, "dash": "dot"}))
        ep = int(b.col("epoch")[idx[-1]]) + 1  # finite: current_epoch_batches() keeps rows of one finite epoch
        nb = b.col("nb")[idx[-1]]
        title = f"Epoch {ep}: batch {_int_or_q(x[-1])}/{_int_or_q(nb)}"
        fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "title": "s/batch", "showgrid": False})
    return _log_y(_layout(fig, title, "loss (log)" if log_y else "loss"), log_y)


def _int_or_q(v: float) -> str:
    return str(int(v)) if math.isfinite(v) else "?"


def throughput_figure(view: RunSnapshot) -> go.Figure:
    """Seconds per batch over the whole run (downsampled), with the run's median: throughput collapse shows here."""
    b = view.batches
    fig = go.Figure()
    if len(b):
        t, sec = b.col("t"), b.col("sec")
        x, y = downsample(t, sec, MAX_POINTS)
        fig.add_trace(go.Scatter(x=_times(x), y=y, name="s/batch", mode="lines", line={"color": "#1f77b4", "width": 1}))
        med = np.nanmedian(sec) if np.isfinite(sec).any() else None
        if med is not None:
            fig.add_hline(y=float(med), line_dash="dash", line_color="#888", annotation_text=f"median {med:.2f}s")
    return _layout(fig, "Seconds per batch (whole run)", "s")


def memory_figure(view: RunSnapshot) -> go.Figure:
    """VRAM per GPU (NVML device used, training processes, torch reserved) against the capacity line.

    Without NVML: system RAM used and the training processes' RSS against total RAM.
    """
    s, b = view.samples, view.batches
    fig = go.Figure()
    title = "GPU memory"
    if len(s):
        t = s.col("t")
        x_all = _times(t)
        gpus = sorted({n[3:].split("_", 1)[0] for n in s.names if n.startswith("gpu") and n.endswith("_used")})
        if gpus:
            for k, g in enumerate(gpus):
                color = _PALETTE[k % 10]
                for field, label, dash in (("used", "device used", "solid"), ("proc", "training processes", "dot")):
                    col = s.col(f"gpu{g}_{field}")
                    if np.isfinite(col).any():
                        x, y = downsample(t, col / GIB, MAX_POINTS)
                        fig.add_trace(go.Scatter(x=_times(x), y=y, name=f"GPU {g} {label}", mode="lines",
                                                 line={"color": color, "dash": dash}))
                total = s.last(f"gpu{g}_total")
                if total:
                    fig.add_hline(y=total / GIB, line_color=color, line_width=1,
                                  annotation_text=f"GPU {g} capacity {total / GIB:.0f} GiB")
            if len(b) and "mem_res" in b:
                x, y = downsample(b.col("t"), b.col("mem_res") / GIB, MAX_POINTS)
                fig.add_trace(go.Scatter(x=_times(x), y=y, name="torch reserved", mode="lines", line={"color": "#555", "dash": "dash"}))
            _layout(fig, title, "GiB")
        else:
            title = "Memory (no GPU: system RAM and training processes)"
            for name, label, color in (("ram_used", "system RAM used", "#1f77b4"), ("proc_rss", "training processes RSS", "#ff7f0e")):
                x, y = downsample(t, s.col(name) / GIB, MAX_POINTS)
                fig.add_trace(go.Scatter(x=_times(x), y=y, name=label, mode="lines", line={"color": color}))
            total = s.last("ram_total")
            if total:
                fig.add_hline(y=total / GIB, line_color="#d62728", line_width=1, annotation_text=f"RAM {total / GIB:.0f} GiB")
        del x_all
    return _layout(fig, title, "GiB")


def util_figure(view: RunSnapshot) -> go.Figure:
    """GPU utilisation (%) per GPU, or CPU (system and training processes) without NVML."""
    s = view.samples
    fig = go.Figure()
    title = "GPU utilisation"
    if len(s):
        t = s.col("t")
        gpus = sorted({n[3:].split("_", 1)[0] for n in s.names if n.startswith("gpu") and n.endswith("_util")})
        series = [(f"gpu{g}_util", f"GPU {g}") for g in gpus]
        if not series:
            title = "CPU utilisation (no GPU)"
            series = [("cpu", "system CPU %"), ("proc_cpu", "training processes CPU % (100 = one core)")]
        for k, (col, label) in enumerate(series):
            x, y = downsample(t, s.col(col), MAX_POINTS)
            fig.add_trace(go.Scatter(x=_times(x), y=y, name=label, mode="lines", line={"color": _PALETTE[k % 10]}))
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, title, "%")


def live_figures(view: RunSnapshot, smoothing: float, log_y: bool = False) -> dict[str, go.Figure]:
    """Every chart of the live monitor for one run (built from what the view has read); ``log_y``: log loss axes."""
    df = view.results.frame()
    figs: dict[str, go.Figure] = {}
    if len(df):
        figs["losses"] = losses_figure(df, smoothing, log_y)
        figs["metrics"] = metrics_figure(df, smoothing)
        figs["lr"] = lr_figure(df)
    if len(view.batches):
        figs["batches"] = batch_figure(view, smoothing, log_y)
        figs["throughput"] = throughput_figure(view)
    if len(view.samples):
        figs["memory"] = memory_figure(view)
        figs["util"] = util_figure(view)
    return figs


def last_values_text(view: RunSnapshot) -> tuple[str, str]:
    """(last epoch line, last batch line): plain text, so a person (and a browser test) can read the newest values."""
    rows = view.results.rows()
    ep_line = "No epoch finished yet."
    if rows:
        r = rows[-1]
        read = view.reading()  # 1-based epoch and the task's headline, whatever release wrote the file
        mcol = read.layout.headline
        parts = [f"Last epoch {read.epochs_done}"]
        if mcol and r.get(mcol) is not None and math.isfinite(r[mcol]):
            parts.append(f"{read.layout.headline_name} {r[mcol]:.4f}")
        for c in ("metrics/mAP50(B)", "train/box_loss", "val/box_loss"):
            if c in r and math.isfinite(r[c]):
                parts.append(f"{c.replace('metrics/', '')} {r[c]:.4f}")
        ep_line = " · ".join(parts)
    b = view.batches
    batch_line = "No batch logged yet."
    if len(b):
        last = b.last_row()
        losses = " ".join(f"{n.split('/', 1)[1]} {last[n]:.4f}" for n in b.names if n.startswith("loss/") and n in last)
        bad = [n.split("/", 1)[1] for n in b.names if n.startswith("loss/") and n not in last]
        if bad:
            losses += " " + " ".join(f"{n} NaN" for n in bad)
        when = clock(last.get("t", 0))
        batch_line = (f"Last batch {when}: epoch {int(last.get('epoch', 0)) + 1}, batch {int(last.get('i', 0))}/"
                      f"{int(last.get('nb', 0))}, {losses}, {last.get('sec', float('nan')):.2f} s")
    return ep_line, batch_line


def show_alerts(alerts: Sequence[Alert]) -> None:
    """Alerts, errors first, each with its count when repeated."""
    for a in alerts:
        when = f" ({clock(a.t)})" if a.t else ""
        text = f"**{a.kind.replace('_', ' ')}**{when}: {a.message}" + (f" ×{a.count}" if a.count > 1 else "")
        if a.severity == "error":
            st.error(text, icon=":material/error:")
        else:
            st.warning(text, icon=":material/warning:")


def cumulative_hours(t: np.ndarray) -> np.ndarray:
    """Ultralytics' `time` column restarts at 0 in each resumed session: make it cumulative, in hours."""
    t = np.asarray(t, dtype=float).copy()
    offset = 0.0
    for i in range(1, len(t)):
        if t[i] + offset < t[i - 1]:
            offset = t[i - 1]
        t[i] += offset
    return t / 3600.0


def compare_figure(series: dict[str, pd.DataFrame], metric: str, x: str = "epoch", smoothing: float = 0.0) -> go.Figure:
    """One metric of several runs overlaid (x: epoch or training time in hours)."""
    fig = go.Figure()
    for k, (name, df) in enumerate(series.items()):
        if metric not in df.columns or not len(df):
            continue
        xs = df["epoch"] if x == "epoch" or "time" not in df.columns else cumulative_hours(df["time"].to_numpy())
        _add_series(fig, xs, df[metric].to_numpy(), name, _PALETTE[k % len(_PALETTE)], smoothing)
    fig.update_xaxes(title="epoch" if x == "epoch" else "training hours")
    return _layout(fig, metric, "", height=420)
