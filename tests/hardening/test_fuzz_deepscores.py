"""Fuzz the DeepScoresV2 reader with the real annotation file, damaged structurally and byte by byte.

Property: `load_deepscores` returns consistent tables (every kept row placeable, ids in range) or raises a
`DataFormatError` that names the file; never another exception.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from omr_core.datasets.deepscores import deepscores_names, load_deepscores
from omr_core.datasets.tables import ANNOTATION_COLUMNS, IMAGE_COLUMNS
from omr_core.errors import DataFormatError
from tests.conftest import REAL_SAMPLE
from tests.hardening.fuzzlib import FUZZ_EXAMPLES, HARDENING, outcome_of, ran, scratch_dir

REAL_PATH = REAL_SAMPLE
REAL_BYTES = REAL_PATH.read_bytes()
_REAL = json.loads(REAL_BYTES)


def _small_real(per_image: int = 30) -> dict[str, Any]:
    """The real file cut to three pages and their first annotations (key order and content as released)."""
    images = [im for im in _REAL["images"] if im["id"] in (1, 17, 52)]
    keep: dict[str, Any] = {}
    for im in images:
        im["ann_ids"] = im["ann_ids"][:per_image]
        keep.update({k: _REAL["annotations"][k] for k in im["ann_ids"]})
    some = next(iter(keep))
    keep[some] = {**keep[some], "comments": "instance:#00002a;rel_position:-3;duration:1/8;"}
    return {**{k: v for k, v in _REAL.items() if k not in ("images", "annotations")}, "images": images,
            "annotations": keep}


BASE = _small_real()
BASE_BYTES = json.dumps(BASE).encode()
_TMP = scratch_dir("omr-fuzz-ds-")
NAMES = deepscores_names()

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _retype(v: Any) -> Any:
    """The same content as another JSON type (what a hand-edited or foreign export does)."""
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return {str(i): x for i, x in enumerate(v)}
    return list(v.values())


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        holder: Any = doc
        key: Any = draw(st.sampled_from(sorted(doc)))
        for _ in range(draw(st.integers(0, 3))):  # walk down: a record, a field, an element
            node = holder[key]
            if isinstance(node, dict) and node:
                holder, key = node, draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                holder, key = node, draw(st.integers(0, len(node) - 1))
            else:
                break
        op = draw(st.sampled_from(["delete", "replace", "retype", "empty", "duplicate"]))
        node = holder[key]
        if op == "delete":
            del holder[key]
        elif op == "replace":
            holder[key] = draw(_JSON)
        elif op == "retype":
            holder[key] = _retype(node)
        elif op == "empty":
            holder[key] = type(node)() if isinstance(node, (dict, list, str)) else None
        elif isinstance(holder, list):
            holder.append(copy.deepcopy(node))
        else:
            holder[f"{key}x"] = copy.deepcopy(node)
    if draw(st.booleans()):  # another key order (annotations first, say)
        keys = draw(st.permutations(list(doc)))
        doc = {k: doc[k] for k in keys}
    style = draw(st.sampled_from(["released", "compact", "pretty"]))
    kw: dict[str, Any] = {"compact": {"separators": (",", ":")}, "pretty": {"indent": 2}}.get(style, {})
    return json.dumps(doc, ensure_ascii=draw(st.booleans()), **kw).encode("utf-8", "surrogatepass")


_GARBAGE = st.one_of(st.binary(max_size=24), st.sampled_from([b"}", b"{", b'"', b",", b"]", b'": {', b"}, ", b"\x00" * 32]))


@st.composite
def _bytes_damaged(draw: st.DrawFn, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["truncate", "insert", "overwrite", "delete", "repeat"]))
        if op == "truncate":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + draw(_GARBAGE) + data[at:]
        elif op == "overwrite":
            junk = draw(_GARBAGE)
            data = data[:at] + junk + data[at + len(junk) :]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 64)) :]
        else:  # a block written twice (a resumed copy): repeated keys, duplicated annotations
            n = draw(st.integers(1, 400))
            data = data[: at + n] + data[at : at + n] + data[at + n :]
    return data


def _check(data: Any) -> None:
    """Invariants of the tables every consumer (audit, convert, dashboard) relies on."""
    img, ann = data.images, data.annotations
    assert tuple(img.columns) == IMAGE_COLUMNS and tuple(ann.columns) == ANNOTATION_COLUMNS
    assert img["image"].tolist() == list(range(len(img)))
    assert img["image_id"].is_unique
    assert ann["image"].isin(img["image"]).all()
    assert ann["cat_id"].between(1, 136).all()
    assert (ann["name"].astype(str).to_numpy() == np.array(NAMES, dtype=object)[ann["cat_id"].to_numpy() - 1]).all()
    assert np.isfinite(ann[["x0", "y0", "x1", "y1", "area", "ox0", "oy3"]].to_numpy()).all()
    assert int(img["n_annotations"].sum()) == len(ann)
    assert (img["width"] > 0).all() and (img["height"] > 0).all()
    for issue in data.issues:
        assert issue.count > 0 and issue.message


def _load(name: str, content: bytes) -> None:
    p = _TMP / "deepscores_fuzz.json"
    p.write_bytes(content)
    res = outcome_of(name, lambda: load_deepscores(p, check_images=False), mentions=p.name)
    if res is not None:
        _check(res)


def test_base_file_reads() -> None:
    """The cut-down real file itself is clean (so the families below start from a valid file)."""
    p = _TMP / "base.json"
    p.write_bytes(BASE_BYTES)
    data = load_deepscores(p, check_images=False)
    _check(data)
    assert len(data.images) == 3 and len(data.annotations) == 90


def test_structural_mutations() -> None:
    @HARDENING
    @given(_mutated())
    def prop(content: bytes) -> None:
        _load("deepscores: keys dropped, types changed", content)

    assert ran("deepscores: keys dropped, types changed", prop) >= FUZZ_EXAMPLES


def test_byte_damage() -> None:
    @HARDENING
    @given(_bytes_damaged(BASE_BYTES))
    def prop(content: bytes) -> None:
        _load("deepscores: bytes damaged", content)

    assert ran("deepscores: bytes damaged", prop) >= FUZZ_EXAMPLES


def test_real_file_truncated() -> None:
    """The full 1.7 MB released file cut at any byte (an interrupted download)."""

    @HARDENING
    @given(st.integers(0, len(REAL_BYTES) - 1))
    def prop(at: int) -> None:
        _load("deepscores: real file truncated", REAL_BYTES[:at])

    assert ran("deepscores: real file truncated", prop) >= FUZZ_EXAMPLES


def test_random_json_documents() -> None:
    top = st.fixed_dictionaries({}, optional={k: _JSON for k in ("categories", "images", "annotations", "info")})

    @HARDENING
    @given(st.one_of(_JSON, top))
    def prop(doc: Any) -> None:
        _load("deepscores: random JSON documents", json.dumps(doc).encode("utf-8", "surrogatepass"))

    assert ran("deepscores: random JSON documents", prop) >= FUZZ_EXAMPLES


def test_arbitrary_bytes() -> None:
    @HARDENING
    @given(st.binary(max_size=2000))
    def prop(content: bytes) -> None:
        _load("deepscores: arbitrary bytes", content)

    assert ran("deepscores: arbitrary bytes", prop) >= FUZZ_EXAMPLES


@st.composite
def _mutated_doc(draw: st.DrawFn) -> dict[str, Any]:
    return json.loads(draw(_mutated()))


def test_fast_and_careful_paths_agree() -> None:
    """The same damaged content read through the fast path (annotations last, as released) and the careful one
    (annotations first) gives the same tables and the same issues."""

    @settings(HARDENING, max_examples=FUZZ_EXAMPLES // 2)  # two reads per case
    @given(_mutated_doc())
    def prop(doc: Any) -> None:
        if not isinstance(doc, dict) or "annotations" not in doc:
            return
        last = {**{k: v for k, v in doc.items() if k != "annotations"}, "annotations": doc["annotations"]}
        first = {"annotations": doc["annotations"], **{k: v for k, v in doc.items() if k != "annotations"}}
        p1, p2 = _TMP / "fast.json", _TMP / "careful.json"
        p1.write_text(json.dumps(last))
        p2.write_text(json.dumps(first))
        name = "deepscores: fast path = careful path"
        a = outcome_of(name, lambda: load_deepscores(p1, check_images=False))
        try:
            b = load_deepscores(p2, check_images=False)
        except DataFormatError:
            b = None
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            pd.testing.assert_frame_equal(a.images.drop(columns="source"), b.images.drop(columns="source"))
            pd.testing.assert_frame_equal(a.annotations, b.annotations)
            assert [(i.kind, i.count) for i in a.issues] == [(i.kind, i.count) for i in b.issues]

    assert ran("deepscores: fast path = careful path", prop) >= FUZZ_EXAMPLES // 3
