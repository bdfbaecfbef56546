"""Every page opens in headless Chromium against a real server, without a Streamlit exception box."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e

PAGES = {
    "": "Training & live monitor",  # the default page lives at "/"
    "compare": "Compare runs",
    "audit": "Class audit",
    "review": "Review a score",
    "failures": "Per-class failures",
}


def test_every_page_in_chromium(dashboard_server: str, browser_page: Any) -> None:
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    # The product works offline: no page asks anything of a host other than its own server (not even a favicon).
    elsewhere: list[str] = []
    browser_page.on("request", lambda r: None if r.url.startswith(dashboard_server) or r.url.startswith(("data:", "blob:"))
                    else elsewhere.append(r.url))
    for path, title in PAGES.items():
        browser_page.goto(f"{dashboard_server}/{path}")
        wait_for_app(browser_page)
        browser_page.get_by_role("heading", name=title).first.wait_for()
        assert browser_page.locator('[data-testid="stException"]').count() == 0, f"exception on /{path}"
        assert browser_page.get_by_text("Page not found").count() == 0, f"/{path} is not a page"
        sidebar = browser_page.locator('[data-testid="stSidebar"]').inner_text()
        assert "runs:" in sidebar and ("GPU" in sidebar)
        browser_page.screenshot(path=str(shots / f"{path or 'training'}.png"), full_page=True)
    assert elsewhere == [], f"pages fetched from other hosts: {sorted(set(elsewhere))}"


def test_health_endpoint(dashboard_server: str) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{dashboard_server}/_stcore/health", timeout=5) as r:  # noqa: S310 (loopback)
        assert r.status == 200 and r.read().strip() == b"ok"


def test_every_page_url_works_as_a_bookmark(dashboard_server: str, browser_page: Any) -> None:
    """A bookmark is a fresh load of the URL: each page's own path must open that page, the default one too."""
    for path, title in {**PAGES, "training": "Training & live monitor"}.items():
        browser_page.goto(f"{dashboard_server}/{path}")
        wait_for_app(browser_page)
        browser_page.get_by_role("heading", name=title).first.wait_for()
        assert browser_page.get_by_text("Page not found").count() == 0, f"/{path} opens 'Page not found'"
        assert browser_page.locator('[data-testid="stException"]').count() == 0, f"exception on /{path}"
