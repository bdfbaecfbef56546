"""Class audit: per-class statistics, name-based exclusion plans, data.yaml checks and crop galleries."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omr_core import recipe
from omr_core.classes import GROUPS, Category, class_table
from omr_core.errors import CriticalExclusionError, DataFormatError, OmrError, UnknownClassError
from omr_core.forecast import Forecast, forecast
from omr_core.raster import crop_with_boxes, grey_page

if TYPE_CHECKING:
    from omr_core.datasets.tables import AnnotationTables

Progress = Callable[[int, int], None]

#: Median box side (px at the training imgsz) under which a class is flagged as too small to learn.
TINY_PX = 2.0

KIND_DEEPSCORES = "deepscores"
KIND_YOLO = "yolo"

_JSON_SUFFIXES = {".json"}
_YAML_SUFFIXES = {".yaml", ".yml"}


# --------------------------------------------------------------------------------------------------- loading


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

    def source_index(self, name: str) -> int:
        """Index of ``name`` in the source (YOLO index ``id - 1`` for DeepScoresV2, the yaml index otherwise)."""
        return self.names.index(name)


def _kind_of(path: Path) -> str:
    if path.is_dir():
        raise DataFormatError(
            f"{path} is a folder; give the DeepScoresV2 JSON file(s) (deepscores_train.json, deepscores_test.json) "
            "or the YOLO data.yaml inside it"
        )
    suffix = path.suffix.lower()
    if suffix in _JSON_SUFFIXES:
        return KIND_DEEPSCORES
    if suffix in _YAML_SUFFIXES:
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

        names = tuple(_canonical(n) for n in read_yaml_names(ps[0]))
        _check_unique(names, ps[0])
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
            elif p.suffix.lower() in _YAML_SUFFIXES or (p.suffix.lower() in _JSON_SUFFIXES and looks_like_deepscores(p)):
                found.append(p)
    return sorted(found)[:limit]


def _canonical(name: str) -> str:
    """Official spelling of a deepscores-set name (``legerLine`` → ``ledgerLine``), else the name as given.

    `omr_core.datasets.yolo.load_yolo` names annotations the same way, so the universe matches the tables.
    """
    c = official_category(name)
    return c.name if c is not None and c.annotation_set == "deepscores" else name


def read_yaml_names(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Class names of a data.yaml without resolving its split folders (see `yolo.read_names`)."""
    from omr_core.datasets.yolo import read_names

    return read_names(path)


def _check_unique(names: Sequence[str], where: Path) -> None:
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise DataFormatError(f"{where}: class name {n!r} appears twice in names (indices {seen[n]} and {i})")
        seen[n] = i


# --------------------------------------------------------------------------------------------------- statistics


def _codes(ann: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Position of each annotation's class in ``names`` (-1 outside it)."""
    return np.asarray(pd.Categorical(ann["name"].astype(str), categories=list(names)).codes, dtype=np.int64)


def image_rows(data: AnnotationTables) -> np.ndarray:
    """Row of each annotation's image in the images table (-1 where the image is unknown)."""
    return np.asarray(pd.Index(data.images["image"]).get_indexer(data.annotations["image"]), dtype=np.int64)


def box_sizes(data: AnnotationTables, imgsz: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Width, height (px) and letterbox scale of every annotation.

    The scale is ``imgsz / max(page width, page height)`` per image, as Ultralytics' letterbox resizes the long side
    to ``imgsz``; it is 1 when ``imgsz`` is None.
    """
    ann = data.annotations
    w = (ann["x1"].to_numpy(np.float64) - ann["x0"].to_numpy(np.float64)).clip(min=0)
    h = (ann["y1"].to_numpy(np.float64) - ann["y0"].to_numpy(np.float64)).clip(min=0)
    if imgsz is None:
        return w, h, np.ones_like(w)
    imgs = data.images
    long_side = np.maximum(imgs["width"].to_numpy(np.float64), imgs["height"].to_numpy(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        img_scale = np.where(long_side > 0, imgsz / long_side, np.nan)
    rows = image_rows(data)
    scale = np.where(rows >= 0, img_scale[np.clip(rows, 0, None)] if len(img_scale) else np.nan, np.nan)
    return w, h, scale


def class_stats(ds: LoadedDataset, imgsz: int = 1024, *, tiny_px: float = TINY_PX) -> pd.DataFrame:
    """One row per class of the universe, in source order.

    Columns: ``id`` (official id, <NA> for unofficial names), ``yolo_index`` (index in the source), ``name``,
    ``group``, ``critical``, ``no_samples`` (flagged by the dataset authors), ``official``, ``instances``,
    ``images`` (images containing it), ``share`` (of all instances, 0-1), ``median_w``/``median_h`` (px),
    ``median_w_at``/``median_h_at`` (px at ``imgsz``), ``tiny`` (median side < ``tiny_px`` at ``imgsz``),
    ``empty`` (no instance in this dataset).
    """
    names = list(ds.names)
    ann = ds.data.annotations
    codes = _codes(ann, names)
    valid = codes >= 0
    k = len(names)
    counts = np.bincount(codes[valid], minlength=k)
    rows = image_rows(ds.data)
    n_img = max(len(ds.data.images), 1)
    pairs = np.unique(codes[valid] * (n_img + 1) + (rows[valid] + 1))
    img_counts = np.bincount(pairs // (n_img + 1), minlength=k)
    w, h, scale = box_sizes(ds.data, imgsz)
    frame = pd.DataFrame({"c": codes[valid], "w": w[valid], "h": h[valid], "wa": (w * scale)[valid], "ha": (h * scale)[valid]})
    med = frame.groupby("c").median().reindex(range(k))
    total = int(counts.sum())
    recs: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        cat = official_category(name)
        recs.append(
            {
                "id": cat.id if cat else pd.NA,
                "yolo_index": i,
                "name": name,
                "group": cat.group if cat else "unofficial",
                "critical": bool(cat.critical) if cat else False,
                "no_samples": bool(cat.no_samples) if cat else False,
                "official": cat is not None,
            }
        )
    out = pd.DataFrame.from_records(recs)
    out["id"] = out["id"].astype("Int64")
    out["instances"] = counts.astype(np.int64)
    out["images"] = img_counts.astype(np.int64)
    out["share"] = counts / total if total else 0.0
    out["median_w"] = med["w"].to_numpy()
    out["median_h"] = med["h"].to_numpy()
    out["median_w_at"] = med["wa"].to_numpy()
    out["median_h_at"] = med["ha"].to_numpy()
    side = np.fmin(out["median_w_at"].to_numpy(np.float64), out["median_h_at"].to_numpy(np.float64))
    out["tiny"] = np.nan_to_num(side, nan=np.inf) < tiny_px
    out["empty"] = out["instances"] == 0
    return out


@lru_cache(maxsize=4096)
def official_category(name: str) -> Category | None:
    try:
        return class_table().by_name(name)
    except UnknownClassError:
        return None


def instances_per_image(ds: LoadedDataset, plan: ExclusionPlan | None = None) -> np.ndarray:
    """Label count of every image (zeros included), after ``plan`` when given."""
    rows = image_rows(ds.data)
    keep = rows >= 0
    if plan is not None:
        keep &= plan.kept_mask(ds.data.annotations)
    return np.bincount(rows[keep], minlength=len(ds.data.images)).astype(np.int64)


def density_summary(counts: np.ndarray) -> dict[str, float | int]:
    """Min/median/mean/p95/max of per-image label counts."""
    if len(counts) == 0:
        return {"images": 0, "min": 0, "median": 0.0, "mean": 0.0, "p95": 0.0, "max": 0, "total": 0}
    return {
        "images": int(len(counts)),
        "min": int(counts.min()),
        "median": float(np.median(counts)),
        "mean": round(float(counts.mean()), 2),
        "p95": float(np.percentile(counts, 95)),
        "max": int(counts.max()),
        "total": int(counts.sum()),
    }


# --------------------------------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Preset:
    """A named starting point for an exclusion plan."""

    name: str
    description: str
    exclude: tuple[str, ...] = ()
    keep_groups: tuple[str, ...] | None = None
    #: Keep only these names (everything else is excluded); with ``drop_absent`` also those with no instances.
    keep: tuple[str, ...] | None = None
    drop_absent: bool = False
    #: Conversion options the preset proposes (tile side, overlap, training imgsz); None: the user's.
    tile: int | None = None
    overlap: float | None = None
    imgsz: int | None = None

    def exclusions(self, universe: Sequence[str], with_instances: Iterable[str] | None = None) -> tuple[str, ...]:
        """Names of ``universe`` this preset excludes (``with_instances``: names that occur, for ``drop_absent``)."""
        if self.keep is not None:
            wanted = set(self.keep)
            if self.drop_absent and with_instances is not None:
                wanted &= set(with_instances)
            return tuple(n for n in universe if n not in wanted)
        if self.keep_groups is None:
            present = set(universe)
            return tuple(n for n in self.exclude if n in present)
        keep = set(self.keep_groups)
        out = []
        for n in universe:
            cat = official_category(n)
            if cat is None or cat.group not in keep:
                out.append(n)
        return tuple(out)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "core symbols, reconstruct thin ones",
            "exclude stem, ledgerLine, beam, tie and slur (rebuilt from noteheads and staff geometry instead)",
            exclude=("stem", "ledgerLine", "beam", "tie", "slur"),
        ),
        Preset(
            "harmony",
            "keep only noteheads, accidentals, clefs, key and time signatures",
            keep_groups=("noteheads", "accidentals", "clefs", "key signatures", "time signatures"),
        ),
        Preset(  # the CPU recipe, see omr_core/recipe.py and docs/recipe.md
            recipe.READING_PRESET,
            f"keep only the {len(recipe.READING_CLASSES)} reading classes that occur in the data, cut "
            f"{recipe.TILE} px tiles for imgsz {recipe.IMGSZ} (noteheads 10+ px); excludes rare critical classes",
            keep=recipe.READING_CLASSES, drop_absent=True, tile=recipe.TILE, overlap=recipe.OVERLAP, imgsz=recipe.IMGSZ,
        ),
    )
}
assert all(g in GROUPS for p in PRESETS.values() for g in (p.keep_groups or ()))


@dataclass(frozen=True)
class IdResolution:
    """A typed id shown as the class it really is (people confuse ids; names are what they mean)."""

    token: str
    category: Category | None
    error: str = ""

    @property
    def label(self) -> str:
        """``"6 → clefG (critical!)"``, or the reason the token is not a class."""
        if self.category is None:
            return f"{self.token} → ? ({self.error})"
        c = self.category
        flags = []
        if c.critical:
            flags.append("critical!")
        if c.no_samples:
            flags.append("no samples")
        if c.annotation_set != "deepscores":
            flags.append("muscima++ set")
        return f"{self.token} → {c.name}" + (f" ({', '.join(flags)})" if flags else "")


def resolve_ids(tokens: Iterable[str | int]) -> list[IdResolution]:
    """Resolve typed official ids (``"6"``, ``"42 122"``...) to classes, for display and confirmation."""
    out = []
    table = class_table()
    for tok in tokens:
        t = str(tok).strip()
        if not t:
            continue
        try:
            out.append(IdResolution(t, table.by_id(t)))
        except UnknownClassError as exc:
            out.append(IdResolution(t, None, str(exc)))
    return out


def split_tokens(text: str) -> list[str]:
    """Split a free-text list of names or ids on commas, semicolons and whitespace."""
    return [t for t in text.replace(",", " ").replace(";", " ").split() if t]


@dataclass(frozen=True)
class ExclusionPlan:
    """Which classes of a source are dropped, by name, and the contiguous indices of the rest.

    Attributes:
        universe: Every class of the source, in source order.
        excluded: Excluded names, in source order.
        allow_critical: True when the user explicitly overrode the critical-class protection.
        reasons: ``(name, why)`` for each excluded class (``"requested"``, ``"preset harmony"``, ...).
        not_in_source: Requested names that are official classes but absent from the universe (nothing to drop).
    """

    universe: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    allow_critical: bool = False
    reasons: tuple[tuple[str, str], ...] = ()
    not_in_source: tuple[str, ...] = ()
    _excluded_set: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_excluded_set", frozenset(self.excluded))

    @property
    def kept(self) -> tuple[str, ...]:
        """Kept names in source order; their position is the new YOLO index."""
        return tuple(n for n in self.universe if n not in self._excluded_set)

    @property
    def new_index(self) -> dict[str, int]:
        """Kept name → new contiguous YOLO index."""
        return {n: i for i, n in enumerate(self.kept)}

    def is_excluded(self, name: str) -> bool:
        """True when ``name`` is dropped by this plan."""
        return name in self._excluded_set

    def reason(self, name: str) -> str:
        """Why ``name`` is excluded ("" when kept)."""
        return dict(self.reasons).get(name, "requested" if name in self._excluded_set else "")

    @property
    def critical_excluded(self) -> tuple[str, ...]:
        """Excluded names that are critical classes."""
        return tuple(n for n in self.excluded if (c := official_category(n)) is not None and c.critical)

    @property
    def violations(self) -> tuple[str, ...]:
        """One message per critical class excluded without the override (empty when the plan is allowed)."""
        if self.allow_critical:
            return ()
        out = []
        for n in self.critical_excluded:
            c = official_category(n)
            assert c is not None
            out.append(
                f"{n} (id {c.id}, {c.group}) is a critical class: excluding it needs an explicit override "
                "(--allow-critical / the override checkbox)"
            )
        return tuple(out)

    def check(self) -> None:
        """Raise `CriticalExclusionError` naming the classes when the plan has violations."""
        if self.violations:
            names = ", ".join(self.critical_excluded)
            raise CriticalExclusionError(
                f"the plan excludes critical class(es) {names}; a detector without them cannot read the music. "
                "Remove them from the plan, or pass --allow-critical if this is really meant (it is logged)."
            )

    def kept_mask(self, ann: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the annotations this plan keeps (inside the universe and not excluded)."""
        codes = _codes(ann, self.universe)
        keep_codes = np.array([n not in self._excluded_set for n in self.universe] + [False], dtype=bool)
        return keep_codes[np.where(codes >= 0, codes, len(self.universe))]

    def override_log(self) -> str:
        """The log line written when critical classes are excluded under the override ("" otherwise)."""
        if not (self.allow_critical and self.critical_excluded):
            return ""
        return "critical-class override: excluding " + ", ".join(
            f"{n} (id {c.id})" for n in self.critical_excluded if (c := official_category(n)) is not None
        )


def canonical_in(universe: Sequence[str], token: str) -> str:
    """Resolve one user-typed name against the official table and ``universe``.

    Raises:
        UnknownClassError: With the closest official (and source) names.
    """
    t = token.strip()
    if t in universe:
        return t
    table = class_table()
    try:
        canon = table.canonical_name(t)
        # the source may spell an official class by an alias (legerLine): answer in the source's spelling
        return next((n for n in universe if (c := official_category(n)) is not None and c.name == canon), canon)
    except UnknownClassError:
        import difflib

        close = difflib.get_close_matches(t, list(universe), n=5, cutoff=0.5) or table.closest(t)
        hint = f"; closest names: {', '.join(close)}" if close else ""
        raise UnknownClassError(f"{t!r} is not a class name of this dataset or of DeepScoresV2{hint}") from None


def make_plan(
    universe: Sequence[str],
    exclude: Iterable[str] = (),
    *,
    keep_only: Iterable[str] | None = None,
    allow_critical: bool = False,
    reasons: dict[str, str] | None = None,
    drop_empty: Sequence[str] = (),
) -> ExclusionPlan:
    """Build an exclusion plan by name.

    Args:
        universe: The source's classes in order (`LoadedDataset.names`).
        exclude: Names to drop (aliases such as ``legerLine`` accepted). Ids are refused: resolve them with
            `resolve_ids`, show the names and pass the names.
        keep_only: When given, every class not named here is dropped as well.
        allow_critical: Explicit override for excluding critical classes (the plan records it).
        reasons: Optional ``name → why`` for the record (defaults to ``"requested"``).
        drop_empty: Names with no instances to drop as well (reason ``"no instances in this dataset"``).

    Returns:
        The plan; check `ExclusionPlan.violations` or call `ExclusionPlan.check`.

    Raises:
        UnknownClassError: An unknown name (with the closest names), or a bare id.
    """
    uni = tuple(universe)
    present = set(uni)
    why: dict[str, str] = {}
    missing: list[str] = []
    for tok in exclude:
        t = str(tok).strip()
        if not t:
            continue
        if t.isdigit() and t not in present:
            res = resolve_ids([t])[0]
            raise UnknownClassError(
                f"{res.label}: exclusions are by name; ids are easy to get wrong. Write the name instead "
                f"(e.g. --exclude {res.category.name if res.category else 'NAME'}) after checking it is the class you mean"
            )
        name = canonical_in(uni, t)
        if name not in present:
            missing.append(name)
            continue
        why.setdefault(name, (reasons or {}).get(t) or (reasons or {}).get(name) or "requested")
    if keep_only is not None:
        keep = {canonical_in(uni, str(k)) for k in keep_only}
        for n in uni:
            if n not in keep:
                why.setdefault(n, "not in keep list")
    for n in drop_empty:
        if n in present:
            why.setdefault(n, "no instances in this dataset")
    excluded = tuple(n for n in uni if n in why)
    return ExclusionPlan(
        universe=uni,
        excluded=excluded,
        allow_critical=allow_critical,
        reasons=tuple((n, why[n]) for n in excluded),
        not_in_source=tuple(dict.fromkeys(missing)),
    )


def effective_plan(requested: ExclusionPlan) -> ExclusionPlan:
    """The plan really applied: critical classes refused for want of the override stay in the dataset.

    A refused exclusion must never be dropped silently from what the user sees, nor applied: the caller shows
    ``requested.violations`` and uses this plan for counts, forecasts and previews.
    """
    if not requested.violations:
        return requested
    refused = set(requested.critical_excluded)
    return ExclusionPlan(
        universe=requested.universe,
        excluded=tuple(n for n in requested.excluded if n not in refused),
        reasons=tuple((n, why) for n, why in requested.reasons if n not in refused),
        not_in_source=requested.not_in_source,
    )


@dataclass(frozen=True)
class NameLookup:
    """What a typed list of class names resolves to.

    Attributes:
        exact: Names of the universe typed exactly (case-insensitively, aliases accepted), in typed order.
        unknown: ``(token, candidates)`` for each token that is no class name: candidates are the universe's
            names containing it (or spelled closest to it), for the user to pick one by one.
    """

    exact: tuple[str, ...] = ()
    unknown: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _exact_name(universe: Sequence[str], token: str) -> str | None:
    if token in universe:
        return token
    folded = [n for n in universe if n.lower() == token.lower()]
    if len(folded) == 1:
        return folded[0]
    try:
        return canonical_in(universe, token) if not token.isdigit() else None
    except UnknownClassError:
        return None


def lookup_names(universe: Sequence[str], text: str, *, max_candidates: int = 24) -> NameLookup:
    """Resolve typed names exactly; never expand a partial name into the classes that contain it.

    Args:
        universe: The source's class names.
        text: Names separated by spaces, commas or semicolons (``"stem tie"``, a pasted list).
        max_candidates: At most this many candidates listed per unknown token.

    Returns:
        The exact names (each once) and, per unknown token, candidate names to offer (not to add).
    """
    import difflib

    exact: list[str] = []
    unknown: list[tuple[str, tuple[str, ...]]] = []
    present = list(universe)
    for tok in split_tokens(text):
        name = _exact_name(universe, tok)
        if name is not None and name in universe:
            if name not in exact:
                exact.append(name)
            continue
        low = tok.lower()
        cands = [n for n in present if low in n.lower()] if not tok.isdigit() else []
        if not cands and not tok.isdigit():
            cands = difflib.get_close_matches(tok, present, n=5, cutoff=0.5)
        unknown.append((tok, tuple(cands[:max_candidates])))
    return NameLookup(tuple(exact), tuple(unknown))


@dataclass(frozen=True)
class ExcludedClass:
    """One line of a plan as the user acknowledges it: name, official id, instances here, why."""

    name: str
    id: int | None
    instances: int
    reason: str
    critical: bool

    @property
    def line(self) -> str:
        """``"stem (id 42): 1,957 instances; preset core symbols"`` (the same text in the page, log and JSON)."""
        ident = f"id {self.id}" if self.id is not None else "unofficial"
        return f"{self.name} ({ident}): {self.instances:,} instances; {self.reason}"


def excluded_classes(plan: ExclusionPlan, stats: pd.DataFrame) -> list[ExcludedClass]:
    """Every excluded class of ``plan`` with its id, its instance count in ``stats`` and its reason, in source order."""
    counts = dict(zip(stats["name"], stats["instances"].astype(int)))
    out = []
    for n in plan.excluded:
        c = official_category(n)
        out.append(ExcludedClass(n, c.id if c else None, int(counts.get(n, 0)), plan.reason(n), bool(c and c.critical)))
    return out


@dataclass(frozen=True)
class PlanSummary:
    """What a plan does to a dataset.

    Attributes:
        kept_classes: Number of kept classes.
        excluded_classes: Number of excluded classes.
        instances_total: Instances before the plan.
        instances_removed: Instances the plan drops.
        removed_pct: ``instances_removed`` as a percentage of ``instances_total``.
        become_empty: Kept classes with no instance in this dataset (they will never be learned).
        critical_excluded: Excluded critical classes.
        violations: Messages for critical classes excluded without the override.
    """

    kept_classes: int
    excluded_classes: int
    instances_total: int
    instances_removed: int
    removed_pct: float
    become_empty: tuple[str, ...]
    critical_excluded: tuple[str, ...]
    violations: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kept_classes": self.kept_classes,
            "excluded_classes": self.excluded_classes,
            "instances_total": self.instances_total,
            "instances_removed": self.instances_removed,
            "removed_pct": round(self.removed_pct, 3),
            "become_empty": list(self.become_empty),
            "critical_excluded": list(self.critical_excluded),
            "violations": list(self.violations),
        }


def summarize(stats: pd.DataFrame, plan: ExclusionPlan) -> PlanSummary:
    """Summarise ``plan`` against `class_stats` output."""
    counts = dict(zip(stats["name"], stats["instances"].astype(int)))
    total = int(sum(counts.values()))
    removed = int(sum(counts.get(n, 0) for n in plan.excluded))
    return PlanSummary(
        kept_classes=len(plan.kept),
        excluded_classes=len(plan.excluded),
        instances_total=total,
        instances_removed=removed,
        removed_pct=100.0 * removed / total if total else 0.0,
        become_empty=tuple(n for n in plan.kept if counts.get(n, 0) == 0),
        critical_excluded=plan.critical_excluded,
        violations=plan.violations,
    )


# --------------------------------------------------------------------------------------------------- report


def forecasts(
    ds: LoadedDataset, plan: ExclusionPlan, *, imgsz: int, batch: int, vram_bytes: int = 0, splits: Sequence[str] = ("train",)
) -> tuple[Forecast, Forecast]:
    """Assigner forecasts before and after ``plan`` (max labels over the training images; all images if none)."""
    before = instances_per_image(ds)
    after = instances_per_image(ds, plan)
    if "split" in ds.data.images.columns:
        sel = ds.data.images["split"].astype(str).isin(list(splits)).to_numpy()
        if sel.any():
            before, after = before[sel], after[sel]
    mb = int(before.max()) if len(before) else 0
    ma = int(after.max()) if len(after) else 0
    return (
        forecast(batch, imgsz, mb, len(plan.universe), vram_bytes),
        forecast(batch, imgsz, ma, len(plan.kept), vram_bytes),
    )


def audit_report(
    ds: LoadedDataset,
    plan: ExclusionPlan,
    *,
    imgsz: int = 1024,
    batch: int = 16,
    vram_gb: float = 0.0,
    stats: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The whole audit as a JSON-ready dict (what ``omr audit --json`` prints)."""
    stats = class_stats(ds, imgsz) if stats is None else stats
    summary = summarize(stats, plan)
    before = instances_per_image(ds)
    after = instances_per_image(ds, plan)
    fb, fa = forecasts(ds, plan, imgsz=imgsz, batch=batch, vram_bytes=int(vram_gb * (1 << 30)))
    imgs = ds.data.images
    by_split = imgs["split"].astype(str).value_counts().sort_index().to_dict() if "split" in imgs.columns else {}
    classes = []
    new_index = plan.new_index
    r: dict[Any, Any]
    for r in stats.to_dict("records"):
        classes.append(
            {
                "id": None if pd.isna(r["id"]) else int(r["id"]),
                "yolo_index": int(r["yolo_index"]),
                "new_index": new_index.get(r["name"]),
                "name": r["name"],
                "group": r["group"],
                "critical": bool(r["critical"]),
                "no_samples": bool(r["no_samples"]),
                "count": int(r["instances"]),
                "images": int(r["images"]),
                "share": round(float(r["share"]), 6),
                "median_w_px": _num(r["median_w"]),
                "median_h_px": _num(r["median_h"]),
                "median_w_at_imgsz": _num(r["median_w_at"]),
                "median_h_at_imgsz": _num(r["median_h_at"]),
                "tiny_at_imgsz": bool(r["tiny"]),
                "excluded": plan.is_excluded(r["name"]),
            }
        )
    count_of = dict(zip(stats["name"], stats["instances"].astype(int)))
    return {
        "sources": [str(p) for p in ds.paths],
        "kind": ds.kind,
        "imgsz": imgsz,
        "images": {"count": int(len(imgs)), "by_split": {str(k): int(v) for k, v in by_split.items()}},
        "instances": int(stats["instances"].sum()),
        "classes": classes,
        "instances_per_image": {"before": density_summary(before), "after": density_summary(after)},
        "exclusions": [
            {
                "id": c.id if (c := official_category(n)) else None,
                "name": n,
                "critical": bool(c.critical) if c else False,
                "reason": plan.reason(n),
                "count": count_of.get(n, 0),
            }
            for n in plan.excluded
        ],
        "not_in_source": list(plan.not_in_source),
        "allow_critical": plan.allow_critical,
        "plan": summary.to_dict(),
        "violations": list(plan.violations),
        "forecast": {"before": fb.to_dict(), "after": fa.to_dict()},
        "issues": [_issue_dict(i) for i in ds.issues],
    }


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), 2)


def _issue_dict(issue: Any) -> dict[str, Any]:
    return {
        "kind": str(getattr(issue, "kind", "")),
        "message": str(getattr(issue, "message", issue)),
        "count": int(getattr(issue, "count", 1) or 0),
    }


# --------------------------------------------------------------------------------------------------- yaml check


@dataclass(frozen=True)
class YamlCheck:
    """An existing data.yaml compared with an intent (what should be excluded, what must stay).

    Attributes:
        yaml_path: The checked file.
        names: Its class names in index order.
        present_but_excluded: Names in the yaml that the intent excludes (the "beam stayed in" mistake).
        critical_missing: Critical classes with samples missing from the yaml and not meant to be excluded
            (the "clefG excluded by id" mistake).
        critical_missing_no_samples: Critical classes missing that the dataset authors flag as having no samples.
        keep_missing: Names the intent keeps explicitly that the yaml lacks.
        unofficial: Names that are not DeepScoresV2 classes (e.g. ``Unknown_5``).
    """

    yaml_path: Path
    names: tuple[str, ...]
    present_but_excluded: tuple[str, ...]
    critical_missing: tuple[str, ...]
    critical_missing_no_samples: tuple[str, ...]
    keep_missing: tuple[str, ...]
    unofficial: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when neither of the two costly mistakes (nor unofficial names) is present."""
        return not (self.present_but_excluded or self.critical_missing or self.keep_missing or self.unofficial)

    def lines(self) -> list[str]:
        """Human-readable findings, one per line."""
        out = [f"{self.yaml_path}: {len(self.names)} classes"]
        if self.present_but_excluded:
            out.append("present but meant to be excluded: " + ", ".join(self.present_but_excluded))
        if self.critical_missing:
            out.append("critical classes missing: " + ", ".join(self.critical_missing))
        if self.keep_missing:
            out.append("meant to be kept but missing: " + ", ".join(self.keep_missing))
        if self.unofficial:
            out.append("names that are not DeepScoresV2 classes: " + ", ".join(self.unofficial))
        if self.critical_missing_no_samples:
            out.append(
                "(note) critical classes missing that have no samples in DeepScoresV2: "
                + ", ".join(self.critical_missing_no_samples)
            )
        out.append("OK: the yaml matches the intent" if self.ok else "MISMATCH: the yaml does not match the intent")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "yaml": str(self.yaml_path),
            "names": list(self.names),
            "present_but_excluded": list(self.present_but_excluded),
            "critical_missing": list(self.critical_missing),
            "critical_missing_no_samples": list(self.critical_missing_no_samples),
            "keep_missing": list(self.keep_missing),
            "unofficial": list(self.unofficial),
            "ok": self.ok,
        }


def check_yaml(path: str | os.PathLike[str], exclude: Iterable[str] = (), keep: Iterable[str] = ()) -> YamlCheck:
    """Compare a YOLO data.yaml with the intended exclusions.

    Args:
        path: The data.yaml.
        exclude: Names meant to be excluded (checked by name, aliases accepted; ids refused).
        keep: Names meant to be kept (in addition to the critical classes, which are always expected).

    Returns:
        The findings.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise OmrError(f"{p}: no such file")
    if p.suffix.lower() not in _YAML_SUFFIXES:
        raise DataFormatError(f"{p}: expected a YOLO data.yaml (.yaml/.yml), got {p.suffix or 'no suffix'!r}")
    names = read_yaml_names(p)
    _check_unique(names, p)
    table = class_table()
    canon = {n: (c.name if (c := official_category(n)) else n) for n in names}
    present = set(canon.values())
    universe = tuple(table.names()) + tuple(n for n in names if official_category(n) is None)
    excl = make_plan(universe, exclude).excluded if exclude else ()
    keep_names = [canonical_in(universe, str(k)) for k in keep]
    excl_set = set(excl)
    critical_missing = tuple(c.name for c in table.critical if c.name not in present and c.name not in excl_set)
    return YamlCheck(
        yaml_path=p,
        names=names,
        present_but_excluded=tuple(n for n in names if canon[n] in excl_set),
        critical_missing=tuple(n for n in critical_missing if not table.by_name(n).no_samples),
        critical_missing_no_samples=tuple(n for n in critical_missing if table.by_name(n).no_samples),
        keep_missing=tuple(n for n in keep_names if n not in present),
        unofficial=tuple(n for n in names if official_category(n) is None),
    )


# --------------------------------------------------------------------------------------------------- gallery


@dataclass(frozen=True)
class CropRef:
    """One annotation to show in the visual audit.

    Attributes:
        ann_id: Annotation id in the source.
        name: Class name.
        image_path: Page image on disk.
        filename: Page file name as the source spells it.
        box: ``(x0, y0, x1, y1)`` in page pixels.
    """

    ann_id: str
    name: str
    image_path: str
    filename: str
    box: tuple[float, float, float, float]

    @property
    def caption(self) -> str:
        """``"file.png · ann 1234"`` for under the thumbnail."""
        return f"{self.filename} · ann {self.ann_id}"


def sample_crops(ds: LoadedDataset, name: str, n: int = 12, seed: int = 0) -> list[CropRef]:
    """Pick up to ``n`` random annotations of class ``name`` whose page image exists (seeded, repeatable)."""
    ann = ds.data.annotations
    imgs = ds.data.images
    rows = image_rows(ds.data)
    if "path" not in imgs.columns:
        return []
    paths = imgs["path"].to_numpy(dtype=object)
    has_img = np.array([bool(p) and not (isinstance(p, float) and np.isnan(p)) for p in paths] + [False], dtype=bool)
    sel = (ann["name"].astype(str).to_numpy() == name) & has_img[np.where(rows >= 0, rows, len(paths))]
    idx = np.flatnonzero(sel)
    if len(idx) == 0:
        return []
    rng = random.Random(f"{seed}:{name}")
    pick = sorted(rng.sample(range(len(idx)), min(n, len(idx))))
    sub = ann.iloc[idx[pick]]
    fn = imgs["filename"].to_numpy(dtype=object)
    out = []
    for (ai, r), x0, y0, x1, y1 in zip(
        zip(sub["ann_id"].tolist(), rows[idx[pick]].tolist()),
        sub["x0"].tolist(),
        sub["y0"].tolist(),
        sub["x1"].tolist(),
        sub["y1"].tolist(),
    ):
        out.append(CropRef(str(ai), name, str(paths[r]), str(fn[r]), (float(x0), float(y0), float(x1), float(y1))))
    return out


#: The colour of the annotation's box in gallery crops (RGB).
CROP_BOX_COLOR = (230, 30, 30)


def render_crop(path: str, box: Sequence[float], *, context: float = 0.5, min_context_px: int = 12, thumb: int = 160) -> np.ndarray:
    """Cut ``box`` with some context from a page image, draw the box, and fit it into a ``thumb`` square.

    Args:
        path: Page image.
        box: ``(x0, y0, x1, y1)`` in page pixels.
        context: Context margin on each axis as a fraction of the box's extent on that axis.
        min_context_px: Smallest margin in page pixels (tiny symbols still get surroundings).
        thumb: Longest side of the returned thumbnail.

    Returns:
        An RGB ``uint8`` array.

    Raises:
        OmrError: The page cannot be read, or the box lies outside it (the message names the file).
    """
    page = grey_page(path)
    try:
        return crop_with_boxes(page, [(box, CROP_BOX_COLOR)], context=context, min_context=min_context_px, size=thumb)
    except OmrError as exc:
        raise OmrError(f"{path}: {exc}") from None
