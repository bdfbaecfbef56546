"""YOLO datasets: data.yaml in the layouts other tools write, label files, pairing, and the shared tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from omr_core.classes import class_table
from omr_core.datasets.deepscores import deepscores_names, load_deepscores
from omr_core.datasets.tables import ANNOTATION_COLUMNS, IMAGE_COLUMNS
from omr_core.datasets.yolo import (
    label_path_for,
    load_yolo,
    read_data_yaml,
    read_labels,
    write_data_yaml,
    write_labels,
)
from omr_core.errors import DataFormatError, OmrError
from tests.conftest import REAL_SAMPLE

REAL = REAL_SAMPLE


def _png(path: Path, size: tuple[int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 255).save(path)
    return path


def _yaml(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ labels


def test_label_path_matches_ultralytics() -> None:
    from ultralytics.data.utils import img2label_paths

    images = [
        "/d/images/train/a.png",
        "/d/images/b/images/c.d.jpg",  # only the last /images/ changes
        "/d/train/images/x.JPG",  # Roboflow layout
        "/d/pics/noimages.png",  # no /images/ folder: label next to the image
        "rel/images/z",  # no suffix
    ]
    assert [str(label_path_for(p)) for p in images] == img2label_paths(images)
    assert label_path_for(Path("/d/images/train/a.png")) == Path("/d/labels/train/a.txt")


def test_labels_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.column_stack([rng.integers(0, 136, 50), np.round(rng.random((50, 4)), 6)]).astype(np.float32)
    path = tmp_path / "labels" / "train" / "p.txt"
    write_labels(path, labels)
    back = read_labels(path)
    assert back.dtype == np.float32 and back.shape == (50, 5)
    np.testing.assert_array_equal(back, labels)
    assert path.read_text().splitlines()[0].split()[0] == str(int(labels[0, 0]))  # class written as an integer
    write_labels(path, np.zeros((0, 5)))
    assert path.read_text() == "" and read_labels(path).shape == (0, 5)
    with pytest.raises(DataFormatError, match="non-negative integer classes"):
        write_labels(path, np.array([[1.5, 0.5, 0.5, 0.1, 0.1]]))


def test_read_labels_other_tools_and_errors(tmp_path: Path) -> None:
    assert read_labels(tmp_path / "missing.txt").shape == (0, 5)  # background image
    seg = tmp_path / "seg.txt"
    seg.write_text("\n3 0.1 0.2 0.3 0.2 0.3 0.4 0.1 0.4\n\n0 0.5 0.5 0.2 0.2\n")  # polygon + box, blank lines
    got = read_labels(seg)
    np.testing.assert_allclose(got, [[3, 0.2, 0.3, 0.2, 0.2], [0, 0.5, 0.5, 0.2, 0.2]], atol=1e-7)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: expected 'class x_center"):
        read_labels(bad)
    bad.write_text("0 0.5 0.5 0.2 0.2\n0 0.5 oops 0.2 0.2\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: not a number"):
        read_labels(bad)
    bad.write_text("-1 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt:1: class '-1'"):
        read_labels(bad)
    bad.write_text("2.5 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt:1: class '2.5'"):
        read_labels(bad)


# ------------------------------------------------------------------------------------------------ data.yaml


def test_data_yaml_round_trip_names_as_dict(tmp_path: Path) -> None:
    for split in ("train", "val"):
        _png(tmp_path / "ds" / "images" / split / "p1.png", (40, 30))
    names = ["brace", "ledgerLine", "clefG"]
    y = tmp_path / "ds" / "data.yaml"
    write_data_yaml(y, tmp_path / "ds", names, {"train": "images/train", "val": "images/val"})
    doc = yaml.safe_load(y.read_text())
    assert doc["names"] == {0: "brace", 1: "ledgerLine", 2: "clefG"}  # the Ultralytics way
    assert list(doc) == ["path", "train", "val", "nc", "names"] and doc["nc"] == 3
    ds = read_data_yaml(y)
    assert ds.names == tuple(names) and ds.root == (tmp_path / "ds").resolve()
    assert ds.splits == {
        "train": ((tmp_path / "ds" / "images" / "train" / "p1.png").resolve(),),
        "val": ((tmp_path / "ds" / "images" / "val" / "p1.png").resolve(),),
    }
    assert not list(y.parent.glob(".*tmp"))  # atomic write left no temp file
    with pytest.raises(DataFormatError, match="unique"):
        write_data_yaml(y, tmp_path, ["a", "a"], {})


def test_names_as_list_and_dict_with_string_keys(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "a.png", (10, 10))
    y1 = _yaml(tmp_path / "list.yaml", {"train": "images", "val": "images", "names": ["stem", "beam"]})
    y2 = _yaml(tmp_path / "dict.yaml", "train: images\nval: images\nnames:\n  '1': beam\n  '0': stem\n")
    assert read_data_yaml(y1).names == read_data_yaml(y2).names == ("stem", "beam")


def test_relative_and_absolute_path_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _png(tmp_path / "data" / "set" / "images" / "train" / "a.png", (10, 10))
    rel = _yaml(tmp_path / "data" / "cfg" / "rel.yaml", {"path": "../set", "train": "images/train", "names": ["x"]})
    absolute = _yaml(
        tmp_path / "elsewhere" / "abs.yaml",
        {"path": str(tmp_path / "data" / "set"), "train": "images/train", "names": ["x"]},
    )
    want = (tmp_path / "data" / "set").resolve()
    monkeypatch.chdir(tmp_path / "elsewhere")  # relative `path` is taken from the yaml's folder, not the cwd
    assert read_data_yaml(rel).root == want
    assert read_data_yaml(absolute).root == want
    # Ultralytics resolves a relative `path` from the current directory: that works too
    cwd_rel = _yaml(tmp_path / "elsewhere" / "cwd.yaml", {"path": "data/set", "train": "images/train", "names": ["x"]})
    monkeypatch.chdir(tmp_path)
    assert read_data_yaml(cwd_rel).root == want
    assert len(read_data_yaml(cwd_rel).splits["train"]) == 1


def _roboflow(root: Path) -> Path:
    """A dataset laid out and described the way a Roboflow YOLOv8 export is."""
    for split, n in (("train", 3), ("valid", 2), ("test", 1)):
        for i in range(n):
            img = _png(root / split / "images" / f"page{i}_png.rf.abc{i}.jpg", (200, 100))
            write_labels(label_path_for(img), np.array([[0, 0.5, 0.5, 0.1, 0.2], [2, 0.25, 0.25, 0.5, 0.5]]))
    text = (
        "train: ../train/images\n"
        "val: valid/images\n"
        "test: ../test/images\n\n"
        "nc: 3\n"
        "names: ['noteheadBlackOnLine', 'my-custom-symbol', 'legerLine']\n\n"
        "roboflow:\n  workspace: someone\n  project: omr\n  version: 2\n  license: CC BY 4.0\n"
        "  url: https://universe.roboflow.com/someone/omr/dataset/2\n"
    )
    return _yaml(root / "data.yaml", text)


def test_roboflow_layout(tmp_path: Path) -> None:
    ds = read_data_yaml(_roboflow(tmp_path / "export"))
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 3, "val": 2, "test": 1}
    assert all(p.parent == (tmp_path / "export" / "train" / "images").resolve() for p in ds.splits["train"])
    data = load_yolo(ds.yaml_path)
    assert tuple(data.images.columns) == IMAGE_COLUMNS and tuple(data.annotations.columns) == ANNOTATION_COLUMNS
    assert len(data.images) == 6 and len(data.annotations) == 12
    assert data.images["split"].value_counts().to_dict() == {"train": 3, "val": 2, "test": 1}
    assert (data.images[["width", "height"]].to_numpy() == [200, 100]).all()
    ann = data.annotations
    first = ann.iloc[0]
    assert (
        first["name"] == "noteheadBlackOnLine" and first.cat_id == class_table().by_name("noteheadBlackOnLine").id == 25
    )
    assert [first.x0, first.y0, first.x1, first.y1] == pytest.approx([90, 40, 110, 60])
    assert first.area == pytest.approx(20 * 20) and pd.isna(first.muscima_id) and first.duration == ""
    second = ann.iloc[1]
    assert second["name"] == "ledgerLine" and second.cat_id == 2  # legerLine accepted as the official class
    assert [second.x0, second.y0, second.x1, second.y1] == pytest.approx([0, 0, 100, 50])
    assert [second.ox0, second.oy0, second.ox2, second.oy2] == pytest.approx([100, 50, 0, 0])
    # the custom name has no official id; it comes after the 136 official names
    assert list(ann["name"].cat.categories) == [*deepscores_names(), "my-custom-symbol"]
    assert data.issues == ()


def test_custom_class_index_unknown_index_and_missing_labels(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    a = _png(root / "images" / "train" / "a.png", (100, 200))
    b = _png(root / "images" / "train" / "b.png", (100, 200))
    (root / "images" / "train" / "notes.txt").write_text("not an image")
    (root / "images" / "train" / "broken.png").write_bytes(b"\x89PNG garbage")
    write_labels(label_path_for(a), np.array([[1, 0.5, 0.5, 0.2, 0.1], [7, 0.5, 0.5, 0.2, 0.1]]))
    write_labels(label_path_for(root / "images" / "train" / "broken.png"), np.array([[0, 0.5, 0.5, 0.2, 0.1]]))
    del b  # no label file: a background image
    y = _yaml(root / "data.yaml", {"path": ".", "train": "images/train", "names": {0: "stem", 1: "my-dot"}})
    steps: list[tuple[int, int]] = []
    data = load_yolo(y, progress=lambda d, t: steps.append((d, t)))
    assert steps[-1] == (3, 3)
    kinds = {i.kind: i for i in data.issues}
    assert set(kinds) == {"unknown_category", "label_file_missing", "image_unreadable", "ultralytics_would_skip"}
    assert kinds["ultralytics_would_skip"].examples == ("a.png",)  # class 7 ≥ nc: Ultralytics skips the image
    assert kinds["unknown_category"].count == 1 and kinds["unknown_category"].examples == ("a:2",)
    assert kinds["label_file_missing"].examples == ("b.txt",)
    assert kinds["image_unreadable"].count == 1 and "1 labels dropped" in kinds["image_unreadable"].message
    assert len(data.annotations) == 1
    row = data.annotations.iloc[0]
    assert row["name"] == "my-dot" and row.cat_id == -1 and row.ann_id == "a:1"
    assert data.images.set_index("filename").loc["a.png", "n_annotations"] == 1


def test_labels_ultralytics_would_reject_are_flagged(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    a = _png(root / "images" / "a.png", (100, 100))
    b = _png(root / "images" / "b.png", (100, 100))
    label_path_for(a).parent.mkdir(parents=True)
    label_path_for(a).write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n0 0.9 0.5 0.02 0.2\n")  # duplicate row
    label_path_for(b).write_text("0 1.2 0.5 0.2 0.2\n")  # not normalised
    data = load_yolo(_yaml(root / "data.yaml", {"train": "images", "names": ["stem"]}))
    kinds = {i.kind: i for i in data.issues}
    assert kinds["ultralytics_would_skip"].examples == ("b.png",)
    assert kinds["duplicate_label"].count == 1 and kinds["duplicate_label"].examples == ("a.png",)
    assert kinds["box_outside_image"].count == 1 and kinds["box_outside_image"].examples == ("b:1",)
    assert len(data.annotations) == 4  # all kept: the audit decides


def test_load_yolo_of_a_converted_deepscores_file_gives_the_same_tables(tmp_path: Path) -> None:
    if not REAL.exists():
        pytest.skip("real sample not available")
    src = load_deepscores(REAL, check_images=False)
    root = tmp_path / "yolo"
    names = list(deepscores_names())
    ann = src.annotations
    imgs = src.images.set_index("image")
    for image, group in ann.groupby("image"):
        w, h = imgs.loc[image, ["width", "height"]]
        stem = Path(imgs.loc[image, "filename"]).stem
        img = _png(root / "images" / "test" / f"{stem}.png", (int(w), int(h)))
        x0, y0, x1, y1 = (group[c].to_numpy(np.float64) for c in ("x0", "y0", "x1", "y1"))
        labels = np.column_stack(
            [group["cat_id"] - 1, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]
        )
        write_labels(label_path_for(img), labels)
    write_data_yaml(root / "data.yaml", root, names, {"val": "images/test"})
    back = load_yolo(root / "data.yaml", splits=["val"])
    assert len(back.annotations) == len(ann) == 7404
    pd.testing.assert_series_equal(
        back.annotations["name"].value_counts().sort_index(), ann["name"].value_counts().sort_index()
    )
    # same objects: key the source rows like load_yolo's ann_id ("<image stem>:<k-th label>")
    stems = src.images.set_index("image")["filename"].map(lambda f: Path(f).stem)
    key = ann["image"].map(stems) + ":" + (ann.groupby("image").cumcount() + 1).astype(str)
    want = ann.assign(ann_id=key.to_numpy()).set_index("ann_id").sort_index()
    got = back.annotations.set_index("ann_id").sort_index()
    assert (got.index == want.index).all()
    assert (got["cat_id"].to_numpy() == want["cat_id"].to_numpy()).all()
    for c in ("x0", "y0", "x1", "y1"):
        np.testing.assert_allclose(got[c], want[c], atol=0.01)  # 6 decimals of a 2772 px page
    assert {i.kind for i in back.issues} == {"degenerate_box"}
    with pytest.raises(OmrError, match="no split 'train'"):
        load_yolo(root / "data.yaml", splits=["train"])


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("names: [a, b\ntrain: x\n", "not valid YAML at line"),
        ("- just\n- a list\n", "expected a YAML mapping"),
        ("train: images\nval: images\n", "no 'names' key"),
        ("train: images\nnc: 2\n", "'nc' without 'names'"),
        ("train: images\nnames: [a, b, a]\n", "duplicate class names"),
        ("train: images\nnames: {0: a, 2: b}\n", r"without gaps; missing \[1\]"),
        ("train: images\nnames: {1: a, 2: b}\n", r"without gaps; missing \[0\]"),
        ("train: images\nnc: 3\nnames: [a, b]\n", "'nc' is 3 but 'names' has 2"),
        ("train: images\nval: nowhere/images\nnames: [a]\n", "split 'val': 'nowhere/images' not found"),
        ("train: ../gone/images\nnames: [a]\n", "and .*gone/images"),
    ],
)
def test_data_yaml_errors(tmp_path: Path, text: str, want: str) -> None:
    _png(tmp_path / "images" / "a.png", (10, 10))
    with pytest.raises(DataFormatError, match=want):
        read_data_yaml(_yaml(tmp_path / "data.yaml", text))


def test_split_as_list_file_and_list_of_entries(tmp_path: Path) -> None:
    a = _png(tmp_path / "images" / "train" / "a.png", (10, 10))
    b = _png(tmp_path / "images" / "extra" / "b.png", (10, 10))
    _png(tmp_path / "images" / "train" / ".hidden" / "c.png", (10, 10))  # skipped like Ultralytics' glob
    (tmp_path / "train.txt").write_text(f"./images/train/a.png\n{b}\n\n", encoding="utf-8")
    y = _yaml(
        tmp_path / "data.yaml",
        {"train": "train.txt", "val": ["images/train", "images/extra"], "names": ["x"]},
    )
    ds = read_data_yaml(y)
    assert ds.splits["train"] == ds.splits["val"] == (b.resolve(), a.resolve())  # sorted, as Ultralytics does
    data = load_yolo(y)
    assert {i.kind for i in data.issues} == {"label_file_missing", "duplicate_image"}
    assert [os.path.basename(p) for p in data.images["path"]] == ["b.png", "a.png"] * 2


def test_symlinked_images_use_the_labels_next_to_the_link(tmp_path: Path) -> None:
    """`omr convert` links page images into the dataset: labels must be looked up beside the link."""
    src = _png(tmp_path / "source" / "page.png", (100, 200))
    root = tmp_path / "ds"
    link = root / "images" / "train" / "page.png"
    link.parent.mkdir(parents=True)
    link.symlink_to(src)
    write_labels(label_path_for(link), np.array([[0, 0.5, 0.5, 0.2, 0.1]]))
    y = _yaml(root / "data.yaml", {"path": ".", "train": "images/train", "names": ["stem"]})
    assert read_data_yaml(y).splits["train"] == (link,)
    data = load_yolo(y)
    assert len(data.annotations) == 1 and not [i for i in data.issues if i.kind == "label_file_missing"]
