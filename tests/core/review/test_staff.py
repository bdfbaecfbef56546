"""Staff detection on drawn pages with known lines (straight, skewed, broken, noisy) and on engraved pages."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from omr_core.review.staff import NoStaffError, binarize, detect_staves, long_line_warning, measure
from tests.core.review.recon_fixtures import draw_page, engraved, four_line_page, rotate


def test_measure_finds_thickness_and_space() -> None:
    page = draw_page(space=18, thickness=3)
    m = measure(binarize(page.gray))
    assert abs(m.line_thickness - 3) < 0.3
    assert abs(m.space - 18) < 0.5


def test_lines_at_known_positions_and_systems() -> None:
    page = draw_page(tops=(150, 330, 700, 950), join=(0, 2))
    res = detect_staves(page.gray)
    assert len(res.staves) == 4
    for st, ys in zip(res.staves, page.staves):
        assert np.abs(np.array(st.lines_y) - ys).max() < 0.3
        assert abs(st.x0 - 100) <= 3 and abs(st.x1 - 1500) <= 3
        assert abs(st.space - 20) < 0.2
        assert abs(st.line_thickness - 2) < 0.5
    assert [s.staves for s in res.systems] == [(0, 1), (2, 3)]


def test_single_staff_parts_are_one_system_each() -> None:
    res = detect_staves(draw_page(join=()).gray)
    assert [s.staves for s in res.systems] == [(0,), (1,), (2,)]


@pytest.mark.parametrize("angle", [0.8, -1.0])
def test_skewed_page(angle: float) -> None:
    page = draw_page(width=2000, height=1400, x0=150, x1=1850)
    gray, m = rotate(page.gray, angle)
    res = detect_staves(gray)
    assert len(res.staves) == 3
    for st, ys in zip(res.staves, page.staves):
        # Where each clean line centre lands at the staff's centre column.
        xc = st.xc
        for i, y in enumerate(ys):
            # Invert the rotation for x, then map the clean point (x, y).
            pts = np.array([[x, y] for x in np.linspace(100, 1900, 400)])
            moved = pts @ m[:, :2].T + m[:, 2]
            k = int(np.argmin(np.abs(moved[:, 0] - xc)))
            assert abs(st.y_at(i, xc) - moved[k, 1]) < 0.8
        assert np.sign(st.slope) == -np.sign(angle)


def test_broken_lines_and_noise_keep_one_staff() -> None:
    rng = np.random.default_rng(0)
    page = draw_page()
    g = page.gray.copy()
    g[:, 600:640] = 255  # a break through every staff
    noise = rng.random(g.shape)
    g[noise < 0.003] = 0
    g[noise > 0.997] = 255
    res = detect_staves(g)
    assert len(res.staves) == 3
    assert all(st.x1 - st.x0 > 1300 for st in res.staves)


def test_ledger_lines_do_not_make_a_staff() -> None:
    page = draw_page(tops=(300,), join=())
    g = page.gray
    # Four ledger lines above the staff over a long run of notes: six evenly spaced lines in those strips.
    for x in range(300, 900, 30):
        for k in range(1, 5):
            y = 300 - 20 * k
            g[y : y + 2, x : x + 26] = 0
    res = detect_staves(g)
    assert len(res.staves) == 1
    assert np.abs(np.array(res.staves[0].lines_y) - page.staves[0]).max() < 0.5


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.full((800, 600), 255, np.uint8),  # blank page
        lambda: np.random.default_rng(1).integers(0, 256, (600, 800)).astype(np.uint8),  # noise photo
        lambda: np.tile(np.linspace(0, 255, 800, dtype=np.uint8), (600, 1)),  # a gradient
    ],
    ids=["blank", "noise", "gradient"],
)
def test_pages_without_staves_say_so(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoStaffError, match="no staff"):
        detect_staves(make())


def test_tiny_image_is_refused() -> None:
    with pytest.raises(NoStaffError, match="too small"):
        detect_staves(np.zeros((1, 1), np.uint8))


@pytest.mark.slow
@pytest.mark.parametrize("degrade", ["none", "scan"])
def test_engraved_pages_staff_count_and_line_error(degrade: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from omr_core.evaluation.reconstruct_bench import bench_reconstruct

    root = tmp_path_factory.getbasetemp() / "recon-engraved"
    rep = bench_reconstruct(engraved(root, degrade))
    assert rep.pages and all(not p.error for p in rep.pages)
    for p in rep.pages:
        assert p.staves_found == p.staves_gt, p.filename
        assert p.line_error_px <= 1.0, (p.filename, p.line_error_px)


def _stacked(n: int, gap_spaces: float, space: int = 12, join_pairs: bool = True) -> tuple[np.ndarray, list[list[float]]]:
    """A page of ``n`` staves ``gap_spaces`` staff spaces apart (bottom line to next top line), piano-like pairs."""
    step = int(round((4 + gap_spaces) * space))
    tops = tuple(40 + i * step for i in range(n))
    join = tuple(range(0, n - 1, 2)) if join_pairs else ()
    page = draw_page(width=1600, height=tops[-1] + 4 * space + 60, tops=tops, space=space, join=join)
    return page.gray, page.staves


@pytest.mark.parametrize("angle", [0.0, 0.7])
def test_forty_staves_packed_one_space_apart(angle: float) -> None:
    # The densest real pages: systems packed with no gap, so the lines run on evenly from the top staff to the
    # bottom one (200 lines one space apart); before, the whole stack was read as a single staff.
    gray, truth = _stacked(40, 1.0)
    if angle:
        gray, m = rotate(gray, angle)
    res = detect_staves(gray)
    assert len(res.staves) == 40
    for st, ys in zip(res.staves, truth):
        if angle:
            for i, y in enumerate(ys):  # where the clean line lands at the staff's centre column
                moved = np.array([[x, y] for x in np.linspace(100, 1500, 300)]) @ m[:, :2].T + m[:, 2]
                k = int(np.argmin(np.abs(moved[:, 0] - st.xc)))
                assert abs(st.y_at(i, st.xc) - moved[k, 1]) < 0.8
        else:
            assert np.abs(np.array(st.lines_y) - ys).max() < 0.3
    assert long_line_warning(res) is None


@pytest.mark.parametrize("gap", [1.6, 2.0, 2.4])
def test_close_staves_are_all_kept(gap: float) -> None:
    # Dense engraved pages put staves 1.5-2.5 spaces apart; such staves used to be taken for ledger lines.
    gray, truth = _stacked(30, gap)
    res = detect_staves(gray)
    assert len(res.staves) == 30
    for st, ys in zip(res.staves, truth):
        assert np.abs(np.array(st.lines_y) - ys).max() < 0.3
    assert [s.staves for s in res.systems] == [(i, i + 1) for i in range(0, 30, 2)]


@pytest.mark.slow
@pytest.mark.parametrize("degrade", ["none", "scan"])
def test_dense_engraved_pages_find_every_staff(degrade: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    # `omr synth --layout dense`: 15-35 small staves on a large page, packed as closely as their notes allow.
    from omr_core.evaluation.reconstruct_bench import bench_reconstruct

    root = tmp_path_factory.getbasetemp() / "recon-dense"
    rep = bench_reconstruct(engraved(root, degrade, pages=3, seed=3, scale=1.0, layout="dense"))
    assert len(rep.pages) == 3 and all(not p.error for p in rep.pages)
    assert sum(p.staves_gt for p in rep.pages) >= 60, [p.staves_gt for p in rep.pages]
    for p in rep.pages:
        assert p.staves_found == p.staves_gt, p.filename
        assert p.line_error_px <= 1.0, (p.filename, p.line_error_px)
        assert not p.warning, (p.filename, p.warning)


def test_missed_staves_are_reported_with_numbers() -> None:
    # Detection limited to the first staff of 40 packed ones: the state this page was in before dense pages
    # were handled, when it said nothing.
    gray, _ = _stacked(40, 1.0)
    res = detect_staves(gray)
    assert long_line_warning(res) is None
    msg = long_line_warning(replace(res, staves=res.staves[:1]))
    assert msg is not None
    m = re.search(r"missed about (\d+) staves: (\d+) long straight horizontal lines .* none of the 1 staves found", msg)
    assert m, msg
    assert int(m.group(1)) == 39 and int(m.group(2)) == 195
    assert "check the staff overlay" in msg.lower()


def test_lines_no_staff_explains_are_reported() -> None:
    page = four_line_page()
    res = detect_staves(page.gray)
    assert len(res.staves) == 3
    msg = long_line_warning(res)
    assert msg is not None and "32 long straight horizontal lines" in msg and "none of the 3 staves found" in msg


def test_staff_seen_in_few_strips_keeps_the_page_skew() -> None:
    # A heavy bar along the top line hides it in most strips and a dash one space below the staff makes one
    # strip's five lines the wrong five: fitted alone, those few strips tilted the staff to 2.5 degrees and
    # cut it to its last 130 px (seen on a dense scanned madrigal page).
    page = draw_page(width=2000, height=1400, x0=150, x1=1850, tops=(200, 420, 800), join=())
    g = page.gray
    g[414:428, 150:1700] = 0
    g[520:522, 1280:1360] = 0
    res = detect_staves(g)
    assert len(res.staves) == 3
    st = res.staves[1]
    assert abs(st.slope) < 0.002 and st.x0 < 160 and st.x1 > 1840, (st.x0, st.x1, st.slope)
    assert np.abs(np.array(st.lines_y[1:]) - page.staves[1][1:]).max() < 0.5
