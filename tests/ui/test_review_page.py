"""AppTest of the "Review a score" page: real uploads (pages, PDFs, heads.json, models), overlay, bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.core.review.recon_fixtures import (
    bomb_png,
    deepscores_names,
    draw_page,
    four_line_page,
    make_model,
    notehead,
    png_bytes,
    stem,
)

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "runs").mkdir()
    (tmp_path / "datasets").mkdir()
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def page_and_heads() -> tuple[bytes, bytes]:
    p = draw_page(tops=(200, 420), join=(0,))
    heads = []
    for i, cy in enumerate((271, 251, 231)):
        box = notehead(p.gray, 400 + 80 * i, cy, 20)
        stem(p.gray, int(box[2]) - 2, cy - 70, cy - 3)
        heads.append({"bbox": list(box), "name": "noteheadBlackInSpace" if i != 1 else "noteheadBlackOnLine"})
    box = notehead(p.gray, 700, 181, 20)  # on the first ledger line above
    p.gray[180:182, int(box[0]) - 5 : int(box[2]) + 5] = 0
    heads.append({"bbox": list(box), "name": "noteheadWholeOnLine"})
    return png_bytes(p.gray), json.dumps(heads).encode()


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/review.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _upload(at: AppTest, key: str, name: str, data: bytes, mime: str = "application/octet-stream") -> None:
    at.file_uploader(key=key).set_value((name, data, mime))
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def _errors(at: AppTest) -> str:
    return " | ".join(e.value for e in at.error)


def test_opens_and_asks_for_a_page(workspace: Path) -> None:
    at = _open()
    assert at.title[0].value == "Review a score"
    assert any("Upload a score page" in i.value for i in at.info)
    assert at.selectbox(key="rv_model").options[0].startswith("No model")


def test_page_with_heads_json_shows_overlay_counts_and_exports(workspace: Path, page_and_heads: tuple[bytes, bytes]) -> None:
    png, heads = page_and_heads
    at = _open()
    _upload(at, "rv_page", "page.png", png, "image/png")
    assert not at.error, _errors(at)
    assert at.metric[0].value == "2"  # two staves
    _upload(at, "rv_heads", "heads.json", heads, "application/json")
    assert not at.error, _errors(at)
    table = at.dataframe[0].value
    counts = dict(zip(table["class"], table["count"]))
    assert counts["staff (detected)"] == 2 and counts["stem (rebuilt)"] == 3 and counts["ledgerLine (rebuilt)"] == 1
    assert len(at.get("plotly_chart")) == 1
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Result JSON", "Annotated PNG", "DeepScoresV2 JSON (for the audit)"]
    # Layer toggles redraw without errors.
    at.pills(key="rv_layers").set_value(["staff"])
    at.run()
    assert not at.exception and not at.error


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("notes.png", b"just some text", "not a PNG, JPEG, TIFF"),
        ("bomb.png", None, "Mpx limit"),
        ("dot.png", png_bytes(np.zeros((1, 1), np.uint8)), "too small"),
        ("cut.png", None, "damaged or truncated"),
    ],
)
def test_bad_pages_give_clear_errors(workspace: Path, name: str, data: bytes | None, match: str, page_and_heads: tuple[bytes, bytes]) -> None:
    if name == "bomb.png":
        data = bomb_png()
    elif name == "cut.png":
        data = page_and_heads[0][:2000]
    at = _open()
    _upload(at, "rv_page", name, data or b"")
    assert match in _errors(at)


def test_blank_page_warns(workspace: Path) -> None:
    at = _open()
    _upload(at, "rv_page", "blank.png", png_bytes(np.full((800, 600), 255, np.uint8)), "image/png")
    assert not at.error
    assert any("no staff found" in w.value for w in at.warning)


def test_page_with_missed_staves_warns(workspace: Path) -> None:
    at = _open()
    _upload(at, "rv_page", "odd.png", png_bytes(four_line_page().gray), "image/png")
    assert not at.error, _errors(at)
    assert at.metric[0].value == "3"
    shown = [w.value for w in at.warning]
    assert any("may have missed about 6 staves: 32 long straight horizontal lines" in w for w in shown), shown


def test_bad_heads_json(workspace: Path, page_and_heads: tuple[bytes, bytes]) -> None:
    at = _open()
    _upload(at, "rv_page", "page.png", page_and_heads[0], "image/png")
    _upload(at, "rv_heads", "heads.json", b'[{"bbox": [1, 2, 3]}]', "application/json")
    assert "'bbox' must be [x0, y0, x1, y1]" in _errors(at)


def test_pdf_page_picker(workspace: Path) -> None:
    ims = [Image.fromarray(draw_page(tops=tops, join=()).gray).convert("RGB") for tops in ((200,), (200, 500, 800))]
    b = io.BytesIO()
    ims[0].save(b, "PDF", resolution=200.0, save_all=True, append_images=ims[1:])
    at = _open()
    _upload(at, "rv_page", "score.pdf", b.getvalue(), "application/pdf")
    assert at.metric[0].value == "1"
    at.number_input(key="rv_page_no").set_value(2)
    at.run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "3"


@pytest.mark.slow
def test_models_from_the_workspace_and_uploads(workspace: Path, page_and_heads: tuple[bytes, bytes]) -> None:
    weights = workspace / "runs" / "exp1" / "weights"
    weights.mkdir(parents=True)
    make_model(weights / "best.pt", deepscores_names())
    coco = workspace / "runs" / "coco" / "weights"
    coco.mkdir(parents=True)
    make_model(coco / "last.pt")
    cls = make_model(workspace / "cls.pt", task="classify")
    at = _open()
    _upload(at, "rv_page", "page.png", page_and_heads[0], "image/png")
    at.select_slider(key="rv_imgsz").set_value(320)
    opts = at.selectbox(key="rv_model").options
    assert "exp1/weights/best.pt" in opts and "coco/weights/last.pt" in opts
    at.selectbox(key="rv_model").set_value("exp1/weights/best.pt")
    at.run()
    assert not at.exception and not at.error, _errors(at)
    assert at.metric[0].value == "2"
    at.selectbox(key="rv_model").set_value("coco/weights/last.pt")
    at.run()
    assert not at.exception
    assert any("is a DeepScoresV2 name" in w.value for w in at.warning), [w.value for w in at.warning] + [_errors(at)]
    at.selectbox(key="rv_model").set_value("Upload a .pt file")
    at.run()
    _upload(at, "rv_model_up", "cls.pt", cls.read_bytes())
    assert "not a detector" in _errors(at)
