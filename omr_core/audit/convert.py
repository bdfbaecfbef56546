"""Name-verified conversion of a DeepScoresV2 (or YOLO) dataset to a YOLO dataset, written atomically and re-checked."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from omr_core.audit.forecast import Forecast, forecast
from omr_core.audit.plan import ExclusionPlan, excluded_classes
from omr_core.audit.statistics import class_stats, image_rows
from omr_core.classes import official_category
from omr_core.datasets.discovery import KIND_DEEPSCORES, LoadedDataset
from omr_core.datasets.yolo import write_data_yaml, write_labels
from omr_core.errors import OmrError
from omr_core.raster import tile_origins
from omr_core.training.scale import SIDECAR, TrainingScale, write_sidecar

Progress = Callable[[int, int], None]
Log = Callable[[str], None]
_F = TypeVar("_F", bound=Callable[..., Any])

#: Image suffixes Ultralytics loads (ultralytics.data.utils.IMG_FORMATS).
IMG_SUFFIXES = {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpeg2000", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm"}

IMAGE_MODES = ("hardlink", "symlink", "copy")
VAL_FROM = ("test", "split")


class ConvertError(OmrError):
    """Conversion refused or failed; nothing was left at the output path."""


class ConvertWriteError(ConvertError, OSError):
    """Writing the dataset failed (disk full, file-size limit, permissions); nothing was left at the output path.

    Also an `OSError` (with the original ``errno``), so callers that handle I/O errors keep working.
    """

    @classmethod
    def wrap(cls, exc: OSError, out: Path, tmp: Path | None = None) -> ConvertWriteError:
        """The message for ``exc``; a file inside the (removed) temp folder is named relative to it."""
        name = str(exc.filename) if exc.filename else ""
        if name and tmp is not None and name.startswith(f"{tmp}{os.sep}"):
            name = name[len(str(tmp)) + 1 :]
        where = f" writing {name}" if name else ""
        err = cls(
            f"{out}: conversion failed{where}: {exc.strerror or exc}. Nothing was left at {out} and the source is "
            "untouched; free some disk space (or raise the file-size limit, `ulimit -f`) and run it again."
        )
        err.errno = exc.errno
        return err


#: Leftover folders next to OUT: ``.OUT.omr-tmp-PID-START-HEX`` (being written) and ``.OUT.omr-old-PID-START-HEX``
#: (the previous OUT while it is being replaced). PID and process start time let a later run tell they are stale.
_TMP_TAG = ".omr-tmp-"
_OLD_TAG = ".omr-old-"
#: ``.OUT.omr-lock``: held (flock) by the conversion writing OUT; removed when it ends, left (unheld) if it was killed.
_LOCK_TAG = ".omr-lock"


@dataclass(frozen=True)
class ConvertOptions:
    """How to convert.

    Attributes:
        imgsz: Training image size the dataset is meant for (tiny-class warnings and the memory forecast).
        tile: Tile side in source pixels (None: whole pages).
        overlap: Tile overlap as a fraction of ``tile`` (0-0.9).
        val_from: ``"test"`` (the source's test/val split becomes val) or ``"split"`` (val carved from train).
        val_fraction: Share of train images moved to val with ``val_from="split"``.
        seed: Seed of that split.
        images: ``"hardlink"`` (default; a symlink where a hard link is impossible, e.g. across file systems),
            ``"symlink"`` or ``"copy"``. Hard links by default because they survive the source folder moving,
            and tools that resolve symlinks before pairing labels (``label_path_for`` on the resolved path)
            would look for labels next to the source image.
        overwrite: Replace a non-empty output folder.
        min_visible: Tiling: drop a clipped box keeping less than this share of its area (a sliver).
        min_side_px: Tiling: drop a clipped box whose cut side is under this many pixels.
    """

    imgsz: int | None = None
    tile: int | None = None
    overlap: float = 0.2
    val_from: str = "test"
    val_fraction: float = 0.1
    seed: int = 0
    images: str = "hardlink"
    overwrite: bool = False
    min_visible: float = 0.25
    min_side_px: float = 2.0

    def validate(self) -> None:
        """Raise `ConvertError` for impossible options."""
        if self.images not in IMAGE_MODES:
            raise ConvertError(f"images must be one of {', '.join(IMAGE_MODES)}, not {self.images!r}")
        if self.val_from not in VAL_FROM:
            raise ConvertError(f"--val-from must be 'test' or 'split', not {self.val_from!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConvertError(f"val fraction must be between 0 and 1, not {self.val_fraction}")
        if self.tile is not None and self.tile < 32:
            raise ConvertError(f"--tile must be at least 32 px, not {self.tile}")
        if not 0.0 <= self.overlap < 0.9:
            raise ConvertError(f"--overlap must be in [0, 0.9), not {self.overlap}")
        if self.imgsz is not None and self.imgsz < 32:
            raise ConvertError(f"--imgsz must be at least 32, not {self.imgsz}")


@dataclass(frozen=True)
class BoxFixes:
    """What happened to boxes that were not clean rectangles inside the page.

    Attributes:
        degenerate: Zero width or height: widened to 1 px around their centre (kept).
        inverted: x1 < x0 or y1 < y0: corners swapped (kept).
        clipped: Partly outside the page: clipped to it (kept).
        outside: Entirely outside the page: dropped.
        invalid: Non-finite coordinates: dropped.
        slivers: Tiling only: cut-off pieces under the sliver rule (too thin or too little of the box), dropped.
        lost_in_tiling: Tiling only: boxes that no tile kept (every piece was a sliver).
    """

    degenerate: int = 0
    inverted: int = 0
    clipped: int = 0
    outside: int = 0
    invalid: int = 0
    slivers: int = 0
    lost_in_tiling: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Verification:
    """The converter's re-read of its own output.

    Attributes:
        ok: Every check passed.
        lines: One line per check (``"ok: ..."`` or ``"FAIL: ..."``).
        found: Per kept class, labels found on disk.
    """

    ok: bool
    lines: tuple[str, ...]
    found: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ConvertReport:
    """What `convert` wrote.

    Attributes:
        out: The output folder.
        data_yaml: Its data.yaml.
        names: Kept names in new index order.
        excluded: Excluded names.
        counts: Per kept class, labels written.
        split_images: Images (or tiles) per split.
        labels: Labels written in total.
        fixes: Box repairs and drops.
        tiles: Tiles written (0 without tiling).
        image_mode: How images were placed (``symlink``/``hardlink``/``copy``/``tile``; ``hardlink+symlink`` on fallback).
        verification: The re-read check.
        seconds: Wall time.
        log: Log lines (also in ``OUT/convert.log``).
        forecast: Assigner forecast at ``imgsz`` for the new dataset (None without imgsz).
    """

    out: Path
    data_yaml: Path
    names: tuple[str, ...]
    excluded: tuple[str, ...]
    counts: dict[str, int]
    split_images: dict[str, int]
    labels: int
    fixes: BoxFixes
    tiles: int
    image_mode: str
    verification: Verification
    seconds: float
    log: tuple[str, ...]
    forecast: Forecast | None = None


# --------------------------------------------------------------------------------------------------- helpers


def _split_of(value: str) -> str:
    v = str(value).lower()
    if "val" in v:
        return "val"
    if "test" in v:
        return "test"
    return "train"


def assign_splits(ds: LoadedDataset, options: ConvertOptions) -> np.ndarray:
    """Output split (``train``/``val``/``test``) of every image row.

    Raises:
        ConvertError: When the plan leaves no training or no validation image.
    """
    return split_pages(ds.data.images, ds.kind, options)


def split_pages(imgs: pd.DataFrame, kind: str, options: ConvertOptions) -> np.ndarray:
    """`assign_splits` from an images table and the source kind (a many-file conversion decides them all at once)."""
    src = imgs["split"].astype(str).map(_split_of).to_numpy(dtype=object) if "split" in imgs.columns else np.full(len(imgs), "train", dtype=object)
    out = src.copy()
    if options.val_from == "test":
        has_val = (src == "val").any()
        if not has_val:
            out[src == "test"] = "val"  # DeepScoresV2 ships train/test only: test is the validation set
    else:
        train = np.flatnonzero(src == "train")
        if len(train) == 0:  # one file that is not a train split (e.g. only deepscores_test.json): split all of it
            out[:] = "train"
            train = np.arange(len(src))
        if len(train) < 2:
            raise ConvertError(
                f"cannot carve a validation set: the source has {_pages(len(train))} to split, and carving needs "
                "at least 2 pages (at least 1 to train on and 1 to validate); add pages, or give a test split "
                "(e.g. deepscores_test.json) with --val-from test (dashboard: \"the source's test split\")"
            )
        rng = np.random.default_rng(options.seed)
        # at least one page to validate on, and at least one left to train on, whatever the fraction
        n_val = min(len(train) - 1, max(1, int(round(len(train) * options.val_fraction))))
        out[rng.choice(train, size=n_val, replace=False)] = "val"
    if not (out == "train").any():
        raise ConvertError(
            "no training images: the source has no train split"
            + (" (give deepscores_train.json too, or use --val-from split)" if kind == KIND_DEEPSCORES else "")
        )
    if not (out == "val").any():
        need = "" if len(out) >= 2 else f"; it has {_pages(len(out))} and carving needs at least 2 pages, so add pages"
        raise ConvertError(
            "no validation images: the source has no test/val split; use --val-from split "
            f"(dashboard: \"carved from train\") to carve one from train{need}"
        )
    return out


def _pages(n: int) -> str:
    return f"{n} page" + ("" if n == 1 else "s")


def fix_boxes(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, w: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, BoxFixes]:
    """Repair boxes against their page size ``(w, h)``.

    Returns:
        ``(boxes (n, 4) float64, keep mask, counts)``.
    """
    b = np.stack([x0, y0, x1, y1], axis=1).astype(np.float64)
    finite = np.isfinite(b).all(axis=1) & np.isfinite(w) & np.isfinite(h) & (w > 0) & (h > 0)
    inv = finite & ((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]))
    bx = np.sort(b[:, [0, 2]], axis=1)
    by = np.sort(b[:, [1, 3]], axis=1)
    b = np.stack([bx[:, 0], by[:, 0], bx[:, 1], by[:, 1]], axis=1)
    outside = finite & ((b[:, 0] > w) | (b[:, 1] > h) | (b[:, 2] < 0) | (b[:, 3] < 0))
    cb = b.copy()
    cb[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w[:, None])
    cb[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h[:, None])
    clipped = finite & ~outside & (cb != b).any(axis=1)
    degenerate = finite & ~outside & (((cb[:, 2] - cb[:, 0]) < 1) | ((cb[:, 3] - cb[:, 1]) < 1))
    # DeepScoresV2 has zero-width stems and ledger lines: they are real symbols, so widen them to 1 px.
    for lo, hi, lim in ((0, 2, w), (1, 3, h)):
        thin = degenerate & ((cb[:, hi] - cb[:, lo]) < 1)
        c = (cb[thin, lo] + cb[thin, hi]) / 2
        new_lo = np.clip(c - 0.5, 0, np.maximum(lim[thin] - 1, 0))
        cb[thin, lo] = new_lo
        cb[thin, hi] = np.minimum(new_lo + 1, lim[thin])
    keep = finite & ~outside
    fixes = BoxFixes(
        degenerate=int(degenerate.sum()),
        inverted=int(inv.sum()),
        clipped=int(clipped.sum()),
        outside=int(outside.sum()),
        invalid=int((~finite).sum()),
    )
    return cb, keep, fixes


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Name ``path`` in an OSError raised while writing it (``write()`` errors such as EFBIG carry no file name)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _owner_tag() -> str:
    """``PID-START`` of this process (start time in whole seconds), written into the names of our temp folders."""
    import psutil

    try:
        start = int(psutil.Process().create_time())
    except psutil.Error:  # pragma: no cover - our own process
        start = 0
    return f"{os.getpid()}-{start}"


def _owner_gone(tag: str) -> bool:
    """True when the process named by a ``PID-START-HEX`` tag no longer runs (a reused PID is another process)."""
    import psutil

    parts = tag.split("-")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return False  # not written by this version: leave it alone
    pid, start = int(parts[0]), int(parts[1])
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - start) > 1.0 or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # another user's live process
        return False


def clean_leftovers(out: str | os.PathLike[str]) -> list[str]:
    """Tidy what killed conversions to ``out`` left next to it; returns one line per action.

    A conversion killed while writing (SIGKILL, power loss) leaves its temp folder: removed once its process is
    gone. One killed between setting the previous ``out`` aside and renaming the new one into place leaves the
    previous dataset aside with no ``out``: it is put back. Folders of conversions still running are kept.
    """
    out = Path(out).expanduser().absolute()
    notes: list[str] = []
    try:
        entries = sorted(p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.omr-"))
    except OSError:
        return notes
    for p in entries:
        for tag, what in ((_OLD_TAG, "old"), (_TMP_TAG, "tmp")):
            prefix = f".{out.name}{tag}"
            if not p.name.startswith(prefix) or not p.is_dir() or not _owner_gone(p.name[len(prefix) :]):
                continue
            if what == "old" and not out.exists():
                p.rename(out)
                notes.append(f"restored the previous dataset {out}, set aside by a conversion that was killed")
            else:
                shutil.rmtree(p, ignore_errors=True)
                notes.append(f"removed {p.name}, left by a conversion that was killed")
    return notes


def _labels(cls: np.ndarray, xywh: np.ndarray) -> np.ndarray:
    """The (n, 5) ``[class, xc, yc, w, h]`` rows of one label file."""
    return np.column_stack([cls, xywh]) if len(cls) else np.zeros((0, 5))


def _write_labels(path: Path, labels: np.ndarray) -> None:
    """Write one label file into the staging folder (monkeypatched in tests to simulate a failure mid-way)."""
    with _writing(path):
        write_labels(path, labels, atomic=False)


def _place_image(src: Path, dst: Path, mode: str) -> str:
    if mode == "copy":
        with _writing(dst):
            shutil.copy2(src, dst)
        return "copy"
    if mode == "hardlink":
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError:
            pass  # another file system, or protected_hardlinks on a file we do not own: a symlink still trains
    os.symlink(src, dst)
    return "symlink"


def _guard_paths(ds: Any, out: Path) -> None:
    """Refuse an output that is, or contains, any source file (converting must never touch the source)."""
    o = out.resolve()
    srcs = [p.resolve() for p in ds.paths]
    images = ds.data.images if isinstance(ds, LoadedDataset) else ds.images  # or a many-file summary
    if "path" in images.columns:
        parents = {Path(str(p)).resolve().parent for p in images["path"].dropna().unique()[:10000] if str(p)}
        srcs += sorted(parents)
    for s in srcs:
        if s == o or o in s.parents:
            raise ConvertError(f"output {out} contains the source ({s}); choose a new folder: the source is never modified")


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConvertError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConvertError(f"{out} is not empty; choose another folder or pass --overwrite to replace it")


class ConvertBusyError(ConvertError):
    """Another conversion is writing the same output folder right now."""


@contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold ``out`` for one conversion: another conversion to it is refused until this one has finished.

    Without it, two conversions to the same new folder both find it absent and the later rename silently replaces
    the earlier dataset. An flock on ``.OUT.omr-lock`` (the kernel drops it if we are killed); the file is removed on
    release, so a taker checks that the file it locked is still the one at that path.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}{_LOCK_TAG}"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "PID unknown"
            os.close(fd)
            raise ConvertBusyError(
                f"{out}: another conversion ({holder}) is writing this folder right now; wait for it to finish, then "
                "choose another folder or pass --overwrite to replace its result"
            ) from None
        try:
            mine = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            mine = False
        if mine:
            break
        os.close(fd)  # the holder removed it between our open and our lock: take the new file
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()} since {_dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        yield
    finally:
        with suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _one_conversion_per_out(fn: _F) -> _F:
    """``convert`` runs holding its output folder (`out_lock`), from the leftover check to the final rename."""

    @functools.wraps(fn)
    def wrapped(ds: LoadedDataset, out: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        with out_lock(Path(out).expanduser().absolute()):
            return fn(ds, out, *args, **kwargs)

    return cast(_F, wrapped)


# --------------------------------------------------------------------------------------------------- convert


@_one_conversion_per_out
def convert(
    ds: LoadedDataset,
    out: str | os.PathLike[str],
    plan: ExclusionPlan,
    options: ConvertOptions | None = None,
    *,
    progress: Progress | None = None,
    log: Log | None = None,
) -> ConvertReport:
    """Write ``ds`` as a YOLO dataset at ``out`` following ``plan``, atomically, then verify it.

    Output: ``data.yaml`` (names = kept names in new index order), ``images/{train,val[,test]}`` (links or copies, or
    tiles), ``labels/...``, ``excluded_classes.json`` (every class by id and name with counts) and ``convert.log``.
    Everything is written to a temporary folder next to ``out`` and renamed into place only after the
    verification passed; on any error the temporary folder is removed and ``out`` is left as it was.

    Args:
        ds: The loaded source (`omr_core.audit.load_dataset`).
        out: Output folder (must be empty or absent unless ``options.overwrite``).
        plan: Exclusion plan over ``ds.names`` (critical exclusions need ``allow_critical``).
        options: Conversion options.
        progress: Optional ``(done, total)`` callback, one step per page plus the verification.
        log: Optional callback receiving each log line.

    Returns:
        The report, including the verification.

    Raises:
        CriticalExclusionError: The plan excludes a critical class without the override.
        ConvertError: Refused output folder, missing images, empty splits, failed verification.
    """
    t0 = time.perf_counter()
    opts = options or ConvertOptions()
    out_p, leftovers, lines, say = prologue(ds, plan, opts, out, log)
    pages = source_pages(ds, opts)
    kept = kept_boxes(ds, plan, pages.n)
    stats = class_stats(ds, opts.imgsz or 1024)
    src_counts = dict(zip(stats["name"], stats["instances"].astype(int)))
    override = plan.override_log()
    for line in (*leftovers, *([override] if override else [])):
        say(line)
    for line in intro(ds, plan, stats, kept.fixes, pages.n, src_counts):
        say(line)
    with staging_folder(out_p) as tmp:
        done = write_pages(tmp, pages, kept, len(plan.kept), opts, progress)
        return finish_conversion(tmp, out_p, ds, plan, opts, stats, done, kept.fixes, kept.dropped, pages.n, say, lines, progress, t0)


def prologue(
    ds: Any, plan: ExclusionPlan, opts: ConvertOptions, out: str | os.PathLike[str], log: Log | None
) -> tuple[Path, list[str], list[str], Log]:
    """Checks before anything is written; returns (OUT, leftover notes, the log's lines, the function adding one)."""
    _check_plan(ds, plan, opts)
    out_p = Path(out).expanduser().absolute()
    _guard_paths(ds, out_p)
    leftovers = clean_leftovers(out_p)  # before the emptiness check: a killed swap may have set OUT aside
    _prepare_out(out_p, opts.overwrite)
    lines: list[str] = []

    def say(msg: str) -> None:
        lines.append(msg)
        if log is not None:
            log(msg)

    return out_p, leftovers, lines, say


@contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """The temporary folder next to ``out`` a conversion writes into; removed on any error (OUT is left as it was)."""
    tmp = out.parent / f".{out.name}{_TMP_TAG}{_owner_tag()}-{uuid.uuid4().hex[:8]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OmrError):  # disk full, ulimit -f: a message, not a traceback
            raise ConvertWriteError.wrap(exc, out, tmp) from exc
        raise


def finish_conversion(
    tmp: Path,
    out_p: Path,
    ds: Any,
    plan: ExclusionPlan,
    opts: ConvertOptions,
    stats: pd.DataFrame,
    done: WrittenPages,
    fixes: BoxFixes,
    dropped: dict[str, int],
    n_pages: int,
    say: Log,
    lines: list[str],
    progress: Progress | None,
    t0: float,
) -> ConvertReport:
    """Metadata, verification by re-reading, the log, and the rename into place of a written staging folder."""
    src_counts = dict(zip(stats["name"], stats["instances"].astype(int)))
    override = plan.override_log()
    if opts.tile is not None:
        fixes = BoxFixes(**{**fixes.to_dict(), "slivers": done.slivers, "lost_in_tiling": done.lost})
        say(
            f"tiling: {done.tiles} tiles of {opts.tile}px (overlap {opts.overlap:.0%}) from {n_pages} pages; "
            f"{done.slivers} sliver pieces dropped, {done.lost} boxes kept by no tile"
        )
    counts = {n: int(done.counts[j]) for j, n in enumerate(plan.kept)}
    fc = _write_metadata(tmp, ds, plan, stats, counts, fixes, done, opts, override)
    source_counts = None if opts.tile else {n: src_counts.get(n, 0) - dropped[n] for n in plan.kept}
    ver = _verify_written(tmp, plan, counts, done, source_counts, say, progress, n_pages + 1)
    mode = "+".join(sorted(done.modes))
    say(f"images: {mode}; {sum(done.split_images.values())} images in {', '.join(f'{k} {v}' for k, v in done.split_images.items())}")
    say(f"wrote {int(done.counts.sum())} labels in {time.perf_counter() - t0:.1f} s")
    with _writing(tmp / "convert.log"):
        (tmp / "convert.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _swap_into_place(tmp, out_p)
    return ConvertReport(
        out=out_p,
        data_yaml=out_p / "data.yaml",
        names=plan.kept,
        excluded=plan.excluded,
        counts=counts,
        split_images=done.split_images,
        labels=int(done.counts.sum()),
        fixes=fixes,
        tiles=done.tiles,
        image_mode=mode,
        verification=ver,
        seconds=time.perf_counter() - t0,
        log=tuple(lines),
        forecast=fc,
    )


def _verify_written(
    tmp: Path, plan: ExclusionPlan, counts: dict[str, int], done: WrittenPages, source_counts: dict[str, int] | None,
    say: Log, progress: Progress | None, steps: int,
) -> Verification:
    """Verify the dataset written to ``tmp`` (the last of ``steps`` progress steps) and log every check; refuse it
    when a check failed."""
    ver = verify_output(tmp, plan, expected=counts, expected_files=done.expected_files, source_counts=source_counts)
    if progress is not None:
        progress(steps, steps)
    for line in ver.lines:
        say("verify " + line)
    if not ver.ok:
        raise ConvertError("verification of the written dataset failed:\n  " + "\n  ".join(ver.lines))
    return ver


def _check_plan(ds: Any, plan: ExclusionPlan, opts: ConvertOptions) -> None:
    """Refuse options and plans that cannot convert ``ds`` (before anything is touched on disk)."""
    opts.validate()
    plan.check()
    if tuple(plan.universe) != tuple(ds.names):
        raise ConvertError("the exclusion plan was made for another class list than this dataset's")
    if not plan.kept:
        raise ConvertError("the plan excludes every class; nothing would be left to train on")


@dataclass(frozen=True)
class _Pages:
    """The source pages of a conversion: their image files, output names and splits, row by row."""

    paths: np.ndarray  # page image paths (object array)
    fnames: list[str]  # output file names
    splits: np.ndarray  # "train" / "val" / "test" per page
    width: np.ndarray
    height: np.ndarray

    @property
    def n(self) -> int:
        return len(self.fnames)


def source_pages(ds: LoadedDataset, opts: ConvertOptions, splits: np.ndarray | None = None) -> _Pages:
    """The pages to write, refused when an image is missing, unloadable, or two would get one output name.

    ``splits``: the output split per page when already decided (a many-file conversion), else `assign_splits`.
    """
    imgs = ds.data.images.reset_index(drop=True)
    n_img = len(imgs)
    if n_img == 0:
        raise ConvertError(f"{', '.join(map(str, ds.paths))}: the dataset has no images")
    paths = imgs["path"].to_numpy(dtype=object) if "path" in imgs.columns else np.full(n_img, None, dtype=object)
    missing = [str(imgs["filename"].iat[i]) for i in range(n_img) if not paths[i] or not os.path.exists(str(paths[i]))]
    if missing:
        raise ConvertError(
            f"{len(missing)} of {n_img} page images are missing on disk (e.g. {', '.join(missing[:3])}); "
            "put them in the images/ folder next to the annotation file (or give the images folder) and retry"
        )
    fnames = [Path(str(f)).name for f in imgs["filename"].tolist()]
    bad_ext = sorted({Path(f).suffix for f in fnames if Path(f).suffix.lower().lstrip(".") not in IMG_SUFFIXES})
    if bad_ext:
        raise ConvertError(f"page images with suffixes Ultralytics cannot load: {', '.join(bad_ext)}")
    splits = assign_splits(ds, opts) if splits is None else splits
    check_unique_stems(splits, fnames)
    return _Pages(paths, fnames, splits, imgs["width"].to_numpy(np.float64), imgs["height"].to_numpy(np.float64))


def check_unique_stems(splits: np.ndarray, fnames: Sequence[str]) -> None:
    """Refuse two pages that would get the same output name in one split."""
    seen: dict[tuple[str, str], int] = {}
    for i, (sp, f) in enumerate(zip(splits, fnames)):
        key = (str(sp), Path(f).stem)
        if key in seen:
            raise ConvertError(
                f"two pages would get the same output name in split {sp}: {f} (rows {seen[key]} and {i}); "
                "file stems must be unique per split"
            )
        seen[key] = i


@dataclass(frozen=True)
class _KeptBoxes:
    """The kept, repaired boxes of the whole dataset sorted by page: page ``i`` owns ``bounds[i]:bounds[i+1]``."""

    boxes: np.ndarray  # (n, 4) xyxy page pixels
    cls: np.ndarray  # new class index
    bounds: np.ndarray
    fixes: BoxFixes
    dropped: dict[str, int]  # boxes dropped as outside/invalid, per kept name


def kept_boxes(ds: LoadedDataset, plan: ExclusionPlan, n_img: int) -> _KeptBoxes:
    """Select the boxes of kept classes and repair them (vectorised over the whole dataset)."""
    imgs = ds.data.images.reset_index(drop=True)
    ann = ds.data.annotations
    rows = image_rows(ds.data)
    keep = plan.kept_mask(ann) & (rows >= 0)
    new_index = plan.new_index
    name_arr = ann["name"].astype(str).to_numpy()[keep]
    cls = pd.Series(name_arr).map(new_index).to_numpy(dtype=np.int64)
    r = rows[keep]
    boxes, ok, fixes = fix_boxes(
        ann["x0"].to_numpy(np.float64)[keep],
        ann["y0"].to_numpy(np.float64)[keep],
        ann["x1"].to_numpy(np.float64)[keep],
        ann["y1"].to_numpy(np.float64)[keep],
        imgs["width"].to_numpy(np.float64)[r],
        imgs["height"].to_numpy(np.float64)[r],
    )
    boxes, cls, r = boxes[ok], cls[ok], r[ok]
    order = np.argsort(r, kind="stable")
    boxes, cls, r = boxes[order], cls[order], r[order]
    dropped = {n: 0 for n in plan.kept}
    if (~ok).any():
        for c, k in zip(*np.unique(pd.Series(name_arr[~ok]).map(new_index).to_numpy(), return_counts=True)):
            dropped[plan.kept[int(c)]] += int(k)
    return _KeptBoxes(boxes, cls, np.searchsorted(r, np.arange(n_img + 1)), fixes, dropped)


def intro(
    ds: Any, plan: ExclusionPlan, stats: pd.DataFrame, fixes: BoxFixes, n_img: int, src_counts: dict[str, int]
) -> list[str]:
    """The log's opening lines: the source, the plan, every excluded class and the box repairs."""
    lines = [
        f"source: {', '.join(map(str, ds.paths))} ({ds.kind}, {n_img} images, {int(sum(src_counts.values()))} instances)",
        f"kept {len(plan.kept)} classes, excluded {len(plan.excluded)}: {', '.join(plan.excluded) or '(none)'}",
    ]
    lines += [f"exclude {excl.line}" for excl in excluded_classes(plan, stats)]
    lines.append(
        "boxes: "
        + ", ".join(f"{k} {v}" for k, v in fixes.to_dict().items() if k not in ("slivers", "lost_in_tiling"))
        + " (degenerate widened to 1 px, inverted swapped, clipped kept; outside/invalid dropped)"
    )
    return lines


@dataclass
class WrittenPages:
    """What `write_pages` put in the staging folder."""

    counts: np.ndarray  # labels per new class index
    split_images: dict[str, int] = field(default_factory=dict)  # images (pages or tiles) per split
    expected_files: dict[str, int] = field(default_factory=dict)  # label file (relative) -> lines
    modes: set[str] = field(default_factory=set)  # how images were placed: copy, hardlink, symlink, tile
    tiles: int = 0
    slivers: int = 0
    lost: int = 0

    @property
    def used_splits(self) -> list[str]:
        return [s for s in ("train", "val", "test") if s in self.split_images]


def write_pages(
    tmp: Path, pages: _Pages, kept: _KeptBoxes, nc: int, opts: ConvertOptions, progress: Progress | None
) -> WrittenPages:
    """Place every page (or its tiles) and write its labels into the staging folder ``tmp``; one progress step each."""
    done = WrittenPages(np.zeros(nc, dtype=np.int64))
    for s in [s for s in ("train", "val", "test") if (pages.splits == s).any()]:
        (tmp / "images" / s).mkdir(parents=True, exist_ok=True)  # exist_ok: parallel parts share the folder
        (tmp / "labels" / s).mkdir(parents=True, exist_ok=True)
    boxes, cls, bounds = kept.boxes, kept.cls, kept.bounds
    for i in range(pages.n):
        sp = str(pages.splits[i])
        a, b = bounds[i], bounds[i + 1]
        src_img = Path(str(pages.paths[i])).resolve()
        stem = Path(pages.fnames[i]).stem
        if opts.tile is None:
            bb = boxes[a:b]
            wi, hi = float(pages.width[i]), float(pages.height[i])
            xywh = np.stack(
                [(bb[:, 0] + bb[:, 2]) / 2 / wi, (bb[:, 1] + bb[:, 3]) / 2 / hi, (bb[:, 2] - bb[:, 0]) / wi, (bb[:, 3] - bb[:, 1]) / hi],
                axis=1,
            )
            done.modes.add(_place_image(src_img, tmp / "images" / sp / pages.fnames[i], opts.images))
            rel = f"labels/{sp}/{stem}.txt"
            _write_labels(tmp / rel, _labels(cls[a:b], xywh))
            done.expected_files[rel] = b - a
            done.counts += np.bincount(cls[a:b], minlength=nc)
            done.split_images[sp] = done.split_images.get(sp, 0) + 1
        else:
            t, sl, lost_b, per_class = _write_tiles(tmp, sp, stem, src_img, boxes[a:b], cls[a:b], opts, nc, done.expected_files)
            done.tiles += t
            done.slivers += sl
            done.lost += lost_b
            done.counts += per_class
            done.split_images[sp] = done.split_images.get(sp, 0) + t
            done.modes.add("tile")
        if progress is not None:
            progress(i + 1, pages.n + 1)
    return done


def _write_metadata(
    tmp: Path,
    ds: LoadedDataset,
    plan: ExclusionPlan,
    stats: pd.DataFrame,
    counts: dict[str, int],
    fixes: BoxFixes,
    done: WrittenPages,
    opts: ConvertOptions,
    override: str,
) -> Forecast | None:
    """data.yaml, the scale sidecar and excluded_classes.json; returns the assigner forecast it recorded."""
    _write_data_yaml(tmp, plan.kept, done.used_splits)
    with _writing(tmp / SIDECAR):  # the scale the model must later be run at (omr_core/training/scale.py)
        write_sidecar(tmp, TrainingScale(tile=opts.tile, overlap=opts.overlap if opts.tile else 0.0, imgsz=opts.imgsz))
    fc = None
    if opts.imgsz:
        train_rows = [v for k, v in done.expected_files.items() if k.startswith("labels/train/")]
        fc = forecast(16, opts.imgsz, max(train_rows, default=0), len(plan.kept))
    manifest = _manifest(ds, plan, stats, counts, fixes, done.split_images, opts, done.modes, override, fc)
    with _writing(tmp / "excluded_classes.json"):
        (tmp / "excluded_classes.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return fc


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}{_OLD_TAG}{_owner_tag()}-{uuid.uuid4().hex[:8]}"
        out.rename(old)
        try:
            tmp.rename(out)
        except BaseException:
            old.rename(out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _write_tiles(
    tmp: Path,
    split: str,
    stem: str,
    src_img: Path,
    boxes: np.ndarray,
    cls: np.ndarray,
    opts: ConvertOptions,
    nc: int,
    expected_files: dict[str, int],
) -> tuple[int, int, int, np.ndarray]:
    """Cut one page into overlapping tiles, write them with their clipped labels.

    Returns:
        ``(tiles written, sliver pieces dropped, boxes kept by no tile, per-class label counts)``.
    """
    import cv2

    page = cv2.imread(str(src_img), cv2.IMREAD_UNCHANGED)
    if page is None:
        raise ConvertError(f"cannot decode page image {src_img}")
    ph, pw = page.shape[:2]
    assert opts.tile is not None
    tile = opts.tile
    per_class = np.zeros(nc, dtype=np.int64)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    n_tiles = slivers = 0
    # Overlap means a box cut by one tile's border is usually whole in a neighbour: count pieces and lost boxes apart.
    kept_any = np.zeros(len(boxes), dtype=bool)
    for ty in tile_origins(ph, tile, opts.overlap):
        for tx in tile_origins(pw, tile, opts.overlap):
            tw, th = min(tile, pw - tx), min(tile, ph - ty)
            cx0 = np.clip(boxes[:, 0], tx, tx + tw)
            cy0 = np.clip(boxes[:, 1], ty, ty + th)
            cx1 = np.clip(boxes[:, 2], tx, tx + tw)
            cy1 = np.clip(boxes[:, 3], ty, ty + th)
            cw, ch = cx1 - cx0, cy1 - cy0
            inter = (cw > 0) & (ch > 0)
            ow, oh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            side_ok = (cw >= np.minimum(opts.min_side_px, ow)) & (ch >= np.minimum(opts.min_side_px, oh))
            vis_ok = (cw * ch) / area >= opts.min_visible
            good = inter & side_ok & vis_ok
            slivers += int((inter & ~good).sum())
            kept_any |= good
            name = f"{stem}_x{tx}_y{ty}"
            crop = page[ty : ty + th, tx : tx + tw]
            if not cv2.imwrite(str(tmp / "images" / split / f"{name}.png"), crop, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                raise ConvertError(f"could not write tile {name}.png")
            xywh = np.stack(
                [((cx0 + cx1) / 2 - tx) / tw, ((cy0 + cy1) / 2 - ty) / th, cw / tw, ch / th], axis=1
            )[good]
            rel = f"labels/{split}/{name}.txt"
            _write_labels(tmp / rel, _labels(cls[good], xywh))
            expected_files[rel] = int(good.sum())
            per_class += np.bincount(cls[good], minlength=nc)
            n_tiles += 1
    return n_tiles, slivers, int((~kept_any).sum()), per_class


def _write_data_yaml(root: Path, names: Sequence[str], splits: Sequence[str]) -> None:
    """data.yaml without a ``path`` key: Ultralytics then takes the yaml's folder as the root, so it survives a move."""
    header = (
        "# Written by `omr convert`: names are official DeepScoresV2 names in new index order.\n"
        "# Excluded classes and per-class counts: excluded_classes.json\n"
    )
    with _writing(root / "data.yaml"):
        write_data_yaml(root / "data.yaml", None, names, {s: f"images/{s}" for s in splits}, header=header)


def _manifest(
    ds: LoadedDataset,
    plan: ExclusionPlan,
    stats: pd.DataFrame,
    counts: dict[str, int],
    fixes: BoxFixes,
    split_images: dict[str, int],
    opts: ConvertOptions,
    modes: set[str],
    override: str,
    fc: Forecast | None,
) -> dict[str, Any]:
    src = dict(zip(stats["name"], stats["instances"].astype(int)))
    imgs_with = dict(zip(stats["name"], stats["images"].astype(int)))

    def ident(n: str) -> dict[str, Any]:
        c = official_category(n)
        return {
            "id": c.id if c else None,
            "name": n,
            "official_name": c.name if c else None,
            "group": c.group if c else "unofficial",
            "critical": bool(c.critical) if c else False,
            "source_index": ds.names.index(n),
        }

    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sources": [str(p) for p in ds.paths],
        "source_kind": ds.kind,
        "options": {
            "imgsz": opts.imgsz,
            "tile": opts.tile,
            "overlap": opts.overlap if opts.tile else None,
            "val_from": opts.val_from,
            "images": "+".join(sorted(modes)),
        },
        "allow_critical": plan.allow_critical,
        "critical_override": {
            "used": bool(override),
            "classes": [{"id": (c.id if (c := official_category(n)) else None), "name": n} for n in plan.critical_excluded],
            "log": override,
        },
        "nc": len(plan.kept),
        "excluded": [
            {**ident(e.name), "reason": e.reason, "source_instances": e.instances, "source_images": imgs_with.get(e.name, 0),
             "line": e.line}
            for e in excluded_classes(plan, stats)
        ],
        "kept": [
            {**ident(n), "new_index": i, "source_instances": src.get(n, 0), "labels_written": counts.get(n, 0)}
            for i, n in enumerate(plan.kept)
        ],
        "not_in_source": list(plan.not_in_source),
        "box_fixes": fixes.to_dict(),
        "split_images": split_images,
        "forecast": fc.to_dict() if fc else None,
    }


# --------------------------------------------------------------------------------------------------- verify


#: Bytes of label text parsed at a time while verifying (the whole set as Python strings needed 4.3 GB at 9.7 M labels).
_VERIFY_BATCH_BYTES = 1 << 20


def _read_label_counts(root: Path, rels: Sequence[str], nc: int) -> tuple[np.ndarray, dict[str, int], list[str]]:
    """Per-class totals and per-file line counts of label files, plus problems found (read a few MB at a time)."""
    per_file: dict[str, int] = {}
    problems: list[str] = []
    counts = np.zeros(nc, dtype=np.int64)
    flags = {"shape": False, "index": False, "coords": False}
    chunks: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        toks = " ".join(chunks).split()
        chunks.clear()
        size = 0
        if len(toks) % 5:
            flags["shape"] = True
            return
        arr = np.asarray(toks, dtype=np.float64).reshape(-1, 5) if toks else np.zeros((0, 5))
        del toks
        c = arr[:, 0]
        if len(c) and ((c != np.round(c)).any() or c.min() < 0 or c.max() >= nc):
            flags["index"] = True
            c = c[(c >= 0) & (c < nc)]
        xywh = arr[:, 1:]
        if len(xywh) and ((xywh < 0).any() or (xywh > 1.000001).any() or (xywh[:, 2:] <= 0).any()):
            flags["coords"] = True
        counts[:] += np.bincount(c.astype(np.int64), minlength=nc)

    for rel in rels:
        p = root / rel
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"cannot read {rel}: {exc}")
            continue
        per_file[rel] = text.count("\n")
        chunks.append(text)
        size += len(text)
        if size >= _VERIFY_BATCH_BYTES:
            flush()
    flush()
    if flags["shape"]:
        problems.append("label files do not hold 5 numbers per line")
        return np.zeros(nc, dtype=np.int64), per_file, problems
    if flags["index"]:
        problems.append(f"class indices outside 0..{nc - 1}")
    if flags["coords"]:
        problems.append("normalised coordinates outside (0, 1]")
    return counts, per_file, problems


def verify_output(
    root: str | os.PathLike[str],
    plan: ExclusionPlan,
    *,
    expected: dict[str, int] | None = None,
    expected_files: dict[str, int] | None = None,
    source_counts: dict[str, int] | None = None,
) -> Verification:
    """Re-read a converted dataset and check it against the plan.

    Checks: data.yaml names equal the kept names in order (read through the shared YOLO reader); no excluded
    name is present; every kept class with source instances has labels; per-class label counts equal the plan
    (``expected``, and, without tiling, the source counts minus dropped boxes); every label file is there with
    the expected number of lines; every image resolves.
    """
    from omr_core.datasets.yolo import read_data_yaml

    rt = Path(root)
    lines: list[str] = []
    ok = True

    def check(cond: bool, good: str, bad: str) -> None:
        nonlocal ok
        ok &= bool(cond)
        lines.append(("ok: " + good) if cond else ("FAIL: " + bad))

    try:
        yd = read_data_yaml(rt / "data.yaml")
        names = tuple(yd.names)
    except OmrError as exc:
        return Verification(False, (f"FAIL: data.yaml unreadable: {exc}",))
    check(names == tuple(plan.kept), f"data.yaml has the {len(names)} kept names in plan order", f"data.yaml names differ from the plan: {list(names)[:8]}...")
    present_excl = [n for n in plan.excluded if n in names]
    check(not present_excl, f"none of the {len(plan.excluded)} excluded names is in data.yaml", f"excluded names present: {present_excl}")
    rels = sorted(expected_files) if expected_files is not None else sorted(
        str(p.relative_to(rt)) for p in (rt / "labels").rglob("*.txt")
    )
    found, per_file, problems = _read_label_counts(rt, rels, len(plan.kept))
    check(not problems, f"{len(rels)} label files parse (5 numbers per line, indices 0..{len(plan.kept) - 1})", "; ".join(problems))
    if expected_files is not None:
        wrong = [r for r, n in expected_files.items() if per_file.get(r) != n]
        check(not wrong, "every label file has the planned number of labels", f"{len(wrong)} label files differ, e.g. {wrong[:3]}")
    found_d = {n: int(found[i]) for i, n in enumerate(plan.kept)}
    if expected is not None:
        diff = {n: (expected.get(n, 0), found_d[n]) for n in plan.kept if expected.get(n, 0) != found_d[n]}
        check(not diff, f"per-class label counts equal the plan for all {len(plan.kept)} kept classes ({int(found.sum())} labels)", f"counts differ (planned, found): {dict(list(diff.items())[:6])}")
    if source_counts is not None:
        diff = {n: (source_counts[n], found_d[n]) for n in plan.kept if source_counts[n] != found_d[n]}
        check(not diff, "per-class counts equal the source counts minus dropped boxes", f"counts differ from the source (source, found): {dict(list(diff.items())[:6])}")
        absent = [n for n in plan.kept if source_counts[n] > 0 and found_d[n] == 0]
        check(not absent, "every kept class with source instances has labels", f"kept classes with no labels: {absent}")
    n_img = 0
    broken = []
    for d in (rt / "images").iterdir() if (rt / "images").is_dir() else []:
        for p in d.iterdir():
            n_img += 1
            if not p.exists():  # a dangling link
                broken.append(p.name)
    check(not broken and n_img > 0, f"{n_img} images resolve", f"{len(broken)} images do not resolve, e.g. {broken[:3]}")
    return Verification(ok, tuple(lines), found_d)


def format_report(rep: ConvertReport) -> str:
    """Terminal summary of a conversion."""
    out = [f"wrote {rep.out} ({rep.labels} labels, {len(rep.names)} classes, {rep.seconds:.1f} s)"]
    out.append("  splits: " + ", ".join(f"{k} {v}" for k, v in rep.split_images.items()) + f" · images: {rep.image_mode}")
    fx = rep.fixes
    out.append(
        f"  boxes: {fx.degenerate} degenerate widened to 1 px, {fx.inverted} inverted swapped, {fx.clipped} clipped, "
        f"{fx.outside} outside dropped, {fx.invalid} invalid dropped" + (f", {fx.slivers} tile sliver pieces dropped, {fx.lost_in_tiling} boxes in no tile" if rep.tiles else "")
    )
    out.append("  excluded: " + (", ".join(rep.excluded) or "(none)"))
    out.append("verification:")
    out += ["  " + line for line in rep.verification.lines]
    if rep.forecast is not None:
        f = rep.forecast
        out.append(f"  assigner forecast at imgsz {f.imgsz}, batch {f.batch}: {f.gib:.2f} GiB (max {f.max_labels} labels/image)")
    return "\n".join(out)
