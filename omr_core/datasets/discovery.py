"""Dataset discovery: find DeepScoresV2 JSON files and YOLO data.yaml files and load them into tables."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omr_core.classes import class_table, official_category
from omr_core.errors import DataFormatError, OmrError

if TYPE_CHECKING:
    from omr_core.datasets.tables import AnnotationTables


Progress = Callable[[int, int], None]


KIND_DEEPSCORES = "deepscores"


KIND_YOLO = "yolo"


JSON_SUFFIXES = {".json"}


YAML_SUFFIXES = {".yaml", ".yml"}


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset ready to audit or convert.

    Attributes:
        paths: The files it was read from (DeepScoresV2 JSONs, or one data.yaml).
        kind: ``"deepscores"`` or ``"yolo"``.
        data: Images and annotations tables (see `omr_core.datasets.tables.AnnotationTables`).
        names: The class universe in source order: the 136 deepscores names for DeepScoresV2 JSON, the data.yaml
            names for a YOLO dataset. Exclusion plans and output indices are defined over it.
    """

    paths: tuple[Path, ...]
    kind: str
    data: AnnotationTables
    names: tuple[str, ...]

    @property
    def issues(self) -> tuple[Any, ...]:
        """Load issues the reader reported (missing images, dropped items, ...)."""
        return tuple(getattr(self.data, "issues", ()) or ())


def _kind_of(path: Path) -> str:
    if path.is_dir():
        raise DataFormatError(
            f"{path} is a folder; give the DeepScoresV2 JSON file(s) (deepscores_train.json, deepscores_test.json) "
            "or the YOLO data.yaml inside it"
        )
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        return KIND_DEEPSCORES
    if suffix in YAML_SUFFIXES:
        return KIND_YOLO
    raise DataFormatError(
        f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; expected a DeepScoresV2 annotation file "
        "(.json) or a YOLO data.yaml (.yaml/.yml)"
    )


def load_dataset(
    paths: Sequence[str | os.PathLike[str]],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    check_images: bool = True,
    progress: Progress | None = None,
) -> LoadedDataset:
    """Read DeepScoresV2 JSON file(s) or one YOLO data.yaml into tables.

    Args:
        paths: One or more ``.json`` files, or exactly one ``.yaml``/``.yml``.
        images_dir: Page images folder for DeepScoresV2 JSON (default: the reader's own lookup).
        check_images: Look the page images up on disk (missing ones are reported as issues).
        progress: Optional ``(done, total)`` callback.

    Returns:
        The loaded dataset.

    Raises:
        DataFormatError: Wrong file type, mixed kinds, malformed file, duplicate class names.
        OmrError: A path that does not exist.
    """
    if not paths:
        raise OmrError("no dataset given: pass DeepScoresV2 JSON file(s) or a YOLO data.yaml")
    ps = tuple(Path(p).expanduser() for p in paths)
    for p in ps:
        if not p.exists():
            raise OmrError(f"{p}: no such file")
    kinds = {_kind_of(p) for p in ps}
    if len(kinds) > 1:
        raise DataFormatError("mixing DeepScoresV2 JSON and YOLO data.yaml inputs is not supported; audit them one by one")
    kind = kinds.pop()
    if len(set(p.resolve() for p in ps)) != len(ps):
        raise DataFormatError(f"the same file was given twice: {', '.join(map(str, ps))}")
    table = class_table()
    if kind == KIND_DEEPSCORES:
        from omr_core.datasets.deepscores import load_deepscores

        data = load_deepscores(list(ps), images_dir, check_images=check_images, progress=progress)
        names = tuple(table.names())
    else:
        if len(ps) != 1:
            raise DataFormatError("give exactly one YOLO data.yaml")
        from omr_core.datasets.yolo import load_yolo

        names = tuple(canonical_name(n) for n in read_yaml_names(ps[0]))
        check_unique_names(names, ps[0])
        data = load_yolo(ps[0], progress=progress)
    return LoadedDataset(paths=ps, kind=kind, data=data, names=names)


_SKIP_DIRS = {"images", "labels", "runs", "__pycache__", "node_modules"}


def looks_like_deepscores(path: Path) -> bool:
    """Cheap sniff: a JSON whose first 64 KiB mention DeepScoresV2 top-level keys."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return b'"annotation_sets"' in head or (b'"categories"' in head and b'"images"' in head)


def find_datasets(root: str | os.PathLike[str], max_depth: int = 4, limit: int = 500) -> list[Path]:
    """DeepScoresV2 JSON files and data.yaml files under ``root`` (image/label folders and dot-folders skipped).

    Args:
        root: Folder to search (the workspace datasets folder).
        max_depth: How many folder levels to descend.
        limit: Stop after this many hits.

    Returns:
        Sorted paths.
    """
    base = Path(root)
    found: list[Path] = []
    if not base.is_dir():
        return found
    stack: list[tuple[Path, int]] = [(base, 0)]
    while stack and len(found) < limit:
        d, depth = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            p = Path(e.path)
            if e.is_dir(follow_symlinks=False):
                if depth < max_depth and e.name not in _SKIP_DIRS:
                    stack.append((p, depth + 1))
            elif p.suffix.lower() in YAML_SUFFIXES or (p.suffix.lower() in JSON_SUFFIXES and looks_like_deepscores(p)):
                found.append(p)
    return sorted(found)[:limit]


def canonical_name(name: str) -> str:
    """Official spelling of a deepscores-set name (``legerLine`` → ``ledgerLine``), else the name as given.

    `omr_core.datasets.yolo.load_yolo` names annotations the same way, so the universe matches the tables.
    """
    c = official_category(name)
    return c.name if c is not None and c.annotation_set == "deepscores" else name


def read_yaml_names(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Class names of a data.yaml without resolving its split folders (see `yolo.read_names`)."""
    from omr_core.datasets.yolo import read_names

    return read_names(path)


def check_unique_names(names: Sequence[str], where: Path) -> None:
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise DataFormatError(f"{where}: class name {n!r} appears twice in names (indices {seen[n]} and {i})")
        seen[n] = i
