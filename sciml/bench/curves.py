"""Cost-error curves: speed-up at matched accuracy and break-even query counts.

A solver run at a ladder of resolutions gives points ``(seconds per sample, relative L2 error)``.
Only the points on the **Pareto front** count (a run that is both slower and no more accurate than
another is never the one a user would pick). Along the front, cost rises and error falls; between
neighbouring front points the cost is interpolated **linearly in log-log** (a power law
``cost ~ error^s`` per segment, which is what a method of fixed order gives), so the interpolated
cost is monotone in the error.

*Speed-up at matched accuracy* is the solver cost interpolated at the surrogate's error divided by the
surrogate's cost. Outside the measured range there is no interpolated number: the result says which
side the surrogate falls on and why (a flagged power-law extrapolation of the nearest segment is
given beside it, never in its place).

*Break-even queries* is the number of queries after which training + data generation has paid for
itself: ``(training + data generation) / (solver cost at matched accuracy - surrogate cost)``, rounded
up; none when the surrogate is not cheaper per query.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

__all__ = ["CostErrorPoint", "MatchedAccuracy", "BreakEven", "pareto_front", "matched_accuracy", "breakeven"]


@dataclass(frozen=True)
class CostErrorPoint:
    """One run: its ``resolution`` (``None`` when not meaningful), cost and relative L2 error."""

    resolution: int | None
    seconds_per_sample: float
    rel_l2: float

    def __post_init__(self) -> None:
        for name in ("seconds_per_sample", "rel_l2"):
            object.__setattr__(self, name, _positive(name, getattr(self, name), what=f"run {self.resolution}"))


def _real(name: str, value: object) -> float:
    """``value`` as a float if it is a real number (numpy scalars included, bools not), else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _positive(name: str, value: object, *, what: str) -> float:
    value = _real(name, value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} of {what} must be positive and finite for a log-log curve, got {value!r}")
    return value


def _points(points: Iterable[CostErrorPoint | dict | Sequence]) -> list[CostErrorPoint]:
    out = []
    for p in points:
        if isinstance(p, CostErrorPoint):
            out.append(p)
        elif isinstance(p, dict):
            out.append(CostErrorPoint(p.get("resolution"), float(p["seconds_per_sample"]), float(p["rel_l2"])))
        else:
            out.append(CostErrorPoint(*p))
    return out


def pareto_front(points: Iterable[CostErrorPoint | dict | Sequence]) -> list[CostErrorPoint]:
    """The non-dominated points, cheapest first: cost strictly increasing, error strictly decreasing.

    A point is dropped when a cheaper (or equally cheap) point is at least as accurate.
    """
    front: list[CostErrorPoint] = []
    for p in sorted(_points(points), key=lambda q: (q.seconds_per_sample, q.rel_l2)):
        if not front or p.rel_l2 < front[-1].rel_l2:
            if front and p.seconds_per_sample == front[-1].seconds_per_sample:
                continue  # same cost, sorted by error: the first one is better
            front.append(p)
    return front


def _loglog(a: CostErrorPoint, b: CostErrorPoint, error: float) -> float:
    """Cost at ``error`` on the power law through ``a`` and ``b`` (inter- or extrapolation)."""
    slope = (math.log(b.seconds_per_sample) - math.log(a.seconds_per_sample)) / (math.log(b.rel_l2) - math.log(a.rel_l2))
    return math.exp(math.log(a.seconds_per_sample) + slope * (math.log(error) - math.log(a.rel_l2)))


@dataclass(frozen=True)
class MatchedAccuracy:
    """The solver's cost at the surrogate's error, and the speed-up it implies.

    Attributes:
        status: ``"interpolated"`` (inside the front's error range, ends included),
            ``"less_accurate_than_solver"`` (the surrogate's error is above every front point's) or
            ``"more_accurate_than_solver"`` (below every one), or ``"no_solver_points"``.
        solver_seconds_per_sample: interpolated solver cost; ``None`` unless interpolated.
        speedup: ``solver_seconds_per_sample / surrogate_seconds_per_sample``; ``None`` unless interpolated.
        reason: the reading in words (always set).
        bracket: resolutions of the two front points around the match (equal when it hits a point).
        extrapolated_solver_seconds_per_sample, extrapolated_speedup: outside the range, the
            power law of the nearest segment continued (needs two front points); flagged by name,
            never a substitute for the interpolated value.
        dominated_by: resolutions of solver runs at least as accurate **and** at least as cheap as the
            surrogate (the surrogate is not worth it against those, whatever else is true).
    """

    status: str
    surrogate_seconds_per_sample: float
    surrogate_rel_l2: float
    solver_seconds_per_sample: float | None
    speedup: float | None
    reason: str
    bracket: tuple[int | None, int | None] | None = None
    extrapolated_solver_seconds_per_sample: float | None = None
    extrapolated_speedup: float | None = None
    dominated_by: tuple[int | None, ...] = ()

    def as_dict(self) -> dict:
        out = asdict(self)
        out["bracket"] = list(self.bracket) if self.bracket is not None else None
        out["dominated_by"] = list(self.dominated_by)
        return out


def matched_accuracy(solver_points: Iterable[CostErrorPoint | dict | Sequence], *, surrogate_seconds_per_sample: float,
                     surrogate_rel_l2: float) -> MatchedAccuracy:
    """Interpolate the solver's cost (log-log, on the Pareto front) at the surrogate's error.

    See the module docstring. Points may be :class:`CostErrorPoint`, ``{resolution,
    seconds_per_sample, rel_l2}`` dicts or ``(resolution, seconds, error)`` tuples.
    """
    surrogate = CostErrorPoint(None, _positive("surrogate_seconds_per_sample", surrogate_seconds_per_sample,
                                               what="the surrogate"),
                               _positive("surrogate_rel_l2", surrogate_rel_l2, what="the surrogate"))
    points = _points(solver_points)
    dominated_by = tuple(p.resolution for p in points
                         if p.rel_l2 <= surrogate.rel_l2 and p.seconds_per_sample <= surrogate.seconds_per_sample)
    common = dict(surrogate_seconds_per_sample=surrogate.seconds_per_sample, surrogate_rel_l2=surrogate.rel_l2,
                  dominated_by=dominated_by)
    front = pareto_front(points)
    if not front:
        return MatchedAccuracy(status="no_solver_points", solver_seconds_per_sample=None, speedup=None,
                               reason="no solver runs to compare with", **common)
    err, cost = surrogate.rel_l2, surrogate.seconds_per_sample
    cheapest, finest = front[0], front[-1]
    if finest.rel_l2 <= err <= cheapest.rel_l2:
        for a, b in zip(front, front[1:] or front):
            if b.rel_l2 <= err <= a.rel_l2:
                break
        if err == a.rel_l2:
            solver, bracket = a.seconds_per_sample, (a.resolution, a.resolution)
        elif err == b.rel_l2:
            solver, bracket = b.seconds_per_sample, (b.resolution, b.resolution)
        else:
            solver, bracket = _loglog(a, b, err), (a.resolution, b.resolution)
        speedup = solver / cost
        how = f"{speedup:.3g}x faster" if speedup >= 1 else f"{1 / speedup:.3g}x slower"
        reason = (f"at the surrogate's error {err:.3g} the solver (log-log interpolation between resolutions "
                  f"{bracket[0]} and {bracket[1]}) costs {solver:.3g} s/sample; the surrogate, at {cost:.3g} s/sample, "
                  f"is {how}")
        if speedup < 1:
            reason += ": at this accuracy the solver is the better tool"
        return MatchedAccuracy(status="interpolated", solver_seconds_per_sample=solver, speedup=speedup, reason=reason,
                               bracket=bracket, **common)
    if err > cheapest.rel_l2:
        anchor, pair, status = cheapest, (front[:2] if len(front) > 1 else None), "less_accurate_than_solver"
        reason = (f"the surrogate's error {err:.3g} is above every solver run's: the cheapest solver run on the front "
                  f"(resolution {cheapest.resolution}, {cheapest.seconds_per_sample:.3g} s/sample) is already more "
                  f"accurate ({cheapest.rel_l2:.3g}); no speed-up at matched accuracy is measured")
        if cheapest.seconds_per_sample <= cost:
            reason += (f", and that solver run is also no slower than the surrogate ({cost:.3g} s/sample): "
                       "the surrogate is not worth it here")
    else:
        anchor, pair, status = finest, (front[-2:] if len(front) > 1 else None), "more_accurate_than_solver"
        reason = (f"the surrogate's error {err:.3g} is below every solver run's (the most accurate, resolution "
                  f"{finest.resolution}, reaches {finest.rel_l2:.3g} at {finest.seconds_per_sample:.3g} s/sample); "
                  "matching it needs a finer solver run than was measured")
    extrapolated = _loglog(pair[0], pair[1], err) if pair is not None else None
    if extrapolated is not None:
        reason += f" (a power-law extrapolation of the nearest segment, flagged as such, gives {extrapolated:.3g} s/sample)"
    return MatchedAccuracy(status=status, solver_seconds_per_sample=None, speedup=None, reason=reason,
                           bracket=(anchor.resolution, None) if status == "more_accurate_than_solver" else (None, anchor.resolution),
                           extrapolated_solver_seconds_per_sample=extrapolated,
                           extrapolated_speedup=extrapolated / cost if extrapolated is not None else None, **common)


@dataclass(frozen=True)
class BreakEven:
    """Queries after which the surrogate's up-front cost is repaid.

    Attributes:
        queries: the smallest whole number ``N`` with ``upfront + N surrogate <= N solver``; ``None``
            when there is none (``reason`` says why: no matched solver cost, or not cheaper per query).
        exact: ``upfront / (solver - surrogate)`` before rounding up.
        upfront_seconds: training + data generation.
        saving_per_query_seconds: ``solver - surrogate`` (may be negative).
    """

    queries: int | None
    exact: float | None
    upfront_seconds: float
    saving_per_query_seconds: float | None
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def breakeven(*, training_seconds: float, data_seconds: float, solver_seconds_per_sample: float | None,
              surrogate_seconds_per_sample: float) -> BreakEven:
    """Break-even number of queries; see :class:`BreakEven`."""
    for name, value in (("training_seconds", training_seconds), ("data_seconds", data_seconds),
                        ("surrogate_seconds_per_sample", surrogate_seconds_per_sample)):
        if not (math.isfinite(_real(name, value)) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    if solver_seconds_per_sample is not None and not (
            math.isfinite(_real("solver_seconds_per_sample", solver_seconds_per_sample)) and solver_seconds_per_sample > 0):
        raise ValueError(f"solver_seconds_per_sample must be positive and finite (or None), got {solver_seconds_per_sample!r}")
    upfront = training_seconds + data_seconds
    if solver_seconds_per_sample is None:
        return BreakEven(None, None, upfront, None, "no solver cost at matched accuracy (see the matched-accuracy reason)")
    saving = solver_seconds_per_sample - surrogate_seconds_per_sample
    if saving <= 0:
        return BreakEven(None, None, upfront, saving,
                         f"never: at matched accuracy the surrogate ({surrogate_seconds_per_sample:.3g} s/query) is not "
                         f"cheaper than the solver ({solver_seconds_per_sample:.3g} s/query)")
    exact = upfront / saving
    queries = math.ceil(exact)
    if queries > 0 and upfront + (queries - 1) * surrogate_seconds_per_sample <= (queries - 1) * solver_seconds_per_sample:
        queries -= 1  # rounding noise in the division
    return BreakEven(queries, exact, upfront, saving,
                     f"{upfront:.3g} s of training and data generation are repaid after {queries} queries, "
                     f"saving {saving:.3g} s each")
