"""AppTest of "Per-class failures", tab Notes read right: the shipped model on engraved pages, notes read next to mAP."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.evaluation.notes import load_notes
from tests.core.evaluation.test_notes import engraved_evaluation

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")

pytestmark = pytest.mark.slow


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [c.value for c in at.caption] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_notes_read_right_next_to_map_with_the_wrong_notes_as_crops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("OMR_MODELS_DIR", str(REPO / "models"))  # the real shipped model, the page's default
    ev = engraved_evaluation(tmp_path / "datasets", split="train")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("app_pages/failures.py")
    at.run()
    assert at.selectbox(key="fail_run").value == "reference: reading-v2"
    at.text_input(key="fail_data_reference: reading-v2").set_value(str(ev.data)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Not evaluated" in _texts(at)  # val is offered first; the evaluation is of train
    at.selectbox(key="fail_split_reference: reading-v2").set_value("train").run()
    assert "Cached evaluation from" in _texts(at), _texts(at)
    assert "2 evaluated pages carry note truth" in _texts(at)
    assert "Notes: pitch right" not in [m.label for m in at.metric]

    at.button(key="fail_notes_read").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    notes = load_notes(ev, 0.25)
    assert notes is not None and notes.pages == 2 and notes.notes > 50
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["mAP50"] == f"{ev.summary['map50']:.3f}"
    assert metrics["Notes: pitch right"] == f"{notes.pitch_share:.3f}"
    assert metrics["Notes: pitch + duration"] == f"{notes.both_share:.3f}"
    assert metrics["Wrong notes"] == str(len(notes.wrong))
    captions = [c for img in at.image for c in img.captions]
    w = notes.wrong[0]
    assert f"should be {w.truth} · read {w.read} · {w.cause}" in captions, captions[:5]

    # only the notes of one cause, and the reading stays (cached) when the page reruns
    assert len(notes.causes()) >= 2, notes.causes()
    cause, n = notes.causes()[0]
    at.selectbox(key="fail_notes_cause").set_value(cause).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c for img in at.image for c in img.captions if c.startswith("should be")]
    assert len(captions) == min(n, 24) and all(cause in c for c in captions)
    assert {m.label: m.value for m in at.metric}["Notes: pitch right"] == f"{notes.pitch_share:.3f}"
