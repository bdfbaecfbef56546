"""Benchmark one detector on held-out engraved pages: per-class AP, noteheads, rebuilt stems and ledger lines, time.

Pages are engraved here (clean and ``--degrade scan``, seeds the reference model never saw). Detection AP comes
from Ultralytics' validator (`omr_core.evaluation.evaluate`) on the pages cut the way the model was trained; notehead
precision/recall, stems and ledger lines come from the whole review of each page (`review_page`, run as trained),
with the matching rules of ``omr bench reconstruct`` (`omr_core.evaluation.reconstruct_bench`), and the time per page is that
review on one core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omr_core.errors import OmrError
from omr_core.evaluation.match import box_iou
from omr_core.evaluation.reconstruct_bench import Counts, score_page

#: Seed of the held-out pages: the reference model trains on seeds 101 and 202 (docs/recipe.md).
HELDOUT_SEED = 303
#: Notehead match: box IoU.
NOTEHEAD_IOU = 0.5
DEGRADES = ("none", "scan")

Progress = Callable[[int, int], None]


def notehead_counts(pred: np.ndarray, gt: np.ndarray, iou: float = NOTEHEAD_IOU) -> Counts:
    """One-to-one greedy matching (best IoU first) of predicted and true notehead boxes, any notehead class."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if len(pred) == 0 or len(gt) == 0:
        return Counts(0, len(pred), len(gt))
    m = box_iou(pred, gt)
    pi, gi = np.nonzero(m >= iou)
    p_ok = np.zeros(len(pred), dtype=bool)
    g_ok = np.zeros(len(gt), dtype=bool)
    for k in np.argsort(-m[pi, gi], kind="stable"):
        a, b = pi[k], gi[k]
        if not p_ok[a] and not g_ok[b]:
            p_ok[a] = g_ok[b] = True
    return Counts(int(p_ok.sum()), len(pred), len(gt))


@dataclass(frozen=True)
class ModelPage:
    """The whole review of one held-out page, scored.

    Attributes:
        filename: Page image.
        degrade: ``none`` or ``scan``.
        noteheads: Model noteheads matched to ground-truth noteheads at IoU 0.5.
        stems: Stems rebuilt from the model's noteheads, matched like ``omr bench reconstruct``.
        ledgers: Ledger lines rebuilt from the model's noteheads.
        seconds: Whole review (inference, staves, reconstruction) on one core.
        error: Why the page could not be scored ("" when it was).
    """

    filename: str
    degrade: str
    noteheads: Counts
    stems: Counts
    ledgers: Counts
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class ModelBench:
    """Everything `bench_model` measured.

    Attributes:
        model: The weights file.
        inference: How review ran the model (``tiled 640 px → imgsz 320, 30 tiles, NMS-merged`` on the first page).
        pages: One record per reviewed page.
        per_class: Per degrade, Ultralytics' per-class table (class, instances, ap50, ap50_95, ...).
        summary: Per degrade, Ultralytics' overall precision/recall/mAP50/mAP50-95 and the pages validated.
    """

    model: str
    inference: str
    pages: tuple[ModelPage, ...]
    per_class: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)

    def _sum(self, degrade: str, what: str) -> Counts:
        return sum((getattr(p, what) for p in self.pages if p.degrade == degrade and not p.error), Counts())

    def core_map(self, degrade: str) -> tuple[float, float]:
        """Mean AP50 and AP50-95 over the model's classes that have ground truth in the held-out pages."""
        t = self.per_class.get(degrade)
        if t is None or t.empty:
            return float("nan"), float("nan")
        lab = t[t["labelled"].astype(bool)]
        return float(lab["ap50"].mean()), float(lab["ap50_95"].mean())

    def rows(self) -> list[dict[str, Any]]:
        """Benchmark rows (``figure``, ``value``, ``target``, ``ok``) per degrade, for `omr bench` and ``make bench``."""
        out: list[dict[str, Any]] = []
        for d in DEGRADES:
            pages = [p for p in self.pages if p.degrade == d]
            if not pages:
                continue
            tag = "clean" if d == "none" else d
            m50, m5095 = self.core_map(d)
            nh, stems, ledgers = self._sum(d, "noteheads"), self._sum(d, "stems"), self._sum(d, "ledgers")
            secs = [p.seconds for p in pages if not p.error]
            n_val = int(self.summary.get(d, {}).get("images", 0))
            out += [
                {"figure": f"{tag}: mAP50 / mAP50-95, model classes with ground truth ({n_val} validator images)",
                 "value": f"{m50:.3f} / {m5095:.3f}", "target": "", "ok": None},
                {"figure": f"{tag}: notehead precision / recall @ IoU 0.5 ({len(pages)} whole pages, review)",
                 "value": f"{nh.precision:.3f} / {nh.recall:.3f}", "target": "", "ok": None},
                {"figure": f"{tag}: stems F1 rebuilt from the model's noteheads", "value": round(stems.f1, 4), "target": "", "ok": None},
                {"figure": f"{tag}: ledger lines F1 rebuilt from the model's noteheads", "value": round(ledgers.f1, 4), "target": "", "ok": None},
                {"figure": f"{tag}: whole review, s/page on one core (median)",
                 "value": round(float(np.median(secs)), 2) if secs else float("nan"), "target": "", "ok": None},
            ]
        out.append({"figure": "model run as", "value": self.inference, "target": "", "ok": None})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form: rows, per-class tables and per-page scores."""
        return {
            "model": self.model,
            "inference": self.inference,
            "rows": self.rows(),
            "summary": self.summary,
            "per_class": {d: t.replace({np.nan: None}).to_dict("records") for d, t in self.per_class.items()},
            "pages": [
                {"filename": p.filename, "degrade": p.degrade, "noteheads": vars(p.noteheads), "stems": vars(p.stems),
                 "ledgers": vars(p.ledgers), "seconds": round(p.seconds, 4), "error": p.error}
                for p in self.pages
            ],
        }


def engrave_heldout(
    root: str | os.PathLike[str],
    pages: int,
    seed: int,
    degrade: str,
    scale: float = 1.0,
    *,
    test_fraction: float = 0.99,
    layout: str = "normal",
    name: str = "heldout",
) -> Path:
    """Engrave ``pages`` held-out pages into a folder of ``root`` named after the arguments, once; returns the path
    of its deepscores_test.json (with the default ``test_fraction`` every page is a test page).

    The benchmarks engrave their test pages here, so a second run with the same ``root`` reuses them.
    """
    from omr_core.datasets.synth import synth_dataset

    variant = (f"-{layout}" if layout != "normal" else "") + (f"-t{test_fraction:g}" if test_fraction != 0.99 else "")
    out = Path(root) / f"{name}-{degrade}-s{seed}-{pages}-x{scale:g}{variant}"
    if not (out / "deepscores_test.json").is_file():
        synth_dataset(out, pages=pages, seed=seed, test_fraction=test_fraction, degrade=degrade, overwrite=True,
                      scale=scale, layout=layout)
    return out / "deepscores_test.json"


def _validator_set(test_json: Path, out: Path, names: Sequence[str], tile: int | None, overlap: float) -> Path:
    """The held-out pages as a YOLO dataset with exactly the model's classes in its order, cut like its training data.

    The converter needs a val split: one page goes there and the validator runs on the ``train`` split (the rest).
    """
    from omr_core.audit.convert import ConvertOptions, convert
    from omr_core.audit.plan import make_plan
    from omr_core.datasets.discovery import load_dataset

    ds = load_dataset([test_json])
    wanted = [n for n in names if n in ds.names]
    plan = make_plan(ds.names, keep_only=wanted, allow_critical=True, reasons={})
    if list(plan.kept) != list(names):
        raise OmrError(
            f"the model's {len(names)} classes are not DeepScoresV2 names in DeepScoresV2 order "
            f"(e.g. {[n for n in names if n not in ds.names][:3]}); benchmark it with `omr evaluate` on its own data.yaml"
        )
    opts = ConvertOptions(tile=tile, overlap=overlap, val_from="split", val_fraction=0.01, overwrite=out.exists())
    return convert(ds, out, plan, opts).data_yaml


def _review_pages(loaded: Any, test_json: Path, degrade: str, limit: int | None,
                  tick: Callable[[], None] = lambda: None) -> list[ModelPage]:
    from omr_core.datasets.deepscores import load_deepscores
    from omr_core.review.images import load_page
    from omr_core.review.pipeline import review_page

    data = load_deepscores(test_json)
    by_image: dict[Any, Any] = {k: g for k, g in data.annotations.groupby("image", observed=True)}
    imgs = data.images[data.images["path"].astype(str) != ""]
    out = []
    for row in imgs.head(limit).itertuples(index=False) if limit else imgs.itertuples(index=False):
        ann = by_image.get(row.image)
        gray = load_page(str(row.path)).gray
        t0 = time.perf_counter()
        res = review_page(gray, source=str(row.filename), model=loaded)
        secs = time.perf_counter() - t0
        if ann is None or ann.empty:
            out.append(ModelPage(str(row.filename), degrade, Counts(), Counts(), Counts(), secs, "no annotations"))
            tick()
            continue
        names = ann["name"].astype(str).to_numpy()
        gt_heads = ann[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)[np.char.startswith(names.astype(str), "notehead")]
        pred_heads = np.array([h.bbox for h in res.noteheads], dtype=np.float64).reshape(-1, 4)
        rec = score_page(gray, ann, str(row.filename), heads=list(res.noteheads))
        out.append(ModelPage(str(row.filename), degrade, notehead_counts(pred_heads, gt_heads), rec.stems, rec.ledgers,
                             secs, rec.error))
        tick()
    return out


def bench_model(
    model: str | os.PathLike[str],
    work: str | os.PathLike[str],
    *,
    pages: int = 20,
    seed: int = HELDOUT_SEED,
    degrades: Sequence[str] = DEGRADES,
    page_scale: float = 1.0,
    threads: int = 1,
    progress: Progress | None = None,
) -> ModelBench:
    """Benchmark ``model`` on ``pages`` held-out engraved pages per degrade (engraved into ``work`` once).

    Args:
        model: Detection weights (``best.pt`` or a shipped model).
        work: Folder for the engraved pages, the validator datasets and the evaluations (reused when present).
        pages: Pages per degrade (>= 20 for the recorded benchmark; fewer only for tests).
        seed: Engraver seed of the held-out pages (not 101 or 202, which the reference model trains on).
        degrades: ``none`` (clean) and/or ``scan``.
        page_scale: Engraving page scale (1.0 = full size; below 1 only for fast tests).
        threads: Torch and OpenCV threads while reviewing (1: the time per page on one core).
        progress: ``(steps done, steps total)``: engraving and converting, validating, then one per reviewed page.

    Raises:
        ModelError: The file is not a usable detector.
        OmrError: The model's classes are not DeepScoresV2 names (no held-out ground truth to compare with).
    """
    import cv2
    import torch

    from omr_core.evaluation.evaluate import evaluate
    from omr_core.review.inference import load_model, plan_inference

    root = Path(work)
    root.mkdir(parents=True, exist_ok=True)
    loaded = load_model(model)
    info = loaded.info
    names = [info.canonical[i] for i in sorted(info.canonical)]
    sc = info.scale
    size = (sc.imgsz if sc is not None and sc.imgsz else None) or info.train_imgsz or 640
    steps, done = (2 + pages) * len(degrades), 0  # engrave + convert, validate, one per reviewed page

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    per_class: dict[str, pd.DataFrame] = {}
    summary: dict[str, dict[str, float]] = {}
    reviewed: list[ModelPage] = []
    inference = ""
    old_threads, old_cv = torch.get_num_threads(), cv2.getNumThreads()
    for d in degrades:
        test_json = engrave_heldout(root, pages + 1, seed, d, page_scale)  # +1: the page the converter puts in val
        tick()
        yaml_path = _validator_set(test_json, root / f"yolo-{d}-s{seed}", names, sc.tile if sc else None,
                                   sc.overlap if sc and sc.tile else 0.2)
        ev = evaluate(model, yaml_path, "train", imgsz=int(size), batch=1, device="cpu",
                      out=root / f"evaluation-{d}-{Path(model).stem}", force=True)
        per_class[d] = ev.per_class()
        summary[d] = {**ev.summary, "images": float(ev.n_images), "instances": float(ev.n_instances)}
        tick()
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        try:
            reviewed += _review_pages(loaded, test_json, d, pages, tick)
        finally:
            torch.set_num_threads(old_threads)
            cv2.setNumThreads(old_cv)
        if not inference and reviewed:
            from omr_core.review.images import load_page

            first = load_page(str(test_json.parent / "images" / reviewed[0].filename)).gray
            inference = plan_inference(info, int(first.shape[1]), int(first.shape[0])).summary
    return ModelBench(model=str(model), inference=inference, pages=tuple(reviewed), per_class=per_class, summary=summary)


def per_class_markdown(bench: ModelBench) -> str:
    """Per-class AP50 / AP50-95 of the classes with ground truth, one column pair per degrade (for a model card)."""
    ds = [d for d in DEGRADES if d in bench.per_class]
    if not ds:
        return ""
    head = "| class | " + " | ".join(f"AP50 {d} | AP50-95 {d} | instances {d}" for d in ds) + " |"
    lines = [head, "|---|" + "---|---|---|" * len(ds)]
    first = bench.per_class[ds[0]]
    for i, name in enumerate(first["class"]):
        cells = []
        for d in ds:
            r = bench.per_class[d].iloc[i]
            cells += [f"{r['ap50']:.3f}", f"{r['ap50_95']:.3f}", str(int(r["instances"]))] if r["labelled"] else ["", "", "0"]
        if any(cells[k] != "0" for k in range(2, len(cells), 3)):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

