"""`omr classes`: print the DeepScoresV2 class table (id, YOLO index, name, group, flags): 136 classes, 208 with --all."""

from __future__ import annotations

import argparse
import json

from omr_core.classes import class_table

VERB = "classes"
HELP = "list the 136 deepscores-set classes (--all: all 208 official classes), or resolve names/ids"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tokens", nargs="*", help="names or ids to resolve (default: list every deepscores class)")
    p.add_argument("--all", action="store_true", help="list all 208 official classes (the muscima++ set 137-208 too)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    table = class_table()
    if args.tokens:
        cats = [table.resolve(t) for t in args.tokens]
    else:
        cats = sorted(table, key=lambda c: c.id) if args.all else list(table.deepscores)
    rows = [
        {
            "id": c.id,
            "yolo_index": c.yolo_index,
            "name": c.name,
            "group": c.group,
            "critical": c.critical,
            "no_samples": c.no_samples,
        }
        for c in cats
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':>4} {'yolo':>4}  {'name':<32} {'group':<16} flags")
    for r in rows:
        flags = " ".join(f for f, on in (("critical", r["critical"]), ("no-samples", r["no_samples"])) if on)
        yolo = "" if r["yolo_index"] is None else r["yolo_index"]
        print(f"{r['id']:>4} {yolo:>4}  {r['name']:<32} {r['group']:<16} {flags}")
    return 0
