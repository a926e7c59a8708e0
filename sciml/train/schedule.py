"""The learning-rate schedule: linear warm-up, then cosine decay to 0 or constant.

Progress runs from 0 to 1 over the run: over the optimiser steps of ``TrainConfig.epochs`` epochs, or,
with a wall-clock budget ``TrainConfig.max_time``, over whichever of steps and seconds ends first.
Each parameter group keeps its own peak rate (``initial_lr``, set when the optimizer is built), so
task-defined groups with different rates are scaled together.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .loop import TrainConfig

__all__ = ["lr_factor", "set_learning_rate"]


def lr_factor(config: TrainConfig, progress: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of the run."""
    if progress < config.warmup_fraction:
        return (progress + 1e-3) / (config.warmup_fraction + 1e-3)
    if config.schedule == "constant":
        return 1.0
    span = max(1.0 - config.warmup_fraction, 1e-12)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - config.warmup_fraction) / span)))


def set_learning_rate(optimizer: torch.optim.Optimizer, config: TrainConfig, *, step: int, total_steps: int,
                      elapsed: float) -> None:
    """Set every group's rate for optimiser step ``step`` of ``total_steps``, ``elapsed`` seconds into the run."""
    progress = step / max(total_steps, 1)
    if config.max_time is not None:
        progress = max(progress, elapsed / config.max_time)
    factor = lr_factor(config, progress)
    for group in optimizer.param_groups:
        group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
