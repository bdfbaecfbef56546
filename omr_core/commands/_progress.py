"""The tqdm progress bar every `omr` verb hands to core functions as a ``(done, total)`` callback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def tqdm_progress(
    desc: str | None = None, *, unit: str = "it", leave: bool = False
) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A ``(done, total)`` callback drawing a tqdm bar on stderr, and a function closing it.

    The bar is created on the first call (when the total is known); after ``close()`` the next call starts a new
    bar, so one pair can serve several phases of long work.
    """
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def cb(done: int, total: int) -> None:
        if "b" not in bar:
            bar["b"] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave, dynamic_ncols=True)
        b = bar["b"]
        if b.total != total:
            b.total = total
        b.update(done - b.n)  # tqdm rate-limits redraws

    def close() -> None:
        if "b" in bar:
            bar.pop("b").close()

    return cb, close


@contextmanager
def progress_bar(desc: str | None = None, *, unit: str = "it", leave: bool = False) -> Iterator[Callable[[int, int], None]]:
    """`tqdm_progress` for one phase of work: ``with progress_bar("reading") as cb:`` closes the bar however it ends."""
    cb, close = tqdm_progress(desc, unit=unit, leave=leave)
    try:
        yield cb
    finally:
        close()
