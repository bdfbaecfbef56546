"""`omr reconstruct`, `omr review` and `omr bench`: real files in, JSON/PNG out, clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omr_core.cli import main
from tests.conftest import REAL_SAMPLE
from tests.core.review.recon_fixtures import (
    bomb_png,
    deepscores_names,
    draw_page,
    engraved,
    four_line_page,
    make_model,
    notehead,
    png_bytes,
    stem,
)


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, Path]:
    """A drawn page with one stemmed note and its heads.json."""
    p = draw_page(tops=(300,), join=())
    box = notehead(p.gray, 400, 371, 20)
    stem(p.gray, int(box[2]) - 2, 300, 368)
    img = tmp_path / "page.png"
    img.write_bytes(png_bytes(p.gray))
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps([{"bbox": list(box), "name": "noteheadBlackInSpace"}]))
    return img, heads


def test_reconstruct_writes_the_schema(page: tuple[Path, Path], tmp_path: Path) -> None:
    img, heads = page
    out = tmp_path / "out" / "rec.json"
    assert main(["reconstruct", str(img), "--noteheads", str(heads), "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert len(d["staves"]) == 1 and len(d["staves"][0]["lines_y"]) == 5
    assert len(d["stems"]) == 1 and d["stems"][0]["noteheads"] == [0] and len(d["stems"][0]["bbox"]) == 4
    assert d["ledger_lines"] == []


@pytest.mark.parametrize(
    ("heads_text", "match"),
    [("not json", "not valid JSON"), ('[{"bbox": [1, 2]}]', "'bbox' must be"), ('[{"bbox": [1,2,3,4], "name": "clefG"}]', "not a notehead")],
)
def test_reconstruct_bad_heads(page: tuple[Path, Path], tmp_path: Path, heads_text: str, match: str, capsys: pytest.CaptureFixture[str]) -> None:
    img, _ = page
    bad = tmp_path / "bad.json"
    bad.write_text(heads_text)
    assert main(["reconstruct", str(img), "--noteheads", str(bad), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "omr reconstruct: error:" in err and "bad.json" in err
    assert pytest.importorskip("re").search(match, err)
    assert not (tmp_path / "o.json").exists()


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    good = png_bytes(draw_page().gray)
    one = png_bytes(np.zeros((1, 1), np.uint8))
    return {
        "text.png": (b"hello", "not a PNG, JPEG, TIFF"),
        "empty.png": (b"", "empty"),
        "cut.png": (good[: len(good) // 3], "damaged or truncated"),
        "dot.png": (one, "too small"),
        "bomb.png": (bomb_png(), "Mpx limit"),
    }


def test_review_bad_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, (data, match) in _bad_inputs(tmp_path).items():
        p = tmp_path / name
        p.write_bytes(data)
        assert main(["review", str(p), "--out", str(tmp_path / "r.json")]) == 2, name
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err, (name, err)


def test_review_blank_page_and_photo_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    for name, arr in [("blank.png", np.full((900, 700), 255, np.uint8)), ("photo.png", rng.integers(0, 255, (700, 900)).astype(np.uint8))]:
        p = tmp_path / name
        p.write_bytes(png_bytes(arr))
        out = tmp_path / f"{name}.json"
        assert main(["review", str(p), "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert "warning: no staff found" in err
        d = json.loads(out.read_text())
        assert d["staves"] == [] and any("no staff" in m for m in d["messages"])


def test_review_warns_when_staves_were_missed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "odd.png"
    img.write_bytes(png_bytes(four_line_page().gray))
    out = tmp_path / "r.json"
    assert main(["review", str(img), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "omr review: warning: staff detection may have missed about 6 staves: 32 long straight horizontal" in err
    d = json.loads(out.read_text())
    assert len(d["staves"]) == 3 and any("may have missed" in m for m in d["messages"])


def test_review_without_model_writes_json_png_and_deepscores(page: tuple[Path, Path], tmp_path: Path) -> None:
    from omr_core.datasets.deepscores import load_deepscores

    img, heads = page
    out, ov, ds = tmp_path / "r.json", tmp_path / "ov.png", tmp_path / "ds.json"
    assert main(["review", str(img), "--noteheads", str(heads), "--out", str(out), "--overlay", str(ov), "--deepscores", str(ds)]) == 0
    d = json.loads(out.read_text())
    assert len(d["staves"]) == 1 and len(d["stems"]) == 1 and d["detections"] == []
    from PIL import Image

    assert Image.open(ov).size == (1600, 1200)
    data = load_deepscores(ds, check_images=False)
    names = data.annotations["name"].astype(str).value_counts().to_dict()
    assert names == {"staff": 1, "stem": 1}
    assert not [i for i in data.issues if i.dropped]


@pytest.mark.slow
def test_review_with_models(page: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img, _ = page
    ds = make_model(tmp_path / "ds.pt", deepscores_names())
    assert main(["review", str(img), "--model", str(ds), "--imgsz", "320", "--tile", "--out", str(tmp_path / "a.json")]) == 0
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["model"]["classes"] == 136 and d["model"]["warning"] == ""
    coco = make_model(tmp_path / "coco.pt")
    assert main(["review", str(img), "--model", str(coco), "--imgsz", "320", "--out", str(tmp_path / "b.json")]) == 0
    assert "none of the model's 80 class names is a DeepScoresV2 name" in capsys.readouterr().err
    cls = make_model(tmp_path / "cls.pt", task="classify")
    assert main(["review", str(img), "--model", str(cls), "--out", str(tmp_path / "c.json")]) == 2
    assert "not a detector" in capsys.readouterr().err
    notpt = tmp_path / "notes.pt"
    notpt.write_text("my notes")
    assert main(["review", str(img), "--model", str(notpt), "--out", str(tmp_path / "d.json")]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err


def test_bench_needs_a_sub_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 2
    assert "omr bench reconstruct" in capsys.readouterr().err


def test_bench_reconstruct_missing_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "reconstruct", str(REAL_SAMPLE), "--images", str(tmp_path)]) == 2
    assert "none of its 10 page images" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_reconstruct_on_engraved_pages(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    js = engraved(tmp_path_factory.getbasetemp() / "recon-engraved", "none")
    out = tmp_path_factory.mktemp("bench") / "b.json"
    rc = main(["bench", "reconstruct", str(js), "--pages", "--json", str(out)])
    text = capsys.readouterr().out
    assert "stems F1" in text and "ledger lines F1" in text and "ms/page" in text
    d = json.loads(out.read_text())
    assert rc == (0 if all(r["ok"] for r in d["rows"]) else 1)
    assert d["pages"] and all(p["staves_found"] == p["staves_gt"] for p in d["pages"])
