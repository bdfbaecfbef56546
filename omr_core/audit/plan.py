"""Exclusion plans by class name: presets, id resolution, name lookup, critical-class rules and their summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omr_core import recipe
from omr_core.classes import GROUPS, Category, class_table, official_category
from omr_core.errors import CriticalExclusionError, UnknownClassError

if TYPE_CHECKING:
    pass
from omr_core.audit.statistics import class_codes


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
        codes = class_codes(ann, self.universe)
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
