"""First start: engrave a small dataset, convert it with the "core symbols" preset, start a short CPU training."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omr_core.errors import OmrError
from omr_core.workspace import Workspace, get_workspace

#: The audit preset the demo converts with (thin symbols are rebuilt from geometry, not detected).
CORE_PRESET = "core symbols, reconstruct thin ones"
SYNTH_DIR = "demo-synth"
YOLO_DIR = "demo-yolo"

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
    """

    synth: Path
    data_yaml: Path
    run_dir: Path
    excluded: tuple[str, ...]
    reused: bool


def run_demo(
    workspace: Workspace | None = None,
    *,
    pages: int = 30,
    epochs: int = 10,
    imgsz: int = 640,
    batch: int = 4,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Engrave ``pages`` pages (music21 corpus → verovio), convert them, start ``yolov8n.yaml`` on the CPU.

    An existing demo dataset in the workspace is reused; the run gets a fresh name (``demo``, ``demo-2`` ...).

    Args:
        workspace: Workspace (default: from the environment).
        pages: Pages to engrave.
        epochs: Training epochs (about 20 s each on a laptop CPU at the defaults).
        imgsz: Training image size.
        batch: Batch size.
        seed: Engraving seed.
        log: Receives one line per step.
        progress: ``(done, total)`` of the step in progress (engraving pages, then converting).

    Returns:
        A `DemoResult`; the training keeps running in the background.
    """
    from omr_core.audit import PRESETS, load_dataset, make_plan
    from omr_core.convert import ConvertOptions, convert
    from omr_core.datasets.synth import synth_dataset
    from omr_core.training.launcher import launch, unique_name
    from omr_core.training.spec import build_spec

    ws = (workspace or get_workspace()).ensure()
    say = log or (lambda _m: None)
    synth = ws.datasets / SYNTH_DIR
    sources = [synth / "deepscores_train.json", synth / "deepscores_test.json"]
    reused = all(p.is_file() for p in sources)
    t0 = time.perf_counter()
    if reused:
        say(f"reusing the engraved demo dataset in {synth}")
    else:
        say(f"engraving {pages} pages into {synth} …")
        rep = synth_dataset(synth, pages=pages, seed=seed, progress=progress, overwrite=synth.exists())
        say(f"engraved {rep.pages} pages, {rep.annotations} annotations in {rep.seconds:.0f} s")
    out = ws.datasets / YOLO_DIR
    data_yaml = out / "data.yaml"
    ds = load_dataset(sources)
    excluded = PRESETS[CORE_PRESET].exclusions(ds.names)
    if not (reused and data_yaml.is_file()):
        say(f"converting with the preset '{CORE_PRESET}' (excluding {', '.join(excluded) or 'nothing'}) …")
        plan = make_plan(ds.names, excluded, reasons={n: f"preset {CORE_PRESET}" for n in excluded})
        plan.check()
        crep = convert(ds, out, plan, ConvertOptions(imgsz=imgsz, overwrite=out.exists()), progress=progress)
        if not crep.verification.ok:
            raise OmrError("the demo conversion failed its own verification:\n" + "\n".join(crep.verification.lines))
        data_yaml = crep.data_yaml
        say(f"converted: {crep.labels} labels, {len(crep.names)} classes, splits {crep.split_images}")
    name = unique_name(ws.runs, "demo")
    spec = build_spec(
        name,
        "yolov8n.yaml",
        str(data_yaml),
        preset="sheet-music",
        args={"epochs": epochs, "imgsz": imgsz, "batch": batch, "device": "cpu", "workers": 0, "seed": seed},
    )
    run_dir = launch(spec, ws.runs)
    say(f"training started in {run_dir} ({time.perf_counter() - t0:.0f} s so far); watch it on the Training page")
    return DemoResult(synth=synth, data_yaml=Path(data_yaml), run_dir=run_dir, excluded=tuple(excluded), reused=reused)
