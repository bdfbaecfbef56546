"""The one atomic-write helper: unique temp in the same folder, fsync, rename, nothing left behind on failure."""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

import pytest

from omr_core.atomic import write_atomic, write_bytes, write_json, write_text

ROOT = Path(__file__).resolve().parents[2]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writes_and_replaces(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "a.txt"
    write_text(p, "one")  # the folder is created
    write_text(p, "two")
    assert p.read_text(encoding="utf-8") == "two"
    write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    write_json(p, {"x": float("nan"), "y": [1, 2]})
    assert p.read_text(encoding="utf-8").startswith("{") and '"x": null' in p.read_text(encoding="utf-8")
    assert _leftovers(p.parent) == []


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    write_text(p, "old")

    def half(tmp: Path) -> None:
        tmp.write_text("half-writ", encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomic(p, half)
    assert p.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):  # an interrupt, too, leaves no temp file
        write_atomic(p, lambda tmp: (tmp.write_bytes(b"x"), (_ for _ in ()).throw(KeyboardInterrupt()))[0])
    assert _leftovers(tmp_path) == [] and p.read_text(encoding="utf-8") == "old"


def test_data_reaches_the_disk_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        order.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
        order.append("replace")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_text(tmp_path / "a.txt", "x")
    assert order[:2] == ["fsync-file", "replace"]


def test_temp_names_are_unique_so_concurrent_writers_never_share_one(tmp_path: Path) -> None:
    p = tmp_path / "shared.txt"
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(k: int) -> None:
        try:
            barrier.wait()
            for _ in range(25):
                write_text(p, f"writer {k} " * 1000)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    text = p.read_text(encoding="utf-8")
    assert re.fullmatch(r"(writer (\d) )+", text) and len(set(re.findall(r"writer (\d)", text))) == 1  # one whole write
    assert _leftovers(tmp_path) == []


def test_permissions_follow_the_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "data.yaml", "names: {}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data.yaml").stat().st_mode) == 0o644  # others (a trainer, a reader) can read it


def test_no_other_module_renames_files_itself() -> None:
    """Written once: every atomic write in the product goes through omr_core.atomic."""
    pattern = re.compile(r"os\.replace\(|os\.rename\(|\.replace\(p\)|tmp\.replace\(|\.rename\(")
    allowed = {ROOT / "omr_core" / "atomic.py", ROOT / "omr_core" / "audit" / "convert.py"}  # convert swaps whole folders
    found = []
    for folder in ("omr_core", "dashboard", "bench"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            if f in allowed:
                continue
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
