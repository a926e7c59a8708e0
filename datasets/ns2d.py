"""``ns2d``: 2-D Navier-Stokes, nu = 1e-3, forcing and initial vorticity of Li et al. (2021).

Initial vorticity ~ GRF(alpha 2.5, tau 7) on the periodic unit square; forcing
``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``; Crank-Nicolson/Heun time stepping as in their generator;
records ``vorticity(sample, time, y, x)`` at ``times`` (default 0, 1, ..., 50).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import torch

from sciml.grids import Grid
from sciml.random_fields import gaussian_random_field
from sciml.solvers.navier_stokes import NavierStokes2D, integrate, stable_dt

from ._common import check_dt, chunked, periodic_dataset, solve_grid, step_attrs, stepping_estimate, time_span

if TYPE_CHECKING:
    import xarray as xr

# Initial vorticity of Li et al. (2021): alpha = 2.5, tau = 7, and their generator's amplitude
# sqrt(2) tau^(alpha - 1) (their code draws real and imaginary parts with the full eigenvalue).
LI2021_VORTICITY_GRF = {"alpha": 2.5, "tau": 7.0, "sigma": math.sqrt(2) * 7.0**1.5}
DEFAULT_TIMES = tuple(float(t) for t in range(51))


def initial_condition(n_samples: int, resolution: int, *, seed: int, first_sample: int = 0,
                      device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Initial vorticity ``(n_samples, resolution, resolution)``, resolution-consistent."""
    return gaussian_random_field(Grid.box(resolution, resolution), n_samples, seed=seed, first_sample=first_sample,
                                 dtype=dtype, device=device, **LI2021_VORTICITY_GRF)


def time_step(eq: NavierStokes2D, w0: torch.Tensor) -> float:
    """The CFL-based :func:`stable_dt`, capped at 0.01."""
    return min(0.01, stable_dt(eq, w0))


def coarse_dt(eq: NavierStokes2D, resolution: int, *, kolmogorov_speed: float | None = None) -> float:
    """The step :func:`time_step` takes at ``resolution``, estimated from one 32x32 initial condition (the CFL
    step scales as ``1 / resolution``; the initial flow is the same continuous field at every resolution)."""
    coarse = 32
    w0 = initial_condition(1, coarse, seed=0, dtype=torch.float64)
    dt = stable_dt(eq, w0) * coarse / resolution
    if kolmogorov_speed is not None:
        dt = min(dt, 0.5 / (resolution * 2 * kolmogorov_speed))
    return dt


def estimate(n_samples: int, resolution: int, *, times: Sequence[float] = DEFAULT_TIMES, viscosity: float = 1e-3,
             solve_resolution: int | None = None, dt: float | None = None, chunk: int = 64,
             device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **_):
    """Memory, file size and steps of :func:`generate` with these options (:class:`sciml._budget.Estimate`)."""
    eq = NavierStokes2D(viscosity=viscosity, forcing="li2021")
    solve_at = solve_grid(resolution, solve_resolution)
    step = min(0.01, coarse_dt(eq, solve_at)) if dt is None else dt
    return stepping_estimate(f"ns2d: {n_samples} trajectories at {solve_at}x{solve_at}", n_samples=n_samples,
                             points=solve_at**2, output_points=resolution**2, n_times=len(times),
                             itemsize=torch.empty((), dtype=dtype).element_size(), chunk=chunk, t_span=time_span(times),
                             dt=step, device=device)


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float] = DEFAULT_TIMES,
    first_sample: int = 0,
    viscosity: float = 1e-3,
    solve_resolution: int | None = None,
    dt: float | None = None,
    chunk: int = 64,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    """Trajectories numbered ``first_sample, ...``; solved at ``solve_resolution`` (default: the
    output resolution) and spectrally truncated to ``resolution``. ``dt=None`` uses :func:`time_step`, one
    step per chunk of samples: ``attrs["dt"]`` is one number, or one per chunk with ``attrs["chunk"]``."""
    eq = NavierStokes2D(viscosity=viscosity, forcing="li2021")
    solve_at = solve_grid(resolution, solve_resolution)
    dt = check_dt(dt)

    def run(start: int, count: int) -> tuple[torch.Tensor, float]:
        w0 = initial_condition(count, solve_at, seed=seed, first_sample=first_sample + start, device=device, dtype=dtype)
        step = time_step(eq, w0) if dt is None else dt
        return integrate(eq, w0, times, dt=step), step

    trajectory, steps = chunked(run, n_samples, chunk, desc=f"ns2d {solve_at}x{solve_at}", progress=progress)
    attrs = {**eq.attributes(), "scheme": "cn-heun", **step_attrs(steps, chunk), "solve_resolution": solve_at,
             **{f"ic_{k}": v for k, v in LI2021_VORTICITY_GRF.items()}}
    return periodic_dataset("vorticity", trajectory, resolution, times=times, seed=seed, first_sample=first_sample,
                            attrs=attrs, command=command)
