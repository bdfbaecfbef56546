"""`omr notify`: push notifications for run events (Apprise URLs): show, add, remove, test."""

from __future__ import annotations

import argparse

from omr_core import notify
from omr_core.errors import OmrError

VERB = "notify"
HELP = "push notifications for run events (Slack, ntfy, email, webhooks, ... via Apprise URLs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("show", help="list the targets (URLs masked) and what each receives")
    sub.add_parser("kinds", help="list the kinds of notification")
    a = sub.add_parser("add", help="add an Apprise URL, e.g. ntfy://my-topic or json://host:port/path")
    a.add_argument("url")
    a.add_argument("--kinds", default="*", help=f"comma-separated kinds (default: every kind): {', '.join(notify.KINDS)}")
    r = sub.add_parser("remove", help="remove target N (as numbered by `omr notify show`)")
    r.add_argument("number", type=int)
    sub.add_parser("test", help="send a test message to every target now and say what happened")
    d = sub.add_parser("dashboard-url", help="the dashboard's address, for links to a run's page ('' to forget)")
    d.add_argument("url")


def _show() -> int:
    s = notify.load_settings()
    print(f"settings: {notify.settings_path()} (readable by its owner only)")
    if not s.targets:
        print(f"no targets: add one with `omr notify add URL`, or set {notify.NOTIFY_ENV}")
    for i, t in enumerate(s.targets, 1):
        kinds = "every kind" if "*" in t.kinds else ", ".join(t.kinds)
        src = f" (from {notify.NOTIFY_ENV})" if t.source == "env" else ""
        print(f"{i:>3}  {t.masked:<24} {kinds}{src}")
    print(f"links to runs: {s.dashboard_url or 'off (set the dashboard address with `omr notify dashboard-url`)'}")
    return 0


def run(args: argparse.Namespace) -> int:
    action = args.action or "show"
    if action == "show":
        return _show()
    if action == "kinds":
        for k, what in notify.KINDS.items():
            print(f"{k:<20} {what}")
        return 0
    if action == "add":
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        notify.add_target(args.url, kinds)
        print("added; a test message is one command away: omr notify test")
        return _show()
    if action == "remove":
        notify.remove_target(args.number)
        return _show()
    if action == "dashboard-url":
        notify.set_dashboard_url(args.url)
        return _show()
    if action == "test":
        results = notify.send_test()
        if not results:
            raise OmrError(f"no targets to test: add one with `omr notify add URL`, or set {notify.NOTIFY_ENV}")
        for d in results:
            print(f"{d.target:>3}  {d.masked:<24} {'sent' if d.ok else 'FAILED: ' + d.error}")
        return 0 if all(d.ok for d in results) else 1
    raise OmrError(f"unknown action {action!r}")
