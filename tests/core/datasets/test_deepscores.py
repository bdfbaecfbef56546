"""DeepScoresV2 reader: the real 10-page file, both parse paths, and every kind of bad input."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from omr_core.datasets import deepscores as dsmod
from omr_core.datasets.deepscores import load_deepscores
from omr_core.datasets.tables import ANNOTATION_COLUMNS, IMAGE_COLUMNS, AnnotationTables, LoadIssue
from omr_core.errors import DataFormatError
from tests.conftest import REAL_SAMPLE, REPO

REAL = REAL_SAMPLE
CATEGORIES_CSV = REPO / "omr_core" / "data" / "categories.csv"

pytestmark = pytest.mark.skipif(not REAL.exists(), reason="the real 10-page DeepScoresV2 sample is not available")


@pytest.fixture(scope="module")
def real_doc() -> dict[str, Any]:
    return json.loads(REAL.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def real() -> AnnotationTables:
    return load_deepscores(REAL)


def _write(path: Path, doc: Any, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, **kw), encoding="utf-8")
    return path


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(doc))


def _issue(data: AnnotationTables, kind: str) -> LoadIssue:
    found = [i for i in data.issues if i.kind == kind]
    assert len(found) == 1, f"expected one {kind} issue, got {data.issues_text()}"
    return found[0]


def _kinds(data: AnnotationTables) -> set[str]:
    return {i.kind for i in data.issues}


def _careful(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the careful (orjson, per-record) path."""
    monkeypatch.setattr(dsmod, "_parse_fast", lambda raw, path: None)


# ------------------------------------------------------------------------------------------------ the real file


def test_real_file_shape_and_dtypes(real: AnnotationTables) -> None:
    assert len(real.images) == 10
    # Every one of the 7,404 annotations carries a deepscores id (32 of them have a null muscima++ id), so the
    # deepscores-set count equals the file's annotation count.
    assert len(real.annotations) == 7404
    assert tuple(real.images.columns) == IMAGE_COLUMNS
    assert tuple(real.annotations.columns) == ANNOTATION_COLUMNS
    assert (real.images["image"].to_numpy() == np.arange(10)).all()
    assert set(real.images["split"]) == {"test"}
    assert real.images["n_annotations"].sum() == 7404
    a = real.annotations
    assert a["image"].dtype == np.int64 and a["cat_id"].dtype == np.int16
    assert str(a["muscima_id"].dtype) == "Int16" and str(a["rel_position"].dtype) == "Int16"
    assert isinstance(a["name"].dtype, pd.CategoricalDtype) and len(a["name"].cat.categories) == 136
    assert all(a[c].dtype == np.float32 for c in ANNOTATION_COLUMNS[5:18])
    assert a["ann_id"].is_unique


def test_real_file_counts_match_an_independent_count(real: AnnotationTables, real_doc: dict[str, Any]) -> None:
    with CATEGORIES_CSV.open(encoding="utf-8") as f:
        official = {int(r["id"]): r["name"] for r in csv.DictReader(f)}
    expected = Counter(official[int(a["cat_id"][0])] for a in real_doc["annotations"].values())
    got = real.annotations["name"].value_counts()
    got = {str(k): int(v) for k, v in got.items() if v}
    assert got == dict(expected)
    # spot checks of the classes people get wrong
    assert got["stem"] == expected["stem"] > 1000
    assert got["ledgerLine"] == expected["ledgerLine"]
    assert got["clefG"] == expected["clefG"]
    per_image = Counter(a["img_id"] for a in real_doc["annotations"].values())
    by_id = dict(zip(real.images["image_id"].astype(str), real.images["n_annotations"]))
    assert by_id == dict(per_image)
    assert real.annotations["muscima_id"].isna().sum() == sum(
        a["cat_id"][1] is None for a in real_doc["annotations"].values()
    )


def test_real_file_values_of_one_annotation(real: AnnotationTables, real_doc: dict[str, Any]) -> None:
    src = real_doc["annotations"]["160133"]
    row = real.annotations.set_index("ann_id").loc["160133"]
    assert [row.x0, row.y0, row.x1, row.y1] == src["a_bbox"]
    np.testing.assert_allclose([row[c] for c in ANNOTATION_COLUMNS[10:18]], src["o_bbox"], rtol=1e-6)
    assert row.cat_id == int(src["cat_id"][0]) and row.muscima_id == int(src["cat_id"][1])
    assert row["name"] == "noteheadHalfInSpace" and row.area == src["area"]
    assert row.rel_position == 3 and row.duration == "2"  # comments "instance:#000015;duration:2;rel_position:3;"
    comments = [a["comments"] for a in real_doc["annotations"].values()]
    assert real.annotations["rel_position"].notna().sum() == sum("rel_position" in c for c in comments)
    assert (real.annotations["duration"] == "8*2/3").sum() == sum("duration:8*2/3;" in c for c in comments)


def test_real_file_issues(real: AnnotationTables) -> None:
    assert _kinds(real) == {"degenerate_box", "image_file_missing"}
    deg = _issue(real, "degenerate_box")
    assert deg.count == 2 and set(deg.examples) == {"407380", "407485"} and not deg.dropped
    assert len(real.annotations[real.annotations["ann_id"].isin(["407380", "407485"])]) == 2  # kept
    missing = _issue(real, "image_file_missing")
    assert missing.count == 10 and "does not exist" in missing.message and "annotation-only" in missing.message
    assert (real.images["path"] == "").all()
    assert real.n_dropped == 0
    assert all(line.startswith(("degenerate_box:", "image_file_missing:")) for line in real.issues_text())


def test_fast_and_careful_paths_give_identical_tables(real: AnnotationTables, monkeypatch: pytest.MonkeyPatch) -> None:
    _careful(monkeypatch)
    slow = load_deepscores(REAL)
    pd.testing.assert_frame_equal(real.images, slow.images)
    pd.testing.assert_frame_equal(real.annotations, slow.annotations)
    assert real.issues == slow.issues


def test_fast_path_is_used_for_released_and_compact_spacing(
    tmp_path: Path, real_doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = dsmod._read_annotations
    monkeypatch.setattr(dsmod, "_read_annotations", lambda raw, body: calls.append(1) or original(raw, body))
    load_deepscores(REAL)
    compact = _write(tmp_path / "compact.json", real_doc, separators=(",", ":"))
    data = load_deepscores(compact, check_images=False)
    assert len(calls) == 2
    assert len(data.annotations) == 7404


@pytest.mark.parametrize("chunk", [8 << 20, 50_000, 2_000])
def test_chunked_fast_path_reads_the_same(real: AnnotationTables, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    # the annotations are rewritten and parsed in pieces: 1 piece, ~33 pieces, ~800 pieces of ~9 annotations
    monkeypatch.setattr(dsmod, "_CHUNK_BYTES", chunk)
    careful = _spy_careful(monkeypatch)
    raw = REAL.read_bytes()
    fast = dsmod._parse_fast(raw, REAL)
    assert fast is not None and fast[1] is not None
    pieces = dsmod._chunk_bounds(raw, fast[1])
    expected = {8 << 20: range(1, 2), 50_000: range(30, 41), 2_000: range(700, 900)}[chunk]
    assert len(pieces) in expected
    assert all(raw[a : a + 1] == b'"' for a, _ in pieces) and pieces[-1][1] == fast[1].close
    data = load_deepscores(REAL)
    assert careful == []
    pd.testing.assert_frame_equal(data.annotations, real.annotations)
    assert data.issues == real.issues


@pytest.mark.parametrize("block_size", [8 << 20, 64 << 10])
def test_pretty_printed_file_reads_the_same(
    tmp_path: Path, real_doc: dict[str, Any], real: AnnotationTables, monkeypatch: pytest.MonkeyPatch, block_size: int
) -> None:
    # indent=2 puts newlines inside every annotation; small blocks and chunks cut the lines into many tasks
    monkeypatch.setattr(dsmod, "_BLOCK_SIZE", block_size)
    monkeypatch.setattr(dsmod, "_CHUNK_BYTES", block_size)
    careful = _spy_careful(monkeypatch)
    pretty = _write(tmp_path / "deepscores_test.json", real_doc, indent=2)
    data = load_deepscores(pretty, check_images=False)
    assert careful == []  # still the fast path
    pd.testing.assert_frame_equal(data.annotations, real.annotations)
    pd.testing.assert_frame_equal(data.images.drop(columns="source"), real.images.drop(columns="source"))


@pytest.mark.parametrize("order", ["annotations first", "info last"])
def test_other_key_orders_read_the_same(
    tmp_path: Path, real_doc: dict[str, Any], real: AnnotationTables, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    careful = _spy_careful(monkeypatch)
    if order == "annotations first":
        doc = {"annotations": real_doc["annotations"], **{k: v for k, v in real_doc.items() if k != "annotations"}}
    else:  # a member after annotations looks like one more annotation to the fast path: it must notice
        doc = {**{k: v for k, v in real_doc.items() if k != "info"}, "info": real_doc["info"]}
    data = load_deepscores(_write(tmp_path / "deepscores_test.json", doc), check_images=False)
    assert careful == [7404]
    pd.testing.assert_frame_equal(data.annotations, real.annotations)
    assert {i.kind for i in data.issues} == {"degenerate_box"}


def test_single_annotation_and_extra_fields(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    doc = _copy(real_doc)
    first = next(iter(doc["annotations"]))
    doc["annotations"] = {first: {**doc["annotations"][first], "score": 0.9, "meta": {"by": "hand"}}}
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    assert list(data.annotations["ann_id"]) == [first]
    assert data.annotations["name"].iloc[0] == "staff"


# ------------------------------------------------------------------------------------------------ bad input


def test_truncated_json_names_file_and_position(tmp_path: Path) -> None:
    raw = REAL.read_bytes()
    bad = tmp_path / "deepscores_train.json"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError) as err:
        load_deepscores(bad)
    msg = str(err.value)
    assert str(bad) in msg and "line 1, column" in msg and "truncated" in msg


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("this is not json\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"junk\.json: not valid JSON at line 1"):
        load_deepscores(junk)
    with pytest.raises(DataFormatError, match="no such annotation file"):
        load_deepscores(tmp_path / "nope.json")
    with pytest.raises(DataFormatError, match="top level is a JSON list"):
        load_deepscores(_write(tmp_path / "list.json", [1, 2]))


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(tmp_path: Path, real_doc: dict[str, Any], key: str) -> None:
    doc = {k: v for k, v in real_doc.items() if k != key}
    with pytest.raises(DataFormatError, match=f"missing top-level key '{key}'"):
        load_deepscores(_write(tmp_path / "x.json", doc))


@pytest.mark.parametrize(
    ("key", "value", "want"),
    [
        ("images", {"1": {}}, "'images' must be a list"),
        ("annotations", [], "'annotations' must be an object"),
        ("categories", [], "'categories' must be an object"),
    ],
)
def test_wrong_top_level_types(tmp_path: Path, real_doc: dict[str, Any], key: str, value: Any, want: str) -> None:
    doc = _copy(real_doc)
    doc[key] = value
    with pytest.raises(DataFormatError, match=want):
        load_deepscores(_write(tmp_path / "x.json", doc))


def test_duplicate_image_id_is_an_error(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    doc = _copy(real_doc)
    doc["images"][1]["id"] = doc["images"][0]["id"]
    with pytest.raises(DataFormatError, match="image id 1 appears twice"):
        load_deepscores(_write(tmp_path / "x.json", doc))


@pytest.mark.parametrize("careful", [False, True])
def test_unknown_and_muscima_only_categories_are_dropped_and_counted(
    tmp_path: Path, real_doc: dict[str, Any], careful: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if careful:
        _careful(monkeypatch)
    doc = _copy(real_doc)
    keys = list(doc["annotations"])
    for k in keys[:3]:
        doc["annotations"][k]["cat_id"] = ["999", None]
    doc["annotations"][keys[3]]["cat_id"] = ["150", "150"]  # a muscima++ id in the deepscores slot
    doc["annotations"][keys[4]]["cat_id"] = [None, "138"]
    doc["annotations"][keys[5]]["cat_id"] = [None, "161"]
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    unknown = _issue(data, "unknown_category")
    assert unknown.count == 4 and unknown.dropped
    assert set(unknown.examples) == set(keys[:4]) and "'999'" in unknown.message and "'150'" in unknown.message
    mus = _issue(data, "muscima_only")
    assert mus.count == 2 and set(mus.examples) == {keys[4], keys[5]}
    assert len(data.annotations) == 7404 - 6
    assert data.n_dropped == 6
    assert not data.annotations["ann_id"].isin(keys[:6]).any()


@pytest.mark.parametrize("careful", [False, True])
def test_annotation_pointing_at_missing_image(
    tmp_path: Path, real_doc: dict[str, Any], careful: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if careful:
        _careful(monkeypatch)
    doc = _copy(real_doc)
    keys = list(doc["annotations"])
    doc["annotations"][keys[0]]["img_id"] = "9999"
    doc["annotations"][keys[1]]["img_id"] = "9999"
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    issue = _issue(data, "missing_image_record")
    assert issue.count == 2 and set(issue.examples) == {keys[0], keys[1]} and "'9999'" in issue.message
    assert len(data.annotations) == 7402
    # image 1 still lists those two ids: reported, not silently ignored
    mismatch = _issue(data, "ann_ids_mismatch")
    assert mismatch.count == 1 and "lists 281, 279 point at it" in mismatch.examples[0]


def test_image_record_with_bad_fields_is_dropped_with_its_annotations(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    doc = _copy(real_doc)
    doc["images"][0]["width"] = "wide"
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    bad = _issue(data, "bad_field")
    assert bad.count == 1 and "width/height" in bad.message and bad.examples == ("image id 1",)
    assert _issue(data, "missing_image_record").count == 281
    assert len(data.images) == 9 and len(data.annotations) == 7404 - 281


def test_bad_annotation_fields(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    doc = _copy(real_doc)
    keys = list(doc["annotations"])
    doc["annotations"][keys[0]]["a_bbox"] = [1, 2, 3]  # fast path: wrong length
    del doc["annotations"][keys[1]]["o_bbox"]  # optional: filled from a_bbox
    del doc["annotations"][keys[2]]["area"]
    del doc["annotations"][keys[3]]["comments"]
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    bad = _issue(data, "bad_field")
    assert bad.count == 1 and bad.examples == (keys[0],) and "a_bbox" in bad.message
    filled = _issue(data, "filled_field")
    assert filled.count == 2 and set(filled.examples) == {keys[1], keys[2]}
    row = data.annotations.set_index("ann_id").loc[keys[1]]
    x0, y0, x1, y1 = doc["annotations"][keys[1]]["a_bbox"]
    assert [row.ox0, row.oy0, row.ox1, row.oy1, row.ox2, row.oy2, row.ox3, row.oy3] == [x1, y1, x1, y0, x0, y0, x0, y1]
    row = data.annotations.set_index("ann_id").loc[keys[2]]
    assert row.area == (row.x1 - row.x0) * (row.y1 - row.y0)
    assert len(data.annotations) == 7403


def _spy_careful(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many annotations the careful path checked."""
    seen: list[int] = []
    original = dsmod._columns_from_records

    def spy(records: Any, path: Path) -> Any:
        seen.append(len(records))
        return original(records, path)

    monkeypatch.setattr(dsmod, "_columns_from_records", spy)
    return seen


def test_odd_types_go_through_the_careful_path(
    tmp_path: Path, real_doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    careful = _spy_careful(monkeypatch)
    doc = _copy(real_doc)
    keys = list(doc["annotations"])
    doc["annotations"][keys[0]]["a_bbox"] = [1, "2", 3, 4]  # a string coordinate: unusable
    doc["annotations"][keys[1]]["cat_id"] = [6, None]  # ints instead of strings: fine
    doc["annotations"][keys[2]]["img_id"] = int(doc["annotations"][keys[2]]["img_id"])  # fine too
    doc["annotations"][keys[3]] = "not an object"
    for a in list(doc["annotations"].values())[4:50]:
        if isinstance(a, dict):
            a["a_bbox"] = [float(v) + 0.5 for v in a["a_bbox"]]  # float boxes, as in some released files
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    bad = [i for i in data.issues if i.kind == "bad_field"]
    assert sorted(i.count for i in bad) == [1, 1]
    assert {e for i in bad for e in i.examples} == {keys[0], keys[3]}
    ann = data.annotations.set_index("ann_id")
    assert ann.loc[keys[1], "name"] == "clefG" and ann.loc[keys[2], "image"] >= 0
    assert len(data.annotations) == 7402
    assert float(ann.iloc[10]["x0"]) % 1 == 0.5
    assert careful == [7404]  # Arrow refused the string coordinate; every record was checked in Python


def test_category_names_disagreeing_with_the_official_table(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    doc = _copy(real_doc)
    doc["categories"]["6"]["name"] = "beam"  # a real mistake: id 6 is clefG
    doc["categories"]["2"]["name"] = "legerLine"  # the June-2020 spelling: accepted
    doc["categories"]["999"] = {"name": "mystery", "annotation_set": "deepscores", "color": 0}
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    mismatch = _issue(data, "category_name_mismatch")
    assert mismatch.count == 1 and mismatch.examples == ("6: 'beam' (official 'clefG')",)
    assert _issue(data, "unknown_category_definition").count == 1
    clef_rows = data.annotations[data.annotations["cat_id"] == 6]
    assert len(clef_rows) > 0 and set(clef_rows["name"]) == {"clefG"}  # ids are authoritative


def test_duplicate_annotation_ids_keep_the_last(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    raw = REAL.read_bytes()
    first_key = next(iter(real_doc["annotations"]))
    second_key = list(real_doc["annotations"])[1]
    dup = raw.replace(f'"{second_key}": {{'.encode(), f'"{first_key}": {{'.encode(), 1)
    path = tmp_path / "dup.json"
    path.write_bytes(dup)
    data = load_deepscores(path, check_images=False)
    issue = _issue(data, "duplicate_annotation_id")
    assert issue.count == 1 and issue.examples == (first_key,)
    assert len(data.annotations) == 7403
    kept = data.annotations.set_index("ann_id").loc[first_key]
    assert [kept.x0, kept.y0] == real_doc["annotations"][second_key]["a_bbox"][:2]


def test_images_on_disk(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    js = tmp_path / "deepscores_train.json"
    js.write_bytes(REAL.read_bytes())
    (tmp_path / "images").mkdir()
    present = [im["filename"] for im in real_doc["images"][:7]]
    for name in present:
        (tmp_path / "images" / name).write_bytes(b"png")
    data = load_deepscores(js)
    issue = _issue(data, "image_file_missing")
    assert issue.count == 3 and set(issue.examples) == {im["filename"] for im in real_doc["images"][7:]}
    assert (data.images["path"] != "").sum() == 7 and set(data.images["split"]) == {"train"}
    assert Path(data.images["path"].iloc[0]).is_file()
    elsewhere = tmp_path / "pages"
    (tmp_path / "images").rename(elsewhere)
    assert _issue(load_deepscores(js, elsewhere), "image_file_missing").count == 3
    unchecked = load_deepscores(js, elsewhere, check_images=False)
    assert "image_file_missing" not in _kinds(unchecked) and (unchecked.images["path"] != "").all()


def test_several_files_number_images_across_files(tmp_path: Path) -> None:
    a = tmp_path / "deepscores_train.json"
    b = tmp_path / "deepscores_test.json"
    a.write_bytes(REAL.read_bytes())
    b.write_bytes(REAL.read_bytes())
    steps: list[tuple[int, int]] = []
    data = load_deepscores([a, b], check_images=False, progress=lambda d, t: steps.append((d, t)))
    assert len(data.images) == 20 and data.images["image"].is_unique
    assert list(data.images["split"].value_counts().sort_index()) == [10, 10]
    assert data.annotations["image"].max() == 19 and len(data.annotations) == 2 * 7404
    assert data.sources == (a, b)
    assert steps[-1][0] == steps[-1][1] and [d for d, _ in steps] == sorted(d for d, _ in steps)


def test_empty_annotations(tmp_path: Path, real_doc: dict[str, Any]) -> None:
    doc = _copy(real_doc)
    doc["annotations"] = {}
    data = load_deepscores(_write(tmp_path / "x.json", doc), check_images=False)
    assert len(data.annotations) == 0 and tuple(data.annotations.columns) == ANNOTATION_COLUMNS
    assert len(data.images) == 10 and (data.images["n_annotations"] == 0).all()
    assert _issue(data, "ann_ids_mismatch").count == 10


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("make_big_deepscores", REPO / "bench" / "make_big_deepscores.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_big_deepscores", mod)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_generator_writes_the_released_format(tmp_path: Path) -> None:
    path = _bench_module().make_big_deepscores(tmp_path / "deepscores_train.json", 6000, seed=3, per_page=700)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc["categories"])[:4] == ["1", "137", "2", "138"]
    assert len(doc["annotations"]) >= 6000 and all(isinstance(k, str) for k in list(doc["annotations"])[:10])
    data = load_deepscores(path, check_images=False)
    assert len(data.annotations) == len(doc["annotations"])
    expected = Counter(int(a["cat_id"][0]) for a in doc["annotations"].values())
    got = data.annotations["cat_id"].value_counts()
    assert {int(k): int(v) for k, v in got.items()} == dict(expected)
    assert _kinds(data) <= {"degenerate_box"}
