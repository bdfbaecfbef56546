"""The CPU recipe as presets: the reading classes that occur, 640 px tiles for imgsz 320, SGD that steps every batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from omr_core import recipe
from omr_core.audit.plan import PRESETS
from omr_core.audit.statistics import class_stats
from omr_core.classes import class_table
from omr_core.cli import main
from omr_core.datasets.discovery import load_dataset
from omr_core.training.spec import PRESETS as TRAIN_PRESETS
from omr_core.training.spec import build_spec


@pytest.fixture(scope="module")
def engraved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three full-size engraved pages (two train, one test), the size the recipe is made for."""
    from omr_core.datasets.synth import synth_dataset

    out = tmp_path_factory.mktemp("recipe") / "synth"
    synth_dataset(out, pages=3, seed=7, test_fraction=0.34)
    return out


def test_the_presets_exist_and_say_what_they_are() -> None:
    conv = PRESETS[recipe.READING_PRESET]
    assert (conv.tile, conv.overlap, conv.imgsz) == (640, 0.2, 320) and conv.drop_absent
    assert len(conv.keep or ()) == 49 == len(set(recipe.READING_CLASSES))
    table = class_table()
    assert all(table.canonical_name(n) == n for n in recipe.READING_CLASSES)  # official spellings
    train = TRAIN_PRESETS[recipe.CPU_PRESET]
    assert "imgsz 320" in train.description and conv.description
    spec = build_spec("r", "yolov8n.yaml", "coco8.yaml", preset=recipe.CPU_PRESET)  # Ultralytics' own checks
    a = spec.args
    assert (a["optimizer"], a["lr0"], a["lrf"], a["momentum"]) == ("SGD", 0.02, 0.1, 0.9)
    assert a["nbs"] == a["batch"] == 8 and a["imgsz"] == 320 and a["warmup_epochs"] == 0.5
    assert a["fliplr"] == a["flipud"] == a["degrees"] == a["hsv_h"] == a["hsv_s"] == 0.0
    assert (a["close_mosaic"], a["scale"], a["translate"]) == (2, 0.3, 0.1)


def test_keep_list_drops_classes_absent_from_the_data() -> None:
    conv = PRESETS[recipe.READING_PRESET]
    universe = class_table().names()
    assert len(conv.exclusions(universe)) == len(universe) - 49
    excluded = set(conv.exclusions(universe, ["clefG", "noteheadBlackOnLine", "stem"]))
    assert set(universe) - excluded == {"clefG", "noteheadBlackOnLine"}


def test_noteheads_are_ten_px_at_the_training_size(engraved: Path) -> None:
    ds = load_dataset([engraved / "deepscores_train.json", engraved / "deepscores_test.json"])
    # A tile of 640 page px is shown to the network at 320: sizes at imgsz are the page sizes times 320/640.
    st = class_stats(ds, imgsz=1024)
    heads = st[st["name"].str.startswith("notehead") & (st["instances"] > 0)]
    factor = recipe.IMGSZ / recipe.TILE
    # Measured: medians 20-27 x 17-23 px on the page (two engraving fonts), 10-13.5 x 8.5-11.5 px at imgsz 320.
    w, h = heads["median_w"] * factor, heads["median_h"] * factor
    assert len(heads) and (np.maximum(w, h) >= 10).all() and (np.minimum(w, h) >= 8).all(), heads[["name", "median_w", "median_h"]]


def test_convert_preset_reading_tiles_and_keeps_the_reading_classes(engraved: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = [str(engraved / "deepscores_train.json"), str(engraved / "deepscores_test.json")]
    out = tmp_path / "yolo"
    # Rare critical classes (small noteheads...) are outside the keep list: a person must say so.
    assert main(["convert", *src, str(out), "--preset", "reading"]) == 2
    err = capsys.readouterr().err
    assert "critical" in err and "--allow-critical" in err and not out.exists()
    assert main(["convert", *src, str(out), "--preset", "reading", "--allow-critical"]) == 0
    names = list(yaml.safe_load((out / "data.yaml").read_text())["names"].values())
    ds = load_dataset(src)
    st = class_stats(ds)
    present = set(st.loc[~st["empty"], "name"])
    assert names == [n for n in ds.names if n in set(recipe.READING_CLASSES) & present]
    manifest = json.loads((out / "excluded_classes.json").read_text())
    assert manifest["options"]["tile"] == 640 and manifest["options"]["imgsz"] == 320
    assert manifest["critical_override"]["used"]
    assert all(k["labels_written"] > 0 for k in manifest["kept"] if k["source_instances"] > 20)
    sidecar = json.loads((out / "dataset_scale.json").read_text())
    assert (sidecar["tile"], sidecar["overlap"], sidecar["imgsz"], sidecar["scale"]) == (640, 0.2, 320, 1.0)
    tiles = list((out / "images" / "train").glob("*.png"))
    from PIL import Image

    assert len(tiles) >= 20 and max(Image.open(t).size[0] for t in tiles) == 640
