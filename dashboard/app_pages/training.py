"""Page "Training & live monitor": launch Ultralytics training and watch it live."""

from __future__ import annotations

import streamlit as st

st.title("Training & live monitor")
st.info("Coming with the training issue: launch a run (form over Ultralytics' arguments, presets, memory forecast), then watch losses, mAP, VRAM and alerts refresh every second; stop, resume, re-attach.")
