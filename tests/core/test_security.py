"""The access gate, constant-time token check, run-name sanitising and workspace confinement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omr_core.errors import OmrError
from omr_core.security import decide, is_loopback, sanitize_run_name, tokens_match
from omr_core.workspace import Workspace


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
