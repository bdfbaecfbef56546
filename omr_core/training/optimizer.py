"""What Ultralytics 8.4's trainer really does with the optimizer arguments: auto's pick, accumulation, step count.

Mirrors ``BaseTrainer._build_train_pipeline``, ``build_optimizer`` and the warmup of ``_do_train`` in
ultralytics/engine/trainer.py (8.4.190), so the launch form and the alerts can say what will happen before it does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Above this many iterations ``optimizer=auto`` picks MuSGD, otherwise AdamW with a learning rate fitted to nc.
AUTO_ITERATIONS = 10_000


@dataclass(frozen=True)
class OptimizerPlan:
    """The optimizer a run will use.

    Attributes:
        optimizer: Its name (``auto`` resolved).
        lr0: Initial learning rate it will use.
        momentum: Momentum (Adam-family: beta1).
        auto: True when ``optimizer=auto`` chose it (then ``lr0`` and ``momentum`` from the arguments are ignored).
        iterations: The iteration count auto decides on: ceil(train images / max(batch, nbs)) × epochs.
        accumulate: Batches per optimizer step after warmup (``round(nbs / batch)``).
        reason: One sentence on why, for people.
    """

    optimizer: str
    lr0: float
    momentum: float
    auto: bool
    iterations: int | None
    accumulate: int
    reason: str


def accumulate_of(batch: int, nbs: int) -> int:
    """Batches whose gradients Ultralytics adds up before one optimizer step."""
    return max(round(nbs / batch), 1) if batch >= 1 else 1


def plan_optimizer(args: Mapping[str, Any], nc: int | None, train_images: int | None) -> OptimizerPlan:
    """What optimizer, lr0 and momentum Ultralytics will use for these (merged) train arguments.

    Args:
        args: Ultralytics arguments with defaults filled in (``optimizer, lr0, momentum, batch, nbs, epochs``).
        nc: Number of classes of the dataset (auto's AdamW learning rate depends on it); None when unknown.
        train_images: Images in the training split; None when unknown (auto's choice then cannot be known).

    Examples:
        >>> plan_optimizer({"optimizer": "auto", "batch": 16, "nbs": 64, "epochs": 100, "lr0": 0.01,
        ...                 "momentum": 0.937}, nc=136, train_images=1362).optimizer
        'AdamW'
    """
    name = str(args.get("optimizer") or "auto")
    batch, nbs, epochs = int(args.get("batch") or 16), int(args.get("nbs") or 64), int(args.get("epochs") or 100)
    acc = accumulate_of(batch, nbs)
    lr0, momentum = float(args.get("lr0", 0.01)), float(args.get("momentum", 0.937))
    if name.lower() != "auto":
        return OptimizerPlan(name, lr0, momentum, False, None, acc, f"optimizer={name} as given")
    if train_images is None or batch < 1:
        why = "the training images are unknown" if train_images is None else "AutoBatch picks the batch first"
        return OptimizerPlan("auto", math.nan, 0.9, True, None, acc,
                             f"optimizer=auto decides at start ({why}); it ignores lr0 and momentum")
    iterations = math.ceil(train_images / max(batch, nbs)) * epochs
    if iterations > AUTO_ITERATIONS:
        return OptimizerPlan("MuSGD", 0.01, 0.9, True, iterations, acc,
                             f"optimizer=auto ignores lr0 and momentum: {iterations} iterations > {AUTO_ITERATIONS} → "
                             "MuSGD, lr0 0.01, momentum 0.9")
    classes = 10 if nc is None else nc  # Ultralytics' own fallback when data has no nc
    lr = round(0.002 * 5 / (4 + classes), 6)
    return OptimizerPlan("AdamW", lr, 0.9, True, iterations, acc,
                         f"optimizer=auto ignores lr0 and momentum: {iterations} iterations ≤ {AUTO_ITERATIONS} → AdamW, "
                         "lr0 = 0.002·5/(4+nc) "
                         f"= {lr:g} for nc {classes}, momentum 0.9")


def optimizer_steps(batches_done: int, nb: int, batch: int, nbs: int, epochs: int, warmup_epochs: float) -> int:
    """Optimizer steps Ultralytics has taken after ``batches_done`` batches (warmup ramps accumulation up from 1).

    Args:
        batches_done: Training batches run so far (all epochs).
        nb: Batches per epoch.
        batch: Batch size.
        nbs: Nominal batch size.
        epochs: Epochs planned (warmup leaves at least the last one alone; accumulation is capped by nb × epochs).
        warmup_epochs: Ultralytics' ``warmup_epochs``.
    """
    if batches_done <= 0 or nb <= 0:
        return 0
    acc0 = min(accumulate_of(batch, nbs), nb * max(epochs, 1))
    w = min(warmup_epochs, max(epochs - 1, 0))
    nw = round(w * nb) if w > 0 else 0
    steps, last = 0, -1
    for ni in range(min(batches_done, nw + 1) if nw else 0):  # warmup: accumulation ramps from 1 to acc0
        if ni - last >= max(1, int(np.interp(ni, [0, nw], [1, acc0]).round())):
            steps, last = steps + 1, ni
    nxt = max((nw + 1) if nw else 0, last + acc0)  # after warmup: one step every acc0 batches
    if nxt <= batches_done - 1:
        steps += (batches_done - 1 - nxt) // acc0 + 1
    return steps
