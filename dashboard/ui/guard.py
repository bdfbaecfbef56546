"""The access gate in the UI: a token box when the server is not loopback-only, and checks before actions."""

from __future__ import annotations

import streamlit as st

from omr_core.security import TOKEN_ENV, Gate, decide

_KEY = "omr_access_token"


def current_gate() -> Gate:
    """The gate for this session (server bind address + the token this session entered)."""
    return decide(st.get_option("server.address"), st.session_state.get(_KEY))


def render_gate() -> Gate:
    """Draw the token box in the sidebar when needed; stop the page if this session may not even view it."""
    gate = current_gate()
    if gate.loopback:
        return gate
    if _KEY in st.session_state:  # keep the token across page switches ("/" forwards to /training)
        st.session_state[_KEY] = st.session_state[_KEY]
    with st.sidebar:
        st.text_input(f"Access token ({TOKEN_ENV})", type="password", key=_KEY)
    gate = current_gate()
    if not gate.can_act:
        st.warning(gate.reason, icon=":material/lock:")
    if not gate.can_view:
        st.stop()
    return gate


def can_act(action: str) -> bool:
    """True when this session may perform ``action``; otherwise shows why (in the page) and returns False.

    Every page calls this before starting or stopping processes, writing files or loading a model file.
    """
    gate = current_gate()
    if not gate.can_act:
        st.error(f"{action} is disabled: {gate.reason}", icon=":material/lock:")
    return gate.can_act
