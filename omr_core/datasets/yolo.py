"""YOLO detection datasets: ``data.yaml``, label files, image/label pairing, and the same tables as DeepScoresV2.

Reads datasets written by this project, by Ultralytics and by other tools (Roboflow exports with
``train: ../train/images``), following Ultralytics' own rules where they are defined:

- ``path`` (dataset root): absent or empty → the yaml's folder; absolute → as is; relative → the yaml's folder,
  else the current directory (Ultralytics resolves it from the current directory only).
- ``train``/``val``/``test``/``minival``: a folder (images found recursively), a ``.txt`` list of image files
  (``./x`` and other relative lines are taken from the list's folder), or a list of either. An entry that starts
  with ``../`` and does not exist is retried without it (Ultralytics does the same for Roboflow exports).
- Labels: `label_path_for` is Ultralytics' ``img2label_paths`` (last ``/images/`` → ``/labels/``, suffix ``.txt``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omr_core.atomic import write_text
from omr_core.classes import class_table
from omr_core.datasets.deepscores import deepscores_names, empty_tables
from omr_core.datasets.tables import AnnotationTables, LoadIssue
from omr_core.errors import DataFormatError, OmrError

#: Image suffixes Ultralytics accepts (``ultralytics.data.utils.IMG_FORMATS`` in 8.4).
IMG_FORMATS: frozenset[str] = frozenset(
    {"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"}
)

#: Split keys read from ``data.yaml``, in this order.
SPLIT_KEYS: tuple[str, ...] = ("train", "val", "test", "minival")


@dataclass(frozen=True)
class YoloDataset:
    """A parsed ``data.yaml``.

    Attributes:
        yaml_path: The yaml file (absolute).
        root: Dataset root the split entries are resolved from.
        names: Class names by YOLO index.
        splits: Split name → image files (sorted, absolute), for the splits the yaml names.
    """

    yaml_path: Path
    root: Path
    names: tuple[str, ...]
    splits: dict[str, tuple[Path, ...]]


def _user_path(text: str, where: Path, what: str) -> Path:
    """A path written in a dataset file, ``~`` expanded; a path no file system can hold is a `DataFormatError`."""
    if "\x00" in text:
        raise DataFormatError(f"{where}: {what} {text!r} contains a NUL character; it is not a path")
    try:
        return Path(text).expanduser()
    except RuntimeError as err:  # ~someone for a user this machine does not know
        raise DataFormatError(f"{where}: {what} {text!r}: {err}") from None


def _class_index(k: object) -> int | None:
    """A ``names`` key as a class index (``0``, ``"1"``), None when it is not one."""
    if isinstance(k, bool):
        return None
    if isinstance(k, int):
        return k
    if isinstance(k, str) and k.strip().isdecimal():  # not isdigit(): "²" is a digit that int() refuses
        return int(k)
    return None


def _parse_names(raw: object, path: Path) -> tuple[str, ...]:
    if raw is None:
        raise DataFormatError(
            f"{path}: no 'names' key; a YOLO data.yaml lists its classes as `names: [a, b]` or `names: {{0: a, 1: b}}`"
        )
    if isinstance(raw, list):
        names = [str(n) for n in raw]
    elif isinstance(raw, dict):
        keys: list[int] = []
        for k in raw:
            idx = _class_index(k)
            if idx is None:
                raise DataFormatError(f"{path}: 'names' key {k!r} is not a class index (0, 1, 2, …)")
            keys.append(idx)
        if sorted(keys) != list(range(len(keys))):
            # The first gaps only: a key like 10**12 must not make us list (or allocate) a trillion indices.
            present, top = set(keys), max(keys, default=-1)
            missing: list[int] = []
            i = 0
            while i <= top and len(missing) <= 10:
                if i not in present:
                    missing.append(i)
                i += 1
            raise DataFormatError(
                f"{path}: 'names' indices must be 0..{len(keys) - 1} without gaps; "
                f"missing {missing[:10]}{'…' if len(missing) > 10 else ''}"
                + (f", found {sorted(keys)[:10]}" if not missing else "")
            )
        by_index = {int(k): v for k, v in raw.items()}
        names = [str(by_index[i]) for i in range(len(keys))]
    else:
        raise DataFormatError(f"{path}: 'names' must be a list or a mapping index → name, found {type(raw).__name__}")
    if not names:
        raise DataFormatError(f"{path}: 'names' is empty; a dataset needs at least one class")
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i)
    dups = {n: idx for n, idx in seen.items() if len(idx) > 1}
    if dups:
        shown = "; ".join(f"{n!r} at {idx}" for n, idx in list(dups.items())[:5])
        raise DataFormatError(f"{path}: duplicate class names in 'names' ({shown}); each class needs its own name")
    return tuple(names)


def _resolve_root(data: Mapping[str, Any], yaml_path: Path) -> Path:
    base = yaml_path.parent
    raw = data.get("path")
    if raw in (None, ""):
        return base
    p = _user_path(str(raw), yaml_path, "'path'")
    try:
        if p.is_absolute():
            return p.resolve()
        for candidate in (base / p, Path.cwd() / p):
            if candidate.exists():
                return candidate.resolve()
        return (base / p).resolve()
    except OSError as err:  # a name too long for the file system, a symlink loop
        raise DataFormatError(f"{yaml_path}: 'path' {raw!r} cannot be used: {err.strerror or err}") from None


def _images_in(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, skipping hidden files and folders as Ultralytics' glob does."""
    # abspath, not resolve(): a symlinked image's label sits next to the link (Ultralytics' rule), not its target.
    return sorted(
        Path(os.path.abspath(p))
        for p in folder.rglob("*.*")
        if p.suffix[1:].lower() in IMG_FORMATS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def _images_in_list(listing: Path) -> list[Path]:
    parent = listing.parent
    out: list[Path] = []
    try:
        text = listing.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{listing}: not a readable list of image files ({err.__class__.__name__})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        p = _user_path(line[2:] if line.startswith("./") else line, listing, f"line {lineno}")
        if not p.is_absolute():
            p = parent / p if line.startswith("./") or (parent / p).exists() or not p.exists() else p
        if p.suffix[1:].lower() in IMG_FORMATS:
            out.append(Path(os.path.abspath(p)))
    return sorted(out)


def _resolve_split(name: str, entry: object, root: Path, yaml_path: Path) -> tuple[Path, ...]:
    entries = entry if isinstance(entry, list) else [entry]
    files: list[Path] = []
    for e in entries:
        if not isinstance(e, str) or not e.strip():
            raise DataFormatError(f"{yaml_path}: split {name!r} entry {e!r} is not a path")
        p = _user_path(e, yaml_path, f"split {name!r} entry")
        try:
            x = p if p.is_absolute() else (root / p).resolve()
            tried = [x]
            if not x.exists() and e.startswith("../"):  # Roboflow writes ../train/images next to data.yaml
                x = (root / e[3:]).resolve()
                tried.append(x)
            is_dir, is_file = x.is_dir(), x.is_file()
        except OSError as err:  # a name too long for the file system, a symlink loop
            raise DataFormatError(f"{yaml_path}: split {name!r}: {e!r} cannot be used: {err.strerror or err}") from None
        if is_dir:
            files += _images_in(x)
        elif is_file:
            files += [x] if x.suffix[1:].lower() in IMG_FORMATS else _images_in_list(x)
        else:
            raise DataFormatError(
                f"{yaml_path}: split {name!r}: {e!r} not found (looked at {' and '.join(map(str, tried))}); "
                f"dataset root is {root}"
            )
    return tuple(sorted(set(files)))  # Ultralytics sorts the whole split


def safe_load_yaml(text: str, where: Path) -> Any:
    """`yaml.safe_load` whose every failure is a `DataFormatError` naming ``where``.

    PyYAML raises more than YAMLError on bad input: ValueError for an impossible date (``2024-02-30``) or a bad
    ``!!int``, AttributeError for a bad ``!!timestamp``, RecursionError for very deep nesting.
    """
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DataFormatError(f"{where}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    except Exception as err:  # safe_load builds only plain values: any other failure is the text's fault
        raise DataFormatError(f"{where}: a YAML value cannot be read ({err.__class__.__name__}: {err})") from None


def _load_yaml_mapping(path: Path | str | os.PathLike[str]) -> tuple[Path, dict[Any, Any]]:
    """Read a data.yaml as a mapping (resolved path, document); DataFormatError names the file otherwise."""
    yaml_path = Path(path).expanduser().resolve()
    try:
        text = yaml_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(f"{yaml_path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{yaml_path}: not a readable YAML text file ({err.__class__.__name__})") from None
    data = safe_load_yaml(text, yaml_path)
    if not isinstance(data, dict):
        raise DataFormatError(
            f"{yaml_path}: expected a YAML mapping with 'names' and 'train'/'val' keys, found {type(data).__name__}"
        )
    return yaml_path, data


def read_names(path: Path | str | os.PathLike[str]) -> tuple[str, ...]:
    """Class names of a data.yaml without resolving its split folders (a checker must work on a bare yaml)."""
    yaml_path, data = _load_yaml_mapping(path)
    return tuple(_parse_names(data.get("names"), yaml_path))


def read_data_yaml(path: str | os.PathLike[str]) -> YoloDataset:
    """Parse a YOLO ``data.yaml`` and resolve its split entries to image files.

    Args:
        path: The yaml file.

    Returns:
        The dataset description.

    Raises:
        DataFormatError: Not YAML / not a mapping, ``names`` missing, duplicate names, ``names`` indices with
            gaps, ``nc`` disagreeing with ``names``, or a split entry that is not on disk.

    Examples:
        >>> ds = read_data_yaml("datasets/synth/data.yaml")  # doctest: +SKIP
        >>> ds.names[:2], {k: len(v) for k, v in ds.splits.items()}  # doctest: +SKIP
    """
    yaml_path, data = _load_yaml_mapping(path)
    if "val" not in data and "validation" in data:  # Ultralytics renames it too
        data["val"] = data.pop("validation")
    if data.get("names") is None and data.get("nc") is not None:
        raise DataFormatError(
            f"{yaml_path}: 'nc' without 'names'; Ultralytics would call the classes class_0, class_1, …: "
            "list the real names under 'names'"
        )
    names = _parse_names(data.get("names"), yaml_path)
    nc = data.get("nc")
    try:
        nc = None if nc is None else float(nc)
    except (TypeError, ValueError, OverflowError):
        raise DataFormatError(f"{yaml_path}: 'nc: {data.get('nc')}' must be an integer") from None
    if nc is not None and nc != len(names):
        raise DataFormatError(
            f"{yaml_path}: 'nc' is {data.get('nc')} but 'names' has {len(names)} classes; make them agree"
        )
    root = _resolve_root(data, yaml_path)
    splits = {k: _resolve_split(k, data[k], root, yaml_path) for k in SPLIT_KEYS if data.get(k)}
    return YoloDataset(yaml_path=yaml_path, root=root, names=names, splits=splits)


def write_data_yaml(
    path: Path | str,
    root: Path | str | None,
    names: Sequence[str],
    splits: Mapping[str, str],
    *,
    header: str = "",
) -> Path:
    """Write a ``data.yaml`` the way Ultralytics reads them (names as ``{0: name, …}``, ``nc``), atomically.

    Args:
        path: The yaml file to write.
        root: Dataset root, written as ``path:`` as given (absolute, or relative to the yaml's folder); None
            writes no ``path`` key, so Ultralytics takes the yaml's own folder and the dataset survives a move.
        names: Class names by YOLO index (unique, non-empty).
        splits: Split name → entry relative to ``root`` (e.g. ``{"train": "images/train"}``).
        header: Comment lines written first (each starting with ``#``).

    Returns:
        ``path`` as a Path.
    """
    import yaml

    names = [str(n) for n in names]
    if not names or len(set(names)) != len(names) or any(not n for n in names):
        raise DataFormatError(f"{path}: class names must be unique and non-empty (got {len(names)} names)")
    doc: dict[str, Any] = {} if root is None else {"path": str(root)}
    doc.update({k: str(v) for k, v in splits.items()})
    doc["nc"] = len(names)
    doc["names"] = dict(enumerate(names))
    return write_text(path, header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def label_path_for(image: Path | str) -> Path:
    """The label file Ultralytics pairs with ``image`` (its ``img2label_paths`` rule).

    The last ``/images/`` in the path becomes ``/labels/`` and the suffix becomes ``.txt``.
    """
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    x = str(image)
    return Path(sb.join(x.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


_EMPTY_LABELS = np.zeros((0, 5), dtype=np.float32)
_F32_MAX = float(np.finfo(np.float32).max)


def read_labels(path: Path | str) -> np.ndarray:
    """Read a YOLO label file as an (n, 5) float32 array ``[class, x_center, y_center, width, height]``.

    Coordinates are normalised as written (not checked against 0..1: the audit reports that). Polygon lines
    (``class x1 y1 x2 y2 …``, as segmentation exports write) become their bounding box, as Ultralytics does.

    Args:
        path: The ``.txt`` file; a missing file means no objects (a background image).

    Raises:
        DataFormatError: A line that is not 5 numbers or a polygon, a class that is not a non-negative
            integer, or a value that is not a finite number; the message says ``file:line``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _EMPTY_LABELS.copy()
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not a readable text label file ({err.__class__.__name__})") from None
    lines = [(i, ln.split()) for i, ln in enumerate(text.splitlines(), 1)]
    lines = [(i, parts) for i, parts in lines if parts]
    if not lines:
        return _EMPTY_LABELS.copy()
    if all(len(parts) == 5 for _, parts in lines):
        try:
            arr = np.array([parts for _, parts in lines], dtype=np.float32)
        except ValueError:
            arr = None
        if arr is not None and np.isfinite(arr).all() and (arr[:, 0] >= 0).all() and (arr[:, 0] % 1 == 0).all():
            return arr
    out = np.empty((len(lines), 5), dtype=np.float32)
    for row, (lineno, parts) in enumerate(lines):
        where = f"{path}:{lineno}"
        n = len(parts)
        if n != 5 and (n < 7 or n % 2 == 0):
            raise DataFormatError(
                f"{where}: expected 'class x_center y_center width height' or a polygon 'class x1 y1 x2 y2 …', "
                f"found {n} values: {' '.join(parts)[:80]!r}"
            )
        try:
            vals = np.array(parts, dtype=np.float64)
        except ValueError:
            raise DataFormatError(f"{where}: not a number in {' '.join(parts)[:80]!r}") from None
        if not np.isfinite(vals).all():
            raise DataFormatError(f"{where}: NaN or infinite value in {' '.join(parts)[:80]!r}")
        if vals[0] < 0 or vals[0] % 1:
            raise DataFormatError(f"{where}: class {parts[0]!r} is not a non-negative integer")
        if np.abs(vals).max() > _F32_MAX:
            raise DataFormatError(f"{where}: value too large for a label in {' '.join(parts)[:80]!r}")
        if n == 5:
            out[row] = vals
        else:
            xy = vals[1:].reshape(-1, 2)
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            out[row] = (vals[0], (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[0] - lo[0], hi[1] - lo[1])
    return out


def label_text(labels: np.ndarray, *, decimals: int = 6, where: object = "labels") -> str:
    """An (n, 5) ``[class, xc, yc, w, h]`` array as the text of a YOLO label file (one ``\n``-ended line a box).

    Raises:
        DataFormatError: A non-finite value or a class that is not a non-negative integer (``where`` names it).
    """
    arr = np.asarray(labels, dtype=np.float64).reshape(-1, 5) if np.size(labels) else np.zeros((0, 5))
    if not np.isfinite(arr).all() or (arr[:, 0] < 0).any() or (arr[:, 0] % 1).any():
        raise DataFormatError(f"{where}: labels must be finite with non-negative integer classes")
    fmt = f"{{:d}} {{:.{decimals}f}} {{:.{decimals}f}} {{:.{decimals}f}} {{:.{decimals}f}}\n"
    return "".join(fmt.format(int(c), x, y, w, h) for c, x, y, w, h in arr.tolist())


def write_labels(path: Path | str, labels: np.ndarray, *, decimals: int = 6, atomic: bool = True) -> None:
    """Write an (n, 5) ``[class, xc, yc, w, h]`` array as a YOLO label file.

    Args:
        path: The ``.txt`` file (folders are created when ``atomic``).
        labels: Class indices (integral) and normalised box centre/size.
        decimals: Digits after the point for coordinates (6, like Ultralytics and Roboflow).
        atomic: Through a temp file and a rename (see `omr_core.atomic`). False only inside a folder that is
            itself put in place whole (`omr convert` stages the dataset, thousands of files, then swaps it in).
    """
    text = label_text(labels, decimals=decimals, where=path)
    if atomic:
        write_text(path, text)
        return
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, EXIF rotation applied like Ultralytics; None if unreadable."""
    from PIL import Image

    # Ultralytics replaces PIL.Image.open with a wrapper that pip-installs a HEIF plugin on the first file Pillow
    # cannot identify; a corrupt page must not trigger that, so use the original opener when it is patched.
    patches = sys.modules.get("ultralytics.utils.patches")
    open_image = getattr(patches, "_image_open", Image.open) if patches is not None else Image.open
    try:
        with open_image(path) as im:
            w, h = im.size
            if im.format in ("JPEG", "MPO", "TIFF", "WEBP"):
                orientation = im.getexif().get(0x0112)
                if orientation in (5, 6, 7, 8):
                    w, h = h, w
            return int(w), int(h)
    except Exception:  # any failure to read a header means the file cannot be used as an image
        return None


def _ultralytics_checks(
    px: np.ndarray, img_of: np.ndarray, beyond: np.ndarray, images: pd.DataFrame, name: str
) -> list[LoadIssue]:
    """What Ultralytics' ``verify_image_label`` would do with these labels: skip images, drop duplicate rows.

    ``px`` holds labels already scaled to pixels; the normalised values are recovered per image.
    """
    issues: list[LoadIssue] = []
    w = images["width"].to_numpy(np.float64)[img_of]
    h = images["height"].to_numpy(np.float64)[img_of]
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.column_stack([px[:, 1] / w, px[:, 2] / h, px[:, 3] / w, px[:, 4] / h])
    too_big = (norm > 1.01).any(axis=1)
    negative = (norm < -0.01).any(axis=1) | (norm[:, 2:] < 0).any(axis=1)
    skip_rows = too_big | negative | beyond
    if skip_rows.any():
        bad_images = np.unique(img_of[skip_rows])
        files = images["filename"].to_numpy(dtype=object)[bad_images]
        issues.append(
            LoadIssue(
                "ultralytics_would_skip",
                f"{name}: {len(bad_images):,} images have labels Ultralytics rejects (coordinates above 1.01 or "
                "below -0.01, or a class index beyond 'names'): it skips the whole image as corrupt while training; "
                "their labels are kept here",
                len(bad_images),
                tuple(str(f) for f in files[:5]),
            )
        )
    dup = pd.DataFrame(np.column_stack([img_of, px[:, 0], norm])).duplicated().to_numpy()
    if dup.any():
        files = images["filename"].to_numpy(dtype=object)[np.unique(img_of[dup])]
        issues.append(
            LoadIssue(
                "duplicate_label",
                f"{name}: {int(dup.sum()):,} label rows repeat another row of the same image exactly "
                "(kept here; Ultralytics removes them)",
                int(dup.sum()),
                tuple(str(f) for f in files[:5]),
            )
        )
    return issues


def load_yolo(
    data_yaml: str | os.PathLike[str],
    splits: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AnnotationTables:
    """Read a YOLO dataset into the same tables as `load_deepscores`, so the audit works on both.

    Image sizes come from the image headers (no decoding); boxes are converted to pixels; ``cat_id`` is the
    official DeepScoresV2 id when the class name is an official deepscores name (aliases such as
    ``legerLine`` accepted) and -1 otherwise. The ``name`` Categorical has the 136 official names first
    (in id order) and then the dataset's other names in YOLO-index order, so official classes compare equal
    across DeepScoresV2 files and YOLO datasets. ``muscima_id`` and ``rel_position`` are NA, ``duration`` is
    ``""``; ``ann_id`` is ``"<image stem>:<k>"`` (k-th label in the file, 1-based).

    Args:
        data_yaml: The dataset's ``data.yaml``.
        splits: Split names to read (default: every split in the yaml). An image listed in several splits
            appears once per split (reported as ``duplicate_image``).
        progress: Called with (done, total) images.

    Returns:
        Tables plus issues: ``label_file_missing`` (background images, kept), ``unknown_category`` (class index
        beyond ``names``, dropped), ``bad_field`` (label files that cannot be parsed, their labels dropped),
        ``image_unreadable`` (kept with size 0, their labels dropped), ``degenerate_box``,
        ``box_outside_image``, ``duplicate_image``, ``ultralytics_would_skip`` (images Ultralytics' label check
        rejects as corrupt: values outside -0.01..1.01 or a class index beyond ``names``), ``duplicate_label``
        (exact repeated rows, which Ultralytics removes).
    """
    ds = read_data_yaml(data_yaml)
    wanted = list(ds.splits) if splits is None else list(splits)
    unknown = [s for s in wanted if s not in ds.splits]
    if unknown:
        raise OmrError(
            f"{ds.yaml_path}: no split {', '.join(map(repr, unknown))}; it has {', '.join(ds.splits) or 'none'}"
        )
    codes = _class_codes(ds.names)
    scan = _scan_files([(s, p) for s in wanted for p in ds.splits[s]], progress)
    images, ann = empty_tables(codes.categories)
    if scan.img_rows:
        images = _images_table(scan.img_rows, ds.yaml_path)
    issues: list[LoadIssue] = []
    if scan.label_arrays:
        lab = np.concatenate(scan.label_arrays)
        img_of = np.concatenate(scan.ann_image)
        ann_ids = scan.ann_ids
        beyond = lab[:, 0] >= len(ds.names)  # on the floats: a class of 1e20 does not fit an int64
        cls = np.where(beyond, 0, lab[:, 0]).astype(np.int64)
        issues += _ultralytics_checks(lab, img_of, beyond, images, ds.yaml_path.name)
        if beyond.any():
            ids = np.asarray(ann_ids, dtype=object)
            issues.append(
                LoadIssue(
                    "unknown_category",
                    f"{ds.yaml_path.name}: {int(beyond.sum()):,} labels use a class index ≥ {len(ds.names)} "
                    f"(the number of names): dropped (indices {sorted({int(c) for c in lab[beyond, 0].tolist()})[:8]})",
                    int(beyond.sum()),
                    tuple(ids[beyond][:5]),
                )
            )
            keep = ~beyond
            lab, img_of, cls = lab[keep], img_of[keep], cls[keep]
            ann_ids = [a for a, k in zip(ann_ids, keep.tolist()) if k]
        ann = _annotations_table(lab, img_of, cls, ann_ids, codes)
        images["n_annotations"] = np.bincount(img_of, minlength=len(images)).astype(np.int32)
        issues += _box_issues(lab, img_of, ann_ids, images, ds.yaml_path.name)
    issues += _file_issues(scan, ds.yaml_path.name)
    return AnnotationTables(images=images, annotations=ann, issues=tuple(issues), sources=(ds.yaml_path,))


@dataclass(frozen=True)
class _ClassCodes:
    """YOLO index -> the ``name`` Categorical's code and the DeepScoresV2 ``cat_id`` (-1: not official)."""

    codes: np.ndarray
    cat_ids: np.ndarray
    categories: list[str]  # the 136 official names in id order, then the dataset's others in index order


def _class_codes(names: Sequence[str]) -> _ClassCodes:
    table = class_table()
    official = deepscores_names()
    extra: list[str] = []
    codes = np.empty(len(names), dtype=np.int64)
    cat_ids = np.empty(len(names), dtype=np.int16)
    for i, class_name in enumerate(names):
        try:
            cat = table.by_name(class_name)
        except OmrError:
            cat = None
        if cat is not None and cat.annotation_set == "deepscores":
            codes[i], cat_ids[i] = cat.id - 1, cat.id
        else:
            codes[i], cat_ids[i] = len(official) + len(extra), -1
            extra.append(class_name)
    return _ClassCodes(codes, cat_ids, [*official, *extra])


@dataclass
class _Scan:
    """What reading every image header and label file found, image by image."""

    img_rows: list[tuple[int, str, int, int, str, str]] = field(default_factory=list)  # row, name, w, h, split, path
    label_arrays: list[np.ndarray] = field(default_factory=list)  # per image with labels: (n, 5) in pixels
    ann_image: list[np.ndarray] = field(default_factory=list)  # the image row of each of those labels
    ann_ids: list[str] = field(default_factory=list)
    missing_labels: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unreadable_labels: int = 0
    dup_images: list[str] = field(default_factory=list)


def _scan_files(items: Sequence[tuple[str, Path]], progress: Callable[[int, int], None] | None) -> _Scan:
    """Read each ``(split, image)``'s size from its header and its labels (scaled to pixels); one progress step each."""
    scan = _Scan()
    seen: set[Path] = set()
    for row, (split, img) in enumerate(items):
        if img in seen:
            scan.dup_images.append(str(img))
        seen.add(img)
        size = _image_size(img)
        w, h = size if size is not None else (0, 0)
        scan.img_rows.append((row, img.name, w, h, split, str(img)))
        lp = label_path_for(img)
        if not lp.exists():
            scan.missing_labels.append(lp.name)
            labels = _EMPTY_LABELS
        else:
            try:
                labels = read_labels(lp)
            except DataFormatError as err:
                scan.bad_files.append(str(err))
                labels = _EMPTY_LABELS
        if size is None:
            scan.unreadable.append(img.name)
            scan.unreadable_labels += len(labels)
            labels = _EMPTY_LABELS
        if len(labels):
            px = labels.astype(np.float64)
            px[:, 1] *= w
            px[:, 3] *= w
            px[:, 2] *= h
            px[:, 4] *= h
            scan.label_arrays.append(px)
            scan.ann_image.append(np.full(len(labels), row, dtype=np.int64))
            stem = img.stem
            scan.ann_ids += [f"{stem}:{k}" for k in range(1, len(labels) + 1)]
        if progress is not None:
            progress(row + 1, len(items))
    return scan


def _images_table(img_rows: list[tuple[int, str, int, int, str, str]], yaml_path: Path) -> pd.DataFrame:
    rows = list(zip(*img_rows))
    return pd.DataFrame(
        {
            "image": np.array(rows[0], dtype=np.int64),
            "image_id": np.array(rows[0], dtype=np.int64),
            "filename": pd.Series(rows[1], dtype="str"),
            "width": np.array(rows[2], dtype=np.int32),
            "height": np.array(rows[3], dtype=np.int32),
            "source": pd.Series([str(yaml_path)] * len(img_rows), dtype="str"),
            "split": pd.Series(rows[4], dtype="str"),
            "path": pd.Series(rows[5], dtype="str"),
            "n_annotations": np.zeros(len(img_rows), dtype=np.int32),
        }
    )


def _annotations_table(
    lab: np.ndarray, img_of: np.ndarray, cls: np.ndarray, ann_ids: list[str], codes: _ClassCodes
) -> pd.DataFrame:
    """The annotations table of pixel-scaled ``[class, xc, yc, w, h]`` rows (axis-aligned oriented boxes)."""
    x0, y0, x1, y1 = _xyxy(lab)
    f32 = np.float32
    n = len(lab)
    return pd.DataFrame(
        {
            "ann_id": pd.Series(ann_ids, dtype="str"),
            "image": img_of,
            "cat_id": codes.cat_ids[cls],
            "muscima_id": pd.arrays.IntegerArray(np.zeros(n, dtype=np.int16), np.ones(n, dtype=bool)),
            "name": pd.Categorical.from_codes(codes.codes[cls], categories=pd.Index(codes.categories)),
            "x0": x0.astype(f32),
            "y0": y0.astype(f32),
            "x1": x1.astype(f32),
            "y1": y1.astype(f32),
            "area": (lab[:, 3] * lab[:, 4]).astype(f32),
            "ox0": x1.astype(f32),
            "oy0": y1.astype(f32),
            "ox1": x1.astype(f32),
            "oy1": y0.astype(f32),
            "ox2": x0.astype(f32),
            "oy2": y0.astype(f32),
            "ox3": x0.astype(f32),
            "oy3": y1.astype(f32),
            "rel_position": pd.arrays.IntegerArray(np.zeros(n, dtype=np.int16), np.ones(n, dtype=bool)),
            "duration": pd.Series([""] * n, dtype="str"),
        }
    )


def _xyxy(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Corners (float64, pixels) of pixel-scaled ``[class, xc, yc, w, h]`` rows."""
    return lab[:, 1] - lab[:, 3] / 2, lab[:, 2] - lab[:, 4] / 2, lab[:, 1] + lab[:, 3] / 2, lab[:, 2] + lab[:, 4] / 2


def _box_issues(
    lab: np.ndarray, img_of: np.ndarray, ann_ids: list[str], images: pd.DataFrame, yaml_name: str
) -> list[LoadIssue]:
    """Degenerate boxes and boxes reaching past their image (on the float64 corners, before the float32 table)."""
    x0, y0, x1, y1 = _xyxy(lab)
    widths = images["width"].to_numpy()[img_of]
    heights = images["height"].to_numpy()[img_of]
    degenerate = (x1 <= x0) | (y1 <= y0)
    tol = 0.5  # half a pixel: normalised coordinates written with 6 decimals round a little
    outside = (x0 < -tol) | (y0 < -tol) | (x1 > widths + tol) | (y1 > heights + tol)
    ids = np.asarray(ann_ids, dtype=object)
    issues = []
    for kind, mask, what in (
        ("degenerate_box", degenerate, "with zero width or height"),
        ("box_outside_image", outside, "extending more than half a pixel past the image edges"),
    ):
        if mask.any():
            issues.append(
                LoadIssue(kind, f"{yaml_name}: {int(mask.sum()):,} boxes {what}", int(mask.sum()), tuple(ids[mask][:5]))
            )
    return issues


def _file_issues(scan: _Scan, yaml_name: str) -> list[LoadIssue]:
    """Missing label files, unparsable ones, unreadable images and images listed in several splits."""
    issues = []
    for kind, found, message in (
        ("label_file_missing", scan.missing_labels, "images have no label file (background images, kept)"),
        (
            "bad_field",
            scan.bad_files,
            "label files could not be parsed: their labels are dropped"
            + (f" (first: {scan.bad_files[0]})" if scan.bad_files else ""),
        ),
        (
            "image_unreadable",
            scan.unreadable,
            f"image files could not be opened: kept with size 0, their {scan.unreadable_labels:,} labels dropped",
        ),
        ("duplicate_image", scan.dup_images, "images are listed in more than one split (counted once per split)"),
    ):
        if found:
            issues.append(LoadIssue(kind, f"{yaml_name}: {len(found):,} {message}", len(found), tuple(found[:5])))
    return issues
