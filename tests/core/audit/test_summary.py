"""The streaming audit over many files: same numbers as the full reader, Parquet cache, resume, damaged files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.make_big_deepscores import make_big_deepscores
from omr_core.audit.plan import make_plan
from omr_core.audit.report import audit_report
from omr_core.audit.statistics import class_stats, density_summary, instances_per_image
from omr_core.audit.summary import summarize_files
from omr_core.datasets.columnar import ColumnarCache, expand_sources
from omr_core.datasets.discovery import load_dataset
from omr_core.errors import OmrError
from tests.conftest import REAL_SAMPLE


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three synthetic complete-set files (int and float boxes), about 40,000 annotations in all."""
    root = tmp_path_factory.mktemp("complete")
    return [
        make_big_deepscores(root / "deepscores-complete-00.json", 15_000, seed=1, per_page=580),
        make_big_deepscores(root / "deepscores-complete-01.json", 12_000, seed=2, per_page=580, float_boxes=True),
        make_big_deepscores(root / "deepscores-complete-02.json", 13_000, seed=3, per_page=300),
    ]


def _copy(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir()
    out = []
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
        out.append(folder / f.name)
    return out


def _same_audit(paths: list[Path], cache: ColumnarCache) -> None:
    """Every audit number of the summary equals the full reader's, exactly."""
    full = load_dataset(paths)
    summ = summarize_files(paths, cache=cache)
    for imgsz in (640, 1024, 1280):
        pd.testing.assert_frame_equal(summ.class_stats(imgsz), class_stats(full, imgsz), check_exact=True)
    plan = make_plan(full.names, ["stem", "ledgerLine", "beam"])
    for p in (None, plan):
        a, b = summ.instances_per_image(p), instances_per_image(full, p)
        np.testing.assert_array_equal(a, b)
        assert density_summary(a) == density_summary(b)
    pd.testing.assert_frame_equal(summ.images, full.data.images, check_exact=True)
    assert audit_report(summ, plan, imgsz=1024) == audit_report(full, plan, imgsz=1024)


def test_summary_numbers_equal_the_full_reader(big_files: list[Path], tmp_path: Path) -> None:
    cache = ColumnarCache(tmp_path / "cache")
    _same_audit(big_files, cache)
    assert cache.parses == 3
    _same_audit(big_files, cache)  # and again from the cache alone
    assert cache.parses == 3


def test_summary_of_the_real_sample_equals_the_full_reader(tmp_path: Path) -> None:
    _same_audit([REAL_SAMPLE], ColumnarCache(tmp_path / "cache"))


def test_reopening_reads_no_json(big_files: list[Path], tmp_path: Path) -> None:
    files = _copy(big_files, tmp_path / "data")
    cache = ColumnarCache(tmp_path / "cache")
    first = summarize_files(files, cache=cache)
    assert (first.parsed, first.cached) == (3, 0)
    # Wreck every file past the hashed head, keeping size and mtime: a parse would now fail loudly.
    for f in files:
        st = f.stat()
        with f.open("r+b") as fh:
            fh.seek(min(st.st_size // 2, 1 << 20))
            fh.write(b"\0" * 4096)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = summarize_files(files, cache=ColumnarCache(tmp_path / "cache"))
    assert (again.parsed, again.cached, again.skipped) == (0, 3, ())
    pd.testing.assert_frame_equal(again.class_stats(1024), first.class_stats(1024), check_exact=True)


def test_changed_file_rebuilds_only_its_own_entry(big_files: list[Path], tmp_path: Path) -> None:
    files = _copy(big_files, tmp_path / "data")
    cache = ColumnarCache(tmp_path / "cache")
    summarize_files(files, cache=cache)
    untouched = {p: p.stat().st_mtime_ns for p in cache.root.iterdir() if not p.name.startswith("deepscores-complete-01")}
    make_big_deepscores(files[1], 9_000, seed=42, per_page=580)
    again = summarize_files(files, cache=cache)
    assert (again.parsed, again.cached) == (1, 2)
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    assert len(list(cache.root.glob("deepscores-complete-01-*.json"))) == 1  # the old entry is gone
    pd.testing.assert_frame_equal(again.class_stats(1024), class_stats(load_dataset(files), 1024), check_exact=True)


def test_truncated_file_is_named_and_skipped(big_files: list[Path], tmp_path: Path) -> None:
    files = _copy(big_files, tmp_path / "data")
    raw = files[1].read_bytes()
    files[1].write_bytes(raw[: len(raw) * 2 // 3])
    seen: list[str] = []
    summ = summarize_files(files, cache=ColumnarCache(tmp_path / "cache"), progress=lambda d, t, n: seen.append(f"{d}/{t} {n}"))
    assert seen == [f"{i + 1}/3 {f.name}" for i, f in enumerate(files)]
    assert [p.name for p, _ in summ.skipped] == ["deepscores-complete-01.json"]
    assert "truncated" in summ.skipped[0][1]
    msgs = [i.message for i in summ.issues if i.kind == "file_unreadable"]
    assert len(msgs) == 1 and "deepscores-complete-01.json" in msgs[0]
    good = [files[0], files[2]]
    pd.testing.assert_frame_equal(summ.class_stats(1024), class_stats(load_dataset(good), 1024), check_exact=True)


def test_interrupted_scan_resumes_from_the_cache(big_files: list[Path], tmp_path: Path) -> None:
    cache = ColumnarCache(tmp_path / "cache")

    def stop_after_first(done: int, total: int, name: str) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        summarize_files(big_files, cache=cache, progress=stop_after_first)
    again = summarize_files(big_files, cache=ColumnarCache(tmp_path / "cache"))
    assert (again.cached, again.parsed) == (1, 2)


def test_all_files_damaged_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "deepscores-complete-00.json"
    bad.write_text('{"images": [')
    with pytest.raises(OmrError, match="deepscores-complete-00.json"):
        summarize_files([bad], cache=ColumnarCache(tmp_path / "cache"))


def test_expand_sources_takes_folders_and_globs(big_files: list[Path]) -> None:
    folder = big_files[0].parent
    assert expand_sources([folder]) == big_files
    assert expand_sources([str(folder / "deepscores-complete-*")]) == big_files
    assert expand_sources([str(folder / "deepscores-complete-0[12].json")]) == big_files[1:]
    with pytest.raises(OmrError, match="no annotation file matches"):
        expand_sources([str(folder / "nothing-*")])


def test_omr_audit_on_a_glob_skips_a_damaged_file_and_reopens_from_the_cache(
    big_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from omr_core.cli import main

    files = _copy(big_files, tmp_path / "data")
    files[2].write_bytes(files[2].read_bytes()[:5000])
    pattern = str(tmp_path / "data" / "deepscores-complete-*")
    cache = str(tmp_path / "cache")
    assert main(["audit", pattern, "--cache", cache, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "read 1/3 deepscores-complete-00.json" in err and "read 3/3 deepscores-complete-02.json" in err
    assert "2 parsed, 1 skipped" in err
    rep = json.loads(out)
    assert any(i["kind"] == "file_unreadable" and "deepscores-complete-02.json" in i["message"] for i in rep["issues"])
    full = load_dataset(files[:2])
    assert rep["instances"] == len(full.data.annotations)
    assert rep["images"]["count"] == len(full.data.images)
    assert main(["audit", str(tmp_path / "data"), "--cache", cache, "--json"]) == 0  # a folder works too
    out2, err2 = capsys.readouterr()
    assert "2 from the cache, 0 parsed, 1 skipped" in err2
    assert json.loads(out2)["classes"] == rep["classes"]
