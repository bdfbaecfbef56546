"""A page's reading as a music21 score: MusicXML and MIDI bytes, uncertain notes coloured, checked by verovio."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from omr_core.errors import OmrError
from omr_core.review.reading import Reading, ReadNote, ReadRest, measure_voices, value_at

#: Colour of notes the reading is not sure about (MusicXML ``color``, shown by verovio and MuseScore).
UNCERTAIN_COLOR = "#D62728"
_CLEFS = {"clefG": ("G", 2, 0), "clefF": ("F", 4, 0), "clefCAlto": ("C", 3, 0), "clefCTenor": ("C", 4, 0)}


class ExportError(OmrError):
    """A reading that music21 could not turn into MusicXML or MIDI."""


@dataclass(frozen=True)
class ExportCheck:
    """Whether an exported score opens again: in music21 (MusicXML parse) and in verovio (load + render)."""

    music21_ok: bool
    verovio_ok: bool
    message: str = ""


def to_score(reading: Reading, *, title: str = "") -> Any:
    """The reading as a ``music21.stream.Score``: one part per staff of a system, measures from the barlines.

    Systems with fewer staves than the score has parts get whole-measure rests in the missing parts.
    Notes are chords where they share a stem; a staff-measure where up- and down-stem notes sound together
    is split into two voices. Notes marked uncertain are coloured `UNCERTAIN_COLOR`.
    """
    from music21 import metadata, stream

    score = stream.Score()
    if title:
        score.metadata = metadata.Metadata(title=title)
    n_parts = reading.parts
    parts = [stream.Part(id=f"P{j + 1}") for j in range(n_parts)]
    last: list[dict[str, Any]] = [{} for _ in range(n_parts)]
    number = 0
    notes_at: dict[tuple[int, int, int], list[ReadNote]] = {}
    for n in reading.notes:
        notes_at.setdefault((n.system, n.part, n.measure), []).append(n)
    rests_at: dict[tuple[int, int, int], list[ReadRest]] = {}
    for r in reading.rests:
        rests_at.setdefault((r.system, r.part, r.measure), []).append(r)
    for k, sy in enumerate(reading.systems):
        bars = list(reading.barlines[k]) if k < len(reading.barlines) else []
        n_meas = len(bars) + 1
        used = [m for m in range(n_meas) if any((k, j, m) in notes_at or (k, j, m) in rests_at for j in range(n_parts))]
        if not used:
            continue
        for m in range(max(used) + 1):
            number += 1
            x_start = bars[m - 1] if m > 0 else sy.x0
            for j in range(n_parts):
                meas = stream.Measure(number=number)
                if j < len(sy.staves):
                    st = sy.staves[j]
                    _attributes(meas, reading, st, x_start, notes_at.get((k, j, m), []), last[j])
                    _fill(meas, notes_at.get((k, j, m), []), rests_at.get((k, j, m), []), last[j], reading.staves[st].y_at(2, x_start))
                else:
                    _measure_rest(meas, last[j])
                parts[j].append(meas)
    if not parts:
        parts = [stream.Part(id="P1")]
    for p in parts:
        if not p.getElementsByClass(stream.Measure):
            meas = stream.Measure(number=1)
            _measure_rest(meas, {})
            p.append(meas)
        score.insert(0, p)
    return score


def _attributes(meas: Any, reading: Reading, staff: int, x: float, notes: Sequence[ReadNote], last: dict[str, Any]) -> None:
    from music21 import clef, key, meter

    ctx = reading.contexts[staff]
    first_x = min((n.x for n in notes), default=x + reading.staves[staff].space)
    c = value_at(ctx.clefs, first_x) or "clefG"
    if last.get("clef") != c:
        base = c.split("+")[0].split("-")[0]
        sign, line, _ = _CLEFS.get(base, ("G", 2, 0))
        octave = 0
        if "+" in c or "-" in c:
            octave = (1 if "+" in c else -1) * (2 if c.endswith("15") else 1)
        cl = clef.clefFromString(f"{sign}{line}", octaveShift=octave)
        meas.insert(0, cl)
        last["clef"] = c
    f = value_at(ctx.keys, first_x) or 0
    if "key" not in last or last["key"] != f:
        meas.insert(0, key.KeySignature(f))
        last["key"] = f
    t = value_at(ctx.times, first_x)
    if t is not None and last.get("time") != t:
        meas.insert(0, meter.TimeSignature(f"{t[0]}/{t[1]}"))
        last["time"] = t


def _measure_rest(meas: Any, last: dict[str, Any]) -> None:
    from music21 import note

    t = last.get("time") or (4, 4)
    r = note.Rest(quarterLength=Fraction(4 * t[0], t[1]))
    r.fullMeasure = True
    meas.append(r)


def _fill(meas: Any, notes: Sequence[ReadNote], rests: Sequence[ReadRest], last: dict[str, Any], middle_y: float) -> None:
    from music21 import stream

    voices = measure_voices(notes, rests, middle_y)
    if not voices:
        _measure_rest(meas, last)
        return
    if len(voices) == 1:
        for ev in voices[0]:
            meas.append(_element(ev, last))
        return
    for v, evs in enumerate(voices, start=1):
        voice = stream.Voice(id=str(v))
        for ev in evs:
            voice.append(_element(ev, last))
        meas.insert(0, voice)


def _element(ev: tuple[float, str, Any], last: dict[str, Any]) -> Any:
    from music21 import chord, duration, note, pitch

    _, kind, obj = ev
    if kind == "rest":
        r: ReadRest = obj
        if r.measure_rest:
            t = last.get("time") or (4, 4)
            rest = note.Rest(quarterLength=Fraction(4 * t[0], t[1]))
            rest.fullMeasure = True
            return rest
        return note.Rest(quarterLength=r.quarter_length)
    heads: list[ReadNote] = sorted(obj, key=lambda n: n.position)
    first = heads[0]
    d = duration.Duration(type=first.type_name, dots=first.dots)
    if first.tuplet:
        d.appendTuplet(duration.Tuplet(first.tuplet[0], first.tuplet[1], durationNormal=first.type_name))
    pitches = []
    for n in heads:
        p = pitch.Pitch(f"{n.step or 'C'}{n.octave if n.octave is not None else 4}")
        if n.alter:
            p.accidental = pitch.Accidental(n.alter)
        pitches.append(p)
    el: Any = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(pitches)
    el.duration = d
    if first.stem in ("up", "down"):
        el.stemDirection = first.stem
    members = [el] if len(pitches) == 1 else list(el.notes)
    for member, n in zip(members, heads):
        if n.uncertain:
            member.style.color = UNCERTAIN_COLOR
    if first.grace:
        el = el.getGrace()
    return el


def musicxml_bytes(reading: Reading, *, title: str = "") -> bytes:
    """The reading as MusicXML (UTF-8 bytes).

    Raises:
        ExportError: When music21 cannot write it.
    """
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        return bytes(GeneralObjectExporter(to_score(reading, title=title)).parse())
    except Exception as exc:  # music21 raises many types; people need the reason, not the class
        raise ExportError(f"music21 could not write MusicXML for this reading: {exc}") from exc


def midi_bytes(reading: Reading) -> bytes:
    """The reading as a standard MIDI file.

    Raises:
        ExportError: When music21 cannot write it.
    """
    from music21.midi.translate import music21ObjectToMidiFile

    try:
        mf = music21ObjectToMidiFile(to_score(reading))
        return bytes(mf.writestr())
    except Exception as exc:
        raise ExportError(f"music21 could not write MIDI for this reading: {exc}") from exc


def _toolkit() -> Any:
    """A verovio toolkit with its resources found next to the module (the compiled-in default path can be a
    build folder that no longer exists, and then no font loads)."""
    from pathlib import Path

    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    tk = verovio.toolkit(False)
    tk.setResourcePath(str(Path(verovio.__file__).parent / "data"))
    return tk


def check_musicxml(data: bytes) -> ExportCheck:
    """Open exported MusicXML again in music21 and in verovio (load and render the first page)."""
    from music21 import converter

    msgs = []
    try:
        converter.parseData(data.decode("utf-8"), format="musicxml")
        m21 = True
    except Exception as exc:
        m21 = False
        msgs.append(f"music21: {exc}")
    tk = _toolkit()
    vok = bool(tk.loadData(data.decode("utf-8"))) and tk.getPageCount() > 0 and "<svg" in tk.renderToSVG(1)
    if not vok:
        msgs.append("verovio could not load or render it")
    return ExportCheck(m21, vok, "; ".join(msgs))


def system_reading(reading: Reading, system: int) -> Reading:
    """The part of a reading on one system (renumbered as system 0), to render a system on its own."""
    import dataclasses

    return dataclasses.replace(
        reading,
        systems=(reading.systems[system],),
        barlines=(reading.barlines[system],) if system < len(reading.barlines) else ((),),
        notes=tuple(dataclasses.replace(n, system=0) for n in reading.notes if n.system == system),
        rests=tuple(dataclasses.replace(r, system=0) for r in reading.rests if r.system == system),
    )


def verovio_svg(data: bytes, *, width: int = 2400, scale: int = 35) -> str:
    """MusicXML rendered by verovio as one SVG (everything on one page, no line breaks).

    Raises:
        ExportError: When verovio cannot load it.
    """

    tk = _toolkit()
    tk.setOptions({"pageWidth": width * 100 // scale, "scale": scale, "adjustPageHeight": True, "breaks": "none", "header": "none", "footer": "none"})
    if not tk.loadData(data.decode("utf-8")) or tk.getPageCount() == 0:
        raise ExportError("verovio could not load the MusicXML of this reading")
    return str(tk.renderToSVG(1))
