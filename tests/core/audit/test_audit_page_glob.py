"""AppTest of the Class audit page given a glob of complete-set files, one of them truncated."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bench.make_big_deepscores import make_big_deepscores
from omr_core.datasets.discovery import load_dataset

REPO = Path(__file__).resolve().parents[3]
APP = str(REPO / "dashboard" / "app.py")


def test_glob_is_audited_file_by_file_and_the_damaged_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "complete"
    good = [make_big_deepscores(data / f"deepscores-complete-0{i}.json", 4_000, seed=i, per_page=400) for i in range(2)]
    bad = make_big_deepscores(data / "deepscores-complete-02.json", 4_000, seed=9, per_page=400)
    bad.write_bytes(bad.read_bytes()[:3000])
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/audit.py")
    at.run()
    at.text_input(key="audit_path").input(str(data / "deepscores-complete-*")).run()
    assert not at.exception, [e.value for e in at.exception]
    full = load_dataset(good)
    metrics = {m.label: str(m.value) for m in at.metric}
    assert metrics["Images"] == f"{len(full.data.images):,}"
    assert metrics["Instances"] == f"{len(full.data.annotations):,}"
    assert metrics["Source"] == "deepscores, 2 files"
    warnings = " ".join(w.value for w in at.warning)
    assert "deepscores-complete-02.json" in warnings and "skipped" in warnings
    table = at.dataframe[0].value
    stem = table[table["name"] == "stem"].iloc[0]
    assert int(stem["instances"]) == int((full.data.annotations["name"] == "stem").sum())
    assert at.button(key="audit_convert").disabled
    assert list((tmp_path / ".cache" / "deepscores").glob("deepscores-complete-0[01]-*.json"))  # beside the workspace
