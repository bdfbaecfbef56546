"""The token gate, seen in Chromium, when the server listens on a non-loopback address.

The address belongs to a test host this test makes itself: a network namespace joined to this machine by a
veth pair (10.254.254.0/24), so traffic never leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.conftest import start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e

NS = f"omr-e2e-{os.getpid()}"
HOST_IP, NS_IP = "10.254.254.1", "10.254.254.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def test_host() -> Iterator[str]:
    """A network namespace reachable from here at NS_IP; yields the namespace name."""
    veth = f"vo{os.getpid() % 100000}"
    try:
        _ip("netns", "add", NS)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot create a network namespace here (needs root and iproute2): {exc}")
    try:
        _ip("link", "add", f"{veth}a", "type", "veth", "peer", "name", f"{veth}b")
        _ip("link", "set", f"{veth}b", "netns", NS)
        _ip("addr", "add", f"{HOST_IP}/24", "dev", f"{veth}a")
        _ip("link", "set", f"{veth}a", "up")
        _ip("netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/24", "dev", f"{veth}b")
        _ip("netns", "exec", NS, "ip", "link", "set", f"{veth}b", "up")
        _ip("netns", "exec", NS, "ip", "link", "set", "lo", "up")
        yield NS
    finally:
        subprocess.run(["ip", "link", "del", f"{veth}a"], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def _serve(test_host: str, dashboard_env: dict[str, str], **extra: str) -> tuple[str, subprocess.Popen[bytes]]:
    url, proc, _ = start_server({**dashboard_env, **extra}, address=NS_IP, prefix=["ip", "netns", "exec", test_host])
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


def test_no_token_configured_disables_actions(
    test_host: str, dashboard_env: dict[str, str], browser_page: Any
) -> None:
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
