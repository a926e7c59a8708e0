"""Shared driver of the time-dependent solvers: step to each output time, check, record."""

from __future__ import annotations

import math
from typing import Callable, Sequence, TypeVar

import torch

from ..errors import SolverError

State = TypeVar("State")


class SolverDiverged(SolverError):
    """The state became unstable mid-run. ``frames`` holds the output frames completed before it,
    ``(batch, k, *space)``, and ``times`` their times, so a caller can keep them."""

    def __init__(self, message: str, frames: torch.Tensor | None, times: list[float]) -> None:
        super().__init__(message)
        self.frames = frames
        self.times = times


def check_times(times: Sequence[float]) -> list[float]:
    times = [float(t) for t in times]
    if not times or times[0] < 0 or any(b <= a for a, b in zip(times, times[1:])):
        raise SolverError(f"times must be non-empty, >= 0 and strictly increasing, got {times}")
    return times


def check_dt(dt: float) -> float:
    dt = float(dt)
    if not (dt > 0 and math.isfinite(dt)):
        raise SolverError(f"dt must be positive and finite, got {dt}")
    return dt


def check_finite(field: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(field).all()):
        raise SolverError(f"the initial {name} contains NaN or Inf")


def check_state(field: torch.Tensor, courant: Callable[[torch.Tensor], float], *, dt: float, t: float,
                max_courant: float, dx: float) -> None:
    """Raise :class:`SolverError` if ``field`` is non-finite or its Courant number exceeds ``max_courant``."""
    if not bool(torch.isfinite(field).all()):
        raise SolverError(f"the solution became non-finite by t={t:.6g}; reduce dt (now {dt:.3g})")
    number = courant(field)
    if number > max_courant:
        raise SolverError(f"dt={dt:.3g} violates the CFL bound at t={t:.6g}: Courant number {number:.3g} > "
                          f"{max_courant}; use dt <= {dt * max_courant / number * 0.5:.3g} (dx={dx:.3g})")


def run_to_times(
    *,
    initial: torch.Tensor,
    state: State,
    step: Callable[[State, float], State],
    observe: Callable[[State], torch.Tensor],
    check: Callable[[torch.Tensor, float, float], None],
    times: Sequence[float],
    dt: float,
    progress: bool,
    desc: str,
) -> torch.Tensor:
    """Advance ``state`` from ``t = 0`` through ``times`` and stack the observed fields on dim 1.

    Each output interval is split into equal steps no longer than ``dt`` (so outputs land exactly on
    the requested times); ``check(field, h, t)`` runs at every output time and raises on instability.
    A time of 0 records ``initial`` itself, bit for bit.
    """
    from tqdm.auto import tqdm

    starts = [0.0, *times[:-1]]
    counts = [max(1, math.ceil((b - a) / dt - 1e-9)) if b > a else 0 for a, b in zip(starts, times)]
    frames = []
    steps_done = 0
    with tqdm(total=sum(counts), desc=desc, unit="step", disable=not progress, leave=False) as bar:
        for start, stop, count in zip(starts, times, counts):
            if count == 0:
                frames.append(initial)
                continue
            h = (stop - start) / count
            for _ in range(count):
                state = step(state, h)
            steps_done += count
            bar.update(count)
            field = observe(state)
            try:
                check(field, h, stop)
            except SolverError as err:
                kept = torch.stack(frames, dim=1) if frames else None
                raise SolverDiverged(f"{err} (detected after step {steps_done}; the {len(frames)} frame(s) "
                                     f"before t={stop:.6g} are kept in .frames)", kept, times[:len(frames)]) from None
            frames.append(field)
    return torch.stack(frames, dim=1)
