"""AppTest: the Training page adds a run folder from elsewhere (typed + Enter) and lists its runs read-only."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
DATA = REPO / "tests" / "data" / "ultralytics_runs"


def test_add_a_folder_of_runs_from_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ws" / "runs").mkdir(parents=True)
    (tmp_path / "ws" / "datasets").mkdir()
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path / "ws"))
    other = tmp_path / "old" / "exp5"
    shutil.copytree(DATA / "v84_detect_cpu", other)
    old = time.time() - 3600
    for f in other.iterdir():
        os.utime(f, (old, old))
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/training.py")
    at.run(timeout=60)
    at.text_input(key="link_path").input(str(other)).run(timeout=60)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("1 run, listed below" in s.value for s in at.success)
    assert f"`{other}`" in " ".join(m.value for m in at.markdown)
    assert "@exp5" in at.dataframe[0].value["run"].tolist()
    (tmp_path / "empty").mkdir()
    at.text_input(key="link_path").input(str(tmp_path / "empty")).run(timeout=60)  # a folder with no run in it
    assert any("holds no run" in e.value for e in at.error)
