"""Stem and ledger-line reconstruction: drawn notes with known ink, the engraving-rule fallback, engraved pages."""

from __future__ import annotations

import numpy as np
import pytest

from omr_core.errors import DataFormatError
from omr_core.review.reconstruct import Notehead, parse_noteheads, reconstruct
from tests.core.review.recon_fixtures import draw_page, engraved, ledger, notehead, stem

SP = 20
# draw_page(tops=(300,)): line centres 301, 321, 341, 361, 381 (middle line 341).
TOP = 300


def _page():  # type: ignore[no-untyped-def]
    return draw_page(tops=(TOP,), join=(), space=SP)


def test_stem_up_on_the_right_ends_where_the_ink_ends() -> None:
    p = _page()
    box = notehead(p.gray, 400, 371, SP)
    stem(p.gray, int(box[2]) - 2, 300, 368)
    rec = reconstruct(p.gray, [{"bbox": box, "name": "noteheadBlackInSpace"}])
    assert len(rec.stems) == 1
    s = rec.stems[0]
    assert s.direction == "up" and s.source == "ink" and s.noteheads == (0,)
    assert abs(s.bbox[0] - (box[2] - 2)) <= 1 and abs(s.bbox[2] - box[2]) <= 1
    assert abs(s.bbox[1] - 300) <= 1
    assert abs(s.bbox[3] - (371 - 0.15 * SP)) <= 2


def test_ink_beats_the_rule() -> None:
    p = _page()
    box = notehead(p.gray, 400, 371, SP)  # below the middle line: the rule would say "up"
    stem(p.gray, int(box[0]), 374, 440)
    (s,) = reconstruct(p.gray, [Notehead(box, "noteheadBlackInSpace")]).stems
    assert s.direction == "down" and s.source == "ink"
    assert abs(s.bbox[3] - 440) <= 1 and abs(s.bbox[0] - box[0]) <= 1


@pytest.mark.parametrize(("cy", "up"), [(371, True), (331, False), (341, False)])
def test_rule_fallback_without_ink(cy: int, up: bool) -> None:
    p = _page()
    box = notehead(p.gray, 400, cy, SP)
    (s,) = reconstruct(p.gray, [Notehead(box, "noteheadHalfInSpace" if cy != 341 else "noteheadHalfOnLine")]).stems
    assert s.source == "rule"
    assert s.direction == ("up" if up else "down")
    length = s.bbox[3] - s.bbox[1]
    assert abs(length - (3.5 - 0.15) * SP) < 2


def test_whole_notes_get_no_stem() -> None:
    p = _page()
    box = notehead(p.gray, 400, 371, SP, filled=False)
    rec = reconstruct(p.gray, [Notehead(box, "noteheadWholeInSpace"), Notehead(box, "noteheadDoubleWholeInSpace")])
    assert rec.stems == ()


def test_chord_shares_one_stem() -> None:
    p = _page()
    low = notehead(p.gray, 400, 371, SP)
    high = notehead(p.gray, 400, 331, SP)
    stem(p.gray, int(low[2]) - 2, 270, 368)
    rec = reconstruct(p.gray, [Notehead(low, "noteheadBlackInSpace"), Notehead(high, "noteheadBlackInSpace")])
    assert len(rec.stems) == 1
    s = rec.stems[0]
    assert s.noteheads == (0, 1) and s.direction == "up"
    assert abs(s.bbox[1] - 270) <= 1
    assert s.bbox[3] > 365  # reaches the lower notehead


def test_beamed_notes_end_at_the_beam() -> None:
    p = _page()
    a = notehead(p.gray, 400, 371, SP)
    b = notehead(p.gray, 460, 361, SP)
    # Beam from x of a's stem to b's stem, 8 px thick, top at row 295.
    p.gray[295:303, int(a[2]) - 2 : int(b[2])] = 0
    stem(p.gray, int(a[2]) - 2, 295, 368)
    stem(p.gray, int(b[2]) - 2, 295, 358)
    rec = reconstruct(p.gray, [Notehead(a, "noteheadBlackInSpace"), Notehead(b, "noteheadBlackOnLine")])
    assert len(rec.stems) == 2
    assert all(abs(s.bbox[1] - 295) <= 1 and s.direction == "up" for s in rec.stems)


def test_ledger_lines_below_the_staff() -> None:
    p = _page()
    cy = 381 + 2 * SP  # on the second ledger line below
    box = notehead(p.gray, 400, cy, SP)
    x0, x1 = int(box[0]) - 6, int(box[2]) + 6
    ledger(p.gray, x0, x1, 400)  # centre 401
    ledger(p.gray, x0, x1, 420)  # centre 421
    stem(p.gray, int(box[2]) - 2, cy - 70, cy - 3)
    rec = reconstruct(p.gray, [Notehead(box, "noteheadBlackOnLine")])
    lls = sorted(rec.ledger_lines, key=lambda ll: ll.bbox[1])
    assert [ll.position for ll in lls] == [-2, -4]
    for ll, yc in zip(lls, (401, 421)):
        assert abs((ll.bbox[1] + ll.bbox[3]) / 2 - yc) < 0.6
        assert abs(ll.bbox[0] - x0) <= 1 and abs(ll.bbox[2] - x1) <= 1
        assert ll.confirmed


def test_ledger_lines_without_ink_use_the_rule() -> None:
    p = _page()
    cy = 301 - 1.5 * SP  # in the space above the first ledger line above: one line at position 10
    box = notehead(p.gray, 400, cy, SP)
    rec = reconstruct(p.gray, [Notehead(box, "noteheadWholeInSpace")])
    (ll,) = rec.ledger_lines
    assert ll.position == 10 and not ll.confirmed
    assert abs((ll.bbox[1] + ll.bbox[3]) / 2 - (301 - SP)) < 1
    assert ll.bbox[0] < box[0] and ll.bbox[2] > box[2]


def test_no_ledger_lines_inside_or_next_to_the_staff() -> None:
    p = _page()
    heads = [Notehead(notehead(p.gray, 300 + 40 * i, 301 + 10 * i - 10, SP), "noteheadWholeInSpace") for i in range(0, 11)]
    rec = reconstruct(p.gray, heads)
    assert rec.ledger_lines == ()


def test_chord_between_staves_goes_to_the_staff_its_ink_confirms() -> None:
    p = draw_page(tops=(200, 500), join=(), space=SP)
    # Lines of the lower staff at 501…581; a note two ledger lines above it (y = 461), lines drawn at 481, 461.
    box = notehead(p.gray, 400, 461, SP)
    ledger(p.gray, int(box[0]) - 6, int(box[2]) + 6, 480)
    ledger(p.gray, int(box[0]) - 6, int(box[2]) + 6, 460)
    rec = reconstruct(p.gray, [Notehead(box, "noteheadWholeOnLine")])
    assert {ll.staff for ll in rec.ledger_lines} == {1}
    assert sorted(ll.position for ll in rec.ledger_lines) == [10, 12]


def test_note_above_a_staff_is_not_given_to_the_far_staff_by_one_stray_line() -> None:
    # Dense pages: a note on the first ledger line above the lower staff (y = 481) whose ledger line shows no
    # ink beside the head, and a thin stray line (a hairpin, an underline) under the note at y = 341, where
    # the upper staff would put its sixth ledger line below. One of ten lines confirmed must not beat the one
    # line of the nearer staff: ten ledger lines would be drawn where the page has none.
    p = draw_page(tops=(200, 500), join=(), space=SP)
    box = notehead(p.gray, 400, 481, SP)
    ledger(p.gray, int(box[0]), int(box[2]), 480)
    p.gray[340:342, 300:500] = 0
    rec = reconstruct(p.gray, [Notehead(box, "noteheadBlackOnLine")])
    assert [(ll.staff, ll.position) for ll in rec.ledger_lines] == [(1, 10)]


def test_beams_between_close_staves_do_not_confirm_ledger_lines() -> None:
    # Staves close together (lines 201…281 and 381…461): a note on the first ledger line below the upper staff
    # (y = 301, its line drawn beside it) and two beams of other notes running under it at y = 321 and 341,
    # where the lower staff would put ledger lines. Beams reach past the head as far as the ink is read;
    # they must not vote for the lower staff's four lines.
    p = draw_page(tops=(200, 380), join=(), space=SP)
    box = notehead(p.gray, 400, 301, SP)
    ledger(p.gray, int(box[0]) - 6, int(box[2]) + 6, 300)
    p.gray[319:323, 300:600] = 0
    p.gray[339:343, 300:600] = 0
    rec = reconstruct(p.gray, [Notehead(box, "noteheadWholeOnLine")])
    assert [(ll.staff, ll.position) for ll in rec.ledger_lines] == [(0, -2)]


def test_schema_of_to_dict() -> None:
    p = _page()
    box = notehead(p.gray, 400, 371, SP)
    d = reconstruct(p.gray, [Notehead(box, "noteheadBlackInSpace")]).to_dict()
    assert set(d) >= {"staves", "stems", "ledger_lines"}
    st = d["staves"][0]
    assert len(st["lines_y"]) == 5 and {"x0", "x1", "line_thickness", "space"} <= set(st)
    assert set(d["stems"][0]) >= {"bbox", "noteheads"} and d["stems"][0]["noteheads"] == [0]


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ({"bbox": [0, 0, 1, 1]}, "JSON list"),
        ([{"bbox": [0, 0, 1]}], r"\[0\]: 'bbox' must be"),
        ([{"bbox": [0, 0, "a", 1]}], "4 numbers"),
        ([{"bbox": [5, 0, 1, 1], "name": "noteheadBlackOnLine"}], "x0 <= x1"),
        ([{"bbox": [0, 0, 1, 1], "name": "clefG"}], "not a notehead"),
        ([{"bbox": [0, 0, 1, 1], "name": "noteheadBlak"}], "not a DeepScoresV2 class name"),
        (["x"], "expected an object"),
    ],
)
def test_bad_notehead_lists(items, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataFormatError, match=match):
        parse_noteheads(items)


def test_empty_notehead_list_gives_staves_only() -> None:
    rec = reconstruct(_page().gray, [])
    assert len(rec.staves) == 1 and rec.stems == () and rec.ledger_lines == ()


@pytest.mark.slow
@pytest.mark.parametrize("degrade", ["none", "scan"])
def test_engraved_pages_meet_the_targets(degrade: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from omr_core.evaluation.reconstruct_bench import bench_reconstruct

    rep = bench_reconstruct(engraved(tmp_path_factory.getbasetemp() / "recon-engraved", degrade))
    assert rep.stems.gt > 50 and rep.ledgers.gt > 5
    assert rep.stems.f1 >= 0.97, rep.stems
    assert rep.ledgers.f1 >= 0.98, rep.ledgers
    assert np.isfinite(rep.line_error_px) and rep.line_error_px <= 1.0
