"""Fuzz the YOLO dataset readers: data.yaml documents and text, label files, and a whole dataset with damaged labels.

Property: a result (a dataset description, an (n, 5) finite label array, consistent tables) or a
`DataFormatError`/`OmrError` naming the file; never another exception, never a hang.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from omr_core.datasets.yolo import load_yolo, read_data_yaml, read_labels
from tests.hardening.fuzzlib import FUZZ_EXAMPLES, HARDENING, outcome_of, ran, scratch_dir

# Deep enough that no generated relative path ("..", "../..") reaches a big folder such as /tmp.
_TMP = scratch_dir("omr-fuzz-yolo-") / "a" / "b" / "c"
DS = _TMP / "ds"
for split, stem in (("train", "p1"), ("train", "p2"), ("val", "p3")):
    (DS / "images" / split).mkdir(parents=True, exist_ok=True)
    (DS / "labels" / split).mkdir(parents=True, exist_ok=True)
    Image.new("L", (40, 30), 255).save(DS / "images" / split / f"{stem}.png")
    (DS / "labels" / split / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
(DS / "train.txt").write_text("./images/train/p1.png\nimages/train/p2.png\n\nnot-an-image.txt\n")

_PATHS = st.sampled_from(
    ["images/train", "images/val", "images/train/p1.png", "train.txt", "../ds/images/train", "../train/images",
     "missing", "", " ", ".", "images", "~nosuchuser_omr/images", "images/train\x00", "a" * 300, "images/*.png"]
)
# Free text never starts a path at the file-system root: "/" would make the reader (rightly) scan the whole disk.
_FREE = st.text(max_size=12).map(lambda s: s.replace("/", "_").replace("~", "-"))
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), _FREE)
_NAMES = st.one_of(
    st.lists(st.one_of(st.sampled_from(["noteheadBlackOnLine", "clefG", "stem", "legerLine", "", "a"]), _SCALAR), max_size=6),
    st.dictionaries(
        st.one_of(st.integers(-3, 8), st.sampled_from([10**12, 2**64, "0", "1", " 2", "²", "٣", "x", True, None, 1.0])),
        st.one_of(st.sampled_from(["a", "b", "stem"]), _SCALAR),
        max_size=6,
    ),
    _SCALAR,
)
_SPLIT = st.one_of(_PATHS, st.lists(_PATHS, max_size=3), _SCALAR, st.dictionaries(_FREE, _PATHS, max_size=2))
_GOOD_SPLIT = st.one_of(st.sampled_from(["images/train", "images/val", "train.txt", "images/train/p1.png"]),
                        st.lists(st.sampled_from(["images/train", "images/val"]), min_size=1, max_size=2))
_GOOD_NAMES = st.one_of(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True),
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True).map(dict.fromkeys).map(
        lambda d: {i: n for i, n in enumerate(d)}),
)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four (one_of would weigh every flattened branch of ``bad`` like ``good``)."""
    return st.integers(0, 3).flatmap(lambda i: bad if i == 0 else good)


# Mostly plausible files (so the reader gets past its first checks), each key sometimes damaged.
_DOC = st.fixed_dictionaries(
    {"names": _mostly(_GOOD_NAMES, _NAMES), "train": _mostly(_GOOD_SPLIT, _SPLIT)},
    optional={
        "path": st.one_of(st.sampled_from(["", ".", "..", "../ds", "~nosuchuser_omr/ds", "ds\x00", "a" * 300]), _FREE,
                          _SCALAR),
        "val": _mostly(_GOOD_SPLIT, _SPLIT),
        "validation": _SPLIT,
        "test": _SPLIT,
        "minival": _SPLIT,
        "nc": _mostly(st.integers(1, 5), st.one_of(st.sampled_from([float("nan"), float("inf"), 2.0, "2", "two", 10**400]),
                                                   _SCALAR)),
        "download": _FREE,
    },
)

# YAML that PyYAML itself chokes on in odd ways (impossible dates, bad tags, aliases, deep nesting).
_YAML_TOKENS = st.sampled_from(
    ["2001-02-30", "2024-13-01 25:61:00", "!!python/object:os.system x", "!!binary 'not base64'", "!!int abc",
     "!!float x", "!!timestamp yesterday", "*undefined", "&a [1]", "<<: 5", "[", "]", "{", "}", "|", ">", "---",
     "...", "%YAML 1.1", "? key", "0o8", "0b2", "~", "null", "1e999", "-.inf", ".nan", "'", '"\\x"', "\t", "@",
     "names:", "train:", "val:", "nc:", "path:", " - ", ": ", "\n", "\n  ", "images/train", "[" * 60]
)
_SKELETON = st.sampled_from(["names: [a, b]\n", "train: images/train\n", "val: images/val\n", "nc: 2\n", "x: "])
_YAML_TEXT = st.lists(st.one_of(_SKELETON, _YAML_TOKENS, st.text(max_size=6)), max_size=25).map("".join)


def _write(name: str, content: bytes) -> Path:
    p = DS / name
    p.write_bytes(content)
    return p


def _check_dataset(ds: Any) -> None:
    assert ds.names and all(isinstance(n, str) for n in ds.names) and len(set(ds.names)) == len(ds.names)
    for files in ds.splits.values():
        assert all(isinstance(f, Path) and f.is_absolute() for f in files)


def _read_yaml(name: str, content: bytes) -> None:
    p = _write("data.yaml", content)
    res = outcome_of(name, lambda: read_data_yaml(p), mentions="data.yaml")
    if res is not None:
        _check_dataset(res)


def test_structured_data_yaml() -> None:
    @HARDENING
    @given(_DOC, st.booleans())
    @example({"names": {0: "a", 10**12: "b"}, "train": "images/train"}, False)  # listed a trillion gaps: OOM kill
    @example({"names": ["a"], "train": "~nosuchuser_omr/x"}, False)  # RuntimeError from expanduser
    @example({"names": ["a"], "train": "a" * 300}, False)  # OSError ENAMETOOLONG from Path.exists
    def prop(doc: dict[str, Any], flow: bool) -> None:
        text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
        _read_yaml("data.yaml: documents", text.encode("utf-8", "surrogatepass"))

    assert ran("data.yaml: documents", prop) >= FUZZ_EXAMPLES


def test_yaml_like_text() -> None:
    @HARDENING
    @given(_YAML_TEXT)
    @example("names: [a]\ntrain: images/train\nx: 2001-02-30\n")  # PyYAML's ValueError
    @example("names: [a]\nx: !!timestamp yesterday\n")  # PyYAML's AttributeError
    def prop(text: str) -> None:
        _read_yaml("data.yaml: YAML-like text", text.encode("utf-8", "surrogatepass"))

    assert ran("data.yaml: YAML-like text", prop) >= FUZZ_EXAMPLES


def test_arbitrary_bytes_yaml() -> None:
    @HARDENING
    @given(st.binary(max_size=600))
    def prop(content: bytes) -> None:
        _read_yaml("data.yaml: arbitrary bytes", content)

    assert ran("data.yaml: arbitrary bytes", prop) >= FUZZ_EXAMPLES


_NUM_TOKENS = st.one_of(
    st.sampled_from(["0", "1", "3", "0.5", "1e40", "-1e40", "1e-50", "nan", "inf", "-0", "1.5", "2.0", "1e20", "-1",
                     "0x10", "1_0", "１", "٣", "+1", ".5", "5.", "e", ""]),
    st.floats().map(repr),
    st.integers(-(2**70), 2**70).map(str),
)
_UNIT = st.floats(0, 1).map(lambda v: f"{v:.6f}")
_GOOD_LINE = st.one_of(
    st.tuples(st.integers(0, 3).map(str), _UNIT, _UNIT, _UNIT, _UNIT).map(" ".join),
    st.lists(_UNIT, min_size=6, max_size=10).filter(lambda v: len(v) % 2 == 0).map(lambda v: " ".join(["1", *v])),
)
_LABEL_LINE = _mostly(_GOOD_LINE, st.lists(_NUM_TOKENS, max_size=11).map(" ".join))
_LABEL_TEXT = st.lists(_mostly(_LABEL_LINE, st.text(max_size=10)), max_size=12).map("\n".join)


def _check_labels(arr: np.ndarray) -> None:
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[1] == 5
    assert np.isfinite(arr).all(), "a label value that does not fit a float32 became inf"
    assert (arr[:, 0] >= 0).all() and (arr[:, 0] % 1 == 0).all()


def test_label_files() -> None:
    @HARDENING
    @given(st.one_of(_LABEL_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=200)))
    @example(b"0 1e40 0.5 0.1 0.1 0.2 0.2\n")  # became inf in the float32 array
    def prop(content: bytes) -> None:
        p = _write("labels.txt", content)
        res = outcome_of("labels: text and bytes", lambda: read_labels(p), mentions="labels.txt")
        if res is not None:
            _check_labels(res)

    assert ran("labels: text and bytes", prop) >= FUZZ_EXAMPLES


def test_dataset_with_damaged_labels() -> None:
    """A whole dataset read into the audit tables, its label files damaged."""
    data = DS / "fixed.yaml"
    data.write_text("train: images/train\nval: images/val\nnames: [noteheadBlackOnLine, stem, custom]\n")
    files = sorted((DS / "labels").rglob("*.txt"))

    @settings(HARDENING, max_examples=200)  # reads 3 images and 3 label files per case; read_labels gets 300 above
    @given(st.lists(_LABEL_TEXT, min_size=len(files), max_size=len(files)))
    @example(["1e20 0.5 0.5 0.1 0.1", "", ""])  # class 1e20 cast to int64 wrapped negative: IndexError
    def prop(texts: list[str]) -> None:
        for f, t in zip(files, texts):
            f.write_bytes(t.encode("utf-8", "surrogatepass"))
        res = outcome_of("load_yolo: damaged label files", lambda: load_yolo(data))
        if res is None:
            return
        img, ann = res.images, res.annotations
        assert len(img) == 3 and ann["image"].isin(img["image"]).all()
        assert ann["cat_id"].isin([25, 42, -1]).all()  # official ids of the names above, -1 for "custom"
        assert ann["name"].astype(str).isin(["noteheadBlackOnLine", "stem", "custom"]).all()
        assert int(img["n_annotations"].sum()) == len(ann)

    assert ran("load_yolo: damaged label files", prop) >= 200
