"""How a model was trained (tile side, overlap, pixel scale, imgsz): the dataset sidecar, run.json and checkpoint key.

A converted dataset records it in ``dataset_scale.json`` next to its data.yaml; the launcher copies it, with the
run's training imgsz, into run.json; the worker writes it into ``best.pt``/``last.pt`` under `CKPT_KEY` after
training. Ultralytics keeps unknown checkpoint keys: ``ultralytics.nn.tasks.load_checkpoint`` returns the whole
dict, which ``YOLO(...).ckpt`` holds, and ``Model.save`` writes ``{**self.ckpt, ...}`` back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omr_core.atomic import write_atomic, write_text

#: The sidecar written next to data.yaml by `omr convert`.
SIDECAR = "dataset_scale.json"
#: The extra key in the Ultralytics checkpoint dict.
CKPT_KEY = "omr_scale"


@dataclass(frozen=True)
class TrainingScale:
    """The scale a detector saw its training images at.

    Attributes:
        tile: Tile side in page pixels (None: whole pages).
        overlap: Tile overlap as a fraction of ``tile`` (0 without tiles).
        imgsz: Training image size each tile (or page) was resized to (None: not known yet, e.g. a dataset).
        scale: Page pixels per source pixel when the tiles were cut (1.0: cut at the page's own resolution).
    """

    tile: int | None
    overlap: float = 0.0
    imgsz: int | None = None
    scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"tile": self.tile, "overlap": self.overlap, "imgsz": self.imgsz, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: Any) -> TrainingScale | None:
        """Read the JSON form back; None when ``d`` is not a well-formed record (an old or foreign file)."""
        if not isinstance(d, dict):
            return None
        try:
            tile = None if d.get("tile") is None else int(d["tile"])
            imgsz = None if d.get("imgsz") is None else int(d["imgsz"])
            overlap = float(d.get("overlap") or 0.0)
            scale = float(d.get("scale") or 1.0)
        except (TypeError, ValueError):
            return None
        if (tile is not None and tile < 32) or (imgsz is not None and imgsz < 32) or not 0.0 <= overlap < 0.9 or scale <= 0:
            return None
        return cls(tile=tile, overlap=overlap if tile else 0.0, imgsz=imgsz, scale=scale)

    def with_imgsz(self, imgsz: int | None) -> TrainingScale:
        """The same scale at the training imgsz actually used."""
        return TrainingScale(self.tile, self.overlap, imgsz, self.scale)

    def describe(self) -> str:
        """``"640 px tiles (overlap 20%) at imgsz 320"`` or ``"whole pages at imgsz 640"``."""
        size = f" at imgsz {self.imgsz}" if self.imgsz else ""
        if self.tile:
            return f"{self.tile} px tiles (overlap {self.overlap:.0%}){size}"
        return f"whole pages{size}"


def write_sidecar(root: str | os.PathLike[str], scale: TrainingScale) -> Path:
    """Write ``dataset_scale.json`` in the dataset folder ``root`` (atomically); returns its path."""
    path = Path(root) / SIDECAR
    body = {**scale.to_dict(), "note": "written by `omr convert`: the scale the tiles were cut at (see docs/recipe.md)"}
    return write_text(path, json.dumps(body, indent=2))


def read_sidecar(data_yaml: str | os.PathLike[str]) -> TrainingScale | None:
    """The scale recorded next to a data.yaml, or None (no sidecar, unreadable, or not a record)."""
    try:
        raw = (Path(data_yaml).parent / SIDECAR).read_text(encoding="utf-8")
        return TrainingScale.from_dict(json.loads(raw))
    except (OSError, ValueError):
        return None


def from_checkpoint(ckpt: Any) -> TrainingScale | None:
    """The scale stored in an Ultralytics checkpoint dict (``YOLO(path).ckpt``), or None."""
    return TrainingScale.from_dict(ckpt.get(CKPT_KEY)) if isinstance(ckpt, dict) else None


def stamp_checkpoint(path: str | os.PathLike[str], scale: TrainingScale) -> bool:
    """Write ``scale`` into the checkpoint at ``path`` under `CKPT_KEY` (atomically); False when there is no file."""
    import torch

    p = Path(path)
    if not p.is_file():
        return False
    ckpt = torch.load(p, map_location="cpu", weights_only=False)  # our own run's file, just written by Ultralytics
    if not isinstance(ckpt, dict):
        return False
    ckpt[CKPT_KEY] = scale.to_dict()
    write_atomic(p, lambda tmp: torch.save(ckpt, tmp))
    return True


def run_scale(data_yaml: str | os.PathLike[str], train_args: dict[str, Any]) -> dict[str, Any] | None:
    """What run.json records: the dataset's sidecar at the run's imgsz (Ultralytics' default 640), or None."""
    found = read_sidecar(data_yaml)
    if found is None:
        return None
    imgsz = train_args.get("imgsz")
    return found.with_imgsz(int(imgsz) if isinstance(imgsz, int) and not isinstance(imgsz, bool) else 640).to_dict()
