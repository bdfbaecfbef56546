"""Convert many DeepScoresV2 files to one YOLO dataset: one file per worker process, one staging folder, one check.

The parent decides what needs the whole set (the class table and counts from the Parquet cache, the output split of
every page, unique output names), then worker processes each read one file and write its pages and labels into
the shared staging folder next to OUT; memory is one file per worker. The parent then writes the metadata,
re-reads and verifies the whole folder exactly as `omr_core.audit.convert.convert` does, and renames it into place:
a crash or an interrupt leaves nothing at OUT.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omr_core.audit.convert import (
    BoxFixes,
    ConvertError,
    ConvertOptions,
    ConvertReport,
    Log,
    Progress,
    WrittenPages,
    check_unique_stems,
    finish_conversion,
    intro,
    kept_boxes,
    out_lock,
    prologue,
    source_pages,
    split_pages,
    staging_folder,
    write_pages,
)
from omr_core.audit.plan import ExclusionPlan
from omr_core.audit.statistics import class_stats
from omr_core.datasets.columnar import ColumnarCache


@dataclass(frozen=True)
class _Part:
    """What one worker wrote for one file."""

    done: WrittenPages
    fixes: BoxFixes
    dropped: dict[str, int]


def _convert_part(path: Path, images_dir: str | None, tmp: Path, plan: ExclusionPlan, opts: ConvertOptions, splits: np.ndarray) -> _Part:
    """Worker: read one file and write its pages and labels into the staging folder."""
    from omr_core.datasets.discovery import load_dataset

    ds = load_dataset([path], images_dir=images_dir)
    pages = source_pages(ds, opts, splits)
    kept = kept_boxes(ds, plan, pages.n)
    done = write_pages(tmp, pages, kept, len(plan.kept), opts, None)
    return _Part(done, kept.fixes, kept.dropped)


def _merge(parts: Sequence[_Part], nc: int, kept: Sequence[str]) -> tuple[WrittenPages, BoxFixes, dict[str, int]]:
    done = WrittenPages(np.zeros(nc, dtype=np.int64))
    fixes: dict[str, int] = {}
    dropped = {n: 0 for n in kept}
    for p in parts:
        done.counts += p.done.counts
        for k, v in p.done.split_images.items():
            done.split_images[k] = done.split_images.get(k, 0) + v
        done.expected_files.update(p.done.expected_files)
        done.modes |= p.done.modes
        done.tiles += p.done.tiles
        done.slivers += p.done.slivers
        done.lost += p.done.lost
        for k, v in p.fixes.to_dict().items():
            fixes[k] = fixes.get(k, 0) + v
        for k, v in p.dropped.items():
            dropped[k] += v
    done.split_images = {s: done.split_images[s] for s in ("train", "val", "test") if s in done.split_images}
    return done, BoxFixes(**fixes), dropped


def convert_files(
    files: Sequence[Path],
    out: str | os.PathLike[str],
    plan: ExclusionPlan,
    options: ConvertOptions | None = None,
    *,
    workers: int = 2,
    images_dir: str | None = None,
    cache: ColumnarCache | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
) -> ConvertReport:
    """Write DeepScoresV2 ``files`` as one YOLO dataset at ``out``, ``workers`` files at a time, atomically, verified.

    Same output, checks and report as `omr_core.audit.convert.convert` on the files loaded together; a file that
    cannot be read stops the conversion (a dataset with a file silently missing is not what was asked for).

    Args:
        files: Annotation files (`omr_core.datasets.columnar.expand_sources`).
        out: Output folder.
        plan: Exclusion plan over the DeepScoresV2 class table.
        options: Conversion options (splits are decided over all files together).
        workers: Processes writing files in parallel.
        images_dir: Page images folder (default ``images/`` next to each JSON).
        cache: The Parquet cache the class counts come from (default beside the workspace).
        progress: ``(done, total)`` in pages, reported per file, plus the verification step.
        log: Receives each log line.

    Raises:
        ConvertError: A damaged file, missing images, clashing page names, empty splits, failed verification.
    """
    from omr_core.audit.summary import summarize_files

    t0 = time.perf_counter()
    opts = options or ConvertOptions()
    summ = summarize_files(files, cache=cache, images_dir=images_dir, check_images=False)
    if summ.skipped:
        raise ConvertError(
            "cannot convert: " + "; ".join(f"{p.name}: {why}" for p, why in summ.skipped) + ". Fix or leave out these files."
        )
    with out_lock(Path(out).expanduser().absolute()):
        out_p, leftovers, lines, say = prologue(summ, plan, opts, out, log)
        splits = split_pages(summ.images, summ.kind, opts)
        check_unique_stems(splits, [Path(str(f)).name for f in summ.images["filename"].tolist()])
        stats = class_stats(summ, opts.imgsz or 1024)
        src_counts = dict(zip(stats["name"], stats["instances"].astype(int)))
        override = plan.override_log()
        for line in (*leftovers, *([override] if override else [])):
            say(line)
        n_pages = len(summ.images)
        src = summ.images["source"].to_numpy(dtype=object)
        bounds = np.r_[0, np.cumsum([int((src == str(p)).sum()) for p in summ.paths])].astype(np.int64)
        with staging_folder(out_p) as tmp:
            parts = _run_parts(summ.paths, bounds, splits, images_dir, tmp, plan, opts, workers, progress, n_pages)
            done, fixes, dropped = _merge(parts, len(plan.kept), plan.kept)
            for line in intro(summ, plan, stats, fixes, n_pages, src_counts):
                say(line)
            say(f"parallel: {len(summ.paths)} files in {workers} worker processes")
            return finish_conversion(tmp, out_p, summ, plan, opts, stats, done, fixes, dropped, n_pages, say, lines, progress, t0)


def _run_parts(
    paths: Sequence[Path],
    bounds: np.ndarray,
    splits: np.ndarray,
    images_dir: str | None,
    tmp: Path,
    plan: ExclusionPlan,
    opts: ConvertOptions,
    workers: int,
    progress: Progress | None,
    n_pages: int,
) -> list[_Part]:
    """Each file in a worker process; results in file order. Leaving the pool waits for every worker, so the staging
    folder is only removed (on an error) once nothing writes into it any more."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked Arrow thread pools
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx) as pool:
        futures = [
            pool.submit(_convert_part, p, images_dir, tmp, plan, opts, splits[bounds[i] : bounds[i + 1]]) for i, p in enumerate(paths)
        ]
        parts: list[_Part] = []
        for i, f in enumerate(futures):
            try:
                parts.append(f.result())
            except BaseException:
                for g in futures:
                    g.cancel()
                raise
            if progress is not None:
                progress(int(bounds[i + 1]), n_pages + 1)
    return parts
