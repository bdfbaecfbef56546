"""Hardening tests: print (and save) how many fuzz cases ran, per input family, with their outcomes."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ARTIFACTS
from tests.hardening.fuzzlib import CASES, OUTCOMES

# Run-folder and dataset writers shared with the training tests (real files, written the way the worker does).


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fuzz-case table at the end of the run; also test-artifacts/hardening/fuzz_counts.json."""
    if not CASES:
        return
    tr = terminalreporter
    tr.section("fuzz cases")
    for name in sorted(CASES):
        outcomes = ", ".join(f"{k} {v}" for k, v in OUTCOMES[name].most_common())
        tr.write_line(f"{name:<52} {CASES[name]:>5}  ({outcomes})")
    tr.write_line(f"{'total':<52} {sum(CASES.values()):>5}")
    out = ARTIFACTS / "hardening" / "fuzz_counts.json"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({k: {"cases": CASES[k], **OUTCOMES[k]} for k in sorted(CASES)}, indent=2) + "\n")
    except OSError:  # a read-only checkout still prints the table
        pass
