"""Atomic file writes: a reader sees the old file or the whole new one, never a part, even after a crash.

Every write goes to a uniquely named temp file in the target's folder (so the rename never crosses file
systems and two writers never share a temp), is fsynced, then ``os.replace``-d over the target; the temp is
removed when anything fails, interrupts included. Files get the umask's permissions like any ``open``
(``tempfile.mkstemp`` would make them 0600, unreadable to a trainer running as someone else).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["temp_name", "write_atomic", "write_bytes", "write_json", "write_text"]


def temp_name(path: Path) -> Path:
    """A fresh hidden name next to ``path`` (``.name.<random>.tmp``); leftovers of a crash are easy to spot."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _fsync_path(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object], *, durable: bool = True) -> Path:
    """Let ``write(tmp)`` create the file at a temp path, then put it in place atomically; returns ``path``.

    Args:
        path: The file to (re)place; missing parent folders are created.
        write: Writes the whole file to the path it is given (``df.to_parquet``, ``torch.save``, ...).
        durable: fsync the file before the rename and the folder after it (about 7 ms a file on ext4). Only
            bulk outputs whose set is committed by a last, durable file (the engraver's page images before
            its JSON) pass False: readers still never see a partial file, only a crash may lose the newest.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        write(tmp)
        if durable:
            _fsync_path(tmp, os.O_RDONLY)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable and hasattr(os, "O_DIRECTORY"):  # the rename itself survives a power cut only once the folder is synced
        with contextlib.suppress(OSError):
            _fsync_path(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    return path


def write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (``durable``: see `write_atomic`)."""

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    return write_atomic(path, write, durable=durable)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 with ``\\n`` line ends to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (NumPy values accepted; NaN and infinities become null)."""
    import orjson

    return write_bytes(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")
