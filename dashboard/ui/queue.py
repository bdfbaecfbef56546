"""The run queue on the Training page: who waits for which device, with reorder / hold / cancel per entry."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import streamlit as st

from dashboard.ui.guard import can_act, current_gate
from omr_core.errors import OmrError
from omr_core.training import queue


def render_queue(runs: Path) -> None:
    """Draw the queue (nothing when it is empty) and make sure its runner runs (after a reboot, say)."""
    es = queue.entries(runs)
    line = [e for e in es if e.state in ("waiting", "held")]
    if not es:
        return
    if line and current_gate().can_act:
        queue.ensure_runner(runs)  # the queue resumes when the dashboard comes back (after a reboot, say)
    pid = queue.runner_pid(runs)
    st.subheader(f"Queue ({len(line)} in line)")
    st.caption("Runs wait their turn per device and start in order as soon as it is free; a run that fails never "
               "blocks the ones behind it. The queue lives in the runs folder (`queue.json`) and survives restarts. "
               + (f"Runner: PID {pid}." if pid else "Runner: not running (nothing waits)."))
    for e in es:
        c = st.columns([3, 1.2, 2, 0.6, 0.6, 0.6, 0.6])
        c[0].markdown(f"**{e.name}** `{e.id}`")
        c[1].markdown(f"{', '.join(e.lanes)}")
        when = time.strftime("%H:%M", time.localtime(e.started or e.added))
        c[2].markdown({"waiting": f"waiting since {when}", "held": "held", "started": f"started {when}",
                       "not_started": "could not start"}.get(e.state, e.state))
        if e.state in ("waiting", "held"):
            acts = [(":material/arrow_upward:", "up", -1), (":material/arrow_downward:", "down", 1)]
            for col, (icon, what, by) in zip(c[3:5], acts):
                if col.button("", icon=icon, key=f"q_{what}_{e.id}", help=f"move {what}") and can_act("Reordering the queue"):
                    _do(partial(queue.move, runs, e.id, by))
            held = e.state == "held"
            if c[5].button("", icon=":material/play_arrow:" if held else ":material/pause:", key=f"q_hold_{e.id}",
                           help="release: back in line" if held else "hold: keep its place, let the others go first") \
                    and can_act("Holding a queued run"):
                _do(partial(queue.hold, runs, e.id, held=not held))
            if c[6].button("", icon=":material/close:", key=f"q_cancel_{e.id}", help="cancel: remove from the queue") \
                    and can_act("Cancelling a queued run"):
                _do(partial(queue.cancel, runs, e.id))
        if e.reason:
            st.caption(f"└ {e.name}: {e.reason}")
    if len(line) < len(es) and st.button("Forget started entries", key="q_clear") and can_act("Editing the queue"):
        _do(lambda: queue.clear_done(runs))


def _do(fn: Callable[[], object]) -> None:
    try:
        fn()
    except OmrError as exc:
        st.error(str(exc))
        return
    st.rerun()
