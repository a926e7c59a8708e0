"""Shared pieces of the solvers: the driver of the time-dependent ones (step to each output time, check,
record), the per-equation operator cache, and the check of a closure's output."""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from typing import Callable, Hashable, Sequence, TypeVar

import torch

from ..errors import SolverError

State = TypeVar("State")
Value = TypeVar("Value")

Closure = Callable[[torch.Tensor, float], torch.Tensor]


class OperatorCache:
    """Derived operators of one equation object (spectral multipliers, step coefficients), keyed by grid,
    step, dtype and device. Holds at most ``max_entries``, dropping the least recently used, so that adaptive
    steps cannot grow it without bound; it dies with its equation and pickles (and copies) empty."""

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int = 8) -> None:
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self.max_entries = max_entries

    def __call__(self, key: Hashable, build: Callable[[], Value]) -> Value:
        """The entry for ``key``, built by ``build()`` on a miss."""
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
        value = build()
        entries[key] = value
        if len(entries) > self.max_entries:
            entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def __reduce__(self):
        return type(self), (self.max_entries,)


def closure_tendency(closure: Closure, state: torch.Tensor, t: float) -> torch.Tensor:
    """``closure(state, t)``, refused unless a tensor of the state's shape, dtype and device."""
    out = closure(state, t)
    if not isinstance(out, torch.Tensor) or (out.shape, out.dtype, out.device) != (state.shape, state.dtype,
                                                                                   state.device):
        got = f"{tuple(out.shape)} {out.dtype} on {out.device}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise SolverError(f"closure(state, t) must return the tendency as a tensor like the state, "
                          f"{tuple(state.shape)} {state.dtype} on {state.device}; got {got}")
    return out


def closure_attrs(closure: Closure | None) -> dict:
    """``{"closure": qualified name}`` for a dataset solved with a closure, else ``{}``."""
    if closure is None:
        return {}
    name = getattr(closure, "__qualname__", type(closure).__qualname__)
    return {"closure": f"{getattr(closure, '__module__', None) or type(closure).__module__}.{name}"}


class SolverDiverged(SolverError):
    """The state became unstable mid-run. ``frames`` holds the output frames completed before it,
    ``(batch, k, *space)``, and ``times`` their times, so a caller can keep them. When the state became
    non-finite, ``step`` is the first step (counted from 1 over the whole run) whose result is NaN/Inf and
    ``time`` the time that step reached; both are ``None`` when the run stopped for the CFL bound."""

    def __init__(self, message: str, frames: torch.Tensor | None, times: list[float], *, step: int | None = None,
                 time: float | None = None) -> None:
        super().__init__(message)
        self.frames = frames
        self.times = times
        self.step = step
        self.time = time

    def __reduce__(self):  # keyword fields survive pickling (errors raised in worker processes)
        return type(self), (str(self), self.frames, self.times), self.__dict__


def check_times(times: Sequence[float]) -> list[float]:
    times = [float(t) for t in times]
    if not all(math.isfinite(t) for t in times):
        raise SolverError(f"times must be finite, got {times}")
    if not times or times[0] < 0 or any(b <= a for a, b in zip(times, times[1:])):
        raise SolverError(f"times must be non-empty, >= 0 and strictly increasing, got {times}")
    return times


def check_dt(dt: float) -> float:
    """``dt`` as a float if it is a positive finite number (not a bool); :class:`SolverError` otherwise."""
    if isinstance(dt, bool) or not isinstance(dt, numbers.Real) or not (dt > 0 and math.isfinite(dt)):
        raise SolverError(f"dt must be a positive finite number, got {dt!r}")
    return float(dt)


def check_field(field: torch.Tensor, name: str, shape: str) -> None:
    """A real float32/float64 initial field with at least one sample; ``shape`` names the layout for the message."""
    if field.dtype not in (torch.float32, torch.float64):
        raise SolverError(f"{name} must be float32 or float64, got {field.dtype} (shape {shape})")
    if field.shape[0] == 0:
        raise SolverError(f"{name} has no samples: shape {tuple(field.shape)}, expected {shape} with batch >= 1")


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
    step: Callable[[State, float, float], State],
    observe: Callable[[State], torch.Tensor],
    check: Callable[[torch.Tensor, float, float], None],
    times: Sequence[float],
    dt: float | Callable[[torch.Tensor], float],
    progress: bool,
    desc: str,
    steps_taken: list[tuple[float, int]] | None = None,
) -> torch.Tensor:
    """Advance ``state`` from ``t = 0`` through ``times`` and stack the observed fields on dim 1.

    ``step(state, t, h)`` advances ``state`` from time ``t`` by ``h``. Each output interval is split into
    equal steps no longer than ``dt`` (so outputs land exactly on the requested times); a callable
    ``dt(field)`` gives that bound from the field at the start of each interval (adaptive stepping).
    ``steps_taken``, when given, receives ``(h, count)`` per interval. At every output time the field is
    checked for NaN/Inf, then by ``check(field, h, t)``, which raises on instability. A non-finite field
    re-runs its interval from the last good state one step at a time, so :class:`SolverDiverged` names the
    first non-finite step and its time; checking only at output times keeps the common, stable case free
    of per-step host synchronisation. A time of 0 records ``initial`` itself, bit for bit.
    """
    from tqdm.auto import tqdm

    starts = [0.0, *times[:-1]]
    adaptive = callable(dt)
    total = None if adaptive else sum(_split(b - a, dt)[0] for a, b in zip(starts, times) if b > a)
    frames, field, steps_done = [], initial, 0
    with tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False) as bar:
        for start, stop in zip(starts, times):
            if stop == start:
                frames.append(initial)
                continue
            count, h = _split(stop - start, dt(field) if adaptive else dt)
            if steps_taken is not None:
                steps_taken.append((h, count))
            begin = state
            for k in range(count):
                state = step(state, start + k * h, h)
            field = observe(state)
            if not bool(torch.isfinite(field).all()):
                first = _first_non_finite(begin, step, observe, start, h, count)
                number, reached = steps_done + first, start + first * h
                raise _diverged(f"the solution became non-finite at step {number} (t={reached:.6g}, dt={h:.3g}); "
                                f"reduce dt", frames, times, stop, step=number, time=reached)
            try:
                check(field, h, stop)
            except SolverError as err:
                raise _diverged(f"{err} (detected after step {steps_done + count})", frames, times, stop) from None
            steps_done += count
            bar.update(count)
            frames.append(field)
    return torch.stack(frames, dim=1)


def _diverged(message: str, frames: list[torch.Tensor], times: Sequence[float], stop: float, *,
              step: int | None = None, time: float | None = None) -> SolverDiverged:
    kept = torch.stack(frames, dim=1) if frames else None
    return SolverDiverged(f"{message}; the {len(frames)} frame(s) before t={stop:.6g} are kept in .frames", kept,
                          list(times[:len(frames)]), step=step, time=time)


def _split(length: float, dt: float) -> tuple[int, float]:
    """``(count, h)``: the fewest equal steps ``h <= dt`` covering ``length > 0``."""
    count = max(1, math.ceil(length / dt - 1e-9))
    return count, length / count


def _first_non_finite(state: State, step: Callable[[State, float, float], State],
                      observe: Callable[[State], torch.Tensor], start: float, h: float, count: int) -> int:
    """Re-run ``count`` steps of ``h`` from ``state`` at time ``start``; the first (from 1) whose observed field
    has NaN/Inf."""
    for k in range(1, count + 1):
        state = step(state, start + (k - 1) * h, h)
        if not bool(torch.isfinite(observe(state)).all()):
            return k
    return count  # not reproduced (a non-deterministic device): the step where it was detected
