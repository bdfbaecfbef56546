"""The validation pass: Ultralytics' validator, subclassed only to record the boxes it already computes."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omr_core.errors import OmrError

Progress = Callable[[int, int], None]


class EvaluationError(OmrError):
    """An evaluation that cannot run or be read (missing model, data, split or files)."""


def _np(x: Any) -> np.ndarray:
    return np.asarray(x.cpu().numpy() if hasattr(x, "cpu") else x)


@dataclass
class Capture:
    """What the validator subclass records per image (original-image pixel coordinates)."""

    files: list[str] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)
    gt: list[np.ndarray] = field(default_factory=list)  # (n, 6): image_id, cls, x0, y0, x1, y1
    preds: list[np.ndarray] = field(default_factory=list)  # (n, 8): image_id, cls, conf, x0, y0, x1, y1, tp50
    warnings: list[str] = field(default_factory=list)  # Ultralytics' warnings during the pass


class _Warnings(logging.Handler):
    """Collects Ultralytics' warnings, e.g. the NMS time limit that silently drops predictions on slow CPUs."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


def validator_class(capture: Capture, progress: Progress | None) -> type:
    """A DetectionValidator that also records boxes; Ultralytics' own metric code runs unchanged."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import ops

    class RecordingValidator(DetectionValidator):  # type: ignore[misc]
        def __init__(self, dataloader: Any = None, save_dir: Any = None, args: Any = None, _callbacks: dict | None = None) -> None:
            from ultralytics.utils import callbacks as cb

            # Copy the callback lists so our progress hook does not stay on the model object.
            own = {k: list(v) for k, v in (_callbacks or cb.get_default_callbacks()).items()}
            super().__init__(dataloader, save_dir, args, own)
            if progress is not None:
                self.add_callback("on_val_batch_end", lambda v: progress(int(v.batch_i) + 1, len(v.dataloader)))

        def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
            n_before = len(self.metrics.stats["tp"])
            super().update_metrics(preds, batch)
            tps = self.metrics.stats["tp"][n_before:]
            for si, pred in enumerate(preds):
                pb = self._prepare_batch(si, batch)
                image_id = len(capture.files)
                capture.files.append(str(pb["im_file"]))
                h, w = (int(x) for x in pb["ori_shape"])
                capture.shapes.append((w, h))
                cls = pb["cls"].cpu().numpy().reshape(-1)
                if len(cls):
                    gb = ops.scale_boxes(pb["imgsz"], pb["bboxes"].clone(), pb["ori_shape"], ratio_pad=pb["ratio_pad"])
                    g = np.column_stack([np.full(len(cls), image_id), cls, _np(gb).reshape(-1, 4)])
                    capture.gt.append(g.astype(np.float64))
                n = int(pred["cls"].shape[0])
                if n:
                    pn = self.scale_preds(self._prepare_pred(pred), pb)
                    tp50 = tps[si][:, 0] if si < len(tps) and len(tps[si]) == n else np.zeros(n, dtype=bool)
                    p = np.column_stack(
                        [
                            np.full(n, image_id),
                            pn["cls"].cpu().numpy(),
                            pn["conf"].cpu().numpy(),
                            pn["bboxes"].cpu().numpy().reshape(-1, 4),
                            tp50.astype(np.float64),
                        ]
                    )
                    capture.preds.append(p.astype(np.float64))

    return RecordingValidator


def run_validation(
    model: Path, data: Path, split: str, params: dict[str, Any], device: str | None, progress: Progress | None
) -> tuple[Any, Capture, float]:
    """Run Ultralytics' validator once (``model.val``); returns its DetMetrics, the recorded boxes and the seconds.

    ``params``: ``imgsz``, ``batch``, ``val_conf`` (its ``conf``) and ``iou`` (NMS IoU).
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    capture = Capture()
    t0 = time.perf_counter()
    level = LOGGER.level
    # Our progress callback replaces Ultralytics' bar and summary print (its TQDM is off above INFO); warnings stay.
    LOGGER.setLevel("WARNING")
    handler = _Warnings(capture.warnings)
    LOGGER.addHandler(handler)
    with tempfile.TemporaryDirectory(prefix="omr-val-") as tmp:
        try:
            yolo = YOLO(str(model))
        except Exception as exc:  # Ultralytics raises many types for a bad checkpoint
            raise EvaluationError(f"cannot load model {model}: {exc}") from exc
        if getattr(yolo, "task", "detect") != "detect":
            raise EvaluationError(
                f"{model} is a {yolo.task} model: per-class failures count missed and false boxes per class, which "
                "needs a detection model (task: detect); pick the weights of a detection run")
        kwargs: dict[str, Any] = dict(
            data=str(data),
            split=split,
            imgsz=params["imgsz"],
            batch=params["batch"],
            conf=params["val_conf"],
            iou=params["iou"],
            plots=False,
            save_json=False,
            save_txt=False,
            verbose=False,
            project=tmp,
            name="val",
            exist_ok=True,
        )
        if device is not None:
            kwargs["device"] = device
        try:
            metrics = yolo.val(validator=validator_class(capture, progress), **kwargs)
        except (FileNotFoundError, RuntimeError, ValueError, KeyError, SyntaxError) as exc:
            raise EvaluationError(f"Ultralytics could not validate {model} on {data} ({split}): {exc}") from exc
        finally:
            LOGGER.setLevel(level)
            LOGGER.removeHandler(handler)
    return metrics, capture, time.perf_counter() - t0


def group_of_name(name: str) -> str:
    from omr_core.classes import class_table
    from omr_core.errors import UnknownClassError

    try:
        return class_table().by_name(name).group
    except UnknownClassError:
        return "not DeepScoresV2"


def per_class_table(metrics: Any, names: Sequence[str]) -> pd.DataFrame:
    """Ultralytics' per-class numbers as a table, one row per model class.

    Classes without ground truth in the split get ``labelled=False`` and empty (NaN) P/R/F1/AP: Ultralytics reports
    the mean of the other classes for them in ``maps``, which is not a measurement.
    """
    nc = len(names)
    nt = np.asarray(metrics.nt_per_class if metrics.nt_per_class is not None else np.zeros(nc), dtype=np.int64)
    ni = np.asarray(metrics.nt_per_image if metrics.nt_per_image is not None else np.zeros(nc), dtype=np.int64)
    box = metrics.box
    cols = {k: np.full(nc, np.nan) for k in ("precision", "recall", "f1", "ap50", "ap75", "ap50_95")}
    idx = np.asarray(box.ap_class_index, dtype=np.int64)
    if len(idx):
        all_ap = np.asarray(box.all_ap)
        cols["precision"][idx] = np.asarray(box.p)
        cols["recall"][idx] = np.asarray(box.r)
        cols["f1"][idx] = np.asarray(box.f1)
        cols["ap50"][idx] = all_ap[:, 0]
        cols["ap75"][idx] = all_ap[:, 5]
        cols["ap50_95"][idx] = all_ap.mean(1)
    return pd.DataFrame(
        {
            "class_index": np.arange(nc),
            "class": list(names),
            "group": [group_of_name(n) for n in names],
            "images": ni[:nc],
            "instances": nt[:nc],
            **cols,
            "labelled": nt[:nc] > 0,
        }
    )


def frames(capture: Capture, root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``images``, ``gt`` and ``preds`` tables from a capture (image paths made relative to the dataset ``root``)."""
    rel = []
    for f in capture.files:
        try:
            rel.append(Path(f).resolve().relative_to(root).as_posix())
        except ValueError:
            rel.append(Path(f).name)
    images = pd.DataFrame(
        {
            "image_id": np.arange(len(capture.files), dtype=np.int32),
            "image": rel,
            "path": capture.files,
            "width": np.array([s[0] for s in capture.shapes], dtype=np.int32),
            "height": np.array([s[1] for s in capture.shapes], dtype=np.int32),
        }
    )
    g = np.concatenate(capture.gt) if capture.gt else np.zeros((0, 6))
    gt = pd.DataFrame(g, columns=["image_id", "cls", "x0", "y0", "x1", "y1"]).astype(
        {"image_id": "int32", "cls": "int32", "x0": "float32", "y0": "float32", "x1": "float32", "y1": "float32"}
    )
    p = np.concatenate(capture.preds) if capture.preds else np.zeros((0, 8))
    preds = pd.DataFrame(p, columns=["image_id", "cls", "conf", "x0", "y0", "x1", "y1", "tp50"])
    preds = preds.astype({"image_id": "int32", "cls": "int32", "tp50": "bool"})
    for c in ("conf", "x0", "y0", "x1", "y1"):
        preds[c] = preds[c].astype("float32")
    # Stable order by image then descending confidence: matching relies on it.
    preds = preds.sort_values(["image_id", "conf"], ascending=[True, False], kind="stable").reset_index(drop=True)
    gt = gt.sort_values("image_id", kind="stable").reset_index(drop=True)
    return images, gt, preds


def nms_limit_hits(warnings: Sequence[str]) -> int:
    """How many batches hit Ultralytics' NMS time limit (each drops the predictions NMS had not reached)."""
    return sum("NMS time limit" in w for w in warnings)


def nms_warning(hits: int) -> str:
    """The sentence users read when NMS hit its time limit ("" when it did not)."""
    if not hits:
        return ""
    return (
        f"Ultralytics' NMS hit its time limit in {hits} batch(es) and dropped the predictions it had not reached "
        "(these numbers are what `yolo val` reports too). On a CPU evaluate with a smaller batch: the limit is "
        "2 s + 0.05 s per image of a batch."
    )
