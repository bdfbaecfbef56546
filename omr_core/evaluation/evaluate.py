"""Evaluate a YOLO model on a split: Ultralytics' per-class metrics plus every prediction, cached in the run folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omr_core.atomic import write_atomic
from omr_core.errors import DataFormatError, OmrError
from omr_core.evaluation.match import claim_all, empty_cases, match_cases
from omr_core.evaluation.validate import (
    EvaluationError,
    Progress,
    frames,
    nms_limit_hits,
    nms_warning,
    per_class_table,
    run_validation,
)
from omr_core.folders import search_subfolders

#: Confidence of the stored predictions: Ultralytics' own default for validation (mAP needs the low tail).
VAL_CONF = 0.001
#: Default detection threshold for failure lists and the confusion matrix (Ultralytics' predict default).
DEFAULT_CONF = 0.25
#: Bump when the files of an evaluation folder change meaning; old caches are then recomputed.
FORMAT_VERSION = 1

META = "evaluation.json"
PER_CLASS = "ultralytics_per_class.csv"  # the exports write their own per_class.csv
CURVES = "curves.npz"
IMAGES = "images.parquet"
GT = "gt.parquet"
PREDS = "preds.parquet"


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a model on a dataset split; the tables live in ``folder`` and are read on demand.

    Attributes:
        folder: Folder holding the evaluation's files (the cache).
        key: Hash of everything the numbers depend on (model file, data, split, image size, batch, thresholds).
        model: The weights file evaluated.
        data: The data.yaml.
        split: Split evaluated (``val``, ``test``, ...).
        imgsz: Inference image size.
        batch: Validation batch size (it changes rectangular padding, so results can differ slightly).
        val_conf: Confidence of the validation pass (and of the stored predictions).
        iou: NMS IoU of the validation pass.
        conf: Default detection threshold for failure lists.
        names: Class names of the model, by index.
        n_images: Images in the split.
        n_instances: Ground-truth objects in the split.
        seconds: Time the validation pass took.
        created: ISO time the evaluation was computed.
        ultralytics: Ultralytics version that computed it.
        summary: Ultralytics' overall precision, recall, mAP50, mAP50-95.
        warnings: Ultralytics' warnings during the pass (NMS time limit, max_det raised, ...).
        cached: True when this object was read from the cache instead of computed now.
    """

    folder: Path
    key: str
    model: Path
    data: Path
    split: str
    imgsz: int
    batch: int
    val_conf: float
    iou: float
    conf: float
    names: tuple[str, ...]
    n_images: int
    n_instances: int
    seconds: float
    created: str
    ultralytics: str
    summary: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    cached: bool = False

    @property
    def nms_limit_hits(self) -> int:
        """Batches where Ultralytics' NMS hit its time limit and dropped predictions (as ``yolo val`` would)."""
        return nms_limit_hits(self.warnings)

    @property
    def warning(self) -> str:
        """A sentence for people about anything that makes the numbers less than complete ("" when nothing)."""
        return nms_warning(self.nms_limit_hits)

    @property
    def nc(self) -> int:
        return len(self.names)

    @property
    def label(self) -> str:
        """Short human label: ``<run or model> · <split> · imgsz N``."""
        return f"{_model_label(self.model)} · {self.split} · imgsz {self.imgsz}"

    def per_class(self) -> pd.DataFrame:
        """Ultralytics' per-class table in class-index order (see `per_class_table`)."""
        return _read_csv(self.folder / PER_CLASS, _mtime(self.folder / PER_CLASS)).copy()

    def curves(self) -> dict[str, np.ndarray]:
        """Ultralytics' confidence curves: ``px`` (1000,), ``class_index`` (k,), ``p``/``r``/``f1`` (k, 1000)."""
        with np.load(self.folder / CURVES) as z:
            return {k: z[k] for k in z.files}

    def images(self) -> pd.DataFrame:
        """``image_id, image, path, width, height`` (image: path relative to the dataset root)."""
        return _read_parquet(self.folder / IMAGES, _mtime(self.folder / IMAGES))

    def ground_truth(self) -> pd.DataFrame:
        """Ground truth as the validator saw it: ``image_id, cls, x0, y0, x1, y1`` in image pixels."""
        return _read_parquet(self.folder / GT, _mtime(self.folder / GT))

    def predictions(self) -> pd.DataFrame:
        """Every prediction at ``val_conf``: ``image_id, cls, conf, x0, y0, x1, y1, tp50`` (Ultralytics' own TP flag)."""
        return _read_parquet(self.folder / PREDS, _mtime(self.folder / PREDS))

    def cases(self, conf: float | None = None) -> pd.DataFrame:
        """TP/FN/FP cases at detection threshold ``conf`` (default: the evaluation's), computed once and cached."""
        return failure_cases(self, conf)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("folder", "model", "data"):
            d[k] = str(d[k])
        d["names"] = list(self.names)
        d["warnings"] = list(self.warnings)
        d.pop("cached")
        return d


def _model_label(model: Path) -> str:
    if model.parent.name == "weights":
        return f"{model.parent.parent.name}/{model.name}"
    return model.name


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError as exc:
        raise EvaluationError(f"{path} is missing: the evaluation folder is incomplete; re-run the evaluation") from exc


@lru_cache(maxsize=16)
def _read_parquet(path: Path, mtime: int) -> pd.DataFrame:
    return pd.read_parquet(path)


@lru_cache(maxsize=16)
def _read_csv(path: Path, mtime: int) -> pd.DataFrame:
    df = pd.read_csv(path, keep_default_na=True)
    return df.sort_values("class_index").reset_index(drop=True) if "class_index" in df.columns else df


# -- the data.yaml split (what the cache key depends on) ---------------------------------------------------------------


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise DataFormatError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise DataFormatError(f"{path} must be a mapping with path/train/val/names keys")
    return doc


def split_images(data: str | os.PathLike[str], split: str) -> list[Path]:
    """Image files of ``split`` in a YOLO data.yaml (resolved as Ultralytics does, by `datasets.yolo`).

    Raises:
        EvaluationError: The yaml has no such split, or it has no images.
        DataFormatError: The yaml is malformed or a split entry is missing on disk.
    """
    from omr_core.datasets.yolo import read_data_yaml

    ds = read_data_yaml(data)
    if split not in ds.splits:
        raise EvaluationError(f"{ds.yaml_path} has no {split!r} split; it has: {', '.join(ds.splits) or 'none'}")
    if not ds.splits[split]:
        raise EvaluationError(f"split {split!r} of {ds.yaml_path} has no images")
    return list(ds.splits[split])


def dataset_root(data: str | os.PathLike[str]) -> Path:
    """The root folder a data.yaml resolves its splits from."""
    from omr_core.datasets.yolo import read_data_yaml

    return read_data_yaml(data).root


def data_splits(data: str | os.PathLike[str]) -> list[str]:
    """The split names a data.yaml defines, ``val`` and ``test`` first (raises DataFormatError if malformed)."""
    from omr_core.datasets.yolo import read_data_yaml

    have = list(read_data_yaml(data).splits)
    return [k for k in ("val", "test") if k in have] + [k for k in have if k not in ("val", "test")]


def _fingerprint(model: Path, data: Path, split: str, params: dict[str, Any]) -> str:
    import ultralytics

    from omr_core.datasets.yolo import label_path_for

    h = hashlib.sha256()
    st = model.stat()
    h.update(json.dumps([FORMAT_VERSION, ultralytics.__version__, str(model), st.st_mtime_ns, st.st_size]).encode())
    h.update(data.read_bytes())
    h.update(str(data).encode())
    h.update(json.dumps({"split": split, **params}, sort_keys=True).encode())
    for img in split_images(data, split):
        lab = label_path_for(img)
        try:
            ls = lab.stat()
            h.update(f"{img}|{ls.st_mtime_ns}|{ls.st_size}\n".encode())
        except OSError:
            h.update(f"{img}|-\n".encode())
    return h.hexdigest()[:12]


# -- where evaluations live --------------------------------------------------------------------------------------------


def run_of(model: str | os.PathLike[str]) -> Path | None:
    """The run folder of a weights file (``<run>/weights/best.pt`` → ``<run>``), None if it is not in one."""
    m = Path(model).expanduser().resolve()
    run = m.parent.parent
    if m.parent.name == "weights" and (run / "args.yaml").is_file():
        return run
    return None


def default_folder(model: str | os.PathLike[str], split: str, key: str) -> Path:
    """``<run>/evaluation/<weights>-<split>-<key>`` for a run's weights, else ``<workspace>/evaluations/...``."""
    run = run_of(model)
    if run is not None:
        return run / "evaluation" / f"{Path(model).stem}-{split}-{key}"
    from omr_core.workspace import get_workspace

    return get_workspace().root / "evaluations" / f"{Path(model).stem}-{split}-{key}"


def default_batch(device: str | None = None) -> int:
    """16 on a GPU; 1 on the CPU, where Ultralytics' NMS time limit (2 s + 0.05 s per image of a batch) otherwise
    drops predictions of weak models silently (measured: 46% of them at batch 8 on 100 engraved pages)."""
    if device is not None and str(device).lower() != "cpu":
        return 16
    if device is None:
        try:
            import torch

            if torch.cuda.is_available():
                return 16
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
    return 1


def _params(imgsz: int, batch: int, val_conf: float, iou: float) -> dict[str, Any]:
    return {"imgsz": int(imgsz), "batch": int(batch), "val_conf": float(val_conf), "iou": float(iou)}


def run_defaults(model: str | os.PathLike[str]) -> dict[str, Any]:
    """What a run's own args.yaml proposes for evaluating its weights: ``data``, ``imgsz``, ``split`` (val), ``task``."""
    run = run_of(model)
    out: dict[str, Any] = {"data": None, "imgsz": 640, "split": "val", "task": None}
    if run is None:
        return out
    try:
        doc = _load_yaml(run / "args.yaml")
    except (OmrError, OSError):
        return out
    if doc.get("data"):
        d = Path(str(doc["data"])).expanduser()
        out["data"] = d if d.is_absolute() else (run / d if (run / d).exists() else d)
    if isinstance(doc.get("imgsz"), int):
        out["imgsz"] = doc["imgsz"]
    if doc.get("task"):
        out["task"] = str(doc["task"])
    return out


def load_evaluation(folder: str | os.PathLike[str]) -> Evaluation:
    """Read an evaluation folder written by `evaluate`."""
    folder = Path(folder)
    try:
        doc = json.loads((folder / META).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvaluationError(f"{folder} is not an evaluation folder (no {META})") from exc
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{folder / META} cannot be read: {exc}") from exc
    if doc.get("format") != FORMAT_VERSION:
        raise EvaluationError(f"{folder} was written by another version of this tool; re-run the evaluation")
    ev = doc["evaluation"]
    return Evaluation(
        folder=folder,
        key=ev["key"],
        model=Path(ev["model"]),
        data=Path(ev["data"]),
        split=ev["split"],
        imgsz=int(ev["imgsz"]),
        batch=int(ev["batch"]),
        val_conf=float(ev["val_conf"]),
        iou=float(ev["iou"]),
        conf=float(ev["conf"]),
        names=tuple(ev["names"]),
        n_images=int(ev["n_images"]),
        n_instances=int(ev["n_instances"]),
        seconds=float(ev["seconds"]),
        created=ev["created"],
        ultralytics=ev["ultralytics"],
        summary={k: float(v) for k, v in ev.get("summary", {}).items()},
        warnings=tuple(ev.get("warnings", ())),
        cached=True,
    )


def list_evaluations(root: str | os.PathLike[str], max_depth: int = 5) -> list[Evaluation]:
    """Every readable evaluation under ``root`` (runs folder or workspace), newest first."""
    root = Path(root)
    out: list[Evaluation] = []
    if not root.is_dir():
        return out

    def walk(d: Path, depth: int) -> None:
        if (d / META).is_file():
            try:
                out.append(load_evaluation(d))
            except (OmrError, KeyError, TypeError, ValueError):
                pass
            return
        if depth >= max_depth:
            return
        for p in search_subfolders(d):
            walk(p, depth + 1)

    walk(root, 0)
    return sorted(out, key=lambda e: e.created, reverse=True)


def _write_folder(folder: Path, files: dict[str, Callable[[Path], object]]) -> None:
    """Write each file through a temp name and a rename; evaluation.json last, so a half-written folder is not a hit."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META).unlink(missing_ok=True)  # a reader must never pair the old metadata with new tables
    for old in folder.glob("cases-*.parquet"):  # cases of a previous evaluation in the same folder
        old.unlink(missing_ok=True)
    for name, writer in files.items():
        write_atomic(folder / name, writer)


def find_cached(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    split: str = "val",
    *,
    imgsz: int | None = None,
    batch: int | None = None,
    val_conf: float = VAL_CONF,
    iou: float = 0.7,
    out: str | os.PathLike[str] | None = None,
) -> Evaluation | None:
    """The cached evaluation for exactly these inputs, or None (nothing is computed)."""
    model_p, data_p, size = _resolve_inputs(model, data, imgsz)
    batch = batch or default_batch()
    key = _fingerprint(model_p, data_p, split, _params(size, batch, val_conf, iou))
    folder = Path(out) if out is not None else default_folder(model_p, split, key)
    return _cached(folder, key)


def _cached(folder: Path, key: str) -> Evaluation | None:
    if not (folder / META).is_file():
        return None
    try:
        ev = load_evaluation(folder)
    except (OmrError, KeyError, TypeError, ValueError):
        return None
    return ev if ev.key == key else None


def _resolve_inputs(
    model: str | os.PathLike[str], data: str | os.PathLike[str] | None, imgsz: int | None
) -> tuple[Path, Path, int]:
    model_p = Path(model).expanduser().resolve()
    if not model_p.is_file():
        raise EvaluationError(f"model {model_p} does not exist; give a .pt weights file (e.g. <run>/weights/best.pt)")
    defaults = run_defaults(model_p)
    if defaults.get("task") not in (None, "detect"):  # before the data checks: a classifier's data is a folder
        raise EvaluationError(
            f"{model_p} comes from a {defaults['task']} run (task: {defaults['task']} in its args.yaml): per-class "
            "failures count missed and false boxes per class, which needs a detection model (task: detect); "
            "pick the weights of a detection run")
    if data is None:
        data = defaults["data"]
        if data is None:
            raise EvaluationError(f"{model_p} is not in a run folder with args.yaml: give the data.yaml to evaluate on")
    data_p = Path(data).expanduser().resolve()
    if not data_p.is_file():
        raise EvaluationError(f"data file {data_p} does not exist; give a YOLO data.yaml")
    size = int(imgsz or defaults["imgsz"] or 640)
    if size < 32:
        raise EvaluationError(f"imgsz {size} is too small; use at least 32 (a multiple of 32)")
    return model_p, data_p, size


def evaluate(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    split: str = "val",
    *,
    imgsz: int | None = None,
    conf: float = DEFAULT_CONF,
    batch: int | None = None,
    device: str | None = None,
    val_conf: float = VAL_CONF,
    iou: float = 0.7,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate ``model`` on ``split`` of ``data`` with Ultralytics' validator and keep everything for analysis.

    The per-class numbers are Ultralytics' own (``model.val``); a subclass of its validator only records the boxes
    it already computes, so the failure lists come from the same predictions. Results are cached: the same model
    file, data, split and parameters load from ``out`` without running anything.

    Args:
        model: Weights file (``.pt``).
        data: YOLO data.yaml; default: the one in the run's args.yaml.
        split: Split to evaluate (``val``, ``test``).
        imgsz: Inference size; default: the run's training size, else 640.
        conf: Default detection threshold of the failure lists and the confusion matrix (mAP always uses the
            low ``val_conf`` tail, as Ultralytics does).
        batch: Validation batch size; default `default_batch` (16 on a GPU, 1 on the CPU).
        device: Torch device (``cpu``, ``0``); default: Ultralytics' choice.
        val_conf: Confidence of the validation pass.
        iou: NMS IoU of the validation pass.
        out: Evaluation folder; default ``<run>/evaluation/<weights>-<split>-<key>`` (`default_folder`).
        force: Re-run even when a cached evaluation exists.
        progress: ``progress(done, total)`` after every validation batch.

    Returns:
        The `Evaluation` (``cached=True`` when nothing was run).

    Raises:
        EvaluationError: Missing model or data, unknown split, or Ultralytics refused the inputs.

    Examples:
        >>> ev = evaluate("runs/exp1/weights/best.pt", split="val")  # doctest: +SKIP
        >>> ev.per_class().sort_values("ap50_95").head()  # doctest: +SKIP
    """
    if not 0.0 <= conf <= 1.0 or not 0.0 < val_conf <= 1.0:
        raise EvaluationError(f"confidence thresholds must be in [0, 1] (conf={conf}, val_conf={val_conf})")
    model_p, data_p, size = _resolve_inputs(model, data, imgsz)
    batch = batch or default_batch(device)
    params = _params(size, batch, val_conf, iou)
    key = _fingerprint(model_p, data_p, split, params)
    folder = Path(out).expanduser().resolve() if out is not None else default_folder(model_p, split, key)
    if not force:
        hit = _cached(folder, key)
        if hit is not None:
            return hit if hit.conf == conf else _replace_conf(hit, conf)

    import ultralytics

    metrics, capture, seconds = run_validation(model_p, data_p, split, params, device, progress)
    names = tuple(str(metrics.names[i]) for i in range(len(metrics.names)))
    table = per_class_table(metrics, names)
    images, gt, preds = frames(capture, dataset_root(data_p))
    curves = _curves(metrics.box)
    mp, mr, map50, map5095 = (float(x) for x in metrics.box.mean_results())
    ev = Evaluation(
        folder=folder,
        key=key,
        model=model_p,
        data=data_p,
        split=split,
        imgsz=size,
        batch=batch,
        val_conf=val_conf,
        iou=iou,
        conf=conf,
        names=names,
        n_images=len(images),
        n_instances=int(len(gt)),
        seconds=round(seconds, 3),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ultralytics=ultralytics.__version__,
        summary={"precision": mp, "recall": mr, "map50": map50, "map50_95": map5095},
        warnings=tuple(capture.warnings[:200]),  # one line per batch at most for the NMS limit
    )
    _write_evaluation(ev, table, curves, images, gt, preds)
    return ev


def _curves(box: Any) -> dict[str, np.ndarray]:
    """The precision, recall and F1 curves of Ultralytics' box metrics (empty where this version has none)."""
    return {
        "px": np.asarray(getattr(box, "px", np.linspace(0, 1, 1000)), dtype=np.float32),
        "class_index": np.asarray(box.ap_class_index, dtype=np.int64),
        "p": np.asarray(getattr(box, "p_curve", np.zeros((0, 1000))), dtype=np.float32),
        "r": np.asarray(getattr(box, "r_curve", np.zeros((0, 1000))), dtype=np.float32),
        "f1": np.asarray(getattr(box, "f1_curve", np.zeros((0, 1000))), dtype=np.float32),
    }


def _write_evaluation(
    ev: Evaluation, table: pd.DataFrame, curves: dict[str, np.ndarray], images: pd.DataFrame, gt: pd.DataFrame,
    preds: pd.DataFrame,
) -> None:
    """Write the tables and curves of ``ev`` into its folder, its metadata last (`_write_folder`)."""
    meta = {"format": FORMAT_VERSION, "evaluation": _finite(ev.to_dict())}
    _write_folder(
        ev.folder,
        {
            PER_CLASS: lambda p: table.to_csv(p, index=False),
            CURVES: lambda p: _save_npz(p, curves),
            IMAGES: lambda p: images.to_parquet(p, index=False),
            GT: lambda p: gt.to_parquet(p, index=False),
            PREDS: lambda p: preds.to_parquet(p, index=False),
            META: lambda p: p.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8"),
        },
    )


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _replace_conf(ev: Evaluation, conf: float) -> Evaluation:
    from dataclasses import replace

    return replace(ev, conf=conf)


# -- cases at a threshold (cached next to the evaluation) ---------------------------------------------------------------


@lru_cache(maxsize=4)
def _claims(folder: Path, mtime: int) -> tuple[np.ndarray, np.ndarray]:
    ev = load_evaluation(folder)
    return claim_all(ev.ground_truth(), ev.predictions(), ev.n_images)


def failure_cases(ev: Evaluation, conf: float | None = None) -> pd.DataFrame:
    """The cases table (`evaluate_match.match_cases`) at threshold ``conf``, cached as ``cases-<conf>.parquet``."""
    conf = float(ev.conf if conf is None else conf)
    if conf < ev.val_conf:
        raise EvaluationError(
            f"threshold {conf} is below the confidence the predictions were stored at ({ev.val_conf}); "
            "re-run the evaluation with a lower val_conf"
        )
    path = ev.folder / f"cases-{conf:.4f}.parquet"
    if path.is_file():
        return _read_parquet(path, _mtime(path))
    if ev.n_images == 0:
        return empty_cases()
    claims = _claims(ev.folder, _mtime(ev.folder / PREDS))
    cases = match_cases(ev.ground_truth(), ev.predictions(), ev.n_images, conf, claims=claims)
    with contextlib.suppress(OSError):  # a read-only evaluation folder still works, it just recomputes
        write_atomic(path, lambda tmp: cases.to_parquet(tmp, index=False))
    return cases


# -- runs the page can evaluate ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunChoice:
    """A training run folder with weights, and what its args.yaml proposes for evaluation."""

    name: str
    path: Path
    weights: tuple[Path, ...]
    data: Path | None
    imgsz: int
    split: str = "val"


def run_choices(runs_dir: str | os.PathLike[str]) -> list[RunChoice]:
    """Runs under ``runs_dir`` that have weights (``weights/*.pt``) and an args.yaml, best.pt first."""
    from omr_core.training.runs import discover_runs, run_name

    out = []
    for run in discover_runs(runs_dir):
        if not (run / "args.yaml").is_file():
            continue
        pts = sorted((run / "weights").glob("*.pt"), key=lambda p: (p.name != "best.pt", p.name != "last.pt", p.name))
        if not pts:
            continue
        d = run_defaults(pts[0])
        out.append(RunChoice(name=run_name(runs_dir, run), path=run, weights=tuple(pts), data=d["data"], imgsz=d["imgsz"]))
    return out
