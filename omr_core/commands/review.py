"""`omr review`: detect symbols on a page with a trained model, find staves, rebuild stems and ledger lines."""

from __future__ import annotations

import argparse
import sys

VERB = "review"
HELP = "review a score page: model detections, staves, rebuilt stems and ledger lines (JSON, PNG overlay)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="page image (PNG/JPEG/TIFF) or PDF")
    p.add_argument("--model", metavar="PT", help="Ultralytics detection checkpoint (best.pt); omit for staves only")
    p.add_argument("--noteheads", metavar="HEADS_JSON", help="rebuild from these noteheads instead of the model's")
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    p.add_argument("--iou", type=float, default=0.5, help="NMS IoU threshold (default 0.5)")
    p.add_argument("--imgsz", type=int, default=None,
                   help="inference size (default: the size the model was trained at, else 1024)")
    p.add_argument("--tile", action=argparse.BooleanOptionalAction, default=None,
                   help="tiled inference: overlapping tiles of the training tile size (else imgsz) merged by NMS "
                        "(default: as the model was trained)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--page", type=int, default=1, help="page number for PDF/TIFF files (1-based)")
    p.add_argument("--out", required=True, metavar="RESULT_JSON", help="where to write the result JSON")
    p.add_argument("--overlay", metavar="PNG", help="also write an annotated PNG")
    p.add_argument("--deepscores", metavar="JSON", help="also write the page as a DeepScoresV2 annotation file")


def run(args: argparse.Namespace) -> int:
    from omr_core.errors import OmrError
    from omr_core.review import draw_overlay, load_model, load_page, review_page, write_json, write_png

    if not 0.0 <= args.conf <= 1.0 or not 0.0 <= args.iou <= 1.0:
        raise OmrError("--conf and --iou must be between 0 and 1")
    if args.imgsz is not None and not 32 <= args.imgsz <= 8192:
        raise OmrError("--imgsz must be between 32 and 8192")
    page = load_page(args.image, page=args.page - 1)
    heads = None
    if args.noteheads:
        from omr_core.commands.reconstruct import read_noteheads

        heads = read_noteheads(args.noteheads)
    model = load_model(args.model) if args.model else None
    res = review_page(
        page.gray,
        source=str(args.image),
        model=model,
        noteheads=heads,
        conf=args.conf,
        iou=args.iou,
        imgsz=args.imgsz,
        tile=args.tile,
        device=args.device,
    )
    write_json(args.out, res.to_dict())
    if args.overlay:
        write_png(args.overlay, draw_overlay(page.gray, res))
    if args.deepscores:
        write_json(args.deepscores, res.to_deepscores())
    for m in (*page.notes, *res.messages):
        print(f"omr review: warning: {m}", file=sys.stderr)
    if res.inference is not None:
        print(f"omr review: ran the model {res.inference.summary}", file=sys.stderr)
    t = res.timings
    print(
        f"{args.image}: {len(res.detections)} detections, {len(res.staves)} staves, {len(res.stems)} stems, "
        f"{len(res.ledger_lines)} ledger lines (inference {t.get('inference', 0) * 1000:.0f} ms, staff "
        f"{t.get('staff', 0) * 1000:.0f} ms, reconstruction {t.get('reconstruct', 0) * 1000:.0f} ms) -> {args.out}",
        file=sys.stderr,
    )
    return 0
