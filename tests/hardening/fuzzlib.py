"""Shared pieces of the hardening tests: the hypothesis profile, the fuzz-case counter, tree snapshots."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from omr_core.errors import OmrError

#: Examples per fuzzed input family. derandomize: CI sees the same cases on every run (and no example database);
#: deadline None: a slow shared CI core must not turn into a flaky "deadline exceeded".
FUZZ_EXAMPLES = 300
settings.register_profile(
    "hardening",
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
HARDENING = settings.get_profile("hardening")

#: Fuzz cases that ran, per family ("reader: input family" → cases), filled by `count_case`.
CASES: Counter[str] = Counter()
#: Outcomes per family: how many cases gave a result and how many each OmrError subclass.
OUTCOMES: dict[str, Counter[str]] = {}


def count_case(name: str, outcome: str) -> None:
    """Record one fuzz case of family ``name`` and its outcome (``result`` or the OmrError subclass name)."""
    CASES[name] += 1
    OUTCOMES.setdefault(name, Counter())[outcome] += 1


def outcome_of(name: str, call: Callable[[], Any], *, mentions: str | None = None) -> Any:
    """Run ``call``: a result, or an OmrError with a message (naming ``mentions`` when given); counts the case.

    Anything else (KeyError, ValueError, RecursionError, …) propagates and fails the property.
    Returns the result, or None after a clear error.
    """
    try:
        result = call()
    except OmrError as exc:
        text = str(exc)
        assert text.strip(), f"{type(exc).__name__} without a message"
        assert "Traceback" not in text
        if mentions is not None:
            assert mentions in text, f"the message should name {mentions!r}: {text[:300]}"
        count_case(name, type(exc).__name__)
        return None
    count_case(name, "result")
    return result


def tree_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → content): compare before/after to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def ran(name: str, prop: Callable[[], None]) -> int:
    """Run a hypothesis property and return how many cases of family ``name`` it counted."""
    before = CASES[name]
    prop()
    return CASES[name] - before


def scratch_dir(prefix: str) -> Path:
    """A temporary folder for one fuzz module (hypothesis rewrites files in it case after case), removed at exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path
