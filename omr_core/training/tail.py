"""Incremental readers for files that grow while a run trains: results.csv, JSONL logs, a text log's tail."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson

#: Bytes of a file's head remembered to notice a file replaced by another one of equal or larger size.
_HEAD_BYTES = 256


class _GrowingFile:
    """Byte-offset bookkeeping shared by the readers: new complete lines since the last call, restarts noticed.

    A file counts as restarted (and is read again from the start) when its inode changed, it shrank below the
    offset already read, its first bytes changed, or the byte before the offset is no longer a newline: Ultralytics
    deletes and rewrites results.csv on a fresh run in the same folder, and ext4 happily reuses the inode.
    """

    def __init__(self, path: str | os.PathLike[str], start_bytes: int | None = None, offset: int = 0) -> None:
        self.path = Path(path)
        self.start_bytes = start_bytes
        self.offset = offset
        self.ino: int | None = None
        self.head = b""
        self.tail = b""  # the last bytes read (up to _HEAD_BYTES), checked before reading on
        self.skipped_head = False  # True when the first read started near the end (start_bytes)

    def reset(self) -> None:
        self.offset, self.ino, self.head, self.tail, self.skipped_head = 0, None, b"", b"", False

    def read_new(self) -> tuple[bytes, bool]:
        """Return (complete new lines, restarted); a partial last line is left for the next call."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            restarted = self.offset > 0
            self.reset()
            return b"", restarted
        restarted = False
        with open(self.path, "rb") as f:
            if self.ino is not None:
                if st.st_ino != self.ino or st.st_size < self.offset or self._changed(f):
                    self.reset()
                    restarted = True
            if st.st_size == self.offset:
                return b"", restarted
            if self.ino is None:
                self.ino = st.st_ino
                self.head = f.read(_HEAD_BYTES)
                if self.start_bytes is not None and st.st_size > self.start_bytes:
                    # Start near the end, at a line boundary: a dashboard opened on a week-old run needs the tail.
                    f.seek(st.st_size - self.start_bytes)
                    f.readline()
                    self.offset = f.tell()
                    self.skipped_head = True
            f.seek(self.offset)
            chunk = f.read(st.st_size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return b"", restarted
        self.offset += end + 1
        self.tail = (self.tail + chunk[: end + 1])[-_HEAD_BYTES:]
        return chunk[: end + 1], restarted

    def _changed(self, f: Any) -> bool:
        if self.head:
            f.seek(0)
            if f.read(len(self.head)) != self.head:
                return True
        if self.tail:
            # The bytes just before the offset are those we read: if they are, whatever precedes is ours too
            # (or identical, which reads the same).
            f.seek(self.offset - len(self.tail))
            if f.read(len(self.tail)) != self.tail:
                return True
        return False


class Columns:
    """Numeric columns as they stood at one moment (a `ColumnStore.snapshot`): read-only, safe to share.

    The arrays are views into the store's buffers, which the store never writes below its end again (appends go
    after it, dropping old rows only moves the start, growing copies into new buffers): a snapshot never changes.
    """

    __slots__ = ("_cols", "n", "strings")

    def __init__(self, cols: Mapping[str, np.ndarray], n: int, strings: Mapping[str, str]) -> None:
        self._cols = dict(cols)
        self.n = n
        self.strings = dict(strings)  # last value of non-numeric fields (e.g. "kind")

    @property
    def names(self) -> list[str]:
        return list(self._cols)

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    def col(self, name: str) -> np.ndarray:
        """The column as a read-only array (all NaN when the key never appeared)."""
        c = self._cols.get(name)
        return np.full(self.n, np.nan) if c is None else c

    def last(self, name: str) -> float | None:
        """Last finite value of a column, or None."""
        c = self._cols.get(name)
        if c is None or self.n == 0:
            return None
        idx = np.flatnonzero(np.isfinite(c))
        return float(c[idx[-1]]) if idx.size else None

    def last_row(self) -> dict[str, float]:
        if self.n == 0:
            return {}
        return {k: float(c[-1]) for k, c in self._cols.items() if math.isfinite(c[-1])}


class ColumnStore:
    """Numeric columns that grow by appending records (dicts of numbers); new keys appear as NaN-filled columns.

    Rows ``start .. start + n`` of each buffer are the data. Nothing below ``start + n`` is written again, so the
    `Columns` that `snapshot` hands out stay valid while the store keeps growing in another thread. Read through
    a snapshot: the store itself only writes.
    """

    def __init__(self, max_rows: int | None = None) -> None:
        self.max_rows = max_rows
        self.clear()

    def clear(self) -> None:
        self.n, self._start, self._cap = 0, 0, 0
        self._cols: dict[str, np.ndarray] = {}
        self.strings: dict[str, str] = {}  # last value of non-numeric fields (e.g. "kind")
        self._snap: Columns | None = None

    def snapshot(self) -> Columns:
        """The columns as they are now, read-only (the same object until the next change)."""
        if self._snap is None:
            end = self._start + self.n
            views = {}
            for k, c in self._cols.items():
                v = c[self._start : end]
                v.flags.writeable = False
                views[k] = v
            self._snap = Columns(views, self.n, self.strings)
        return self._snap

    def extend(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append records; numbers (and bools) go to columns, strings to `strings`; returns rows added."""
        recs = records if isinstance(records, list) else list(records)
        if not recs:
            return 0
        k = len(recs)
        keys: dict[str, None] = {}
        for r in recs:
            keys.update(dict.fromkeys(r))
        self._reserve(self.n + k)
        end = self._start + self.n
        filled = set()
        for key in keys:
            vals = [r.get(key) for r in recs]
            arr: np.ndarray | None
            try:
                arr = np.array(vals, dtype=float)  # fast path: every record has a number here
            except (TypeError, ValueError):
                arr = None
            if arr is None or arr.shape != (k,):  # text, gaps, or lists (which numpy would stack into 2-D)
                arr = self._mixed(key, vals)
            if arr is None:
                continue
            col = self._cols.get(key)
            if col is None:
                col = self._cols[key] = np.full(self._cap, np.nan)
            col[end : end + k] = arr
            filled.add(key)
        for key, col in self._cols.items():
            if key not in filled:
                col[end : end + k] = np.nan
        self.n += k
        self._snap = None
        if self.max_rows is not None and self.n > self.max_rows:
            self.keep_last(self.max_rows)
        return k

    def _mixed(self, key: str, vals: list[Any]) -> np.ndarray | None:
        """Numbers with gaps (None, missing) become NaN; a string field is kept aside; nested values are skipped."""
        out = np.full(len(vals), np.nan)
        numeric = False
        for i, v in enumerate(vals):
            if isinstance(v, (int, float)):
                out[i] = v
                numeric = True
            elif isinstance(v, str):
                self.strings[key] = v
        return out if numeric or key in self._cols else None

    def keep_last(self, rows: int) -> None:
        """Drop all but the last ``rows`` rows (by moving the start: no data moves under a snapshot)."""
        drop = self.n - rows
        if drop <= 0:
            return
        self._start += drop
        self.n = rows
        self._snap = None

    def _reserve(self, need: int) -> None:
        """Room for ``need`` rows after the start; full buffers are copied into new ones, never moved in place."""
        if self._start + need <= self._cap:
            return
        cap = max(need, 2 * self.n, 1024)
        for key, col in self._cols.items():
            new = np.full(cap, np.nan)
            new[: self.n] = col[self._start : self._start + self.n]
            self._cols[key] = new
        self._start, self._cap = 0, cap


def flatten_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting becomes ``outer/inner`` keys (``{"loss": {"box": 1}}`` → ``loss/box``)."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, Mapping):
            for k2, v2 in v.items():
                out[f"{k}/{k2}"] = v2
        else:
            out[k] = v
    return out


class JsonlTail:
    """Read a JSON-lines file incrementally; bad lines are counted and skipped, never raised.

    Args:
        path: The file (it may not exist yet).
        start_bytes: On the first read of a file larger than this, start this many bytes before its end.
        offset: Start reading at this byte (a line boundary recorded earlier, e.g. the file's size at some moment).

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
        >>> _ = p.write_text('{"a": 1}\\n{"a": 2')  # second line still being written
        >>> t = JsonlTail(p)
        >>> t.poll()
        ([{'a': 1}], False)
    """

    def __init__(self, path: str | os.PathLike[str], start_bytes: int | None = None, offset: int = 0) -> None:
        self._file = _GrowingFile(path, start_bytes, offset)
        self.bad_lines = 0

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def skipped_head(self) -> bool:
        return self._file.skipped_head

    def poll(self) -> tuple[list[dict[str, Any]], bool]:
        """Return (new records, restarted): restarted means earlier records belong to a replaced file."""
        data, restarted = self._file.read_new()
        if restarted:
            self.bad_lines = 0
        if not data:
            return [], restarted
        try:
            # One parse for the whole chunk (several times faster than line by line); any bad line → slow path.
            # ",\n" between lines: a raw newline is invalid inside a JSON string, so two halves of a damaged record
            # cannot merge into one; the count check catches a line holding two objects.
            recs = orjson.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",\n") + b"]")
            if len(recs) == data.count(b"\n") and all(isinstance(r, dict) for r in recs):
                return recs, restarted
        except orjson.JSONDecodeError:
            pass
        out: list[dict[str, Any]] = []
        for line in data.split(b"\n"):  # only "\n" ends a line (a stray "\r" inside one is part of it)
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.bad_lines += 1
                continue
            if isinstance(rec, dict):
                out.append(rec)
            else:
                self.bad_lines += 1
        return out, restarted


def _num(cell: str) -> float | None:
    """The cell as a number (``nan``/``inf`` included), None when it is not one."""
    try:
        return float(cell)
    except ValueError:
        return None


def _is_header(cells: list[str]) -> bool:
    return bool(cells) and cells[0].lower() == "epoch"


def _header(cells: list[str]) -> list[str]:
    """Column names of a header line: ``epoch`` first whatever its case, repeated names made unique (``x.1``)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, c in enumerate(cells):
        name = "epoch" if i == 0 else c
        k, base = 0, name
        while name in seen:  # a damaged header; pandas mangles repeats the same way
            k += 1
            name = f"{base}.{k}"
        seen.add(name)
        out.append(name)
    return out


@dataclass(frozen=True, eq=False)
class ResultsTable:
    """results.csv as it was read at one moment (a `ResultsCsvTail.snapshot`): read-only, safe to share.

    Attributes:
        columns: Header cells, stripped.
        epoch_rows: One dict per epoch (the last row of an epoch wins), ordered by epoch.
        raw_rows: Data rows read, an epoch written twice counted twice.
        damage_lines: What was skipped or repaired, in words.
        raw: The data rows as read (the lists are never changed once read).
    """

    columns: tuple[str, ...] = ()
    epoch_rows: tuple[dict[str, float], ...] = ()
    damage_lines: tuple[str, ...] = ()
    raw: tuple[list[float], ...] = field(default=(), repr=False)

    def __len__(self) -> int:
        return len(self.raw)

    def rows(self) -> list[dict[str, float]]:
        """One dict per epoch (copies), ordered by epoch."""
        return [dict(r) for r in self.epoch_rows]

    def frame(self) -> Any:
        """The table as a pandas DataFrame (columns stripped, deduplicated by epoch; do not modify: it is shared)."""
        return self._frame

    @cached_property
    def _frame(self) -> Any:
        # Built on first use only: the runs table polls every run, the charts need the frame of the one on screen.
        import pandas as pd

        if not self.raw:
            return pd.DataFrame(columns=list(self.columns), dtype=float)
        df = pd.DataFrame(list(self.raw), columns=list(self.columns))
        return df.drop_duplicates(subset=self.columns[0], keep="last").sort_values(self.columns[0]).reset_index(drop=True)

    def column(self, name: str) -> np.ndarray:
        """Values of one column by epoch (deduplicated), NaN-filled when absent."""
        return np.array([r.get(name, math.nan) for r in self.epoch_rows], dtype=float)

    def damage(self) -> list[str]:
        """What was skipped or repaired, in words (empty for a clean file)."""
        return list(self.damage_lines)


class ResultsCsvTail:
    """Incremental reader of Ultralytics' results.csv, whatever the release that wrote it.

    Handles: header cells padded with spaces (releases before 8.1), no ``time`` column (before 8.3.9),
    ``l1_loss``/``giou_loss`` (RT-DETR) instead of ``dfl_loss``, any number of ``lr/pgN`` columns, a file
    deleted and restarted by a fresh run, a header repeated mid-file, a partial last line, ``nan``/``inf``
    cells, and an epoch written twice (resume after a kill): the last row of an epoch wins.

    Damage is counted, never raised: a line whose epoch cell is not a finite number (binary garbage, NUL-filled
    blocks after a crash, a line cut in half) or that comes before any header is skipped (`skipped_lines`); a row
    with missing, extra or unreadable cells is kept with NaN gaps (`repaired_rows`). `damage()` says it in words.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "results.csv"
        >>> _ = p.write_text("  epoch,  train/box_loss\\n      1,  1.5\\n      2,  1.2\\n")
        >>> r = ResultsCsvTail(p); _ = r.poll()
        >>> r.columns, r.column("train/box_loss").tolist()
        (['epoch', 'train/box_loss'], [1.5, 1.2])
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = _GrowingFile(path)
        self.columns: list[str] = []
        self._rows: list[list[float]] = []
        self.skipped_lines = 0  # lines dropped: no header yet, or no readable epoch number
        self.repaired_rows = 0  # rows kept with cells missing, extra or unreadable (NaN there)
        self.version = 0  # bumped on every change; cache keys use it
        self._snap: tuple[int, ResultsTable] | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._file.path

    def poll(self) -> bool:
        """Read what was appended; returns True when anything changed."""
        with self._lock:
            data, restarted = self._file.read_new()
            changed = restarted
            if restarted:
                self.columns, self._rows = [], []
                self.skipped_lines = self.repaired_rows = 0
            for raw in data.decode("utf-8", "replace").splitlines():
                line = raw.strip().lstrip("\ufeff")
                if not line:
                    continue
                cells = [c.strip() for c in line.split(",")]
                if _is_header(cells):
                    # A header after rows means a new run wrote into this file (appended instead of replacing).
                    self._rows = []
                    self.skipped_lines = self.repaired_rows = 0  # what was skipped belonged to the old run
                    self.columns = _header(cells)
                    changed = True
                    continue
                nums = [_num(c) for c in cells[: len(self.columns)]]
                if not nums or nums[0] is None or not math.isfinite(nums[0]):
                    self.skipped_lines += 1  # before any header (nothing names its cells), or no epoch number
                    changed = True
                    continue
                vals = [math.nan if v is None else v for v in nums]
                if len(cells) != len(self.columns) or None in nums:
                    self.repaired_rows += 1
                vals += [math.nan] * (len(self.columns) - len(vals))
                self._rows.append(vals)
                changed = True
            if changed:
                self.version += 1
            return changed

    def __len__(self) -> int:
        return len(self._rows)

    def snapshot(self) -> ResultsTable:
        """The table as read so far, read-only (the same object until the next change)."""
        with self._lock:
            if self._snap and self._snap[0] == self.version:
                return self._snap[1]
            by_epoch: dict[float, list[float]] = {}
            for r in self._rows:
                by_epoch[r[0]] = r
            epochs = sorted(by_epoch, key=lambda e: (math.isnan(e), e))
            snap = ResultsTable(
                columns=tuple(self.columns),
                epoch_rows=tuple(dict(zip(self.columns, by_epoch[e])) for e in epochs),
                damage_lines=tuple(self._damage()),
                raw=tuple(self._rows),
            )
            self._snap = (self.version, snap)
            return snap

    def _damage(self) -> list[str]:
        out = []
        if self.skipped_lines:
            out.append(f"skipped {self.skipped_lines} malformed line{'s' if self.skipped_lines != 1 else ''}")
        if self.repaired_rows:
            n = self.repaired_rows
            out.append(f"kept {n} damaged row{'s' if n != 1 else ''} with unreadable cells as gaps")
        return out

    def damage(self) -> list[str]:
        """What was skipped or repaired, in words (empty for a clean file)."""
        return self.snapshot().damage()

    def rows(self) -> list[dict[str, float]]:
        """One dict per epoch (last row of an epoch wins), ordered by epoch."""
        return self.snapshot().rows()

    def frame(self) -> Any:
        """The table as a pandas DataFrame (columns stripped, deduplicated by epoch), cached per version."""
        return self.snapshot().frame()

    def column(self, name: str) -> np.ndarray:
        """Values of one column by epoch (deduplicated), NaN-filled when absent."""
        return self.snapshot().column(name)


def read_results_csv(path: str | os.PathLike[str]) -> Any:
    """Read a results.csv of any Ultralytics release into a DataFrame (see `ResultsCsvTail`)."""
    t = ResultsCsvTail(path)
    t.poll()
    return t.frame()


def tail_text(path: str | os.PathLike[str], max_bytes: int = 32_768, max_lines: int = 200) -> list[str]:
    """Last lines of a text log; carriage-return progress bars keep only their final state, colours are dropped."""
    import re

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if size > max_bytes:
                f.seek(size - max_bytes)
            data = f.read(max_bytes)
    except OSError:
        return []
    text = data.decode("utf-8", "replace")
    if size > max_bytes and "\n" in text:
        text = text.split("\n", 1)[1]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    lines = [seg.rstrip("\r").split("\r")[-1].rstrip() for seg in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines[-max_lines:]


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a long series to at most ``max_points`` points keeping each bucket's min and max (spikes survive).

    Examples:
        >>> x = np.arange(10_000.0); y = np.zeros(10_000); y[5_000] = 9.0
        >>> xs, ys = downsample(x, y, 100)
        >>> len(xs) <= 100, float(ys.max())
        (True, 9.0)
    """
    n = len(x)
    if n <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    size = math.ceil(n / buckets)
    pad = buckets * size - n
    xs = np.concatenate([x, np.full(pad, x[-1])]) if pad else x
    ys = np.concatenate([y, np.full(pad, np.nan)]) if pad else y
    yb = ys.reshape(buckets, size)
    xb = xs.reshape(buckets, size)
    finite = np.isfinite(yb)
    ok = finite.any(axis=1)
    lo = np.where(finite, yb, np.inf).argmin(axis=1)
    hi = np.where(finite, yb, -np.inf).argmax(axis=1)
    first, second = np.minimum(lo, hi), np.maximum(lo, hi)
    rows = np.arange(buckets)
    out_x = np.column_stack([xb[rows, first], xb[rows, second]])[ok].ravel()
    out_y = np.column_stack([yb[rows, first], yb[rows, second]])[ok].ravel()
    return out_x, out_y


def ema_smooth(y: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard-style exponential smoothing with debiasing; NaNs are skipped, ``weight`` in [0, 1)."""
    if weight <= 0 or len(y) == 0:
        return y
    out = np.empty_like(y, dtype=float)
    last, num = 0.0, 0
    for i, v in enumerate(y):
        if not math.isfinite(v):
            out[i] = math.nan
            continue
        last = last * weight + (1 - weight) * v
        num += 1
        out[i] = last / (1 - weight**num)
    return out
