"""Where notifications go: Apprise URLs per event kind, kept in the workspace settings, never shown back in full.

The settings file is ``<workspace>/settings/notify.json`` (folder 0700, file 0600: it holds the tokens inside the
URLs). ``OMR_NOTIFY`` adds URLs (separated by spaces, commas or newlines) that receive every kind. Nothing of a URL
is ever written to a run folder, a log or an export: run folders only see the target's number and its masked form.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from omr_core.errors import OmrError
from omr_core.workspace import Workspace, get_workspace

NOTIFY_ENV = "OMR_NOTIFY"
DASHBOARD_URL_ENV = "OMR_DASHBOARD_URL"
SETTINGS_NAME = "notify.json"

#: Every kind of notification, with what it means (the order the page and `omr notify kinds` show them in).
KINDS: dict[str, str] = {
    "finished": "a run finished all its epochs",
    "failed": "a run failed (with the reason and the last epoch), or its worker vanished (killed)",
    "stopped": "a run stopped on request",
    "nonfinite_loss": "a loss became NaN or infinite (also Ultralytics' NaN recovery)",
    "diverging": "the loss is rising steadily",
    "not_learning": "the loss stays flat",
    "cuda_oom": "CUDA ran out of memory, or Ultralytics halved the batch",
    "assigner_fallback": "TaskAlignedAssigner ran out of GPU memory and fell back",
    "stalled": "no batch for far longer than usual",
    "vram_high": "GPU memory above 95 %",
    "throughput_collapse": "images per second collapsed",
    "sweep_finished": "a sweep spent its budget (the best trial and how to launch it)",
}
ALL = "*"


class NotifySettingsError(OmrError):
    """A notification URL or settings file that cannot be used as given."""


@dataclass(frozen=True)
class Target:
    """One Apprise URL and the kinds it receives (``("*",)`` = every kind)."""

    url: str
    kinds: tuple[str, ...] = (ALL,)
    source: str = "settings"  # "settings" (the file) or "env" (OMR_NOTIFY)

    def wants(self, kind: str) -> bool:
        return ALL in self.kinds or kind in self.kinds

    @property
    def masked(self) -> str:
        return mask_url(self.url)


@dataclass(frozen=True)
class Retry:
    """How often a failed delivery is tried again (``attempts`` in all), and the waits between tries."""

    attempts: int = 3
    backoff_s: tuple[float, ...] = (5.0, 30.0)

    def wait(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt`` (2, 3, ...)."""
        if not self.backoff_s:
            return 0.0
        return float(self.backoff_s[min(attempt - 2, len(self.backoff_s) - 1)])


@dataclass(frozen=True)
class NotifySettings:
    """Targets, the dashboard address for links, and the retry policy."""

    targets: tuple[Target, ...] = ()
    dashboard_url: str = ""
    retry: Retry = field(default_factory=Retry)

    def targets_for(self, kind: str) -> list[tuple[int, Target]]:
        """(1-based number, target) of every target that receives ``kind``."""
        return [(i, t) for i, t in enumerate(self.targets, 1) if t.wants(kind)]

    def run_link(self, run_name: str) -> str:
        """The run's page on the dashboard, or "" when the dashboard's address is not known."""
        base = self.dashboard_url.rstrip("/")
        return f"{base}/training?run={run_name}" if base else ""


def mask_url(url: str) -> str:
    """A form of ``url`` that names the service and shows no secret: ``json://127…`` (scheme + 3 characters)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "****"
    return f"{scheme}://{rest[:3]}…" if len(rest) > 3 else f"{scheme}://****"


def scrub(text: str, urls: list[str]) -> str:
    """``text`` with every part of every URL in ``urls`` that could be a secret replaced by ``****``."""
    parts: set[str] = set()
    for url in urls:
        parts.add(url)
        try:
            sp = urlsplit(url)
        except ValueError:
            continue
        for p in (sp.netloc, sp.hostname or "", sp.username or "", sp.password or "", sp.path, sp.query):
            parts.add(p)
        parts.update(re.split(r"[/&=?:@]", f"{sp.netloc}/{sp.path}?{sp.query}"))
    for p in sorted((p for p in parts if len(p) >= 3), key=len, reverse=True):
        text = text.replace(p, "****")
    return text


def settings_path(ws: Workspace | None = None) -> Path:
    return (ws or get_workspace()).root / "settings" / SETTINGS_NAME


def check_url(url: str) -> str:
    """``url`` stripped, if Apprise knows its service; else a `NotifySettingsError` that says what to do."""
    url = (url or "").strip()
    if "://" not in url:
        raise NotifySettingsError(
            "a notification URL looks like service://…: e.g. ntfy://topic, json://host:port/path, "
            "mailto://user:password@example.com, discord://id/token (see Apprise's list of services)"
        )
    import apprise

    if apprise.Apprise.instantiate(url) is None:
        raise NotifySettingsError(f"Apprise does not understand {mask_url(url)}: check the service name and its parts")
    return url


def check_kinds(kinds: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    kinds = tuple(kinds or (ALL,))
    unknown = [k for k in kinds if k != ALL and k not in KINDS]
    if unknown:
        raise NotifySettingsError(f"unknown notification kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    return kinds


def _env_targets(env: dict[str, str]) -> list[Target]:
    raw = env.get(NOTIFY_ENV, "")
    return [Target(u, (ALL,), "env") for u in re.split(r"[\s,]+", raw) if u.strip()]


def _read_file(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        raise NotifySettingsError(f"{path} is not readable JSON ({exc}): fix or delete it") from exc
    if not isinstance(doc, dict):
        raise NotifySettingsError(f"{path} must hold a JSON object")
    return doc


def load_settings(ws: Workspace | None = None, env: dict[str, str] | None = None) -> NotifySettings:
    """The settings file plus ``OMR_NOTIFY``; a missing file means no targets of its own."""
    env = dict(os.environ) if env is None else env
    doc = _read_file(settings_path(ws))
    targets = []
    for i, t in enumerate(doc.get("targets") or [], 1):
        if not isinstance(t, dict) or not isinstance(t.get("url"), str):
            raise NotifySettingsError(f"{settings_path(ws)}: target {i} needs a 'url' string")
        targets.append(Target(t["url"], check_kinds(t.get("kinds")), "settings"))
    r = doc.get("retry") or {}
    retry = Retry(int(r.get("attempts", 3)), tuple(float(x) for x in r.get("backoff_s", (5.0, 30.0))))
    url = str(doc.get("dashboard_url") or env.get(DASHBOARD_URL_ENV, ""))
    return NotifySettings(tuple(targets + _env_targets(env)), url, retry)


def save_settings(settings: NotifySettings, ws: Workspace | None = None) -> Path:
    """Write the file's own targets (not those of ``OMR_NOTIFY``), readable by its owner only."""
    from omr_core.atomic import write_atomic

    path = settings_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    doc = {
        "targets": [{"url": t.url, "kinds": list(t.kinds)} for t in settings.targets if t.source == "settings"],
        "dashboard_url": settings.dashboard_url,
        "retry": {"attempts": settings.retry.attempts, "backoff_s": list(settings.retry.backoff_s)},
    }
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"

    def write(tmp: Path) -> None:  # created owner-only: the URLs hold tokens, never readable by others for a moment
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    write_atomic(path, write)
    os.chmod(path, 0o600)
    return path


def add_target(url: str, kinds: list[str] | None = None, ws: Workspace | None = None) -> NotifySettings:
    """Add a URL to the settings file (checked by Apprise first); returns the new settings."""
    s = load_settings(ws)
    t = Target(check_url(url), check_kinds(kinds))
    if any(x.url == t.url and x.source == "settings" for x in s.targets):
        raise NotifySettingsError(f"{t.masked} is already a target: remove it first to change its kinds")
    own = [x for x in s.targets if x.source == "settings"] + [t]
    new = NotifySettings(tuple(own), s.dashboard_url, s.retry)
    save_settings(new, ws)
    return load_settings(ws)


def remove_target(number: int, ws: Workspace | None = None) -> NotifySettings:
    """Remove target ``number`` (1-based, as listed) from the settings file."""
    s = load_settings(ws)
    if not 1 <= number <= len(s.targets):
        raise NotifySettingsError(f"there is no target {number} (there are {len(s.targets)})")
    if s.targets[number - 1].source != "settings":
        raise NotifySettingsError(f"target {number} comes from {NOTIFY_ENV}: change that variable instead")
    own = [t for i, t in enumerate(s.targets, 1) if t.source == "settings" and i != number]
    save_settings(NotifySettings(tuple(own), s.dashboard_url, s.retry), ws)
    return load_settings(ws)


def set_dashboard_url(url: str, ws: Workspace | None = None) -> NotifySettings:
    s = load_settings(ws)
    url = url.strip()
    if url and not re.match(r"^https?://[^\s/]+", url):
        raise NotifySettingsError("the dashboard address must look like http://host:8501")
    own = tuple(t for t in s.targets if t.source == "settings")
    save_settings(NotifySettings(own, url, s.retry), ws)
    return load_settings(ws)
