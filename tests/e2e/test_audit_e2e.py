"""In Chromium, on the real DeepScoresV2 sample: the exclusion plan is typed, confirmed and acknowledged like a person does.

Each safety feature is attacked the way a hurried person would: a partial name + Enter, an exact name + Enter,
several pasted names, ids edited after confirming, a plan changed after acknowledging it.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ARTIFACTS, REAL_SAMPLE
from tests.e2e.conftest import wait_for_app
from tests.sample_pages import first_pages_with_images

pytestmark = pytest.mark.e2e

REAL = REAL_SAMPLE


def _main(page: Any) -> str:
    return str(page.locator('[data-testid="stMain"]').inner_text())


def _metric(page: Any, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True)).first
    return str(box.locator('[data-testid="stMetricValue"]').inner_text()).strip()


def _wait_text(page: Any, pattern: str, where: str = '[data-testid="stMain"]', timeout: float = 60) -> str:
    """Wait until the page shows ``pattern`` (the rerun after a keystroke has landed), then return the text."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    txt = ""
    while time.monotonic() < deadline:
        try:
            txt = str(page.locator(where).first.inner_text())
        except Exception:  # the element re-renders under our feet
            txt = ""
        if rx.search(txt):
            return txt
        time.sleep(0.2)
    _shot(page, f"timeout-{int(time.time())}.png")
    raise AssertionError(f"{pattern!r} not shown within {timeout} s; text:\n{txt[-2000:]}")


def _wait_metric(page: Any, label: str, value: str) -> None:
    """Wait until metric ``label`` shows ``value``; fail with what it shows instead."""
    deadline = time.monotonic() + 60
    while _metric(page, label) != value and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _metric(page, label) == value, f"{label}: {_metric(page, label)}, expected {value}"


def _type(page: Any, label: str, text: str) -> None:
    """Click into the field, type like a person, press Enter, wait for the rerun."""
    box = page.get_by_label(label, exact=True).first
    box.click()
    box.press("Control+a")
    box.press_sequentially(text, delay=20)
    box.press("Enter")
    page.keyboard.press("Tab")  # and move on, which also closes any open dropdown
    wait_for_app(page)


def _open_audit(page: Any, url: str, dataset: Path) -> None:
    page.goto(f"{url}/audit")
    wait_for_app(page)
    _type(page, "Or type path(s)", str(dataset))
    page.get_by_text("Exclusion plan (by name)").wait_for()
    assert _metric(page, "Excluded classes") == "0"


def _plan_names(page: Any) -> set[str]:
    """The names the page lists as excluded (the plan table's name column, read from the grid)."""
    grid = page.locator(".st-key-audit_plan_table [data-testid='stDataFrame']")
    if grid.count() == 0:
        return set()
    grid.scroll_into_view_if_needed()  # the grid renders the rows a person can see
    grid.locator("td").first.wait_for(state="attached")
    cells = grid.locator("td").all_inner_texts()
    heads = grid.locator("th").all_inner_texts()
    if "name" not in heads:  # mid-repaint
        return set()
    ncol = len(heads)
    col = heads.index("name")
    return {cells[i] for i in range(col, len(cells), ncol)}


def _wait_plan(page: Any, want: set[str], timeout: float = 30) -> None:
    """Wait until the plan table lists exactly ``want`` (the grid repaints after the metrics)."""
    deadline = time.monotonic() + timeout
    got = _plan_names(page)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.3)
        got = _plan_names(page)
    assert got == want, f"plan table shows {sorted(got)}, expected {sorted(want)}"


def _shot(page: Any, name: str) -> None:
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "screenshots" / name), full_page=True)


def test_enter_adds_exactly_the_typed_name(dashboard_server: str, browser_page: Any) -> None:
    page = browser_page
    _open_audit(page, dashboard_server, REAL)

    # "tie" + Enter: the fuzzy dropdown used to select all 44 names containing t-i-e
    _type(page, "Classes to exclude", "tie")
    _wait_text(page, r"Added exactly: tie")
    assert _metric(page, "Excluded classes") == "1", _main(page)[-1500:]
    _wait_plan(page, {"tie"})
    assert page.locator('[data-testid="stAlert"]').filter(has_text="Refused").count() == 0

    # "stem" + Enter used to add four graceNote…Stem… classes as well
    _type(page, "Classes to exclude", "stem")
    _wait_text(page, r"Added exactly: stem")
    assert _metric(page, "Excluded classes") == "2"
    _wait_plan(page, {"tie", "stem"})

    # a partial name + Enter adds nothing; the candidates are listed and each needs its own click
    _type(page, "Classes to exclude", "artic")
    txt = _wait_text(page, r"'artic' is not a class name")
    assert _metric(page, "Excluded classes") == "2"
    assert "'artic' is not a class name" in txt
    assert "articAccentAbove" in txt and "articStaccatoBelow" in txt
    _shot(page, "audit-suggestions.png")
    page.get_by_role("button", name="articAccentAbove", exact=True).click()
    _wait_metric(page, "Excluded classes", "3")
    _wait_plan(page, {"tie", "stem", "articAccentAbove"})

    # several names pasted at once: the exact ones join, the unknown one joins nothing and is reported
    _type(page, "Classes to exclude", "beam, slur ledgerLine noteh")
    _wait_text(page, r"'noteh' is not a class name")
    assert _metric(page, "Excluded classes") == "6"
    _wait_plan(page, {"tie", "stem", "articAccentAbove", "beam", "slur", "ledgerLine"})
    assert "'noteh' is not a class name" in _main(page)

    # an exact critical name is refused and stays out of the plan until the override
    _type(page, "Classes to exclude", "clefG")
    _wait_text(page, r"Refused: clefG")
    assert page.locator('[data-testid="stAlert"]').filter(has_text="Refused: clefG").count() == 1
    assert _metric(page, "Excluded classes") == "6"
    _wait_plan(page, {"tie", "stem", "articAccentAbove", "beam", "slur", "ledgerLine"})  # no clefG
    assert page.locator(".st-key-audit_convert button").first.is_disabled()

    # removing one class from the plan
    page.get_by_text("Remove from the plan").first.wait_for()
    _choose(page, "audit_remove", "beam")
    page.locator(".st-key-audit_remove_btn button").first.click()
    _wait_metric(page, "Excluded classes", "5")
    _wait_plan(page, {"tie", "stem", "articAccentAbove", "slur", "ledgerLine"})
    assert page.locator('[data-testid="stException"]').count() == 0


def _choose(page: Any, key: str, option: str) -> None:
    """Click into a selectbox, type the start of an option to filter the list, click the option."""
    box = page.locator(f".st-key-{key} input[role='combobox']").first
    box.click()
    box.press("Control+a")
    box.press_sequentially(option, delay=20)
    page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}\b")).first.click()
    wait_for_app(page)


def test_editing_ids_clears_the_confirmation(dashboard_server: str, browser_page: Any) -> None:
    page = browser_page
    _open_audit(page, dashboard_server, REAL)
    _type(page, "Exclude by id (resolved to names; you must confirm)", "42")
    _wait_text(page, "42 → stem")
    assert _metric(page, "Excluded classes") == "0"
    page.get_by_text("Yes, these names are the classes I mean to exclude").click()
    _wait_metric(page, "Excluded classes", "1")

    # the hurried edit: more ids after the confirmation
    _type(page, "Exclude by id (resolved to names; you must confirm)", "42 94 109")
    txt = _wait_text(page, "109 → stringsUpBow")
    assert "94 → dynamicP" in txt
    assert _metric(page, "Excluded classes") == "0", "changed ids must not ride on the old confirmation"
    assert not page.get_by_role("checkbox", name="Yes, these names are the classes I mean to exclude").is_checked()
    assert "not part of the plan until you confirm" in txt

    # confirming again takes the new list; removing an id clears it again
    page.get_by_text("Yes, these names are the classes I mean to exclude").click()
    _wait_metric(page, "Excluded classes", "3")
    _type(page, "Exclude by id (resolved to names; you must confirm)", "94")
    _wait_text(page, r"not part of the plan until you confirm")
    assert _metric(page, "Excluded classes") == "0"


def _pages_with_images(folder: Path, n_pages: int) -> Path:
    return first_pages_with_images(REAL, folder, n_pages)


def _convert_tab(page: Any, out_name: str) -> None:
    page.get_by_role("tab", name="Convert to YOLO").click()
    _type(page, "Output folder name", out_name)
    _choose(page, "audit_val_from", "carved from train")


def test_convert_needs_an_acknowledged_summary_and_says_how_many_pages(
    dashboard_env: dict[str, str], dashboard_server: str, browser_page: Any
) -> None:
    page = browser_page
    ws = Path(dashboard_env["OMR_WORKSPACE"])
    one = _pages_with_images(ws / "datasets" / "one_page", 1)
    _open_audit(page, dashboard_server, one)
    page.locator(".st-key-audit_apply_preset button").click()  # core symbols: stem, ledgerLine, beam, tie, slur
    wait_for_app(page)
    _wait_metric(page, "Excluded classes", "5")
    _type(page, "Classes to exclude", "dynamicF")
    _wait_metric(page, "Excluded classes", "6")
    _convert_tab(page, "one_yolo")

    # one summary of the whole plan: every name, its id, its instances, why
    summary = page.locator(".st-key-audit_convert_summary")
    text = summary.inner_text()
    raw = json.loads(one.read_text())
    counts: dict[str, int] = {}
    for a in raw["annotations"].values():
        counts[a["cat_id"][0]] = counts.get(a["cat_id"][0], 0) + 1
    for name, cid, why in (("stem", 42, "preset"), ("ledgerLine", 2, "preset"), ("beam", 122, "preset"),
                           ("tie", 123, "preset"), ("slur", 121, "preset"), ("dynamicF", 96, "typed")):
        assert re.search(rf"{name} \(id {cid}\): {counts.get(str(cid), 0):,} instances; [^\n]*{why}", text), (name, text)
    assert page.locator(".st-key-audit_convert button").first.is_disabled(), "convert before acknowledging the plan"

    ack = re.compile(r"I have read this list")
    page.get_by_text(ack).click()
    page.locator(".st-key-audit_convert button:enabled").first.wait_for()

    # changing the plan after acknowledging it needs a new acknowledgement
    page.get_by_role("tab", name="Classes").click()
    _type(page, "Classes to exclude", "dynamicP")
    page.get_by_role("tab", name="Convert to YOLO").click()
    _wait_text(page, r"dynamicP \(id 94\)", where=".st-key-audit_convert_summary")
    assert page.locator(".st-key-audit_convert button").first.is_disabled()
    assert not page.get_by_role("checkbox", name=ack).is_checked()
    page.get_by_text(ack).click()
    page.locator(".st-key-audit_convert button:enabled").first.wait_for()

    # one page, val carved from train: an exact message, and no progress bar left saying "Converting…"
    page.locator(".st-key-audit_convert button").first.click()
    wait_for_app(page)
    err = page.locator('[data-testid="stAlert"]').filter(has_text="validation")
    err.first.wait_for()
    msg = err.first.inner_text()
    assert "1 page" in msg and "at least 2 pages" in msg, msg
    assert "Converting…" not in _main(page)
    _shot(page, "audit-convert-one-page.png")

    # two pages: it converts, and the log and excluded_classes.json carry the same list the page showed
    two = _pages_with_images(ws / "datasets" / "two_pages", 2)
    _open_audit(page, dashboard_server, two)
    page.locator(".st-key-audit_apply_preset button").click()
    _wait_metric(page, "Excluded classes", "5")
    _convert_tab(page, "two_yolo")
    shown = [ln for ln in page.locator(".st-key-audit_convert_summary").inner_text().splitlines() if " (id " in ln]
    assert len(shown) == 5
    page.get_by_text(ack).click()
    page.locator(".st-key-audit_convert button:enabled").first.wait_for()
    page.locator(".st-key-audit_convert button").first.click()
    wait_for_app(page)
    page.get_by_text(re.compile("Wrote .*two_yolo")).first.wait_for()
    out = ws / "datasets" / "two_yolo"
    log = (out / "convert.log").read_text()
    for ln in shown:
        assert ln.strip() in log, (ln, log)
    manifest = json.loads((out / "excluded_classes.json").read_text())
    assert [f"{e['name']} (id {e['id']}): {e['source_instances']:,} instances; {e['reason']}" for e in manifest["excluded"]] == [
        ln.strip() for ln in shown
    ]


def _painted_single_row(grid: Any, timeout: float = 30) -> Image.Image:
    """The grid's pixels once its canvas shows exactly one data row (the filter has been painted)."""
    deadline = time.monotonic() + timeout
    while True:
        shot = Image.open(io.BytesIO(grid.screenshot())).convert("L")
        w, h = shot.size
        px = np.asarray(shot)
        row1, row2 = px[38:70, 8 : w // 3], px[74:104, 8 : w // 3] if h > 104 else px[:0]
        if (row1 < 150).any() and not (row2 < 150).any():
            return shot
        if time.monotonic() > deadline:
            raise AssertionError("the class table never showed exactly one row")
        time.sleep(0.2)


def test_audit_table_chart_and_metrics_read_well(dashboard_server: str, browser_page: Any) -> None:
    page = browser_page  # 1400 px wide
    _open_audit(page, dashboard_server, REAL)
    grid = page.locator(".st-key-audit_class_table [data-testid='stDataFrame']").first
    grid.locator("th").first.wait_for(state="attached")
    heads = grid.locator("th").all_inner_texts()
    assert "flags" in heads, f"flags column off-screen at 1400 px: visible columns {heads}"
    # coda has no instance: its size cells (the last columns, on screen at 1920 px) are blank, not "None"
    page.set_viewport_size({"width": 1920, "height": 1000})
    _type(page, "Search (name, group, id, flag)", "coda")
    _wait_text(page, r"1 of 136 classes")
    grid.locator("td", has_text="coda").first.wait_for(state="attached")
    grid.scroll_into_view_if_needed()
    shot = _painted_single_row(grid)
    w, _ = shot.size
    sizes = np.asarray(shot.crop((int(w * 0.8), 38, w - 4, 70)))  # the coda row, med h px … h @imgsz
    assert (sizes < 200).sum() == 0, "text drawn in the empty size cells (the grid's 'None' placeholder)"
    page.set_viewport_size({"width": 1400, "height": 1000})
    # "Instances removed 0": no up-arrow
    removed = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text("Instances removed", exact=True)).first
    assert removed.locator('[data-testid^="stMetricDeltaIcon"]').count() == 0
    # the Distribution chart's x-axis is readable at the top, not only at the bottom of a tall chart
    page.get_by_role("tab", name="Distribution").click()
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.wait_for()
    page.locator("[data-testid='stPlotlyChart'] .xtick text").first.wait_for()
    time.sleep(0.5)
    box = chart.bounding_box()
    assert box is not None and box["height"] > 1500
    tops = [t.bounding_box()["y"] for t in chart.locator("g.xtick text, g.x2tick text").all() if t.bounding_box()]
    assert any(y < box["y"] + 200 for y in tops), "no x-axis labels near the top of the chart"
    assert any(y > box["y"] + box["height"] - 120 for y in tops), "no x-axis labels at the bottom of the chart"


CLIPPED_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] *')]
    .filter(e => e.offsetParent !== null && ((e.tagName === 'INPUT' ? e.value : e.innerText) || '').trim())
    .filter(e => e.scrollWidth > e.clientWidth + 1
                 && (e.tagName === 'INPUT' || ['hidden', 'clip'].includes(getComputedStyle(e).overflowX)))
    .map(e => (e.tagName === 'INPUT' ? e.value : e.innerText).trim().slice(0, 80))"""


@pytest.mark.parametrize("width", [1280, 1920])
def test_audit_page_has_no_clipped_text(dashboard_server: str, browser_page: Any, width: int) -> None:
    """Screenshots at common widths, and no label, caption or metric cut off with an ellipsis."""
    page = browser_page
    page.set_viewport_size({"width": width, "height": 1000})
    _open_audit(page, dashboard_server, REAL)
    page.locator(".st-key-audit_apply_preset button").click()
    _wait_metric(page, "Excluded classes", "5")
    _type(page, "Classes to exclude", "artic")
    _wait_text(page, r"'artic' is not a class name")
    _type(page, "Exclude by id (resolved to names; you must confirm)", "6")
    _wait_text(page, "6 → clefG")
    page.set_viewport_size({"width": width, "height": 3200})  # the whole plan section in one picture
    _shot(page, f"audit-{width}-plan.png")
    clipped = page.evaluate(CLIPPED_JS)
    for tab in ("Distribution", "Density & memory", "Convert to YOLO"):
        page.get_by_role("tab", name=tab).click()
        page.get_by_role("tab", name=tab, selected=True).wait_for()
        if tab == "Distribution":
            page.locator("[data-testid='stPlotlyChart'] .xtick text").first.wait_for()
        _shot(page, f"audit-{width}-{tab.split()[0].lower()}.png")
        clipped += page.evaluate(CLIPPED_JS)
    assert not clipped, f"text cut off at {width} px: {sorted(set(clipped))}"
