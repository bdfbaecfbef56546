"""What an Ultralytics ``device`` string means for memory: which GPUs train, the batch each one gets, its VRAM.

One reading for the CLI and the Training page, following Ultralytics' ``select_device``: ``""`` is GPU 0 when
CUDA is there and the CPU otherwise, ``"0,1"`` is DDP over two GPUs (each gets ``batch / 2``), ``"cuda:1"`` is
GPU 1, ``"-1"`` is whichever GPU is idlest, ``"cpu"`` and ``"mps"`` have no CUDA memory to forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from omr_core.training.gpu import GpuDevice
from omr_core.training.spec import SpecError, normalize_device

__all__ = ["DevicePlan", "parse_device"]

Kind = Literal["cpu", "mps", "cuda"]


@dataclass(frozen=True)
class DevicePlan:
    """A device string resolved against the GPUs of this machine.

    Attributes:
        device: The normalised string Ultralytics gets (``""``: its automatic choice).
        kind: ``"cuda"`` when training runs on NVIDIA GPUs, else ``"cpu"`` or ``"mps"``.
        gpu_ids: CUDA indices the string names (for ``""`` and ``"-1"``: those it may pick).
        ddp: True when the batch is split across ``gpu_ids`` (a list of two or more).
        missing: Named indices this machine does not have (Ultralytics will refuse them).
    """

    device: str
    kind: Kind
    gpu_ids: tuple[int, ...] = ()
    ddp: bool = False
    missing: tuple[int, ...] = ()

    def per_gpu_batch(self, batch: int) -> int:
        """Images per GPU per step: DDP divides ``batch`` by the GPU count; 0 for AutoBatch (``batch < 1``)."""
        if batch < 1:
            return 0
        return max(1, batch // len(self.gpu_ids)) if self.ddp else batch

    def vram_bytes(self, devices: Sequence[GpuDevice]) -> int:
        """The memory of the smallest GPU that trains (DDP runs at the pace of its smallest card); 0 off CUDA."""
        sizes = [d.memory_total_mb for d in devices if d.index in self.gpu_ids]
        return int(min(sizes) * 2**20) if self.kind == "cuda" and sizes else 0

    def describe(self) -> str:
        """``"GPU 0"``, ``"GPUs 0,1 (DDP)"``, ``"the CPU"``, ``"Apple MPS"``."""
        if self.kind == "cpu":
            return "the CPU"
        if self.kind == "mps":
            return "Apple MPS"
        ids = ",".join(str(i) for i in self.gpu_ids)
        if self.ddp:
            return f"GPUs {ids} (DDP)"
        return f"GPU {ids}" if len(self.gpu_ids) == 1 else f"the idlest of GPUs {ids}"


def parse_device(device: object, devices: Sequence[GpuDevice] = ()) -> DevicePlan:
    """Read ``device`` the way Ultralytics will, on a machine with ``devices`` (`omr_core.training.gpu.probe`).

    Args:
        device: ``"cpu"``, ``""``, ``"0"``, ``"0,1"``, ``"cuda:1"``, ``"mps"``, ``"-1"``, ``0`` or ``[0, 1]``.
        devices: The CUDA devices present (empty: none, or NVML could not tell).

    Raises:
        SpecError: Anything else, with the forms that are accepted.
    """
    d = normalize_device(device)
    present = tuple(g.index for g in devices)
    if d == "cpu":
        return DevicePlan(d, "cpu")
    if d == "mps":
        return DevicePlan(d, "mps")
    if d == "":  # Ultralytics: cuda:0 when CUDA is available, else the CPU
        return DevicePlan(d, "cuda", (0,)) if 0 in present else DevicePlan(d, "cpu")
    if d == "-1":  # Ultralytics picks the idlest GPU at start: any of them may be the one
        return DevicePlan(d, "cuda", present) if present else DevicePlan(d, "cpu")
    ids = tuple(int(x) for x in d.removeprefix("cuda:").split(","))
    if len(set(ids)) != len(ids):
        raise SpecError(f"device {device!r} names a GPU twice: list each GPU once, e.g. 0,1")
    return DevicePlan(d, "cuda", ids, ddp=len(ids) > 1, missing=tuple(i for i in ids if i not in present))
