"""AppTest of "Per-class failures" on a real trained run: evaluate, cached reopen, table, confusion cell, gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from omr_core.evaluation.evaluate import evaluate
from tests.core.evaluation.trained_fixture import NAMES, TrainedRun, install_run, trained_run

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return trained_run(tmp_path_factory.mktemp("evaluate-ui"))


def _open(ws: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("OMR_WORKSPACE", str(ws))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/failures.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [c.value for c in at.caption] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_page_on_an_evaluated_run(run: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = install_run(run.run, tmp_path / "runs")
    at = _open(tmp_path, monkeypatch)
    assert at.selectbox(key="fail_run").value == "symbols"
    assert at.text_input(key="fail_data_symbols").value == str(run.data)  # proposed from args.yaml
    assert at.selectbox(key="fail_split_symbols").value == "val"
    assert at.number_input(key="fail_imgsz_symbols").value == 160
    assert "Not evaluated" in _texts(at)
    at.number_input(key="fail_conf").set_value(0.1)
    at.button(key="fail_evaluate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert "Evaluated just now" in _texts(at) and "Not evaluated" not in _texts(at)
    # Done: the button no longer says "Evaluate" but offers to evaluate again.
    labels = {b.key: b.label for b in at.button}
    assert labels.get("fail_rerun") == "Re-evaluate" and "fail_evaluate" not in labels, labels

    # The table shows Ultralytics' numbers of the cached evaluation, worst first, clefF marked.
    ev = evaluate(installed / "weights" / "best.pt", run.data, "val", imgsz=160)  # the page's default batch
    assert ev.cached and ev.folder.parent == installed / "evaluation"
    table = _frame_with(at, "ap50_95")
    assert table["class"].iloc[-1] == "clefF" and table["status"].iloc[-1] == "no labels"
    want = ev.per_class().set_index("class")
    for name in NAMES[:3]:
        got = table.set_index("class").loc[name]
        assert got["ap50_95"] == pytest.approx(want.loc[name, "ap50_95"], abs=1e-9)
        assert got["instances"] == want.loc[name, "instances"]
    labelled = table[table["status"] != "no labels"]["ap50_95"].to_numpy()
    # What is wrong with the weak class is said in words (it used to read "ok" like the others).
    assert table.set_index("class").loc["restQuarter", "status"].startswith("many false detections: "), table
    assert (np.diff(labelled) >= 0).all()

    # Reopening is a cache hit: the page says so and offers a re-run instead of an evaluation.
    at2 = _open(tmp_path, monkeypatch)
    assert "Cached evaluation from" in _texts(at2)
    assert any(b.key == "fail_rerun" for b in at2.button)
    at2.number_input(key="fail_conf").set_value(0.1).run()

    # A confusion cell picked by name lists its cases with crops.
    cases = ev.cases(0.1)
    fails = cases[cases["kind"].astype(str) != "tp"]
    assert len(fails), "the fixture model should make some mistakes at 0.1"
    row = fails.iloc[0]
    kind, nc = str(row["kind"]), len(NAMES)
    true = int(row["true_cls"]) if kind in ("fn", "fp_class") else nc
    pred = nc if kind == "fn" and int(row["pred_cls"]) < 0 else int(row["pred_cls"])
    at2.selectbox(key="fail_cm_true").set_value(true)
    at2.selectbox(key="fail_cm_pred").set_value(pred).run()
    assert not at2.exception, [e.value for e in at2.exception]
    assert "case(s)" in _texts(at2)
    assert len(_frame_with(at2, "kind_label")) >= 1
    assert len(at2.image) >= 1

    # Galleries page through cases of the chosen class.
    cls = int(row["cls"])
    at2.selectbox(key="fail_gal_class").set_value(cls).run()
    assert not at2.exception, [e.value for e in at2.exception]
    captions = [c for img in at2.image for c in img.captions]
    assert any(str(ev.images()["image"].iloc[int(row["image_id"])]) in c for c in captions), captions[:5]


def _frame_with(at: AppTest, column: str):  # type: ignore[no-untyped-def]
    """The first dataframe that has ``column`` (AppTest does not expose dataframe keys)."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with a {column!r} column")


def test_page_without_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(tmp_path, monkeypatch)
    assert "Choose a run or give a weights file" in _texts(at)
    at.text_input(key="fail_model_path").set_value("/etc/passwd").run()
    assert not at.exception and "outside the workspace" in _texts(at)
