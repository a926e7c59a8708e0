"""Solutions with known coefficients, for learning and probing coefficient discovery.

Coefficients are drawn per *group* of ``trajectories_per_group`` trajectories (independent initial conditions
that share them), so that positive pairs may come from different trajectories of one group
(:func:`sciml.jepa.views.partners`). They are stored as coordinates along ``sample`` (``viscosity``,
``forcing_amplitude``, and ``group``), to be read only by probes and baselines (``parameters=[...]`` items of
:mod:`sciml.data.loaders`), never by the encoder. Draws are deterministic in ``seed``: the initial condition
of sample ``i`` is that of sample ``i`` of the recipes (:mod:`sciml.datasets.burgers`, :mod:`sciml.datasets.ns2d`),
and the coefficients of group ``g`` come from its own stream (``SeedSequence(seed, spawn_key=(g, key))``), the
viscosity's with the key the Burgers recipe uses (so that one trajectory per group reproduces
``generate("burgers", ..., viscosity_range=...)``).

* :func:`burgers_dataset`: 1-D viscous Burgers with log-uniform viscosity, ``u(sample, time, x)``, solved as
  one batch with per-sample viscosities (the solver takes them) and refused where the grid does not resolve
  the fronts.
* :func:`navier_stokes_dataset`: 2-D Navier-Stokes (Li et al. 2021 setting) with log-uniform viscosity and
  forcing amplitude ``A`` of ``A (sin 2 pi (x + y) + cos 2 pi (x + y))``, ``vorticity(sample, time, y, x)``; the
  solver takes one viscosity, so each group is one batch, and the forcing enters as the closure
  :class:`SteadyForcing`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..errors import ConfigError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["burgers_dataset", "navier_stokes_dataset", "SteadyForcing", "BURGERS_VISCOSITY_RANGE", "BURGERS_TIMES",
           "NS_VISCOSITY_RANGE", "NS_FORCING_RANGE", "NS_TIMES", "LI2021_FORCING_AMPLITUDE"]

#: Default Burgers viscosities: the fronts of the Li et al. initial conditions (peak speed up to 2.7 over 4096
#: draws) are resolved on the default 1024 solve points down to ``nu = 1.3e-3``.
BURGERS_VISCOSITY_RANGE = (2e-3, 1e-1)
BURGERS_TIMES = tuple(k / 40 for k in range(41))
#: Default Navier-Stokes coefficients; at 64 x 64 the enstrophy at the 2/3-rule cutoff is below 1e-10 of the total
#: for ``nu = 1e-3, A = 0.2`` at ``t = 20`` (1e-5 at ``nu = 3e-4``: resolve lower viscosities on a finer grid).
NS_VISCOSITY_RANGE = (1e-3, 1e-2)
NS_FORCING_RANGE = (0.05, 0.2)
NS_TIMES = tuple(0.5 * k for k in range(41))
#: Amplitude of the forcing of Li et al. (2021), ``NavierStokes2D(forcing="li2021")``.
LI2021_FORCING_AMPLITUDE = 0.1

_VISCOSITY_KEY, _FORCING_KEY = 1, 2  # spawn keys of the coefficient streams (1: the Burgers recipe's viscosity)
# Resolved fronts: max|u| dx / nu <= 2 (the Burgers solver's total-variation check, measured at 1024 points).
_CELL_REYNOLDS = 2.0


@dataclass(frozen=True, eq=False)
class SteadyForcing:
    """A steady forcing field as the ``closure(w, t)`` of :class:`sciml.solvers.navier_stokes.NavierStokes2D`.

    ``field`` is ``(n, n)`` (one forcing) or ``(batch, n, n)`` (one per sample), laid out ``(y, x)``; it is added
    to the right-hand side (dealiased with the advection). With ``forcing="none"`` in the equation it is the whole
    forcing, e.g. a transformed one (:func:`sciml.jepa.symmetries.vorticity_symmetry`).
    """

    field: torch.Tensor

    def __call__(self, w: torch.Tensor, t: float) -> torch.Tensor:
        return self.field.to(dtype=w.dtype, device=w.device).expand_as(w)


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _log_uniform(n_groups: int, value_range: tuple[float, float], *, seed: int, key: int, name: str) -> tuple[float, ...]:
    """One log-uniform value per group from the group's own stream."""
    low, high = (float(v) for v in value_range)
    if not (math.isfinite(high) and 0 < low <= high):
        raise ConfigError(f"{name} must satisfy 0 < low <= high, got {tuple(value_range)}")
    values = []
    for group in range(n_groups):
        stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(group, key)))
        values.append(math.exp(stream.uniform(math.log(low), math.log(high))))
    return tuple(values)


def _with_coefficients(ds: xr.Dataset, coefficients: dict[str, tuple[tuple[float, ...], dict]],
                       trajectories_per_group: int) -> xr.Dataset:
    n = ds.sizes["sample"]
    coords = {name: ("sample", np.repeat(values, trajectories_per_group), attrs)
              for name, (values, attrs) in coefficients.items()}
    coords["group"] = ("sample", np.arange(n) // trajectories_per_group,
                       {"long_name": "coefficient set (samples of one group share their coefficients)", "units": "1"})
    return ds.assign_coords(coords)


_VISCOSITY_ATTRS = {"long_name": "kinematic viscosity", "units": "1"}


def burgers_dataset(
    n_groups: int,
    resolution: int,
    *,
    seed: int,
    trajectories_per_group: int = 1,
    viscosity_range: tuple[float, float] = BURGERS_VISCOSITY_RANGE,
    times: Sequence[float] = BURGERS_TIMES,
    solve_resolution: int | None = None,
    chunk: int = 256,
    courant: float = 0.5,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
) -> xr.Dataset:
    """Viscous Burgers on ``[0, 1)`` with one log-uniform viscosity per group of trajectories.

    Initial conditions and solver as the ``burgers`` recipe (Li et al. 2021 GRF, ETDRK4 at ``solve_resolution``,
    default ``max(resolution, 1024)``, truncated spectrally to ``resolution``), ``chunk`` samples per batch, the
    solver step ``courant * dx / max|u0|`` per batch (:func:`sciml.solvers.burgers.stable_dt`; ``courant`` in
    ``(0, 1]``, the recipe's 0.5 by default; a smaller one gives another time step for robustness checks).

    Returns:
        ``u(sample, time, x)`` with ``n_groups * trajectories_per_group`` samples (group-major) and the
        coordinates ``viscosity(sample)`` and ``group(sample)``.

    Raises:
        ConfigError: bad counts or range, or a range reaching below ``max|u0| dx / 2`` for the initial
            conditions of a batch (fronts the solve grid cannot resolve), checked before each batch is solved.
    """
    from ..datasets._common import chunked, periodic_dataset, solve_grid, step_attrs
    from ..datasets.burgers import LI2021_BURGERS_GRF
    from ..grids import Grid
    from ..random_fields import gaussian_random_field
    from ..solvers.burgers import Burgers1D, integrate, stable_dt

    n_groups = _count(n_groups, "n_groups")
    per_group = _count(trajectories_per_group, "trajectories_per_group")
    if isinstance(courant, bool) or not isinstance(courant, numbers.Real) or not 0 < courant <= 1:
        raise ConfigError(f"courant must be a number in (0, 1], got {courant!r}")
    group_viscosity = _log_uniform(n_groups, viscosity_range, seed=seed, key=_VISCOSITY_KEY, name="viscosity_range")
    viscosity = np.repeat(group_viscosity, per_group)
    solve_at = solve_grid(resolution, solve_resolution, default=max(resolution, 1024))

    def run(start: int, count: int) -> tuple[torch.Tensor, float]:
        u0 = gaussian_random_field(Grid.box(solve_at), count, seed=seed, first_sample=start, dtype=dtype,
                                   device=device, **LI2021_BURGERS_GRF)
        needed = float(u0.abs().max()) / (solve_at * _CELL_REYNOLDS)
        if min(viscosity_range) < needed:
            raise ConfigError(f"viscosity_range {tuple(viscosity_range)} is not resolved on {solve_at} points: samples "
                              f"{start}..{start + count - 1} reach max|u0| = {float(u0.abs().max()):.3g}, so fronts need "
                              f"nu >= max|u0| dx / {_CELL_REYNOLDS:g} = {needed:.3g}; raise the low end or "
                              f"solve_resolution")
        eq = Burgers1D(viscosity=tuple(viscosity[start:start + count]))
        dt = stable_dt(eq, u0, courant=float(courant))
        return integrate(eq, u0, times, dt=dt), dt

    trajectory, steps = chunked(run, n_groups * per_group, chunk, desc=f"burgers {solve_at}", progress=progress)
    attrs = {**Burgers1D(viscosity=1.0).attributes(), **step_attrs(steps, chunk), "solve_resolution": solve_at,
             **{f"ic_{k}": v for k, v in LI2021_BURGERS_GRF.items()}, "viscosity_range": list(viscosity_range),
             "trajectories_per_group": per_group, "coefficients": "viscosity"}
    ds = periodic_dataset("u", trajectory, resolution, times=times, seed=seed, first_sample=0, attrs=attrs, command=None)
    return _with_coefficients(ds, {"viscosity": (group_viscosity, _VISCOSITY_ATTRS)}, per_group)


def navier_stokes_dataset(
    n_groups: int,
    resolution: int,
    *,
    seed: int,
    trajectories_per_group: int = 1,
    viscosity_range: tuple[float, float] = NS_VISCOSITY_RANGE,
    forcing_range: tuple[float, float] = NS_FORCING_RANGE,
    times: Sequence[float] = NS_TIMES,
    solve_resolution: int | None = None,
    dt: float | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> xr.Dataset:
    """2-D Navier-Stokes on the unit square with one log-uniform ``(nu, A)`` per group of trajectories.

    ``w_t + u . grad w = nu Laplacian w + A (sin 2 pi (x + y) + cos 2 pi (x + y))``: the ``ns2d`` recipe's
    initial vorticity and Crank-Nicolson/Heun scheme, with the forcing of amplitude ``A`` as a
    :class:`SteadyForcing` closure (``A = 0.1`` is ``forcing="li2021"``, identical in exact arithmetic). Each
    group is solved as one batch at ``solve_resolution`` (default ``resolution``) and truncated spectrally. The
    step, unless ``dt`` is given, is the recipe's (``min(0.01, stable_dt)`` for the Li forcing) times
    ``min(1, sqrt(0.1 / A))``, since the forcing's own step limit scales as ``A^(-1/2)``.

    Returns:
        ``vorticity(sample, time, y, x)`` with ``n_groups * trajectories_per_group`` samples (group-major) and
        the coordinates ``viscosity``, ``forcing_amplitude`` and ``group`` along ``sample``.
    """
    from ..datasets._common import check_dt, chunked, periodic_dataset, solve_grid, step_attrs
    from ..datasets.ns2d import LI2021_VORTICITY_GRF, initial_condition, time_step
    from ..solvers.navier_stokes import NavierStokes2D, integrate

    n_groups = _count(n_groups, "n_groups")
    per_group = _count(trajectories_per_group, "trajectories_per_group")
    viscosity = _log_uniform(n_groups, viscosity_range, seed=seed, key=_VISCOSITY_KEY, name="viscosity_range")
    amplitude = _log_uniform(n_groups, forcing_range, seed=seed, key=_FORCING_KEY, name="forcing_range")
    solve_at = solve_grid(resolution, solve_resolution)
    try:
        dt = check_dt(dt)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    li2021 = NavierStokes2D(viscosity=0.0, forcing="li2021")
    shape = li2021.forcing_field(solve_at, dtype=torch.float64, device=device) / LI2021_FORCING_AMPLITUDE

    def run(start: int, count: int) -> tuple[torch.Tensor, float]:
        group = start // per_group
        w0 = initial_condition(count, solve_at, seed=seed, first_sample=start, device=device, dtype=dtype)
        step = dt
        if step is None:
            slower = min(1.0, math.sqrt(LI2021_FORCING_AMPLITUDE / amplitude[group]))
            step = time_step(NavierStokes2D(viscosity=viscosity[group]), w0) * slower
        eq = NavierStokes2D(viscosity=viscosity[group], forcing="none")
        closure = SteadyForcing((amplitude[group] * shape).to(dtype))
        return integrate(eq, w0, times, dt=step, closure=closure), step

    trajectory, steps = chunked(run, n_groups * per_group, per_group, desc=f"ns2d {solve_at}x{solve_at}",
                                progress=progress)
    equation = {k: v for k, v in NavierStokes2D(viscosity=1.0).attributes().items() if k not in ("viscosity", "forcing")}
    attrs = {**equation, "forcing": "forcing_amplitude * (sin 2 pi (x + y) + cos 2 pi (x + y))", "scheme": "cn-heun",
             **step_attrs(steps, per_group), "solve_resolution": solve_at,
             **{f"ic_{k}": v for k, v in LI2021_VORTICITY_GRF.items()}, "viscosity_range": list(viscosity_range),
             "forcing_range": list(forcing_range), "trajectories_per_group": per_group,
             "coefficients": "viscosity forcing_amplitude"}
    ds = periodic_dataset("vorticity", trajectory, resolution, times=times, seed=seed, first_sample=0, attrs=attrs,
                          command=None)
    forcing_attrs = {"long_name": "forcing amplitude A of A (sin 2 pi (x + y) + cos 2 pi (x + y))", "units": "1"}
    return _with_coefficients(ds, {"viscosity": (viscosity, _VISCOSITY_ATTRS),
                                   "forcing_amplitude": (amplitude, forcing_attrs)}, per_group)
