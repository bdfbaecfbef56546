"""Benchmark a detector on held-out engraved pages: per-class AP, notehead P/R, rebuilt stems/ledger lines, time.

The model is ``--model PT``, else ``OMR_BENCH_MODEL``, else the first reference model in models/ (skipped with a
row saying so when there is none). Pages: ``--pages`` per degrade (clean and ``--degrade scan``, default 20),
engraver seed 303 (the reference trains on 101 and 202). The time per page is the whole review on one core.
Run ``.venv/bin/python -m bench.bench_model [--model PT] [--pages N] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
os.environ.setdefault("YOLO_OFFLINE", "1")

from omr_core.evaluation.model_bench import bench_model, per_class_markdown  # noqa: E402
from omr_core.evaluation.reconstruct_bench import format_rows  # noqa: E402
from omr_core.review.models import shipped_models  # noqa: E402


def pick_model(given: str | None) -> Path | None:
    """The model to benchmark: the argument, ``OMR_BENCH_MODEL``, or the first shipped reference model."""
    if given or os.environ.get("OMR_BENCH_MODEL"):
        return Path(given or os.environ["OMR_BENCH_MODEL"])
    shipped = shipped_models()
    return shipped[0].path if shipped else None


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--work", default=None, help="keep the engraved pages here (default: a temporary folder)")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    model = pick_model(args.model)
    if model is None:
        return [{"figure": "model benchmark", "value": "skipped: no models/*.pt and no OMR_BENCH_MODEL", "target": "", "ok": None}]
    with tempfile.TemporaryDirectory() as tmp:
        rep = bench_model(model, args.work or tmp, pages=args.pages)
        print(per_class_markdown(rep), file=sys.stderr)
        return [{**r, "figure": f"{model.name}: {r['figure']}"} for r in rep.rows()]


if __name__ == "__main__":
    print(format_rows(main()))
