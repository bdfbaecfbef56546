"""Synthetic run folders written the way the worker writes them (real files), for UI tests and benchmarks."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from omr_core.atomic import write_json

HEADER = [
    "epoch", "time", "train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/precision(B)", "metrics/recall(B)",
    "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss", "val/dfl_loss", "lr/pg0", "lr/pg1",
    "lr/pg2",
]
GIB = 2**30


def results_row(epoch: int, epoch_s: float, seed: int = 0) -> list[float]:
    """One plausible results.csv row (losses fall, mAP rises)."""
    k = epoch / (epoch + 20.0)
    j = 0.01 * math.sin(epoch * 0.7 + seed)
    return [epoch, epoch * epoch_s, 1.8 - k + j, 2.5 - 1.5 * k + j, 1.3 - 0.3 * k, 0.2 + 0.6 * k, 0.15 + 0.6 * k,
            0.1 + 0.7 * k + j, 0.05 + 0.5 * k + j, 1.7 - k, 2.4 - 1.4 * k, 1.25 - 0.3 * k, 0.01 * (1 - k), 0.01 * (1 - k),
            0.01 * (1 - k)]


def batch_record(epoch: int, i: int, nb: int, t: float, sec: float, session: int = 1) -> dict[str, Any]:
    return {"t": t, "s": session, "epoch": epoch, "i": i, "nb": nb, "sec": sec, "inst": 40 + i % 7, "lr": 0.01,
            "loss/box_loss": 1.5 - 0.001 * i, "loss/cls_loss": 2.0 - 0.001 * i, "loss/dfl_loss": 1.2,
            "mem_res": 14 * GIB, "mem_alloc": 11 * GIB, "mem_peak": 13 * GIB}


def gpu_record(t: float, n_gpus: int = 1, used_frac: float = 0.7) -> dict[str, Any]:
    rec: dict[str, Any] = {"t": t, "kind": "gpu", "cpu": 35.0, "ram_used": 12 * GIB, "ram_total": 64 * GIB,
                           "proc_rss": 6 * GIB, "proc_cpu": 180.0, "nproc": 9}
    for g in range(n_gpus):
        rec.update({f"gpu{g}_used": used_frac * 24 * GIB, f"gpu{g}_total": 24 * GIB, f"gpu{g}_util": 93,
                    f"gpu{g}_temp": 70, f"gpu{g}_power": 280.5, f"gpu{g}_proc": (used_frac - 0.02) * 24 * GIB})
    return rec


def write_run(
    run_dir: Path,
    *,
    epochs_done: int,
    epochs: int,
    batches_per_epoch: int = 50,
    batch_epochs: int | None = None,
    gpu_seconds: int = 600,
    gpu_hz: float = 1.0,
    state: str = "running",
    pid: int | None = None,
    pid_create_time: float | None = None,
    args: dict[str, Any] | None = None,
    now: float | None = None,
    epoch_s: float = 60.0,
    seed: int = 0,
) -> Path:
    """Write run.json, results.csv, batches.jsonl (last ``batch_epochs`` epochs), gpu.jsonl and events.jsonl."""
    now = time.time() if now is None else now
    run_dir.mkdir(parents=True, exist_ok=True)
    started = now - epochs_done * epoch_s - 30
    a = {"model": "yolov8n.yaml", "data": "/data/ds2/data.yaml", "epochs": epochs, "imgsz": 1024, "batch": 8,
         **(args or {})}
    write_json(run_dir / "run.json", {
        "format": 1, "name": run_dir.name, "mode": "train", "state": state, "created": started, "launched": started,
        "started": started, "ended": None if state == "running" else now, "pid": pid, "pid_create_time": pid_create_time,
        "phase": "train" if state == "running" else None, "phase_since": now - 20, "args": a, "epochs": epochs,
        "history": [], "resume_from": "weights/last.pt" if state in ("stopped", "failed") else None,
    })
    lines = [",".join(HEADER)]
    lines += [",".join(f"{v:.6g}" for v in results_row(e, epoch_s, seed)) for e in range(1, epochs_done + 1)]
    (run_dir / "results.csv").write_text("\n".join(lines) + "\n")
    nb = batches_per_epoch
    sec = epoch_s / nb
    be = epochs_done + 1 if batch_epochs is None else batch_epochs
    recs = []
    first = max(0, epochs_done + 1 - be)
    for e in range(first, epochs_done + 1):
        last_i = nb if e < epochs_done else nb // 2
        for i in range(1, last_i + 1):
            t = started + e * epoch_s + i * sec
            recs.append(orjson.dumps(batch_record(e, i, nb, t, sec)))
    (run_dir / "batches.jsonl").write_bytes(b"\n".join(recs) + b"\n" if recs else b"")
    n = int(gpu_seconds * gpu_hz)
    ts = now - gpu_seconds + np.arange(n) / gpu_hz
    (run_dir / "gpu.jsonl").write_bytes(b"".join(orjson.dumps(gpu_record(float(t))) + b"\n" for t in ts))
    (run_dir / "events.jsonl").write_bytes(b"")
    (run_dir / "weights").mkdir(exist_ok=True)
    (run_dir / "log.txt").write_text(f"Starting training for {epochs} epochs...\n")
    return run_dir


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSON-lines file, read plainly."""
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def csv_epochs(path: Path) -> list[int]:
    """The epoch cell of every data row of a results.csv, read plainly (no deduplication, unlike the readers)."""
    return [int(float(line.split(",")[0])) for line in path.read_text().splitlines()[1:]]
