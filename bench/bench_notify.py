"""Benchmark: an unreachable notification endpoint does not slow training (batch time with vs without).

Tiny CPU trainings through the launcher, in pairs (without, with), interleaved so that the machine's load falls on
both alike. "With": every kind goes to a port that accepts connections and never answers (each try waits for its
read timeout), and a "stalled" alert is recorded right after the start, as the worker would, so the notifier is busy
retrying while the batches run. The figure is the median seconds per batch (from batches.jsonl) with / without.

Run: ``.venv/bin/python bench/bench_notify.py``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

TARGET_RATIO = 1.10
PAIRS = 3


def _median_batch_s(run_dir: Path) -> float:
    recs = [json.loads(x) for x in (run_dir / "batches.jsonl").read_text().splitlines() if x.strip()]
    dts = [r["sec"] for r in recs if isinstance(r.get("sec"), (int, float)) and r.get("i", 0) > 1]
    return float(statistics.median(dts))


def _train(root: Path, name: str, data: Path, hole_url: str | None) -> float:
    from omr_core.notify import add_target
    from omr_core.notify.settings import settings_path
    from omr_core.training import launcher
    from omr_core.training.runs import append_event, read_json
    from omr_core.training.spec import build_spec

    os.environ["OMR_WORKSPACE"] = str(root)
    if settings_path().exists():
        settings_path().unlink()
    if hole_url:
        add_target(hole_url)
    spec = build_spec(name, "yolov8n.yaml", str(data), preset="ultralytics",
                      args={"epochs": 3, "imgsz": 64, "batch": 4, "device": "cpu", "workers": 0, "nbs": 4})
    run_dir = launcher.launch(spec, root / "runs")
    if hole_url:
        append_event(run_dir, "alert", "No batch for 60 s (bench).", alert="stalled", severity="warning")
    while (read_json(Path(run_dir) / "run.json") or {}).get("state") not in ("finished", "failed", "stopped"):
        time.sleep(0.2)
    return _median_batch_s(run_dir)


def main() -> list[dict[str, Any]]:
    from tests.core.training.tiny_dataset import make_tiny_dataset

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    url = f"json://127.0.0.1:{hole.getsockname()[1]}/hook/x?cto=4&rto=4"
    without, with_ = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "runs").mkdir()
        data = make_tiny_dataset(root / "tiny", n_train=32, n_val=4)
        for i in range(PAIRS):
            without.append(_train(root, f"plain{i}", data, None))
            with_.append(_train(root, f"hole{i}", data, url))
    hole.close()
    ratio = statistics.median(with_) / statistics.median(without)
    print(f"{'pair':>4} {'s/batch without':>16} {'s/batch with unreachable endpoint':>34}")
    for i, (a, b) in enumerate(zip(without, with_), 1):
        print(f"{i:>4} {a:>16.3f} {b:>34.3f}")
    print(f"ratio with / without (medians): {ratio:.3f} (target <= {TARGET_RATIO})")
    return [{"figure": "notify: s/batch with an unreachable endpoint / without", "value": round(ratio, 3),
             "target": f"<= {TARGET_RATIO}", "ok": ratio <= TARGET_RATIO}]


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if all(r["ok"] for r in rows) else 1)
