"""`omr read`: read the music of a page (notes, chords, rests, measures) and write MusicXML and MIDI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VERB = "read"
HELP = "read the notes of a page (image/PDF with a model, or a DeepScoresV2 JSON page) to MusicXML and MIDI"
DESCRIPTION = (
    "Read the music of one page: pitch from clef, staff position, key signature and accidentals; rhythm from "
    "noteheads, flags, beams, dots and tuplets; chords, rests and measures. From IMAGE|PDF the symbols are a "
    "model's detections (--model); from a DeepScoresV2 JSON they are its annotations (ground truth), and when the "
    "JSON carries note truth (pages from `omr synth`) the share of notes read right is printed. Notes the reading "
    "is unsure of are coloured red in the MusicXML and listed in --json."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="page image (PNG/JPEG/TIFF), PDF, or a DeepScoresV2 JSON file")
    p.add_argument("--model", metavar="PT", help="Ultralytics detection checkpoint (needed for images and PDFs)")
    p.add_argument("--out", required=True, metavar="SCORE_MUSICXML", help="where to write the MusicXML")
    p.add_argument("--midi", metavar="MID", help="also write a MIDI file")
    p.add_argument("--json", metavar="READING_JSON", help="also write the notes read (pitch, duration, doubts)")
    p.add_argument("--page", type=int, default=1, help="page number (1-based) in a PDF/TIFF or DeepScoresV2 JSON")
    p.add_argument("--filename", help="page of a DeepScoresV2 JSON by its image file name (instead of --page)")
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    p.add_argument("--imgsz", type=int, default=1024, help="inference size (default 1024)")
    p.add_argument("--tile", action="store_true", help="tiled inference")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def run(args: argparse.Namespace) -> int:
    from omr_core.atomic import write_bytes
    from omr_core.errors import OmrError
    from omr_core.review import NoteTruth, midi_bytes, musicxml_bytes, write_json

    src = Path(args.source)
    truth: tuple[NoteTruth, ...] = ()
    if src.suffix.lower() == ".json":
        from omr_core.review import load_deepscores_page, read_deepscores_page

        dpage = load_deepscores_page(src, args.filename if args.filename else args.page - 1)
        if dpage.image is None:
            print(f"omr read: warning: image {dpage.filename!r} not found next to {src}", file=sys.stderr)
        reading = read_deepscores_page(dpage)
        truth = dpage.truth
        title = dpage.filename
    else:
        if not args.model:
            raise OmrError(
                f"{src}: reading an image needs --model (a detector trained on DeepScoresV2 classes); "
                "to read ground-truth symbols pass the page's DeepScoresV2 JSON instead"
            )
        from omr_core.review import load_model, load_page, read_review, review_page

        page = load_page(src, page=args.page - 1)
        model = load_model(args.model, device=args.device)
        res = review_page(page.gray, source=str(src), model=model, conf=args.conf, imgsz=args.imgsz, tile=args.tile, device=args.device)
        for m in (*page.notes, *res.messages):
            print(f"omr read: warning: {m}", file=sys.stderr)
        reading = read_review(page.gray, res.detections)
        title = src.name
    for m in reading.messages:
        print(f"omr read: warning: {m}", file=sys.stderr)
    write_bytes(args.out, musicxml_bytes(reading, title=title))
    if args.midi:
        write_bytes(args.midi, midi_bytes(reading))
    if args.json:
        write_json(args.json, reading.to_dict())
    doubts = sum(1 for n in reading.notes if n.uncertain)
    line = (
        f"{src}: {len(reading.notes)} notes ({doubts} uncertain), {len(reading.rests)} rests, "
        f"{len({(e.system, e.measure) for e in (*reading.notes, *reading.rests)})} measures in {len(reading.systems)} systems, "
        f"read in {reading.timings.get('total', 0) * 1000:.0f} ms -> {args.out}"
    )
    print(line, file=sys.stderr)
    if truth:
        from omr_core.evaluation import notes_read_right

        score = notes_read_right(reading, truth)
        print(
            f"notes read right: pitch {score.pitch_share:.2%}, pitch + duration {score.both_share:.2%} "
            f"of {score.notes} notes",
            file=sys.stderr,
        )
    return 0
