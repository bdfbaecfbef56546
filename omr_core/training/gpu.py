"""NVML access that degrades to "no GPU" instead of crashing, and the 1 Hz GPU (or CPU) sampler of a run."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omr_core.errors import OmrError


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as NVML reports it."""

    index: int
    name: str
    memory_total_mb: float


@dataclass(frozen=True)
class GpuProbe:
    """Result of asking NVML what GPUs there are.

    Attributes:
        available: True when NVML initialised and reported at least one device.
        reason: Why no GPU is available (empty when available).
        driver: Driver version string, when known.
        devices: The devices found.
    """

    available: bool
    reason: str = ""
    driver: str = ""
    devices: tuple[GpuDevice, ...] = field(default_factory=tuple)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe() -> GpuProbe:
    """Ask NVML for the GPUs; never raises (a missing driver gives ``available=False`` and a reason)."""
    try:
        import pynvml
    except ImportError:
        return GpuProbe(False, "pynvml is not installed (pip install nvidia-ml-py)")
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return GpuProbe(False, f"NVML unavailable: {exc}")
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            devices.append(GpuDevice(i, _text(pynvml.nvmlDeviceGetName(h)), mem.total / 2**20))
    except Exception as exc:
        return GpuProbe(False, f"NVML error: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    if not devices:
        return GpuProbe(False, "NVML found no GPU", driver)
    return GpuProbe(True, "", driver, tuple(devices))


# -- sampler ---------------------------------------------------------------------------------------------------------

#: Fastest sampling interval allowed (NVML itself refreshes utilisation about every 1/6 s).
MIN_INTERVAL_S = 0.2


class SamplerError(OmrError):
    """A sampler asked to do something it cannot (e.g. sample faster than every 0.2 s)."""


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """NVML call that degrades to None (an unsupported field on a given GPU must not stop the sampling)."""
    try:
        return fn(*args)
    except Exception:
        return None


def _process_tree(root: Any) -> list[Any]:
    import psutil

    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


class Sampler:
    """Sample GPU (NVML) or, without NVML, CPU/RAM once per ``interval`` into a JSON-lines file, in a thread.

    Every record has ``t``, ``kind`` ("gpu" or "cpu"), system ``cpu`` %, ``ram_used``/``ram_total`` and the
    training process tree's ``proc_rss``/``proc_cpu``/``nproc``; with NVML, per GPU ``i``: ``gpu{i}_used``,
    ``gpu{i}_total`` (bytes), ``gpu{i}_util`` (%), ``gpu{i}_temp`` (°C), ``gpu{i}_power`` (W) and ``gpu{i}_proc``
    (bytes used by the process tree on that GPU: DDP ranks and dataloader workers are children of the worker).
    A field NVML does not support on a device is null.

    Args:
        out: File to append records to (None: keep only `latest`).
        interval: Seconds between samples (>= 0.2).
        root_pid: Process whose tree is attributed (default: this process).
        nvml: The NVML module (default: ``pynvml``); tests pass a fake.
        on_event: Called once with (kind, message) when NVML is unavailable.
        on_sample: Called with each record (e.g. the worker's alert check).
    """

    def __init__(
        self,
        out: str | os.PathLike[str] | None,
        interval: float = 1.0,
        root_pid: int | None = None,
        nvml: Any = None,
        on_event: Callable[[str, str], None] | None = None,
        on_sample: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if not interval >= MIN_INTERVAL_S:
            raise SamplerError(f"sampling interval {interval} s is too short: use at least {MIN_INTERVAL_S} s")
        import psutil

        self.out = Path(out) if out is not None else None
        self.interval = float(interval)
        self.root = psutil.Process(root_pid or os.getpid())
        self.on_event = on_event
        self.on_sample = on_sample
        self.latest: dict[str, Any] | None = None
        self.samples = 0
        self._procs: dict[int, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.native_id: int | None = None
        self._nvml = nvml
        self._handles: list[Any] = []
        self.nvml_reason = ""
        self._init_nvml()
        psutil.cpu_percent(None)  # prime the system counter: the first call has nothing to compare with

    @property
    def has_nvml(self) -> bool:
        return bool(self._handles)

    def _init_nvml(self) -> None:
        nv = self._nvml
        if nv is None:
            try:
                import pynvml

                nv = pynvml
            except ImportError:
                self.nvml_reason = "pynvml is not installed"
                return
        try:
            nv.nvmlInit()
            self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
        except Exception as exc:
            self.nvml_reason = f"NVML unavailable: {exc}"
            self._handles = []
            return
        self._nvml = nv
        if not self._handles:
            self.nvml_reason = "NVML found no GPU"

    def sample(self) -> dict[str, Any]:
        """Take one sample now (also appended to `out`)."""
        import psutil

        rec: dict[str, Any] = {"t": time.time(), "kind": "gpu" if self._handles else "cpu"}
        rec["cpu"] = psutil.cpu_percent(None)
        vm = psutil.virtual_memory()
        rec["ram_used"], rec["ram_total"] = vm.total - vm.available, vm.total
        procs = _process_tree(self.root)
        pids = set()
        rss = cpu = 0.0
        alive: dict[int, Any] = {}
        for p in procs:
            # Keep Process objects between samples: cpu_percent() measures since the previous call on the object.
            p = self._procs.get(p.pid, p)
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    cpu += p.cpu_percent(None)
            except psutil.Error:
                continue
            alive[p.pid] = p
            pids.add(p.pid)
        self._procs = alive
        rec["proc_rss"], rec["proc_cpu"], rec["nproc"] = rss, cpu, len(pids)
        nv = self._nvml
        for i, h in enumerate(self._handles):
            mem = _call(nv.nvmlDeviceGetMemoryInfo, h)
            util = _call(nv.nvmlDeviceGetUtilizationRates, h)
            power = _call(nv.nvmlDeviceGetPowerUsage, h)
            rec[f"gpu{i}_used"] = getattr(mem, "used", None)
            rec[f"gpu{i}_total"] = getattr(mem, "total", None)
            rec[f"gpu{i}_util"] = getattr(util, "gpu", None)
            rec[f"gpu{i}_temp"] = _call(nv.nvmlDeviceGetTemperature, h, getattr(nv, "NVML_TEMPERATURE_GPU", 0))
            rec[f"gpu{i}_power"] = power / 1000.0 if power is not None else None
            plist = _call(nv.nvmlDeviceGetComputeRunningProcesses, h)
            if plist is None:
                rec[f"gpu{i}_proc"] = None
            else:
                used = [getattr(pr, "usedGpuMemory", None) for pr in plist if getattr(pr, "pid", None) in pids]
                rec[f"gpu{i}_proc"] = float(sum(u for u in used if u))
        self.latest = rec
        self.samples += 1
        if self.out is not None:
            append_line(self.out, rec)
        if self.on_sample is not None:
            self.on_sample(rec)
        return rec

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        if not self._handles and self.on_event is not None:
            self.on_event("no_nvml", f"No GPU telemetry ({self.nvml_reason}); sampling CPU and RAM with psutil instead.")
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # telemetry must never take the training down
                print(f"omr sampler: {exc!r}", file=sys.stderr)
            next_t += self.interval
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def start(self) -> Sampler:
        """Start sampling in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="omr-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and release NVML."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._handles:
            _call(self._nvml.nvmlShutdown)
            self._handles = []


def append_line(path: Path, rec: dict[str, Any]) -> None:
    """Append one JSON line in a single write."""
    import orjson

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, orjson.dumps(rec) + b"\n")
    finally:
        os.close(fd)
