"""Class audit on the real DeepScoresV2 sample: counts, name-based plans, critical refusals, yaml checks, crops."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from omr_core.audit.plan import PRESETS, make_plan, resolve_ids, summarize
from omr_core.audit.report import audit_report
from omr_core.audit.statistics import class_stats, instances_per_image, render_crop, sample_crops
from omr_core.audit.yaml_check import check_yaml
from omr_core.cli import main
from omr_core.datasets.discovery import find_datasets, load_dataset
from omr_core.errors import CriticalExclusionError, DataFormatError, OmrError, UnknownClassError
from tests.conftest import REAL_SAMPLE

REAL = REAL_SAMPLE


def make_source(folder: Path, *, ink: bool = True, name: str = "deepscores_test.json") -> Path:
    """Copy the real annotation file into ``folder`` and draw its pages (each box outlined in black)."""
    raw = json.loads(REAL.read_text())
    (folder / "images").mkdir(parents=True, exist_ok=True)
    boxes: dict[str, list[list[float]]] = defaultdict(list)
    for a in raw["annotations"].values():
        boxes[a["img_id"]].append(a["a_bbox"])
    for im in raw["images"]:
        page = Image.new("L", (im["width"], im["height"]), 255)
        if ink:
            d = ImageDraw.Draw(page)
            for x0, y0, x1, y1 in boxes[str(im["id"])]:
                d.rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=0)
        page.save(folder / "images" / im["filename"], compress_level=1)
    out = folder / name
    out.write_text(json.dumps(raw))
    return out


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(REAL.read_text())


@pytest.fixture(scope="module")
def real():  # type: ignore[no-untyped-def]
    return load_dataset([REAL])


@pytest.fixture(scope="module")
def inked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("inked"))


# ----------------------------------------------------------------------------------------------- statistics


def test_counts_match_an_independent_count(real, raw) -> None:  # type: ignore[no-untyped-def]
    stats = class_stats(real, 1024)
    assert len(stats) == 136 and len(real.data.images) == 10
    file_names = {k: v["name"] for k, v in raw["categories"].items()}
    want = Counter(file_names[a["cat_id"][0]] for a in raw["annotations"].values())
    got = dict(zip(stats["name"], stats["instances"]))
    for name, n in want.items():
        assert got[name] == n, name
    assert int(stats["instances"].sum()) == len(raw["annotations"]) == 7404
    assert got["stem"] == 2032
    # names resolve to the official ids the file itself uses
    for r in stats[stats["instances"] > 0].itertuples():
        assert file_names[str(r.id)] == r.name and r.yolo_index == r.id - 1
    # images containing each class
    imgs: dict[str, set[str]] = defaultdict(set)
    for a in raw["annotations"].values():
        imgs[file_names[a["cat_id"][0]]].add(a["img_id"])
    for name, s in imgs.items():
        assert int(stats.loc[stats["name"] == name, "images"].iloc[0]) == len(s)
    assert stats["share"].sum() == pytest.approx(1.0)


def test_median_sizes_at_imgsz(real, raw) -> None:  # type: ignore[no-untyped-def]
    sizes = {im["id"]: (im["width"], im["height"]) for im in raw["images"]}
    ws, was = [], []
    for a in raw["annotations"].values():
        if a["cat_id"][0] == "6":
            x0, y0, x1, y1 = a["a_bbox"]
            w, h = sizes[int(a["img_id"])]
            ws.append(x1 - x0)
            was.append((x1 - x0) * 640 / max(w, h))
    row = class_stats(real, 640).set_index("name").loc["clefG"]
    assert row["median_w"] == pytest.approx(float(np.median(ws)))
    assert row["median_w_at"] == pytest.approx(float(np.median(was)))
    stats = class_stats(real, 1024).set_index("name")
    assert bool(stats.loc["stem", "tiny"]) and bool(stats.loc["ledgerLine", "tiny"])
    assert not bool(stats.loc["noteheadBlackOnLine", "tiny"]) and not bool(stats.loc["clefG", "tiny"])
    assert bool(stats.loc["clefUnpitchedPercussion", "no_samples"]) and bool(stats.loc["coda", "empty"])


def test_instances_per_image(real, raw) -> None:  # type: ignore[no-untyped-def]
    per = Counter(a["img_id"] for a in raw["annotations"].values())
    counts = instances_per_image(real)
    assert sorted(counts.tolist()) == sorted(per.values())
    plan = make_plan(real.names, ["stem"])
    after = instances_per_image(real, plan)
    stems = Counter(a["img_id"] for a in raw["annotations"].values() if a["cat_id"][0] == "42")
    assert int(after.sum()) == 7404 - 2032
    assert max(after) == max(per[k] - stems[k] for k in per)


# ----------------------------------------------------------------------------------------------- plans


def test_plan_by_name_with_alias_and_contiguous_indices(real) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(real.names, ["stem", "legerLine", "beam"])
    assert plan.excluded == ("ledgerLine", "stem", "beam")
    assert len(plan.kept) == 133 and "clefG" in plan.kept
    assert list(plan.new_index.values()) == list(range(133))
    assert plan.new_index["brace"] == 0 and plan.new_index["repeatDot"] == 1  # ledgerLine (index 1) is gone
    assert not plan.violations
    plan.check()


def test_unknown_names_list_the_closest(real) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownClassError) as e:
        make_plan(real.names, ["clefQ"])
    assert "clefG" in str(e.value)
    with pytest.raises(UnknownClassError) as e:
        make_plan(real.names, ["tieUp"])
    assert "tie" in str(e.value)


def test_ids_are_refused_but_shown_as_names(real) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownClassError) as e:
        make_plan(real.names, ["6"])
    assert "6 → clefG (critical!)" in str(e.value)
    labels = [r.label for r in resolve_ids(["6", "42", "122", "999", "138"])]
    assert labels[:3] == ["6 → clefG (critical!)", "42 → stem", "122 → beam"]
    assert labels[3].startswith("999 → ?") and "muscima++" in labels[4]


def test_critical_needs_an_explicit_override(real) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(real.names, ["clefG", "beam"])
    assert plan.critical_excluded == ("clefG",)
    assert plan.violations and "clefG" in plan.violations[0]
    with pytest.raises(CriticalExclusionError) as e:
        plan.check()
    assert "clefG" in str(e.value)
    ok = make_plan(real.names, ["clefG", "beam"], allow_critical=True)
    ok.check()
    assert "clefG (id 6)" in ok.override_log()
    assert plan.override_log() == ""


def test_presets(real) -> None:  # type: ignore[no-untyped-def]
    core = PRESETS["core symbols, reconstruct thin ones"].exclusions(real.names)
    assert set(core) == {"stem", "ledgerLine", "beam", "tie", "slur"}
    harmony = make_plan(real.names, PRESETS["harmony"].exclusions(real.names))
    kept_groups = {"noteheads", "accidentals", "clefs", "key signatures", "time signatures"}
    from omr_core.classes import class_table

    assert {class_table().by_name(n).group for n in harmony.kept} <= kept_groups
    assert "noteheadBlackOnLine" in harmony.kept and "clefG" in harmony.kept and "stem" in harmony.excluded
    # harmony drops rests and augmentationDot, which are critical: it needs the override too
    assert "augmentationDot" in harmony.critical_excluded and "restQuarter" in harmony.critical_excluded
    assert "keyboardPedalPed" in harmony.excluded and "keyboardPedalPed" not in harmony.critical_excluded  # pedal mark


def test_summary(real, raw) -> None:  # type: ignore[no-untyped-def]
    stats = class_stats(real)
    plan = make_plan(real.names, ["stem", "ledgerLine", "beam", "tie", "slur"])
    s = summarize(stats, plan)
    want = sum(1 for a in raw["annotations"].values() if a["cat_id"][0] in {"42", "2", "122", "123", "121"})
    assert s.instances_removed == want and s.instances_total == 7404
    assert s.removed_pct == pytest.approx(100 * want / 7404)
    assert s.kept_classes == 131 and s.excluded_classes == 5
    assert "coda" in s.become_empty and "clefG" not in s.become_empty
    drop = make_plan(real.names, ["stem"], drop_empty=list(stats.loc[stats["empty"], "name"]))
    assert "coda" in drop.excluded and drop.reason("coda") == "no instances in this dataset"


def test_report_json_ready(real) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(real.names, ["stem", "clefG"])
    rep = audit_report(real, plan, imgsz=1024, batch=32, vram_gb=32)
    json.dumps(rep)
    assert rep["instances"] == 7404 and rep["images"]["count"] == 10
    assert {e["name"]: e["id"] for e in rep["exclusions"]} == {"clefG": 6, "stem": 42}
    assert rep["violations"] and "clefG" in rep["violations"][0]
    f0, f1 = rep["forecast"]["before"], rep["forecast"]["after"]
    assert f0["max_labels"] == 1528 and f1["max_labels"] < 1528 and f1["nc"] == 134
    assert f0["fits"] is False and f1["max_batch"] >= f0["max_batch"]


# ----------------------------------------------------------------------------------------------- yaml check


def _yaml(path: Path, names: object) -> Path:
    path.write_text(yaml.safe_dump({"path": str(path.parent), "train": "images/train", "val": "images/val", "names": names}))
    return path


def test_check_yaml_finds_both_mistakes(tmp_path: Path) -> None:
    from omr_core.classes import class_table

    names = [c.name for c in class_table().deepscores if c.name not in {"clefG", "stem"}]  # clefG dropped by "id 6"
    chk = check_yaml(_yaml(tmp_path / "data.yaml", names), ["stem", "beam", "tie", "slur"])
    assert chk.present_but_excluded == ("slur", "beam", "tie")  # yaml order
    assert chk.critical_missing == ("clefG",)
    assert not chk.ok and any("clefG" in line for line in chk.lines())
    # names as a dict work the same; the intended yaml passes
    good = [c.name for c in class_table().deepscores if c.name not in {"stem", "beam", "tie", "slur"}]
    ok = check_yaml(_yaml(tmp_path / "d2.yaml", dict(enumerate(good))), ["stem", "beam", "tie", "slur"])
    assert ok.ok, ok.lines()
    unk = check_yaml(_yaml(tmp_path / "d3.yaml", [*good, "Unknown_6"]), ["stem"])
    assert unk.unofficial == ("Unknown_6",) and not unk.ok


def test_check_yaml_bad_input(tmp_path: Path) -> None:
    with pytest.raises(OmrError):
        check_yaml(tmp_path / "missing.yaml")
    with pytest.raises(DataFormatError):
        check_yaml(_yaml(tmp_path / "dup.yaml", ["clefG", "stem", "clefG"]))
    with pytest.raises(OmrError):
        check_yaml(_yaml(tmp_path / "bad.yaml", "clefG"))
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataFormatError):
        check_yaml(tmp_path / "x.json")


# ----------------------------------------------------------------------------------------------- loading


def test_load_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        load_dataset([tmp_path / "a.txt"])
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(DataFormatError):
        load_dataset([tmp_path / "broken.json"])
    with pytest.raises(OmrError, match="no such file"):
        load_dataset([tmp_path / "nope.json"])
    _yaml(tmp_path / "d.yaml", ["clefG"])
    with pytest.raises(DataFormatError, match="mixing"):
        load_dataset([REAL, tmp_path / "d.yaml"])
    with pytest.raises(DataFormatError, match="folder"):
        load_dataset([tmp_path])
    with pytest.raises(DataFormatError, match="twice"):
        load_dataset([REAL, REAL])


def test_find_datasets(tmp_path: Path) -> None:
    (tmp_path / "a" / "images").mkdir(parents=True)
    (tmp_path / "a" / "deepscores_train.json").write_text(REAL.read_text())
    (tmp_path / "a" / "images" / "x.json").write_text(REAL.read_text())  # inside an image folder: skipped
    (tmp_path / "a" / "run.json").write_text('{"status": "done"}')
    _yaml(tmp_path / "b.yaml", ["clefG"])
    found = [p.relative_to(tmp_path).as_posix() for p in find_datasets(tmp_path)]
    assert found == ["a/deepscores_train.json", "b.yaml"]


# ----------------------------------------------------------------------------------------------- gallery


def test_gallery_crops_are_seeded_and_show_the_box(inked: Path) -> None:
    ds = load_dataset([inked])
    refs = sample_crops(ds, "clefG", n=8, seed=3)
    assert len(refs) == 8 and refs == sample_crops(ds, "clefG", n=8, seed=3)
    assert refs != sample_crops(ds, "clefG", n=8, seed=4)
    assert all(r.name == "clefG" and r.filename.endswith(".png") and r.ann_id in r.caption for r in refs)
    raw = json.loads(REAL.read_text())
    for r in refs:  # the reference is the annotation it names
        assert raw["annotations"][r.ann_id]["cat_id"][0] == "6"
        assert tuple(raw["annotations"][r.ann_id]["a_bbox"]) == pytest.approx(r.box)
    thumb = render_crop(refs[0].image_path, refs[0].box, thumb=160)
    assert thumb.dtype == np.uint8 and thumb.shape[2] == 3 and max(thumb.shape[:2]) == 160
    red = (thumb[..., 0] > 200) & (thumb[..., 1] < 80)
    assert red.any(), "the box is drawn"
    assert (thumb.min(axis=2) < 50).any(), "page ink is visible in the crop"
    assert sample_crops(load_dataset([REAL]), "clefG") == []  # no images on disk: nothing to show


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_refuses_clefG_without_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(REAL), "--exclude", "stem", "clefG"]) == 1
    err = capsys.readouterr().err
    assert "clefG" in err and "critical" in err
    assert main(["audit", str(REAL), "--exclude", "stem", "clefG", "--allow-critical"]) == 0
    assert "override" in capsys.readouterr().err


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(REAL), "--exclude", "stem,beam", "--imgsz", "1024", "--batch", "32", "--vram-gb", "32", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    by = {c["name"]: c for c in rep["classes"]}
    assert by["stem"]["count"] == 2032 and by["stem"]["id"] == 42 and by["stem"]["excluded"]
    assert by["clefG"]["id"] == 6 and by["clefG"]["new_index"] == 5  # stem (42) and beam (122) come after it
    assert rep["plan"]["instances_removed"] == 2032 + by["beam"]["count"]
    assert rep["forecast"]["before"]["fits"] is False
    assert rep["instances_per_image"]["before"]["max"] == 1528


def test_cli_errors_are_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(REAL), "--exclude", "clefQ"]) == 2
    assert "clefG" in capsys.readouterr().err
    assert main(["audit", str(REAL), "--exclude", "6"]) == 2
    assert "6 → clefG" in capsys.readouterr().err
    assert main(["audit"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_check_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from omr_core.classes import class_table

    names = [c.name for c in class_table().deepscores if c.name != "clefG"]
    y = _yaml(tmp_path / "data.yaml", names)
    assert main(["audit", "--check-yaml", str(y), "--exclude", "beam"]) == 1
    out = capsys.readouterr().out
    assert "present but meant to be excluded: beam" in out and "critical classes missing: clefG" in out
    ok = _yaml(tmp_path / "ok.yaml", [c.name for c in class_table().deepscores if c.name != "beam"])
    assert main(["audit", "--check-yaml", str(ok), "--preset", "core", "--json"]) == 1  # stem etc. still present
    chk = json.loads(capsys.readouterr().out)["check_yaml"]
    assert set(chk["present_but_excluded"]) == {"stem", "ledgerLine", "tie", "slur"}
    assert main(["audit", "--check-yaml", str(ok), "--exclude", "beam", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["check_yaml"]["ok"] is True


def test_typed_names_resolve_exactly_never_to_every_match(real) -> None:  # type: ignore[no-untyped-def]
    from omr_core.audit.plan import lookup_names

    names = real.names
    assert lookup_names(names, "tie").exact == ("tie",)  # not the 44 names containing t-i-e
    assert lookup_names(names, "stem").exact == ("stem",)  # not the graceNote…Stem… classes
    assert lookup_names(names, "Stem  legerLine, beam;stem").exact == ("stem", "ledgerLine", "beam")
    partial = lookup_names(names, "artic beam noteh 42")
    assert partial.exact == ("beam",)
    unknown = dict(partial.unknown)
    assert set(unknown) == {"artic", "noteh", "42"}
    assert "articAccentAbove" in unknown["artic"] and all("artic" in n.lower() for n in unknown["artic"])
    assert unknown["42"] == ()  # ids belong in the id field, where they are resolved and confirmed
    assert lookup_names(names, "clefQ").unknown[0][1][:1] != ()  # a misspelling gets the closest names


def test_effective_plan_keeps_refused_critical_classes(real) -> None:  # type: ignore[no-untyped-def]
    from omr_core.audit.plan import effective_plan

    requested = make_plan(real.names, ["clefG", "beam", "clefF"], reasons={"beam": "typed name"})
    plan = effective_plan(requested)
    assert plan.excluded == ("beam",) and plan.reason("beam") == "typed name"
    assert "clefG" in plan.kept and "clefF" in plan.kept and not plan.violations
    allowed = make_plan(real.names, ["clefG", "beam"], allow_critical=True)
    assert effective_plan(allowed) is allowed
