"""data.yaml checks: do its class names match the plan (excluded classes gone, kept ones present)?"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omr_core.classes import class_table, official_category
from omr_core.errors import DataFormatError, OmrError

if TYPE_CHECKING:
    pass
from omr_core.audit.plan import canonical_in, make_plan
from omr_core.datasets.discovery import YAML_SUFFIXES, check_unique_names, read_yaml_names


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
    if p.suffix.lower() not in YAML_SUFFIXES:
        raise DataFormatError(f"{p}: expected a YOLO data.yaml (.yaml/.yml), got {p.suffix or 'no suffix'!r}")
    names = read_yaml_names(p)
    check_unique_names(names, p)
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
