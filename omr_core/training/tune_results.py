"""Ultralytics' own tuner output (``model.tune()``): a folder with ``tune_results.csv`` or ``.ndjson`` and
``best_hyperparameters.yaml``, read as a list of iterations (fitness and the hyperparameters tried).

Ultralytics up to 8.3 writes ``tune_results.csv``: a header ``fitness,lr0,lrf,...`` (fitness first, then every
hyperparameter of the search space in its order) and one row per iteration. 8.4 writes ``tune_results.ndjson``
instead: one ``{"iteration", "fitness", "hyperparameters": {...}, "datasets": {name: metrics}, "save_dirs",
"failed_datasets"}`` record per iteration. Both are read here. Iteration 1 is the tuner's base: it trains with the
arguments it was given (clipped to the search space) before it starts mutating them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from omr_core.errors import OmrError
from omr_core.folders import search_subfolders

CSV = "tune_results.csv"
NDJSON = "tune_results.ndjson"
BEST_YAML = "best_hyperparameters.yaml"
#: What Ultralytics' tuner maximises (its ``fitness``: mAP50-95 for detection in 8.4, 0.1 mAP50 + 0.9 mAP50-95
#: before).
OBJECTIVE = "fitness"


class TuneResultsError(OmrError):
    """A tuner folder whose results cannot be read."""


@dataclass(frozen=True)
class Iteration:
    """One tuner iteration: its number (from 1), fitness, hyperparameters, and whether it trained at all."""

    number: int
    fitness: float | None
    params: dict[str, Any]
    failed: bool = False
    metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class TuneResults:
    """A tuner folder read: its iterations in order, the search's parameter names, and the best it saved."""

    folder: Path
    source: Path  # the results file read
    params: tuple[str, ...]
    iterations: tuple[Iteration, ...]
    best_saved: dict[str, Any]  # best_hyperparameters.yaml ({} when missing)

    @property
    def base(self) -> dict[str, Any] | None:
        """Iteration 1's hyperparameters: the arguments the tuner started from (None when it is not in the file)."""
        first = next((it for it in self.iterations if it.number == 1), None)
        return dict(first.params) if first else None

    def best(self) -> Iteration | None:
        """The iteration with the highest fitness (the first of equals, as Ultralytics picks), None if none scored."""
        scored = [it for it in self.iterations if not it.failed and it.fitness is not None]
        return max(scored, key=lambda it: (it.fitness, -it.number)) if scored else None


def is_tune_dir(path: Path) -> bool:
    """A folder holding Ultralytics tuner results."""
    return (path / CSV).is_file() or (path / NDJSON).is_file()


def find_tune_dirs(roots: list[Path], max_depth: int = 3) -> list[Path]:
    """Tuner folders under ``roots`` (``roots`` themselves included), at most ``max_depth`` levels down; run folders
    and ``weights`` are not entered."""
    from omr_core.training.runs import is_run_dir

    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        if is_tune_dir(d):
            found.append(d)
            return
        if depth >= max_depth or is_run_dir(d):
            return
        for p in search_subfolders(d):
            walk(p, depth + 1)

    for r in roots:
        if r.is_dir():
            walk(r, 0)
    return found


def _num(v: Any) -> Any:
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
    return v


def _fit(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _read_csv(p: Path) -> tuple[tuple[str, ...], list[Iteration]]:
    lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise TuneResultsError(f"{p} is empty: Ultralytics' tuner writes a header 'fitness,<hyperparameters>' first")
    head = [h.strip() for h in lines[0].split(",")]
    if head[0] != "fitness" or len(head) < 2:
        raise TuneResultsError(f"{p}: the header must start with 'fitness' followed by the hyperparameters "
                               f"(as Ultralytics' tuner writes it), found {lines[0][:80]!r}")
    out = []
    for i, ln in enumerate(lines[1:], start=1):
        vals = [v.strip() for v in ln.split(",")]
        if len(vals) != len(head):
            raise TuneResultsError(f"{p} line {i + 1}: {len(vals)} values for {len(head)} columns")
        out.append(Iteration(i, _fit(vals[0]), {h: _num(v) for h, v in zip(head[1:], vals[1:])}))
    return tuple(head[1:]), out


def _read_ndjson(p: Path) -> tuple[tuple[str, ...], list[Iteration]]:
    out: list[Iteration] = []
    names: dict[str, None] = {}
    lines = p.read_bytes().splitlines()
    for i, ln in enumerate(lines, start=1):
        if not ln.strip():
            continue
        try:
            r = orjson.loads(ln)
        except orjson.JSONDecodeError:
            if i == len(lines):
                break  # the line a running tuner is writing
            raise TuneResultsError(f"{p} line {i} is not JSON: {ln[:80]!r}") from None
        hyp = r.get("hyperparameters") or {}
        names.update(dict.fromkeys(hyp))
        datasets = r.get("datasets") or {}
        failed = bool(r.get("failed_datasets")) or (bool(datasets) and not any(datasets.values()))
        metrics = next(iter(datasets.values())) if len(datasets) == 1 else None
        out.append(Iteration(int(r.get("iteration") or len(out) + 1), _fit(r.get("fitness")), dict(hyp), failed,
                             metrics or None))
    return tuple(names), out


def read_tune(folder: str | os.PathLike[str]) -> TuneResults:
    """Read a tuner folder (``tune_results.ndjson`` preferred over ``.csv`` when both exist).

    Raises:
        TuneResultsError: Neither file, or one that is not what Ultralytics' tuner writes.
    """
    import yaml

    d = Path(folder)
    src = d / NDJSON if (d / NDJSON).is_file() else d / CSV
    if not src.is_file():
        raise TuneResultsError(f"{d} has no {CSV} or {NDJSON}: is it the folder `model.tune()` printed "
                               "('Results saved to ...')?")
    params, its = (_read_ndjson if src.name == NDJSON else _read_csv)(src)
    best_saved: dict[str, Any] = {}
    if (d / BEST_YAML).is_file():
        try:
            doc = yaml.safe_load((d / BEST_YAML).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise TuneResultsError(f"{d / BEST_YAML} is not YAML: {exc}") from None
        best_saved = doc if isinstance(doc, dict) else {}
    return TuneResults(d, src, params, tuple(its), best_saved)
