"""Where the workspace lives (runs and datasets folders) and how user paths are confined to it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omr_core.errors import OmrError

#: The folder holding the ``omr_core`` package: the source checkout, or site-packages after a non-editable install.
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_root() -> Path:
    """The workspace root when ``OMR_WORKSPACE`` is not set.

    The source checkout (a folder with ``pyproject.toml`` and ``dashboard/`` next to the package), else the
    current folder: a non-editable install must never write runs and datasets into site-packages.
    """
    if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "dashboard").is_dir():
        return REPO_ROOT
    return Path.cwd()


@dataclass(frozen=True)
class Workspace:
    """The folders the dashboard and CLI read and write.

    Attributes:
        root: Workspace root (``OMR_WORKSPACE``, else the source checkout, else the current folder).
        runs: Training runs folder (``OMR_RUNS_DIR`` or ``<root>/runs``).
        datasets: Datasets folder (``OMR_DATASETS_DIR`` or ``<root>/datasets``).
    """

    root: Path
    runs: Path
    datasets: Path

    def ensure(self) -> Workspace:
        """Create the runs and datasets folders if missing; returns self."""
        self.runs.mkdir(parents=True, exist_ok=True)
        self.datasets.mkdir(parents=True, exist_ok=True)
        return self

    def confine(self, path: str | os.PathLike[str]) -> Path:
        """Resolve ``path`` (relative paths are taken from the root) and refuse one outside the workspace."""
        p = Path(path)
        resolved = (p if p.is_absolute() else self.root / p).resolve()
        for base in (self.root, self.runs, self.datasets):
            base = base.resolve()
            if resolved == base or base in resolved.parents:
                return resolved
        raise OmrError(f"{path} is outside the workspace ({self.root}); choose a path under it")


def get_workspace() -> Workspace:
    """The workspace from the environment (``OMR_WORKSPACE``, ``OMR_RUNS_DIR``, ``OMR_DATASETS_DIR``)."""
    root = Path(os.environ.get("OMR_WORKSPACE") or default_root()).expanduser().resolve()
    runs = Path(os.environ.get("OMR_RUNS_DIR") or root / "runs").expanduser().resolve()
    datasets = Path(os.environ.get("OMR_DATASETS_DIR") or root / "datasets").expanduser().resolve()
    return Workspace(root=root, runs=runs, datasets=datasets)
