"""DeepScoresV2 annotation files read one at a time into compact columns and per-file aggregates, cached as Parquet.

Each file is parsed once by the same reader as `load_deepscores` (so the numbers are the same), reduced to compact
columns (float32 boxes, int16 class codes, int32 page rows, the annotation ids for crop captions) and to what the
audit needs (box-size histograms per class and page size, label counts per page and class), then dropped before the
next file is read: peak memory follows the largest file, not the dataset. The result is written to a Parquet cache
entry keyed on the file's size, mtime and a hash of its first MiB; a later audit reads the small aggregates only
and never parses the JSON again. A changed file gets a new key, so only its own entry is rebuilt.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omr_core.atomic import write_atomic, write_text
from omr_core.datasets.tables import LoadIssue
from omr_core.errors import DataFormatError, OmrError

#: Bump when the layout of a cache entry changes (old entries are then ignored and rebuilt).
CACHE_VERSION = 1

#: Bytes of a file's head that go into its cache key.
HEAD_BYTES = 1 << 20

#: The file name pattern of the complete set, as its own preprocessing script globs it.
COMPLETE_GLOB = "deepscores-complete-*.json"

_TABLES = ("images", "boxes", "sizes", "pairs")

Progress = Callable[[int, int, str], None]


def default_cache_dir() -> Path:
    """``OMR_CACHE_DIR``, else ``<workspace root>/.cache/deepscores`` (beside the runs and datasets)."""
    env = os.environ.get("OMR_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    from omr_core.workspace import get_workspace

    return get_workspace().root / ".cache" / "deepscores"


def expand_sources(specs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Annotation files named by files, folders (their ``*.json``) or globs (``…/deepscores-complete-*``), sorted.

    Raises:
        OmrError: A spec that names nothing (the message says which and what was looked for).
    """
    out: list[Path] = []
    for spec in specs:
        text = os.fspath(spec)
        p = Path(text).expanduser()
        if p.is_dir():
            hits = sorted(q for q in p.glob("*.json") if q.is_file())
            if not hits:
                raise OmrError(f"{p}: folder has no .json annotation file")
        elif glob.has_magic(text):
            hits = sorted(Path(q) for q in glob.glob(os.path.expanduser(text)) if Path(q).is_file())
            if not hits and not text.endswith(".json"):
                hits = sorted(Path(q) for q in glob.glob(os.path.expanduser(text) + ".json") if Path(q).is_file())
            if not hits:
                raise OmrError(f"{text}: no annotation file matches this pattern")
        else:
            if not p.exists():
                raise OmrError(f"{p}: no such file")
            hits = [p]
        out += hits
    return list(dict.fromkeys(out))


def is_multi_source(specs: Sequence[str]) -> bool:
    """True when a spec is a folder or a glob (the streaming audit is then the only sensible reader)."""
    return any(Path(s).expanduser().is_dir() or glob.has_magic(s) for s in specs)


def cache_key(path: Path) -> str:
    """Hex key of a file's current content: size + mtime (ns) + SHA-1 of its first `HEAD_BYTES`."""
    st = path.stat()
    h = hashlib.sha1(f"v{CACHE_VERSION}:{st.st_size}:{st.st_mtime_ns}:".encode())
    with path.open("rb") as fh:
        h.update(fh.read(HEAD_BYTES))
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class FileColumns:
    """One annotation file reduced to what the audit needs (image rows are local to the file).

    Attributes:
        images: One row per page: ``image_id``, ``filename``, ``width``, ``height``, ``split``, ``n_annotations``.
        boxes: One row per kept annotation: ``image`` (int32 row in ``images``), ``code`` (int16, deepscores id - 1),
            ``x0 y0 x1 y1`` (float32, pixels), ``ann_id``.
        sizes: Box-size histogram: ``code``, ``axis`` (0 width, 1 height), ``value`` (px, float64 as the audit
            computes it from the float32 box), ``long_side`` (the page's longer side), ``count``.
        pairs: Labels per page and class: ``image``, ``code``, ``count``.
        issues: What the reader reported for this file.
    """

    images: pd.DataFrame
    boxes: pd.DataFrame
    sizes: pd.DataFrame
    pairs: pd.DataFrame
    issues: tuple[LoadIssue, ...]

    @property
    def n_annotations(self) -> int:
        return int(self.images["n_annotations"].sum())


def read_file_columns(path: Path) -> FileColumns:
    """Parse one DeepScoresV2 file (the `load_deepscores` reader) and reduce it to `FileColumns`.

    Raises:
        DataFormatError: The file is missing, truncated or damaged (the message names it).
    """
    from omr_core.datasets.deepscores import build_file, parse_file

    parsed = parse_file(path)
    img, ann, issues = build_file(parsed, path, 0)
    del parsed
    images = pd.DataFrame(
        {
            "image_id": img["image_id"].to_numpy(np.int64),
            "filename": img["filename"].astype(str).to_numpy(dtype=object),
            "width": img["width"].to_numpy(np.int32),
            "height": img["height"].to_numpy(np.int32),
            "split": img["split"].astype(str).to_numpy(dtype=object),
            "n_annotations": img["n_annotations"].to_numpy(np.int32),
        }
    )
    rows = ann["image"].to_numpy(np.int32)
    code = ann["name"].cat.codes.to_numpy(np.int16)
    boxes = pd.DataFrame(
        {
            "image": rows,
            "code": code,
            **{c: ann[c].to_numpy(np.float32) for c in ("x0", "y0", "x1", "y1")},
            "ann_id": ann["ann_id"].astype(str).to_numpy(dtype=object),
        }
    )
    del ann
    return FileColumns(images, boxes, _size_histogram(boxes, images), _pairs(boxes), tuple(issues))


def _size_histogram(boxes: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    """Counts of (class, axis, size, page long side): exact medians at any imgsz can be taken from it later."""
    # The same arithmetic as `box_sizes`: float64 differences of the float32 corners, clipped at 0.
    w = (boxes["x1"].to_numpy(np.float64) - boxes["x0"].to_numpy(np.float64)).clip(min=0)
    h = (boxes["y1"].to_numpy(np.float64) - boxes["y0"].to_numpy(np.float64)).clip(min=0)
    long_side = np.maximum(images["width"].to_numpy(np.float64), images["height"].to_numpy(np.float64))
    ls = long_side[boxes["image"].to_numpy()]
    code = boxes["code"].to_numpy()
    parts = []
    for axis, v in ((0, w), (1, h)):
        frame = pd.DataFrame({"code": code, "value": v, "long_side": ls})
        g = frame.groupby(["code", "value", "long_side"], sort=True).size().reset_index(name="count")
        g.insert(1, "axis", np.uint8(axis))
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    return out.astype({"code": np.int16, "axis": np.uint8, "value": np.float64, "long_side": np.float64, "count": np.int64})


def _pairs(boxes: pd.DataFrame) -> pd.DataFrame:
    g = boxes.groupby(["image", "code"], sort=True).size().reset_index(name="count")
    return g.astype({"image": np.int32, "code": np.int16, "count": np.int32})


# --------------------------------------------------------------------------------------------------------------
# The Parquet cache: one entry per (file, content key); meta JSON written last commits the entry.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheEntry:
    """Where one file's cached tables are."""

    root: Path
    stem: str

    def table(self, name: str) -> Path:
        return self.root / f"{self.stem}.{name}.parquet"

    @property
    def meta(self) -> Path:
        return self.root / f"{self.stem}.json"


class ColumnarCache:
    """The Parquet cache of `FileColumns`, one entry per source file and content key.

    Args:
        root: Cache folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.parses = 0  # files parsed by this cache object (tests and benchmarks count them)

    def entry(self, path: Path) -> CacheEntry:
        ident = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        return CacheEntry(self.root, f"{path.stem}-{ident}-{cache_key(path)}")

    def _stale(self, path: Path, keep: CacheEntry) -> list[Path]:
        ident = keep.stem.rsplit("-", 1)[0]
        return [p for p in self.root.glob(f"{ident}-*") if not p.name.startswith(keep.stem + ".")] if self.root.is_dir() else []

    def has(self, path: Path) -> bool:
        return self.entry(path).meta.is_file()

    def load(self, path: Path, *, boxes: bool = False) -> FileColumns | None:
        """The cached columns of ``path`` (``boxes`` too when asked), or None when there is no valid entry."""
        import pyarrow.parquet as pq

        e = self.entry(path)
        try:
            meta = json.loads(e.meta.read_text(encoding="utf-8"))
            if meta.get("version") != CACHE_VERSION:
                return None
            tables = {n: pq.read_table(e.table(n)).to_pandas() for n in _TABLES if n != "boxes" or boxes}
        except (OSError, ValueError):
            return None
        issues = tuple(LoadIssue(i["kind"], i["message"], int(i["count"]), tuple(i["examples"])) for i in meta["issues"])
        empty = pd.DataFrame({"image": np.array([], np.int32)})
        return FileColumns(tables["images"], tables.get("boxes", empty), tables["sizes"], tables["pairs"], issues)

    def store(self, path: Path, cols: FileColumns) -> None:
        """Write the entry of ``path`` (tables first, the meta JSON last) and drop its older entries."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        e = self.entry(path)
        for name in _TABLES:
            table = pa.Table.from_pandas(getattr(cols, name), preserve_index=False)

            def write(tmp: Path, t: pa.Table = table) -> None:
                pq.write_table(t, tmp, compression="zstd")

            write_atomic(e.table(name), write, durable=False)
        meta = {
            "version": CACHE_VERSION,
            "source": str(path.resolve()),
            "annotations": cols.n_annotations,
            "images": len(cols.images),
            "issues": [{"kind": i.kind, "message": i.message, "count": i.count, "examples": list(i.examples)} for i in cols.issues],
        }
        write_text(e.meta, json.dumps(meta, indent=1))
        for old in self._stale(path, e):
            old.unlink(missing_ok=True)

    def columns(self, path: Path, *, boxes: bool = False) -> FileColumns:
        """The columns of ``path``: from the cache when its entry is current, else parsed once and cached."""
        got = self.load(path, boxes=boxes)
        if got is not None:
            return got
        cols = read_file_columns(path)
        self.parses += 1
        self.store(path, cols)
        return cols


@dataclass(frozen=True)
class ScanResult:
    """What scanning a set of files gave: the readable files' columns and the skipped ones."""

    files: tuple[tuple[Path, FileColumns], ...]
    skipped: tuple[tuple[Path, str], ...]
    cached: int  # files that came from the cache
    parsed: int  # files parsed now


def scan_files(
    paths: Sequence[Path],
    cache: ColumnarCache | None = None,
    *,
    progress: Progress | None = None,
    boxes: bool = False,
) -> ScanResult:
    """Columns of every file, from the cache or parsed once; a damaged file is skipped and named, not fatal.

    Each file is cached as soon as it is read, so an interrupted scan resumes where it stopped.

    Args:
        paths: Annotation files (see `expand_sources`).
        cache: The cache (default: `default_cache_dir`).
        progress: Called with (files done, files total, file name) after each file.
        boxes: Also load the compact per-annotation columns (crops need them; the audit does not).
    """
    if not paths:
        raise OmrError("no annotation file given")
    cache = cache or ColumnarCache()
    files: list[tuple[Path, FileColumns]] = []
    skipped: list[tuple[Path, str]] = []
    before = cache.parses
    cached = 0
    for i, path in enumerate(paths):
        try:
            hit = cache.has(path)
            cols = cache.columns(path, boxes=boxes)
            cached += int(hit)
            if not boxes:
                cols = FileColumns(cols.images, cols.boxes.iloc[:0], cols.sizes, cols.pairs, cols.issues)
            files.append((path, cols))
        except (DataFormatError, OSError) as exc:
            skipped.append((path, str(exc)))
        if progress is not None:
            progress(i + 1, len(paths), path.name)
    return ScanResult(tuple(files), tuple(skipped), cached, cache.parses - before)


def skipped_issue(skipped: Sequence[tuple[Path, str]]) -> list[LoadIssue]:
    """One issue naming every file that could not be read (dropped from the audit, the others kept)."""
    if not skipped:
        return []
    names = ", ".join(p.name for p, _ in skipped)
    why = "; ".join(msg for _, msg in skipped[:3])
    return [
        LoadIssue(
            "file_unreadable",
            f"{len(skipped)} annotation file(s) skipped, the others are audited: {names}. {why}",
            len(skipped),
            tuple(str(p) for p, _ in skipped[:5]),
        )
    ]

