"""Benchmark `omr evaluate`: yolov8n on 100 engraved pages on the CPU, with a progress bar; then the cached reopen.

Steps: engrave pages with `omr_core.datasets.synth` (100 in the evaluated split), convert them to YOLO with
`omr_core.audit.convert` (all 136 classes kept), train yolov8n from its YAML for a few minutes on 8 other pages (the
bench times the evaluation, not the model: pass ``--model`` to evaluate a real run instead), then evaluate
the 100-page split at ``--imgsz`` (default 1024, the size DeepScoresV2 users train at) and time the page's work:
validation, failure matching at a new threshold, a gallery page of crops, the HTML report and the cached reopen.

Run ``.venv/bin/python -m bench.bench_evaluate [--pages 100] [--imgsz 1024] [--model W] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

os.environ.setdefault("YOLO_OFFLINE", "1")

TARGETS = {
    "evaluation, 100 pages (s)": 900.0,
    "cached reopen (s)": 1.0,
    "failure cases at a new threshold (s)": 10.0,
    "gallery page, 24 crops (s)": 5.0,
    "HTML report (s)": 60.0,
}


def _bar(desc: str) -> Any:
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=desc, unit="step", file=sys.stderr)
        state["bar"].n = done
        state["bar"].refresh()
        if done >= total:
            state["bar"].close()

    return progress


def build_dataset(work: Path, pages: int, seed: int = 0) -> Path:
    """Engrave ``pages`` evaluation pages (+ a quarter as many train pages) and convert them; returns data.yaml."""
    from omr_core.audit.convert import ConvertOptions, convert
    from omr_core.audit.plan import make_plan
    from omr_core.datasets.discovery import load_dataset
    from omr_core.datasets.synth import synth_dataset

    synth, yolo = work / "synth", work / "yolo"
    data = yolo / "data.yaml"
    if data.is_file():
        return data
    train_pages = max(8, pages // 4)
    total = pages + train_pages
    if synth.exists():
        shutil.rmtree(synth)
    rep = synth_dataset(synth, total, seed=seed, test_fraction=pages / total, progress=_bar("engrave"))
    print(f"engraved {rep.pages} pages ({rep.test_pages} test), {rep.annotations} objects in {rep.seconds:.0f} s", file=sys.stderr)
    ds = load_dataset([synth / "deepscores_train.json", synth / "deepscores_test.json"])
    convert(ds, yolo, make_plan(ds.names, []), ConvertOptions(imgsz=1024, images="hardlink"), progress=_bar("convert"))
    return data


def train_quick(data: Path, work: Path, epochs: int = 50) -> Path:
    """yolov8n from its YAML, 50 short epochs on 8 train pages at 640 on the CPU (~5 min on 2 cores).

    Enough for the model to fire (an untrained head scores below Ultralytics' 0.001 and would leave NMS and the
    failure matching nothing to do, flattering the timing); the stored predictions then hit ``max_det`` per page.
    """
    import torch
    from ultralytics import YOLO

    from omr_core.datasets.yolo import read_data_yaml

    weights = work / "runs" / "quick" / "weights" / "last.pt"
    if weights.is_file():
        return weights
    ds = read_data_yaml(data)
    small = work / "train_small.yaml"
    listing = work / "train_small.txt"
    listing.write_text("\n".join(str(p) for p in ds.splits["train"][:8]) + "\n")
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(ds.names))
    small.write_text(f"path: {ds.root}\ntrain: {listing}\nval: {listing}\nnames:\n{names}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    # nbs=batch: one optimizer step per batch, so 200 steps happen in 50 epochs of 4 batches.
    YOLO("yolov8n.yaml").train(
        data=str(small), epochs=epochs, imgsz=640, batch=2, nbs=2, workers=0, device="cpu", plots=False, val=False,
        project=str(work / "runs"), name="quick", exist_ok=True, verbose=False, pretrained=False, amp=False,
        mosaic=0, warmup_epochs=0, optimizer="SGD", lr0=0.02,
    )  # fmt: skip
    return weights


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Build data and model if needed, evaluate with a progress bar, time the page's steps; return the rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--imgsz", type=int, default=1024)
    ap.add_argument("--batch", type=int, help="default: evaluate's (1 on the CPU, where larger batches hit the NMS time limit)")
    ap.add_argument("--model", help="weights to evaluate (default: a one-epoch yolov8n trained here)")
    ap.add_argument("--keep", help="work folder to keep (and reuse) instead of a temporary one")
    args = ap.parse_args(argv if argv is not None else [])

    from omr_core.evaluation.crops import case_boxes, crop_case
    from omr_core.evaluation.evaluate import evaluate
    from omr_core.evaluation.report import report_html

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics"))
    try:
        data = build_dataset(work, args.pages)
        model = Path(args.model) if args.model else train_quick(data, work)
        t0 = time.perf_counter()
        ev = evaluate(model, data, "val", imgsz=args.imgsz, batch=args.batch, device="cpu", out=work / "evaluation", force=True, progress=_bar("evaluate"))
        t_eval = time.perf_counter() - t0
        t0 = time.perf_counter()
        cases = ev.cases(0.25)
        t_cases = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = evaluate(model, data, "val", imgsz=args.imgsz, batch=args.batch, out=work / "evaluation")
        t_cached = time.perf_counter() - t0
        assert again.cached
        fails = cases[cases["kind"].astype(str) != "tp"]
        # The gallery's default order (most confident first) spreads a page of crops over many images.
        fails = fails.assign(_k=fails["conf"].fillna(fails["below_conf"]).fillna(-1)).sort_values("_k", ascending=False).head(24)
        images = ev.images()
        t0 = time.perf_counter()
        for _, row in fails.iterrows():
            g, p = case_boxes(row)
            crop_case(images["path"].iloc[int(row["image_id"])], g, p)
        t_crops = time.perf_counter() - t0
        t0 = time.perf_counter()
        html = report_html(ev, 0.25)
        t_report = time.perf_counter() - t0
        print(
            f"\n{ev.n_images} images, {ev.n_instances} objects, {len(ev.predictions())} stored predictions, "
            f"{len(cases)} cases at 0.25, crops from {fails['image_id'].nunique()} pages, report {len(html) / 1e6:.1f} MB; batch {ev.batch}, NMS time limit hit in "
            f"{ev.nms_limit_hits} batch(es); model {model}",
            file=sys.stderr,
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    values = {
        f"evaluation, {ev.n_images} pages (s)": t_eval,
        "cached reopen (s)": t_cached,
        "failure cases at a new threshold (s)": t_cases,
        f"gallery page, {len(fails)} crops (s)": t_crops,
        "HTML report (s)": t_report,
    }
    rows = []
    for (figure, value), target in zip(values.items(), TARGETS.values()):
        rows.append({"figure": f"{figure} @ imgsz {args.imgsz}" if "evaluation" in figure else figure, "value": round(value, 2), "target": f"< {target:g}", "ok": value < target})
    return rows


if __name__ == "__main__":
    rows = main(sys.argv[1:])
    w = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{w}}  {'value':>9}  {'target':>8}  result")
    for r in rows:
        print(f"{r['figure']:<{w}}  {r['value']:>9}  {r['target']:>8}  {'pass' if r['ok'] else 'FAIL'}")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)
