"""`convert_files`: many files in worker processes give the same verified dataset as one conversion, atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.make_big_deepscores import link_page_images, make_big_deepscores
from omr_core.audit.convert import ConvertError, ConvertOptions, convert
from omr_core.audit.convert_files import convert_files
from omr_core.audit.plan import make_plan
from omr_core.datasets.columnar import ColumnarCache
from omr_core.datasets.discovery import load_dataset


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("complete")
    out = [make_big_deepscores(root / f"deepscores-complete-0{i}.json", 6_000, seed=10 + i, per_page=500) for i in range(3)]
    for f in out:
        link_page_images(f)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.txt"))}


def test_parallel_conversion_equals_the_single_conversion(files: list[Path], tmp_path: Path) -> None:
    full = load_dataset(files)
    plan = make_plan(full.names, ["stem", "ledgerLine"])
    opts = ConvertOptions(val_from="split", seed=3)
    seen: list[tuple[int, int]] = []
    many = convert_files(files, tmp_path / "many", plan, opts, workers=2, cache=ColumnarCache(tmp_path / "cache"),
                         progress=lambda d, t: seen.append((d, t)))
    one = convert(full, tmp_path / "one", plan, opts)
    assert many.verification.ok and one.verification.ok
    assert many.counts == one.counts and many.split_images == one.split_images and many.labels == one.labels
    assert many.fixes == one.fixes
    assert _tree(tmp_path / "many") == _tree(tmp_path / "one")
    assert (tmp_path / "many" / "data.yaml").read_text() == (tmp_path / "one" / "data.yaml").read_text()
    n = len(full.data.images)
    assert seen[-1] == (n + 1, n + 1) and len(seen) == len(files) + 1
    assert not [p for p in tmp_path.iterdir() if ".omr-tmp-" in p.name]


def test_a_failing_file_leaves_nothing_at_out(files: list[Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    copies = []
    for f in files:
        (data / f.name).write_bytes(f.read_bytes())
        copies.append(data / f.name)
    for img in (files[0].parent / "images").iterdir():
        (data / "images" / img.name).hardlink_to(img)
    victim = next((data / "images").iterdir())  # one page image of some file goes missing: that worker fails
    victim.unlink()
    plan = make_plan(load_dataset(copies[:1]).names, [])
    with pytest.raises(ConvertError, match="page images are missing"):
        convert_files(copies, tmp_path / "out", plan, ConvertOptions(val_from="split"), workers=2, cache=ColumnarCache(tmp_path / "c"))
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".omr-tmp-" in p.name]


def test_a_damaged_file_stops_the_conversion_by_name(files: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "deepscores-complete-09.json"
    bad.write_bytes(files[0].read_bytes()[:4000])
    plan = make_plan(load_dataset(files[:1]).names, [])
    with pytest.raises(ConvertError, match="deepscores-complete-09.json"):
        convert_files([*files, bad], tmp_path / "out", plan, ConvertOptions(val_from="split"), cache=ColumnarCache(tmp_path / "c"))
    assert not (tmp_path / "out").exists()


def test_omr_convert_on_a_glob_runs_in_workers(files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from omr_core.cli import main

    pattern = str(files[0].parent / "deepscores-complete-*")
    out = tmp_path / "yolo"
    assert main(["convert", pattern, str(out), "--val-from", "split", "--exclude", "stem", "--cache", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    assert "converting 3 files in 2 worker processes" in text
    single = tmp_path / "single"
    full = load_dataset(files)
    convert(full, single, make_plan(full.names, ["stem"]), ConvertOptions(val_from="split"))
    assert _tree(out) == _tree(single)
    assert "parallel: 3 files in 2 worker processes" in (out / "convert.log").read_text()


def test_verification_reads_labels_in_bounded_memory(tmp_path: Path) -> None:
    """Re-reading 240,000 labels must not hold them all as Python strings at once (4.3 GB at one tenth of complete)."""
    import tracemalloc

    import numpy as np

    from omr_core.audit.convert import _read_label_counts

    rng = np.random.default_rng(0)
    rels = []
    for i in range(240):
        cls = rng.integers(0, 7, 1000)
        xywh = rng.uniform(0.1, 0.5, (1000, 4))
        (tmp_path / f"p{i}.txt").write_text("".join(f"{c} {a:.6f} {b:.6f} {w:.6f} {h:.6f}\n" for c, (a, b, w, h) in zip(cls, xywh)))
        rels.append(f"p{i}.txt")
    tracemalloc.start()
    found, per_file, problems = _read_label_counts(tmp_path, rels, 7)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert problems == [] and int(found.sum()) == 240_000 and set(per_file.values()) == {1000}
    assert peak < 30 << 20, f"peak {peak / 2**20:.0f} MB of Python allocations while counting labels"
    (tmp_path / "p239.txt").write_text("7 0.5 0.5 0.1 0.1\n")  # a bad class index in the last file is still found
    assert "class indices outside 0..6" in _read_label_counts(tmp_path, rels, 7)[2]
