"""Page "Compare runs": overlay metrics of several runs and list the arguments that differ."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.ui.sweep import render_sweeps
from dashboard.ui.training import compare_figure, fmt_duration, run_view
from omr_core.training import (
    args_that_differ,
    best_and_final,
    default_metric,
    discover_runs,
    list_views,
    run_args,
    run_name,
)
from omr_core.workspace import get_workspace

ws = get_workspace()

st.title("Compare runs")
st.caption("Pick runs, overlay any metric from their results.csv, see which arguments differ and where each run peaked.")

if sweep_keys := list_views(ws.runs):
    with st.expander(f"Sweeps ({len(sweep_keys)}): trials grouped, arguments against the objective, the best",
                     icon=":material/tune:"):
        render_sweeps(ws.runs, sweep_keys)

dirs = {run_name(ws.runs, d): d for d in discover_runs(ws.runs)}
if not dirs:
    st.info(f"No runs in {ws.runs} yet. Train one on the Training page (or `omr train …`), or copy Ultralytics run folders here.")
    st.stop()

views = {name: run_view(str(d), name).poll() for name, d in dirs.items()}
with_results = [n for n, v in views.items() if len(v.results)]
recent = sorted(with_results, key=lambda n: -(views[n].summary().started or views[n].summary().updated or 0))
picked = st.multiselect("Runs", list(dirs), default=recent[:4], key="cmp_runs",
                        help="Runs without a results.csv row yet have nothing to compare")
if not picked:
    st.info("Pick at least one run.")
    st.stop()

readings = {n: views[n].reading() for n in picked}
frames = {}
for n in picked:  # epochs 1-based whatever release wrote them (8.0.x and YOLOv5 counted from 0)
    df = views[n].results.frame()
    frames[n] = df.assign(epoch=df["epoch"] + readings[n].layout.epoch_offset) if "epoch" in df else df
columns = sorted({c for df in frames.values() for c in df.columns} - {"epoch", "time"})
if not columns:
    st.info("None of these runs has finished an epoch yet.")
    st.stop()
# The task's headline metric that every picked run has; picked again whenever the selection changes.
opening = default_metric([(readings[n].layout, list(frames[n].columns)) for n in picked]) or columns[0]
if st.session_state.get("cmp_metric_for") != picked or st.session_state.get("cmp_metric") not in columns:
    st.session_state["cmp_metric"] = opening
    st.session_state["cmp_metric_for"] = list(picked)
c1, c2, c3 = st.columns([2, 1, 1])
metric = c1.selectbox("Metric", columns, key="cmp_metric")
x = c2.radio("x axis", ["epoch", "training hours"], horizontal=True, key="cmp_x")
smoothing = c3.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="cmp_smoothing")
lacking = [n for n, df in frames.items() if metric not in df.columns]
if lacking:
    st.caption(f"No {metric} column in: {', '.join(lacking)} (left out of the chart).")
charted = {n: df for n, df in frames.items() if n not in lacking}
if x == "training hours":
    untimed = [n for n, df in charted.items() if "time" not in df.columns]
    if untimed:  # YOLOv5 and ultralytics 8.0/8.1 wrote no time column: never plot them at their epoch numbers
        st.caption(f"Left out of the training-hours axis (their results.csv has no time column): {', '.join(untimed)}.")
    charted = {n: df for n, df in charted.items() if n not in untimed}
st.plotly_chart(compare_figure(charted, metric, "epoch" if x == "epoch" else "time", smoothing), key="cmp_fig")

# ------------------------------------------------------------------------------------------- best and final values
rows = []
names = {readings[n].layout.headline_name for n in picked}
head = names.pop() if len(names) == 1 else ""  # one headline for all: name the columns after it
for n in picked:
    v, read = views[n], readings[n]
    s = v.summary()
    row: dict[str, Any] = {"run": n, "state": s.state, "epochs": f"{s.epoch}/{s.epochs or '?'}"}
    if not head:
        row["headline"] = read.layout.headline_name
    # best = the epoch best.pt holds (Ultralytics' fitness of that release and task), not the metric's own max
    row.update({f"best {head}".strip(): read.best, "epoch of best": read.best_epoch, f"final {head}".strip(): read.last})
    if metric != read.layout.headline:  # the charted metric, unless it is the headline itself (columns would repeat)
        bx = best_and_final(frames[n].to_dict("records"), metric)
        row.update({f"best {metric}": bx["best"], f"epoch of best {metric}": bx["best_epoch"], f"final {metric}": bx["final"]})
    rows.append({**row, "training time": fmt_duration(s.elapsed_s)})
summary = pd.DataFrame(rows)
st.subheader("Best and final")
st.dataframe(summary, hide_index=True, key="cmp_summary")

# ---------------------------------------------------------------------------------------------- arguments that differ
st.subheader("Arguments that differ")
diff, values = args_that_differ({n: run_args(views[n]) for n in picked})
if len(picked) < 2:
    st.caption("Pick two runs or more to see their differences.")
elif not diff:
    st.caption("These runs were trained with the same arguments.")
else:
    table = pd.DataFrame({n: {k: "" if values[n][k] is None else str(values[n][k]) for k in diff} for n in picked})
    table.index.name = "argument"
    st.dataframe(table, key="cmp_diff")

# ------------------------------------------------------------------------------------------------------------ export
long = pd.concat([df.assign(run=n) for n, df in frames.items() if len(df)], ignore_index=True)
long = long[["run", *[c for c in long.columns if c != "run"]]]
c1, c2 = st.columns(2)
c1.download_button("Download all epochs (CSV)", long.to_csv(index=False).encode(), "runs_epochs.csv", "text/csv",
                   key="cmp_dl_epochs", icon=":material/download:")
c2.download_button("Download best/final table (CSV)", summary.to_csv(index=False).encode(), "runs_summary.csv",
                   "text/csv", key="cmp_dl_summary", icon=":material/download:")
