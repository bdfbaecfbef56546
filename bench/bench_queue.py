"""Benchmark: queue overhead, the gap between one queued run's end and the next one's start (target <= 1 s).

Four tiny CPU runs (yolov8n.yaml, imgsz 64, 1 epoch) queued on the CPU lane; the detached runner starts each as the
previous one ends. The gap is ``launched`` of run k+1 minus ``ended`` of run k, both from run.json.

Run: ``.venv/bin/python bench/bench_queue.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

TARGET_S = 1.0
RUNS = 4


def main() -> list[dict[str, Any]]:
    from omr_core.training import queue
    from omr_core.training.runs import read_json
    from omr_core.training.spec import build_spec
    from tests.core.training.tiny_dataset import make_tiny_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = root / "runs"
        data = make_tiny_dataset(root / "tiny", n_train=8, n_val=4)
        names = [f"q{i}" for i in range(RUNS)]
        for n in names:
            queue.add(build_spec(n, "yolov8n.yaml", str(data), preset="ultralytics",
                                 args={"epochs": 1, "imgsz": 64, "batch": 4, "device": "cpu", "workers": 0, "nbs": 4}),
                      runs)
        deadline = time.monotonic() + 900
        while (read_json(Path(runs / names[-1]) / "run.json") or {}).get("state") not in ("finished", "failed"):
            if time.monotonic() > deadline:
                raise TimeoutError("the queued runs did not finish within 15 min")
            time.sleep(0.5)
        docs = [read_json(Path(runs / n) / "run.json") or {} for n in names]
    gaps = [b["launched"] - a["ended"] for a, b in zip(docs, docs[1:])]
    print(f"{'from':>4} {'to':>4} {'gap s':>7}")
    for i, g in enumerate(gaps):
        print(f"{names[i]:>4} {names[i + 1]:>4} {g:>7.3f}")
    worst = max(gaps)
    print(f"median gap {statistics.median(gaps):.3f} s, worst {worst:.3f} s (target <= {TARGET_S} s)")
    return [{"figure": "queue: gap between a run's end and the next one's start, worst of 3", "value": round(worst, 3),
             "target": f"<= {TARGET_S} s", "ok": worst <= TARGET_S}]


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if all(r["ok"] for r in rows) else 1)
