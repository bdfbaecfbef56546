"""Build a small real workspace (engrave → convert → train → evaluate) and screenshot every page for README.

The Training and Compare pages show a short run of the CPU recipe trained here; Review a score and Per-class
failures show the shipped reference model (models/, the pages' default) on held-out engraved pages.

Usage: ``python -m docs.make_tour [WORKDIR]`` from the repository root (needs Debian chromium). Writes docs/screenshots/*.png.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_for_app

REPO = Path(__file__).resolve().parent.parent

OMR = [sys.executable, "-m", "omr_core.cli"]
SHIPPED = REPO / "models" / "reading-v2.pt"


def sh(*args: str, env: dict[str, str]) -> str:
    print("$", " ".join(args[2:]), flush=True)
    return subprocess.run([*args], env=env, check=True, capture_output=True, text=True).stdout


def review_page(synth: Path) -> Path:
    """The first test page of the engraved set (held out from the tour's training)."""
    doc = json.loads((synth / "deepscores_test.json").read_text())
    return synth / "images" / doc["images"][0]["filename"]


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/omr-tour").resolve()
    ws = work / "workspace"
    (ws / "runs").mkdir(parents=True, exist_ok=True)
    (ws / "datasets").mkdir(exist_ok=True)
    env = {**os.environ, "OMR_WORKSPACE": str(ws), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "yolo")}
    synth, yolo = ws / "datasets" / "engraved", ws / "datasets" / "engraved-reading"
    if not synth.exists():
        sh(*OMR, "synth", str(synth), "--pages", "12", "--seed", "7", env=env)
    if not yolo.exists():
        # The reference model's 49 classes, tiled as it was trained, so that it can be evaluated on these pages.
        from omr_core.recipe import READING_CLASSES

        sh(*OMR, "convert", str(synth / "deepscores_train.json"), str(synth / "deepscores_test.json"), str(yolo),
           "--keep-only", *READING_CLASSES, "--allow-critical", "--tile", "640", "--imgsz", "320", env=env)
    run = ws / "runs" / "tour"
    if not run.exists():
        sh(*OMR, "train", "--data", str(yolo / "data.yaml"), "--model", "yolov8n.yaml", "--preset", "cpu-small",
           "--epochs", "3", "--imgsz", "320", "--batch", "16", "--device", "cpu", "--name", "tour", "--runs-dir",
           str(ws / "runs"), "workers=0", env=env)
        while True:
            runs = json.loads(sh(*OMR, "runs", "--runs-dir", str(ws / "runs"), "--json", env=env))
            state = next(r for r in runs if r["name"] == "tour")["state"]
            if state not in ("starting", "running"):
                break
            time.sleep(10)
        # What the Per-class failures page shows by default: the shipped model (cached, so the page opens it at once).
        sh(*OMR, "evaluate", "--model", str(SHIPPED), "--data", str(yolo / "data.yaml"), "--imgsz", "320",
           "--batch", "1", "--no-report", env=env)

    from playwright.sync_api import sync_playwright

    shots = REPO / "docs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    # tests.conftest points OMR_MODELS_DIR at an empty folder for the tests; the tour shows the shipped models.
    url, proc, _ = start_server({"OMR_WORKSPACE": str(ws), "YOLO_CONFIG_DIR": str(work / "yolo"),
                                 "OMR_MODELS_DIR": str(SHIPPED.parent)})
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = b.new_context(viewport={"width": 1500, "height": 1100}).new_page()
            page.set_default_timeout(120_000)
            for path, name in (("", "training"), ("compare", "compare"), ("audit", "audit"), ("review", "review"),
                               ("failures", "failures")):
                page.goto(f"{url}/{path}")
                wait_for_app(page)
                if name == "review":  # a held-out engraved page through the shipped model: detections + rebuilt stems
                    image = review_page(synth)
                    page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(0).set_input_files(str(image))
                    wait_for_app(page)
                    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
                if name == "audit":  # the person types the engraved dataset's files and presses Enter
                    box = page.get_by_role("textbox", name="Or type path(s)")
                    box.fill(f"{synth / 'deepscores_train.json'}; {synth / 'deepscores_test.json'}")
                    box.press("Enter")
                    wait_for_app(page)
                    page.get_by_text("Classes to exclude").first.wait_for()
                if name == "failures":  # the shipped model is the default; the person types the data.yaml
                    box = page.get_by_role("textbox", name="data.yaml")
                    box.fill(str(yolo / "data.yaml"))
                    box.press("Enter")
                    wait_for_app(page)
                    page.get_by_role("tab", name="Confusion matrix").wait_for()  # the cached evaluation opened
                time.sleep(4)
                # Streamlit scrolls inside its own container: a taller window shows the page, not full_page.
                page.set_viewport_size({"width": 1500, "height": 1700 if name in ("review", "failures") else 1100})
                time.sleep(2)
                page.screenshot(path=str(shots / f"{name}.png"))
                print("shot", name, flush=True)
            b.close()
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
