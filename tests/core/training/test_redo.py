"""Resume sets aside what it trains again: results.csv rows and batch records past the checkpoint, never lost."""

from __future__ import annotations

from pathlib import Path

import orjson

from omr_core.training.redo import set_aside_redone
from omr_core.training.runs import RunView
from tests.core.training.run_fixtures import batch_record, csv_epochs, read_jsonl, write_run


def _epochs(path: Path) -> list[int]:
    return [r["epoch"] for r in read_jsonl(path)]


def _run(tmp_path: Path) -> Path:
    # 3 epochs in results.csv; batch log: epochs 0-2 complete, epoch 3 (the 4th) at batch 5/10 when killed.
    return write_run(tmp_path / "r", epochs_done=3, epochs=6, batches_per_epoch=10, batch_epochs=4, state="failed")


def test_killed_mid_epoch_its_batches_go_aside(tmp_path: Path) -> None:
    run = _run(tmp_path)
    csv_before = (run / "results.csv").read_bytes()
    redo = set_aside_redone(run, saved_epochs=3)
    assert (redo.epoch, redo.results_rows, redo.batches, redo.last_batch) == (4, 0, 5, (5, 10))
    assert (run / "results.csv").read_bytes() == csv_before and not (run / "results.redone.csv").exists()
    assert _epochs(run / "batches.jsonl") == [0] * 10 + [1] * 10 + [2] * 10
    assert _epochs(run / "batches.redone.jsonl") == [3] * 5
    assert redo.message().startswith("Epoch 4 is trained again from its first batch: the last session ended at "
                                     "batch 5/10 of it.")


def test_killed_between_results_csv_and_last_pt(tmp_path: Path) -> None:
    # The kill came after results.csv got epoch 3's row, before last.pt held epoch 3: the checkpoint has 2.
    run = _run(tmp_path)
    header = (run / "results.csv").read_text().splitlines()[0]
    redo = set_aside_redone(run, saved_epochs=2)
    assert (redo.epoch, redo.results_rows, redo.batches) == (3, 1, 15)
    assert csv_epochs(run / "results.csv") == [1, 2]
    assert (run / "results.redone.csv").read_text().splitlines()[0] == header
    assert csv_epochs(run / "results.redone.csv") == [3]
    assert _epochs(run / "batches.jsonl") == [0] * 10 + [1] * 10
    assert _epochs(run / "batches.redone.jsonl") == [2] * 10 + [3] * 5
    msg = redo.message()
    assert "Epoch 3 is trained again" in msg and "before saving the checkpoint, which holds 2 epochs" in msg
    assert "1 results.csv row → results.redone.csv" in msg and "15 batch records → batches.redone.jsonl" in msg
    # A second resume from the same checkpoint has nothing left to set aside.
    assert not set_aside_redone(run, saved_epochs=2).anything
    assert csv_epochs(run / "results.redone.csv") == [3] and len(_epochs(run / "batches.redone.jsonl")) == 15


def test_nothing_to_redo_leaves_the_files_alone(tmp_path: Path) -> None:
    run = _run(tmp_path)
    before = {n: (run / n).read_bytes() for n in ("results.csv", "batches.jsonl")}
    redo = set_aside_redone(run, saved_epochs=4)
    assert not redo.anything
    assert {n: (run / n).read_bytes() for n in before} == before
    assert not (run / "batches.redone.jsonl").exists() and not (run / "results.redone.csv").exists()


def test_long_log_damaged_tail_and_a_live_reader(tmp_path: Path) -> None:
    # 3,000 records (far more than one read-back step) and a line cut by the kill at the end.
    run = write_run(tmp_path / "r", epochs_done=2, epochs=6, batches_per_epoch=1000, batch_epochs=3, state="failed")
    with open(run / "batches.jsonl", "ab") as f:
        f.write(orjson.dumps(batch_record(2, 501, 1000, 0.0, 0.1))[:40])
    with open(run / "results.csv", "a") as f:
        f.write("3,180,1.2")  # a row cut mid-write
    reader = RunView(run)
    view = reader.poll()
    assert len(view.batches) == 2500
    redo = set_aside_redone(run, saved_epochs=2)
    assert (redo.results_rows, redo.batches, redo.last_batch) == (1, 500, (500, 1000))
    lines = (run / "batches.redone.jsonl").read_bytes().splitlines()
    assert len(lines) == 501 and lines[-1].startswith(b'{"t":')  # the damaged line went aside too, ended
    assert _epochs(run / "batches.jsonl") == [0] * 1000 + [1] * 1000
    assert csv_epochs(run / "results.csv") == [1, 2] and (run / "results.csv").read_text().endswith("\n")
    assert (run / "results.redone.csv").read_text().splitlines()[-1] == "3,180,1.2"
    # The dashboard's reader notices the shorter log and shows each epoch once.
    view = reader.poll()
    assert len(view.batches) == 2000 and set(view.batches.col("epoch").tolist()) == {0.0, 1.0}
