"""Walking the folders of a workspace: the subfolders a search looks into."""

from __future__ import annotations

from pathlib import Path


def search_subfolders(d: Path) -> list[Path]:
    """``d``'s subfolders a search for runs, evaluations or tuner output descends into, sorted: hidden folders and a
    run's ``weights`` are skipped; an unreadable folder has none."""
    try:
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "weights")
    except OSError:
        return []
