"""Damaged run files (results.csv, batches.jsonl, gpu.jsonl): the Training page and `omr runs` keep working and say
what they skipped.

Each run folder is written the way the worker writes it, then damaged the way real failures damage files: binary
garbage, a NUL-filled block (ext4 after a crash), a line cut in half mid-file (a copy resumed), a header only
(killed before the first epoch), bytes that are not UTF-8.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from omr_core.cli import main
from omr_core.training.runs import RunView
from tests.conftest import REPO
from tests.core.training.run_fixtures import write_run

APP = str(REPO / "dashboard" / "app.py")


def _insert_after_line(path: Path, n: int, junk: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([*lines[:n], junk, *lines[n:]]))


def _cut_line(path: Path, n: int) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[n] = lines[n][: len(lines[n]) // 2]
    path.write_bytes(b"\n".join(lines))


#: run name → (damage applied, what the page and the CLI must say about it)
CASES: dict[str, tuple[str, list[str]]] = {
    "garbage": ("binary garbage line in results.csv and batches.jsonl",
                ["results.csv: skipped 1 malformed line", "batches.jsonl: skipped 1 malformed line"]),
    "nul-block": ("NUL-filled blocks in results.csv and gpu.jsonl",
                  ["results.csv: skipped 1 malformed line", "gpu.jsonl: skipped 2 malformed lines"]),
    "half-line": ("a line cut in half mid-file in each log",
                  ["results.csv: kept 1 damaged row", "batches.jsonl: skipped 1 malformed line",
                   "gpu.jsonl: skipped 1 malformed line"]),
    "header-only": ("results.csv with its header only, empty batch log", []),
    "latin1": ("bytes that are not UTF-8 in results.csv and batches.jsonl",
               ["results.csv: skipped 1 malformed line", "batches.jsonl: skipped 3 malformed lines"]),
}


def _damage(d: Path, name: str) -> None:
    csv, batches, gpu = d / "results.csv", d / "batches.jsonl", d / "gpu.jsonl"
    if name == "garbage":
        _insert_after_line(csv, 3, b"\x89PNG\x1a\x00\xff\xfe\x13garbage")
        _insert_after_line(batches, 10, b"\x89PNG\x1a\x00\xff\xfe\x13garbage")
    elif name == "nul-block":
        _insert_after_line(csv, 2, b"\x00" * 4096)
        _insert_after_line(gpu, 5, b"\x00" * 512)
        _insert_after_line(gpu, 50, b"\x00" * 512)
    elif name == "half-line":
        _cut_line(csv, 4)
        _cut_line(batches, 7)
        _cut_line(gpu, 9)
    elif name == "header-only":
        csv.write_text(csv.read_text().splitlines()[0] + "\n")
        batches.write_bytes(b"")
    elif name == "latin1":
        _insert_after_line(csv, 1, "Époque,perte,é".encode("latin-1"))
        for k in (3, 6, 9):
            _insert_after_line(batches, k, b'{"t": "\xe9t\xe9"}')


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runs = tmp_path / "runs"
    for k, name in enumerate(CASES):
        d = write_run(runs / name, epochs_done=6, epochs=10, batches_per_epoch=20, gpu_seconds=120,
                      state="stopped", seed=k, now=1.8e9 + k)
        _damage(d, name)
    (tmp_path / "datasets").mkdir()
    monkeypatch.setenv("OMR_WORKSPACE", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", list(CASES))
def test_run_view_reports_what_it_skipped(workspace: Path, name: str) -> None:
    view = RunView(workspace / "runs" / name).poll()
    text = "\n".join(view.damage())
    for want in CASES[name][1]:
        assert want in text, (name, text)
    if not CASES[name][1]:
        assert text == ""
    s = view.summary()
    assert s.epoch == (0 if name == "header-only" else 6) and s.state == "stopped"
    df = view.results.frame()
    assert df["epoch"].is_monotonic_increasing and df["epoch"].notna().all()


def test_training_page_keeps_working_and_says_what_it_skipped(workspace: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/training.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value  # the runs table comes first
    notes = dict(zip(table["run"], table["note"]))
    for name, (_, wants) in CASES.items():
        for want in wants:
            if not want.startswith("gpu.jsonl"):  # the runs table does not read the GPU samples of every run
                assert want in notes[name], (name, notes[name])
    for name in ("garbage", "nul-block", "half-line", "latin1"):
        at.selectbox(key="monitor_run").set_value(name).run()
        assert not at.exception, [e.value for e in at.exception]
        warning = " ".join(w.value for w in at.warning)
        assert "Damaged run files" in warning, name
        for want in CASES[name][1]:
            assert want in warning, (name, want, warning)
        text = " ".join(t.value for t in at.text)
        assert "Last epoch 6" in text, text  # the metrics survived the damage
        assert len(at.get("plotly_chart")) >= 4, name  # losses, metrics, lr, batches, memory…
    at.selectbox(key="monitor_run").set_value("header-only").run()
    assert not at.exception and "No epoch finished yet." in " ".join(t.value for t in at.text)


def test_cli_runs_says_what_it_skipped(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    blocks = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith((" ", "name"))}
    assert set(blocks) == set(CASES)
    for name, (_, wants) in CASES.items():
        for want in wants:
            if not want.startswith("gpu.jsonl"):  # `omr runs` does not read the GPU samples
                assert f"└ {want}" in out, (name, want, out)
    assert main(["runs", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["garbage"]["damage"] and listed["header-only"]["damage"] == []
    assert listed["half-line"]["epoch"] == 6
