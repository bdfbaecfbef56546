"""Who may act: the access-token gate for non-loopback servers, run-name sanitising, constant-time checks."""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
from dataclasses import dataclass

from omr_core.errors import OmrError

TOKEN_ENV = "OMR_TOKEN"
#: Set to 1 to let anyone who can reach a non-loopback server *view* pages (actions still need the token).
PUBLIC_READ_ENV = "OMR_PUBLIC_READ"

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def is_loopback(address: str | None) -> bool:
    """True when a server bound to ``address`` is reachable from this machine only.

    An empty or missing address means "every interface" to Streamlit (and to most servers), so it is *not*
    loopback.
    """
    if not address:
        return False
    host = address.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tokens_match(expected: str, supplied: str | None) -> bool:
    """Compare tokens in constant time; an empty expected token never matches."""
    if not expected or supplied is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), supplied.encode("utf-8"))


@dataclass(frozen=True)
class Gate:
    """The decision for one session.

    Attributes:
        can_view: Pages may be shown.
        can_act: Actions that start/stop processes, write files or load model files are allowed.
        loopback: The server listens on loopback only.
        reason: Why actions (or viewing) are refused; empty when everything is allowed.
    """

    can_view: bool
    can_act: bool
    loopback: bool
    reason: str = ""


def decide(address: str | None, supplied_token: str | None, env: dict[str, str] | None = None) -> Gate:
    """Decide what a session may do on a server bound to ``address`` given the token it supplied.

    Args:
        address: The server's bind address (Streamlit's ``server.address``).
        supplied_token: Token typed by the user (None when none was given).
        env: Environment to read ``OMR_TOKEN`` / ``OMR_PUBLIC_READ`` from (default: ``os.environ``).
    """
    env = dict(os.environ) if env is None else env
    if is_loopback(address):
        return Gate(can_view=True, can_act=True, loopback=True)
    expected = env.get(TOKEN_ENV, "")
    public_read = env.get(PUBLIC_READ_ENV, "").strip().lower() in {"1", "true", "yes"}
    where = f"'{address}'" if address else "every interface"
    if not expected:
        return Gate(
            can_view=public_read,
            can_act=False,
            loopback=False,
            reason=(
                f"This server listens on {where}, not only on this machine, and no {TOKEN_ENV} is set: "
                "actions that start processes, write files or load model files are disabled. "
                f"Restart it with {TOKEN_ENV}=<a long random secret>, or on localhost."
            ),
        )
    if tokens_match(expected, supplied_token):
        return Gate(can_view=True, can_act=True, loopback=False)
    return Gate(
        can_view=public_read,
        can_act=False,
        loopback=False,
        reason=(
            f"This server listens on {where}: enter the access token ({TOKEN_ENV}) to start or stop "
            "training, write files or load model files."
            + (" The token you entered is wrong." if supplied_token else "")
        ),
    )


def sanitize_run_name(name: str) -> str:
    """Return ``name`` if it is a safe run-folder name, else raise `OmrError` saying what is allowed."""
    name = (name or "").strip()
    if not _RUN_NAME.match(name) or name in {".", ".."}:
        raise OmrError(
            f"run name {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no slashes, no spaces)"
        )
    return name
