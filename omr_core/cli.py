"""`omr <verb>`: the command-line face of every omr_core capability."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from omr_core import __version__
from omr_core.errors import OmrError


def _verb_modules() -> list[ModuleType]:
    """Every module in `omr_core.commands` is one verb (attributes VERB, HELP, add_arguments, run)."""
    import omr_core.commands as pkg

    mods = [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
    return sorted((m for m in mods if hasattr(m, "VERB")), key=lambda m: m.VERB)


def build_parser() -> argparse.ArgumentParser:
    """The `omr` argument parser with one sub-command per verb module."""
    parser = argparse.ArgumentParser(
        prog="omr",
        description="Train and inspect YOLO models for optical music recognition (DeepScoresV2-style data).",
    )
    parser.add_argument("--version", action="version", version=f"omr {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for mod in _verb_modules():
        p = sub.add_parser(mod.VERB, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `omr` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except OmrError as exc:
        print(f"omr {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"omr {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
