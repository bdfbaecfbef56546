"""Name-verified conversion to YOLO: real sample and engraved pages, atomic writes, refusals, tiling, training."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

import omr_core.audit.convert as conv
from omr_core.audit.convert import ConvertError, ConvertOptions, convert, fix_boxes
from omr_core.audit.plan import make_plan
from omr_core.audit.statistics import class_stats
from omr_core.classes import class_table
from omr_core.cli import main
from omr_core.datasets.discovery import load_dataset
from omr_core.errors import CriticalExclusionError
from omr_core.raster import tile_origins
from tests.conftest import REAL_SAMPLE

REAL = REAL_SAMPLE
THIN = ["stem", "ledgerLine", "beam", "tie", "slur"]


def write_pages(folder: Path, raw: dict) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    boxes: dict[str, list] = defaultdict(list)
    for a in raw["annotations"].values():
        boxes[a["img_id"]].append(a["a_bbox"])
    for im in raw["images"]:
        page = Image.new("L", (im["width"], im["height"]), 255)
        d = ImageDraw.Draw(page)
        for x0, y0, x1, y1 in boxes[str(im["id"])]:
            d.rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=0)
        page.save(folder / "images" / im["filename"], compress_level=1)


def _subset(raw: dict, image_ids: set[int]) -> dict:
    out = {k: v for k, v in raw.items() if k not in ("images", "annotations")}
    out["images"] = [im for im in raw["images"] if im["id"] in image_ids]
    keep = {a for im in out["images"] for a in im["ann_ids"]}
    out["annotations"] = {k: v for k, v in raw["annotations"].items() if k in keep}
    return out


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(REAL.read_text())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, raw: dict) -> Path:
    """The real sample as deepscores_train.json (first 8 pages) + deepscores_test.json (last 2), pages drawn."""
    d = tmp_path_factory.mktemp("src")
    write_pages(d, raw)
    ids = [im["id"] for im in raw["images"]]
    (d / "deepscores_train.json").write_text(json.dumps(_subset(raw, set(ids[:8]))))
    (d / "deepscores_test.json").write_text(json.dumps(_subset(raw, set(ids[8:]))))
    (d / "all.json").write_text(json.dumps(raw))
    return d


def _fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _read_labels(out: Path) -> tuple[list[str], Counter[str], dict[str, int]]:
    """Independent re-read: names from data.yaml, label counts by name, label lines per split."""
    data = yaml.safe_load((out / "data.yaml").read_text())
    names = data["names"]
    names = [names[i] for i in range(len(names))] if isinstance(names, dict) else names
    counts: Counter[str] = Counter()
    per_split: dict[str, int] = defaultdict(int)
    for f in (out / "labels").rglob("*.txt"):
        for line in f.read_text().splitlines():
            c, *xywh = line.split()
            counts[names[int(c)]] += 1
            per_split[f.parent.name] += 1
            v = [float(x) for x in xywh]
            assert all(0 <= x <= 1 for x in v) and v[2] > 0 and v[3] > 0, line
    return names, counts, per_split


def test_convert_matches_the_plan(tmp_path: Path, source: Path, raw: dict) -> None:
    before = _fingerprint(source)
    ds = load_dataset([source / "deepscores_train.json", source / "deepscores_test.json"])
    plan = make_plan(ds.names, THIN)
    rep = convert(ds, tmp_path / "out", plan, ConvertOptions(imgsz=1024))
    out = tmp_path / "out"
    assert rep.verification.ok, rep.verification.lines
    assert _fingerprint(source) == before, "the source must never be modified"

    names, counts, per_split = _read_labels(out)
    table = class_table()
    assert names == [c.name for c in table.deepscores if c.name not in THIN]
    assert not set(THIN) & set(names)
    file_names = {k: v["name"] for k, v in raw["categories"].items()}
    want = Counter(file_names[a["cat_id"][0]] for a in raw["annotations"].values())
    for t in THIN:
        want.pop(t)
    assert counts == want  # nothing lost: degenerate boxes were widened, not dropped
    assert rep.fixes.degenerate == 2 and rep.fixes.outside == 0
    assert rep.split_images == {"train": 8, "val": 2}
    assert len(list((out / "images" / "val").iterdir())) == 2 and (out / "images" / "train").is_dir()
    for p in (out / "images" / "train").iterdir():  # linked, not copied
        assert p.samefile(source / "images" / p.name) and not p.is_symlink()
    assert rep.image_mode == "hardlink"

    man = json.loads((out / "excluded_classes.json").read_text())
    assert man["nc"] == 131 and len(man["kept"]) + len(man["excluded"]) == 136
    assert "Unknown" not in json.dumps(man)
    for e in man["excluded"]:
        assert table.by_id(e["id"]).name == e["name"] and e["source_instances"] == sum(
            1 for a in raw["annotations"].values() if a["cat_id"][0] == str(e["id"])
        )
    for i, k in enumerate(man["kept"]):
        assert k["new_index"] == i and names[i] == k["name"] and table.by_id(k["id"]).name == k["name"]
        assert k["labels_written"] == counts.get(k["name"], 0)
    assert man["critical_override"]["used"] is False
    log = (out / "convert.log").read_text()
    assert "verify ok: per-class label counts equal the plan" in log
    assert not list(tmp_path.glob(".out.omr-tmp-*"))


def test_output_is_readable_as_a_yolo_dataset(tmp_path: Path, source: Path) -> None:
    ds = load_dataset([source / "deepscores_train.json", source / "deepscores_test.json"])
    convert(ds, tmp_path / "out", make_plan(ds.names, ["stem"]), ConvertOptions())
    back = load_dataset([tmp_path / "out" / "data.yaml"])
    assert back.kind == "yolo" and "stem" not in back.names and len(back.names) == 135
    s0 = class_stats(ds).set_index("name")["instances"]
    s1 = class_stats(back).set_index("name")["instances"]
    for n in back.names:
        assert s1[n] == s0[n], n
    # and it converts again, by name, with the alias spelling
    rep = convert(back, tmp_path / "again", make_plan(back.names, ["legerLine", "beam"]), ConvertOptions())
    assert rep.verification.ok and "ledgerLine" in rep.excluded and len(rep.names) == 133


def test_refuses_non_empty_out_and_overwrites_on_request(tmp_path: Path, source: Path) -> None:
    ds = load_dataset([source / "deepscores_train.json", source / "deepscores_test.json"])
    plan = make_plan(ds.names, THIN)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConvertError, match="not empty"):
        convert(ds, out, plan)
    assert (out / "keep.txt").read_text() == "mine"
    convert(ds, out, plan, ConvertOptions(overwrite=True))
    assert not (out / "keep.txt").exists() and (out / "data.yaml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or backup folders left
    with pytest.raises(ConvertError, match="contains the source"):
        convert(ds, source, plan, ConvertOptions(overwrite=True))


@pytest.mark.parametrize("existing", [False, True])
def test_failure_midway_leaves_nothing(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    ds = load_dataset([source / "deepscores_train.json", source / "deepscores_test.json"])
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "old.txt").write_text("previous dataset")
    real_write = conv._write_labels
    calls = {"n": 0}

    def flaky(path: Path, lines: list[str]) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        real_write(path, lines)

    monkeypatch.setattr(conv, "_write_labels", flaky)
    with pytest.raises(OSError, match="No space"):
        convert(ds, out, make_plan(ds.names, THIN), ConvertOptions(overwrite=existing))
    assert calls["n"] == 4
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    else:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if existing else []), "temp folder cleaned"


def test_critical_exclusion_refused_then_logged(tmp_path: Path, source: Path) -> None:
    ds = load_dataset([source / "deepscores_train.json", source / "deepscores_test.json"])
    with pytest.raises(CriticalExclusionError, match="clefG"):
        convert(ds, tmp_path / "out", make_plan(ds.names, ["clefG", "beam"]))
    assert not (tmp_path / "out").exists()
    lines: list[str] = []
    rep = convert(ds, tmp_path / "out", make_plan(ds.names, ["clefG", "beam"], allow_critical=True), log=lines.append)
    assert rep.verification.ok and "clefG" not in rep.names
    assert any("critical-class override" in x and "clefG (id 6)" in x for x in lines)
    man = json.loads((tmp_path / "out" / "excluded_classes.json").read_text())
    assert man["critical_override"]["used"] and man["critical_override"]["classes"] == [{"id": 6, "name": "clefG"}]
    assert "critical-class override" in (tmp_path / "out" / "convert.log").read_text()


def test_missing_images_and_empty_splits(tmp_path: Path, raw: dict) -> None:
    (tmp_path / "deepscores_test.json").write_text(json.dumps(raw))
    ds = load_dataset([tmp_path / "deepscores_test.json"])
    with pytest.raises(ConvertError, match="10 of 10 page images are missing"):
        convert(ds, tmp_path / "out", make_plan(ds.names, THIN), ConvertOptions(val_from="split"))
    assert not (tmp_path / "out").exists()
    src = tmp_path / "s"
    write_pages(src, raw)
    (src / "deepscores_test.json").write_text(json.dumps(raw))
    ds = load_dataset([src / "deepscores_test.json"])
    with pytest.raises(ConvertError, match="no training images"):
        convert(ds, tmp_path / "out", make_plan(ds.names, THIN))  # a test file alone has no train split
    rep = convert(ds, tmp_path / "out", make_plan(ds.names, THIN), ConvertOptions(val_from="split", val_fraction=0.2, images="symlink"))
    assert rep.split_images == {"train": 8, "val": 2} and rep.image_mode == "symlink"
    assert all(p.is_symlink() and p.resolve().parent == (src / "images").resolve() for p in (tmp_path / "out" / "images" / "val").iterdir())


def test_tiling(tmp_path: Path, source: Path, raw: dict) -> None:
    ds = load_dataset([source / "all.json"])
    rep = convert(ds, tmp_path / "out", make_plan(ds.names, ["staff"]), ConvertOptions(tile=640, overlap=0.25, val_from="split"))
    assert rep.verification.ok, rep.verification.lines
    expected_tiles = sum(len(tile_origins(im["width"], 640, 0.25)) * len(tile_origins(im["height"], 640, 0.25)) for im in raw["images"])
    assert rep.tiles == expected_tiles == sum(rep.split_images.values())
    tiles = list((tmp_path / "out" / "images").rglob("*.png"))
    assert len(tiles) == expected_tiles
    with Image.open(tiles[0]) as im:
        assert max(im.size) <= 640
    names, counts, _ = _read_labels(tmp_path / "out")
    assert sum(counts.values()) == rep.labels > 7404 - 88  # overlap repeats boxes
    assert rep.fixes.slivers > 0 and rep.fixes.lost_in_tiling < 20
    man = json.loads((tmp_path / "out" / "excluded_classes.json").read_text())
    assert man["box_fixes"]["slivers"] == rep.fixes.slivers and man["options"]["tile"] == 640


def test_fix_boxes() -> None:
    b = np.array(
        [
            [10, 10, 20, 20],  # fine
            [10, 10, 10, 30],  # zero width: widened
            [30, 30, 20, 20],  # inverted: swapped
            [-5, 90, 10, 120],  # partly outside: clipped
            [200, 200, 210, 210],  # outside: dropped
            [np.nan, 0, 1, 1],  # invalid: dropped
        ],
        dtype=float,
    )
    w = np.full(6, 100.0)
    out, keep, fx = fix_boxes(b[:, 0], b[:, 1], b[:, 2], b[:, 3], w, w)
    assert keep.tolist() == [True, True, True, True, False, False]
    assert (fx.degenerate, fx.inverted, fx.clipped, fx.outside, fx.invalid) == (1, 1, 1, 1, 1)
    assert out[1].tolist() == [9.5, 10, 10.5, 30] and out[2].tolist() == [20, 20, 30, 30]
    assert out[3].tolist() == [0, 90, 10, 100]


def test_tile_origins() -> None:
    assert tile_origins(500, 640, 0.2) == [0]
    o = tile_origins(1960, 640, 0.2)
    assert o[0] == 0 and o[-1] == 1960 - 640 and all(b - a <= 512 for a, b in zip(o, o[1:]))


def test_cli_convert(tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["convert", str(source / "deepscores_train.json"), str(source / "deepscores_test.json"), str(tmp_path / "o")]
    assert main([*args, "--exclude", "clefG"]) == 2
    assert "clefG" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main([*args, "--exclude", "6"]) == 2
    assert "6 → clefG" in capsys.readouterr().err
    assert main([*args, "--preset", "core", "--imgsz", "1024", "--copy-images"]) == 0
    out = capsys.readouterr().out
    assert "verification:" in out and "FAIL" not in out and "ok: per-class label counts equal the plan" in out
    man = json.loads((tmp_path / "o" / "excluded_classes.json").read_text())
    assert len(man["excluded"]) == 5 and all(f"  exclude {e['line']}\n" in out for e in man["excluded"])  # the plan, printed
    for p in (tmp_path / "o" / "images" / "train").iterdir():  # copies: another inode
        assert not p.is_symlink() and not p.samefile(source / "images" / p.name)
    assert main([*args, "--preset", "core"]) == 2  # OUT now exists and is not empty
    assert "--overwrite" in capsys.readouterr().err


def test_bad_inputs_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.csv").write_text("a,b")
    assert main(["convert", str(tmp_path / "x.csv"), str(tmp_path / "o")]) == 2
    (tmp_path / "t.json").write_text('{"categories": {}, "images": [], "annotations": {')
    assert main(["convert", str(tmp_path / "t.json"), str(tmp_path / "o")]) == 2
    (tmp_path / "d.yaml").write_text("names: {0: clefG, 2: stem}\ntrain: images\nval: images\n")
    assert main(["convert", str(tmp_path / "d.yaml"), str(tmp_path / "o")]) == 2
    (tmp_path / "e.yaml").write_text("names: [clefG, stem, clefG]\ntrain: images\nval: images\n")
    assert main(["convert", str(tmp_path / "e.yaml"), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "duplicate" in err and "unsupported file type" in err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------------- engraved pages


@pytest.fixture(scope="module")
def engraved(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    synth = pytest.importorskip("omr_core.datasets.synth")
    out = tmp_path_factory.mktemp("synth") / "ds"
    rep = synth.synth_dataset(out, pages=4, seed=2, scale=0.5)
    return out, rep


def test_engraved_audit_and_convert(tmp_path: Path, engraved) -> None:  # type: ignore[no-untyped-def]
    out, srep = engraved
    ds = load_dataset([out / "deepscores_train.json", out / "deepscores_test.json"])
    stats = class_stats(ds, 640).set_index("name")
    for name, n in srep.class_counts.items():
        assert stats.loc[name, "instances"] == n, name
        assert stats.loc[name, "id"] == class_table().by_name(name).id
    assert int(stats["instances"].sum()) == srep.annotations
    with pytest.raises(CriticalExclusionError, match="clefG"):
        convert(ds, tmp_path / "y", make_plan(ds.names, ["clefG"]))
    rep = convert(ds, tmp_path / "y", make_plan(ds.names, THIN), ConvertOptions(imgsz=640))
    assert rep.verification.ok, rep.verification.lines
    _, counts, _ = _read_labels(tmp_path / "y")
    assert counts == Counter({k: v for k, v in srep.class_counts.items() if k not in THIN})


@pytest.mark.slow
def test_converted_dataset_trains_with_ultralytics(tmp_path: Path, engraved) -> None:  # type: ignore[no-untyped-def]
    out, _ = engraved
    ds = load_dataset([out / "deepscores_train.json", out / "deepscores_test.json"])
    rep = convert(ds, tmp_path / "yolo", make_plan(ds.names, THIN), ConvertOptions())
    assert rep.verification.ok
    script = textwrap.dedent(
        f"""
        import torch
        torch.set_num_threads(1)
        from ultralytics import YOLO
        m = YOLO("yolov8n.yaml")
        m.train(data={str(rep.data_yaml)!r}, epochs=1, imgsz=128, batch=2, workers=0, plots=False, device="cpu",
                project={str(tmp_path / "runs")!r}, name="t", exist_ok=True, verbose=False, amp=False, val=True)
        print("NAMES", len(m.names), m.names[0])
        """
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=170, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"NAMES {len(rep.names)} {rep.names[0]}" in res.stdout
    assert (tmp_path / "runs" / "t" / "weights" / "last.pt").exists()
    text = res.stdout + res.stderr
    assert re.search(r"\b0 corrupt", text) and not re.search(r"\b[1-9]\d* corrupt", text), "Ultralytics rejected labels"


# A real `omr convert` process that imports everything, says it is ready, and starts converting when told to.
_CONVERT_ON_GO = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from omr_core.cli import main
    ready, go = Path(sys.argv[1]), Path(sys.argv[2])
    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    sys.exit(main(["convert", *sys.argv[3:]]))
""")


def _converter(tmp_path: Path, source: Path, out: Path, exclude: str) -> tuple[subprocess.Popen[str], Path, Path]:
    ready, go = tmp_path / f"ready-{exclude}", tmp_path / f"go-{exclude}"
    args = [str(source / "deepscores_train.json"), str(source / "deepscores_test.json"), str(out), "--exclude", exclude]
    proc = subprocess.Popen([sys.executable, "-c", _CONVERT_ON_GO, str(ready), str(go), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, ready, go


def _wait_for(cond: object, what: str, procs: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        dead = [p for p in procs if p.poll() is not None]
        assert not dead and time.monotonic() < deadline, (what, [p.communicate() for p in dead])
        time.sleep(0.002)


def _names(out: Path) -> list[str]:
    return list(yaml.safe_load((out / "data.yaml").read_text())["names"].values())


def test_two_conversions_racing_to_one_new_out(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "datasets" / "race"
    procs = [_converter(tmp_path, source, out, ex) for ex in ("tie", "slur")]
    _wait_for(lambda: all(ready.exists() for _, ready, _ in procs), "both ready", [p for p, _, _ in procs])
    for _, _, go in procs:
        go.touch()
    outs = [p.communicate(timeout=120) for p, _, _ in procs]
    codes = [p.returncode for p, _, _ in procs]
    assert sorted(codes) == [0, 2], outs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    # The loser was refused (busy while the winner wrote, or OUT already there), and OUT is the winner's dataset.
    assert re.search(r"another conversion \(PID \d+.*\) is writing|is not empty", outs[loser][1]), outs[loser][1]
    excluded = ("tie", "slur")
    assert excluded[winner] not in _names(out) and excluded[loser] in _names(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["race"]  # no temp, backup or lock left


def test_a_conversion_in_progress_holds_its_out(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "datasets" / "held"
    lock = out.parent / ".held.omr-lock"
    first, ready, go = _converter(tmp_path, source, out, "tie")
    _wait_for(ready.exists, "first ready", [first])
    go.touch()
    try:
        # Freeze the first conversion while it holds OUT (its lock file names it), then start a second one.
        while True:
            _wait_for(lambda: lock.is_file() and f"PID {first.pid} " in lock.read_text(), "first holds OUT", [first])
            os.kill(first.pid, signal.SIGSTOP)
            if lock.is_file() and f"PID {first.pid} " in lock.read_text():
                break  # stopped while holding it (not between releasing and exiting)
            os.kill(first.pid, signal.SIGCONT)
        second = subprocess.run([sys.executable, "-m", "omr_core.cli", "convert", str(source / "deepscores_train.json"),
                                 str(source / "deepscores_test.json"), str(out), "--exclude", "slur", "--overwrite"],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"another conversion (PID {first.pid}" in second.stderr and str(out) in second.stderr
        assert "wait for it to finish" in second.stderr
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "tie" not in _names(out) and "slur" in _names(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["held"]

def test_one_page_source_says_how_many_pages_a_split_needs(tmp_path: Path, raw: dict, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "s"
    write_pages(src, _subset(raw, {raw["images"][0]["id"]}))
    one = _subset(raw, {raw["images"][0]["id"]})
    (src / "deepscores_train.json").write_text(json.dumps(one))
    ds = load_dataset([src / "deepscores_train.json"])
    for fraction in (0.1, 0.5):  # "carved from train (10 %)" and --val-fraction 0.5 both asked for a split
        with pytest.raises(ConvertError, match=r"1 page.*at least 2 pages") as err:
            convert(ds, tmp_path / "out", make_plan(ds.names, THIN), ConvertOptions(val_from="split", val_fraction=fraction))
        assert "use --val-from split" not in str(err.value)  # it was already used: the old advice was circular
    with pytest.raises(ConvertError, match=r"1 page.*at least 2 pages"):
        convert(ds, tmp_path / "out", make_plan(ds.names, THIN))  # --val-from test on a train-only source
    assert not (tmp_path / "out").exists()
    args = ["convert", str(src / "deepscores_train.json"), str(tmp_path / "o"), "--preset", "core", "--val-from", "split",
            "--val-fraction", "0.5"]
    assert main(args) == 2
    assert "at least 2 pages" in capsys.readouterr().err


def test_split_always_carves_a_page_and_keeps_one_to_train(tmp_path: Path, raw: dict) -> None:
    src = tmp_path / "s"
    ids = {im["id"] for im in raw["images"][:2]}
    write_pages(src, _subset(raw, ids))
    (src / "deepscores_train.json").write_text(json.dumps(_subset(raw, ids)))
    ds = load_dataset([src / "deepscores_train.json"])
    for i, fraction in enumerate((0.01, 0.99)):
        rep = convert(ds, tmp_path / f"o{i}", make_plan(ds.names, THIN), ConvertOptions(val_from="split", val_fraction=fraction))
        assert rep.split_images == {"train": 1, "val": 1}


def test_log_and_manifest_list_every_excluded_class(tmp_path: Path, source: Path, raw: dict) -> None:
    from omr_core.audit.plan import excluded_classes

    ds = load_dataset([source / "deepscores_train.json", source / "deepscores_test.json"])
    plan = make_plan(ds.names, ["stem", "dynamicF"], reasons={"stem": "preset core", "dynamicF": "typed name"})
    rep = convert(ds, tmp_path / "out", plan)
    want = Counter(a["cat_id"][0] for a in raw["annotations"].values())
    lines = [e.line for e in excluded_classes(plan, class_stats(ds))]
    assert lines == [f"stem (id 42): {want['42']:,} instances; preset core", f"dynamicF (id 96): {want['96']:,} instances; typed name"]
    log = (tmp_path / "out" / "convert.log").read_text()
    assert all(f"exclude {ln}" in log for ln in lines) and all(f"exclude {ln}" in rep.log for ln in lines)
    man = json.loads((tmp_path / "out" / "excluded_classes.json").read_text())
    assert [e["line"] for e in man["excluded"]] == lines
