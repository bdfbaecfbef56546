"""Dashboard entry point: the st.navigation router and the shared sidebar, nothing else."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.ui.guard import render_gate
from dashboard.ui.sidebar import render_sidebar

_HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="OMR training dashboard", page_icon=str(_HERE / "assets" / "favicon.png"), layout="wide")

# Sections name the omr_core package behind each page (training/, audit/, review/, evaluation/).
PAGES = {
    # "/" forwards to /training: a default page loses its url_path, and /training must work as a bookmark
    "": [st.Page("app_pages/home.py", title="Home", url_path="home", default=True, visibility="hidden")],
    "Training": [
        st.Page("app_pages/training.py", title="Training & live monitor", icon=":material/monitoring:", url_path="training"),
        st.Page("app_pages/compare.py", title="Compare runs", icon=":material/compare_arrows:", url_path="compare"),
    ],
    "Audit": [st.Page("app_pages/audit.py", title="Class audit", icon=":material/fact_check:", url_path="audit")],
    "Review": [st.Page("app_pages/review.py", title="Review a score", icon=":material/music_note:", url_path="review")],
    "Evaluation": [
        st.Page("app_pages/failures.py", title="Per-class failures", icon=":material/bug_report:", url_path="failures"),
    ],
}

page = st.navigation(PAGES)
render_gate()
render_sidebar()
page.run()
