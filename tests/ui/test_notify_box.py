"""AppTest of the Training page's Notifications box, with a real loopback receiver, and of run links (?run=NAME)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.notify import settings_path
from tests.core.training.run_fixtures import write_run
from tests.notify_receiver import SECRET, Receiver

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")



@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_run(tmp_path / "runs" / "alpha", epochs_done=3, epochs=3, state="finished")
    write_run(tmp_path / "runs" / "beta", epochs_done=2, epochs=5, state="stopped")
    (tmp_path / "datasets").mkdir()
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("OMR_NOTIFY", raising=False)
    return tmp_path


def _training(at: AppTest) -> AppTest:
    at.switch_page("app_pages/training.py")
    return at.run(timeout=60)


def test_add_a_target_then_send_a_test_message(workspace: Path, receiver: Receiver) -> None:
    at = _training(AppTest.from_file(APP, default_timeout=60).run(timeout=60))
    assert any("No notification target yet" in i.value for i in at.info)
    at.text_input(key="nt_url").input(receiver.url).run(timeout=60)  # typed + Enter: on_change adds it
    assert at.text_input(key="nt_url").value == ""  # the secret leaves the page once saved
    page = " ".join(m.value for m in at.markdown)
    assert "json://127…" in page and SECRET not in page and "every event" in page
    assert stat.S_IMODE(settings_path().stat().st_mode) == 0o600
    at.button(key="nt_test").click().run(timeout=60)
    assert [m["title"] for m in receiver.got] == ["OMR dashboard: test message"]
    assert any("Target 1" in s.value and "sent" in s.value for s in at.success)
    at.button(key="nt_rm_1").click().run(timeout=60)
    assert any("No notification target yet" in i.value for i in at.info)


def test_a_bad_url_says_what_a_url_looks_like(workspace: Path) -> None:
    at = _training(AppTest.from_file(APP, default_timeout=60).run(timeout=60))
    at.text_input(key="nt_url").input("hooks.slack.com/abc").run(timeout=60)
    assert any("service://" in e.value for e in at.error)
    assert not settings_path().exists()


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_a_link_from_a_notification_opens_that_run(workspace: Path, name: str) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/training.py")  # the link's page, opened directly
    at.query_params["run"] = name
    at.run(timeout=60)
    assert at.selectbox(key="monitor_run").value == name
