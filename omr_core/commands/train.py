"""`omr train`: validate Ultralytics train arguments and start the run detached; prints the run folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from omr_core.training import PRESETS, build_spec, default_preset, launch, normalize_device, unique_name

VERB = "train"
HELP = "start a YOLO training run in the background (prints its folder)"
DESCRIPTION = (
    "Start Ultralytics training as a detached process that survives this terminal. The run folder receives "
    "Ultralytics' files plus run.json, batches.jsonl, events.jsonl, gpu.jsonl and log.txt. Extra arguments are "
    "Ultralytics train arguments as key=value (validated against Ultralytics' own config). "
    f"Presets: {', '.join(f'{p.name} ({p.description})' for p in PRESETS.values())}"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="YOLO data.yaml")
    p.add_argument("--model", default="yolov8n.yaml", help="model YAML (from scratch) or .pt checkpoint (default: %(default)s)")
    p.add_argument("--epochs", type=int, help="epochs (Ultralytics default 100)")
    p.add_argument("--imgsz", type=int, help="training image size (Ultralytics default 640)")
    p.add_argument("--batch", type=float, help="batch size; -1 AutoBatch; 0-1 GPU memory fraction")
    p.add_argument("--device", help="cpu, 0, or 0,1 for multi-GPU DDP")
    p.add_argument("--name", help="run name (default: <model>-<date>-<time>)")
    p.add_argument("--runs-dir", help="runs folder (default: the workspace's runs/)")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="apply a preset first (default: sheet-music when the data.yaml has DeepScoresV2 class names, "
                        "else ultralytics)")
    p.add_argument("--sample-interval", type=float, default=1.0, help="seconds between GPU/CPU samples (>= 0.2)")
    p.add_argument("--follow", action="store_true", help="print progress until the run ends (Ctrl-C detaches)")
    p.add_argument("--queue", action="store_true",
                   help="put the run in its device's queue instead of starting it now (see `omr queue`)")
    p.add_argument("extra", nargs="*", metavar="key=value", help="more Ultralytics train arguments, e.g. lr0=0.001 mosaic=0")


def _forecast_warning(data: str, imgsz: int, batch: int, device: str) -> str | None:
    """A warning when the assigner forecast exceeds the GPU (or the GPU is not there); None off CUDA or when it fits."""
    from omr_core.training import assigner_forecast, parse_device, probe

    gpus = probe()
    plan = parse_device(device, gpus.devices)
    if plan.kind != "cuda" or batch < 1 or not gpus.available:
        return None
    if plan.missing:
        present = ", ".join(str(d.index) for d in gpus.devices)
        return f"device {device!r} names GPU {plan.missing[0]}, but this machine has GPU {present}: Ultralytics will refuse it"
    vram = plan.vram_bytes(gpus.devices)
    per_gpu = plan.per_gpu_batch(batch)
    fc = assigner_forecast(data, imgsz, per_gpu, vram)
    if fc is None or fc.fits:
        return None
    return (
        f"assigner memory forecast {fc.gib:.1f} GiB at batch {per_gpu}/GPU exceeds {plan.describe()}'s "
        f"{vram / 2**30:.1f} GiB (densest image: {fc.max_labels} labels); largest batch that fits: {fc.max_batch}"
    )


def run(args: argparse.Namespace) -> int:
    batch = None if args.batch is None else (int(args.batch) if float(args.batch).is_integer() else args.batch)
    name = args.name or unique_name(args.runs_dir, f"{Path(args.model).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    preset = args.preset
    if preset is None:
        choice = default_preset(args.data)
        preset = choice.name
        print(f"omr train: preset {preset} ({choice.reason}); --preset picks another", file=sys.stderr)
    spec = build_spec(
        name,
        args.model,
        args.data,
        preset=preset,
        args={"epochs": args.epochs, "imgsz": args.imgsz, "batch": batch, "device": args.device},
        extra=args.extra,
    )
    a = spec.args
    try:
        warning = _forecast_warning(spec.data, int(a.get("imgsz", 640)), int(a.get("batch", 16)),
                                    normalize_device(a.get("device", "")))
    except Exception as exc:  # the forecast is advice: never block a launch on it
        warning = f"no memory forecast ({exc})"
    if warning:
        print(f"omr train: warning: {warning}", file=sys.stderr)
    if args.queue:
        from omr_core.training import queue
        from omr_core.workspace import get_workspace

        runs = Path(args.runs_dir) if args.runs_dir else get_workspace().runs
        e = queue.add(spec, runs)
        ahead = [x for x in queue.entries(runs) if x.state == "waiting" and set(x.lanes) & set(e.lanes)]
        print(f"queued {spec.name} ({e.id}) on {', '.join(e.lanes)}: {len(ahead) - 1} ahead of it; `omr queue` shows the line")
        return 0
    run_dir = launch(spec, args.runs_dir, sample_interval=args.sample_interval)
    print(run_dir)
    if args.follow:
        return follow(run_dir)
    return 0


def follow(run_dir: Path, interval: float = 2.0) -> int:
    """Print one progress line per change until the run is no longer live; returns 0 unless it failed."""
    from omr_core.training import RunView

    view = RunView(run_dir)
    last = ""
    try:
        while True:
            s = view.poll().summary()
            line = f"{s.state:8} epoch {s.epoch}/{s.epochs or '?'}"
            if s.batch is not None:
                line += f"  batch {s.batch}/{s.batches} of epoch {s.current_epoch}"
            if s.best_map is not None:
                line += f"  best mAP50-95 {s.best_map:.4f}"
            if line != last:
                print(line, file=sys.stderr, flush=True)
                last = line
            if not s.live:
                if s.reason:
                    print(f"{s.state}: {s.reason}", file=sys.stderr)
                return 1 if s.state == "failed" else 0
            time.sleep(interval)
    except KeyboardInterrupt:
        print("detached; the run goes on", file=sys.stderr)
        return 0
