"""The token gate, seen in Chromium, when the server listens on a non-loopback address.

The address belongs to a test host the e2e harness makes once per session, before Chromium starts (`test_network`):
a network namespace joined to this machine by a veth pair (a /30 of 10.254.0.0/16 per test process), so traffic never leaves the machine.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.conftest import TEST_NET_NS_IP, NamespaceHost, start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def test_host(test_network: NamespaceHost) -> str:
    """The test network's namespace (made once per session, before Chromium starts: see `test_network`)."""
    if test_network.skip_reason:
        pytest.skip(test_network.skip_reason)
    return test_network.ns


def _serve(test_host: str, dashboard_env: dict[str, str], **extra: str) -> tuple[str, subprocess.Popen[bytes]]:
    url, proc, _ = start_server(
        {**dashboard_env, **extra}, address=TEST_NET_NS_IP, prefix=["ip", "netns", "exec", test_host]
    )
    return url, proc


def test_token_required_on_non_loopback(test_host: str, dashboard_env: dict[str, str], browser_page: Any) -> None:
    url, proc = _serve(test_host, dashboard_env, OMR_TOKEN="correct-horse-battery")
    try:
        browser_page.goto(url)
        wait_for_app(browser_page)
        body = browser_page.locator('[data-testid="stMain"]').inner_text()
        assert "enter the access token" in body
        assert browser_page.get_by_role("heading", name="Training & live monitor").count() == 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser_page.screenshot(path=str(ARTIFACTS / "screenshots" / "token-gate.png"), full_page=True)

        box = browser_page.get_by_label("Access token (OMR_TOKEN)")
        box.fill("wrong")
        box.press("Enter")
        browser_page.locator('[data-testid="stMain"]').get_by_text("token you entered is wrong").first.wait_for()

        box.fill("correct-horse-battery")
        box.press("Enter")
        browser_page.get_by_role("heading", name="Training & live monitor").first.wait_for()
        wait_for_app(browser_page)  # the rerun that drew the heading is over: nothing is left from the gate
        assert "enter the access token" not in browser_page.locator('[data-testid="stMain"]').inner_text()
    finally:
        stop_server(proc)


def test_no_token_configured_disables_actions(test_host: str, dashboard_env: dict[str, str], browser_page: Any) -> None:
    url, proc = _serve(test_host, dashboard_env, OMR_PUBLIC_READ="1")
    try:
        browser_page.goto(url)
        wait_for_app(browser_page)
        body = browser_page.locator('[data-testid="stMain"]').inner_text()
        assert "no OMR_TOKEN is set" in body
        # Read-only viewing was allowed by OMR_PUBLIC_READ=1: the page itself is there.
        browser_page.get_by_role("heading", name="Training & live monitor").first.wait_for()
    finally:
        stop_server(proc)
