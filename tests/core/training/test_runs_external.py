"""The runs listing and `omr runs` on real run folders trained elsewhere (tests/data/ultralytics_runs)."""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import pytest

from omr_core.commands import runs as runs_cmd
from omr_core.training.runs import list_runs

DATA = Path(__file__).resolve().parents[2] / "data" / "ultralytics_runs"

#: Read off the files by hand: (epoch text, state, best headline value, best epoch by Ultralytics' fitness).
EXPECTED = {
    "v80_detect_100ep_zero_based": ("100/100", "finished", 0.74321, 99),  # 8.0.x wrote epochs 0..99
    "v80_detect_2ep_zero_based": ("2/2", "finished", 0.51291, 2),
    "v5_detect_50ep": ("50/50", "finished", 0.38746, 50),  # YOLOv5: opt.yaml, metrics/mAP_0.5:0.95
    "v84_classify_cpu": ("8/8", "finished", 0.92228, 7),  # top-1; epoch 8 ties top-1 with a lower top-5
    "v11_classify_ties": ("10/10", "finished", 1.0, 3),
    "v84_segment_best_by_mask": ("50/50", "finished", 0.71747, 40),  # mask mAP at the box+mask fitness best
    "yolo26_obb_early_stop": ("50/120", "early-stopped", 0.14411, 30),
    "v83_obb_stopped_short": ("2/100", "external", 0.63171, 1),
}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    old = time.time() - 3600  # last written an hour ago: a fresh clone's files are minutes old, "still being written"
    for name in EXPECTED:
        shutil.copytree(DATA / name, root / name)
        for f in (root / name).iterdir():
            os.utime(f, (old, old))
    return root


def test_runs_trained_elsewhere_are_read_like_ultralytics(runs_dir):
    got = {r.name: r for r in list_runs(runs_dir)}
    for name, (epochs, state, best, best_epoch) in EXPECTED.items():
        r = got[name]
        assert r.epoch_text == epochs, name
        assert r.state == state, (name, r.reason)
        assert r.best_map == pytest.approx(best), name
        assert r.best_epoch == best_epoch, name
    assert "patience 20" in got["yolo26_obb_early_stop"].reason
    assert "stopped at epoch 2 of 100" in got["v83_obb_stopped_short"].reason
    assert got["v84_classify_cpu"].metric == "top-1" and got["v5_detect_50ep"].metric == "mAP50-95"
    assert got["v84_segment_best_by_mask"].metric == "mask mAP50-95"


def test_omr_runs_columns_line_up_whatever_the_name_length(runs_dir, capsys):
    long = runs_dir / ("a-run-name-much-longer-than-the-twenty-eight-columns-the-table-used-to-give-" + "x" * 20)
    shutil.copytree(DATA / "v84_detect_cpu", long)
    try:
        runs_cmd.run(argparse.Namespace(runs_dir=str(runs_dir), json=False, delete=None, yes=False))
    finally:
        shutil.rmtree(long)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln and not ln.lstrip().startswith("└")]
    header, rows = lines[0], lines[1:]
    col = header.index("state")
    assert len(rows) == len(EXPECTED) + 1
    for ln in rows:
        assert ln[col - 1] == " " and ln[col] != " ", f"state column misaligned in {ln!r}"
    assert any(long.name in ln for ln in rows)
    assert "early-stopped" in "\n".join(rows) and "top-1" in "\n".join(rows)


def test_damaged_real_files_say_what_was_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A real 8.0.x run (CRLF, padded cells) as a crash leaves it: a line cut in half, NUL bytes mid-file, and an
    # args.yaml whose last write broke off inside a flow list.
    run = tmp_path / "runs" / "crashed"
    shutil.copytree(DATA / "v80_detect_100ep_zero_based", run)
    lines = (run / "results.csv").read_bytes().split(b"\r\n")
    lines[10] = lines[10][:30]
    lines.insert(40, b"\x00" * 64)
    (run / "results.csv").write_bytes(b"\r\n".join(lines))
    with (run / "args.yaml").open("a", encoding="utf-8") as f:
        f.write("classes: [0, 1\n")
    old = time.time() - 3600
    for f in run.iterdir():
        os.utime(f, (old, old))
    s = {r.name: r for r in list_runs(tmp_path / "runs")}["crashed"]
    damage = "\n".join(s.damage)
    assert "results.csv: skipped 1 malformed line" in damage and "damaged row" in damage
    assert "args.yaml: not readable YAML" in damage and "line" in damage  # where it broke, for the person to look
    runs_cmd.run(argparse.Namespace(runs_dir=str(tmp_path / "runs"), json=False, delete=None, yes=False, add=None,
                                    unlink=None))
    out = capsys.readouterr().out
    assert "args.yaml: not readable YAML" in out and "results.csv: skipped 1 malformed line" in out


def test_omr_runs_add_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("not a run\n")
    env = {**os.environ, "OMR_WORKSPACE": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "omr_core.cli", "runs", "--add", str(notes)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode != 0
    assert f"{notes} holds no run" in p.stderr and "run.json, results.csv or args.yaml" in p.stderr
    assert "Traceback" not in p.stderr
    assert sorted(x.name for x in notes.iterdir()) == ["readme.txt"]  # nothing written there
