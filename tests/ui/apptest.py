"""Opening one dashboard page in an AppTest the way a person does: the app first, then its page."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def open_page(page: str, timeout: float = 120) -> AppTest:
    """Run the app, switch to ``page`` (e.g. "app_pages/training.py"), and check it opened without an exception."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
