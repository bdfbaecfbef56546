"""Incremental readers: results.csv of every Ultralytics layout, JSONL logs, text log tails, downsampling."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from omr_core.training.tail import (
    ColumnStore,
    JsonlTail,
    ResultsCsvTail,
    downsample,
    ema_smooth,
    read_results_csv,
    tail_text,
)

# 8.0.x: every cell right-aligned in a 23/20-wide field, epochs counted from 0.
PADDED_8_0 = (
    "                  epoch,      train/box_loss,      train/cls_loss,      train/dfl_loss,"
    "   metrics/precision(B),      metrics/recall(B),       metrics/mAP50(B),    metrics/mAP50-95(B),"
    "        val/box_loss,        val/cls_loss,        val/dfl_loss,              lr/pg0,              lr/pg1,"
    "              lr/pg2\n"
    "                      0,              1.2345,              2.3456,              1.1111,"
    "                0.12345,                0.23456,                0.34567,                0.12345,"
    "              1.3456,              2.4567,              1.2222,            0.070291,           0.0033042,"
    "           0.0033042\n"
    "                      1,              1.1345,              2.1456,              1.0111,"
    "                0.22345,                0.33456,                0.44567,                0.22345,"
    "              1.2456,              2.3567,              1.1222,            0.040291,           0.0063042,"
    "           0.0063042\n"
)
# 8.1 - 8.3.8: compact, no `time` column.
NO_TIME = (
    "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),"
    "metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2\n"
    "1,1.5,2.5,1.2,0.1,0.2,0.3,0.15,1.6,2.6,1.3,0.07,0.003,0.003\n"
    "2,1.4,2.4,1.1,0.2,0.3,0.4,0.25,1.5,2.5,1.2,0.04,0.006,0.006\n"
)
# 8.3.9+: `time` after epoch. RT-DETR: giou/cls/l1 losses. Five param groups.
RTDETR_TIME = (
    "epoch,time,train/giou_loss,train/cls_loss,train/l1_loss,metrics/precision(B),metrics/recall(B),"
    "metrics/mAP50(B),metrics/mAP50-95(B),val/giou_loss,val/cls_loss,val/l1_loss,lr/pg0,lr/pg1,lr/pg2,lr/pg3,lr/pg4\n"
    "1,61.2,0.9,1.1,0.5,0.3,0.4,0.5,0.31,0.8,1.0,0.4,1e-05,1e-05,1e-05,1e-05,1e-05\n"
    "2,121.9,0.8,1.0,0.4,0.4,0.5,0.6,0.41,0.7,0.9,0.3,2e-05,2e-05,2e-05,2e-05,2e-05\n"
)


def _tail(path: Path) -> ResultsCsvTail:
    t = ResultsCsvTail(path)
    t.poll()
    return t


@pytest.mark.parametrize(
    ("text", "first_epoch", "loss", "maps"),
    [
        (PADDED_8_0, 0, "train/box_loss", [0.12345, 0.22345]),
        (NO_TIME, 1, "train/box_loss", [0.15, 0.25]),
        (RTDETR_TIME, 1, "train/l1_loss", [0.31, 0.41]),
    ],
)
def test_results_layouts(tmp_path: Path, text: str, first_epoch: int, loss: str, maps: list[float]) -> None:
    p = tmp_path / "results.csv"
    p.write_text(text)
    df = read_results_csv(p)
    assert list(df["epoch"]) == [first_epoch, first_epoch + 1]
    assert all(c == c.strip() for c in df.columns)
    assert loss in df.columns and df[loss].notna().all()
    assert list(df["metrics/mAP50-95(B)"]) == pytest.approx(maps)
    assert ("time" in df.columns) == ("time" in text.splitlines()[0])


def test_any_number_of_lr_groups(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    p.write_text(RTDETR_TIME)
    cols = list(read_results_csv(p).columns)
    assert [c for c in cols if c.startswith("lr/")] == [f"lr/pg{i}" for i in range(5)]


def test_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    header, row1, row2 = NO_TIME.splitlines(keepends=True)
    p.write_text(header + row1 + row2[:9])  # Ultralytics is writing row 2
    t = _tail(p)
    assert len(t) == 1
    with p.open("a") as f:
        f.write(row2[9:])
    assert t.poll() is True
    assert t.column("epoch").tolist() == [1, 2]
    assert t.column("metrics/mAP50-95(B)").tolist() == [0.15, 0.25]
    assert t.poll() is False  # nothing new


def test_incremental_reads_only_the_new_bytes(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    header, row1, row2 = NO_TIME.splitlines(keepends=True)
    p.write_text(header + row1)
    t = _tail(p)
    before = t._file.offset
    with p.open("a") as f:
        f.write(row2)
    t.poll()
    assert t._file.offset == before + len(row2) and len(t) == 2


def test_truncated_and_restarted_file_is_reread(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    p.write_text(RTDETR_TIME)
    t = _tail(p)
    assert len(t) == 2
    # A fresh run in the same folder: Ultralytics deletes results.csv and writes a new one (other layout).
    p.unlink()
    p.write_text(NO_TIME.splitlines(keepends=True)[0] + "1,9,9,9,0,0,0,0.9,9,9,9,0.1,0.1,0.1\n")
    assert t.poll() is True
    assert "time" not in t.columns and t.column("metrics/mAP50-95(B)").tolist() == [0.9]


def test_replaced_by_a_longer_file_with_same_header(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    header = NO_TIME.splitlines(keepends=True)[0]
    p.write_text(header + "1,1.5,2.5,1.2,0.1,0.2,0.3,0.15,1.6,2.6,1.3,0.07,0.003,0.003\n")
    t = _tail(p)
    # Rewritten in place (same inode) and already longer than what we read: the rows we read changed.
    with p.open("r+") as f:
        f.write(header + "1,7.5,2.5,1.2,0.1,0.2,0.3,0.77,1.6,2.6,1.3,0.07,0.003,0.003\n"
                + "2,7.4,2.4,1.1,0.2,0.3,0.4,0.88,1.5,2.5,1.2,0.04,0.006,0.006\n")
    t.poll()
    assert t.column("metrics/mAP50-95(B)").tolist() == [0.77, 0.88]


def test_header_repeated_mid_file_starts_over(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    header, row1, row2 = NO_TIME.splitlines(keepends=True)
    p.write_text(header + row1 + row2 + header + row1)
    assert read_results_csv(p)["epoch"].tolist() == [1]


def test_duplicate_epoch_keeps_last_and_nan_cells(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    header, row1, row2 = NO_TIME.splitlines(keepends=True)
    # Resume after a kill between save_metrics and save_model: epoch 2 is written twice.
    p.write_text(header + row1 + row2 + "2,nan,inf,1.0,0.2,0.3,0.4,0.35,1.5,2.5,1.2,0.04,0.006,0.006\n")
    df = read_results_csv(p)
    assert df["epoch"].tolist() == [1, 2]
    assert df["metrics/mAP50-95(B)"].tolist() == [0.15, 0.35]
    assert math.isnan(df["train/box_loss"].iloc[1]) and math.isinf(df["train/cls_loss"].iloc[1])


def test_missing_file_and_short_rows(tmp_path: Path) -> None:
    p = tmp_path / "results.csv"
    t = ResultsCsvTail(p)
    assert t.poll() is False and t.frame().empty
    p.write_text("epoch,a,b\n1,0.5\n")
    t.poll()
    assert t.rows()[0]["a"] == 0.5 and math.isnan(t.rows()[0]["b"])


def test_jsonl_partial_bad_and_truncated(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    p.write_text('{"i": 1}\nnot json\n[1, 2]\n{"i": 2')
    t = JsonlTail(p)
    recs, restarted = t.poll()
    assert [r["i"] for r in recs] == [1] and not restarted and t.bad_lines == 2
    with p.open("a") as f:
        f.write("}\n")
    assert [r["i"] for r in t.poll()[0]] == [2]
    p.write_text('{"i": 9}\n')  # truncated and rewritten
    recs, restarted = t.poll()
    assert restarted and [r["i"] for r in recs] == [9]


def test_jsonl_start_bytes_reads_only_the_tail(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    p.write_text("".join(f'{{"i": {i}}}\n' for i in range(10_000)))
    t = JsonlTail(p, start_bytes=1000)
    recs, _ = t.poll()
    assert t.skipped_head and 50 < len(recs) < 120 and recs[-1]["i"] == 9999
    assert all(b["i"] == a["i"] + 1 for a, b in zip(recs, recs[1:]))


def test_column_store_new_keys_and_cap() -> None:
    cs = ColumnStore(max_rows=3)
    cs.extend([{"a": 1, "kind": "cpu"}, {"a": 2}])
    cs.extend([{"a": 3, "b": 30}, {"a": 4, "b": None}])
    snap = cs.snapshot()
    assert snap.col("a").tolist() == [2, 3, 4] and len(snap) == 3 and "b" in snap
    assert np.isnan(snap.col("b")[0]) and snap.col("b")[1] == 30 and np.isnan(snap.col("b")[2])
    assert snap.last("b") == 30 and snap.strings["kind"] == "cpu"
    assert np.isnan(snap.col("missing")).all()


def test_tail_text_keeps_final_progress_state(tmp_path: Path) -> None:
    p = tmp_path / "log.txt"
    p.write_bytes(b"start\n\x1b[K  1/2  0G  0.5: 10%\r  1/2  0G  0.4: 100%\nStarting training\n")
    assert tail_text(p) == ["start", "  1/2  0G  0.4: 100%", "Starting training"]
    big = tmp_path / "big.txt"
    big.write_text("".join(f"line {i}\n" for i in range(100_000)))
    lines = tail_text(big, max_bytes=4096, max_lines=5)
    assert lines == [f"line {i}" for i in range(99_995, 100_000)]
    assert tail_text(tmp_path / "missing.txt") == []


def test_downsample_keeps_spikes_and_limits_points() -> None:
    x = np.arange(86_400, dtype=float)
    y = np.sin(x / 1000)
    y[12_345] = 50.0
    y[40_000] = -50.0
    y[50_000:50_010] = np.nan
    xs, ys = downsample(x, y, 2000)
    assert len(xs) <= 2000 and ys.max() == 50.0 and ys.min() == -50.0
    assert np.all(np.diff(xs) >= 0)
    short = np.arange(10.0)
    assert downsample(short, short, 2000)[0] is short


def test_ema_smooth_debiased() -> None:
    y = np.array([1.0, 1.0, np.nan, 1.0])
    out = ema_smooth(y, 0.9)
    assert out[0] == pytest.approx(1.0) and math.isnan(out[2]) and out[3] == pytest.approx(1.0)
    assert ema_smooth(y, 0.0) is y


def test_reader_survives_concurrent_appends(tmp_path: Path) -> None:
    """A writer appending rows byte by byte never makes the reader see a half row."""
    p = tmp_path / "results.csv"
    header = "epoch,time,m\n"
    p.write_text(header)
    t = ResultsCsvTail(p)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        for e in range(1, 30):
            for ch in f"{e},{e * 1.5},{e / 100}\n":
                os.write(fd, ch.encode())
                t.poll()
    finally:
        os.close(fd)
    assert t.column("epoch").tolist() == list(range(1, 30))
    assert t.column("m").tolist() == pytest.approx([e / 100 for e in range(1, 30)])
