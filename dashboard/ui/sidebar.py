"""The sidebar every page shares: workspace folders and GPU presence."""

from __future__ import annotations

import streamlit as st

from omr_core.training import GpuProbe, probe
from omr_core.workspace import get_workspace


@st.cache_data(ttl=60, show_spinner=False)
def _gpu() -> GpuProbe:
    return probe()


def render_sidebar() -> None:
    """Draw the workspace and GPU summary in the sidebar."""
    ws = get_workspace()
    with st.sidebar:
        st.markdown(f"**Workspace**  \nruns: `{ws.runs}`  \ndatasets: `{ws.datasets}`")
        gpu = _gpu()
        if gpu.available:
            for d in gpu.devices:
                st.success(f"GPU {d.index}: {d.name} · {d.memory_total_mb / 1024:.0f} GiB", icon=":material/memory:")
            st.caption(f"NVIDIA driver {gpu.driver}")
        else:
            st.info(f"No GPU: {gpu.reason}. Training runs on the CPU.", icon=":material/developer_board_off:")
