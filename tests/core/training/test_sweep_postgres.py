"""Two sweep controllers sharing one Optuna study in a real PostgreSQL server (the several-machines setup of
docs/sweeps.md, here on one machine): every trial runs exactly once. Needs PostgreSQL's server binaries (initdb,
pg_ctl) and psycopg2; skipped, saying which is missing, without them."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from omr_core.training import sweep
from tests.core.training.test_sweep import _wait
from tests.core.training.tiny_dataset import make_tiny_dataset


def _bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg2", reason="psycopg2 (pip install psycopg2-binary) is not installed")
    initdb, pg_ctl, createdb = _bin("initdb"), _bin("pg_ctl"), _bin("createdb")
    if not (initdb and pg_ctl and createdb):
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl, createdb) are not on this machine")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="omr-pg-"))  # not under pytest's 0700 tmp: the server user must reach it
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the postgres user
        if not shutil.which("runuser") or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root and there is no postgres user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    data = root / "data"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log.txt"), "-w", "-o",
                        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([*as_user, createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "optuna"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True,
                       timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_controllers_on_one_postgresql_study_never_share_a_trial(tmp_path: Path, postgres_url: str) -> None:
    import optuna

    runs = tmp_path / "runs"
    data = make_tiny_dataset(tmp_path / "tiny", n_train=4, n_val=2)
    out = subprocess.run(
        [sys.executable, "-m", "omr_core.cli", "sweep", "new", "pg", "--runs-dir", str(runs), "--data", str(data),
         "--preset", "ultralytics", "--sampler", "grid", "--param", "lr0=0.01,0.02", "--param", "batch=2,4",
         "--trials", "4", "--epochs", "1", "--workers", "2", "--storage", postgres_url,
         "--fixed", "imgsz=64", "device=cpu", "workers=0", "nbs=4"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    _wait(lambda: len(sweep.trials(runs, "pg")) == 4, 600, "the sweep did not finish its 4 trials")
    ts = sweep.trials(runs, "pg")
    assert sorted(t["number"] for t in ts) == [0, 1, 2, 3]
    assert sorted(tuple(sorted(t["params"].items())) for t in ts) == sorted(
        (("batch", b), ("lr0", lr)) for lr in (0.01, 0.02) for b in (2, 4))  # the grid, each point once
    assert all(t["state"] == "complete" for t in ts), ts
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert not (runs / "sweeps" / "pg" / "study.db").exists()  # the study lives in PostgreSQL, not in SQLite
