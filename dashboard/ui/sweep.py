"""Sweeps in the dashboard: the form on the Training page, and the trials view on Compare runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.ui.guard import can_act
from omr_core.errors import OmrError
from omr_core.training import sweep
from omr_core.training.spec import parse_extra


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
    objective = st.selectbox("Objective (higher is better)", sorted(sweep.OBJECTIVES), key="sw_objective")
    if st.button("Start sweep", key="sw_start", disabled=not (name and data and space.strip())) and can_act("Starting a sweep"):
        try:
            spec = sweep.SweepSpec(name.strip(), model, data, tuple(sweep.parse_param(x) for x in space.splitlines() if x.strip()),
                                   preset=preset, args=parse_extra(fixed.split()), sampler=str(sampler), objective=str(objective),
                                   trials=int(trials), epochs=int(epochs))
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


def render_sweeps(runs: Path) -> None:
    """Compare runs, grouped by sweep: trials, arguments against the objective, what mattered, the best vs base."""
    names = sweep.list_sweeps(runs)
    if not names:
        return
    name = st.selectbox("Sweep", names, key="cmp_sweep")
    spec, ts = sweep.load(runs, name), sweep.trials(runs, name)
    st.caption(f"{spec.sampler}, objective {spec.objective}, {len(ts)} of {spec.trials} trials ended, "
               f"{spec.epochs} epochs each.")
    if not ts:
        st.info("No trial has ended yet.")
        return
    params = [p.name for p in spec.space]
    df = pd.DataFrame([{"trial": f"t{t['number']}", "run": t["run"], **t["params"], "state": t["state"],
                        "value": t.get("value"), "epochs": t["epochs"], "reason": t.get("reason", "")} for t in ts])
    st.dataframe(df, hide_index=True, key="cmp_sweep_table")
    scored = df[df["value"].notna()]
    if len(scored) >= 2:
        st.plotly_chart(_parcoords(scored, params), key="cmp_sweep_parcoords")
    imp = sweep.importance(runs, name)
    if imp:
        st.markdown("**What mattered** (Optuna's importance): " + ", ".join(f"{k} {v:.2f}" for k, v in imp.items()))
    diff = sweep.best_diff(runs, name)
    if diff:
        b = sweep.best(runs, name) or {}
        st.markdown(f"**Best trial t{b.get('number')}** ({spec.objective} {b.get('value', 0):.4f}): "
                    + "; ".join(f"{k}: {'default' if base is None else base} → **{v}**" for k, base, v in diff))
        c1, c2 = st.columns([1, 3])
        ep = c1.number_input("Epochs for the full run", 1, 10000, max(spec.epochs, 100), key="cmp_sweep_epochs")
        if c2.button("Launch the best configuration", key="cmp_sweep_best") and can_act("Launching a run"):
            try:
                st.success(f"Queued **{sweep.launch_best(runs, name, int(ep))}** (see the Training page's queue).")
            except OmrError as exc:
                st.error(str(exc))
