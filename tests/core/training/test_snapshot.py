"""`RunView.poll()` returns a snapshot that never changes: sessions draw from it while others poll and old rows go."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import orjson

from omr_core.atomic import write_json
from omr_core.training.runs import RunSnapshot, RunView


def _append(run: Path, start: int, count: int) -> None:
    """Batch records whose columns hold an invariant a reader can check: i consecutive, twice == 2 * i."""
    lines = b"".join(orjson.dumps({"t": 1e9 + k, "epoch": 0, "i": k, "nb": 10**6, "twice": 2 * k}) + b"\n"
                     for k in range(start, start + count))
    with open(run / "batches.jsonl", "ab") as f:
        f.write(lines)


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "run.json", {"state": "running", "args": {"epochs": 3}})
    return run


def _consistent(s: RunSnapshot, most: int) -> np.ndarray:
    i, twice = s.batches.col("i"), s.batches.col("twice")
    assert 0 < len(i) <= most and len(i) == len(twice) == len(s.batches)
    assert (np.diff(i) == 1).all(), "rows missing, repeated or shifted inside one snapshot"
    assert (twice == 2 * i).all(), "columns of one snapshot from different moments"
    assert s.batches.last_row()["i"] == i[-1] and s.summary(1e9).batch == int(i[-1])
    return i.copy()


def test_a_snapshot_stays_as_it_was_read_while_the_view_moves_on(tmp_path: Path) -> None:
    run = _run(tmp_path)
    view = RunView(run, max_batches=300)
    _append(run, 0, 250)
    first = view.poll()
    seen = _consistent(first, 300)
    summary = first.summary(1e9)
    for step in range(1, 8):  # past the cap (old rows dropped) and past the buffer (columns copied elsewhere)
        _append(run, 250 * step, 250)
        later = view.poll()
        _consistent(later, 300)
        assert later.batches.col("i")[-1] == 250 * step + 249
    (run / "batches.jsonl").write_bytes(b"")  # a fresh run in the same folder: the view starts over
    _append(run, 0, 5)
    assert len(view.poll().batches) == 5
    assert np.array_equal(first.batches.col("i"), seen) and first.summary(1e9) == summary
    assert not first.batches.col("i").flags.writeable


def test_sessions_polling_and_drawing_at_once_each_see_one_moment(tmp_path: Path) -> None:
    run = _run(tmp_path)
    view = RunView(run, max_batches=400)  # shared, as the dashboard's cache shares it between sessions
    _append(run, 0, 100)
    errors: list[BaseException] = []
    written = threading.Event()

    def writer() -> None:
        for step in range(1, 150):
            _append(run, 100 * step, 100)
        written.set()

    def session() -> None:
        try:
            held: list[tuple[RunSnapshot, np.ndarray]] = []
            polls = 0
            while not written.is_set() or polls < 50:
                s = view.poll()
                held.append((s, _consistent(s, 400)))
                polls += 1
                for old, values in held[-5:]:  # drawn again later, after other sessions polled
                    assert np.array_equal(old.batches.col("i"), values), "a snapshot changed under a reader"
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=session) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and not errors, errors[:1]
    final = view.poll()
    assert final.batches.col("i")[-1] == 14_999 and len(final.batches) == 400
