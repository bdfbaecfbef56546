"""Two browser sessions drawing the live monitor of one run from the shared view while the run writes."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import plotly.io as pio

from dashboard.ui.training import last_values_text, live_figures
from omr_core.training.runs import RunSnapshot, RunView
from tests.core.training.run_fixtures import batch_record, gpu_record, write_run

NB = 50


def _append(run: Path, start: int, count: int) -> None:
    recs = [batch_record(k // NB, k % NB + 1, NB, 1e9 + k, 0.1) for k in range(start, start + count)]
    with open(run / "batches.jsonl", "ab") as f:
        f.write(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    with open(run / "gpu.jsonl", "ab") as f:
        f.write(b"".join(orjson.dumps(gpu_record(1e9 + k)) + b"\n" for k in range(start, start + count, 10)))


def _drawn(s: RunSnapshot) -> tuple[str, str]:
    """What a session draws: the charts (as the browser receives them) and the last-values text."""
    figs = live_figures(s, smoothing=0.6)
    for fig in figs.values():
        for tr in fig.data:
            if tr.x is not None and tr.y is not None:
                assert len(tr.x) == len(tr.y), f"{tr.name}: x and y from different moments"
    last = s.batches.last_row()
    _, batch_line = last_values_text(s)
    assert f"{int(last['i'])}/{NB}" in batch_line, (batch_line, last)
    return "".join(pio.to_json(f, validate=False) for f in figs.values()), batch_line


def test_two_sessions_draw_consistent_charts_while_the_run_writes(tmp_path: Path) -> None:
    run = write_run(tmp_path / "runs" / "live", epochs_done=2, epochs=10, state="running")
    (run / "batches.jsonl").unlink()
    (run / "gpu.jsonl").unlink(missing_ok=True)
    _append(run, 0, NB)
    view = RunView(run, max_batches=300)  # one per run folder, as the dashboard's cache shares it
    errors: list[BaseException] = []
    done = threading.Event()
    drew = threading.Semaphore(0)  # the run writes a chunk after each drawing: writes and draws interleave

    def worker() -> None:
        for step in range(1, 40):
            drew.acquire(timeout=60)
            _append(run, step * 25, 25)
        done.set()

    def session() -> None:
        try:
            drawn: list[tuple[RunSnapshot, tuple[str, str]]] = []
            while not done.is_set() or len(drawn) < 10:
                s = view.poll()
                drawn.append((s, _drawn(s)))
                drew.release()
                old, picture = drawn[max(0, len(drawn) - 4)]  # redrawn later (a rerun of a fragment)
                assert _drawn(old) == picture, "a snapshot drew differently after other sessions polled"
            for old, picture in drawn:  # and once more after the run wrote everything
                assert _drawn(old) == picture, "a snapshot drew differently after the run wrote more"
        except BaseException as exc:
            errors.append(exc)
            drew.release(40)  # do not leave the writer waiting

    threads = [threading.Thread(target=session) for _ in range(2)] + [threading.Thread(target=worker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads) and not errors, errors[:1]
