"""Fuzz the reconstruct/heads JSON reader (`omr reconstruct --noteheads heads.json`).

Property: any file gives a validated notehead list or a `DataFormatError` naming the file; never another
exception. Then the validated list goes through reconstruction on a real (small, blank-staff) page.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from omr_core.commands.reconstruct import read_noteheads
from omr_core.review.reconstruct import reconstruct
from tests.hardening.fuzzlib import FUZZ_EXAMPLES, HARDENING, outcome_of, ran, scratch_dir

_TMP = scratch_dir("omr-fuzz-heads-")
_NAMES = st.one_of(
    st.sampled_from(["noteheadBlackOnLine", "noteheadHalfInSpace", "noteheadWholeOnLine", "clefG", "stem", ""]),
    st.text(max_size=10),
    st.integers(),
    st.none(),
)
_NUM = st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=4), st.none())
_BBOX = st.one_of(st.lists(_NUM, min_size=0, max_size=6), _NUM, st.dictionaries(st.text(max_size=3), _NUM, max_size=2))
_ITEM = st.one_of(
    st.fixed_dictionaries({"bbox": _BBOX, "name": _NAMES}),
    st.dictionaries(st.text(max_size=5), st.one_of(_NUM, _BBOX), max_size=3),
    _NUM,
)
_DOC = st.one_of(st.lists(_ITEM, max_size=8), _ITEM, st.dictionaries(st.text(max_size=4), _ITEM, max_size=2))

# A small page with one five-line staff, so reconstruction has real staff evidence to work with.
_PAGE = np.full((160, 400), 255, np.uint8)
for _y in range(40, 90, 10):
    _PAGE[_y : _y + 2, 10:390] = 0


def _check_file(name: str, data: bytes) -> None:
    path = _TMP / "heads.json"
    path.write_bytes(data)
    heads = outcome_of(name, lambda: read_noteheads(str(path)), mentions="heads.json")
    if heads is not None:
        outcome_of(f"{name} → reconstruct", lambda: reconstruct(_PAGE, heads))


@settings(HARDENING)
@given(_DOC)
@example([{"bbox": [1e308, -1e308, float("nan"), 3], "name": "noteheadBlackOnLine"}])
@example([{"bbox": [50, 45, 40, 55], "name": "noteheadBlackOnLine"}])  # x1 < x0
def _documents(doc: Any) -> None:
    _check_file("heads.json: JSON documents", json.dumps(doc, allow_nan=True).encode())


@settings(HARDENING)
@given(st.binary(max_size=200))
@example(b"")
@example(b'[{"bbox": [1, 2, 3')
def _bytes(data: bytes) -> None:
    _check_file("heads.json: arbitrary bytes", data)


_HEAD_NAMES = st.sampled_from(
    ["noteheadBlackOnLine", "noteheadBlackInSpace", "noteheadHalfOnLine", "noteheadWholeInSpace",
     "noteheadDoubleWholeOnLine", "noteheadBlackOnLineSmall"]
)
_BOX = st.tuples(st.integers(-50, 450), st.integers(-50, 200), st.integers(0, 40), st.integers(0, 30)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)
_VALID = st.lists(st.fixed_dictionaries({"bbox": _BOX, "name": _HEAD_NAMES}), max_size=12)


@settings(HARDENING)
@given(_VALID)
@example([{"bbox": [200, 46, 212, 54], "name": "noteheadBlackInSpace"}] * 3)  # a chord of identical heads
@example([{"bbox": [-40, -40, -30, -30], "name": "noteheadBlackOnLine"}])  # off the page
def _plausible(doc: Any) -> None:
    _check_file("heads.json: plausible noteheads", json.dumps(doc).encode())


def test_fuzz_heads_plausible_noteheads_reach_reconstruction() -> None:
    assert ran("heads.json: plausible noteheads", _plausible) >= FUZZ_EXAMPLES * 0.9
    from tests.hardening.fuzzlib import CASES

    assert CASES["heads.json: plausible noteheads → reconstruct"] >= FUZZ_EXAMPLES * 0.3


def test_fuzz_heads_documents() -> None:
    assert ran("heads.json: JSON documents", _documents) >= FUZZ_EXAMPLES * 0.9


def test_fuzz_heads_bytes() -> None:
    assert ran("heads.json: arbitrary bytes", _bytes) >= FUZZ_EXAMPLES * 0.9
