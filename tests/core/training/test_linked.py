"""Run folders from elsewhere, linked read-only: listed with the runs, named @FOLDER/…, never written to."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from omr_core.commands import runs as runs_cmd
from omr_core.training import launcher
from omr_core.training.runs import RunError, delete_run, link_folder, linked_folders, list_runs, unlink_folder

DATA = Path(__file__).resolve().parents[2] / "data" / "ultralytics_runs"


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*")):
        h.update(str(f.relative_to(root)).encode())
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """/elsewhere/detect/{a,b}: a folder of real Ultralytics runs, an hour old, outside the runs folder."""
    root = tmp_path / "elsewhere"
    for name, src in (("a", "v84_detect_cpu"), ("b", "v83_obb_stopped_short")):
        shutil.copytree(DATA / src, root / "detect" / name)
    old = time.time() - 3600
    for f in root.rglob("*"):
        os.utime(f, (old, old))
    return root


def test_link_lists_runs_read_only_and_never_writes(tmp_path: Path, elsewhere: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    before = _tree_hash(elsewhere)
    assert [p.name for p in link_folder(runs, elsewhere)] == ["a", "b"]
    link_folder(runs, elsewhere)  # twice: listed once
    assert linked_folders(runs) == [elsewhere.resolve()]
    got = {r.name: r for r in list_runs(runs)}
    assert set(got) == {"@elsewhere/detect/a", "@elsewhere/detect/b"}
    assert got["@elsewhere/detect/a"].state == "finished"
    for act in (lambda: launcher.resume("@elsewhere/detect/b", runs), lambda: delete_run(runs, "@elsewhere/detect/a"),
                lambda: launcher.stop("@elsewhere/detect/a", runs)):
        with pytest.raises(RunError, match="linked folder: it is shown read-only"):
            act()
    assert _tree_hash(elsewhere) == before  # listing, reading and refused actions wrote nothing there
    unlink_folder(runs, elsewhere)
    assert list_runs(runs) == [] and _tree_hash(elsewhere) == before


def test_link_refuses_what_is_not_a_run_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "inside").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="holds no run"):
        link_folder(runs, tmp_path / "empty")
    with pytest.raises(RunError, match="not a folder"):
        link_folder(runs, tmp_path / "missing")
    with pytest.raises(RunError, match="inside the runs folder"):
        link_folder(runs, runs / "inside")
    with pytest.raises(RunError, match="holds the runs folder itself"):
        link_folder(runs, tmp_path)
    with pytest.raises(RunError, match="is not linked"):
        unlink_folder(runs, tmp_path / "empty")


def test_omr_runs_add(tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    runs_cmd.run(argparse.Namespace(runs_dir=str(runs), json=False, delete=None, yes=False, add=str(elsewhere / "detect" / "a"),
                                    unlink=None))
    out = capsys.readouterr().out
    assert "linked" in out and "1 run (read-only)" in out and "@a" in out
