"""One reading of the device string for the CLI's and the Training page's memory forecast."""

from __future__ import annotations

import pytest

from omr_core.training.devices import parse_device
from omr_core.training.gpu import GpuDevice
from omr_core.training.spec import SpecError

TWO = (GpuDevice(0, "A", 81_559.0), GpuDevice(1, "B", 40_960.0))


@pytest.mark.parametrize(
    ("given", "kind", "ids", "ddp", "per_gpu", "vram_mb", "text"),
    [
        ("cpu", "cpu", (), False, 16, 0, "the CPU"),
        ("", "cuda", (0,), False, 16, 81_559, "GPU 0"),  # Ultralytics' automatic choice: GPU 0 when there is one
        ("0", "cuda", (0,), False, 16, 81_559, "GPU 0"),
        ("0,1", "cuda", (0, 1), True, 8, 40_960, "GPUs 0,1 (DDP)"),  # DDP: half the batch each, smallest card
        ("cuda:1", "cuda", (1,), False, 16, 40_960, "GPU 1"),
        ("mps", "mps", (), False, 16, 0, "Apple MPS"),
        ("-1", "cuda", (0, 1), False, 16, 40_960, "the idlest of GPUs 0,1"),
        ([0, 1], "cuda", (0, 1), True, 8, 40_960, "GPUs 0,1 (DDP)"),
    ],
)
def test_device_strings_on_a_two_gpu_machine(
    given: object, kind: str, ids: tuple[int, ...], ddp: bool, per_gpu: int, vram_mb: int, text: str
) -> None:
    plan = parse_device(given, TWO)
    assert (plan.kind, plan.gpu_ids, plan.ddp, plan.missing) == (kind, ids, ddp, ())
    assert plan.per_gpu_batch(16) == per_gpu and plan.per_gpu_batch(-1) == 0  # -1: AutoBatch sizes it
    assert plan.vram_bytes(TWO) == vram_mb * 2**20
    assert plan.describe() == text


def test_without_a_gpu_the_empty_string_is_the_cpu_and_named_gpus_are_missing() -> None:
    assert parse_device("").kind == "cpu" and parse_device("").vram_bytes(()) == 0
    plan = parse_device("cuda:1", TWO[:1])
    assert plan.kind == "cuda" and plan.missing == (1,) and plan.vram_bytes(TWO[:1]) == 0  # never GPU 0's memory


@pytest.mark.parametrize("bad", ["gpu", "0;rm", "1,a", "cuda", "0,0", "cuda:x"])
def test_nonsense_is_a_clear_error(bad: str) -> None:
    with pytest.raises(SpecError, match=r"device .*(use cpu, 0, 0,1|each GPU once)"):
        parse_device(bad, TWO)
