"""The engraver records, for every notehead, the pitch and duration of the note it was engraved from."""

from __future__ import annotations

import re

import pytest

from omr_core.datasets.synth import _toolkit, engrave_job

_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_PITCH = re.compile(r"pitch:([A-G])(#*|b*)(-?\d);")


def _midi(comment: str) -> int:
    m = _PITCH.search(comment)
    assert m, f"no pitch in {comment!r}"
    step, acc, octave = m.groups()
    alter = len(acc) if acc.startswith("#") else -len(acc)
    return 12 * (int(octave) + 1) + _STEP[step] + alter


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_every_notehead_carries_the_pitch_verovio_plays(index: int) -> None:
    """The comment's pitch is checked against verovio's own MIDI rendering of the note (a second path)."""
    checked = 0
    for page in engrave_job(5, index, 0.5):
        tk = _toolkit()  # still holds this job's piece while the generator is suspended
        tk.renderToTimemap()
        heads = [s for s in page.classified.symbols if s.name.startswith("notehead")]
        assert heads
        for sym in heads:
            note = re.search(r"note:([^;]+);", sym.comment)
            assert note, sym.comment
            midi = tk.getMIDIValuesForElement(note.group(1))
            if sym.comment.count("grace:") or not midi:
                continue  # grace notes may be left out of verovio's MIDI
            assert _midi(sym.comment) == midi["pitch"], (page.meta["piece"], sym.comment, midi)
            assert re.search(r"duration:[0-9]+\.*(\*\d+/\d+)?;", sym.comment)
            checked += 1
    assert checked > 20
