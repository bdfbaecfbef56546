"""AppTest: the router opens every page without an exception, and the sidebar shows the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
PAGES = sorted(p.name for p in (REPO / "dashboard" / "app_pages").glob("*.py") if p.name != "__init__.py")


def test_every_page_file_is_routed() -> None:
    text = (REPO / "dashboard" / "app.py").read_text()
    for name in PAGES:
        assert f"app_pages/{name}" in text, f"{name} is not in st.navigation"


@pytest.mark.parametrize("page", PAGES)
def test_page_opens_without_exception(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(f"app_pages/{page}")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} has no title"
    sidebar = " ".join(c.value for c in at.sidebar.markdown)
    assert str(tmp_path / "runs") in sidebar
