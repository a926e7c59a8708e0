"""``ns2d-kolmogorov``: 2-D Kolmogorov flow on the periodic unit square.

Vorticity forcing ``-k_f cos(k_f y)`` (body force ``(sin k_f y, 0)``) with ``k_f = 2 pi * 4``, viscosity
1e-3 and linear drag 0.1 (cf. Kochkov et al. 2021, rescaled to the unit square); initial vorticity
from the ``ns2d`` random field; ETDRK4 time stepping. Records ``vorticity(sample, time, y, x)``.
This flow is turbulent: solve at 256 or finer (``solve_resolution``) for converged statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from sciml.solvers.navier_stokes import NavierStokes2D, integrate, stable_dt

from ._common import chunked, periodic_dataset, solve_grid, step_attrs, stepping_estimate, time_span
from .ns2d import LI2021_VORTICITY_GRF, coarse_dt, initial_condition

if TYPE_CHECKING:
    import xarray as xr


def estimate(n_samples: int, resolution: int, *, times: Sequence[float] = tuple(0.5 * i for i in range(11)),
             viscosity: float = 1e-3, drag: float = 0.1, forcing_wavenumber: int = 4, solve_resolution: int | None = None,
             chunk: int = 32, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **_):
    """Memory, file size and steps of :func:`generate` with these options (:class:`sciml._budget.Estimate`)."""
    eq = NavierStokes2D(viscosity=viscosity, forcing="kolmogorov", drag=drag, forcing_wavenumber=forcing_wavenumber)
    solve_at = solve_grid(resolution, solve_resolution)
    damping = viscosity * (2 * torch.pi * forcing_wavenumber) ** 2 + drag
    step = coarse_dt(eq, solve_at, kolmogorov_speed=1.0 / damping if damping > 0 else None)
    return stepping_estimate(f"ns2d-kolmogorov: {n_samples} trajectories at {solve_at}x{solve_at}", n_samples=n_samples,
                             points=solve_at**2, output_points=resolution**2, n_times=len(times),
                             itemsize=torch.empty((), dtype=dtype).element_size(), chunk=chunk, t_span=time_span(times),
                             dt=step, device=device)


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float] = tuple(0.5 * i for i in range(11)),
    first_sample: int = 0,
    viscosity: float = 1e-3,
    drag: float = 0.1,
    forcing_wavenumber: int = 4,
    solve_resolution: int | None = None,
    chunk: int = 32,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    eq = NavierStokes2D(viscosity=viscosity, forcing="kolmogorov", drag=drag, forcing_wavenumber=forcing_wavenumber)
    solve_at = solve_grid(resolution, solve_resolution)
    damping = viscosity * (2 * torch.pi * forcing_wavenumber) ** 2 + drag
    if not damping > 0:
        raise ValueError(f"viscosity={viscosity} and drag={drag}: with neither, the forced flow has no steady state and "
                         "accelerates without bound; give viscosity > 0 or drag > 0")
    # The forced flow accelerates well beyond the initial speed: budget for the laminar-state speed too.
    laminar_speed = 1.0 / damping

    def run(start: int, count: int) -> tuple[torch.Tensor, float]:
        w0 = initial_condition(count, solve_at, seed=seed, first_sample=first_sample + start, device=device, dtype=dtype)
        dt = min(stable_dt(eq, w0), 0.5 / (solve_at * 2 * laminar_speed))
        return integrate(eq, w0, times, dt=dt, scheme="etdrk4"), dt

    trajectory, steps = chunked(run, n_samples, chunk, desc=f"ns2d-kolmogorov {solve_at}x{solve_at}", progress=progress)
    attrs = {**eq.attributes(), "scheme": "etdrk4", **step_attrs(steps, chunk), "solve_resolution": solve_at,
             **{f"ic_{k}": v for k, v in LI2021_VORTICITY_GRF.items()}}
    return periodic_dataset("vorticity", trajectory, resolution, times=times, seed=seed, first_sample=first_sample,
                            attrs=attrs, command=command)
