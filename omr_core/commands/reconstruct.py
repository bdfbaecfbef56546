"""`omr reconstruct`: rebuild staves, stems and ledger lines of a page from a list of notehead boxes."""

from __future__ import annotations

import argparse
import sys

VERB = "reconstruct"
HELP = "rebuild staves, stems and ledger lines of a page from notehead boxes (heads.json)"
DESCRIPTION = (
    "Find the staves of IMAGE and rebuild its stems and ledger lines from the noteheads in heads.json "
    '(a list of {"bbox": [x0, y0, x1, y1], "name": "<DeepScoresV2 notehead class>"}). Writes '
    '{"staves": [...], "systems": [...], "stems": [{"bbox", "noteheads"}], "ledger_lines": [{"bbox"}]}.'
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="page image (PNG/JPEG/TIFF) or PDF")
    p.add_argument("--noteheads", required=True, metavar="HEADS_JSON", help="notehead boxes (JSON list)")
    p.add_argument("--out", required=True, metavar="OUT_JSON", help="where to write the result")
    p.add_argument("--page", type=int, default=1, help="page number for PDF/TIFF files (1-based, default 1)")


def read_noteheads(path: str) -> list:  # type: ignore[type-arg]
    """Read and validate a heads.json file (raises DataFormatError with the file name)."""
    from pathlib import Path

    import orjson

    from omr_core.errors import DataFormatError
    from omr_core.review import parse_noteheads

    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: no such notehead file")
    try:
        items = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DataFormatError(f"{p}: not valid JSON ({exc})") from None
    if isinstance(items, dict) and "noteheads" in items:  # an `omr review` result works too
        items = items["noteheads"]
    return parse_noteheads(items, source=str(p))


def run(args: argparse.Namespace) -> int:
    from omr_core.review import load_page, write_json
    from omr_core.review.reconstruct import reconstruct

    heads = read_noteheads(args.noteheads)
    page = load_page(args.image, page=args.page - 1)
    rec = reconstruct(page.gray, heads)
    write_json(args.out, rec.to_dict())
    ms = sum(rec.timings.values()) * 1000
    print(
        f"{args.image}: {len(rec.staves)} staves in {len(rec.systems)} systems, {len(rec.stems)} stems, "
        f"{len(rec.ledger_lines)} ledger lines from {len(heads)} noteheads ({ms:.0f} ms) -> {args.out}",
        file=sys.stderr,
    )
    return 0
