"""Figures of an evaluation: the 136-class confusion matrix stays light, clickable and ordered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omr_core.classes import GROUPS, class_table
from omr_core.evaluation.figures import class_order, compare_figure, confusion_figure, per_class_figure


def _counts(nc: int, present: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    for c in present:
        m[c, c] = rng.integers(10, 3000)
        m[nc, c] = rng.integers(1, 300)
    for _ in range(200):
        a, b = rng.choice(present, 2)
        m[a, b] += rng.integers(1, 50)
    return m


def test_confusion_136_classes() -> None:
    cats = class_table().deepscores
    names, groups = [c.name for c in cats], [c.group for c in cats]
    nc = len(names)
    present = np.arange(0, nc, 2)  # half the classes have cases
    m = _counts(nc, present)
    fig = confusion_figure(m, names, groups, order="group", hide_empty=True)
    # What keeps 136 classes fast (no wall-clock bound here: it would flip on a loaded CI machine): one trace for
    # all cells, not one per cell.
    assert len(fig.data) == 1
    xs = list(fig.layout.xaxis.ticktext)
    assert len(xs) == len(present) + 1 and xs[-1] == "background"  # empty classes hidden, background last
    groups_in_order = [groups[names.index(n)] for n in xs[:-1]]
    assert groups_in_order == sorted(groups_in_order, key=GROUPS.index)
    tr = fig.data[0]
    assert len(tr.x) == int((m > 0).sum())  # one square per non-empty cell, no more
    for (p, t, n), x, y in zip(tr.customdata, tr.x, tr.y):
        assert m[p, t] == n
        assert fig.layout.xaxis.ticktext[x] == ([*names, "background"][t])
        assert fig.layout.yaxis.ticktext[y] == ([*names, "background"][p])
    assert fig.layout.height >= 10 * (len(present) + 1)  # at least 10 px per class


def test_orders_and_diagonal() -> None:
    names, groups = ["a", "b", "c"], ["rests", "clefs", "clefs"]
    m = np.zeros((4, 4), dtype=np.int64)
    m[0, 0], m[1, 2], m[3, 1] = 5, 7, 2
    assert class_order(m, names, groups, "errors")[0] in (1, 2)
    assert class_order(m, names, groups, "group") == [1, 2, 0]  # clefs before rests, as GROUPS orders them
    fig = confusion_figure(m, names, groups, show_correct=False, hide_empty=False)
    assert all(p != t for p, t, _ in fig.data[0].customdata)


def test_other_figures_build() -> None:
    per = pd.DataFrame(
        {"class": ["a", "b", "c"], "group": ["x", "x", "y"], "labelled": [True, True, False], "instances": [3, 4, 0],
         "precision": [0.5, 0.2, np.nan], "recall": [0.4, 0.1, np.nan], "ap50": [0.3, 0.1, np.nan], "ap50_95": [0.2, 0.05, np.nan]}
    )  # fmt: skip
    fig = per_class_figure(per)
    # Worst first means on top: the last category of an unreversed y axis; the class without labels is left out.
    assert list(fig.layout.yaxis.categoryarray)[-1] == "b" and fig.layout.yaxis.autorange != "reversed"
    assert "c" not in {y for tr in fig.data for y in tr.y}
    cmp = pd.DataFrame({"class": ["a", "b"], "d_ap50_95": [-0.1, 0.2], "ap50_95_a": [0.3, 0.1], "ap50_95_b": [0.2, 0.3]})
    assert list(compare_figure(cmp).data[0].y) == ["a", "b"]


def test_colour_bar_title_stays_clear_of_its_ticks() -> None:
    # A small matrix (4 classes, counts up to 12): the title sat on top of the bar, over its "10" tick label.
    names, groups = ["a", "b", "c", "d"], ["rests", "clefs", "clefs", "rests"]
    m = np.zeros((5, 5), dtype=np.int64)
    m[0, 0], m[1, 2], m[4, 1], m[3, 3] = 12, 7, 2, 1
    bar = confusion_figure(m, names, groups).data[0].marker.colorbar
    assert bar.title.side == "right" and bar.title.text == "cases"
    assert list(bar.ticktext) == ["1", "10"]  # only ticks inside the colour range (log10(13) ~ 1.11)
    assert confusion_figure(m, names, groups, normalize=True).data[0].marker.colorbar.title.side == "right"


def test_confusion_figure_cell_by_cell() -> None:
    # A 3-class matrix drawn whole: where each square sits, what it carries and says, the separators and the size.
    names, groups = ["a", "b", "c"], ["rests", "clefs", "clefs"]
    m = np.zeros((4, 4), dtype=np.int64)
    m[0, 0], m[1, 2], m[3, 1], m[2, 2], m[0, 3] = 5, 7, 2, 9, 3
    fig = confusion_figure(m, names, groups)
    tr = fig.data[0]
    assert list(fig.layout.xaxis.ticktext) == list(fig.layout.yaxis.ticktext) == ["b", "c", "a", "background"]
    assert [list(c) for c in tr.customdata] == [[0, 0, 5], [0, 3, 3], [1, 2, 7], [2, 2, 9], [3, 1, 2]]
    assert list(tr.x) == [2, 3, 1, 1, 0] and list(tr.y) == [2, 2, 0, 1, 3]
    assert list(tr.marker.color) == pytest.approx(np.log10(np.array([5, 3, 7, 9, 2]) + 1))
    assert tr.marker.cmax == 1.0 and tr.marker.size == 35
    assert list(tr.text) == [
        "true: a (rests)<br>predicted: a (rests)<br>correct: 5 (100% of true a)",
        "true: background (background)<br>predicted: a (rests)<br>false detection: 3 (100% of true background)",
        "true: c (clefs)<br>predicted: b (clefs)<br>wrong class: 7 (44% of true c)",
        "true: c (clefs)<br>predicted: c (clefs)<br>correct: 9 (56% of true c)",
        "true: b (clefs)<br>predicted: background (background)<br>missed: 2 (100% of true b)",
    ]
    # Separators after the clefs (x and y at 1.5) and before background (2.5).
    assert [(s.x0, s.x1, s.y0, s.y1) for s in fig.layout.shapes] == [
        (1.5, 1.5, -0.5, 3.5), (2.5, 2.5, -0.5, 3.5), (-0.5, 3.5, 1.5, 1.5), (-0.5, 3.5, 2.5, 2.5)]  # fmt: skip
    assert (fig.layout.width, fig.layout.height) == (368, 288)
    assert (fig.layout.margin.l, fig.layout.margin.b, fig.layout.margin.r, fig.layout.margin.t) == (114, 114, 110, 30)
    by_index = confusion_figure(m, names, groups, normalize=True, order="index")
    tr = by_index.data[0]
    assert list(by_index.layout.xaxis.ticktext) == ["a", "b", "c", "background"]
    assert list(tr.x) == [0, 3, 2, 2, 1] and list(tr.y) == [0, 0, 1, 2, 3]
    assert list(tr.marker.color) == pytest.approx([1.0, 1.0, 7 / 16, 9 / 16, 1.0])
    assert [(s.x0, s.y0) for s in by_index.layout.shapes] == [(2.5, -0.5), (-0.5, 2.5)]  # background only: no groups
