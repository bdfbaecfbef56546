"""The models a person can pick: reference models shipped in models/ (each with a card) and the workspace's runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omr_core.review.inference import find_checkpoints
from omr_core.workspace import REPO_ROOT, Workspace

#: Where the project's reference models live (``OMR_MODELS_DIR`` overrides it).
MODELS_DIR = REPO_ROOT / "models"


@dataclass(frozen=True)
class ModelChoice:
    """One model file to offer.

    Attributes:
        path: The ``.pt`` file.
        label: What a picker shows (``"reference: reading-n"``, or the path relative to the runs folder).
        shipped: True for a reference model of the project (trusted like its code); False for a workspace run's.
        card: The model card (``models/<name>.md``) of a shipped model, when there is one.
    """

    path: Path
    label: str
    shipped: bool
    card: Path | None = None


def models_dir() -> Path:
    """The shipped models folder (``OMR_MODELS_DIR`` or ``<repo>/models``)."""
    env = os.environ.get("OMR_MODELS_DIR")
    return Path(env).expanduser().resolve() if env else MODELS_DIR


def shipped_models(folder: str | os.PathLike[str] | None = None) -> list[ModelChoice]:
    """The reference models in ``folder`` (default `models_dir`), by name; empty when there are none."""
    root = Path(folder) if folder is not None else models_dir()
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.glob("*.pt")):
        if not p.is_file() or p.stat().st_size == 0:
            continue
        card = p.with_suffix(".md")
        out.append(ModelChoice(path=p, label=f"reference: {p.stem}", shipped=True, card=card if card.is_file() else None))
    return out


def list_models(workspace: Workspace, folder: str | os.PathLike[str] | None = None) -> list[ModelChoice]:
    """Shipped reference models first, then the best.pt/last.pt of the workspace's runs, newest first."""
    runs = [
        ModelChoice(path=p, label=str(p.relative_to(workspace.runs)) if workspace.runs in p.parents else str(p), shipped=False)
        for p in find_checkpoints(workspace.runs)
    ]
    return [*shipped_models(folder), *runs]


def trained_imgsz(path: str | os.PathLike[str]) -> int | None:
    """The imgsz a checkpoint was trained at (our ``omr_scale`` record, else Ultralytics' train_args), or None.

    Reads the checkpoint with ``torch.load`` (pickle code): only for shipped models and the workspace's own runs.
    """
    import torch

    from omr_core.training.scale import from_checkpoint

    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
    except Exception:  # not a checkpoint: the evaluation says so when it runs
        return None
    if not isinstance(ckpt, dict):
        return None
    scale = from_checkpoint(ckpt)
    size = scale.imgsz if scale is not None and scale.imgsz else (ckpt.get("train_args") or {}).get("imgsz")
    return size if isinstance(size, int) else None
