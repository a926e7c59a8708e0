"""``burgers``: 1-D viscous Burgers on [0, 1), initial conditions of Li et al. (2021).

``u0 ~ N(0, 625 (-Laplacian + 25 I)^(-2))`` (alpha 2, tau 5, sigma 25), viscosity 0.1 by default or
one log-uniform viscosity per sample (``viscosity_range``, for coefficient discovery); ETDRK4 at a
fine internal resolution (default 1024 points, like Li et al.'s subsampled 8192) truncated spectrally.
Records ``u(sample, time, x)`` and ``viscosity(sample)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from sciml.grids import Grid
from sciml.random_fields import gaussian_random_field
from sciml.solvers.burgers import Burgers1D, integrate, stable_dt

from ._common import chunked, periodic_dataset, solve_grid, step_attrs, stepping_estimate, time_span

if TYPE_CHECKING:
    import xarray as xr

LI2021_BURGERS_GRF = {"alpha": 2.0, "tau": 5.0, "sigma": 25.0}
DEFAULT_VISCOSITY = 0.1


def viscosities(n_samples: int, *, seed: int, first_sample: int, viscosity: float | None,
                viscosity_range: tuple[float, float] | None) -> tuple[float, ...]:
    """One viscosity per sample: fixed (``None``: :data:`DEFAULT_VISCOSITY`), or log-uniform in
    ``viscosity_range`` from the sample's own stream; giving both is refused (one would be ignored)."""
    if viscosity_range is None:
        return (float(DEFAULT_VISCOSITY if viscosity is None else viscosity),) * n_samples
    if viscosity is not None:
        raise ValueError(f"viscosity={viscosity} and viscosity_range={tuple(viscosity_range)} are both given: one "
                         "viscosity for every sample, or one per sample drawn from the range; drop one of them")
    low, high = viscosity_range
    if not 0 < low <= high:
        raise ValueError(f"viscosity_range must satisfy 0 < low <= high, got {viscosity_range}")
    values = []
    for i in range(first_sample, first_sample + n_samples):
        stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i, 1)))  # independent of the IC stream
        values.append(math.exp(stream.uniform(math.log(low), math.log(high))))
    return tuple(values)


def estimate(n_samples: int, resolution: int, *, times: Sequence[float] = (0.0, 1.0), solve_resolution: int | None = None,
             chunk: int = 256, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64, **_):
    """Memory, file size and steps of :func:`generate` with these options (:class:`sciml._budget.Estimate`); the
    CFL step ``0.5 dx / max|u0|`` from one initial condition on 1024 points (``dx`` scales it)."""
    solve_at = solve_grid(resolution, solve_resolution, default=max(resolution, 1024))
    u0 = gaussian_random_field(Grid.box(1024), 1, seed=0, dtype=torch.float64, **LI2021_BURGERS_GRF)
    step = stable_dt(Burgers1D(viscosity=DEFAULT_VISCOSITY), u0) * 1024 / solve_at
    return stepping_estimate(f"burgers: {n_samples} trajectories on {solve_at} points", n_samples=n_samples,
                             points=solve_at, output_points=resolution, n_times=len(times),
                             itemsize=torch.empty((), dtype=dtype).element_size(), chunk=chunk, t_span=time_span(times),
                             dt=step, device=device)


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float] = (0.0, 1.0),
    first_sample: int = 0,
    viscosity: float | None = None,
    viscosity_range: tuple[float, float] | None = None,
    solve_resolution: int | None = None,
    chunk: int = 256,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    nus = viscosities(n_samples, seed=seed, first_sample=first_sample, viscosity=viscosity, viscosity_range=viscosity_range)
    solve_at = solve_grid(resolution, solve_resolution, default=max(resolution, 1024))

    def run(start: int, count: int) -> tuple[torch.Tensor, float]:
        u0 = gaussian_random_field(Grid.box(solve_at), count, seed=seed, first_sample=first_sample + start,
                                   dtype=dtype, device=device, **LI2021_BURGERS_GRF)
        eq = Burgers1D(viscosity=nus[start:start + count])
        dt = stable_dt(eq, u0)
        return integrate(eq, u0, times, dt=dt), dt

    trajectory, steps = chunked(run, n_samples, chunk, desc=f"burgers {solve_at}", progress=progress)
    attrs = {**Burgers1D(viscosity=nus[0]).attributes(), **step_attrs(steps, chunk), "solve_resolution": solve_at,
             **{f"ic_{k}": v for k, v in LI2021_BURGERS_GRF.items()}}
    ds = periodic_dataset("u", trajectory, resolution, times=times, seed=seed, first_sample=first_sample,
                          attrs=attrs, command=command)
    return ds.assign_coords(viscosity=("sample", list(nus), {"long_name": "kinematic viscosity", "units": "1"}))
