"""Wall-clock timing that is fair across devices: warm-up, repeats, median, CUDA synchronisation."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import torch

__all__ = ["Timing", "time_call", "timed"]

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median, and min/max over ``repeats`` timed calls (``samples``: each call's time)."""

    median: float
    min: float
    max: float
    repeats: int
    samples: tuple[float, ...] = field(default=(), compare=False)


def time_call(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1, device: torch.device | str = "cpu") -> Timing:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls, synchronising CUDA around each."""
    for _ in range(warmup):
        fn()
    samples = [timed(fn, device=device)[1] for _ in range(repeats)]
    return Timing(statistics.median(samples), min(samples), max(samples), repeats, tuple(samples))


def timed(fn: Callable[[], T], *, device: torch.device | str = "cpu") -> tuple[T, float]:
    """Run ``fn()`` once; return its result and the seconds it took (CUDA synchronised)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start
