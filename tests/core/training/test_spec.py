"""Train argument validation against Ultralytics' own config, presets, extras, the assigner forecast inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from omr_core.training.spec import (
    PRESETS,
    SpecError,
    build_spec,
    check_name,
    label_stats,
    normalize_device,
    parse_extra,
    ultralytics_defaults,
    validate_args,
)
from tests.core.training.tiny_dataset import make_tiny_dataset


def test_keys_come_from_ultralytics_default_cfg() -> None:
    from ultralytics.cfg import DEFAULT_CFG_DICT

    assert set(ultralytics_defaults()) == set(DEFAULT_CFG_DICT)


def test_unknown_key_lists_close_valid_ones() -> None:
    with pytest.raises(SpecError) as e:
        validate_args({"lr": 0.01, "mosiac": 0.0}, deep=False)
    msg = str(e.value)
    assert "'lr' is not an Ultralytics train argument" in msg and "lr0" in msg
    assert "'mosiac'" in msg and "mosaic" in msg


def test_run_owned_keys_are_refused() -> None:
    with pytest.raises(SpecError, match="decided by the run folder"):
        validate_args({"project": "x"}, deep=False)


def test_deep_check_uses_ultralytics_ranges() -> None:
    with pytest.raises(SpecError, match="lr0"):
        validate_args({"lr0": 3.0})
    with pytest.raises(SpecError, match="epochs"):
        validate_args({"epochs": 0}, deep=False)
    assert validate_args({"lr0": 0.001, "amp": False, "cos_lr": True}) == {"lr0": 0.001, "amp": False, "cos_lr": True}


@pytest.mark.parametrize(("given", "want"), [("cpu", "cpu"), ("0", "0"), ("0,1", "0,1"), ([0, 1], "0,1"), (0, "0"),
                                             ("0, 1", "0,1"), ("CUDA:0", "cuda:0")])
def test_devices(given: object, want: str) -> None:
    assert normalize_device(given) == want


@pytest.mark.parametrize("bad", ["gpu", "0;rm", "1,a"])
def test_bad_devices(bad: str) -> None:
    with pytest.raises(SpecError, match="device"):
        normalize_device(bad)


def test_parse_extra_types() -> None:
    got = parse_extra(["lr0=0.001", "amp=False", "freeze=10", "cache=disk", "close_mosaic=none", "# c", "", "x=[0, 1]"])
    assert got == {"lr0": 0.001, "amp": False, "freeze": 10, "cache": "disk", "close_mosaic": None, "x": [0, 1]}
    with pytest.raises(SpecError, match="key=value"):
        parse_extra(["lr0"])


def test_stable_preset_then_explicit_then_extra(tmp_path: Path) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("train: a\nval: a\nnames: [x]\n")
    s = build_spec("run1", "yolov8n.yaml", str(data), preset="stable", args={"epochs": 3, "lr0": None},
                   extra=["mosaic=0.5"], deep=False)
    assert s.args["optimizer"] == "SGD" and s.args["lr0"] == 0.001 and s.args["warmup_epochs"] == 5
    assert s.args["amp"] is False and s.args["mosaic"] == 0.5 and s.args["epochs"] == 3
    assert s.data == str(data.resolve()) and s.model == "yolov8n.yaml"
    assert set(PRESETS) >= {"stable", "sheet-music", "smoke-test"}


def test_spec_errors_are_messages(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        build_spec("r", "yolov8n.yaml", str(tmp_path / "nope" / "data.yaml"), deep=False)
    with pytest.raises(SpecError, match="unknown preset"):
        build_spec("r", "yolov8n.yaml", "coco8.yaml", preset="stabel", deep=False)
    with pytest.raises(SpecError, match="its own argument"):
        build_spec("r", "yolov8n.yaml", "coco8.yaml", extra=["data=x.yaml"], deep=False)
    for bad in ("", "../x", "a/b", "-x", "a b"):
        with pytest.raises(SpecError, match="run name"):
            check_name(bad)


def test_label_stats_counts_the_densest_image(tmp_path: Path) -> None:
    data = make_tiny_dataset(tmp_path / "ds", n_train=6, n_val=2)
    labels = sorted((tmp_path / "ds" / "labels" / "train").glob("*.txt"))
    densest = max(len(p.read_text().split("\n")) - 1 for p in labels)
    st = label_stats(data)
    assert st.max_labels == densest and st.nc == 3 and st.images == 6 and st.label_files == 6
    with pytest.raises(SpecError, match="nothing|not on disk|no training images"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("train: nothing\nnames: [a]\n")
        label_stats(bad)
