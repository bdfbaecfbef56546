"""AppTest of the Review page's "Read the music" view: an engraved page and its DeepScoresV2 JSON, read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.datasets.synth import synth_dataset
from tests.ui.test_review_page import workspace  # noqa: F401 (the same empty workspace fixture)

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def engraved(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    out = tmp_path_factory.mktemp("engraved") / "ds"
    synth_dataset(out, pages=1, seed=31, test_fraction=0.0)
    png = next((out / "images").glob("*.png"))
    return png.read_bytes(), (out / "deepscores_train.json").read_bytes()


def _run(at: AppTest) -> None:
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def _review_with_page(png: bytes) -> AppTest:
    """The Review page with an uploaded page, as a person leaves it before reading."""
    at = AppTest.from_file(APP, default_timeout=240)
    _run(at)
    at.switch_page("app_pages/review.py")
    _run(at)
    at.file_uploader(key="rv_page").set_value(("page.png", png, "image/png"))
    _run(at)
    return at


@pytest.mark.usefixtures("workspace")
def test_read_view_renders_every_system_and_offers_musicxml_and_midi(engraved: tuple[bytes, bytes]) -> None:
    png, js = engraved
    at = _review_with_page(png)
    at.toggle(key="rv_read").set_value(True)
    _run(at)
    assert any("Choose a model" in i.value for i in at.info)  # no model, no JSON: nothing to read yet
    at.file_uploader(key="rv_read_ds").set_value(("page.json", js, "application/json"))
    _run(at)
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Notes read"]) > 20
    assert float(metrics["Notes read right"].rstrip("%")) >= 97.0
    n_staves = int(metrics["Staves"])
    images = at.get("image")
    assert len(images) >= 2 and len(images) % 2 == 0 and n_staves >= len(images) // 2  # page crop + rendering per system
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[-2:] == ["MusicXML", "MIDI"]


@pytest.mark.usefixtures("workspace")
def test_a_json_that_is_not_deepscores_is_an_error_for_people(engraved: tuple[bytes, bytes]) -> None:
    at = _review_with_page(engraved[0])
    at.file_uploader(key="rv_read_ds").set_value(("heads.json", b"[1, 2]", "application/json"))
    at.toggle(key="rv_read").set_value(True)
    _run(at)
    assert any("expected a DeepScoresV2 annotation file" in e.value for e in at.error)


@pytest.mark.usefixtures("workspace")
def test_notes_read_wrong_are_shown_as_crops(engraved: tuple[bytes, bytes]) -> None:
    """A truth that disagrees with the page (one pitch comment changed) shows up as one wrong-note crop."""
    import re

    png, js = engraved
    changed = re.sub(rb"pitch:[A-G][#b]*\d;", b"pitch:C0;", js, count=1)
    at = _review_with_page(png)
    at.file_uploader(key="rv_read_ds").set_value(("page.json", changed, "application/json"))
    at.toggle(key="rv_read").set_value(True)
    _run(at)
    assert [e.label for e in at.expander] == ["Notes read wrong (1)"]
    crops = at.expander[0].get("image")
    assert len(crops) == 1
    assert crops[0].proto.imgs[0].caption.startswith("C0 (")
