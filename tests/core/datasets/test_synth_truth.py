"""The engraver records, for every notehead, the pitch and duration of the note it was engraved from."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest

from omr_core.datasets.synth import _toolkit, engrave_job
from omr_core.datasets.synth_corpus import spell_accidentals

MEI = "{http://www.music-encoding.org/ns/mei}"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
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


def _quarters(text: str) -> Fraction:
    m = re.fullmatch(r"(\d+)(\.*)(?:\*(\d+)/(\d+))?", text)
    assert m, text
    ql = Fraction(4, int(m.group(1))) * (2 - Fraction(1, 2 ** len(m.group(2))))
    return ql * Fraction(int(m.group(3)), int(m.group(4))) if m.group(3) else ql


def _mei_quarters(mei: str) -> dict[str, Fraction]:
    """Note id -> length in quarter notes, from the MEI's own ticks (``dur.ppq`` / the staff's ``ppq``)."""
    root = ET.fromstring(mei)
    ppq = {sd.get("n"): int(sd.get("ppq", "0")) for sd in root.iter(f"{MEI}staffDef") if sd.get("ppq")}
    out: dict[str, Fraction] = {}
    for staff in root.iter(f"{MEI}staff"):
        q = ppq.get(staff.get("n"))
        if not q:
            continue
        for el in staff.iter():
            if el.tag in (f"{MEI}chord", f"{MEI}note") and el.get("dur.ppq"):
                ticks = Fraction(int(el.get("dur.ppq", "0")), q)
                for n in [el] if el.tag == f"{MEI}note" else el.iter(f"{MEI}note"):
                    out[n.get(XML_ID, "")] = ticks
    return out


def test_durations_carry_triplets_that_have_no_drawn_tuplet() -> None:
    """Seed 29 job 28 (Beethoven op. 59/1) times notes as triplets without a tuplet to draw: the
    duration comment must still say ``*2/3``, as the MEI's ticks do."""
    checked = triplets = 0
    for page in engrave_job(29, 28, 0.5, with_mei=True):
        ticks = _mei_quarters(page.meta["mei"])
        for sym in page.classified.symbols:
            note = re.search(r"note:([^;]+);", sym.comment)
            dur = re.search(r"duration:([^;]+);", sym.comment)
            if not note or not dur or "grace:" in sym.comment or note.group(1) not in ticks:
                continue
            assert _quarters(dur.group(1)) == ticks[note.group(1)], sym.comment
            checked += 1
            triplets += "*2/3" in dur.group(1)
    assert checked > 100 and triplets > 50


def _mxl(fifths: int, measures: list[list[tuple[str, int, bool]]]) -> str:
    body = ""
    for i, notes in enumerate(measures, start=1):
        attrs = f"<attributes><divisions>1</divisions><key><fifths>{fifths}</fifths></key></attributes>" if i == 1 else ""
        ns = "".join(
            f"<note><pitch><step>{s}</step>{f'<alter>{a}</alter>' if a else ''}<octave>4</octave></pitch><duration>1</duration>"
            f"<type>quarter</type>{'<accidental>sharp</accidental>' if shown else ''}<stem>up</stem></note>"
            for s, a, shown in notes
        )
        body += f'<measure number="{i}">{attrs}{ns}</measure>'
    return f'<?xml version="1.0"?><score-partwise><part-list/><part id="P1">{body}</part></score-partwise>'


def test_accidentals_the_source_leaves_to_the_renderer_are_written_out() -> None:
    xml = _mxl(0, [[("F", 1, False), ("F", 1, False), ("G", 0, False)], [("F", 1, False), ("F", 0, False)]])
    out = spell_accidentals(xml)
    measures = re.findall(r"<measure.*?</measure>", out)
    assert [m.count("<accidental>sharp") for m in measures] == [1, 1]
    assert measures[1].count("<accidental>natural") == 1  # F after F# in the same measure
    assert out.index("<accidental>") < out.index("<stem>")  # MusicXML's order inside <note>


def test_accidentals_implied_by_the_key_or_already_shown_are_left_alone() -> None:
    xml = _mxl(1, [[("F", 1, False), ("F", 1, True)], [("C", 0, False)]])
    assert spell_accidentals(xml) == xml
