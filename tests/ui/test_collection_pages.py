"""AppTest: every real run folder of the collection opens on the Training page and in Compare, read right.

The expected numbers come from the independent computation in tests/core/training/test_layouts.py (pandas over the
raw CSV, the fitness rules of each release written out there), not from the module the pages call.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.core.training.test_layouts import DATA, FOLDERS, expected
from tests.ui.apptest import open_page

#: What the pages call each task's headline metric.
NAME = {"detect": "mAP50-95", "segment": "mask mAP50-95", "pose": "pose mAP50-95", "obb": "OBB mAP50-95",
        "classify": "top-1"}


#: The Training table says "external" for a run trained elsewhere that did not end on its own, and why in its note.
PAGE_STATE = {"finished": "finished", "early-stopped": "early-stopped"}


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace holding the whole collection (one copy for the module: the pages only read it)."""
    ws = tmp_path_factory.mktemp("collection")
    for name in FOLDERS:
        shutil.copytree(DATA / name, ws / "runs" / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMR_WORKSPACE", str(ws))
        yield ws


@pytest.fixture(scope="module")
def training(collection: Path) -> AppTest:
    """One Training page listing all 30 runs together; each test reads its row and opens its run in the monitor."""
    return open_page("app_pages/training.py", timeout=60)


@pytest.fixture(scope="module")
def compare(collection: Path) -> AppTest:
    """One Compare page; each test picks its own run (a person changing the selection)."""
    return open_page("app_pages/compare.py", timeout=60)


@pytest.mark.parametrize("name", FOLDERS)
def test_runs_table_shows_each_collected_run_right(name: str, training: AppTest) -> None:
    exp = expected(name)
    training.selectbox(key="monitor_run").set_value(name).run()
    assert not training.exception, [e.value for e in training.exception]
    assert f"Last epoch {exp['done']} " in training.text[0].value  # the monitor, 1-based like the table
    row = training.dataframe[0].value.set_index("run").loc[name]
    assert row["epoch"] == f"{exp['done']}/{exp['planned']}"
    assert row["state"] == PAGE_STATE.get(exp["state"], "external"), row["note"]
    if exp["state"] == "stopped short":
        assert f"stopped at epoch {exp['done']} of {exp['planned']}" in row["note"]
    assert row["metric"] == _head_name(name, exp)
    assert row["best"] == pytest.approx(exp["best"]) and row["best epoch"] == exp["best_epoch"]


@pytest.mark.parametrize("name", FOLDERS)
def test_compare_opens_each_collected_run_on_its_headline(name: str, compare: AppTest) -> None:
    exp = expected(name)
    compare.multiselect(key="cmp_runs").set_value([name]).run()
    assert not compare.exception, [e.value for e in compare.exception]
    header = (DATA / name / "results.csv").read_text().splitlines()[0].replace(" ", "").split(",")
    assert compare.selectbox(key="cmp_metric").value == exp["head"] and exp["head"] in header
    summary = compare.dataframe[0].value.set_index("run").loc[name]
    assert summary["epochs"] == f"{exp['done']}/{exp['planned']}" and summary["state"] == PAGE_STATE.get(
        exp["state"], "external")
    assert summary[f"best {_head_name(name, exp)}"] == pytest.approx(exp["best"])
    assert summary["epoch of best"] == exp["best_epoch"]
    assert compare.get("plotly_chart"), "Compare drew no chart"


def _head_name(name: str, exp: dict) -> str:
    return "mAP50-95" if name.startswith("v5_") else NAME[exp["task"]]


def test_compare_of_the_whole_collection_opens_on_the_headline_most_runs_have(compare: AppTest) -> None:
    # YOLOv5 (mAP_0.5:0.95, x/lr0), classifiers (top-1, train/loss) and detectors share no metric column at all:
    # the page opens on the headline most of the picked runs carry and names the runs it leaves out.
    compare.multiselect(key="cmp_runs").set_value(FOLDERS).run()
    assert not compare.exception, [e.value for e in compare.exception]
    headers = {n: (DATA / n / "results.csv").read_text().splitlines()[0].replace(" ", "").split(",") for n in FOLDERS}
    shared = set.intersection(*(set(h) for h in headers.values())) - {"epoch", "time"}
    assert not shared
    heads = [expected(n)["head"] for n in FOLDERS]
    most = max(set(heads), key=lambda h: (sum(h in headers[n] for n in FOLDERS), h))
    assert most == "metrics/mAP50-95(B)"
    assert compare.selectbox(key="cmp_metric").value == most
    lacking = [n for n in FOLDERS if most not in headers[n]]
    captions = " ".join(c.value for c in compare.caption)
    assert f"No {most} column in: {', '.join(lacking)}" in captions
    summary = compare.dataframe[0].value.set_index("run")
    assert set(summary.index) == set(FOLDERS)
    for name in FOLDERS:  # each run keeps its own headline and best epoch in the mixed table
        exp = expected(name)
        assert summary.loc[name, "epoch of best"] == exp["best_epoch"]
        assert summary.loc[name, "best"] == pytest.approx(exp["best"])
