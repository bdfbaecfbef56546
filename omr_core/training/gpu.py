"""NVML access that degrades to "no GPU" instead of crashing (missing driver, library or field)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
