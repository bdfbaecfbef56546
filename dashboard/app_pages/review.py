"""Page "Review a score": detections, staff lines and reconstructed stems/ledger lines on a page."""

from __future__ import annotations

import streamlit as st

st.title("Review a score")
st.info("Coming with the review issue: upload a page or PDF, run a trained model, and see detections, staff lines and reconstructed stems and ledger lines in a zoomable overlay.")
