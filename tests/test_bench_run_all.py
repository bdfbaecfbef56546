"""`make bench` (python -m bench.run_all): every bench_*.py runs in its own process; one table, FAIL rows counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run_all


def test_run_all_collects_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bench_ok.py").write_text("def main():\n    return [{'figure': 'x', 'value': 1, 'target': '<= 2', 'ok': True}]\n")
    (tmp_path / "bench_broken.py").write_text("def main():\n    raise RuntimeError('boom')\n")
    (tmp_path / "helper.py").write_text("raise SystemExit('never imported')\n")
    assert run_all.main(["--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "| bench_ok | x | 1 | <= 2 | pass |" in out and "| bench_broken | run | exit status 1 | runs | FAIL |" in out
    assert "helper" not in out


def test_omr_cli_does_not_offer_the_repository_suite() -> None:
    from omr_core.cli import main

    with pytest.raises(SystemExit):
        main(["bench", "all"])
