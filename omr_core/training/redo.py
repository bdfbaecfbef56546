"""What a resumed session trains again: results.csv rows and batch records past the checkpoint, set aside."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from omr_core.atomic import write_bytes
from omr_core.training.runs import BATCHES, BATCHES_REDONE, RESULTS, RESULTS_REDONE

#: Bytes read per step when looking for the start of the redone records at the end of the batch log.
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Redo:
    """What a resume sets aside because the checkpoint does not hold it.

    Attributes:
        saved_epochs: Epochs the checkpoint holds; training continues with epoch ``saved_epochs + 1`` (1-based).
        results_rows: results.csv rows of later epochs (written before a kill that came before the checkpoint).
        batches: Batch records of later epochs (the epoch in progress when the last session ended).
        last_batch: ``(i, nb)`` of the last record set aside, None when none.
    """

    saved_epochs: int
    results_rows: int = 0
    batches: int = 0
    last_batch: tuple[int, int] | None = None

    @property
    def epoch(self) -> int:
        """The epoch (1-based) that is trained again."""
        return self.saved_epochs + 1

    @property
    def anything(self) -> bool:
        return bool(self.results_rows or self.batches)

    def message(self) -> str:
        """The event text: which epoch is trained again, why, and where its old records went."""
        moved = []
        if self.results_rows:
            moved.append(f"{self.results_rows} results.csv row{'s' if self.results_rows != 1 else ''} → "
                         f"{RESULTS_REDONE}")
        if self.batches:
            moved.append(f"{self.batches} batch record{'s' if self.batches != 1 else ''} → {BATCHES_REDONE}")
        if self.results_rows:
            why = (f"the last session ended after writing epoch {self.epoch}'s results.csv row but before saving "
                   f"the checkpoint, which holds {self.saved_epochs} epochs")
        elif self.last_batch:
            why = f"the last session ended at batch {self.last_batch[0]}/{self.last_batch[1]} of it"
        else:
            why = f"the checkpoint holds {self.saved_epochs} epochs"
        return (f"Epoch {self.epoch} is trained again from its first batch: {why}. Its old records were set aside "
                f"so each epoch appears once ({'; '.join(moved)}).")


def set_aside_redone(run_dir: str | os.PathLike[str], saved_epochs: int) -> Redo:
    """Move results.csv rows and batch records of epochs after ``saved_epochs`` to the ``*.redone`` files.

    Call before a resumed session writes anything: Ultralytics appends to results.csv and resumes at
    ``saved_epochs + 1``, so without this a kill between its results.csv write and its last.pt save leaves that
    epoch twice in results.csv, and the batches of an interrupted epoch would appear twice in the batch log.
    Nothing is deleted: the set-aside records are appended to ``results.redone.csv`` / ``batches.redone.jsonl``
    (copied before the originals are cut, so a crash in between duplicates there rather than loses).

    Args:
        run_dir: The run folder.
        saved_epochs: Epochs the checkpoint being resumed holds (Ultralytics' ``ckpt["epoch"] + 1``).

    Returns:
        What was set aside.
    """
    run_dir = Path(run_dir)
    rows = _set_aside_results(run_dir, saved_epochs)
    n, last = _set_aside_batches(run_dir, saved_epochs)
    return Redo(saved_epochs=saved_epochs, results_rows=rows, batches=n, last_batch=last)


def _epoch_cell(line: bytes) -> float | None:
    try:
        return float(line.split(b",", 1)[0])
    except ValueError:
        return None


def _set_aside_results(run_dir: Path, saved_epochs: int) -> int:
    path = run_dir / RESULTS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.splitlines(keepends=True)
    keep: list[bytes] = []
    moved: list[bytes] = []
    header = b""
    for line in lines:
        epoch = _epoch_cell(line)
        if epoch is None and line.strip().lower().startswith(b"epoch"):
            header = line
        if not line.endswith(b"\n"):  # cut by a kill mid-write: Ultralytics' next row would be glued to it
            moved.append(line + b"\n")
        elif epoch is not None and epoch > saved_epochs:
            moved.append(line)
        else:
            keep.append(line)
    if not moved:
        return 0
    redone = run_dir / RESULTS_REDONE
    with open(redone, "ab") as f:
        if f.tell() == 0 and header:
            f.write(header)
        f.writelines(moved)
        f.flush()
        os.fsync(f.fileno())
    write_bytes(path, b"".join(keep))
    return sum(1 for line in moved if _epoch_cell(line) is not None)


def _set_aside_batches(run_dir: Path, saved_epochs: int) -> tuple[int, tuple[int, int] | None]:
    """Cut the batch log's tail of records with ``epoch >= saved_epochs`` (0-based) into the redone file.

    The log is appended in epoch order and every resume cuts what it redoes, so those records are a suffix:
    it is found reading backwards from the end, never the whole (possibly large) file.
    """
    path = run_dir / BATCHES
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0, None
    cut = _suffix_start(path, size, saved_epochs)
    if cut >= size:
        return 0, None
    with open(path, "rb") as f:
        f.seek(cut)
        tail = f.read(size - cut)
    if not tail.endswith(b"\n"):
        tail += b"\n"
    with open(run_dir / BATCHES_REDONE, "ab") as out:
        out.write(tail)
        out.flush()
        os.fsync(out.fileno())
    os.truncate(path, cut)  # readers notice the shorter file and read it again
    recs = [r for r in (_record(line) for line in tail.splitlines()) if r is not None]
    last = recs[-1] if recs else None
    last_batch = (int(last["i"]), int(last["nb"])) if last and _is_int(last.get("i")) and _is_int(last.get("nb")) else None
    return len(recs), last_batch


def _suffix_start(path: Path, size: int, saved_epochs: int) -> int:
    """Offset of the first line after the last record of an epoch the checkpoint holds (0-based < saved_epochs)."""
    with open(path, "rb") as f:
        end, carry = size, b""
        while end > 0:
            start = max(0, end - _CHUNK)
            f.seek(start)
            buf = f.read(end - start) + carry
            end = start
            if start > 0:  # the part before the first newline is the end of a line that starts earlier
                nl = buf.find(b"\n")
                if nl < 0:
                    carry = buf
                    continue
                carry, body, pos = buf[: nl + 1], buf[nl + 1 :], start + nl + 1
            else:
                carry, body, pos = b"", buf, 0
            pos += len(body)
            for line in reversed(body.splitlines(keepends=True)):
                rec = _record(line)
                if rec is not None and _is_int(rec.get("epoch")) and int(rec["epoch"]) < saved_epochs:
                    return pos
                pos -= len(line)
        return 0


def _record(line: bytes) -> dict | None:  # type: ignore[type-arg]
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def _is_int(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
