"""Fuzz the results.csv reader: any bytes give a clean table (numbers only, one row per epoch), never an exception."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from omr_core.training.tail import ResultsCsvTail
from tests.core.training.run_fixtures import HEADER, results_row
from tests.hardening.fuzzlib import FUZZ_EXAMPLES, HARDENING, count_case, outcome_of, ran, scratch_dir

#: A results.csv as Ultralytics 8.3.9+ writes it (12 epochs).
REAL = (",".join(HEADER) + "\n" + "".join(",".join(f"{v:.6g}" for v in results_row(e, 60.0)) + "\n" for e in range(1, 13))).encode()

_TMP = scratch_dir("omr-fuzz-csv-")

_CELLS = st.one_of(
    st.sampled_from([*HEADER, "EPOCH", " Epoch ", "", "nan", "inf", "-inf", "NaN", "1e309", "-0", "0x10", "1_0", "\x00"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=12),
)
_LINE = st.lists(_CELLS, min_size=0, max_size=18).map(lambda cells: ",".join(cells).encode("utf-8", "surrogatepass"))
_GARBAGE = st.one_of(st.binary(max_size=40), st.just(b"\x00" * 64), st.just(b"\xff\xfe\xfd"), st.just(b"\r"))


def _check_table(t: ResultsCsvTail, df: pd.DataFrame) -> None:
    """What the charts and the runs table rely on."""
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == t.columns
    assert len(set(t.columns)) == len(t.columns), f"duplicate column names {t.columns}"
    if t.columns:
        assert t.columns[0] == "epoch", t.columns
        assert all(dt.kind == "f" for dt in df.dtypes), df.dtypes
        ep = df["epoch"].to_numpy()
        assert np.isfinite(ep).all(), "a row without a readable epoch number was kept"
        assert (np.diff(ep) > 0).all(), "epochs must be unique and sorted"
    assert len(t.rows()) == len(df)
    for name in t.columns:
        assert len(t.column(name)) == len(df)
    assert t.skipped_lines >= 0 and t.repaired_rows >= 0


def _read(name: str, data: bytes) -> None:
    p = _TMP / "results.csv"
    p.write_bytes(data)

    def go() -> tuple[ResultsCsvTail, pd.DataFrame]:
        t = ResultsCsvTail(p)
        t.poll()
        return t, t.frame()

    res = outcome_of(name, go)
    if res is not None:
        _check_table(*res)


def test_arbitrary_bytes() -> None:
    @HARDENING
    @given(st.binary(max_size=3000))
    def prop(data: bytes) -> None:
        _read("results.csv: arbitrary bytes", data)

    assert ran("results.csv: arbitrary bytes", prop) >= FUZZ_EXAMPLES


def test_csv_like_lines() -> None:
    @HARDENING
    @given(st.lists(st.one_of(_LINE, _LINE, _GARBAGE), max_size=30), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
    @example([b"epoch,epoch", b"1,2"], b"\n", True)  # ValueError: the column label 'epoch' is not unique
    @example([b"EPOCH,a", b"1,2"], b"\n", True)  # no "epoch" column for the charts
    @example([b"epoch,a", b"\x00" * 8, b"1,2"], b"\n", True)  # a NUL block became a NaN-epoch row
    def prop(lines: list[bytes], eol: bytes, final_eol: bool) -> None:
        _read("results.csv: csv-like lines", eol.join(lines) + (eol if final_eol else b""))

    assert ran("results.csv: csv-like lines", prop) >= FUZZ_EXAMPLES


_DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, len(REAL)), st.just(b"")),
    st.tuples(st.just("insert"), st.integers(0, len(REAL)), _GARBAGE),
    st.tuples(st.just("overwrite"), st.integers(0, len(REAL)), _GARBAGE),
    st.tuples(st.just("nul-fill"), st.integers(0, len(REAL)), st.integers(1, 400).map(lambda n: b"\x00" * n)),
    st.tuples(st.just("cut-line"), st.integers(0, 13), st.just(b"")),
)


def _damage(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    for op, at, junk in ops:
        at = min(at, len(data))
        if op == "truncate":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + junk + data[at:]
        elif op in ("overwrite", "nul-fill"):  # a crash on ext4 leaves NUL-filled blocks exactly like this
            data = data[:at] + junk + data[at + len(junk) :]
        else:  # half of line `at` is lost (a copy interrupted and resumed)
            lines = data.split(b"\n")
            if at < len(lines):
                lines[at] = lines[at][: len(lines[at]) // 2]
            data = b"\n".join(lines)
    return data


def test_real_file_damaged() -> None:
    @HARDENING
    @given(st.lists(_DAMAGE, min_size=1, max_size=4))
    def prop(ops: list[tuple[str, int, bytes]]) -> None:
        _read("results.csv: real file damaged", _damage(REAL, ops))

    assert ran("results.csv: real file damaged", prop) >= FUZZ_EXAMPLES


def test_incremental_reads_equal_one_read() -> None:
    """The live monitor appends and polls; whatever the bytes and the poll points, it ends where one read ends."""

    @HARDENING
    @given(st.lists(_DAMAGE, max_size=3), st.lists(st.integers(0, len(REAL) + 200), max_size=6))
    def prop(ops: list[tuple[str, int, bytes]], cuts: list[int]) -> None:
        data = _damage(REAL, ops)
        p = _TMP / "live.csv"
        p.write_bytes(b"")
        t = ResultsCsvTail(p)
        bounds = sorted({min(c, len(data)) for c in cuts} | {len(data)})
        done = 0
        for b in bounds:
            with p.open("ab") as f:
                f.write(data[done:b])
            done = b
            t.poll()
        count_case("results.csv: appended and polled", "result")
        once = ResultsCsvTail(p)
        once.poll()
        _check_table(t, t.frame())
        pd.testing.assert_frame_equal(t.frame(), once.frame())
        assert (t.skipped_lines, t.repaired_rows) == (once.skipped_lines, once.repaired_rows)

    assert ran("results.csv: appended and polled", prop) >= FUZZ_EXAMPLES
