"""AppTest: the sweep form on the Training page starts a controller; Compare runs groups a sweep's trials, shows
what mattered and the best against the base, and queues the best configuration."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
from streamlit.testing.v1 import AppTest

from omr_core.training import queue, sweep
from omr_core.training.runs import append_jsonl

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")



def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page)
    return at.run(timeout=60)


def test_the_sweep_form_starts_a_sweep(busy_cpu_workspace: Path) -> None:
    at = _open("app_pages/training.py")
    at.toggle(key="sw_on").set_value(True).run(timeout=60)
    at.text_input(key="sw_name").input("lrs")
    at.text_area(key="sw_space").input("lr0=0.01,0.02")
    at.selectbox(key="sw_sampler").set_value("grid")
    at.text_input(key="sw_fixed").input("imgsz=64 device=cpu").run(timeout=60)
    at.button(key="sw_start").click().run(timeout=60)
    assert not at.error, [e.value for e in at.error]
    assert any("Sweep **lrs** started" in s.value for s in at.success)
    assert sweep.load(busy_cpu_workspace / "runs", "lrs").space == (sweep.Param("lr0", choices=(0.01, 0.02)),)


def test_the_sweep_form_takes_the_classes_of_the_objective(busy_cpu_workspace: Path) -> None:
    at = _open("app_pages/training.py")
    at.toggle(key="sw_on").set_value(True).run(timeout=60)
    at.text_input(key="sw_name").input("clefs")
    at.text_area(key="sw_space").input("lr0=0.01,0.02")
    at.selectbox(key="sw_objective").set_value("classes").run(timeout=60)
    at.text_input(key="sw_classes").input("box, elipse").run(timeout=60)
    at.button(key="sw_start").click().run(timeout=60)
    assert any("elipse not among the classes" in e.value and "closest ellipse" in e.value for e in at.error)
    at.text_input(key="sw_classes").input("box, ellipse").run(timeout=60)
    at.button(key="sw_start").click().run(timeout=60)
    assert not at.error, [e.value for e in at.error]
    spec = sweep.load(busy_cpu_workspace / "runs", "clefs")
    assert spec.objective == "classes" and spec.classes == ("box", "ellipse")


def test_compare_groups_a_sweep_and_launches_the_best(busy_cpu_workspace: Path) -> None:
    runs = busy_cpu_workspace / "runs"
    spec = sweep.SweepSpec("s", "yolov8n.yaml", str(busy_cpu_workspace / "datasets" / "tiny" / "data.yaml"),
                           (sweep.parse_param("lr0=0.001:0.1:log"), sweep.parse_param("batch=4,8")),
                           args={"device": "cpu", "lr0": 0.01}, trials=4, epochs=2)
    sweep.create(spec, runs)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{runs / 'sweeps' / 's' / 'study.db'}")
    dists = {"lr0": optuna.distributions.FloatDistribution(0.001, 0.1, log=True),
             "batch": optuna.distributions.CategoricalDistribution([4, 8])}
    for number, (lr, b, v) in enumerate([(0.002, 4, 0.20), (0.05, 8, 0.45), (0.01, 4, 0.30), (0.08, 8, 0.50)]):
        # What a controller records for a completed trial: the study's result and a trials.jsonl line.
        study.add_trial(optuna.trial.create_trial(params={"lr0": lr, "batch": b}, distributions=dists, value=v))
        append_jsonl(runs / "sweeps" / "s" / "trials.jsonl",
                     {"number": number, "run": f"s-t{number}", "params": {"lr0": lr, "batch": b},
                      "state": "complete", "value": v, "epochs": 2, "reason": ""})
    at = _open("app_pages/compare.py")
    assert not at.exception, [e.value for e in at.exception]
    page = " ".join(m.value for m in at.markdown)
    assert "What mattered" in page and "Best trial t3" in page and "lr0: 0.01 → **0.08**" in page
    at.button(key="cmp_sweep_best").click().run(timeout=60)
    assert any("Queued **s-best**" in s.value for s in at.success)
    [e] = [e for e in queue.entries(runs) if e.name == "s-best"]
    assert e.spec["args"]["batch"] == 8 and e.spec["args"]["lr0"] == 0.08 and e.spec["args"]["epochs"] == 100


def test_compare_opens_an_ultralytics_tuner_folder_as_a_sweep(busy_cpu_workspace: Path) -> None:
    runs = busy_cpu_workspace / "runs"
    shutil.copytree(REPO / "tests" / "data" / "ultralytics_tune" / "v8_detect_wing", runs / "detect" / "tune")
    at = _open("app_pages/compare.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="cmp_sweep").options == ["detect/tune (Ultralytics tuner)"]
    assert "Ultralytics' tuner (model.tune), 10 iterations" in " ".join(c.value for c in at.caption)
    page = " ".join(m.value for m in at.markdown)
    assert "What mattered" in page and "Best trial t3** (fitness 0.9066)" in page and "lr0: 0.01 → **0.01043**" in page
    table = at.dataframe[0].value
    assert len(table) == 10 and set(table["state"]) == {"complete"}
    assert not at.button  # nothing to launch: the tuner's model and data are not known here
