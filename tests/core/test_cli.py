"""The `omr` console script: help lists verbs, errors are messages with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

from omr_core.cli import main


def test_help_lists_verbs(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "classes" in out


def test_console_script_runs() -> None:
    res = subprocess.run([sys.executable, "-m", "omr_core.cli", "--help"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "usage: omr" in res.stdout


def test_classes_resolve_json(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["classes", "6", "legerLine", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["clefG", "ledgerLine"]
    assert rows[0]["critical"] is True


def test_unknown_class_is_a_message(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["classes", "clefQ"]) == 2
    err = capsys.readouterr().err
    assert "clefQ" in err and "clefG" in err and "Traceback" not in err


def test_classes_prints_the_count_the_readme_promises(capsys) -> None:  # type: ignore[no-untyped-def]
    import re
    from pathlib import Path

    assert main(["classes", "--json"]) == 0
    deepscores = json.loads(capsys.readouterr().out)
    assert len(deepscores) == 136 and deepscores[0]["id"] == 1 and deepscores[-1]["id"] == 136
    assert main(["classes", "--all", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert len(every) == 208 and {r["id"] for r in every} == set(range(1, 209))
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `omr classes"))
    claimed = {int(n) for n in re.findall(r"\b(\d{3})\b", row)}
    assert claimed == {136, 208}, row  # what it prints by default, and with --all
    assert "--all" in row
