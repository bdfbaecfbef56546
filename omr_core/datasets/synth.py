"""The offline engraver: real music21 corpus pieces -> DeepScoresV2-format pages with pixel-exact boxes."""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.atomic import write_bytes
from omr_core.errors import OmrError

#: Engraving fonts verovio ships (those missing from an install are skipped).
FONTS = ("Leipzig", "Bravura", "Gootville", "Leland", "Petaluma")

#: Page sizes seen in DeepScoresV2 (width, height, weight).
PAGE_SIZES = ((1960, 2772, 0.7), (2211, 3126, 0.1), (2368, 3349, 0.1), (1960, 2772, 0.1))

#: Staff space range in pixels at full size (verovio draws a staff space as 0.18 px per percent of scale).
STAFF_SPACE = (20.0, 25.0)
_SPACE_PER_SCALE = 0.18

DEGRADES = ("none", "scan")

#: Page layouts: ``normal`` (verovio's spacing, 2-20 staves a page) or ``dense`` (like DeepScoresV2's dense
#: pages: large pages, staves packed with no spacing beyond what their notes need, 15-35 staves a page).
LAYOUTS = ("normal", "dense")

#: Staff space and page sizes of the dense layout at full size. The real dense pages (the 10-page test sample)
#: have 67 px staff boxes (a 16.5 px space) on every page size, 59-640 px apart; the dense layout keeps the
#: large page sizes and uses smaller staves (hairline staff lines, under 1.5 px) so that 15-35 fit a page.
DENSE_STAFF_SPACE = (10.5, 14.5)
DENSE_PAGE_SIZES = ((2707, 3828, 0.6), (2368, 3349, 0.3), (2211, 3126, 0.1))
#: Measures engraved for one dense page (a page holds 40-120 of them) and the textures long enough for it.
DENSE_MEASURES = (70, 140)
DENSE_ENOUGH = 70  # a piano piece this long fills most of a dense page
DENSE_TEXTURES = ("piano", "string quartet", "song")

#: verovio attributes copied onto the SVG so noteheads can carry DeepScoresV2's duration comment and the
#: pitch the note was encoded with (the reading benchmark's truth, see docs/reading.md).
_SVG_ATTRIBUTES = [
    "note@dur",
    "note@dots",
    "note@grace",
    "note@dur.ppq",
    "chord@dur.ppq",
    "note@pname",
    "note@oct",
    "note@accid",
    "note@accid.ges",
    "accid@accid",
    "accid@accid.ges",
    "chord@dur",
    "chord@dots",
    "rest@dur",
    "tuplet@num",
    "tuplet@numbase",
]


class SynthError(OmrError):
    """The engraver cannot do what was asked (bad arguments, an output folder in the way, no corpus)."""


@dataclass(frozen=True)
class SynthReport:
    """What `synth_dataset` wrote.

    Attributes:
        out: The dataset folder.
        pages: Pages written.
        train_pages: Pages in ``deepscores_train.json``.
        test_pages: Pages in ``deepscores_test.json``.
        annotations: Annotations written (both files).
        class_counts: Annotations per official class name, most frequent first.
        unmapped_glyphs: Drawn things that got no class, per SMuFL glyph name (or ``owner kind`` for
            lines, text and shapes), most frequent first. Nothing is dropped without being counted here.
        seconds: Wall-clock time.
    """

    out: Path
    pages: int
    train_pages: int
    test_pages: int
    annotations: int
    class_counts: dict[str, int]
    unmapped_glyphs: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class _Job:
    """One engraving job: a corpus excerpt with one set of engraving options, giving a few pages."""

    seed: int
    index: int
    scale: float
    degrade: str
    layout: str = "normal"


@dataclass
class PageResult:
    """One engraved page as a worker returns it.

    Attributes:
        png: The encoded page.
        width: Image width in pixels.
        height: Image height in pixels.
        annotations: ``(class name, a_bbox, o_bbox, area, comment)`` per annotation.
        unmapped: Unmapped counts of this page.
        meta: Provenance (piece, texture, font, staff space, page number, damage).
    """

    png: bytes
    width: int
    height: int
    annotations: list[tuple[str, list[int], list[float] | list[int], int, str]]
    unmapped: Counter[str]
    meta: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def available_fonts() -> tuple[str, ...]:
    """The fonts of `FONTS` that this verovio ships."""
    import verovio

    data = Path(verovio.__file__).parent / "data"
    fonts = tuple(f for f in FONTS if (data / f"{f}.xml").is_file())
    return fonts or ("Leipzig",)


@lru_cache(maxsize=1)
def _toolkit() -> Any:
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    return verovio.toolkit()


@lru_cache(maxsize=1)
def _known_classes() -> frozenset[str]:
    from omr_core.classes import class_table

    return frozenset(c.name for c in class_table().deepscores)


@lru_cache(maxsize=16)
def _piece_text(path: str, texture: str) -> str:
    from omr_core.datasets.synth_corpus import Piece, read_piece, spell_accidentals

    return spell_accidentals(read_piece(Piece(path, texture)))


def ink_box(box: tuple[float, float, float, float], width: int, height: int) -> list[int] | None:
    """Pixel box ``[x0, y0, x1, y1]`` (x1, y1 exclusive) of the pixels a shape covers by more than half.

    A pixel column ``i`` covers ``[i, i + 1)``; it is inked when more than half of it lies inside the
    shape, so edges round to the nearest pixel border (a shape thinner than half a pixel keeps the one
    pixel its centre falls in). Returns None when the box lies outside the page.
    """
    x0, y0, x1, y1 = box
    ix0, iy0 = math.floor(x0 + 0.5), math.floor(y0 + 0.5)
    ix1, iy1 = math.ceil(x1 - 0.5), math.ceil(y1 - 0.5)
    if ix1 <= ix0:
        ix0 = math.floor((x0 + x1) / 2)
        ix1 = ix0 + 1
    if iy1 <= iy0:
        iy0 = math.floor((y0 + y1) / 2)
        iy1 = iy0 + 1
    ix0, iy0 = max(ix0, 0), max(iy0, 0)
    ix1, iy1 = min(ix1, width), min(iy1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return [ix0, iy0, ix1, iy1]


def _choose(rng: np.random.Generator, items: list[Any] | tuple[Any, ...], weights: list[float] | None = None) -> Any:
    if weights is None:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, dtype=float)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


@dataclass
class EngravedPage:
    """One page as verovio drew it, before rasterising (what tests check the ground truth against).

    Attributes:
        svg: The page SVG as rendered (placeholders and text-font music glyphs removed).
        geometry: Parsed primitives and staff lines.
        classified: Symbols with their official classes, and the unmapped counts.
        meta: Provenance (piece, texture, font, staff space, first measure, page number).
    """

    svg: str
    geometry: Any
    classified: Any
    meta: dict[str, Any]


def engrave_job(
    seed: int, index: int, scale: float = 1.0, *, with_mei: bool = False, layout: str = "normal"
) -> Iterator[EngravedPage]:
    """Engrave the pages of job ``index`` of ``seed`` (a corpus excerpt with one set of options).

    Every choice comes from a generator seeded with ``(seed, index)``, so a job's pages never depend on
    other jobs, on the number of pages asked for, or on the number of workers.

    Args:
        seed: Dataset seed.
        index: Job number.
        scale: Page size factor (see `synth_dataset`).
        with_mei: Also keep each page's MEI (``meta["mei"]``), the music verovio drew, for checks.
        layout: ``normal`` or ``dense`` (see `LAYOUTS`; a dense job draws its own piece and page from a
            generator of its own, so normal pages stay the same; it keeps the normal job's font and margins).
    """
    from omr_core.datasets.synth_corpus import TEXTURES, catalogue, excerpt, measure_count
    from omr_core.datasets.synth_glyphs import classify, staff_ppq
    from omr_core.datasets.synth_render import prepare_svg
    from omr_core.datasets.synth_svg import parse_page

    rng = np.random.default_rng([seed, index])
    cat = catalogue()
    textures = list(cat)
    texture = _choose(rng, textures, [TEXTURES[t][0] for t in textures])
    piece = _choose(rng, cat[texture])
    font = _choose(rng, available_fonts())
    w_full, h_full, _ = _choose(rng, PAGE_SIZES, [s[2] for s in PAGE_SIZES])
    width, height = round(w_full * scale), round(h_full * scale)
    space = float(rng.uniform(*STAFF_SPACE)) * scale
    vscale = max(1, round(space / _SPACE_PER_SCALE))
    wanted = int(rng.integers(1, 5))
    sparse = rng.random() < 0.25
    options = {
        "scale": vscale,
        "pageWidth": round(width * 100 / vscale),
        "pageHeight": round(height * 100 / vscale),
        "pageMarginLeft": int(rng.integers(60, 200)),
        "pageMarginRight": int(rng.integers(60, 200)),
        "pageMarginTop": int(rng.integers(60, 220)),
        "pageMarginBottom": int(rng.integers(60, 220)),
        "font": font,
        "spacingSystem": int(rng.integers(2, 18)),
        "spacingStaff": int(rng.integers(6, 16)),
        "spacingLinear": round(float(rng.uniform(0.18, 0.32)), 3),
        "spacingNonLinear": round(float(rng.uniform(0.5, 0.7)), 3),
        "systemMaxPerPage": int(rng.integers(2, 5)) if sparse else 0,
        "justifyVertically": bool(rng.random() < 0.4),
        "header": "auto" if rng.random() < 0.35 else "none",
        "footer": "none",
        "breaks": "auto",
        "useBraceGlyph": bool(rng.random() < 0.5),
        "dynamSingleGlyphs": True,  # DeepScoresV2 boxes each dynamics letter on its own
        "svgAdditionalAttribute": _SVG_ATTRIBUTES,
        "xmlIdSeed": (seed * 100_003 + index) % 2_000_000_000 + 1,
    }
    text = _piece_text(piece.path, piece.texture)
    measures = measure_count(text)
    start = 0
    if measures:
        count = int(rng.integers(10, 44))
        start = int(rng.integers(0, max(1, measures - count + 1)))
    if layout == "dense":
        # its own generator, so the normal layout's draws (and pages) stay what they were
        drng = np.random.default_rng([seed, index, 2])
        piece, text, measures = _long_piece(drng, cat)
        texture = piece.texture
        count, start = _dense_options(options, drng, scale, measures)
        vscale, wanted = int(options["scale"]), 1
    if measures:
        text = excerpt(text, start, count)
    tk = _toolkit()
    tk.resetOptions()
    tk.setOptions(options)
    if not tk.loadData(text) or tk.getPageCount() == 0:
        raise SynthError(f"verovio could not engrave {piece.path} (measures from {start + 1})")
    known = _known_classes()
    for page_no in range(1, min(wanted, tk.getPageCount()) + 1):
        svg = prepare_svg(tk.renderToSVG(page_no))
        geo = parse_page(svg)
        if not geo.staves:
            continue
        meta: dict[str, Any] = {
            "piece": piece.path,
            "texture": texture,
            "font": font,
            "staff_space_px": round(vscale * _SPACE_PER_SCALE, 2),
            "first_measure": start + 1,
            "page": page_no,
        }
        if layout != "normal":
            meta["layout"] = layout
        mei = tk.getMEI({"pageNo": page_no})
        if with_mei:
            meta["mei"] = mei
        yield EngravedPage(svg, geo, classify(geo, known, ppq=staff_ppq(mei)), meta)


def _long_piece(rng: np.random.Generator, cat: dict[str, Any], tries: int = 8) -> tuple[Any, str, int]:
    """A piece long enough to fill a dense page (the longest of ``tries`` draws): (piece, text, measures)."""
    from omr_core.datasets.synth_corpus import measure_count

    best: tuple[Any, str, int] | None = None
    textures = sorted(t for t in cat if t in DENSE_TEXTURES) or sorted(cat)
    for _ in range(max(1, tries)):
        piece = _choose(rng, cat[_choose(rng, textures)])
        text = _piece_text(piece.path, piece.texture)
        measures = measure_count(text)
        if best is None or measures > best[2]:
            best = (piece, text, measures)
        if measures >= DENSE_ENOUGH:
            break
    if best is None:  # pragma: no cover - the loop runs at least once
        raise SynthError("no corpus piece to engrave a dense page from")
    return best


def _dense_options(options: dict[str, Any], rng: np.random.Generator, scale: float, measures: int) -> tuple[int, int]:
    """Turn ``options`` into a dense page's (in place): small staves, a large page, no extra spacing.

    Returns:
        The excerpt (measure count, first measure), long enough to fill the page.
    """
    space = float(rng.uniform(*DENSE_STAFF_SPACE)) * scale
    vscale = max(1, round(space / _SPACE_PER_SCALE))
    w_full, h_full, _ = _choose(rng, DENSE_PAGE_SIZES, [s[2] for s in DENSE_PAGE_SIZES])
    width, height = round(w_full * scale), round(h_full * scale)
    options.update(
        {
            "scale": vscale,
            "pageWidth": round(width * 100 / vscale),
            "pageHeight": round(height * 100 / vscale),
            "pageMarginTop": int(rng.integers(30, 90)),
            "pageMarginBottom": int(rng.integers(30, 90)),
            # verovio still keeps staves apart by what sticks out of them (stems, ledger lines, lyrics)
            "spacingSystem": 0,
            "spacingStaff": int(rng.integers(0, 3)),
            "spacingBraceGroup": 0,
            "spacingBracketGroup": 0,
            "systemMaxPerPage": 0,
            "justifyVertically": False,
            "header": "none",
        }
    )
    count = int(rng.integers(*DENSE_MEASURES))
    start = int(rng.integers(0, max(1, measures - count + 1)))
    return count, start


def _engrave_job(job: _Job) -> list[PageResult]:
    """Engrave, rasterise and annotate the pages of one job (runs in a worker process)."""
    from omr_core.datasets.synth_render import degrade_scan, rasterise, rotated_box
    from omr_core.raster import encode_png

    out: list[PageResult] = []
    for page in engrave_job(job.seed, job.index, job.scale, layout=job.layout):
        geo, res, meta = page.geometry, page.classified, dict(page.meta)
        texts = [(p.element, p.matrix, p.ctx.get("ancestors", ())) for p in geo.prims if p.kind == "text"]
        img = rasterise(page.svg, geo.width, geo.height, texts)  # type: ignore[arg-type]
        damage = None
        if job.degrade == "scan":
            page_rng = np.random.default_rng([job.seed, job.index, int(meta["page"]), 1])
            img, damage = degrade_scan(img, page_rng)
            meta["damage"] = {
                "angle": round(damage.angle, 3),
                "blur": round(damage.blur, 2),
                "noise": round(damage.noise, 2),
                "jpeg_quality": damage.jpeg_quality,
            }
        unmapped = Counter(res.unmapped)
        anns: list[tuple[str, list[int], list[float] | list[int], int, str]] = []
        for sym in res.symbols:
            box = sym.box
            if damage is not None:
                moved = damage.apply(_symbol_points(sym))
                box = (
                    float(moved[:, 0].min()),
                    float(moved[:, 1].min()),
                    float(moved[:, 0].max()),
                    float(moved[:, 1].max()),
                )
            a_bbox = ink_box(box, geo.width, geo.height)
            if a_bbox is None:
                unmapped[f"outside the page ({sym.name})"] += 1
                continue
            o_bbox: list[float] | list[int]
            if damage is not None:
                o_bbox = [round(float(v), 3) for v in rotated_box(damage, sym.box).ravel()]
            else:
                x0, y0, x1, y1 = a_bbox
                o_bbox = [x1, y1, x1, y0, x0, y0, x0, y1]  # the released files' corner order
            anns.append((sym.name, a_bbox, o_bbox, max(1, round(sym.area)), sym.comment))
        out.append(PageResult(encode_png(img, noisy=damage is not None), geo.width, geo.height, anns, unmapped, meta))
    return out


def _symbol_points(sym: Any) -> np.ndarray:
    """Outline points of a symbol in clean page pixels (for exact boxes after rotation)."""
    from omr_core.datasets.synth_svg import prim_outline

    if not sym.prims:  # staves and split symbols: their box is a rectangle of ink
        x0, y0, x1, y1 = sym.box
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)
    return np.concatenate([prim_outline(p) for p in sym.prims])


def _jobs(seed: int, scale: float, degrade: str, layout: str = "normal") -> Iterator[_Job]:
    index = 0
    while True:
        yield _Job(seed, index, scale, degrade, layout)
        index += 1


def _run_jobs(jobs: Iterator[_Job], pages: int, workers: int) -> Iterator[tuple[_Job, list[PageResult]]]:
    """Run jobs in order until ``pages`` pages are made; in parallel when ``workers`` > 1.

    Each job depends only on (seed, index), so the pages are the same whatever the number of workers.
    """
    made = 0
    if workers <= 1:
        for job in jobs:
            res = _engrave_job(job)
            made += len(res)
            yield job, res
            if made >= pages:
                return
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no fork: the caller may hold threads (dashboard, torch)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: list[tuple[_Job, Future[list[PageResult]]]] = []
        try:
            while made < pages:
                # a job gives 1-4 pages: keep enough in flight to cover what is still missing
                while len(pending) < 2 * workers and len(pending) < max(1, pages - made):
                    job = next(jobs)
                    pending.append((job, pool.submit(_engrave_job, job)))
                job, fut = pending.pop(0)
                try:
                    res = fut.result()
                except BrokenProcessPool as exc:
                    raise SynthError(
                        f"a worker process died while engraving job {job.index} ({exc}); "
                        "run with workers=1 (--workers 1) to see the error in this process"
                    ) from exc
                made += len(res)
                yield job, res
        finally:
            for _, fut in pending:
                fut.cancel()


def _categories() -> dict[str, dict[str, Any]]:
    """All 208 categories keyed by string id, interleaved like the released files ("1", "137", "2", …)."""
    from omr_core.classes import class_table

    table = class_table()
    ds = [c for c in table.categories if c.annotation_set == "deepscores"]
    mu = {c.id: c for c in table.categories if c.annotation_set != "deepscores"}
    out: dict[str, dict[str, Any]] = {}
    for c in ds:
        out[str(c.id)] = {"name": c.name, "annotation_set": c.annotation_set, "color": c.color}
        m = mu.get(c.id + len(ds))
        if m is not None:
            out[str(m.id)] = {"name": m.name, "annotation_set": m.annotation_set, "color": m.color}
    for m in mu.values():
        out.setdefault(str(m.id), {"name": m.name, "annotation_set": m.annotation_set, "color": m.color})
    return out


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out} exists and is not a folder; choose a new folder for the dataset")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise SynthError(
                f"{out} is not empty; choose an empty folder or pass --overwrite to replace a dataset there"
            )
        # only what a previous `omr synth` wrote: other files the user keeps there are left alone
        for name in ("deepscores_train.json", "deepscores_test.json", "synth_manifest.json"):
            (out / name).unlink(missing_ok=True)
        images = out / "images"
        if images.is_dir():
            for png in images.glob("*.png"):
                png.unlink()
            if not any(images.iterdir()):
                shutil.rmtree(images)
    (out / "images").mkdir(parents=True, exist_ok=True)


def synth_dataset(
    out: Path,
    pages: int,
    seed: int = 0,
    test_fraction: float = 0.2,
    degrade: str = "none",
    progress: Callable[[int, int], None] | None = None,
    *,
    scale: float = 1.0,
    overwrite: bool = False,
    workers: int = 1,
    layout: str = "normal",
) -> SynthReport:
    """Engrave ``pages`` pages from music21's corpus and write a DeepScoresV2-format dataset.

    Writes ``OUT/images/*.png`` (grayscale), ``OUT/deepscores_train.json``, ``OUT/deepscores_test.json``
    (the released format: string ids, ``cat_id`` pairs, ``a_bbox``/``o_bbox``, ``area`` = ink area in
    pixels, ``comments`` with ``duration`` and ``rel_position`` for noteheads) and
    ``OUT/synth_manifest.json`` (which piece, font and options made each page).

    Args:
        out: Dataset folder (created; must be empty unless ``overwrite``).
        pages: Number of pages (>= 1).
        seed: Seed; the same seed gives the same bytes (with the same library versions).
        test_fraction: Share of pages in the test file (pages of one excerpt stay together where possible).
        degrade: ``none`` or ``scan`` (rotation up to 1 degree, blur, noise, JPEG, uneven light; boxes follow).
        progress: Called with (pages done, pages total) after each page.
        scale: Page size factor; below 1 only to make fast tests (staff spaces shrink with it).
        overwrite: Replace the dataset files of a previous run in ``out``.
        workers: Processes engraving in parallel (the output does not depend on it).
        layout: ``normal`` or ``dense`` (one page per excerpt of a long piece, DeepScoresV2's large page
            sizes, small staves packed with no spacing beyond what their notes need: 15-35 staves a page).

    Returns:
        A `SynthReport`.

    Raises:
        SynthError: Bad arguments, a non-empty ``out`` without ``overwrite``, or a page that cannot be made.

    Examples:
        >>> report = synth_dataset(Path("datasets/synth"), pages=20, seed=1)  # doctest: +SKIP
        >>> report.class_counts["noteheadBlackOnLine"]  # doctest: +SKIP
    """
    from omr_core.classes import class_table

    t0 = time.perf_counter()
    _check_args(pages, test_fraction, degrade, scale, workers, layout)
    out = Path(out)
    _prepare_out(out, overwrite)
    results = _engrave(_jobs(seed, scale, degrade, layout), pages, workers, progress)
    test_idx = _test_pages(results, round(pages * test_fraction), seed)
    written = _write_dataset(out, results, test_idx, seed, _info(seed, degrade, layout), class_table())
    return SynthReport(
        out=out,
        pages=len(results),
        train_pages=len(results) - len(test_idx),
        test_pages=len(test_idx),
        annotations=written.annotations,
        class_counts=dict(written.class_counts.most_common()),
        unmapped_glyphs=dict(written.unmapped.most_common()),
        seconds=time.perf_counter() - t0,
    )


def _check_args(pages: object, test_fraction: float, degrade: str, scale: float, workers: int, layout: str) -> None:
    if not isinstance(pages, int) or pages < 1:
        raise SynthError(f"pages must be a whole number >= 1 (got {pages!r})")
    if not 0.0 <= test_fraction < 1.0:
        raise SynthError(f"test_fraction must be in [0, 1) (got {test_fraction})")
    if degrade not in DEGRADES:
        raise SynthError(f"degrade must be one of {', '.join(DEGRADES)} (got {degrade!r})")
    if not 0.1 <= scale <= 2.0:
        raise SynthError(f"scale must be between 0.1 and 2 (got {scale})")
    if workers < 1:
        raise SynthError(f"workers must be >= 1 (got {workers})")
    if layout not in LAYOUTS:
        raise SynthError(f"layout must be one of {', '.join(LAYOUTS)} (got {layout!r})")


def _engrave(
    jobs: Iterator[_Job], pages: int, workers: int, progress: Callable[[int, int], None] | None
) -> list[tuple[int, PageResult]]:
    """The first ``pages`` pages the jobs make, in job order, as ``(job index, page)``."""
    results: list[tuple[int, PageResult]] = []
    done = 0
    for job, res in _run_jobs(jobs, pages, workers):
        for page in res:
            if done >= pages:
                break
            results.append((job.index, page))
            done += 1
            if progress is not None:
                progress(done, pages)
    return results


def _test_pages(results: list[tuple[int, PageResult]], n_test: int, seed: int) -> set[int]:
    """Test pages: whole excerpts in a seeded order, so train and test rarely share a page's neighbours."""
    by_job: dict[int, list[int]] = {}
    for i, (job_index, _) in enumerate(results):
        by_job.setdefault(job_index, []).append(i)
    order = list(by_job)
    np.random.default_rng([seed, 7]).shuffle(order)
    test_idx: set[int] = set()
    for j in order:
        for i in by_job[j]:
            if len(test_idx) < n_test:
                test_idx.add(i)
    return test_idx


def _info(seed: int, degrade: str, layout: str) -> dict[str, Any]:
    """The ``info`` block of both JSON files."""
    return {
        "description": (
            f"Synthetic DeepScoresV2-format pages engraved by `omr synth` (seed {seed}, degrade {degrade}"
            + (f", layout {layout})" if layout != "normal" else ")")
        ),
        "version": "2.0",
        "year": date.today().year,
        "contributor": "omr-dashboard synth: music21 corpus engraved with verovio",
        "date_created": date.today().isoformat(),
        "url": "",
    }


@dataclass
class WrittenPages:
    annotations: int = 0
    class_counts: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)


def _write_dataset(
    out: Path, results: list[tuple[int, PageResult]], test_idx: set[int], seed: int, info: dict[str, Any], table: Any
) -> WrittenPages:
    """Write the page images, then the two DeepScoresV2 JSON files and the manifest (which commit the set)."""
    import orjson

    categories = _categories()
    splits: dict[str, dict[str, Any]] = {
        name: {
            "info": info,
            "annotation_sets": ["deepscores", "muscima++"],
            "categories": categories,
            "images": [],
            "annotations": {},
        }
        for name in ("train", "test")
    }
    class_counts: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    manifest: list[dict[str, Any]] = []
    ann_id = 0
    for i, (job_index, page) in enumerate(results):
        img_id = i + 1
        meta = page.meta
        filename = f"synth-s{seed}-{img_id:05d}-{_slug(meta['piece'])}-{meta['font'].lower()}-p{meta['page']}.png"
        write_bytes(out / "images" / filename, page.png, durable=False)  # the JSON, written last, commits the set
        split = splits["test" if i in test_idx else "train"]
        ann_ids: list[str] = []
        for k, (name, a_bbox, o_bbox, area, comment) in enumerate(page.annotations, start=1):
            ann_id += 1
            cat = table.by_name(name)
            key = str(ann_id)
            split["annotations"][key] = {
                "a_bbox": a_bbox,
                "o_bbox": o_bbox,
                "cat_id": [str(cat.id), str(cat.muscima_id) if cat.muscima_id is not None else None],
                # area: analytic ink area of the symbol in pixels (filled outline plus stroke), as the
                # released files count each symbol's own ink pixels rather than its box
                "area": area,
                "img_id": str(img_id),
                "comments": f"instance:#{k:06x};{comment}",
            }
            ann_ids.append(key)
            class_counts[name] += 1
        split["images"].append(
            {"id": img_id, "filename": filename, "width": page.width, "height": page.height, "ann_ids": ann_ids}
        )
        unmapped.update(page.unmapped)
        manifest.append(
            {
                "id": img_id,
                "filename": filename,
                "split": "test" if i in test_idx else "train",
                "job": job_index,
                **meta,
            }
        )

    for name, data in splits.items():
        write_bytes(out / f"deepscores_{name}.json", orjson.dumps(data))
    write_bytes(
        out / "synth_manifest.json", orjson.dumps({"seed": seed, "pages": manifest}, option=orjson.OPT_INDENT_2)
    )
    return WrittenPages(ann_id, class_counts, unmapped)


def _slug(path: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", path.rsplit(".", 1)[0]).strip("-").lower()
