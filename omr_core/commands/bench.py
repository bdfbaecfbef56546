"""`omr bench`: measure the product on a dataset and print a table (`reconstruct`, `read`, `model`).

The repository's own benchmark suite (bench/) is a developer tool: `make bench` runs `python -m bench.run_all`;
the installed CLI never imports bench/ or tests/.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from omr_core.commands._progress import progress_bar
from omr_core.errors import OmrError

VERB = "bench"
HELP = ("measure: `reconstruct DATASET_JSON` scores stems/ledger lines/staves; `read DATASET_JSON` notes read right; "
        "`model --model PT` scores a detector on held-out pages")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="BENCH")
    r = sub.add_parser("reconstruct", help="score staff detection and stem/ledger-line reconstruction")
    r.add_argument("dataset", help="DeepScoresV2 annotation file (e.g. deepscores_test.json)")
    r.add_argument("--images", metavar="DIR", help="page images folder (default <json folder>/images)")
    r.add_argument("--limit", type=int, help="score only the first N pages")
    r.add_argument("--pages", action="store_true", help="also print one line per page")
    r.add_argument("--json", metavar="OUT", help="write the rows and per-page scores as JSON")
    r.set_defaults(_bench=_reconstruct)
    rd = sub.add_parser("read", help="notes read right (pitch, pitch + duration) and reading time per page")
    rd.add_argument("dataset", help="DeepScoresV2 annotation file written by `omr synth` (note truth, images next to it)")
    rd.add_argument("--model", metavar="PT", help="read from this model's detections instead of the annotations")
    rd.add_argument("--limit", type=int, help="read only the first N pages")
    rd.add_argument("--pages", action="store_true", help="also print one line per page")
    rd.add_argument("--wrong", type=int, default=0, metavar="N", help="also list the first N wrong notes")
    rd.set_defaults(_bench=_read)
    m = sub.add_parser("model", help="benchmark a detector on held-out engraved pages (AP, noteheads, stems, time)")
    m.add_argument("--model", required=True, metavar="PT", help="detection weights (best.pt or models/<name>.pt)")
    m.add_argument("--work", default=None, metavar="DIR",
                   help="folder for the engraved pages and evaluations (default <workspace datasets>/bench-model)")
    m.add_argument("--pages", type=int, default=20, help="held-out pages per degrade (default %(default)s)")
    m.add_argument("--seed", type=int, default=None, help="engraver seed of the held-out pages (default 303)")
    m.add_argument("--json", metavar="OUT", help="write rows, per-class tables and per-page scores as JSON")
    m.set_defaults(_bench=_model)


def run(args: argparse.Namespace) -> int:
    fn: Callable[[argparse.Namespace], int] | None = getattr(args, "_bench", None)
    if fn is None:
        raise OmrError(
            "name a benchmark: `omr bench reconstruct DATASET_JSON`, `omr bench read DATASET_JSON`, "
            "or `omr bench model --model PT` (the repository's benchmark suite: `make bench`)"
        )
    return fn(args)


def _read(args: argparse.Namespace) -> int:
    from omr_core.evaluation import bench_reading, format_rows, model_detector

    detector = model_detector(args.model) if args.model else None
    with progress_bar("read", unit="page") as progress:
        rep = bench_reading(args.dataset, detector=detector, limit=args.limit, progress=progress)
    if not rep.pages:
        raise OmrError(f"{args.dataset}: no page with note truth and its image (pages engraved by `omr synth` have both)")
    if args.pages:
        for p in rep.pages:
            s = p.score
            print(f"{p.filename}: {s.notes} notes, pitch {s.pitch_share:.4f}, pitch + duration {s.both_share:.4f}, {p.cpu_s * 1000:.0f} ms")
    for w in rep.total.wrong[: args.wrong]:
        print(f"wrong: {w.truth_pitch} {w.truth_quarter_length} read {w.read_pitch} {w.read_quarter_length} at {[round(v) for v in w.bbox]}")
    rows = rep.rows(model=bool(args.model))
    print(format_rows(rows))
    return 0 if all(r["ok"] for r in rows) else 1


def _reconstruct(args: argparse.Namespace) -> int:
    from omr_core.evaluation import bench_reconstruct, format_rows
    from omr_core.review import write_json

    with progress_bar("reconstruct", unit="page") as progress:
        rep = bench_reconstruct(args.dataset, args.images, limit=args.limit, progress=progress)
    rows = rep.rows()
    if args.pages:
        for p in rep.pages:
            extra = f"  ERROR {p.error}" if p.error else ""
            print(
                f"{p.filename}: stems F1 {p.stems.f1:.3f} ({p.stems.tp}/{p.stems.pred}/{p.stems.gt}) "
                f"ledger F1 {p.ledgers.f1:.3f} ({p.ledgers.tp}/{p.ledgers.pred}/{p.ledgers.gt}) "
                f"staves {p.staves_found}/{p.staves_gt} line err {p.line_error_px:.2f}px "
                f"{p.ms_total:.0f}ms{extra}"
            )
    print(format_rows(rows))
    if args.json:
        write_json(
            args.json,
            {
                "rows": rows,
                "pages": [
                    {
                        "filename": p.filename,
                        "stems": vars(p.stems),
                        "ledgers": vars(p.ledgers),
                        "staves_found": p.staves_found,
                        "staves_gt": p.staves_gt,
                        "line_error_px": p.line_error_px,
                        "ms_staff": p.ms_staff,
                        "ms_reconstruct": p.ms_reconstruct,
                        "error": p.error,
                        "misses": p.misses,
                    }
                    for p in rep.pages
                ],
            },
        )
    return 0 if all(r["ok"] for r in rows) else 1


def _model(args: argparse.Namespace) -> int:
    from omr_core.evaluation import HELDOUT_SEED, bench_model, format_rows, per_class_markdown
    from omr_core.review import write_json
    from omr_core.workspace import get_workspace

    if args.pages < 1:
        raise OmrError("--pages must be at least 1 (20 or more for a recorded benchmark)")
    seed = HELDOUT_SEED if args.seed is None else args.seed
    if seed in (101, 202):
        raise OmrError(f"seed {seed} is one the reference model trains on; held-out pages need another seed")
    work = args.work or get_workspace().datasets / "bench-model"
    with progress_bar("bench model", unit="step") as progress:
        rep = bench_model(args.model, work, pages=args.pages, seed=seed, progress=progress)
    print(format_rows(rep.rows()))
    print()
    print(per_class_markdown(rep))
    if args.json:
        write_json(args.json, rep.to_dict())
    return 0
