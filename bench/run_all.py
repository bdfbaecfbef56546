"""Run every benchmark in bench/ (each in its own process), print one table, update docs/benchmarks.md.

Usage: ``python -m bench.run_all [--only NAME ...] [--no-docs]`` (``make bench`` runs it with no options).
Each ``bench/bench_*.py`` exposes ``main() -> list[dict]`` with rows ``{figure, value, target, ok}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from omr_core.atomic import write_text

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOC = REPO / "docs" / "benchmarks.md"
MARK = "## Latest `make bench`"

# `python -c` puts its working folder (the repository, see run_one) first on sys.path: a benchmark imports
# `bench.*`, `tests.*` and `omr_core` as packages.
_CHILD = """
import json, sys
sys.argv = [sys.argv[1]]
import importlib.util
spec = importlib.util.spec_from_file_location("bench_under_test", sys.argv[0])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
rows = mod.main()
with open({out!r}, "w") as fh:
    json.dump([{{k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in r.items()}}
               for r in (rows or [])], fh)
"""


def benches(only: list[str] | None, bench_dir: Path = HERE) -> list[Path]:
    found = sorted(bench_dir.glob("bench_*.py"))
    if only:
        found = [p for p in found if any(o in p.stem for o in only)]
    return found


def run_one(path: Path) -> tuple[list[dict[str, Any]], float, str]:
    """Run one benchmark in a child process; returns (rows, seconds, error text)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        code = _CHILD.format(out=str(out))
        # The child's own output goes to our stderr (live when it is a real file); the table goes to stdout.
        try:
            sink: Any = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            sink = subprocess.PIPE
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", code, str(path)], cwd=REPO, env={**os.environ, "YOLO_OFFLINE": "1"},
            stdout=sink, stderr=sink, check=False,
        )
        secs = time.perf_counter() - t0
        if sink == subprocess.PIPE:
            sys.stderr.write((res.stdout or b"").decode(errors="replace") + (res.stderr or b"").decode(errors="replace"))
        if res.returncode != 0 or not out.exists():
            return [], secs, f"exit status {res.returncode}"
        return json.loads(out.read_text()), secs, ""


def table(results: list[tuple[str, list[dict[str, Any]], float, str]]) -> str:
    lines = ["| bench | figure | value | target | ok |", "|---|---|---|---|---|"]
    for name, rows, secs, err in results:
        if err:
            lines.append(f"| {name} | run | {err} | runs | FAIL |")
            continue
        for r in rows:
            ok = r.get("ok")
            flag = "pass" if ok is True else ("FAIL" if ok is False else "")
            lines.append(f"| {name} | {r.get('figure', '')} | {r.get('value', '')} | {r.get('target', '')} | {flag} |")
        lines.append(f"| {name} | (bench wall time, s) | {secs:.0f} | | |")
    return "\n".join(lines)


def update_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    doc = doc.split(MARK)[0].rstrip() + "\n\n"
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    doc += f"{MARK}\n\nRun {dt.date.today().isoformat()} on {machine}.\n\n{text}\n"
    write_text(DOC, doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", nargs="*", help="substrings of benchmark names to run")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--dir", type=Path, default=HERE, help="benchmarks folder (default: this one)")
    args = ap.parse_args(argv)
    bench_dir = args.dir.resolve()
    found = benches(args.only, bench_dir)
    if not found:
        print(f"{bench_dir}: no bench_*.py benchmark found", file=sys.stderr)
        return 2
    results = []
    for path in found:
        print(f"== {path.stem}", file=sys.stderr, flush=True)
        rows, secs, err = run_one(path)
        results.append((path.stem, rows, secs, err))
    text = table(results)
    print(text)
    # Only a full run of this repository's benchmarks replaces the recorded table.
    if not args.no_docs and not args.only and bench_dir == HERE:
        update_doc(text)
    failed = any(err or any(r.get("ok") is False for r in rows) for _, rows, _, err in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
