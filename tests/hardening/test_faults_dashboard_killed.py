"""The dashboard session that launched a run is SIGKILLed: the run goes on, and a new dashboard re-attaches to it
live and controls it (stop → stopped and resumable).

The launching dashboard is a separate process driving the real Training page through Streamlit's AppTest (the
page's own launch path: `launcher.launch` and its reaper thread live in that process); SIGKILL gives it no chance
to clean up. The browser version of a dashboard restart is tests/e2e/test_training_e2e.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.training import launcher
from omr_core.training.runs import RunSummary, RunView, process_alive, read_run
from tests.conftest import REPO
from tests.core.training.tiny_dataset import make_tiny_dataset

pytestmark = pytest.mark.slow

APP = str(REPO / "dashboard" / "app.py")

# The first dashboard: open the Training page, fill the launch form, click Launch, then stay up until killed.
DASHBOARD = textwrap.dedent(
    f"""
    import sys, time
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file({APP!r}, default_timeout=120)
    at.run()
    at.switch_page("app_pages/training.py")
    at.run()
    at.selectbox(key="tr_device").set_value("cpu")
    at.number_input(key="tr_epochs").set_value(40)
    at.number_input(key="tr_imgsz").set_value(64)
    at.number_input(key="tr_batch").set_value(4)
    at.text_input(key="tr_name").input("victim")
    at.text_area(key="tr_extra").input("workers=0")
    at.button(key="tr_launch").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    print("launched", flush=True)
    time.sleep(600)
    """
)


def wait_for(view: RunView, cond: Callable[[RunSummary], bool], timeout: float = 180) -> RunSummary:
    deadline = time.time() + timeout
    s = view.poll().summary()
    while time.time() < deadline:
        s = view.poll().summary()
        if cond(s):
            return s
        time.sleep(0.3)
    log = (view.path / "log.txt").read_text(errors="replace")[-3000:] if (view.path / "log.txt").exists() else ""
    raise AssertionError(f"timed out; last summary {s}\n--- log ---\n{log}")


def test_dashboard_sigkill_run_survives_reattach_and_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tiny_dataset(tmp_path / "datasets" / "tiny", n_train=16, n_val=4)
    env = {**os.environ, "OMR_WORKSPACE": str(tmp_path)}
    dash = subprocess.Popen([sys.executable, "-c", DASHBOARD], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    run_dir = tmp_path / "runs" / "victim"
    worker_pid = None
    try:
        assert dash.stdout is not None
        line = dash.stdout.readline()
        assert line.strip() == "launched", (line, dash.stderr.read() if dash.poll() is not None else "")
        view = RunView(run_dir)
        wait_for(view, lambda s: s.state == "running" and (s.batch or 0) >= 1)
        doc = read_run(run_dir)
        assert doc is not None
        worker_pid, ctime = doc.pid, doc.pid_create_time

        os.killpg(dash.pid, signal.SIGKILL)  # the dashboard dies without a word (OOM killer, kill -9, power cut)
        assert dash.wait(10) == -signal.SIGKILL

        # The run did not notice: same worker, still training (new batches keep coming).
        before = view.poll().summary()
        s = wait_for(view, lambda s: (s.current_epoch, s.batch) != (before.current_epoch, before.batch))
        assert s.state == "running" and process_alive(worker_pid, ctime)

        # A new dashboard re-attaches: the run is listed as running, with its live batch progress, and can be stopped.
        monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        at.switch_page("app_pages/training.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        table = at.dataframe[0].value
        row = table[table["run"] == "victim"].iloc[0]
        assert row["state"] == "running" and row["batch i/n"], row.to_dict()
        assert at.selectbox(key="monitor_run").value == "victim"
        at.button(key="stop_victim").click().run()
        assert not at.exception and (run_dir / "stop.request").exists()
        s = wait_for(view, lambda s: not s.live)
        assert s.state == "stopped" and s.resumable == "weights/last_resumable.pt", s
        deadline = time.time() + 60  # the worker writes "stopped", then saves and exits
        while process_alive(worker_pid, ctime) and time.time() < deadline:
            time.sleep(0.2)
        assert not process_alive(worker_pid, ctime)
    finally:
        if dash.poll() is None:
            os.killpg(dash.pid, signal.SIGKILL)
            dash.wait(10)
        if worker_pid and read_run(run_dir) and RunView(run_dir).poll().summary().live:
            launcher.kill("victim", tmp_path / "runs")
