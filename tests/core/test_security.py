"""The access gate, constant-time token check, run-name sanitising and workspace confinement."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omr_core.errors import OmrError
from omr_core.security import decide, is_loopback, sanitize_run_name, tokens_match
from omr_core.workspace import Workspace
from tests.conftest import REPO


@pytest.mark.parametrize("addr", ["localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]", "LOCALHOST"])
def test_loopback(addr: str) -> None:
    assert is_loopback(addr)


@pytest.mark.parametrize("addr", ["", None, "0.0.0.0", "::", "10.254.254.2", "example.org", "192.168.1.5"])
def test_not_loopback(addr: str | None) -> None:
    assert not is_loopback(addr)


def test_tokens_match() -> None:
    assert tokens_match("s3cret", "s3cret")
    assert not tokens_match("s3cret", "s3cre")
    assert not tokens_match("s3cret", None)
    assert not tokens_match("", "")


def test_gate_decisions() -> None:
    assert decide("localhost", None, {}).can_act
    g = decide("0.0.0.0", None, {})
    assert not g.can_act and not g.can_view and "OMR_TOKEN" in g.reason
    g = decide("0.0.0.0", None, {"OMR_TOKEN": "abc", "OMR_PUBLIC_READ": "1"})
    assert g.can_view and not g.can_act
    g = decide("0.0.0.0", "nope", {"OMR_TOKEN": "abc"})
    assert not g.can_act and "wrong" in g.reason
    assert decide("0.0.0.0", "abc", {"OMR_TOKEN": "abc"}).can_act


@pytest.mark.parametrize("bad", ["", " ", "..", "../x", "a/b", "a b", "-x", "x" * 101, "ü", "a\\b"])
def test_bad_run_names(bad: str) -> None:
    with pytest.raises(OmrError):
        sanitize_run_name(bad)


def test_good_run_names() -> None:
    assert sanitize_run_name(" exp-1.v2_a ") == "exp-1.v2_a"


def test_confine(tmp_path: Path) -> None:
    ws = Workspace(tmp_path, tmp_path / "runs", tmp_path / "datasets").ensure()
    assert ws.confine("runs/a") == (tmp_path / "runs" / "a").resolve()
    with pytest.raises(OmrError):
        ws.confine("../etc/passwd")
    with pytest.raises(OmrError):
        ws.confine("/etc/passwd")
    outside = tmp_path.parent / f"outside-{os.getpid()}"
    outside.mkdir(exist_ok=True)
    (ws.runs / "link").symlink_to(outside)
    with pytest.raises(OmrError):
        ws.confine("runs/link/x")


def _workspace_root_from(site: Path, cwd: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMR_")}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", "from omr_core.workspace import get_workspace; import omr_core; "
                          "print(get_workspace().root); print(omr_core.__file__)"],
                         cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=60)
    root, package = out.stdout.splitlines()
    assert Path(package).is_relative_to(site), package  # the copy was imported, not the checkout
    return Path(root)


def test_default_workspace_is_never_inside_site_packages(tmp_path: Path) -> None:
    # A non-editable install: the package alone in a site-packages folder, started from a project folder.
    site = tmp_path / "venv" / "lib" / "site-packages"
    shutil.copytree(REPO / "omr_core", site / "omr_core", ignore=shutil.ignore_patterns("__pycache__"))
    project = tmp_path / "my-project"
    project.mkdir()
    root = _workspace_root_from(site, project)
    assert root == project.resolve() and not root.is_relative_to(site)


def test_default_workspace_of_a_source_checkout_is_the_checkout(tmp_path: Path) -> None:
    assert _workspace_root_from(REPO, tmp_path) == REPO
