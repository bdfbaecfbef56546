"""Browser harness: a real `streamlit run dashboard/app.py` on a free port, driven by Debian Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS, REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:  # noqa: S310 (loopback)
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url}/_stcore/health did not answer within {timeout} s")


def start_server(
    env_extra: dict[str, str], address: str = "127.0.0.1", prefix: list[str] | None = None
) -> tuple[str, subprocess.Popen[bytes], Path]:
    """Start the dashboard (optionally under a command prefix such as `ip netns exec NS`).

    Returns (base url, process, log path).
    """
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"streamlit-{port}.log"
    env = {**os.environ, "YOLO_OFFLINE": "1", **env_extra}
    cmd = [
        *(prefix or []),
        sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]
    fh = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{address}:{port}"
    try:
        wait_healthy(url, proc)
    except Exception:
        stop_server(proc)
        raise
    return url, proc, log


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def dashboard_env(tmp_path: Path) -> dict[str, str]:
    """Environment of the server under test; tests may add keys before requesting `dashboard_server`."""
    ws = tmp_path / "workspace"
    (ws / "runs").mkdir(parents=True)
    (ws / "datasets").mkdir()
    return {"OMR_WORKSPACE": str(ws), "YOLO_CONFIG_DIR": str(tmp_path / "yolo-config")}


@pytest.fixture
def dashboard_server(dashboard_env: dict[str, str]) -> Iterator[str]:
    url, proc, _log = start_server(dashboard_env)
    try:
        yield url
    finally:
        stop_server(proc)


#: The test host of the non-loopback tests: a network namespace joined to this machine by a veth pair.
#: A /30 of its own per test process (10.254.0.0/16 holds 16,384 of them), so two suites on one machine never
#: route to each other's host.
_NET = 4 * (os.getpid() % 16384)
TEST_NET_HOST_IP, TEST_NET_NS_IP = f"10.254.{_NET // 256}.{_NET % 256 + 1}", f"10.254.{_NET // 256}.{_NET % 256 + 2}"


@dataclass(frozen=True)
class NamespaceHost:
    """The namespace (``ns``) reachable from here at ``ns_ip``, or why there is none (``skip_reason``)."""

    ns: str = ""
    ns_ip: str = TEST_NET_NS_IP
    skip_reason: str = ""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def test_network() -> Iterator[NamespaceHost]:
    """Make the test host once per session, *before* Chromium starts, and remove it only after Chromium closed.

    Chromium drops every request in flight when this machine's network changes (net::ERR_NETWORK_CHANGED): a veth
    pair added or removed while a page loads leaves that page without its scripts, blank for ever. So the network
    is complete before the browser starts and stays so until it stops: the host end gets no IPv6 address that
    could appear later (``addrgenmode none``), and the fixture returns only once that end is operationally up.
    """
    ns = f"omr-e2e-{os.getpid()}"
    veth = f"vo{os.getpid() % 100000}"
    try:
        _ip("netns", "add", ns)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        yield NamespaceHost(skip_reason=f"cannot create a network namespace here (needs root and iproute2): {exc}")
        return
    try:
        _ip("link", "add", f"{veth}a", "type", "veth", "peer", "name", f"{veth}b")
        _ip("link", "set", f"{veth}a", "addrgenmode", "none")
        _ip("link", "set", f"{veth}b", "netns", ns)
        _ip("addr", "add", f"{TEST_NET_HOST_IP}/30", "dev", f"{veth}a")
        _ip("link", "set", f"{veth}a", "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{TEST_NET_NS_IP}/30", "dev", f"{veth}b")
        _ip("netns", "exec", ns, "ip", "link", "set", f"{veth}b", "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        operstate = Path(f"/sys/class/net/{veth}a/operstate")
        deadline = time.monotonic() + 30
        while operstate.read_text().strip() != "up":  # the carrier event is sent before this reads "up"
            if time.monotonic() > deadline:
                raise RuntimeError(f"{veth}a did not come up within 30 s")
            time.sleep(0.05)
        yield NamespaceHost(ns=ns)
    finally:
        subprocess.run(["ip", "link", "del", f"{veth}a"], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture(scope="session")
def browser(test_network: NamespaceHost) -> Iterator[Any]:
    """Debian Chromium, started after the test network exists (see `test_network`) and closed before it goes."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def browser_page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    yield page
    ctx.close()


def wait_for_app(page: Any) -> None:
    """Wait until the app is connected and idle: a script run has finished, none is in progress, nothing is stale.

    This says "idle now". Right after an action the rerun it causes may not have started yet, so a test then waits
    for what the action should show (`page.get_by_text(...).wait_for()`, ``wait_text``), never for a fixed time.
    """
    page.wait_for_selector('[data-testid="stMain"]', state="attached")
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            return app !== null
                && app.getAttribute('data-test-connection-state') === 'CONNECTED'
                && app.getAttribute('data-test-script-state') === 'notRunning'
                && document.querySelector('[data-stale="true"]') === null;
        }""",
        timeout=120_000,
    )
