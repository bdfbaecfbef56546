"""The DeepScoresV2 class table: lookups by id and name, class groups and the critical set."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from omr_core.errors import UnknownClassError

#: Spellings seen in public files that mean an official class (alias -> official name).
ALIASES: dict[str, str] = {"legerLine": "ledgerLine"}

#: Thin or long symbols: hard for a box detector, several are reconstructed instead of learned.
THIN_LONG = frozenset(
    {
        "stem",
        "ledgerLine",
        "beam",
        "tie",
        "slur",
        "staff",
        "brace",
        "dynamicCrescendoHairpin",
        "dynamicDiminuendoHairpin",
        "tupletBracket",
        "ottavaBracket",
    }
)

GROUPS: tuple[str, ...] = (
    "noteheads",
    "clefs",
    "rests",
    "accidentals",
    "key signatures",
    "time signatures",
    "flags",
    "articulations",
    "dynamics",
    "thin/long",
    "ornaments",
    "tuplets",
    "fingering",
    "other",
)

#: One colour per class group (RGB hex), the same on every page and figure: the review overlay and its PNG, the
#: audit's charts. "unofficial" is for names outside DeepScoresV2.
GROUP_COLORS: dict[str, str] = {
    "noteheads": "#1f77b4",
    "clefs": "#9467bd",
    "rests": "#8c564b",
    "accidentals": "#2ca02c",
    "key signatures": "#17becf",
    "time signatures": "#bcbd22",
    "flags": "#e377c2",
    "articulations": "#7f7f7f",
    "dynamics": "#ff7f0e",
    "thin/long": "#d62728",
    "ornaments": "#aec7e8",
    "tuplets": "#98df8a",
    "fingering": "#c5b0d5",
    "other": "#c49c94",
    "unofficial": "#000000",
}


def group_color(group: str) -> str:
    """The colour of ``group`` (`GROUP_COLORS`); an unknown group gets the colour of "other"."""
    return GROUP_COLORS.get(group, GROUP_COLORS["other"])


_PREFIX_GROUPS: tuple[tuple[str, str], ...] = (
    ("notehead", "noteheads"),
    ("clef", "clefs"),
    ("rest", "rests"),
    ("accidental", "accidentals"),
    ("keyboard", "other"),  # keyboardPedalPed/Up are pedal marks, not key signatures
    ("key", "key signatures"),
    ("timeSig", "time signatures"),
    ("flag", "flags"),
    ("artic", "articulations"),
    ("fermata", "articulations"),
    ("strings", "articulations"),
    ("dynamic", "dynamics"),
    ("ornament", "ornaments"),
    ("tremolo", "ornaments"),
    ("arpeggiato", "ornaments"),
    ("graceNote", "ornaments"),
    ("tuplet", "tuplets"),
    ("fingering", "fingering"),
)


def group_of(name: str) -> str:
    """Return the group of an official class name (see `GROUPS`)."""
    if name in THIN_LONG:
        return "thin/long"
    for prefix, group in _PREFIX_GROUPS:
        if name.startswith(prefix):
            return group
    return "other"


def _is_critical(name: str, group: str) -> bool:
    return group in {"noteheads", "clefs", "rests", "accidentals", "key signatures", "time signatures"} or (
        name == "augmentationDot"
    )


@dataclass(frozen=True)
class Category:
    """One official DeepScoresV2 category.

    Attributes:
        id: Official id (1-136 deepscores set, 137-208 muscima++ set).
        name: Official spelling as in the released annotation files.
        annotation_set: ``"deepscores"`` or ``"muscima++"``.
        color: Grey value in the released segmentation masks.
        group: Class group (one of `GROUPS`); muscima++ classes are in ``"other"`` unless named alike.
        no_samples: True where the dataset authors flag the class as having no samples.
        critical: True for classes that must never be excluded by accident.
        muscima_id: The muscima++ id seen paired with this class, if any.
    """

    id: int
    name: str
    annotation_set: str
    color: int
    group: str
    no_samples: bool
    critical: bool
    muscima_id: int | None

    @property
    def yolo_index(self) -> int | None:
        """YOLO index when only the deepscores set is used (``id - 1``); None for muscima++ classes."""
        return self.id - 1 if self.annotation_set == "deepscores" else None


@dataclass(frozen=True)
class ClassTable:
    """All 208 categories with fast lookups; get it from `class_table()`."""

    categories: tuple[Category, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {c.id: c for c in self.categories})
        ds = {c.name: c for c in self.categories if c.annotation_set == "deepscores"}
        mu = {c.name: c for c in self.categories if c.annotation_set != "deepscores"}
        object.__setattr__(self, "_by_name", {**mu, **ds})

    def __len__(self) -> int:
        return len(self.categories)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.categories)

    @property
    def deepscores(self) -> tuple[Category, ...]:
        """The 136 classes of the deepscores annotation set, in id order."""
        return tuple(c for c in self.categories if c.annotation_set == "deepscores")

    def canonical_name(self, name: str) -> str:
        """Return the official spelling of ``name`` (resolving aliases) or raise `UnknownClassError`."""
        name = name.strip()
        name = ALIASES.get(name, name)
        if name not in self._by_name:  # type: ignore[attr-defined]
            raise UnknownClassError(self._unknown_message(name))
        return name

    def by_name(self, name: str) -> Category:
        """Look a class up by name (deepscores set first); aliases such as ``legerLine`` are accepted."""
        return self._by_name[self.canonical_name(name)]  # type: ignore[attr-defined,no-any-return]

    def by_id(self, cat_id: int | str) -> Category:
        """Look a class up by official id (int or the string form used in the JSON files)."""
        try:
            key = int(cat_id)
        except (TypeError, ValueError):
            raise UnknownClassError(f"{cat_id!r} is not a DeepScoresV2 class id (expected an integer 1-208)") from None
        cat = self._by_id.get(key)  # type: ignore[attr-defined]
        if cat is None:
            raise UnknownClassError(f"{key} is not a DeepScoresV2 class id (valid ids are 1-208)")
        return cat  # type: ignore[no-any-return]

    def by_yolo_index(self, index: int) -> Category:
        """Look a deepscores-set class up by its default YOLO index (``id - 1``)."""
        if not 0 <= index < 136:
            raise UnknownClassError(f"YOLO index {index} is outside the deepscores set (0-135)")
        return self.by_id(index + 1)

    def resolve(self, token: str | int) -> Category:
        """Resolve a user token: an official name, an alias, or an id written as digits."""
        if isinstance(token, int) or (isinstance(token, str) and token.strip().isdigit()):
            return self.by_id(token)
        return self.by_name(str(token))

    def in_group(self, group: str) -> tuple[Category, ...]:
        """Deepscores-set classes of one group."""
        if group not in GROUPS:
            raise UnknownClassError(f"unknown class group {group!r}; groups are: {', '.join(GROUPS)}")
        return tuple(c for c in self.deepscores if c.group == group)

    @property
    def critical(self) -> tuple[Category, ...]:
        """Deepscores-set classes that must never be excluded by accident."""
        return tuple(c for c in self.deepscores if c.critical)

    @property
    def no_samples(self) -> tuple[Category, ...]:
        """The 21 deepscores-set classes the dataset authors flag as having no samples."""
        return tuple(c for c in self.deepscores if c.no_samples)

    def closest(self, name: str, n: int = 5) -> list[str]:
        """Official names closest to ``name`` (for error messages)."""
        names = list(self._by_name)  # type: ignore[attr-defined]
        close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
        if not close:
            low = name.lower()
            close = [x for x in names if low and low in x.lower()][:n]
        return close

    def _unknown_message(self, name: str) -> str:
        close = self.closest(name)
        hint = f"; closest official names: {', '.join(close)}" if close else ""
        return f"{name!r} is not a DeepScoresV2 class name{hint}"

    def names(self, categories: Iterable[Category] | None = None) -> list[str]:
        """Names of ``categories`` (default: the deepscores set) in order."""
        return [c.name for c in (categories if categories is not None else self.deepscores)]


@lru_cache(maxsize=1)
def class_table() -> ClassTable:
    """Load the official table shipped as package data (``omr_core/data/categories.csv``)."""
    rows: list[Category] = []
    text = resources.files("omr_core").joinpath("data/categories.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        name = row["name"]
        group = group_of(name) if row["annotation_set"] == "deepscores" else "other"
        muscima = row.get("muscima_pp_cat_id_paired_in_samples") or ""
        rows.append(
            Category(
                id=int(row["id"]),
                name=name,
                annotation_set=row["annotation_set"],
                color=int(row["color"]),
                group=group,
                no_samples=(row.get("no_samples_per_raember_s2anet_dev") or "").strip().lower() == "yes",
                critical=row["annotation_set"] == "deepscores" and _is_critical(name, group),
                muscima_id=int(muscima) if muscima.strip().isdigit() else None,
            )
        )
    rows.sort(key=lambda c: c.id)
    return ClassTable(tuple(rows))


@lru_cache(maxsize=4096)
def official_category(name: str) -> Category | None:
    """The official class of ``name`` (aliases resolved), or None for a name outside DeepScoresV2's table."""
    try:
        return class_table().by_name(name)
    except UnknownClassError:
        return None
