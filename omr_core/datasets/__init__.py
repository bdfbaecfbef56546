"""Dataset readers and writers: DeepScoresV2 JSON, YOLO folders, and the offline engraver.

What the CLI and the dashboard use is exported here and imported on first use (the heavy modules load
only when a name of theirs is asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omr_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from omr_core.datasets.columnar import ColumnarCache, expand_sources, is_multi_source
    from omr_core.datasets.discovery import LoadedDataset, find_datasets, load_dataset
    from omr_core.datasets.synth import synth_dataset

#: Exported name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    "ColumnarCache": "columnar",
    "LoadedDataset": "discovery",
    "expand_sources": "columnar",
    "find_datasets": "discovery",
    "is_multi_source": "columnar",
    "load_dataset": "discovery",
    "synth_dataset": "synth",
}
__all__ = [
    "ColumnarCache",
    "LoadedDataset",
    "expand_sources",
    "find_datasets",
    "is_multi_source",
    "load_dataset",
    "synth_dataset",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
