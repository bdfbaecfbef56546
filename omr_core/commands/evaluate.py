"""`omr evaluate`: Ultralytics' per-class metrics, failure lists, confusion and an HTML report for one model."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omr_core.evaluation import Evaluation

VERB = "evaluate"
HELP = "per-class metrics (Ultralytics' validator), misses/false detections and an HTML report"
DESCRIPTION = (
    "Evaluate a YOLO model on a split of a YOLO data.yaml. Per-class P/R/AP come from Ultralytics' own validator; "
    "every prediction is kept to list misses (FN) and false detections (wrong class, poor localisation, duplicate, "
    "background). Results are cached: the same inputs load instantly. Writes per_class/failures CSV+JSON, "
    "confusion.csv, confidence.csv and report.html to the output folder."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="weights file (.pt), e.g. runs/exp1/weights/best.pt")
    p.add_argument("--data", help="YOLO data.yaml (default: the run's args.yaml data)")
    p.add_argument("--split", default="val", help="split to evaluate: val, test, ... (default: val)")
    p.add_argument("--imgsz", type=int, help="inference image size (default: the run's training size, else 640)")
    p.add_argument("--conf", type=float, default=0.25, help="detection threshold for failure lists (default: 0.25)")
    p.add_argument("--batch", type=int, help="validation batch size (default: 16 on a GPU, 1 on the CPU, where "
                   "Ultralytics' NMS time limit would drop predictions of larger batches)")
    p.add_argument("--device", help="torch device: cpu, 0, 0,1 (default: Ultralytics' choice)")
    p.add_argument("--out", help="output folder (default: <run>/evaluation/<weights>-<split>-<hash>)")
    p.add_argument("--force", action="store_true", help="re-run even when a cached evaluation exists")
    p.add_argument("--top", type=int, default=25, help="rows of the per-class table to print (default: 25, 0: all)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--notes", type=int, default=20, metavar="PAGES",
                   help="notes read right: read up to PAGES of the evaluated pages whose note truth is known (pages "
                        "engraved by `omr synth`) from the model, score pitch and duration and explain the wrong notes "
                        "(default: 20, 0: skip)")


def _f(v: float) -> str:
    return "  n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:5.3f}"


def run(args: argparse.Namespace) -> int:
    from omr_core.commands._progress import progress_bar
    from omr_core.evaluation import NO_LABELS, export_evaluation, per_class_export
    from omr_core.evaluation.evaluate import evaluate

    with progress_bar("evaluate", unit="batch", leave=True) as progress:
        ev = evaluate(
            args.model,
            args.data,
            args.split,
            imgsz=args.imgsz,
            conf=args.conf,
            batch=args.batch,
            device=args.device,
            out=args.out,
            force=args.force,
            progress=progress,
        )
    files = export_evaluation(ev, ev.folder, conf=args.conf, report=not args.no_report)
    per = per_class_export(ev, args.conf)
    s = ev.summary
    print(f"{'cached' if ev.cached else 'evaluated'}: {ev.label} · {ev.n_images} images, {ev.n_instances} objects")
    print(
        f"all classes (Ultralytics): P {_f(s['precision'])}  R {_f(s['recall'])}  "
        f"mAP50 {_f(s['map50'])}  mAP50-95 {_f(s['map50_95'])}"
    )
    if args.notes > 0:
        _notes(ev, args.conf, args.notes)
    if ev.warning:
        print(f"warning: {ev.warning}", file=sys.stderr)
    rows = per if args.top <= 0 else per.head(args.top)
    print(f"\n{'class':<30} {'group':<16} {'inst':>6} {'P':>5} {'R':>5} {'AP50':>5} {'AP':>5} {'FN':>5} {'FP':>5}  status")
    for _, r in rows.iterrows():
        if r["status"] == NO_LABELS:
            print(f"{r['class']:<30} {r['group']:<16} {0:>6} {NO_LABELS}")
            continue
        print(
            f"{r['class']:<30} {r['group']:<16} {int(r['instances']):>6} {_f(r['precision'])} {_f(r['recall'])} "
            f"{_f(r['ap50'])} {_f(r['ap50_95'])} {int(r['fn']):>5} {int(r['fp']):>5}  {r['status']}"
        )
    if len(rows) < len(per):
        print(f"... {len(per) - len(rows)} more classes in per_class.csv")
    print(f"\nwritten to {ev.folder}:")
    if args.notes > 0 and (ev.folder / f"notes-c{args.conf:g}.json").is_file():
        print(f"  notes-c{args.conf:g}.json")
    for p in files.values():
        print(f"  {Path(p).name}")
    return 0


def _notes(ev: Evaluation, conf: float, pages: int) -> None:
    """Print notes read right next to mAP (pitch, pitch + duration, the commonest causes of wrong notes)."""
    from omr_core.commands._progress import progress_bar
    from omr_core.evaluation import evaluate_notes

    with progress_bar("read notes", unit="page", leave=False) as progress:
        notes = evaluate_notes(ev, conf, limit=pages, progress=progress)
    if notes.message:
        print(f"notes read right: n/a ({notes.message})")
        return
    print(
        f"notes read right ({notes.pages} pages with note truth, {notes.notes} notes): "
        f"pitch {_f(notes.pitch_share)}  pitch + duration {_f(notes.both_share)}"
    )
    for cause, n in notes.causes()[:8]:
        print(f"  {n:5d} wrong notes: {cause}")
