"""Page "Class audit": see every class before excluding any, by name."""

from __future__ import annotations

import streamlit as st

st.title("Class audit")
st.info("Coming with the audit issue.")
