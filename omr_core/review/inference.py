"""Run an Ultralytics detector on a score page (whole page or overlapping tiles) and name its boxes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omr_core.errors import OmrError
from omr_core.raster import tile_origins
from omr_core.training.scale import TrainingScale, from_checkpoint


class ModelError(OmrError):
    """A model file that cannot be used for review (missing, not a checkpoint, not a detector)."""


@dataclass(frozen=True)
class Detection:
    """One detected symbol in page pixels.

    Attributes:
        bbox: ``(x0, y0, x1, y1)``.
        name: Class name (the official DeepScoresV2 spelling when the model's name is one, else the model's).
        conf: Confidence 0-1.
        cls: The model's class index.
        group: Class group (see `omr_core.classes.GROUPS`); ``"other"`` for names outside DeepScoresV2.
    """

    bbox: tuple[float, float, float, float]
    name: str
    conf: float
    cls: int
    group: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "bbox": [round(v, 2) for v in self.bbox],
            "name": self.name,
            "conf": round(self.conf, 4),
            "cls": self.cls,
            "group": self.group,
        }


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model can detect.

    Attributes:
        path: The checkpoint file.
        task: Ultralytics task (always ``detect`` for a usable model).
        names: Class index -> name as stored in the model.
        canonical: Class index -> official DeepScoresV2 name, or the model's name where it is not one.
        unknown: Model class names that are not DeepScoresV2 names.
        warning: A message for people when the names are not (all) DeepScoresV2 names, else "".
        scale: How it was trained (tile side, overlap, imgsz), when the checkpoint records it.
        train_imgsz: The imgsz of Ultralytics' own ``train_args``, when present.
    """

    path: str
    task: str
    names: dict[int, str]
    canonical: dict[int, str]
    unknown: tuple[str, ...]
    warning: str = ""
    scale: TrainingScale | None = None
    train_imgsz: int | None = None


#: What review assumes for a model that does not record how it was trained (the behaviour before it did).
ASSUMED_IMGSZ = 1024


@dataclass(frozen=True)
class InferencePlan:
    """How a page is run through a model: whole at ``imgsz``, or in tiles of ``tile`` page pixels.

    Attributes:
        imgsz: Inference size.
        tile: Tile side in page pixels (None: the whole page).
        overlap: Tile overlap fraction.
        tiles: Number of tiles (1 for the whole page).
        summary: What was done, for people ("tiled 640 px → imgsz 320, 35 tiles, NMS-merged").
        note: What was assumed or overridden ("" when the model's own record was followed).
    """

    imgsz: int
    tile: int | None
    overlap: float
    tiles: int
    summary: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"imgsz": self.imgsz, "tile": self.tile, "overlap": self.overlap, "tiles": self.tiles,
                "summary": self.summary, "note": self.note}


def plan_inference(
    info: ModelInfo | None,
    width: int,
    height: int,
    *,
    imgsz: int | None = None,
    tile: bool | None = None,
    overlap: float | None = None,
) -> InferencePlan:
    """Run a model the way it was trained unless the caller says otherwise.

    Args:
        info: The model's information (its recorded `TrainingScale`).
        width: Page width in pixels.
        height: Page height in pixels.
        imgsz: Inference size chosen by the user (None: the model's training imgsz).
        tile: Tiled inference chosen by the user (None: tiled exactly when the model was trained on tiles).
        overlap: Tile overlap (None: the training overlap, else 0.25).
    """
    sc = info.scale if info is not None else None
    note = ""
    by_hand = imgsz is not None or tile is not None
    if sc is not None and not by_hand:
        size = int(sc.imgsz or ASSUMED_IMGSZ)
        tile_px = sc.tile
        ov = overlap if overlap is not None else (sc.overlap if sc.tile else 0.25)
    else:
        size = int(imgsz or (sc.imgsz if sc is not None and sc.imgsz else ASSUMED_IMGSZ))
        if tile is None:  # only the size was set: tile as trained
            tile = bool(sc is not None and sc.tile)
        tile_px = ((sc.tile if sc is not None and sc.tile else size) if tile else None)
        ov = overlap if overlap is not None else (sc.overlap if sc is not None and sc.tile else 0.25)
        if sc is not None:
            note = f"settings chosen by hand; the model was trained on {sc.describe()}"
        elif info is not None and not by_hand:
            trained = f" (its Ultralytics train_args say imgsz {info.train_imgsz})" if info.train_imgsz else ""
            note = (f"this model does not record how it was trained{trained}: assumed whole pages at imgsz {size}; "
                    "set imgsz and tiling by hand if it was trained on tiles")
    if tile_px:
        n = len(tile_origins(width, tile_px, ov)) * len(tile_origins(height, tile_px, ov))
        summary = f"tiled {tile_px} px → imgsz {size}, {n} tiles, NMS-merged"
    else:
        n = 1
        summary = f"whole page {width}×{height} px → imgsz {size}"
    return InferencePlan(imgsz=size, tile=tile_px, overlap=float(ov), tiles=n, summary=summary, note=note)


@dataclass
class LoadedModel:
    """An Ultralytics model loaded once, with its class information.

    The dashboard shares one instance between sessions; Ultralytics predictors are not thread-safe, so
    predictions take ``lock``.
    """

    model: Any = field(repr=False)
    info: ModelInfo
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def _env_offline() -> None:
    # Never reach the network for fonts, hub checks or weights.
    os.environ.setdefault("YOLO_OFFLINE", "1")


def describe_names(names: dict[int, str]) -> tuple[dict[int, str], tuple[str, ...], str]:
    """Map model class names to DeepScoresV2 names; return (canonical, unknown names, warning text)."""
    from omr_core.classes import class_table

    table = class_table()
    canonical: dict[int, str] = {}
    unknown: list[str] = []
    for i, n in names.items():
        try:
            canonical[int(i)] = table.canonical_name(str(n))
        except OmrError:
            canonical[int(i)] = str(n)
            unknown.append(str(n))
    warning = ""
    if unknown:
        some = ", ".join(repr(u) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        if len(unknown) == len(names):
            warning = (
                f"none of the model's {len(names)} class names is a DeepScoresV2 name (e.g. {some}); "
                "boxes are shown, but stems/ledger lines cannot be rebuilt from its noteheads"
            )
        else:
            warning = (
                f"{len(unknown)} of the model's {len(names)} class names are not DeepScoresV2 names ({some}); "
                "they are shown in the group 'other'"
            )
    return canonical, tuple(unknown), warning


def find_checkpoints(root: str | os.PathLike[str], limit: int = 200) -> list[Path]:
    """``best.pt``/``last.pt`` files of the training runs under ``root``, newest first."""
    r = Path(root)
    if not r.is_dir():
        return []
    found: list[Path] = []
    for pattern in ("*/weights/*.pt", "*/*/weights/*.pt", "*/*.pt", "*.pt"):
        found += [p for p in r.glob(pattern) if p.is_file() and p.name in ("best.pt", "last.pt")]
    uniq = {p.resolve(): p for p in found}
    return sorted(uniq.values(), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]


def load_model(path: str | os.PathLike[str], *, warm_up: bool = True, device: str | None = "cpu") -> LoadedModel:
    """Load an Ultralytics detection checkpoint (``best.pt``/``last.pt``) for review.

    Loading a ``.pt`` file runs pickle code from it: only load files you trust (the dashboard asks for the
    access token before loading an uploaded model on a shared server).

    Args:
        path: The checkpoint.
        warm_up: Run one tiny prediction so the first real page does not pay for the predictor setup.
        device: Torch device used for the warm-up (and so for later predictions).

    Raises:
        ModelError: When the file is missing, is not an Ultralytics checkpoint, or is not a detector.
    """
    _env_offline()
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such model file")
    if p.stat().st_size == 0:
        raise ModelError(f"{p}: the model file is empty")
    with open(p, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (PK..); very old files are raw pickles (0x80 protocol byte).
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise ModelError(f"{p}: not a PyTorch checkpoint (expected an Ultralytics .pt file such as best.pt)")
    try:
        from ultralytics import YOLO

        model = YOLO(str(p))
    except Exception as exc:
        raise ModelError(f"{p}: not a loadable Ultralytics checkpoint ({type(exc).__name__}: {exc})") from None
    task = str(getattr(model, "task", "") or "")
    if task != "detect":
        raise ModelError(
            f"{p}: this is a '{task or 'unknown'}' model, not a detector; review needs a YOLO detection model "
            "(trained with task=detect, e.g. from yolov8n.yaml)"
        )
    names = {int(k): str(v) for k, v in dict(getattr(model, "names", {}) or {}).items()}
    if not names:
        raise ModelError(f"{p}: the model has no class names")
    canonical, unknown, warning = describe_names(names)
    ckpt = getattr(model, "ckpt", None) or {}
    train_imgsz = (ckpt.get("train_args") or {}).get("imgsz") if isinstance(ckpt, dict) else None
    info = ModelInfo(path=str(p), task=task, names=names, canonical=canonical, unknown=unknown, warning=warning,
                     scale=from_checkpoint(ckpt), train_imgsz=train_imgsz if isinstance(train_imgsz, int) else None)
    loaded = LoadedModel(model=model, info=info)
    if warm_up:
        kw: dict[str, Any] = {"imgsz": 64, "verbose": False}
        if device is not None:
            kw["device"] = device
        _run(loaded, [np.full((64, 64, 3), 255, np.uint8)], kw)
    return loaded


def predict(
    loaded: LoadedModel,
    gray: np.ndarray,
    *,
    conf: float = 0.25,
    iou: float = 0.5,
    imgsz: int = 1024,
    tile: bool = False,
    tile_size: int | None = None,
    overlap: float = 0.25,
    max_det: int = 3000,
    device: str | None = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> list[Detection]:
    """Detect symbols on a page.

    Args:
        loaded: The model from `load_model`.
        gray: The page (uint8 grayscale or RGB).
        conf: Confidence threshold.
        iou: IoU threshold of non-maximum suppression (also used to merge tiles).
        imgsz: Inference size (the page, or each tile, is resized to it by Ultralytics).
        tile: Cut the page into overlapping tiles of ``tile_size`` page pixels (default ``imgsz``), predict each
            at full resolution and merge with class-wise NMS; for pages much larger than ``imgsz``.
        tile_size: Tile side in page pixels.
        overlap: Tile overlap as a fraction of the tile side.
        max_det: Maximum detections per image (or tile).
        device: Torch device (``"cpu"``, ``"0"``…); None lets Ultralytics choose.
        progress: Called with (tiles done, tiles total).

    Returns:
        Detections sorted by confidence, highest first.
    """
    img = gray if gray.ndim == 3 else np.repeat(gray[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    kw: dict[str, Any] = {"conf": conf, "iou": iou, "imgsz": imgsz, "verbose": False, "max_det": max_det}
    if device is not None:
        kw["device"] = device
    if not tile:
        res = _run(loaded, [img], kw)
        if progress:
            progress(1, 1)
        boxes, scores, classes = res[0]
        return _records(loaded, boxes, scores, classes)
    ts = int(tile_size or imgsz)
    xs, ys = tile_origins(w, ts, overlap), tile_origins(h, ts, overlap)
    origins = [(x, y) for y in ys for x in xs]
    all_b, all_s, all_c = [], [], []
    done = 0
    batch = 4
    for i in range(0, len(origins), batch):
        chunk = origins[i : i + batch]
        crops = [np.ascontiguousarray(img[y : y + ts, x : x + ts]) for x, y in chunk]
        for (x, y), (b, s, c) in zip(chunk, _run(loaded, crops, kw)):
            if b.size:
                th, tw = min(ts, h - y), min(ts, w - x)
                keep = _not_cut(b, tw, th, x > 0, y > 0, x + tw < w, y + th < h, ts * overlap)
                b, s, c = b[keep], s[keep], c[keep]
                all_b.append(b + np.array([x, y, x, y], dtype=np.float32))
                all_s.append(s)
                all_c.append(c)
        done += len(chunk)
        if progress:
            progress(done, len(origins))
    if not all_b:
        return []
    b = np.concatenate(all_b)
    s = np.concatenate(all_s)
    c = np.concatenate(all_c)
    import torch
    from torchvision.ops import batched_nms

    keep = batched_nms(torch.from_numpy(b).float(), torch.from_numpy(s).float(), torch.from_numpy(c).long(), iou)
    k = keep.numpy()
    return _records(loaded, b[k], s[k], c[k])


def _not_cut(
    b: np.ndarray, tw: int, th: int, left: bool, top: bool, right: bool, bottom: bool, overlap_px: float
) -> np.ndarray:
    """Drop boxes cut by an inner tile edge: a neighbouring tile sees them whole (when smaller than the overlap)."""
    m = 2.0
    cut = np.zeros(len(b), dtype=bool)
    small_w = (b[:, 2] - b[:, 0]) < overlap_px
    small_h = (b[:, 3] - b[:, 1]) < overlap_px
    if left:
        cut |= (b[:, 0] <= m) & small_w
    if top:
        cut |= (b[:, 1] <= m) & small_h
    if right:
        cut |= (b[:, 2] >= tw - m) & small_w
    if bottom:
        cut |= (b[:, 3] >= th - m) & small_h
    return ~cut


def _run(loaded: LoadedModel, images: list[np.ndarray], kw: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    try:
        with loaded.lock:
            results = loaded.model.predict(images, **kw)
    except Exception as exc:
        raise ModelError(f"{loaded.info.path}: prediction failed ({type(exc).__name__}: {exc})") from None
    out = []
    for r in results:
        bx = getattr(r, "boxes", None)
        if bx is None:
            raise ModelError(f"{loaded.info.path}: the model returned no boxes; it is not a detection model")
        out.append(
            (
                bx.xyxy.cpu().numpy().astype(np.float32),
                bx.conf.cpu().numpy().astype(np.float32),
                bx.cls.cpu().numpy().astype(np.int64),
            )
        )
    return out


def _records(loaded: LoadedModel, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> list[Detection]:
    from omr_core.classes import group_of

    out = []
    unknown = set(loaded.info.unknown)
    for b, s, c in zip(boxes, scores, classes):
        ci = int(c)
        raw = loaded.info.names.get(ci, str(ci))
        name = loaded.info.canonical.get(ci, raw)
        group = "other" if raw in unknown else group_of(name)
        out.append(Detection((float(b[0]), float(b[1]), float(b[2]), float(b[3])), name, float(s), ci, group))
    out.sort(key=lambda d: -d.conf)
    return out
