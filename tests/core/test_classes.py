"""The official class table: ids, names, aliases, groups, critical set, no-samples flags."""

from __future__ import annotations

import csv

import pytest

from omr_core.classes import GROUPS, class_table
from omr_core.errors import UnknownClassError
from tests.conftest import DATA


def test_table_matches_the_released_categories() -> None:
    rows = list(csv.DictReader((DATA / "deepscores_categories.csv").open(encoding="utf-8")))
    table = class_table()
    assert len(table) == len(rows) == 208
    for row in rows:
        cat = table.by_id(int(row["id"]))
        assert cat.name == row["name"] and cat.annotation_set == row["annotation_set"]
    assert len(table.deepscores) == 136


@pytest.mark.parametrize(
    ("cat_id", "name"), [(6, "clefG"), (42, "stem"), (2, "ledgerLine"), (121, "slur"), (122, "beam"), (123, "tie")]
)
def test_ids_people_get_wrong(cat_id: int, name: str) -> None:
    table = class_table()
    assert table.by_id(cat_id).name == name
    assert table.by_id(str(cat_id)).name == name
    assert table.by_name(name).id == cat_id
    assert table.by_name(name).yolo_index == cat_id - 1


def test_leger_alias_and_resolve() -> None:
    table = class_table()
    assert table.by_name("legerLine").id == 2
    assert table.resolve("6").name == "clefG"
    assert table.resolve(" clefF ").id == 9
    assert table.by_yolo_index(5).name == "clefG"


def test_unknown_names_list_closest() -> None:
    with pytest.raises(UnknownClassError) as err:
        class_table().by_name("clefg")
    assert "clefG" in str(err.value)
    with pytest.raises(UnknownClassError, match="1-208"):
        class_table().by_id(999)
    with pytest.raises(UnknownClassError):
        class_table().by_yolo_index(136)


def test_no_samples_and_critical() -> None:
    table = class_table()
    no = {c.name for c in table.no_samples}
    assert len(no) == 21
    assert {"clefUnpitchedPercussion", "tremolo5", "restHNr", "tuplet2", "noteheadBlackOnLineSmall"} <= no
    crit = {c.name for c in table.critical}
    assert {"clefG", "clefF", "clefCAlto", "noteheadBlackOnLine", "restQuarter", "accidentalSharp", "keyFlat",
            "timeSig4", "augmentationDot"} <= crit
    assert not {"stem", "ledgerLine", "beam", "tie", "slur", "staff", "brace"} & crit


def test_groups_cover_every_class() -> None:
    table = class_table()
    for cat in table.deepscores:
        assert cat.group in GROUPS
    thin = {c.name for c in table.in_group("thin/long")}
    assert {"stem", "ledgerLine", "beam", "tie", "slur", "staff", "brace"} <= thin
    assert all(c.name.startswith("notehead") for c in table.in_group("noteheads"))
    assert len(table.in_group("noteheads")) == 16
    with pytest.raises(UnknownClassError):
        table.in_group("nope")


def test_pedal_marks_are_not_key_signatures() -> None:
    table = class_table()
    keys = {c.name for c in table.in_group("key signatures")}
    assert keys == {"keyFlat", "keyNatural", "keySharp"}
    assert not table.by_name("keyboardPedalPed").critical


def test_one_colour_per_group_for_every_page() -> None:
    """Clefs are one colour on the Class audit chart and the Review overlay: both draw from this one map."""
    import re

    from omr_core.classes import GROUP_COLORS, GROUPS, group_color

    assert set(GROUP_COLORS) == {*GROUPS, "unofficial"}
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in GROUP_COLORS.values())
    assert len(set(GROUP_COLORS.values())) == len(GROUP_COLORS)  # no two groups look alike
    assert group_color("clefs") == GROUP_COLORS["clefs"] and group_color("no such group") == GROUP_COLORS["other"]
    root = DATA.parents[1]
    defined = [
        str(f.relative_to(root))
        for folder in ("omr_core", "dashboard")
        for f in (root / folder).rglob("*.py")
        if re.search(r"^GROUP_COLORS\b", f.read_text(encoding="utf-8"), re.M)
    ]
    assert defined == ["omr_core/classes.py"]
