"""Page "Compare runs": overlay metrics of several runs and list the arguments that differ."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.ui.training import compare_figure, fmt_duration, run_view
from omr_core.training.runs import (
    MAP5095,
    args_that_differ,
    best_and_final,
    discover_runs,
    map_column,
    run_args,
    run_name,
)
from omr_core.workspace import get_workspace

ws = get_workspace()

st.title("Compare runs")
st.caption("Pick runs, overlay any metric from their results.csv, see which arguments differ and where each run peaked.")

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

frames = {n: views[n].results.frame() for n in picked}
columns = sorted({c for df in frames.values() for c in df.columns} - {"epoch", "time"})
if not columns:
    st.info("None of these runs has finished an epoch yet.")
    st.stop()
default_metric = MAP5095 if MAP5095 in columns else (map_column(columns) or columns[0])
c1, c2, c3 = st.columns([2, 1, 1])
metric = c1.selectbox("Metric", columns, index=columns.index(default_metric), key="cmp_metric")
x = c2.radio("x axis", ["epoch", "training hours"], horizontal=True, key="cmp_x")
smoothing = c3.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="cmp_smoothing")
st.plotly_chart(compare_figure(frames, metric, "epoch" if x == "epoch" else "time", smoothing), key="cmp_fig")

# ------------------------------------------------------------------------------------------- best and final values
rows = []
for n in picked:
    v = views[n]
    s = v.summary()
    r = v.results.rows()
    mcol = map_column(v.results.columns) or MAP5095
    bm = best_and_final(r, mcol)
    row = {
        "run": n,
        "state": s.state,
        "epochs": f"{s.epoch}/{s.epochs or '?'}",
        "best mAP50-95": bm["best"],
        "epoch of best": bm["best_epoch"],
        "final mAP50-95": bm["final"],
    }
    if metric != mcol:  # the charted metric, unless it is mAP50-95 itself (the columns would repeat)
        bx = best_and_final(r, metric)
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
