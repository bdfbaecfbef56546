"""The GPU sampler. No GPU here: NVML is replaced by FakeNVML below (a FAKE, labelled as such); psutil is real."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from omr_core.training.gpu import Sampler, SamplerError, probe

GIB = 2**30


class FakeNVMLError(Exception):
    pass


class FakeNVML:
    """FAKE NVML module (this machine has no GPU): two devices; device 1 does not report power or temperature.

    ``procs`` is what nvmlDeviceGetComputeRunningProcesses returns per device: (pid, bytes) pairs.
    """

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, procs: dict[int, list[tuple[int, int | None]]], fail_init: bool = False) -> None:
        self.procs = procs
        self.fail_init = fail_init
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise FakeNVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(used=(20 if h == 0 else 3) * GIB, total=24 * GIB, free=4 * GIB)

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        return SimpleNamespace(gpu=97 if h == 0 else 0, memory=40)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        if h == 1:
            raise FakeNVMLError("Not Supported")
        return 71

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if h == 1:
            raise FakeNVMLError("Not Supported")
        return 250_500  # milliwatts

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[Any]:
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in self.procs.get(h, [])]


@pytest.fixture
def child() -> Any:
    """A real child process standing in for a dataloader worker / DDP rank of the training process."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_fake_nvml_sample_attributes_the_process_tree(tmp_path: Path, child: Any) -> None:
    import os

    other = 999_999  # a process outside our tree using the GPU
    nv = FakeNVML({0: [(os.getpid(), 2 * GIB), (child.pid, 1 * GIB), (other, 9 * GIB)], 1: [(child.pid, None)]})
    out = tmp_path / "gpu.jsonl"
    s = Sampler(out, nvml=nv)
    rec = s.sample()
    assert rec["kind"] == "gpu" and s.has_nvml
    assert rec["gpu0_used"] == 20 * GIB and rec["gpu0_total"] == 24 * GIB and rec["gpu0_util"] == 97
    assert rec["gpu0_temp"] == 71 and rec["gpu0_power"] == pytest.approx(250.5)
    assert rec["gpu0_proc"] == 3 * GIB  # ours + the child, not the other process
    assert rec["gpu1_temp"] is None and rec["gpu1_power"] is None and rec["gpu1_proc"] == 0.0  # n/a, not a crash
    assert rec["nproc"] >= 2 and rec["proc_rss"] > 0
    assert orjson.loads(out.read_bytes().splitlines()[-1])["gpu0_proc"] == 3 * GIB
    s.stop()
    assert nv.shutdowns == 1


def test_without_nvml_it_says_so_once_and_samples_cpu(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    out = tmp_path / "gpu.jsonl"
    s = Sampler(out, interval=0.2, nvml=FakeNVML({}, fail_init=True), on_event=lambda k, m: events.append((k, m)))
    s.start()
    deadline = time.monotonic() + 60  # a loaded CI core may be slow; what matters is that samples keep coming
    while s.samples < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    s.stop()
    assert s._thread is not None and not s._thread.is_alive()
    recs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(recs) == s.samples >= 5  # every sample was written, and none after stop()
    # Paced by the interval: the k-th sample never comes before k intervals (late ones may catch up, never run ahead).
    t0 = recs[0]["t"]
    assert all(r["t"] - t0 >= k * 0.2 - 0.02 for k, r in enumerate(recs)), [r["t"] - t0 for r in recs]
    assert {r["kind"] for r in recs} == {"cpu"} and all(r["ram_total"] > r["ram_used"] > 0 for r in recs)
    assert all(0 <= r["cpu"] <= 100 for r in recs)
    assert len(events) == 1 and events[0][0] == "no_nvml" and "psutil" in events[0][1]
    assert "NVML Shared Library Not Found" in s.nvml_reason


def test_real_pynvml_on_this_machine_degrades() -> None:
    # The real pynvml here has no driver: the sampler must fall back, and probe() must explain why.
    s = Sampler(None)
    assert s.sample()["kind"] == ("gpu" if s.has_nvml else "cpu")
    p = probe()
    assert p.available == s.has_nvml and (p.available or p.reason)


def test_interval_floor() -> None:
    with pytest.raises(SamplerError, match="0.2"):
        Sampler(None, interval=0.1)
