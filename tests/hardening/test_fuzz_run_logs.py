"""Fuzz the JSON-lines logs of a run and everything the monitor builds from a damaged run folder.

The batch log, the GPU/CPU samples and the events are appended by a process that can die mid-write (or a disk
that fills up); the Training page must still draw: runs-table row, alerts, last-values line and every chart.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import psutil
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dashboard.ui.training import last_values_text, live_figures, runs_table
from omr_core.atomic import write_json
from omr_core.training.alerts import evaluate
from omr_core.training.runs import RunView
from omr_core.training.tail import JsonlTail
from tests.core.training.run_fixtures import HEADER, batch_record, gpu_record, results_row
from tests.hardening.fuzzlib import FUZZ_EXAMPLES, HARDENING, count_case, ran, scratch_dir

_TMP = scratch_dir("omr-fuzz-logs-")

_KEYS = sorted({*batch_record(0, 1, 10, 0.0, 1.0), *gpu_record(0.0, 2), "kind", "loss", "message", "alert", "traceback"})
_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e300, -1e300, 1e-300, 2**53 + 1.0, 9.9e15, 1.7e9]),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
)
_VALUE = st.one_of(
    _NUMBER,
    _NUMBER,
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["box_loss", "cls_loss", "x"]), _NUMBER, max_size=3),
)
_RECORD = st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=6)), _VALUE, max_size=10)


def _dump(rec: dict[str, Any]) -> bytes:
    return orjson.dumps(rec)  # NaN and infinities become null, as the worker writes them


_GOOD = st.builds(
    lambda e, i, t: orjson.dumps(batch_record(e, i, 50, 1.7e9 + t, 0.5)), st.integers(0, 5), st.integers(1, 50), st.floats(0, 1e4)
)
_LINE = st.one_of(
    _GOOD,
    _RECORD.map(_dump),
    _RECORD.map(_dump).map(lambda b: b[: max(1, len(b) // 2)]),  # a line cut by a crash
    st.binary(max_size=30),
    st.integers(1, 300).map(lambda n: b"\x00" * n),  # NUL-filled block of a file that was being written
    st.sampled_from([b"[1, 2]", b"null", b'"text"', b"{}", b"\xff\xfe{}", b'{"a": 1}, {"b": 2}', b"{"]),
)
_LINES = st.lists(_LINE, max_size=25)


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def test_jsonl_counts_every_line() -> None:
    """Each complete line is either a record or a counted bad line; polling in pieces reads the same."""

    @HARDENING
    @given(_LINES, st.lists(st.integers(0, 4000), max_size=5))
    def prop(lines: list[bytes], cuts: list[int]) -> None:
        data = _join(lines)
        p = _TMP / "x.jsonl"
        p.write_bytes(data)
        once = JsonlTail(p)
        recs, restarted = once.poll()
        assert not restarted and all(isinstance(r, dict) for r in recs)
        nonblank = sum(1 for line in data.split(b"\n")[:-1] if line.strip())
        assert len(recs) + once.bad_lines == nonblank, (len(recs), once.bad_lines, nonblank)

        p.write_bytes(b"")
        live = JsonlTail(p)
        got: list[dict[str, Any]] = []
        done = 0
        for b in sorted({min(c, len(data)) for c in cuts} | {len(data)}):
            with p.open("ab") as f:
                f.write(data[done:b])
            done = b
            got += live.poll()[0]
        assert got == recs and live.bad_lines == once.bad_lines
        count_case("jsonl: lines polled whole and in pieces", "result")

    assert ran("jsonl: lines polled whole and in pieces", prop) >= FUZZ_EXAMPLES


_CSV_LINES = st.lists(
    st.one_of(
        st.integers(1, 30).map(lambda e: ",".join(f"{v:.6g}" for v in results_row(e, 60.0)).encode()),
        st.just(",".join(HEADER).encode()),
        st.sampled_from([b"EPOCH,epoch,x", b"epoch", b"1,2,3", b"\x00" * 40, b"nan,1", b"1e308,1e308"]),
        st.binary(max_size=30),
    ),
    max_size=12,
)
_STATE = st.sampled_from(["running", "finished", "failed", "vanished", "external"])


def _write_run(d: Path, state: str, csv: list[bytes], batches: list[bytes], gpu: list[bytes], events: list[bytes]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    now = time.time()
    me = psutil.Process()
    if state != "external":
        alive = state == "running"
        write_json(d / "run.json", {
            "state": "running" if state == "vanished" else state, "pid": me.pid if alive or state == "vanished" else None,
            "pid_create_time": me.create_time() - (0 if alive else 1000), "started": now - 600, "phase": "train",
            "phase_since": now - 300, "args": {"epochs": 10, "model": "yolov8n.yaml"}, "epochs": 10,
            "resume_from": "weights/last.pt",
        })
    (d / "results.csv").write_bytes(_join(csv))
    (d / "batches.jsonl").write_bytes(_join(batches))
    (d / "gpu.jsonl").write_bytes(_join(gpu))
    (d / "events.jsonl").write_bytes(_join(events))


def test_monitor_draws_any_damaged_run() -> None:
    """What the Training page computes for a run folder: summary, alerts, text lines, table, charts."""

    @settings(HARDENING, max_examples=150)  # plotly figures are the slow part; the readers get 300 each
    @given(_STATE, _CSV_LINES, _LINES, _LINES, st.lists(_LINE, max_size=5), st.floats(0, 0.99))
    @example("running", [], [b'{"t":1e20}'], [], [], 0.0)  # datetime.fromtimestamp overflow in the batch line
    @example("running", [], [b'{"epoch":0,"loss/box_loss":1}'], [], [], 0.0)  # int(NaN) in the batch chart title
    @example("running", [], [], [b'{"":[]}'], [], 0.0)  # a list value broke ColumnStore.extend (RunView.poll)
    def prop(state: str, csv: list[bytes], batches: list[bytes], gpu: list[bytes], events: list[bytes],
             smoothing: float) -> None:
        d = _TMP / "runs" / "r"
        for f in d.glob("*"):
            f.unlink()
        _write_run(d, state, csv, batches, gpu, events)
        view = RunView(d).poll()
        now = time.time()
        s = view.summary(now)
        assert s.state in ("running", "finished", "failed", "stopped", "external")
        evaluate(view, now)
        ep_line, batch_line = last_values_text(view)
        assert ep_line and batch_line
        runs_table([s])
        figs = live_figures(view, smoothing)
        for fig in figs.values():
            fig.to_dict()  # what st.plotly_chart serialises
        damage = "\n".join(s.damage)
        for name in ("batches.jsonl", "gpu.jsonl", "events.jsonl"):
            bad = JsonlTail(d / name)
            bad.poll()
            assert (name in damage) == (bad.bad_lines > 0), (name, bad.bad_lines, damage)
        count_case("run folder: monitor of a damaged run", "result")

    assert ran("run folder: monitor of a damaged run", prop) >= 150
