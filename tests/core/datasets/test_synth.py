"""The engraver writes real DeepScoresV2-format pages whose boxes are the ink of each symbol."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import orjson
import pytest

from omr_core.classes import class_table
from omr_core.cli import main as cli_main
from omr_core.datasets.synth import SynthError, SynthReport, engrave_job, ink_box, synth_dataset
from omr_core.datasets.synth_glyphs import classify
from omr_core.datasets.synth_render import rasterise
from omr_core.datasets.synth_svg import SVG_NS, parse_page

ET.register_namespace("", "http://www.w3.org/2000/svg")
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")

SEED = 2
SMALL = 0.5  # half-size pages keep the suite fast; one test below checks a full-size page


def _load(out: Path, split: str) -> dict:
    return orjson.loads((out / f"deepscores_{split}.json").read_bytes())


def _names(data: dict) -> dict[str, str]:
    return {k: v["name"] for k, v in data["categories"].items()}


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthReport]:
    out = tmp_path_factory.mktemp("synth") / "ds"
    seen: list[tuple[int, int]] = []
    report = synth_dataset(
        out, pages=6, seed=SEED, scale=SMALL, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(i, 6) for i in range(1, 7)]
    return out, report


def _isolated_ink(page, sym, pad: int = 3) -> tuple[int, int, int, int] | None:
    """Render one symbol's own SVG elements alone (a crop around its box) and return its tight dark box."""
    defs = "".join(ET.tostring(e, encoding="unicode") for e in page.geometry.root.iter(f"{SVG_NS}defs"))
    x0, y0, x1, y1 = sym.box
    X0, Y0 = int(np.floor(x0)) - pad, int(np.floor(y0)) - pad
    X1, Y1 = int(np.ceil(x1)) + pad, int(np.ceil(y1)) + pad
    body = ""
    texts = []
    for p in sym.prims:
        m = p.matrix
        if p.kind == "text":  # drawn by `rasterise` itself (skia's SVG module draws no text)
            texts.append((p.element, (m[0], m[1], m[2], m[3], m[4] - X0, m[5] - Y0), p.ctx.get("ancestors", ())))
            continue
        body += (
            f'<g transform="matrix({m[0]},{m[1]},{m[2]},{m[3]},{m[4] - X0},{m[5] - Y0})">'
            f"{ET.tostring(p.element, encoding='unicode')}</g>"
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{X1 - X0}" height="{Y1 - Y0}" color="black">'
        f"<style>path, polygon, polyline, rect, ellipse {{stroke:currentColor}}</style>{defs}{body}</svg>"
    )
    img = rasterise(svg, X1 - X0, Y1 - Y0, texts)
    ys, xs = np.nonzero(img < 128)  # pixels more than half covered by this symbol's ink
    if len(xs) == 0:
        return None
    return int(xs.min()) + X0, int(ys.min()) + Y0, int(xs.max()) + 1 + X0, int(ys.max()) + 1 + Y0


def _box_errors(pages, shift: int = 0) -> dict[str, list[int]]:
    errors: dict[str, list[int]] = {}
    for page in pages:
        for sym in page.classified.symbols:
            if not sym.prims:
                continue  # staves: checked by "every box has ink" and by the staff-line test
            box = ink_box(sym.box, page.geometry.width, page.geometry.height)
            assert box is not None
            box = [box[0] + shift, box[1], box[2] + shift, box[3]]
            ink = _isolated_ink(page, sym)
            assert ink is not None, f"{sym.name} at {box} has no ink of its own"
            errors.setdefault(sym.name, []).append(max(abs(a - b) for a, b in zip(ink, box)))
    return errors


def test_report_and_files(small_ds: tuple[Path, SynthReport]) -> None:
    out, report = small_ds
    assert report.pages == 6 and report.train_pages + report.test_pages == 6
    assert report.test_pages == round(6 * 0.2)
    train, test = _load(out, "train"), _load(out, "test")
    assert len(train["images"]) == report.train_pages and len(test["images"]) == report.test_pages
    assert len(train["annotations"]) + len(test["annotations"]) == report.annotations
    assert sum(report.class_counts.values()) == report.annotations
    pngs = sorted(p.name for p in (out / "images").glob("*.png"))
    assert pngs == sorted(im["filename"] for im in train["images"] + test["images"])
    for cls in ("staff", "stem", "clefG"):
        assert report.class_counts.get(cls, 0) > 0


def test_json_follows_the_released_format(small_ds: tuple[Path, SynthReport]) -> None:
    out, _ = small_ds
    table = class_table()
    ann_ids_seen: set[str] = set()
    for split in ("train", "test"):
        data = _load(out, split)
        assert list(data) == ["info", "annotation_sets", "categories", "images", "annotations"]
        assert data["annotation_sets"] == ["deepscores", "muscima++"]
        cats = data["categories"]
        assert len(cats) == 208 and list(cats)[:4] == ["1", "137", "2", "138"]
        assert cats["2"]["name"] == "ledgerLine" and cats["138"]["name"] == "legerLine"
        assert isinstance(data["images"], list) and isinstance(data["annotations"], dict)
        images = {str(im["id"]): im for im in data["images"]}
        for im in data["images"]:
            assert set(im) == {"id", "filename", "width", "height", "ann_ids"}
            assert isinstance(im["id"], int) and all(isinstance(a, str) for a in im["ann_ids"])
            assert (out / "images" / im["filename"]).is_file()
            h, w = cv2.imread(str(out / "images" / im["filename"]), cv2.IMREAD_GRAYSCALE).shape
            assert (w, h) == (im["width"], im["height"])
        for key, ann in data["annotations"].items():
            assert set(ann) == {"a_bbox", "o_bbox", "cat_id", "area", "img_id", "comments"}
            assert isinstance(key, str) and key not in ann_ids_seen
            ann_ids_seen.add(key)
            x0, y0, x1, y1 = ann["a_bbox"]
            assert all(isinstance(v, int) for v in ann["a_bbox"]) and x0 < x1 and y0 < y1
            assert len(ann["o_bbox"]) == 8
            ds_id, mu_id = ann["cat_id"]
            cat = table.by_id(ds_id)
            assert cat.annotation_set == "deepscores"
            assert mu_id == (str(cat.muscima_id) if cat.muscima_id is not None else None)
            assert isinstance(ann["area"], int) and ann["area"] >= 1
            assert key in images[ann["img_id"]]["ann_ids"]
            assert re.match(r"instance:#[0-9a-f]{6};", ann["comments"])
            if cat.name.startswith("notehead"):
                rel = re.search(r"rel_position:(-?\d+);", ann["comments"])
                assert rel, ann
                # on a line <=> even position (DeepScoresV2: 0 is the middle line, up is positive)
                assert (int(rel.group(1)) % 2 == 0) == ("OnLine" in cat.name)
                assert re.search(r"duration:[0-9]+\.*(\*\d+/\d+)?;", ann["comments"]), ann


def test_every_box_holds_ink(small_ds: tuple[Path, SynthReport]) -> None:
    out, _ = small_ds
    for split in ("train", "test"):
        data = _load(out, split)
        for im in data["images"]:
            dark = cv2.imread(str(out / "images" / im["filename"]), cv2.IMREAD_GRAYSCALE) < 128
            for a in im["ann_ids"]:
                x0, y0, x1, y1 = data["annotations"][a]["a_bbox"]
                assert dark[y0:y1, x0:x1].any(), (im["filename"], data["annotations"][a])


def test_json_boxes_are_the_engraved_symbols(small_ds: tuple[Path, SynthReport]) -> None:
    """The first page of the dataset is job 0's first page: its JSON boxes are that page's symbols."""
    out, _ = small_ds
    manifest = orjson.loads((out / "synth_manifest.json").read_bytes())["pages"]
    first = manifest[0]
    data = _load(out, first["split"])
    im = next(i for i in data["images"] if i["id"] == first["id"])
    page = next(iter(engrave_job(SEED, first["job"], SMALL)))
    expected = [(s.name, ink_box(s.box, page.geometry.width, page.geometry.height)) for s in page.classified.symbols]
    names = _names(data)
    got = [(names[data["annotations"][a]["cat_id"][0]], data["annotations"][a]["a_bbox"]) for a in im["ann_ids"]]
    assert got == expected


def test_boxes_are_the_tight_ink_of_each_symbol() -> None:
    """Each symbol rendered alone: its dark pixels' tight box equals the annotation within 1 px."""
    pages = [p for j in range(3) for p in engrave_job(SEED + 1, j, SMALL)][:4]
    errors = _box_errors(pages)
    for cls in ("stem", "ledgerLine"):
        assert cls in errors
    assert any(c.startswith("notehead") for c in errors)
    for cls, errs in errors.items():
        assert max(errs) <= 1, (cls, max(errs))
    flat = [e for errs in errors.values() for e in errs]
    assert sum(e == 0 for e in flat) / len(flat) > 0.6  # most boxes are exact, not just within 1 px
    # the check can fail: the same boxes moved by 2 px are caught
    moved = _box_errors(pages[:1], shift=2)
    assert min(min(v) for v in moved.values()) >= 1 and max(max(v) for v in moved.values()) >= 2


def test_full_size_page_stems_noteheads_ledger_lines() -> None:
    page = next(iter(engrave_job(SEED, 3, 1.0)))  # a string quartet page with many ledger lines
    assert page.geometry.width >= 1900 and page.geometry.height >= 2700
    space = page.meta["staff_space_px"]
    assert 20 <= space <= 25.5
    errors = _box_errors([page])
    checked = [c for c in errors if c in ("stem", "ledgerLine") or c.startswith("notehead")]
    assert "stem" in checked and any(c.startswith("notehead") for c in checked)
    assert sum(len(errors[c]) for c in checked) > 150
    for cls in checked:
        assert max(errors[cls]) <= 1, (cls, errors[cls])


def test_class_counts_agree_with_the_music() -> None:
    """One notehead box per note verovio drew (its MEI of the page), each on the right staff position."""
    checked = 0
    for j in range(3):
        for page in engrave_job(SEED + 2, j, SMALL, with_mei=True):
            mei_notes = len(re.findall(r"<note\b", page.meta["mei"]))
            heads = [s for s in page.classified.symbols if s.name.startswith("notehead")]
            assert len(heads) == mei_notes, page.meta["piece"]
            staves = sum(1 for s in page.classified.symbols if s.name == "staff")
            assert staves == len({(s.system, s.index) for s in page.geometry.staves})
            checked += len(heads)
    assert checked > 50


def test_rel_position_matches_staff_lines_found_in_the_image(small_ds: tuple[Path, SynthReport]) -> None:
    """Staff lines found in the raster (dark rows) give each notehead's position independently."""
    out, _ = small_ds
    data = _load(out, "train")
    names = _names(data)
    im = data["images"][0]
    img = cv2.imread(str(out / "images" / im["filename"]), cv2.IMREAD_GRAYSCALE)
    dark = img < 200  # half-size staff lines are under a pixel thick: anti-aliased grey, not black
    anns = [data["annotations"][a] for a in im["ann_ids"]]
    staves = []
    for a in anns:
        if names[a["cat_id"][0]] != "staff":
            continue
        x0, y0, x1, y1 = a["a_bbox"]
        rows = dark[y0:y1, x0:x1].mean(axis=1) > 0.5
        ys = np.nonzero(rows)[0] + y0
        groups = np.split(ys, np.nonzero(np.diff(ys) > 1)[0] + 1)
        lines = [g.mean() for g in groups]
        assert len(lines) == 5, a
        staves.append(lines)
    checked = 0
    for a in anns:
        name = names[a["cat_id"][0]]
        if not name.startswith("notehead"):
            continue
        x0, y0, x1, y1 = a["a_bbox"]
        cy = (y0 + y1) / 2
        lines = min(staves, key=lambda s: abs(cy - s[2]))
        half = (lines[4] - lines[0]) / 8
        rel = round((lines[2] - cy) / half)
        assert f"rel_position:{rel};" in a["comments"], (a, rel)
        checked += 1
    assert checked > 10


def test_deterministic_for_a_seed(tmp_path: Path, small_ds: tuple[Path, SynthReport]) -> None:
    out, _ = small_ds
    again = synth_dataset(tmp_path / "again", pages=3, seed=SEED, scale=SMALL)
    assert again.pages == 3
    # the first pages of a bigger dataset are the same bytes: a page depends only on the seed
    m1 = orjson.loads((out / "synth_manifest.json").read_bytes())["pages"][:3]
    m2 = orjson.loads((tmp_path / "again" / "synth_manifest.json").read_bytes())["pages"]
    for a, b in zip(m1, m2):
        assert a["filename"] == b["filename"]
        assert (out / "images" / a["filename"]).read_bytes() == (
            tmp_path / "again" / "images" / b["filename"]
        ).read_bytes()
    other = synth_dataset(tmp_path / "other", pages=1, seed=SEED + 100, scale=SMALL)
    assert other.class_counts != again.class_counts


@pytest.mark.slow
def test_workers_give_the_same_pages(tmp_path: Path) -> None:
    one = synth_dataset(tmp_path / "one", pages=3, seed=9, scale=0.4, test_fraction=0.0)
    two = synth_dataset(tmp_path / "two", pages=3, seed=9, scale=0.4, test_fraction=0.0, workers=2)
    assert one.class_counts == two.class_counts
    assert (tmp_path / "one" / "deepscores_train.json").read_bytes() == (
        tmp_path / "two" / "deepscores_train.json"
    ).read_bytes()
    for png in (tmp_path / "one" / "images").glob("*.png"):
        assert png.read_bytes() == (tmp_path / "two" / "images" / png.name).read_bytes()


def test_scan_damage_keeps_boxes_on_ink(tmp_path: Path) -> None:
    report = synth_dataset(tmp_path / "scan", pages=2, seed=5, scale=SMALL, degrade="scan", test_fraction=0.0)
    data = _load(tmp_path / "scan", "train")
    names = _names(data)
    manifest = orjson.loads((tmp_path / "scan" / "synth_manifest.json").read_bytes())["pages"]
    assert report.pages == 2
    for im, meta in zip(data["images"], manifest):
        img = cv2.imread(str(tmp_path / "scan" / "images" / im["filename"]), cv2.IMREAD_GRAYSCALE)
        angle = meta["damage"]["angle"]
        assert 0 < abs(angle) <= 1.0
        paper = np.median(img)
        for a in im["ann_ids"]:
            ann = data["annotations"][a]
            x0, y0, x1, y1 = ann["a_bbox"]
            crop = img[y0:y1, x0:x1]
            assert crop.min() < paper - 60, (names[ann["cat_id"][0]], ann)
            o = np.asarray(ann["o_bbox"]).reshape(4, 2)
            # o_bbox is the clean box turned by the page's rotation (screen y points down)
            edge = o[0] - o[1]  # (x1, y1) - (x1, y0): the box's right edge, vertical before rotation
            turned = np.degrees(np.arctan2(edge[0], edge[1]))
            if np.hypot(*edge) >= 10:  # corners are written to 0.001 px: short edges carry a coarse angle
                assert abs(turned - angle) < 0.03, (names[ann["cat_id"][0]], ann, angle)
            # the ink's axis-aligned box lies inside the bounds of the oriented box (as in the released
            # files, the corners of a turned box may stick out past the ink's own box)
            assert o[:, 0].min() <= x0 + 1 and o[:, 0].max() >= x1 - 1
            assert o[:, 1].min() <= y0 + 1 and o[:, 1].max() >= y1 - 1
        # staff boxes grow with the rotation as the lines tilt
        staff = [
            data["annotations"][a]["a_bbox"]
            for a in im["ann_ids"]
            if names[data["annotations"][a]["cat_id"][0]] == "staff"
        ]
        for x0, y0, x1, y1 in staff:
            assert y1 - y0 > 4 * meta["staff_space_px"] * SMALL + (x1 - x0) * np.sin(np.radians(abs(angle))) - 3


def test_unmapped_glyphs_are_counted_not_dropped() -> None:
    page = next(iter(engrave_job(SEED, 0, SMALL)))
    known = {c.name for c in class_table().deepscores}
    base = classify(page.geometry, known)
    assert base.unmapped["barLine line"] > 0  # barlines have no DeepScoresV2 class
    # draw one notehead with a glyph DeepScoresV2 has no class for (an x notehead)
    svg = page.svg
    m = re.search(r'<g id="(E0A4-[^"]+)">', svg)
    assert m
    suffix = m.group(1).split("-", 1)[1]
    xdef = re.search(rf'<g id="E0A4-{suffix}">.*?</g>', svg, re.S).group(0).replace("E0A4-", "E0A9-")
    svg = svg.replace("</defs>", f"{xdef}</defs>", 1)
    svg = svg.replace(f'xlink:href="#E0A4-{suffix}"', f'xlink:href="#E0A9-{suffix}"', 1)
    changed = classify(parse_page(svg), known)
    heads = lambda r: sum(1 for s in r.symbols if s.name.startswith("notehead"))  # noqa: E731
    assert heads(changed) == heads(base) - 1
    assert changed.unmapped["noteheadXBlack"] == 1


def test_cli_prints_counts_and_refuses_a_full_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert cli_main(["synth", str(out), "--pages", "2", "--seed", "4", "--scale", "0.4"]) == 0
    text = capsys.readouterr().out
    assert "wrote 2 pages" in text and "annotations per class" in text and "stem" in text
    assert "drawn but not annotated" in text and "barLine line" in text
    assert cli_main(["synth", str(out), "--pages", "1", "--scale", "0.4"]) == 2
    assert "not empty" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    assert cli_main(["synth", str(out), "--pages", "1", "--scale", "0.4", "--overwrite"]) == 0
    assert len(list((out / "images").glob("*.png"))) == 1 and (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_dense_layout_packs_staves_on_large_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["synth", "--help"])
    assert "--layout {normal,dense}" in capsys.readouterr().out
    out = tmp_path / "dense"
    assert cli_main(["synth", str(out), "--pages", "2", "--seed", "3", "--layout", "dense", "--scale", "0.5"]) == 0
    data = json.loads((out / "deepscores_train.json").read_text())
    test = json.loads((out / "deepscores_test.json").read_text())
    manifest = json.loads((out / "synth_manifest.json").read_text())
    assert "layout dense" in data["info"]["description"]
    assert [p["layout"] for p in manifest["pages"]] == ["dense", "dense"]
    staff_id = next(k for k, c in data["categories"].items() if c["name"] == "staff" and c["annotation_set"] == "deepscores")
    for split in (data, test):
        for img in split["images"]:
            assert img["width"] >= 2211 * 0.5 - 1 and img["height"] >= 3126 * 0.5 - 1
            boxes = sorted(
                (split["annotations"][a]["a_bbox"] for a in img["ann_ids"] if split["annotations"][a]["cat_id"][0] == staff_id),
                key=lambda b: b[1],
            )
            gaps = [b[1] - a[3] for a, b in zip(boxes, boxes[1:])]
            height = float(np.median([b[3] - b[1] for b in boxes]))
            # 15+ staves a page, the closest pair under two staff heights' worth of notes apart
            assert len(boxes) >= 15 and min(gaps) < 1.2 * height, (img["filename"], len(boxes), min(gaps), height)
    # the normal pages of the same seed are not touched by the dense option
    normal = synth_dataset(tmp_path / "normal", pages=1, seed=3, scale=0.4, test_fraction=0.0)
    dense = synth_dataset(tmp_path / "dense2", pages=1, seed=3, scale=0.4, test_fraction=0.0, layout="dense")
    assert normal.class_counts != dense.class_counts
    again = synth_dataset(tmp_path / "normal2", pages=1, seed=3, scale=0.4, test_fraction=0.0, layout="normal")
    assert (tmp_path / "normal2" / "deepscores_train.json").read_bytes() == (tmp_path / "normal" / "deepscores_train.json").read_bytes()
    assert again.class_counts == normal.class_counts
    with pytest.raises(SynthError, match="layout must be one of normal, dense"):
        synth_dataset(tmp_path / "x", pages=1, layout="tight")


def test_bad_arguments_are_errors_for_people(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="pages"):
        synth_dataset(tmp_path / "x", pages=0)
    with pytest.raises(SynthError, match="degrade"):
        synth_dataset(tmp_path / "x", pages=1, degrade="blurry")
    with pytest.raises(SynthError, match="test_fraction"):
        synth_dataset(tmp_path / "x", pages=1, test_fraction=1.5)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SynthError, match="not a folder"):
        synth_dataset(tmp_path / "file", pages=1)


def test_every_symbol_and_every_text_of_a_page_has_ink() -> None:
    """skia's SVG module draws no text: `rasterise` lays it out itself, so text boxes must show ink too."""
    page = next(iter(engrave_job(SEED, 3, SMALL)))
    geo = page.geometry
    texts = [(p.element, p.matrix, p.ctx.get("ancestors", ())) for p in geo.prims if p.kind == "text"]
    assert texts, "this page was picked for its text (title, tempo or dynamics)"
    img = rasterise(page.svg, geo.width, geo.height, texts)
    bare = rasterise(page.svg, geo.width, geo.height)
    for p in geo.prims:
        if p.kind == "text":  # its box is its anchor point: look at the ink around it (any text-anchor)
            x, y = round(p.box[0]), round(p.box[1])
            near = np.s_[max(0, y - 40) : y + 10, max(0, x - 60) : x + 60]
            assert (img[near] < 128).sum() > (bare[near] < 128).sum(), p.ctx["text"]
    for sym in page.classified.symbols:
        x0, y0, x1, y1 = ink_box(sym.box, geo.width, geo.height) or (0, 0, 0, 0)
        assert (img[y0:y1, x0:x1] < 128).any(), sym.name


def test_the_deepscores_reader_loads_it_without_issues(small_ds: tuple[Path, SynthReport]) -> None:
    """The same code path that reads the released files reads ours with zero warnings."""
    reader = pytest.importorskip("omr_core.datasets.deepscores")
    out, report = small_ds
    data = reader.load_deepscores([out / "deepscores_train.json", out / "deepscores_test.json"])
    assert data.issues_text() == []
    assert len(data.images) == report.pages and len(data.annotations) == report.annotations
    heads = data.annotations[data.annotations["name"].astype(str).str.startswith("notehead")]
    assert len(heads) > 0 and heads["rel_position"].notna().all()


def test_the_renderers_text_fonts_are_a_declared_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text is drawn with matplotlib's DejaVu Serif files: matplotlib must be declared, and its absence said."""
    import importlib.util
    import re

    import tomllib

    from omr_core.datasets import synth_render

    deps = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"matplotlib\b", d) for d in deps)
    fonts = synth_render.text_fonts()
    assert [Path(f).name for f in fonts] == list(synth_render.TEXT_FONT_FILES) and all(Path(f).is_file() for f in fonts)
    synth_render.text_fonts.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    try:
        with pytest.raises(synth_render.RenderError, match="pip install matplotlib"):
            synth_render.text_fonts()
    finally:
        synth_render.text_fonts.cache_clear()


def test_the_engraver_has_one_rasteriser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """skia-python is the one declared rasteriser; the engraver needs no other (resvg-py is not installed for it)."""
    import sys

    import tomllib

    deps = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() for d in deps}  # type: ignore[union-attr]
    assert "skia-python" in names and "resvg-py" not in names
    monkeypatch.setitem(sys.modules, "resvg_py", None)  # importing it now raises ImportError
    report = synth_dataset(tmp_path / "one", pages=1, seed=SEED, scale=SMALL, degrade="scan")
    assert report.pages == 1 and report.annotations > 0
    with pytest.raises(SystemExit):
        cli_main(["synth", str(tmp_path / "two"), "--pages", "1", "--renderer", "resvg"])


def test_a_missing_rasteriser_or_system_library_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """skia-python links libEGL/libGL: a machine without them gets the apt command, not a bare ImportError."""
    import builtins
    import sys

    from omr_core.datasets import synth_render

    real_import = builtins.__import__

    def no_egl(name: str, *a: object, **kw: object) -> object:
        if name == "skia":
            raise ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
        return real_import(name, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.delitem(sys.modules, "skia", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_egl)
    with pytest.raises(synth_render.RenderError, match=r"libEGL\.so\.1 is missing: install libegl1 .*apt-get install"):
        synth_render.rasterise("<svg/>", 4, 4)
    monkeypatch.setattr(builtins, "__import__", real_import)
    monkeypatch.setitem(sys.modules, "skia", None)
    with pytest.raises(synth_render.RenderError, match="pip install skia-python"):
        synth_render.rasterise("<svg/>", 4, 4)
