"""Page "Per-class failures": measured per-class metrics, confusions and galleries of misses."""

from __future__ import annotations

import streamlit as st

st.title("Per-class failures")
st.info("Coming with the evaluation issue: per-class P/R/AP from Ultralytics' validator, an interactive confusion matrix and galleries of missed and false detections.")
