"""Page "Compare runs": overlay metrics of several runs and list the arguments that differ."""

from __future__ import annotations

import streamlit as st

st.title("Compare runs")
st.info("Coming with the training issue: pick runs, overlay any metric, see the arguments that differ and the best/final metrics; export CSV.")
