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
#: The demo's model is judged on the classes with at least this many validation instances (fewer make AP noise).
MIN_INSTANCES = 20
#: What the demo must reach on those classes (mAP50 on its engraved validation tiles).
TARGET_MAP50 = 0.60

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


@dataclass(frozen=True)
class ValidationScore:
    """The model's validation AP per class, judged on the classes with enough instances to measure.

    Attributes:
        map50: Mean AP50 over ``classes`` (None when no class has ``min_instances``).
        classes: The classes with at least ``min_instances`` validation instances.
        min_instances: The threshold.
        all_map50: Ultralytics' own mean over every class with a validation instance.
        tiles: Validation images.
        per_class: ``(class, instances, AP50)`` for every class with a validation instance, most instances first.
        source: Where the APs come from (the run's final validation of best.pt, or a validation run here).
    """

    map50: float | None
    classes: tuple[str, ...]
    min_instances: int
    all_map50: float | None
    tiles: int
    per_class: tuple[tuple[str, int, float], ...]
    source: str

    @property
    def reached(self) -> bool:
        return self.map50 is not None and self.map50 >= TARGET_MAP50

    def summary(self) -> str:
        """One line for people."""
        if self.map50 is None:
            return f"no class has {self.min_instances} validation instances: mAP50 not measured ({self.source})"
        return (f"mAP50 {self.map50:.3f} on {self.tiles} validation tiles over the {len(self.classes)} classes with "
                f"≥ {self.min_instances} instances (target {TARGET_MAP50:.2f}: {'reached' if self.reached else 'not reached'}); "
                f"Ultralytics' mean over all {len(self.per_class)} classes present: "
                f"{self.all_map50:.3f}; {self.source}")


def val_instances(data_yaml: str | Path) -> tuple[dict[str, int], int]:
    """Validation instances per class name and the number of validation images, from the label files."""
    from omr_core.datasets.yolo import label_path_for, read_data_yaml, read_labels

    ds = read_data_yaml(data_yaml)
    images = list(ds.splits.get("val", ()))
    counts: dict[str, int] = {}
    for img in images:
        lab = label_path_for(img)
        if not lab.is_file():
            continue
        for c in read_labels(lab)[:, 0].astype(int):
            name = ds.names[c] if 0 <= c < len(ds.names) else str(c)
            counts[name] = counts.get(name, 0) + 1
    return counts, len(images)


def _final_class_ap50(run_dir: Path) -> dict[str, float] | None:
    """AP50 per class of the run's last validation (after training: best.pt's), as the worker recorded it."""
    import orjson

    from omr_core.training.runs import CLASS_AP

    try:
        lines = (run_dir / CLASS_AP).read_bytes().splitlines()
    except OSError:
        return None
    for ln in reversed(lines):
        try:
            row = orjson.loads(ln)
            return {str(k): float(v) for k, v in row["ap50"].items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
            continue  # a line being written, or a record without AP50
    return None


def validation_score(run_dir: str | Path, data_yaml: str | Path, *, min_instances: int = MIN_INSTANCES) -> ValidationScore:
    """Score a finished run on its validation tiles: mean AP50 over the classes with ``min_instances`` instances.

    The APs are Ultralytics' own from the run's final validation of best.pt (recorded per epoch by the worker);
    for a run without that record, best.pt is validated here (`omr_core.evaluation.evaluate`).
    """
    run_dir = Path(run_dir)
    counts, tiles = val_instances(data_yaml)
    ap50 = _final_class_ap50(run_dir)
    source = "Ultralytics' final validation of best.pt"
    if ap50 is None:
        from omr_core.evaluation.evaluate import evaluate, run_defaults

        best = run_dir / "weights" / "best.pt"
        if not best.is_file():
            raise OmrError(f"{run_dir}: no weights/best.pt to score (has the run finished?)")
        d = run_defaults(best)
        ev = evaluate(best, data_yaml, "val", imgsz=int(d.get("imgsz") or 320), batch=16)
        pc = ev.per_class()
        pc = pc[pc["instances"] > 0]
        ap50 = {str(r["class"]): float(r["ap50"]) for _, r in pc.iterrows()}
        source = f"best.pt validated here ({ev.folder})"
    rows = sorted(((n, counts.get(n, 0), v) for n, v in ap50.items() if counts.get(n, 0) > 0), key=lambda r: -r[1])
    big = [r for r in rows if r[1] >= min_instances]
    mean = (sum(r[2] for r in big) / len(big)) if big else None
    all_mean = (sum(r[2] for r in rows) / len(rows)) if rows else None
    return ValidationScore(map50=mean, classes=tuple(r[0] for r in big), min_instances=min_instances,
                           all_map50=all_mean, tiles=tiles, per_class=tuple(rows), source=source)


#: Where a demo run keeps its score (written once the run is scored; the Training page shows it).
SCORE_FILE = "demo_score.json"


def score_demo(run_dir: str | Path, data_yaml: str | Path, synth: str | Path) -> tuple[ValidationScore, DemoCheck]:
    """Score a finished demo run on its validation tiles and on a held-out page; keep the result in the run folder."""
    from dataclasses import asdict

    from omr_core.atomic import write_json

    run_dir = Path(run_dir)
    val = validation_score(run_dir, data_yaml)
    page = check_model(run_dir / "weights" / "best.pt", synth)
    write_json(run_dir / SCORE_FILE, {"validation": asdict(val), "validation_summary": val.summary(),
                                      "page_summary": page.summary(), "noteheads": asdict(page.noteheads)})
    return val, page


def load_demo_score(run_dir: str | Path) -> dict[str, Any] | None:
    """The score `score_demo` kept for this run, or None."""
    import json

    try:
        doc = json.loads((Path(run_dir) / SCORE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def finished_demo_runs(runs_dir: str | Path) -> list[tuple[Path, Path, Path]]:
    """Finished demo runs in ``runs_dir``, newest first: ``(run folder, its data.yaml, the engraved dataset)``.

    A demo run is one trained on the demo's converted dataset (``<datasets>/demo-yolo``) that has a best.pt.
    """
    from omr_core.training.record import RunState
    from omr_core.training.runs import discover_runs, read_run

    out: list[tuple[float, Path, Path, Path]] = []
    for d in discover_runs(runs_dir):
        doc = read_run(d)
        if doc is None or doc.state is not RunState.FINISHED or not (d / "weights" / "best.pt").is_file():
            continue
        data = Path(str(doc.args.get("data") or ""))
        if data.parent.name != YOLO_DIR or not data.is_file():
            continue
        out.append((float(doc.ended or doc.started or 0), d, data, data.parent.parent / SYNTH_DIR))
    return [(d, y, s) for _, d, y, s in sorted(out, key=lambda r: -r[0])]
