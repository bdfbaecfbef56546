"""Push notifications for run events (Apprise): settings, messages, delivery, and the per-run notifier process."""

from omr_core.notify.deliver import Delivery, deliver
from omr_core.notify.messages import Notice, end_notice, event_notice
from omr_core.notify.settings import (
    KINDS,
    NOTIFY_ENV,
    NotifySettings,
    NotifySettingsError,
    Target,
    add_target,
    load_settings,
    mask_url,
    remove_target,
    set_dashboard_url,
    settings_path,
)
from omr_core.notify.watch import spawn_watcher


def send_test(settings: NotifySettings | None = None) -> list[Delivery]:
    """Send a test message to every target now (one try each); what happened per target."""
    from dataclasses import replace

    from omr_core.notify.settings import Retry

    s = settings or load_settings()
    s = replace(s, retry=Retry(1, ()))
    n = Notice("test", "-", "OMR dashboard: test message",
               "Notifications from the OMR training dashboard reach you here." + (f"\n{s.dashboard_url}" if s.dashboard_url else ""),
               "info")
    return deliver(n, _everything(s))


def _everything(s: NotifySettings) -> NotifySettings:
    from dataclasses import replace

    return replace(s, targets=tuple(replace(t, kinds=("*",)) for t in s.targets))


__all__ = [
    "KINDS", "NOTIFY_ENV", "Delivery", "Notice", "NotifySettings", "NotifySettingsError", "Target", "add_target",
    "deliver", "end_notice", "event_notice", "load_settings", "mask_url", "remove_target", "send_test",
    "set_dashboard_url", "settings_path", "spawn_watcher",
]
