"""Sweeps in the dashboard: the form on the Training page, and the trials view on Compare runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.ui.guard import can_act
from omr_core.errors import OmrError
from omr_core.training import parse_extra, sweep, sweep_view

OBJECTIVE_NAMES = {"map50-95": "mAP50-95", "map50": "mAP50", "classes": "mean AP of chosen classes",
                   "critical": "mean AP of the critical classes", "notes": "notes read right (final value)"}


def render_sweep_form(runs: Path, data: str, model: str, preset: str | None) -> None:
    """A sweep over the launch form's data, model and preset: the space, sampler, budget, then Start."""
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
    name = c1.text_input("Sweep name", key="sw_name", placeholder="lr-batch")
    sampler = c2.selectbox("Search", list(sweep.SAMPLERS), index=2, key="sw_sampler",
                           format_func=lambda k: "TPE (Optuna)" if k == "tpe" else str(k))
    trials = c3.number_input("Trials", 1, 500, 6, key="sw_trials")
    epochs = c4.number_input("Epochs per trial", 1, 1000, 3, key="sw_epochs")
    space = st.text_area("Search space, one argument per line", key="sw_space", height=80,
                         placeholder="lr0=0.005:0.05:log\nbatch=8,16")
    fixed = st.text_input("Fixed arguments of every trial (key=value, space-separated)", key="sw_fixed",
                          placeholder="imgsz=320 device=cpu")
    o1, o2 = st.columns([1, 2])
    objective = o1.selectbox("Objective (higher is better)", list(sweep.OBJECTIVES), key="sw_objective",
                             format_func=lambda k: OBJECTIVE_NAMES.get(str(k), str(k)))
    classes = o2.text_input("Classes of the objective (comma-separated)", key="sw_classes",
                            disabled=objective != "classes", placeholder="clefG, noteheadBlackOnLine")
    if st.button("Start sweep", key="sw_start", disabled=not (name and data and space.strip())) and can_act("Starting a sweep"):
        try:
            spec = sweep.SweepSpec(name.strip(), model, data, tuple(sweep.parse_param(x) for x in space.splitlines() if x.strip()),
                                   preset=preset, args=parse_extra(fixed.split()), sampler=str(sampler), objective=str(objective),
                                   trials=int(trials), epochs=int(epochs),
                                   classes=tuple(c.strip() for c in classes.split(",") if c.strip()))
            sweep.create(spec, runs)
            sweep.start_controllers(runs, spec.name)
        except OmrError as exc:
            st.error(str(exc))
        else:
            st.success(f"Sweep **{spec.name}** started: its trials appear in the queue as {spec.name}-t0, -t1, …; "
                       "Compare runs shows them grouped.")


def _parcoords(df: pd.DataFrame, params: list[str]) -> go.Figure:
    dims = []
    for p in params:
        col = df[p]
        if pd.api.types.is_numeric_dtype(col):
            dims.append({"label": p, "values": col})
        else:
            cats = sorted(col.astype(str).unique())
            dims.append({"label": p, "values": col.astype(str).map(cats.index), "tickvals": list(range(len(cats))),
                         "ticktext": cats})
    dims.append({"label": "objective", "values": df["value"].fillna(0)})
    fig = go.Figure(go.Parcoords(line={"color": df["value"].fillna(0), "colorscale": "Viridis", "showscale": True},
                                 dimensions=dims))
    fig.update_layout(height=320, margin={"l": 60, "r": 40, "t": 40, "b": 20})
    return fig


def render_sweeps(runs: Path, keys: list[str]) -> None:
    """Compare runs, grouped by sweep (ours, or an Ultralytics tuner folder): trials, arguments against the objective,
    what mattered, the best vs base, and (ours) launching the best."""
    if not keys:
        return
    key = st.selectbox("Sweep", keys, key="cmp_sweep",
                       format_func=lambda k: f"{k[len(sweep_view.TUNE_PREFIX):]} (Ultralytics tuner)"
                       if k.startswith(sweep_view.TUNE_PREFIX) else k)
    try:
        view = sweep_view.load_view(runs, str(key))
    except OmrError as exc:
        st.error(str(exc))
        return
    st.caption(view.caption + ".")
    if not view.trials:
        st.info("No trial has ended yet.")
        return
    params = list(view.params)
    df = pd.DataFrame([{"trial": f"t{t['number']}", "run": t["run"], **t["params"], "state": t["state"],
                        "value": t.get("value"), "epochs": t.get("epochs"), "reason": t.get("reason", "")}
                       for t in view.trials])
    st.dataframe(df, hide_index=True, key="cmp_sweep_table")
    scored = df[df["value"].notna()]
    if len(scored) >= 2:
        st.plotly_chart(_parcoords(scored, params), key="cmp_sweep_parcoords")
    imp = view.importance()
    if imp:
        st.markdown("**What mattered** (Optuna's importance): " + ", ".join(f"{k} {v:.2f}" for k, v in imp.items()))
    b = view.best
    if b is None:
        return
    diff = view.diff()
    what = (f"**Best trial t{b['number']}** ({view.objective} {b['value']:.4f}): "
            + ", ".join(f"{k}={v}" for k, v in b["params"].items()))
    if diff:
        what += "  \nBest vs base: " + "; ".join(f"{k}: {'default' if base is None else base} → **{v}**"
                                               for k, base, v in diff)
    st.markdown(what)
    if not view.launchable:
        return
    c1, c2 = st.columns([1, 3])
    spec = sweep.load(runs, view.key)
    ep = c1.number_input("Epochs for the full run", 1, 10000, max(spec.epochs, 100), key="cmp_sweep_epochs")
    if c2.button("Launch the best configuration", key="cmp_sweep_best") and can_act("Launching a run"):
        try:
            st.success(f"Queued **{sweep.launch_best(runs, view.key, int(ep))}** (see the Training page's queue).")
        except OmrError as exc:
            st.error(str(exc))
