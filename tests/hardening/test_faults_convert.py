"""`omr convert` interrupted: killed with SIGKILL mid-way, or a write failing (file-size limit, as a full disk would).

Each time: no dataset (half-written or not) under the output name, the source byte-for-byte untouched, a clear
message for a failed write, and a rerun that works; leftovers of a killed run are cleaned and never taken for
a dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from omr_core.audit.convert import clean_leftovers
from omr_core.datasets.discovery import find_datasets
from omr_core.datasets.yolo import read_data_yaml
from tests.conftest import REAL_SAMPLE, REPO
from tests.hardening.fuzzlib import tree_files

N_TRAIN, N_TEST, PAGE = 360, 40, 128
IDS = (6, 25, 42, 2, 31, 70, 122)  # clefG, noteheadBlackOnLine, stem, ledgerLine, …

# Runs the real CLI with a file-size limit (RLIMIT_FSIZE): a write past it fails with EFBIG, like a full disk.
# Python ignores SIGXFSZ, so the failure reaches the converter as an OSError.
FSIZE_WRAPPER = (
    "import resource, sys; lim = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim)); "
    "from omr_core.cli import main; sys.exit(main(sys.argv[2:]))"
)


def make_source(folder: Path, seed: int = 0) -> list[Path]:
    """A DeepScoresV2 dataset (train and test JSON in the released format, blank PNG pages with boxes on them)."""
    real = json.loads(REAL_SAMPLE.read_text())
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    aid = 1
    files = []
    for split, n, first in (("train", N_TRAIN, 1), ("test", N_TEST, N_TRAIN + 1)):
        images, anns = [], {}
        for iid in range(first, first + n):
            page = np.full((PAGE, PAGE), 255, np.uint8)
            ids = []
            for _ in range(6):
                x0, y0 = (int(v) for v in rng.integers(0, PAGE - 12, 2))
                w, h = (int(v) for v in rng.integers(2, 12, 2))
                page[y0 : y0 + h, x0 : x0 + w] = 0
                c = int(rng.choice(IDS))
                anns[str(aid)] = {"a_bbox": [x0, y0, x0 + w, y0 + h],
                                  "o_bbox": [x0 + w, y0 + h, x0 + w, y0, x0, y0, x0, y0 + h],
                                  "cat_id": [str(c), None], "area": w * h, "img_id": str(iid), "comments": ""}
                ids.append(str(aid))
                aid += 1
            cv2.imwrite(str(folder / "images" / f"p{iid:04d}.png"), page)
            images.append({"id": iid, "filename": f"p{iid:04d}.png", "width": PAGE, "height": PAGE, "ann_ids": ids})
        doc = {k: real[k] for k in ("info", "annotation_sets", "categories")}
        doc.update(images=images, annotations=anns)
        files.append(folder / f"deepscores_{split}.json")
        files[-1].write_text(json.dumps(doc))
    return files


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    src = tmp_path_factory.mktemp("src")
    files = make_source(src)
    for p in src.rglob("*"):  # the source is read-only, as a downloaded dataset on a shared disk often is
        p.chmod(0o444 if p.is_file() else 0o555)
    return files


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "omr_core.cli", "convert", *args]


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=timeout)


def _leftovers(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.omr-*"))


def test_sigkill_mid_conversion_then_rerun(source: list[Path], tmp_path: Path) -> None:
    src = source[0].parent
    before = tree_files(src)
    out = tmp_path / "datasets" / "ds"
    # Tiles make it slow enough to kill mid-way (16 tiles per page).
    proc = subprocess.Popen(_cli(*map(str, source), str(out), "--tile", "32", "--overlap", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    deadline = time.time() + 90
    tmp = None
    while time.time() < deadline and proc.poll() is None:
        tmps = list(out.parent.glob(".ds.omr-tmp-*")) if out.parent.is_dir() else []
        if tmps and sum(1 for _ in (tmps[0] / "labels").rglob("*.txt")) >= 50:
            tmp = tmps[0]
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=30)
    assert tmp is not None and proc.returncode == -signal.SIGKILL, (proc.returncode, stderr[-2000:])

    # Nothing under the output name; the killed run's temp folder and its (no longer held) lock file are left
    # (nothing can clean up after SIGKILL)…
    assert not out.exists()
    lock = out.parent / ".ds.omr-lock"
    assert _leftovers(out) == [lock, tmp] and tmp.name.startswith(f".ds.omr-tmp-{proc.pid}-")
    assert lock.read_text().startswith(f"PID {proc.pid} ")
    assert tree_files(src) == before, "the source must never be modified"
    # …and it is never taken for a dataset: not by the dataset finder, not as a data.yaml candidate.
    assert find_datasets(tmp_path / "datasets") == []

    # A rerun, without --overwrite, works and removes the dead run's temp folder.
    res = _run(_cli(*map(str, source), str(out)))
    assert res.returncode == 0, res.stderr[-3000:]
    assert _leftovers(out) == []
    ds = read_data_yaml(out / "data.yaml")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": N_TRAIN, "val": N_TEST}
    assert "left by a conversion that was killed" in (out / "convert.log").read_text()
    assert find_datasets(tmp_path / "datasets") == [out / "data.yaml"]
    assert tree_files(src) == before


@pytest.mark.parametrize(
    ("limit", "fails_on", "existing"),
    [
        (150, "labels/", False),  # the first label file (6 boxes, about 220 bytes)
        (16_384, "excluded_classes.json", False),  # the manifest, after every page was written
        (16_384, "excluded_classes.json", True),  # --overwrite of an existing dataset
    ],
)
def test_write_failure_leaves_nothing(source: list[Path], tmp_path: Path, limit: int, fails_on: str,
                                      existing: bool) -> None:
    src = source[0].parent
    before = tree_files(src)
    out = tmp_path / "ds"
    extra = []
    if existing:
        res = _run(_cli(*map(str, source), str(out)))
        assert res.returncode == 0, res.stderr[-2000:]
        previous = tree_files(out)
        extra = ["--overwrite"]
    res = _run([sys.executable, "-c", FSIZE_WRAPPER, str(limit), "convert", *map(str, source), str(out), *extra])
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    err = res.stderr
    assert "Traceback" not in err, err[-3000:]
    assert "omr convert: error:" in err and "File too large" in err and fails_on in err, err[-1500:]
    assert "Nothing was left at" in err and "source is untouched" in err
    if existing:
        assert tree_files(out) == previous, "the previous dataset must survive a failed --overwrite"
    else:
        assert not out.exists()
    assert _leftovers(out) == [], "the temp folder of a failed write is removed"
    assert tree_files(src) == before


def _dead_process_tag() -> str:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    start = int(psutil.Process(p.pid).create_time())
    p.wait()
    return f"{p.pid}-{start}"


def test_leftovers_of_killed_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished-looking temp folder (killed just before its rename) is never offered as a dataset; a dataset set
    aside by a run killed mid-swap is put back; folders of a conversion still running are kept."""
    datasets = tmp_path / "datasets"
    real = datasets / "real"
    real.mkdir(parents=True)
    (real / "data.yaml").write_text("train: images\nnames: [a]\n")
    dead = _dead_process_tag()
    stale_tmp = datasets / f".ds.omr-tmp-{dead}-0badc0de"
    shutil.copytree(real, stale_tmp)
    set_aside = datasets / f".ds.omr-old-{dead}-0badc0de"
    shutil.copytree(real, set_aside)
    me = psutil.Process()
    running = datasets / f".ds.omr-tmp-{me.pid}-{int(me.create_time())}-0badc0de"
    running.mkdir()
    foreign = datasets / ".ds.omr-tmp-0badc0de"  # an older naming without an owner: left alone
    foreign.mkdir()

    assert find_datasets(datasets) == [real / "data.yaml"]
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/training.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    options = at.selectbox(key="tr_data_pick").options
    assert options == ["(type a path below)", str(real / "data.yaml")], options

    notes = clean_leftovers(datasets / "ds")
    assert sorted(p.name for p in datasets.iterdir()) == sorted(["real", "ds", running.name, foreign.name])
    assert (datasets / "ds" / "data.yaml").is_file()  # the dataset set aside is back under its name
    assert len(notes) == 2 and any("restored" in n for n in notes) and any(stale_tmp.name in n for n in notes)
    assert os.path.isdir(running)
