"""The big-audit benchmark at a small scale (CI keeps this; the one-tenth run is `python -m bench.bench_big_audit`)."""

from __future__ import annotations

from pathlib import Path

from bench.bench_big_audit import main


def test_small_scale_benchmark_runs_and_reopens_without_parsing(tmp_path: Path) -> None:
    rows = main(["--scale", "0.0002", "--data", str(tmp_path), "--convert", "0"])
    by = {r["figure"]: r for r in rows}
    assert by["scale (of the complete set), files"]["value"] == "0.0002, 2"
    assert int(by["annotations"]["value"].replace(",", "")) >= 30_000
    reopen = by["reopen from the cache (wall)"]
    assert "0 parsed" in reopen["value"] and reopen["ok"], reopen
    assert by["audit peak RSS"]["ok"]
    assert [r["ok"] for r in rows if r["figure"].startswith("identical to the full reader")] == [True]
    assert len(list((tmp_path / "scale-0.0002").glob("deepscores-complete-*.json"))) == 2
