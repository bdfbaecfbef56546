"""The real pieces the engraver draws from: music21's bundled corpus, grouped by texture."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from omr_core.errors import OmrError

#: Texture -> (weight, glob patterns relative to music21's corpus folder). Paths that are missing from
#: an install are skipped; the weights say how often a page comes from each texture.
TEXTURES: dict[str, tuple[float, tuple[str, ...]]] = {
    "chorale": (0.22, ("bach/bwv*.mxl",)),
    "string quartet": (
        0.30,
        (
            "haydn/opus*/movement*.mxl",
            "mozart/k80/*.mxl",
            "mozart/k155/*.mxl",
            "mozart/k156/*.mxl",
            "mozart/k458/*.mxl",
            "beethoven/opus18no1/movement*.mxl",
            "beethoven/opus18no[345].mxl",
            "beethoven/opus59no*/movement*.mxl",
            "beethoven/opus74.mxl",
            "beethoven/opus132.mxl",
            "schumann_robert/opus41no1/movement*.mxl",
        ),
    ),
    "piano": (
        0.26,
        (
            "joplin/*.mxl",
            "schumann_clara/polonaise_op1n*.mxl",
            "schumann_clara/opus17/*.xml",
            "mozart/k545/*.mxl",
            "schoenberg/opus19/*.mxl",
            "chopin/*.krn",
            "cpebach/*.mxl",
        ),
    ),
    "song": (
        0.22,
        (
            "schumann_robert/dichterliebe_no2.xml",
            "schumann_robert/opus48no2.mxl",
            "schubert/Lindenbaum.xml",
            "verdi/*.mxl",
            "handel/rinaldo/*.mxl",
            "liliuokalani/*.mxl",
            "johnson_j_r/*.mxl",
            "beach/*.musicxml",
            "leadSheet/*.mxl",
            "webern/*.mxl",
            "monteverdi/madrigal.[34].*.mxl",
            "weber/*.mxl",
            "corelli/opus3no1/*.xml",
        ),
    ),
}


class CorpusError(OmrError):
    """The music21 corpus is missing or a piece in it cannot be read."""


@dataclass(frozen=True)
class Piece:
    """One corpus piece the engraver can render.

    Attributes:
        path: Path relative to music21's corpus folder (``"bach/bwv66.6.mxl"``).
        texture: Key of `TEXTURES`.
    """

    path: str
    texture: str

    @property
    def composer(self) -> str:
        """The corpus folder, which music21 names after the composer."""
        return self.path.split("/", 1)[0]


def corpus_root() -> Path:
    """The folder of music21's bundled corpus."""
    try:
        import music21
    except ImportError as exc:  # pragma: no cover - music21 is a dependency
        raise CorpusError("music21 is not installed: `pip install music21` (it ships the corpus we engrave)") from exc
    root = Path(music21.__file__).parent / "corpus"
    if not root.is_dir():
        raise CorpusError(f"music21's corpus folder is missing ({root}); reinstall music21")
    return root


@lru_cache(maxsize=1)
def catalogue() -> dict[str, tuple[Piece, ...]]:
    """Pieces present in this install, per texture (textures with no piece are left out)."""
    root = corpus_root()
    out: dict[str, tuple[Piece, ...]] = {}
    for texture, (_weight, patterns) in TEXTURES.items():
        found: set[str] = set()
        for pattern in patterns:
            found.update(p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file())
        if found:
            out[texture] = tuple(Piece(p, texture) for p in sorted(found))
    if not out:
        raise CorpusError(f"no engravable piece found under {root}; is music21's corpus complete?")
    return out


def read_piece(piece: Piece) -> str:
    """The piece's text as verovio loads it (MusicXML, unzipped from ``.mxl``, or Humdrum).

    Raises:
        CorpusError: The file is missing or not readable.
    """
    path = corpus_root() / piece.path
    try:
        if path.suffix == ".mxl":
            with zipfile.ZipFile(path) as z:
                return decode_score(z.read(_mxl_rootfile(z)))
        return decode_score(path.read_bytes())
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise CorpusError(f"cannot read corpus piece {piece.path}: {exc}") from exc


def _mxl_rootfile(z: zipfile.ZipFile) -> str:
    """The score inside a compressed MusicXML archive (from META-INF/container.xml when present)."""
    names = z.namelist()
    if "META-INF/container.xml" in names:
        m = re.search(rb'full-path="([^"]+)"', z.read("META-INF/container.xml"))
        if m and m.group(1).decode() in names:
            return m.group(1).decode()
    scores = [n for n in names if not n.startswith("META-INF") and n.endswith((".xml", ".musicxml"))]
    if not scores:
        raise KeyError("no MusicXML file inside the archive")
    return scores[0]


_PART = re.compile(r"(<part\b[^>]*>)(.*?)(</part>)", re.S)
_MEASURE = re.compile(r"<measure\b[^>]*?(?:/>|>.*?</measure>)", re.S)
_ATTRIBUTES = re.compile(r"<attributes\b[^>]*>(.*?)</attributes>", re.S)
_ATTR_CHILD = re.compile(
    r"<(divisions|key|time|staves|part-symbol|instruments|clef|staff-details|transpose)\b([^>]*?)(?:/>|>.*?</\1>)", re.S
)
_NUMBER = re.compile(r'number="([^"]*)"')
#: MusicXML's order of the children of <attributes>.
_ATTR_ORDER = ("divisions", "key", "time", "staves", "part-symbol", "instruments", "clef", "staff-details", "transpose")


def decode_score(raw: bytes) -> str:
    """Decode a MusicXML/Humdrum file (UTF-8, or UTF-16 with a byte-order mark as some corpus files are)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    # the text is handed over already decoded: a stale encoding declaration would mislead the parser
    return re.sub(r"(<\?xml[^>]*?)\s+encoding=['\"][^'\"]*['\"]", r"\1", text, count=1)


def measure_count(xml: str) -> int:
    """Measures in the first part of a partwise MusicXML score (0 when it is not one)."""
    m = _PART.search(xml)
    return len(_MEASURE.findall(m.group(2))) if m else 0


def excerpt(xml: str, start: int, count: int) -> str:
    """Cut measures ``[start, start + count)`` out of a partwise MusicXML score.

    Clef, key, time, divisions and the other attributes in force at ``start`` are carried into the first
    kept measure, so the excerpt engraves as the same music. Spanners that cross the cut (slurs, ties,
    hairpins) lose their other end, as they do in any excerpt. Scores that are not partwise MusicXML are
    returned unchanged.

    Args:
        xml: The MusicXML text.
        start: First measure to keep (0-based, in file order).
        count: Number of measures to keep.

    Returns:
        The shortened MusicXML text.
    """
    if "<score-partwise" not in xml[:5000]:
        return xml

    def cut(part: re.Match[str]) -> str:
        body = part.group(2)
        measures = list(_MEASURE.finditer(body))
        if not measures or start <= 0 and count >= len(measures):
            return part.group(0)
        carried: dict[tuple[str, str], str] = {}
        for m in measures[:start]:
            for attrs in _ATTRIBUTES.finditer(m.group(0)):
                for child in _ATTR_CHILD.finditer(attrs.group(1)):
                    num = _NUMBER.search(child.group(2))
                    carried[(child.group(1), num.group(1) if num else "")] = child.group(0)
        kept = [m.group(0) for m in measures[start : start + count]]
        if kept and carried:
            block = "".join(carried[k] for k in sorted(carried, key=lambda k: (_ATTR_ORDER.index(k[0]), k[1])))
            open_end = kept[0].index(">") + 1
            kept[0] = f"{kept[0][:open_end]}<attributes>{block}</attributes>{kept[0][open_end:]}"
        head = body[: measures[0].start()]
        tail = body[measures[-1].end() :]
        return f"{part.group(1)}{head}{''.join(kept)}{tail}{part.group(3)}"

    return _PART.sub(cut, xml)


_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
_FIFTHS = re.compile(r"<fifths>\s*(-?\d+)\s*</fifths>")
_PITCH_PARTS = re.compile(
    r"<pitch>\s*<step>([A-G])</step>\s*(?:<alter>\s*(-?[\d.]+)\s*</alter>\s*)?<octave>(\d+)</octave>\s*</pitch>", re.S
)
_ACCIDENTAL_NAMES = {-2: "flat-flat", -1: "flat", 0: "natural", 1: "sharp", 2: "double-sharp"}
#: Children of <note> that follow <accidental> in MusicXML's order (the accidental goes before the first).
_AFTER_ACCIDENTAL = re.compile(r"<(time-modification|stem|notehead|notehead-text|staff|beam|notations|lyric|play|listen)\b")


def _key_alter(fifths: int, step: str) -> int:
    order = "FCGDAEB" if fifths > 0 else "BEADGCF"
    return (1 if fifths > 0 else -1) if step in order[: abs(fifths)] else 0


def spell_accidentals(xml: str) -> str:
    """Write out the accidentals a partwise MusicXML score implies but does not spell.

    Some corpus files give a note's ``<alter>`` without an ``<accidental>``, leaving it to the renderer;
    verovio then draws an F where the music has an F sharp, and the page no longer shows its own pitches.
    A note gets an accidental when its alteration differs from what the key signature and the earlier
    accidentals of its measure and staff (same step and octave) give it; tied continuations are left alone.
    Scores that are not partwise MusicXML are returned unchanged.
    """
    if "<score-partwise" not in xml[:5000]:
        return xml

    def part(m: re.Match[str]) -> str:
        fifths = 0

        def measure(mm: re.Match[str]) -> str:
            nonlocal fifths
            held: dict[tuple[str, str, str], int] = {}

            def note(nm: re.Match[str]) -> str:
                nonlocal fifths
                text = nm.group(0)
                p = _PITCH_PARTS.search(text)
                if p is None:
                    return text
                step, alter_text, octave = p.groups()
                alter = int(round(float(alter_text))) if alter_text else 0
                staff = re.search(r"<staff>\s*(\d+)\s*</staff>", text)
                key = (staff.group(1) if staff else "1", step, octave)
                expected = held.get(key, _key_alter(fifths, step))
                if "<accidental" in text:
                    held[key] = alter
                    return text
                if alter == expected or '<tie type="stop"' in text or alter not in _ACCIDENTAL_NAMES:
                    return text
                held[key] = alter
                acc = f"<accidental>{_ACCIDENTAL_NAMES[alter]}</accidental>"
                after = _AFTER_ACCIDENTAL.search(text)
                at = after.start() if after else text.rindex("</note>")
                return text[:at] + acc + text[at:]

            out = []
            pos = 0
            body = mm.group(0)
            # a key change inside the measure applies to the notes after it
            for k in _FIFTHS.finditer(body):
                out.append(_NOTE.sub(note, body[pos : k.start()]))
                fifths = int(k.group(1))
                out.append(body[k.start() : k.end()])
                pos = k.end()
            out.append(_NOTE.sub(note, body[pos:]))
            return "".join(out)

        return f"{m.group(1)}{_MEASURE.sub(measure, m.group(2))}{m.group(3)}"

    return _PART.sub(part, xml)
