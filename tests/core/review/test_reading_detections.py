"""Reading from a detector's symbols: what a model without beam, stem or tie classes gives, duplicates, causes."""

from __future__ import annotations

import orjson
import pytest

from omr_core.datasets.synth import synth_dataset
from omr_core.evaluation.notes_score import notes_read_right
from omr_core.review.annotated_page import DeepScoresPage, load_deepscores_page
from omr_core.review.images import load_page
from omr_core.review.reading_pipeline import read_review

SEED = 37  # not a seed the reader was written against


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[DeepScoresPage]:
    out = tmp_path_factory.mktemp("readdet") / "clean"
    synth_dataset(out, pages=3, seed=SEED, test_fraction=0.0)
    js = out / "deepscores_train.json"
    return [load_deepscores_page(js, k) for k in range(len(orjson.loads(js.read_bytes())["images"]))]


def _beamed(page: DeepScoresPage) -> int:
    return sum(1 for g in page.glyphs if g.name == "beam")


def test_beams_are_counted_in_the_ink_when_the_symbols_have_no_beam_class(pages: list[DeepScoresPage]) -> None:
    """A detector trained without the beam class (the reference model): beamed notes keep their eighths and 16ths."""
    page = max(pages, key=_beamed)
    assert _beamed(page) >= 10
    gray = load_page(page.image).gray  # type: ignore[arg-type]
    dets = [g for g in page.glyphs if g.name not in ("stem", "ledgerLine", "beam")]
    score = notes_read_right(read_review(gray, dets), page.truth)
    assert score.notes > 100
    assert score.both_share >= 0.9, [(w.truth_quarter_length, w.read_quarter_length) for w in score.wrong][:10]


def test_a_key_accidental_in_the_middle_of_a_measure_is_not_a_key_change() -> None:
    """A detector's keySharp where a beam end crosses a stem (seen on held-out pages) must not replace the key."""
    from omr_core.review.reading import Glyph, read_page
    from tests.core.review.test_reading import STAFF, _head, _page_ink

    clef = Glyph((60, 70, 90, 210), "clefG")
    key = [Glyph((100, 50, 114, 100), "keySharp"), Glyph((118, 80, 132, 130), "keySharp")]  # F#5, C#5: D major
    stray = Glyph((650, 110, 670, 150), "keySharp")  # mid-measure, no clef or barline before it
    page = [clef, *key, stray, *_head(400, 8), *_head(800, 8), *_head(900, 5)]
    reading = read_page(page, [STAFF], binary=_page_ink(None))
    assert [n.pitch for n in reading.notes] == ["F#5", "F#5", "C#5"]


def test_a_key_change_after_a_barline_still_counts() -> None:
    from omr_core.review.reading import Glyph, read_page
    from tests.core.review.test_reading import STAFF, _head, _page_ink

    clef = Glyph((60, 70, 90, 210), "clefG")
    key = Glyph((100, 50, 114, 100), "keySharp")  # G major
    change = [Glyph((610, 40, 624, 100), "keyNatural"), Glyph((630, 105, 644, 155), "keyFlat")]  # F major after the bar
    page = [clef, key, *change, *_head(400, 8), *_head(800, 8), *_head(900, 4)]
    reading = read_page(page, [STAFF], binary=_page_ink(600))
    assert [n.pitch for n in reading.notes] == ["F#5", "F5", "Bb4"]


def test_a_duplicate_key_sharp_over_two_others_does_not_add_a_sharp() -> None:
    """A detector's third keySharp box overlapping the two real ones (seen on held-out pages) is one column too many."""
    from omr_core.review.reading import Glyph, read_page
    from tests.core.review.test_reading import STAFF, _head, _page_ink

    clef = Glyph((60, 70, 90, 210), "clefG")
    key = [Glyph((100, 50, 114, 100), "keySharp"), Glyph((118, 80, 132, 130), "keySharp")]  # D major
    dup = Glyph((104, 55, 126, 128), "keySharp")
    page = [clef, *key, dup, *_head(400, 2)]  # G4: G# only in A major
    reading = read_page(page, [STAFF], binary=_page_ink(None))
    assert [n.pitch for n in reading.notes] == ["G4"]


def test_overlapping_detections_of_two_notehead_classes_are_one_note() -> None:
    """Class-wise NMS keeps a noteheadBlackOnLine and a noteheadBlackInSpace on the same head: the less confident goes."""
    from omr_core.review.inference import Detection
    from omr_core.review.reading_pipeline import read_symbols
    from omr_core.review.staff import PageStaves, StaffMetrics, System
    from tests.core.review.test_reading import STAFF, _page_ink

    def det(box: tuple[float, float, float, float], name: str, conf: float) -> Detection:
        return Detection(box, name, conf, 0, "")

    ink = _page_ink(None)
    page = PageStaves((STAFF,), (System((0,), STAFF.x0, STAFF.x1, STAFF.top, STAFF.bottom),), StaffMetrics(2.0, 20.0), ink)
    dets = [
        det((60, 70, 90, 210), "clefG", 0.9),
        det((200, 150, 224, 170), "noteheadBlackInSpace", 0.9), det((201, 151, 225, 171), "noteheadBlackOnLine", 0.4),
        det((222, 90, 224, 160), "stem", 0.9),
        det((176, 140, 192, 180), "accidentalSharp", 0.8), det((177, 141, 193, 181), "accidentalNatural", 0.3),
    ]
    reading = read_symbols(None, dets, page=page)
    assert [n.pitch for n in reading.notes] == ["G#4"]
    assert any("2 duplicate detections" in m for m in reading.messages), reading.messages


def test_a_clef_box_off_the_staff_lines_is_not_a_clef_change() -> None:
    """A detector's clefCAlto between two staves (seen on held-out pages) must not change the clef of the nearer one."""
    from omr_core.review.reading import Glyph, read_page
    from tests.core.review.test_reading import STAFF, _head, _page_ink

    page = [Glyph((60, 70, 90, 210), "clefG"), Glyph((500, 195, 530, 245), "clefCAlto"), *_head(400, 2), *_head(700, 2)]
    reading = read_page(page, [STAFF], binary=_page_ink(None))
    assert [n.pitch for n in reading.notes] == ["G4", "G4"]


def test_a_small_clef_change_on_the_staff_still_counts() -> None:
    from omr_core.review.reading import Glyph, read_page
    from tests.core.review.test_reading import STAFF, _head, _page_ink

    page = [Glyph((60, 70, 90, 210), "clefG"), Glyph((500, 98, 530, 162), "clefF"), *_head(400, 2), *_head(700, 2)]
    reading = read_page(page, [STAFF], binary=_page_ink(None))
    assert [n.pitch for n in reading.notes] == ["G4", "B2"]


def test_a_tuplet_number_without_bracket_or_beam_boxes_spans_the_notes_under_it() -> None:
    """A detector with tuplet3 but no beam or bracket class: the three eighths under the number are the triplet."""
    from omr_core.review.reading import Glyph, read_page
    from tests.core.review.test_reading import STAFF, _head, _page_ink

    heads = [g for x in (300, 370, 440) for g in _head(x, 4)]
    ink = _page_ink(None)
    ink[70:77, 322:465] = True  # the beam joining the three stems (they end at y 70)
    for g in heads:
        if g.name == "stem":
            ink[int(g.bbox[1]) : int(g.bbox[3]), int(g.bbox[0]) : int(g.bbox[2])] = True
    number = Glyph((375, 70, 389, 90), "tuplet3")
    reading = read_page([Glyph((60, 70, 90, 210), "clefG"), *heads, number], [STAFF], binary=ink, beams_from_ink=True)
    assert [(n.type_name, n.tuplet) for n in reading.notes] == [("eighth", (3, 2))] * 3


def test_the_benchmark_detector_runs_the_model_as_trained(pages: list[DeepScoresPage]) -> None:
    """`omr bench read --model` must read the same detections as Review a score: tiled the way the shipped model
    was trained (640 px tiles at imgsz 320), not the whole page at imgsz 1024."""
    from omr_core.evaluation.reading_bench import model_detector
    from omr_core.review.inference import load_model
    from omr_core.review.pipeline import review_page
    from omr_core.workspace import REPO_ROOT

    weights = REPO_ROOT / "models" / "reading-v2.pt"
    page = pages[0]
    gray = load_page(page.image).gray  # type: ignore[arg-type]
    got = model_detector(weights)(page, gray)
    want = review_page(gray, model=load_model(weights)).detections
    assert len(want) > 100
    assert [(d.name, d.bbox) for d in got] == [(d.name, d.bbox) for d in want]


def test_each_wrong_note_is_explained_by_the_symbol_that_made_it_wrong(pages: list[DeepScoresPage]) -> None:
    """Detections = the page's own symbols minus one sharp and one bass clef: the notes they held are wrong, and
    the substitution says why (missed accidental, missed clef); nothing else is wrong."""
    from omr_core.evaluation.note_causes import explain_wrong_notes
    from omr_core.review.reading_pipeline import read_symbols

    page = max(pages, key=lambda p: sum(g.name.startswith("accidental") for g in p.glyphs))
    gray = load_page(page.image).gray  # type: ignore[arg-type]
    base = notes_read_right(read_symbols(gray, page.glyphs), page.truth)
    acc = next(g for g in page.glyphs if g.name == "accidentalSharp")
    # the first bass clef of the page: no system above lends its staff a clef, and treble is wrong for it
    clef = min((g for g in page.glyphs if g.name == "clefF"), key=lambda g: g.bbox[1])
    dets = [g for g in page.glyphs if g is not acc and g is not clef]
    score, explained = explain_wrong_notes(gray, dets, page.glyphs, page.truth)
    assert score.pitch_right < base.pitch_right
    causes = {e.pitch_cause for e in explained if e.wrong.read_pitch != e.wrong.truth_pitch}
    assert "missed accidental" in causes and "missed clef" in causes, causes
    assert causes <= {"missed accidental", "missed clef", "the reader (wrong from ground truth too)"}, causes
