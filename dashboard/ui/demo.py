"""The demo model's score on the Training page: its validation mAP50 over the classes it can be judged on, and a
held-out page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.ui.guard import can_act
from omr_core.errors import OmrError
from omr_core.training import MIN_INSTANCES, TARGET_MAP50, finished_demo_runs, load_demo_score, score_demo


def render_demo_score(runs_dir: Path) -> None:
    """The newest finished demo run: its kept score, or a button that computes it (validation tiles + one page)."""
    runs = finished_demo_runs(runs_dir)
    if not runs:
        return
    run_dir, data_yaml, synth = runs[0]
    with st.container(border=True):
        st.markdown(f"**Demo model `{run_dir.name}`** — judged on the classes with ≥ {MIN_INSTANCES} validation "
                    f"instances (target mAP50 {TARGET_MAP50:.2f}); open it in Review a score.")
        doc = load_demo_score(run_dir)
        if doc is None:
            if not st.button("Score the demo model", icon=":material/grading:", key="demo_score") or not can_act(
                    "Scoring the demo model"):
                return
            with st.status("Scoring the demo model on its validation tiles and a held-out page…") as status:
                try:
                    score_demo(run_dir, data_yaml, synth)
                except OmrError as exc:
                    status.update(label="The demo model could not be scored", state="error")
                    st.error(str(exc))
                    return
                status.update(label="Scored", state="complete", expanded=False)
            doc = load_demo_score(run_dir) or {}
        val = doc.get("validation") or {}
        reached = val.get("map50") is not None and float(val["map50"]) >= TARGET_MAP50
        (st.success if reached else st.warning)(str(doc.get("validation_summary", "")))
        st.info(str(doc.get("page_summary", "")))
        rows = [{"class": c, "validation instances": n, "AP50": round(float(ap), 3), "judged": n >= MIN_INSTANCES}
                for c, n, ap in val.get("per_class") or []]
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="demo_per_class")
