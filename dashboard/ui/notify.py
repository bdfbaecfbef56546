"""Notifications box (Training page): where run events are pushed (Apprise URLs), never showing a URL back."""

from __future__ import annotations

import streamlit as st

from dashboard.ui.guard import can_act
from omr_core import notify
from omr_core.errors import OmrError


def _add() -> None:
    url = st.session_state.get("nt_url", "")
    kinds = st.session_state.get("nt_kinds") or ["*"]
    if not url.strip() or not can_act("Adding a notification target"):
        return
    try:
        notify.add_target(url, list(kinds))
    except OmrError as exc:
        st.session_state["nt_msg"] = ("error", str(exc))
        return
    st.session_state["nt_url"] = ""  # the secret leaves the page once saved
    st.session_state["nt_msg"] = ("success", "Added. Press “Send a test message” to check it.")


def render_notifications() -> None:
    """The expander's content: targets (masked), add/remove, dashboard address for links, a test message."""
    try:
        s = notify.load_settings()
    except OmrError as exc:
        st.error(str(exc))
        return
    st.caption(
        "Run events (finished, failed, stopped, NaN loss, divergence, CUDA OOM, assigner fallback, stalled, VRAM "
        "above 95 %, throughput collapse) are pushed by a small process beside each run, so they reach you with this "
        f"page closed. One message per event per run. Settings: `{notify.settings_path()}` (owner-only); URLs are never "
        f"shown back in full nor written to run folders. `{notify.NOTIFY_ENV}` adds URLs for every event."
    )
    if s.targets:
        for i, t in enumerate(s.targets, 1):
            c1, c2 = st.columns([5, 1])
            kinds = "every event" if "*" in t.kinds else ", ".join(t.kinds)
            src = f" · from {notify.NOTIFY_ENV}" if t.source == "env" else ""
            c1.markdown(f"**{i}.** `{t.masked}` → {kinds}{src}")
            if t.source == "settings" and c2.button("Remove", key=f"nt_rm_{i}") and can_act("Removing a target"):
                notify.remove_target(i)
                st.rerun()
    else:
        st.info("No notification target yet.")
    c1, c2 = st.columns([3, 2])
    c1.text_input("Apprise URL (e.g. ntfy://my-topic, json://host:port/path, mailto://…, discord://id/token)",
                  type="password", key="nt_url", on_change=_add)
    c2.multiselect("Events (none = every event)", list(notify.KINDS), key="nt_kinds",
                   format_func=lambda k: f"{k}: {notify.KINDS[k]}")
    if st.button("Add target", key="nt_add"):
        _add()
    msg = st.session_state.pop("nt_msg", None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
    url = st.text_input("Dashboard address for links in messages (e.g. http://myhost:8501)", value=s.dashboard_url,
                        key="nt_dash")
    if url != s.dashboard_url and can_act("Saving the dashboard address"):
        try:
            notify.set_dashboard_url(url)
        except OmrError as exc:
            st.error(str(exc))
    if st.button("Send a test message", key="nt_test", disabled=not s.targets) and can_act("Sending a test message"):
        with st.spinner("Sending…"):
            results = notify.send_test(s)
        for d in results:
            if d.ok:
                st.success(f"Target {d.target} (`{d.masked}`): sent")
            else:
                st.error(f"Target {d.target} (`{d.masked}`): not sent: {d.error}")
