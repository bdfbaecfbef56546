"""First start: engrave a small dataset, convert it with the CPU recipe (tiled), train within a wall-time budget.

The recipe (classes, tile scale, training arguments) is `omr_core.recipe`; docs/recipe.md has its measurements.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omr_core.errors import OmrError
from omr_core.recipe import CPU_PRESET, MODEL, READING_PRESET
from omr_core.workspace import Workspace, get_workspace

if TYPE_CHECKING:
    from omr_core.audit.convert import ConvertReport
    from omr_core.audit.plan import ExclusionPlan
    from omr_core.datasets.discovery import LoadedDataset

#: The audit preset the demo converts with (kept for callers that name it).
CORE_PRESET = READING_PRESET
SYNTH_DIR = "demo-synth"
YOLO_DIR = "demo-yolo"
#: The whole demo, engraving to trained model, fits this many minutes on 2 CPU cores.
BUDGET_MIN = 20.0
#: Minutes kept free after training for Ultralytics' final validation and saving.
RESERVE_MIN = 3.0
#: Shortest training the budget may leave (Ultralytics' ``time`` is in hours).
MIN_TRAIN_H = 0.01

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DemoResult:
    """What `run_demo` made.

    Attributes:
        synth: The engraved DeepScoresV2-format dataset.
        data_yaml: The converted YOLO dataset's data.yaml.
        run_dir: The training run started (detached).
        excluded: Classes the preset excluded.
        reused: True when an existing demo dataset was reused instead of engraved again.
        train_hours: The wall-time bound given to Ultralytics (``time=``), None when bounded by epochs.
    """

    synth: Path
    data_yaml: Path
    run_dir: Path
    excluded: tuple[str, ...]
    reused: bool
    train_hours: float | None = None


def reading_plan(ds: LoadedDataset) -> ExclusionPlan:
    """The recipe's exclusion plan for ``ds``: its reading classes that occur in it, everything else excluded.

    The reading preset leaves rare critical classes out (small noteheads, rest64th …) on purpose; the plan
    records that as a logged override with the preset as the reason.
    """
    from omr_core.audit.plan import PRESETS, make_plan
    from omr_core.audit.statistics import class_stats

    stats = class_stats(ds)
    present = stats.loc[~stats["empty"], "name"].tolist()
    excluded = PRESETS[READING_PRESET].exclusions(ds.names, present)
    return make_plan(ds.names, excluded, allow_critical=True, reasons={n: f"preset {READING_PRESET}" for n in excluded})


def convert_reading(
    ds: LoadedDataset,
    out: str | Path,
    *,
    tile: int | None = None,
    imgsz: int | None = None,
    progress: Progress | None = None,
) -> ConvertReport:
    """Convert ``ds`` to YOLO with the reading preset's classes and tile scale (``tile``/``imgsz`` override it)."""
    from omr_core.audit.convert import ConvertOptions, convert
    from omr_core.audit.plan import PRESETS

    pr = PRESETS[READING_PRESET]
    opts = ConvertOptions(
        imgsz=imgsz or pr.imgsz,
        tile=tile or pr.tile,
        overlap=pr.overlap if pr.overlap is not None else 0.2,
        overwrite=Path(out).exists(),
    )
    rep = convert(ds, out, reading_plan(ds), opts, progress=progress)
    if not rep.verification.ok:
        raise OmrError("the recipe conversion failed its own verification:\n" + "\n".join(rep.verification.lines))
    return rep


def train_hours(minutes: float, elapsed_s: float) -> float:
    """Ultralytics ``time=`` (hours) that ends the whole demo within ``minutes``, after ``elapsed_s`` already spent."""
    left_min = minutes - elapsed_s / 60.0 - RESERVE_MIN
    return round(max(MIN_TRAIN_H, left_min / 60.0), 4)


def run_demo(
    workspace: Workspace | None = None,
    *,
    pages: int = 40,
    minutes: float | None = BUDGET_MIN,
    epochs: int = 10,
    imgsz: int | None = None,
    tile: int | None = None,
    batch: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Engrave ``pages`` pages (music21 corpus → verovio), convert them tiled, start the CPU recipe in the background.

    An existing demo dataset in the workspace is reused; the run gets a fresh name (``demo``, ``demo-2`` ...).

    Args:
        workspace: Workspace (default: from the environment).
        pages: Pages to engrave.
        minutes: Wall-time budget of the whole demo, engraving included: training gets Ultralytics ``time=``
            with what is left (less a reserve for the final validation). None: bounded by ``epochs`` only.
        epochs: Epochs (with a time budget, Ultralytics re-plans them after the first epoch to fill the time).
        imgsz: Training image size (default: the recipe's).
        tile: Tile side in page pixels (default: the recipe's).
        batch: Batch size (default: the recipe's; nbs follows it so each batch is one optimizer step).
        seed: Engraving and training seed.
        log: Receives one line per step.
        progress: ``(done, total)`` of the step in progress (engraving pages, then converting).

    Returns:
        A `DemoResult`; the training keeps running in the background.
    """
    from omr_core.datasets.discovery import load_dataset
    from omr_core.datasets.synth import synth_dataset
    from omr_core.training.launcher import launch, unique_name
    from omr_core.training.scale import read_sidecar
    from omr_core.training.spec import build_spec

    t0 = time.time()
    ws = (workspace or get_workspace()).ensure()
    say = log or (lambda _m: None)
    synth = ws.datasets / SYNTH_DIR
    sources = [synth / "deepscores_train.json", synth / "deepscores_test.json"]
    reused = all(p.is_file() for p in sources)
    if reused:
        say(f"reusing the engraved demo dataset in {synth}")
    else:
        say(f"engraving {pages} pages into {synth} …")
        rep = synth_dataset(synth, pages=pages, seed=seed, progress=progress, overwrite=synth.exists())
        say(f"engraved {rep.pages} pages, {rep.annotations} annotations in {rep.seconds:.0f} s")
    out = ws.datasets / YOLO_DIR
    data_yaml = out / "data.yaml"
    ds = load_dataset(sources)
    plan = reading_plan(ds)
    have = read_sidecar(data_yaml) if data_yaml.is_file() else None
    want_tile = tile or _preset_tile()
    if not (reused and have is not None and have.tile == want_tile):
        say(f"converting with the preset '{READING_PRESET}': {len(plan.kept)} classes, {want_tile} px tiles …")
        crep = convert_reading(ds, out, tile=tile, imgsz=imgsz, progress=progress)
        data_yaml = crep.data_yaml
        say(f"converted: {crep.tiles} tiles, {crep.labels} labels, {len(crep.names)} classes, splits {crep.split_images}")
    name = unique_name(ws.runs, "demo")
    args: dict[str, Any] = {"epochs": epochs, "workers": 0, "seed": seed, "imgsz": imgsz, "batch": batch}
    if batch:
        args["nbs"] = batch  # one optimizer step per batch, as the recipe does
    hours = None
    if minutes is not None:
        hours = train_hours(minutes, time.time() - t0)
        args["time"] = hours
    spec = build_spec(name, MODEL, str(data_yaml), preset=CPU_PRESET, args=args)
    run_dir = launch(spec, ws.runs)
    bound = f"for {hours * 60:.0f} min (Ultralytics time={hours} h)" if hours else f"for {epochs} epochs"
    say(f"training started in {run_dir} {bound}, {time.time() - t0:.0f} s after the start; watch it on the Training page")
    return DemoResult(synth=synth, data_yaml=Path(data_yaml), run_dir=run_dir, excluded=plan.excluded, reused=reused,
                      train_hours=hours)


def _preset_tile() -> int | None:
    from omr_core.audit.plan import PRESETS

    return PRESETS[READING_PRESET].tile


@dataclass(frozen=True)
class DemoCheck:
    """The demo model run on one held-out engraved page, against the engraver's ground truth.

    Attributes:
        page: The page image.
        detections: Detections on the page.
        noteheads: Model noteheads matched to true noteheads at IoU 0.5.
        inference: How the model was run.
    """

    page: Path
    detections: int
    noteheads: Any
    inference: str

    def summary(self) -> str:
        """One line for people."""
        n = self.noteheads
        return (f"on the held-out page {self.page.name}: {self.detections} detections, {n.tp} of {n.gt} noteheads found "
                f"at IoU 0.5 (precision {n.precision:.2f}, recall {n.recall:.2f}); model run {self.inference}")


def check_model(weights: str | Path, synth: str | Path) -> DemoCheck:
    """Review the first test page of the engraved demo data with ``weights`` and score its noteheads.

    Raises:
        OmrError: No test page, or the weights cannot be used.
    """
    import numpy as np

    from omr_core.datasets.deepscores import load_deepscores
    from omr_core.evaluation.model_bench import notehead_counts
    from omr_core.review.images import load_page
    from omr_core.review.inference import load_model
    from omr_core.review.pipeline import review_page

    data = load_deepscores(Path(synth) / "deepscores_test.json")
    imgs = data.images[data.images["path"].astype(str) != ""]
    if imgs.empty:
        raise OmrError(f"{synth}: no held-out page image to check the model on")
    row = imgs.iloc[0]
    ann = data.annotations[data.annotations["image"] == row["image"]]
    heads = ann[ann["name"].astype(str).str.startswith("notehead")]
    page = Path(str(row["path"]))
    res = review_page(load_page(page).gray, source=page.name, model=load_model(weights))
    pred = np.array([h.bbox for h in res.noteheads], dtype=np.float64).reshape(-1, 4)
    gt = heads[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
    return DemoCheck(page=page, detections=len(res.detections), noteheads=notehead_counts(pred, gt),
                     inference=res.inference.summary if res.inference else "")
