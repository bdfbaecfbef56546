"""Read DeepScoresV2 annotation files (the released JSON format) into two pandas tables, fast and loudly.

`load_deepscores` returns an images table and an annotations table that downstream code (audit, converter,
dashboard) uses without touching JSON again. Nothing is dropped silently: every dropped or repaired item is
counted in a `LoadIssue` that names the file, the key and a few example ids.

How it is fast: the released files put ``annotations`` last. The reader parses everything before it with
orjson (without the per-image ``ann_ids`` lists, which are only counted), rewrites the annotations object into
JSON lines with two ``bytes.replace`` calls per 8 MB chunk (``"id": {...}, "id2": {...}`` becomes
``{"k": "id", "v": {...}}`` per line) and parses the chunks with Arrow's JSON reader straight into columns, in a
worker thread while the next chunk is rewritten. No Python object per annotation is created. The rewrite is
checked by the parse itself: a separator pattern met inside a string breaks the JSON and Arrow refuses it. Any
file that does not fit (other key order, odd types, damaged) goes through the careful path: orjson on the whole
file, then per-record checks (about 2.5x slower and 2.5x the memory). Both paths feed the same column-wise
checks, so they report the same issues; the tests hold them to identical tables.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from omr_core.classes import class_table
from omr_core.datasets.tables import ANNOTATION_COLUMNS, AnnotationTables, LoadIssue
from omr_core.errors import DataFormatError

if TYPE_CHECKING:
    import pyarrow as pa

#: Top-level keys a DeepScoresV2 annotation file must have (``info`` and ``annotation_sets`` are optional).
REQUIRED_KEYS: tuple[str, ...] = ("categories", "images", "annotations")

#: Number of classes in the deepscores annotation set (ids 1-136).
N_DEEPSCORES = 136

_N_EXAMPLES = 5
_BLOCK_SIZE = 8 << 20  # bytes of JSON lines per Arrow parse task (a line must fit in one block)
_CHUNK_BYTES = 8 << 20  # bytes of annotations rewritten at a time (Arrow parses the previous chunk meanwhile)
_ANN_KEY = re.compile(rb'"annotations"\s*:\s*\{')
_ANN_IDS = re.compile(rb'"ann_ids"\s*:\s*\[([^\]]*)\]')
_KEY_VALUE_SEP = re.compile(rb"\s*:\s*")
_MEMBER_SEP = re.compile(rb"\s*,\s*")
_WS = b" \t\r\n"
_REL_POSITION = r"(?:^|;)\s*rel_position:\s*(?P<rel_position>[-+]?\d+)"
_DURATION = r"(?:^|;)\s*duration:\s*(?P<duration>[^;]*)"


@lru_cache(maxsize=1)
def deepscores_names() -> tuple[str, ...]:
    """The 136 official deepscores-set names in id order (category ``k`` of `name` is id ``k + 1``)."""
    names = tuple(c.name for c in class_table().deepscores)
    if len(names) != N_DEEPSCORES:  # pragma: no cover - the shipped table is fixed
        raise DataFormatError(f"class table has {len(names)} deepscores classes, expected {N_DEEPSCORES}")
    return names


def split_from_filename(path: Path | str) -> str:
    """``"train"`` or ``"test"`` when the file name says so (``deepscores_train.json``), else ``""``."""
    stem = Path(path).stem.lower()
    for split in ("train", "test"):
        if split in stem:
            return split
    return ""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: millions of fresh containers trigger collections that find nothing to free."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _examples(values: Sequence[Any] | np.ndarray, n: int = _N_EXAMPLES) -> tuple[str, ...]:
    return tuple(str(v) for v in list(values[:n]))


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


# --------------------------------------------------------------------------------------------------------------
# Parsing: two front ends (fast JSON-lines path, careful orjson path) that both produce a head dict and columns.
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    head: dict[str, Any]  # top-level keys; images[i]["ann_ids"] may be an int count (fast path)
    columns: dict[str, pa.Array]  # k, a_bbox, o_bbox, cat_id, area, img_id, comments
    issues: list[LoadIssue]


def _annotation_schema() -> pa.Schema:
    import pyarrow as pa

    value = pa.struct(
        [
            ("a_bbox", pa.list_(pa.float64())),
            ("o_bbox", pa.list_(pa.float64())),
            ("cat_id", pa.list_(pa.string())),
            ("area", pa.float64()),
            ("img_id", pa.string()),
            ("comments", pa.string()),
        ]
    )
    return pa.schema([("k", pa.string()), ("v", value)])


def _json_error(path: Path, err: orjson.JSONDecodeError, size: int) -> DataFormatError:
    hint = (
        "the file ends early: it is truncated (an interrupted download or copy?)"
        if err.pos >= size - 1
        else ("the file is damaged or is not JSON")
    )
    return DataFormatError(
        f"{path}: not valid JSON at line {err.lineno}, column {err.colno} (byte {err.pos:,} of {size:,}): "
        f"{err.msg}; {hint}. Re-download or re-export it."
    )


def _back_over_ws(raw: bytes | bytearray, end: int) -> int:
    """Index just after the last non-whitespace byte before ``end``."""
    while end > 0 and raw[end - 1] in _WS:
        end -= 1
    return end


def _count_ann_ids(m: re.Match[bytes]) -> bytes:
    content = m.group(1).strip()
    n = content.count(b",") + 1 if content else 0
    if b'"' in content and content.count(b'"') != 2 * n:  # ids with commas or quotes inside: parse properly
        n = len(orjson.loads(b"[" + content + b"]"))
    return b'"ann_ids": %d' % n


def _find_annotations_key(raw: bytes, close: int) -> re.Match[bytes] | None:
    """The top-level ``"annotations": {`` (first occurrence, else the last one: a string value may say it too)."""
    first = raw.find(b'"annotations"')
    for i in (first, raw.rfind(b'"annotations"', first + 1) if first >= 0 else -1):
        m = _ANN_KEY.match(raw, i) if i >= 0 else None
        if m is not None and m.end() - 1 <= close:
            return m
    return None


@dataclass(frozen=True)
class _Body:
    """Where the annotations are in the raw bytes and how their members are separated."""

    first_key: int  # index of the first key's opening quote
    close: int  # index of the annotations object's closing brace
    kv_sep: bytes  # between a key and its value, e.g. b": "
    member_sep: bytes | None  # between one value's "}" and the next key, e.g. b", " (None: one annotation)
    multiline: bool  # values span several lines (pretty-printed)


def _parse_fast(raw: bytes, path: Path) -> tuple[dict[str, Any], _Body | None] | None:
    """Parse everything but the annotations of a released-layout file, and locate the annotations.

    Returns (head, body or None when there are no annotations), or None when the file does not have that
    layout (the careful path then reads it).
    """
    end = _back_over_ws(raw, len(raw))
    if end < 2 or raw[end - 1] != ord("}"):
        return None
    close = _back_over_ws(raw, end - 1) - 1  # the annotations object's closing brace
    if close < 0 or raw[close] != ord("}"):
        return None
    m = _find_annotations_key(raw, close)
    if m is None:
        return None
    i, open_ = m.start(), m.end() - 1
    try:
        head = orjson.loads(_ANN_IDS.sub(_count_ann_ids, raw[:i]) + b'"annotations": {}' + raw[close + 1 : end])
    except (orjson.JSONDecodeError, ValueError):
        return None
    if not isinstance(head, dict) or head.get("annotations") != {} or any(k not in head for k in REQUIRED_KEYS):
        return None  # another layout (e.g. annotations first): the careful path reads it or names the missing key
    k0 = open_ + 1
    while k0 < close and raw[k0] in _WS:
        k0 += 1
    if k0 == close:
        return head, None  # no annotations
    if raw[k0] != ord('"'):
        return None
    key_end = raw.find(b'"', k0 + 1)
    value_open = raw.find(b"{", key_end)
    if key_end < 0 or value_open < 0 or not _KEY_VALUE_SEP.fullmatch(raw, key_end + 1, value_open):
        return None
    first_close = raw.find(b"}", value_open)
    next_key = raw.find(b'"', first_close)
    member_sep = raw[first_close + 1 : next_key] if 0 <= first_close < next_key < close else None
    if member_sep is not None and not _MEMBER_SEP.fullmatch(member_sep):
        return None
    multiline = b"\n" in raw[value_open:first_close]  # pretty-printed: Arrow must not cut blocks at newlines
    return head, _Body(k0, close, raw[key_end + 1 : value_open], member_sep, multiline)


def _ends_with_foreign_member(cols: dict[str, pa.Array]) -> bool:
    """True when the last line has none of the required fields: a top-level member such as ``"info": {...}``
    written after ``annotations`` was taken for an annotation, so the file needs the careful path."""
    last = len(cols["k"]) - 1
    return last >= 0 and all(not cols[f][last].is_valid for f in ("a_bbox", "cat_id", "img_id"))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such annotation file") from None
    except IsADirectoryError:
        raise DataFormatError(f"{path}: is a folder, expected a DeepScoresV2 .json file") from None


def _chunk_bounds(raw: bytes, body: _Body) -> list[tuple[int, int]]:
    """Split the annotations into pieces of about `_CHUNK_BYTES`, each from a key's quote to a value's brace."""
    bounds: list[tuple[int, int]] = []
    start = body.first_key
    sep = body.member_sep
    while start < body.close:
        cut = -1
        if sep is not None and start + _CHUNK_BYTES < body.close:
            cut = raw.find(b"}" + sep + b'"', start + _CHUNK_BYTES, body.close)
        if cut < 0:
            bounds.append((start, body.close))
            break
        bounds.append((start, cut + 1))
        start = cut + 1 + len(sep)  # type: ignore[arg-type]
    return bounds


def _read_annotations(raw: bytes, body: _Body) -> dict[str, pa.Array] | None:
    """Rewrite the annotations as JSON lines (``{"k": id, "v": {...}}``) chunk by chunk and parse them with Arrow.

    Arrow parses chunk i in a worker thread (it releases the GIL) while this thread rewrites chunk i+1.
    Returns None if Arrow refuses the lines (odd types, or a separator pattern inside a string).
    """
    import pyarrow as pa

    kv = body.kv_sep
    prefix = b'{"k"' + kv
    a_old, a_new = (b"}" + body.member_sep + b'"', b'}}\n{"k"' + kv + b'"') if body.member_sep else (b"", b"")
    b_old, b_new = b'"' + kv + b"{", b'", "v"' + kv + b"{"
    tables: list[pa.Table] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: list[Future[pa.Table | None]] = []
        for start, stop in _chunk_bounds(raw, body):
            # A chunk ends at a value's brace; close its last line, except the last chunk, which ends at the
            # annotations' own closing brace.
            last = stop == body.close
            piece = b"".join((prefix, memoryview(raw)[start : stop + 1 if last else stop], b"" if last else b"}"))
            if a_old:
                piece = piece.replace(a_old, a_new)
            piece = piece.replace(b_old, b_new)
            if len(pending) >= 2:  # at most two rewritten chunks wait in memory
                tables.append(pending.pop(0).result())
            pending.append(pool.submit(_parse_lines, piece, body.multiline))
            del piece
        tables += [f.result() for f in pending]
    if any(t is None for t in tables):
        return None
    table = pa.concat_tables(tables)  # type: ignore[arg-type]
    value = table.column("v").combine_chunks()
    cols: dict[str, pa.Array] = {"k": table.column("k").combine_chunks()}
    for name in ("a_bbox", "o_bbox", "cat_id", "area", "img_id", "comments"):
        cols[name] = value.field(name)
    return cols


def _parse_lines(buf: bytes, multiline: bool) -> pa.Table | None:
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        return pj.read_json(
            pa.py_buffer(buf),
            read_options=pj.ReadOptions(block_size=_BLOCK_SIZE, use_threads=True),
            parse_options=pj.ParseOptions(
                explicit_schema=_annotation_schema(),
                unexpected_field_behavior="ignore",
                newlines_in_values=multiline,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _numbers(x: object, n: int) -> list[float] | None:
    if isinstance(x, list) and len(x) == n and all(_is_number(v) for v in x):
        return x  # type: ignore[return-value]
    return None


def _id_text(x: object) -> str | None:
    if isinstance(x, str):
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    return None


def _columns_from_records(records: Mapping[Any, Any], path: Path) -> tuple[dict[str, pa.Array], list[LoadIssue]]:
    """Careful path: check every record in Python and build the same columns as the fast path."""
    import pyarrow as pa

    keys: list[str] = []
    abox: list[list[float] | None] = []
    obox: list[list[float] | None] = []
    cats: list[list[str | None] | None] = []
    areas: list[float | None] = []
    imgs: list[str | None] = []
    comments: list[str | None] = []
    not_objects: list[str] = []
    for key, rec in records.items():
        if not isinstance(rec, dict):
            not_objects.append(str(key))
            continue
        keys.append(str(key))
        abox.append(_numbers(rec.get("a_bbox"), 4))
        obox.append(_numbers(rec.get("o_bbox"), 8))
        c = rec.get("cat_id")
        if isinstance(c, (str, int)) and not isinstance(c, bool):  # a bare id instead of the pair
            c = [c]
        if isinstance(c, list) and 1 <= len(c) <= 2 and all(v is None or _id_text(v) is not None for v in c):
            cats.append([None if v is None else _id_text(v) for v in c])
        else:
            cats.append(None)
        a = rec.get("area")
        areas.append(float(a) if isinstance(a, (int, float)) and not isinstance(a, bool) else None)
        imgs.append(_id_text(rec.get("img_id")))
        cm = rec.get("comments")
        comments.append(cm if isinstance(cm, str) else None)
    cols = {
        "k": pa.array(keys, type=pa.string()),
        "a_bbox": pa.array(abox, type=pa.list_(pa.float64())),
        "o_bbox": pa.array(obox, type=pa.list_(pa.float64())),
        "cat_id": pa.array(cats, type=pa.list_(pa.string())),
        "area": pa.array(areas, type=pa.float64()),
        "img_id": pa.array(imgs, type=pa.string()),
        "comments": pa.array(comments, type=pa.string()),
    }
    issues = []
    if not_objects:
        issues.append(
            LoadIssue(
                "bad_field",
                f"{path.name}: {_plural(len(not_objects), 'annotation')} whose value is not an object: dropped",
                len(not_objects),
                _examples(not_objects),
            )
        )
    return cols, issues


def _check_top_level(doc: object, path: Path) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise DataFormatError(
            f"{path}: the top level is a JSON {type(doc).__name__}, expected an object with the keys "
            f"{', '.join(REQUIRED_KEYS)} (is this a DeepScoresV2 annotation file?)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise DataFormatError(
            f"{path}: missing top-level key{'s' if len(missing) > 1 else ''} {', '.join(repr(k) for k in missing)}; "
            f"a DeepScoresV2 file has {', '.join(REQUIRED_KEYS)} (found: {', '.join(map(repr, doc)) or 'nothing'})"
        )
    expected = {"categories": dict, "images": list, "annotations": dict}
    for key, typ in expected.items():
        if not isinstance(doc[key], typ):
            want = "an object keyed by id" if typ is dict else "a list of objects"
            raise DataFormatError(f"{path}: key {key!r} must be {want}, found a JSON {_json_type(doc[key])}")
    return doc


def _json_type(x: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(x), "number" if _is_number(x) else type(x).__name__
    )


def parse_file(path: Path) -> _Parsed:
    """Read one file through the fast path when it has the released layout, else the careful path."""
    raw = _read_bytes(path)
    fast = _parse_fast(raw, path)
    if fast is not None:
        head, body = fast
        _check_top_level(head, path)
        if body is None:
            return _Parsed(head, _columns_from_records({}, path)[0], [])
        cols = _read_annotations(raw, body)
        if cols is not None and not _ends_with_foreign_member(cols):
            return _Parsed(head, cols, [])
    size = len(raw)
    with _gc_paused():
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise _json_error(path, err, size) from None
        del raw
        doc = _check_top_level(doc, path)
        cols, issues = _columns_from_records(doc["annotations"], path)
        doc["annotations"] = {}
    return _Parsed(doc, cols, issues)


# --------------------------------------------------------------------------------------------------------------
# Column-wise checks shared by both paths.
# --------------------------------------------------------------------------------------------------------------


def _to_numpy_f64(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _list_lengths(arr: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return np.asarray(pc.list_value_length(arr).fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _fixed_lists(arr: pa.Array, n: int, lengths: np.ndarray) -> np.ndarray:
    """(len, n) float64 array of lists of length ``n``; other rows are NaN."""
    import pyarrow as pa

    ok = lengths == n
    if ok.all():
        return _to_numpy_f64(arr.flatten()).reshape(-1, n)
    out = np.full((len(arr), n), np.nan)
    if ok.any():
        out[ok] = _to_numpy_f64(arr.filter(pa.array(ok)).flatten()).reshape(-1, n)
    return out


def _nth_strings(arr: pa.Array, lengths: np.ndarray, nth: int) -> tuple[np.ndarray, pa.Array]:
    """Element ``nth`` of each list (rows whose list is too short are left out): (row numbers, strings)."""
    ln = np.maximum(lengths, 0)
    starts = np.concatenate(([0], np.cumsum(ln)[:-1])) if len(ln) else ln
    rows = np.flatnonzero(ln > nth)
    values = arr.flatten()
    return rows, values.take(starts[rows] + nth)


def _encode(values: pa.Array, lookup: Callable[[str], int], null_code: int) -> tuple[np.ndarray, list[str | None]]:
    """Map strings to ints through their few distinct values (ids repeat a lot): (codes, distinct values)."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(values)
    uniques: list[str | None] = enc.dictionary.to_pylist()
    lut = np.array([lookup(u) for u in uniques if u is not None] + [null_code], dtype=np.int64)
    idx = np.asarray(enc.indices.fill_null(len(lut) - 1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return lut[idx], uniques


def _deepscores_id(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        return -1
    return v if 1 <= v <= N_DEEPSCORES else -1


def _muscima_id(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        return -1
    return v if N_DEEPSCORES < v <= 208 else -1


def _has_duplicates(keys: pa.Array) -> bool:
    """True if an id repeats; numeric ids (the released files) are checked without hashing strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        ints = np.asarray(pc.cast(keys, pa.int64()).to_numpy(zero_copy_only=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return bool(pc.count_distinct(keys).as_py() != len(keys))
    if len(ints) < 2 or bool((ints[1:] > ints[:-1]).all()):  # ascending, as written by the toolkit
        return False
    return bool(len(np.unique(ints)) != len(ints)) or bool(pc.count_distinct(keys).as_py() != len(keys))


def _comment_field(comments: pa.Array, marker: str, pattern: str) -> tuple[np.ndarray, pa.Array]:
    """One ``key:value`` field of ``comments``: (rows that have it, its text there); the regex sees only those rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    has = np.asarray(pc.match_substring(comments, marker).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    found = pc.struct_field(pc.extract_regex(comments.filter(pa.array(has)), pattern), [0])
    valid = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    has[has] = valid  # the marker can appear without a well-formed value
    return has, found.filter(pa.array(valid))


def _text_column(n: int, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """Strings at ``rows``, "" elsewhere."""
    import pyarrow as pa
    import pyarrow.compute as pc

    base = pa.repeat(pa.scalar("", pa.string()), n)
    return pc.replace_with_mask(base, pa.array(rows), values) if rows.any() else base


def _int16_column(n: int, rows: np.ndarray, values: pa.Array) -> pd.arrays.IntegerArray:
    """Integers written as text at ``rows`` → nullable Int16 (absent or out of range → NA)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.zeros(n, dtype=np.int64)
    na = ~rows
    if rows.any():
        try:
            out[rows] = np.asarray(pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        except (pa.ArrowInvalid, OverflowError):  # absurdly long digit strings
            out[rows] = np.asarray(pd.to_numeric(values.to_pandas(), errors="coerce").fillna(1 << 40), dtype=np.int64)
    na |= np.abs(out) > np.iinfo(np.int16).max
    return pd.arrays.IntegerArray(np.where(na, 0, out).astype(np.int16), na)


@dataclass
class _Images:
    frame: pd.DataFrame  # IMAGE_COLUMNS except image/path/n_annotations filled later
    lookup: dict[str, int]  # image id as text -> local row
    listed: np.ndarray  # ann_ids count per row, -1 unknown
    issues: list[LoadIssue]


def _as_int(x: object) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, str) and x.strip().lstrip("-").isdigit():
        return int(x)
    return None


def _read_images(records: list[Any], path: Path) -> _Images:
    ids: list[int] = []
    names: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    listed: list[int] = []
    lookup: dict[str, int] = {}
    bad: dict[str, list[str]] = {}
    for pos, rec in enumerate(records):
        if not isinstance(rec, dict):
            bad.setdefault("not an object", []).append(f"images[{pos}]")
            continue
        img_id = _as_int(rec.get("id"))
        fname = rec.get("filename", rec.get("file_name"))  # the toolkit README says file_name
        w, h = _as_int(rec.get("width")), _as_int(rec.get("height"))
        where = f"images[{pos}]" if img_id is None else f"image id {img_id}"
        problem = (
            "id missing or not an integer"
            if img_id is None
            else "filename missing or not a string"
            if not isinstance(fname, str) or not fname
            else "width/height missing or not positive integers"
            if w is None or h is None or w <= 0 or h <= 0
            else None
        )
        if problem:
            bad.setdefault(problem, []).append(where)
            continue
        assert img_id is not None and w is not None and h is not None and isinstance(fname, str)
        key = str(img_id)
        if key in lookup:
            raise DataFormatError(
                f"{path}: image id {img_id} appears twice in 'images' ({names[lookup[key]]!r} and {fname!r}); "
                "annotations refer to images by id, so the file is ambiguous. Fix the ids and reload."
            )
        lookup[key] = len(ids)
        raw_id = rec.get("id")
        if isinstance(raw_id, str) and raw_id != key:
            lookup.setdefault(raw_id, len(ids))
        ids.append(img_id)
        names.append(fname)
        widths.append(w)
        heights.append(h)
        ann = rec.get("ann_ids")
        listed.append(ann if isinstance(ann, int) else len(ann) if isinstance(ann, list) else -1)
    issues = []
    for problem, places in bad.items():
        issues.append(
            LoadIssue(
                "bad_field",
                f"{path.name}: {_plural(len(places), 'image record')} with {problem}: dropped "
                "(their annotations are reported as missing_image_record)",
                len(places),
                _examples(places),
            )
        )
    frame = pd.DataFrame(
        {
            "image_id": np.array(ids, dtype=np.int64),
            "filename": pd.Series(names, dtype="str"),
            "width": np.array(widths, dtype=np.int32),
            "height": np.array(heights, dtype=np.int32),
        }
    )
    return _Images(frame, lookup, np.array(listed, dtype=np.int64), issues)


def _check_categories(categories: Mapping[str, Any], path: Path) -> list[LoadIssue]:
    """Names in the file's ``categories`` that disagree with the official table (ids are authoritative)."""
    table = class_table()
    mismatch: list[str] = []
    unknown: list[str] = []
    for key, rec in categories.items():
        cid = _as_int(key)
        name = rec.get("name") if isinstance(rec, dict) else None
        if cid is None or not 1 <= cid <= 208:
            unknown.append(f"{key!r}")
            continue
        official = table.by_id(cid).name
        if not isinstance(name, str):
            mismatch.append(f"{cid}: no name (official {official!r})")
            continue
        try:
            same = name == official or table.canonical_name(name) == table.canonical_name(official)
        except Exception:  # an unknown name never matches
            same = False
        if not same:
            mismatch.append(f"{cid}: {name!r} (official {official!r})")
    issues = []
    if mismatch:
        issues.append(
            LoadIssue(
                "category_name_mismatch",
                f"{path.name}: {_plural(len(mismatch), 'category definition')} name a class differently from "
                "the official DeepScoresV2 table; ids are authoritative, the official names are used",
                len(mismatch),
                _examples(mismatch),
            )
        )
    if unknown:
        issues.append(
            LoadIssue(
                "unknown_category_definition",
                f"{path.name}: 'categories' defines {_plural(len(unknown), 'id')} outside the official 1-208; "
                "annotations using them are dropped as unknown_category",
                len(unknown),
                _examples(unknown),
            )
        )
    return issues


def _flag(kind: str, mask: np.ndarray, keys: pa.Array, message: str) -> list[LoadIssue]:
    """One issue for the rows in ``mask`` (examples are their annotation ids); none when the mask is empty.

    ``message`` may use ``{n}`` (the count), ``{s}`` and ``{es}`` (plural endings).
    """
    import pyarrow as pa

    count = int(mask.sum())
    if not count:
        return []
    first = np.flatnonzero(mask)[:_N_EXAMPLES]
    examples = tuple(str(k) for k in keys.take(pa.array(first)).to_pylist())
    one = count == 1
    return [LoadIssue(kind, message.format(n=count, s="" if one else "s", es="" if one else "es"), count, examples)]


def _ids_list(values: Sequence[str | None], ok: Callable[[str], bool]) -> str:
    bad = sorted({v for v in values if v is not None and not ok(v)})
    return ", ".join(repr(v) for v in bad[:8]) + ("…" if len(bad) > 8 else "")


def _drop_duplicate_ids(cols: dict[str, pa.Array], path: Path) -> tuple[dict[str, pa.Array], list[LoadIssue]]:
    """Keep the last of repeated annotation ids, as a JSON reader would (only the fast path can see them)."""
    import pyarrow as pa

    keys = cols["k"]
    if not len(keys) or not _has_duplicates(keys):
        return cols, []
    dup = pd.Series(keys.to_pandas()).duplicated(keep="last").to_numpy()
    issues = _flag(
        "duplicate_annotation_id",
        dup,
        keys,
        f"{path.name}: {{n:,}} annotation id{{s}} appear more than once; the last occurrence is kept, "
        "as a JSON reader would",
    )
    keep = pa.array(~dup)
    return {name: arr.filter(keep) for name, arr in cols.items()}, issues


def build_file(parsed: _Parsed, path: Path, image_offset: int) -> tuple[pd.DataFrame, pd.DataFrame, list[LoadIssue]]:
    """Turn one parsed file into its images and annotations tables plus issues (image paths filled later)."""
    import pyarrow as pa

    name = path.name
    issues = list(parsed.issues)
    issues += _check_categories(parsed.head["categories"], path)
    imgs = _read_images(parsed.head["images"], path)
    issues += imgs.issues
    cols, dup_issues = _drop_duplicate_ids(parsed.columns, path)
    issues += dup_issues
    keys = cols["k"]
    box, cat_len, bad, bad_issues = _unusable_rows(cols, name)
    issues += bad_issues
    ids = _decode_ids(cols, cat_len, imgs)
    ds, mu, img = ids.ds, ids.mu, ids.img
    keep = ~bad & (ds > 0) & (img >= 0)
    issues += _id_issues(ids, bad, keep, keys, imgs, name)

    # From here on: kept rows only (usually all of them: skip the copies then).
    every = bool(keep.all())

    def kept(arr: Any) -> Any:
        return arr if every else arr[keep] if isinstance(arr, np.ndarray) else arr.filter(pa.array(keep))

    keys = kept(keys)
    box, ds, mu, img = kept(box), kept(ds), kept(mu), kept(img)
    obox = kept(_fixed_lists(cols["o_bbox"], 8, _list_lengths(cols["o_bbox"])))
    area = kept(_to_numpy_f64(cols["area"]))
    issues += _fill_optional(box, obox, area, keys, name)
    issues += _box_issues(box, img, keys, imgs.frame, name)
    ann = _annotations_frame(keys, img + image_offset, ds, mu, box, obox, area, kept(cols["comments"]))
    frame = imgs.frame
    frame.insert(0, "image", np.arange(len(frame), dtype=np.int64) + image_offset)
    frame["source"] = pd.Series([str(path)] * len(frame), dtype="str")
    frame["split"] = pd.Series([split_from_filename(path)] * len(frame), dtype="str")
    frame["path"] = pd.Series([""] * len(frame), dtype="str")
    frame["n_annotations"] = np.bincount(img, minlength=len(frame)).astype(np.int32)
    return frame, ann, issues


def _unusable_rows(cols: dict[str, Any], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[LoadIssue]]:
    """A row without a usable box, category or image id cannot be placed: ``(a_bbox, cat_id lengths, bad, issues)``."""
    keys = cols["k"]
    box = _fixed_lists(cols["a_bbox"], 4, _list_lengths(cols["a_bbox"]))
    bad_box = ~np.isfinite(box).all(axis=1)
    cat_len = _list_lengths(cols["cat_id"])
    bad_cat = (cat_len < 1) | (cat_len > 2)
    img_null = np.asarray(cols["img_id"].is_null().to_numpy(zero_copy_only=False), dtype=bool)
    bad = bad_box | bad_cat | img_null
    parts = [
        f"{what}: {int(mask.sum()):,}"
        for what, mask in (
            ("a_bbox missing or not 4 finite numbers", bad_box),
            ("cat_id missing or not a list of 1-2 ids", bad_cat),
            ("img_id missing or not a string", img_null),
        )
        if mask.any()
    ]
    issues = _flag(
        "bad_field", bad, keys, f"{name}: {{n:,}} annotation{{s}} with unusable fields ({'; '.join(parts)}): dropped"
    )
    return box, cat_len, bad, issues


@dataclass(frozen=True)
class _Ids:
    """Per row: deepscores id (0: null, -1: unknown), muscima++ id (0: none, -1: unknown), image row (-1: none)."""

    ds: np.ndarray
    ds_values: Any  # the distinct deepscores id strings, for messages
    mu: np.ndarray
    img: np.ndarray
    img_values: Any


def _decode_ids(cols: dict[str, Any], cat_len: np.ndarray, imgs: Any) -> _Ids:
    """Ids are text in the file; map their few distinct values, not every row."""
    n = len(cols["k"])
    ds = np.full(n, -1, dtype=np.int64)  # deepscores id; 0 = null (muscima++ only), -1 = unknown
    rows, first = _nth_strings(cols["cat_id"], cat_len, 0)
    ds[rows], ds_values = _encode(first, _deepscores_id, 0)
    mu = np.zeros(n, dtype=np.int64)  # muscima++ id; 0 = none, -1 = not a muscima++ id
    rows, second = _nth_strings(cols["cat_id"], cat_len, 1)
    mu[rows], _ = _encode(second, _muscima_id, 0)
    img, img_values = _encode(cols["img_id"], lambda s: imgs.lookup.get(s, -1), -1)
    return _Ids(ds, ds_values, mu, img, img_values)


def _id_issues(ids: _Ids, bad: np.ndarray, keep: np.ndarray, keys: Any, imgs: Any, name: str) -> list[LoadIssue]:
    """Rows dropped for their ids, unknown muscima++ ids, and images whose ``ann_ids`` count disagrees."""
    ds, mu, img, ds_values, img_values = ids.ds, ids.mu, ids.img, ids.ds_values, ids.img_values
    ok = ~bad
    issues: list[LoadIssue] = []
    issues += _flag(
        "muscima_only",
        ok & (ds == 0),
        keys,
        f"{name}: {{n:,}} annotation{{s}} have no deepscores id (cat_id [null, muscima++ id]): dropped, "
        "this reader keeps the deepscores set",
    )
    issues += _flag(
        "unknown_category",
        ok & (ds == -1),
        keys,
        f"{name}: {{n:,}} annotation{{s}} have a deepscores id outside 1-136 "
        f"(ids {_ids_list(ds_values, lambda v: _deepscores_id(v) > 0)}): dropped",
    )
    issues += _flag(
        "missing_image_record",
        ok & (ds > 0) & (img < 0),
        keys,
        f"{name}: {{n:,}} annotation{{s}} point at image ids with no record in 'images' "
        f"(img_id {_ids_list(img_values, lambda v: v in imgs.lookup)}): dropped",
    )
    issues += _flag(
        "unknown_muscima_id",
        keep & (mu == -1),
        keys,
        f"{name}: {{n:,}} annotation{{s}} have a muscima++ id outside 137-208: kept with no muscima++ id",
    )
    pointing = np.bincount(img[img >= 0], minlength=len(imgs.frame))
    mism = (imgs.listed >= 0) & (imgs.listed != pointing)
    if mism.any():
        ex = tuple(
            f"image {imgs.frame['image_id'].iat[r]}: lists {imgs.listed[r]}, {pointing[r]} point at it"
            for r in np.flatnonzero(mism)[:_N_EXAMPLES]
        )
        issues.append(
            LoadIssue(
                "ann_ids_mismatch",
                f"{name}: {_plural(int(mism.sum()), 'image')} whose 'ann_ids' count differs from the number of "
                "annotations whose img_id points at it (img_id is used)",
                int(mism.sum()),
                ex,
            )
        )
    return issues


def _fill_optional(box: np.ndarray, obox: np.ndarray, area: np.ndarray, keys: Any, name: str) -> list[LoadIssue]:
    """Fill missing or malformed ``o_bbox`` and ``area`` from ``a_bbox`` (in place)."""
    no_obox = ~np.isfinite(obox).all(axis=1)
    if no_obox.any():  # corners in the released order: (x1,y1) (x1,y0) (x0,y0) (x0,y1)
        b = box[no_obox]
        obox[no_obox] = np.stack([b[:, 2], b[:, 3], b[:, 2], b[:, 1], b[:, 0], b[:, 1], b[:, 0], b[:, 3]], axis=1)
    no_area = ~np.isfinite(area)
    if no_area.any():
        b = box[no_area]
        area[no_area] = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    filled = [f"o_bbox on {int(no_obox.sum()):,} (the a_bbox corners)"] if no_obox.any() else []
    filled += [f"area on {int(no_area.sum()):,} (the a_bbox area)"] if no_area.any() else []
    return _flag(
        "filled_field",
        no_obox | no_area,
        keys,
        f"{name}: missing or malformed optional fields were filled: {'; '.join(filled)}",
    )


def _box_issues(box: np.ndarray, img: np.ndarray, keys: Any, frame: pd.DataFrame, name: str) -> list[LoadIssue]:
    """Degenerate boxes and boxes past their page (kept: a converter decides)."""
    widths = frame["width"].to_numpy()[img]
    heights = frame["height"].to_numpy()[img]
    issues = _flag(
        "degenerate_box",
        (box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1]),
        keys,
        f"{name}: {{n:,}} box{{es}} with zero or negative width or height (kept; a converter must decide)",
    )
    issues += _flag(
        "box_outside_image",
        (box[:, 0] < 0) | (box[:, 1] < 0) | (box[:, 2] > widths) | (box[:, 3] > heights),
        keys,
        f"{name}: {{n:,}} box{{es}} extending past the page edges (kept; a converter should clip)",
    )
    return issues


def _annotations_frame(
    keys: Any, image: np.ndarray, ds: np.ndarray, mu: np.ndarray, box: np.ndarray, obox: np.ndarray, area: np.ndarray, comments: Any
) -> pd.DataFrame:
    """The annotations table of the kept rows (``image``: global image index)."""
    m = len(ds)
    f32 = np.float32
    return pd.DataFrame(
        {
            "ann_id": keys.to_pandas(),
            "image": image.astype(np.int64),
            "cat_id": ds.astype(np.int16),
            "muscima_id": pd.arrays.IntegerArray(np.where(mu > 0, mu, 0).astype(np.int16), mu <= 0),
            "name": pd.Categorical.from_codes(ds - 1, categories=pd.Index(deepscores_names())),
            "x0": box[:, 0].astype(f32),
            "y0": box[:, 1].astype(f32),
            "x1": box[:, 2].astype(f32),
            "y1": box[:, 3].astype(f32),
            "area": area.astype(f32),
            **{c: obox[:, j].astype(f32) for j, c in enumerate(ANNOTATION_COLUMNS[10:18])},
            "rel_position": _int16_column(m, *_comment_field(comments, "rel_position:", _REL_POSITION)),
            "duration": _text_column(m, *_comment_field(comments, "duration:", _DURATION)).to_pandas(),
        }
    )


def attach_image_files(
    images: pd.DataFrame, folders: Sequence[Path | None], explicit: bool, check: bool
) -> list[LoadIssue]:
    """Fill ``images.path`` and count image files that are not on disk (one issue per folder)."""
    issues: list[LoadIssue] = []
    paths = images["path"].to_numpy(dtype=object).copy()
    for folder in dict.fromkeys(folders):
        rows = [r for r, f in enumerate(folders) if f == folder]
        if folder is None:
            continue
        names = images["filename"].to_numpy(dtype=object)[rows]
        if not folder.is_dir():
            if check:
                why = "does not exist" if not folder.exists() else "is not a folder"
                note = "" if explicit else " (normal for an annotation-only file such as the released JSON)"
                issues.append(
                    LoadIssue(
                        "image_file_missing",
                        f"image folder {folder} {why}, so none of the {_plural(len(rows), 'page image')} can be "
                        f"found{note}; pass images_dir to point at the pages",
                        len(rows),
                        _examples(names),
                    )
                )
            continue
        if not check:
            for r, name in zip(rows, names):
                paths[r] = str(folder / name)
            continue
        try:
            present = set(os.listdir(folder))
        except OSError:
            present = set()
        missing: list[str] = []
        for r, name in zip(rows, names):
            if ("/" not in name and name in present) or ("/" in name and (folder / name).is_file()):
                paths[r] = str((folder / name).resolve())
            else:
                missing.append(name)
        if missing:
            issues.append(
                LoadIssue(
                    "image_file_missing",
                    f"{_plural(len(missing), 'image file')} listed in the annotations are not in {folder}",
                    len(missing),
                    _examples(missing),
                )
            )
    images["path"] = pd.Series(paths, dtype="str", index=images.index)
    return issues


def empty_tables(names: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Empty images and annotations tables with the right columns and dtypes (``names``: Categorical names)."""
    images = pd.DataFrame(
        {
            "image": np.array([], dtype=np.int64),
            "image_id": np.array([], dtype=np.int64),
            "filename": pd.Series([], dtype="str"),
            "width": np.array([], dtype=np.int32),
            "height": np.array([], dtype=np.int32),
            "source": pd.Series([], dtype="str"),
            "split": pd.Series([], dtype="str"),
            "path": pd.Series([], dtype="str"),
            "n_annotations": np.array([], dtype=np.int32),
        }
    )
    f32 = np.array([], dtype=np.float32)
    ann = pd.DataFrame(
        {
            "ann_id": pd.Series([], dtype="str"),
            "image": np.array([], dtype=np.int64),
            "cat_id": np.array([], dtype=np.int16),
            "muscima_id": pd.array([], dtype="Int16"),
            "name": pd.Categorical.from_codes(
                np.array([], dtype=np.int64), categories=pd.Index(list(names or deepscores_names()))
            ),
            **{c: f32 for c in ANNOTATION_COLUMNS[5:18]},
            "rel_position": pd.array([], dtype="Int16"),
            "duration": pd.Series([], dtype="str"),
        }
    )
    return images, ann


def load_deepscores(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    images_dir: str | os.PathLike[str] | None = None,
    *,
    check_images: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> AnnotationTables:
    """Read DeepScoresV2 annotation files into an images table and an annotations table.

    Only the deepscores annotation set is kept (one row per object; ``cat_id`` pairs are one object).
    Ids are authoritative: the names come from the official class table, and ``legerLine`` in a file's
    ``categories`` is accepted as ``ledgerLine``.

    Args:
        paths: One annotation file or several (e.g. train and test); image numbers continue across files.
        images_dir: Folder holding the page images; default ``<json folder>/images`` (the engraver's layout).
        check_images: Look for every page image and report the missing ones (one issue per folder).
            With False, ``images.path`` is the expected location (unchecked) when the folder exists.
        progress: Called with (done, total) steps.

    Returns:
        The tables, the issues and the source files.

    Raises:
        DataFormatError: A file that is missing, not JSON (truncated, damaged; the message gives the line,
            column and byte), lacks a top-level key, has a wrong top-level type, or repeats an image id.

    Examples:
        >>> data = load_deepscores("deepscores_test.json")          # doctest: +SKIP
        >>> data.annotations.groupby("name", observed=True).size()  # doctest: +SKIP
    """
    files = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not files:
        raise DataFormatError("no annotation file given")
    total = 2 * len(files) + 1
    step = 0

    def tick() -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total)

    image_frames: list[pd.DataFrame] = []
    ann_frames: list[pd.DataFrame] = []
    issues: list[LoadIssue] = []
    folders: list[Path | None] = []
    offset = 0
    for path in files:
        parsed = parse_file(path)
        tick()
        img, ann, file_issues = build_file(parsed, path, offset)
        del parsed
        tick()
        folder = Path(images_dir) if images_dir is not None else path.parent / "images"
        folders += [folder] * len(img)
        offset += len(img)
        image_frames.append(img)
        ann_frames.append(ann)
        issues += file_issues
    empty_img, empty_ann = empty_tables()
    images = pd.concat(image_frames, ignore_index=True) if image_frames else empty_img
    annotations = (
        pd.concat(ann_frames, ignore_index=True) if len(ann_frames) > 1 else ann_frames[0].reset_index(drop=True)
    )
    annotations = annotations.astype({"ann_id": "str", "duration": "str"})
    issues += attach_image_files(images, folders, images_dir is not None, check_images)
    tick()
    return AnnotationTables(images=images, annotations=annotations, issues=tuple(issues), sources=tuple(files))
