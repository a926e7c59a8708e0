"""Named dataset recipes: initial conditions + solver + output times, deterministic by seed.

Every recipe is **resolution-consistent**: sample ``i`` of seed ``s`` starts from the same continuous
initial condition at every resolution (see :mod:`sciml.random_fields`), so a solution generated at 2x
resolution is the true fine-grid counterpart of the coarse one, not an interpolation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import torch

from ..grids import Grid
from ..random_fields import gaussian_random_field
from .navier_stokes import NavierStokes2D, integrate, stable_dt

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ns2d", "ns2d_initial_condition", "ns2d_time_step", "LI2021_VORTICITY_GRF"]

# Initial vorticity of Li et al. (2021): alpha = 2.5, tau = 7, and their generator's amplitude
# sqrt(2) tau^(alpha - 1) (their code draws real and imaginary parts with the full eigenvalue).
LI2021_VORTICITY_GRF = {"alpha": 2.5, "tau": 7.0, "sigma": math.sqrt(2) * 7.0**1.5}


def ns2d_initial_condition(n_samples: int, resolution: int, *, seed: int, first_sample: int = 0,
                           device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Initial vorticity ``(n_samples, resolution, resolution)`` of Li et al. (2021), resolution-consistent."""
    return gaussian_random_field(Grid.box(resolution, resolution), n_samples, seed=seed, first_sample=first_sample,
                                 dtype=dtype, device=device, **LI2021_VORTICITY_GRF)


def ns2d_time_step(eq: NavierStokes2D, w0: torch.Tensor) -> float:
    """The recipes' time step: the CFL-based :func:`stable_dt`, capped at 0.01."""
    return min(0.01, stable_dt(eq, w0))


def ns2d(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float],
    first_sample: int = 0,
    viscosity: float = 1e-3,
    forcing: str = "li2021",
    dt: float | None = None,
    chunk: int = 64,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    """2-D Navier-Stokes trajectories from Li et al. (2021) initial conditions.

    Args:
        n_samples: trajectories, numbered ``first_sample, first_sample + 1, ...``.
        resolution: grid points per side of the unit square.
        seed: master seed of the initial conditions.
        times: output times (``0`` records the initial condition).
        viscosity, forcing: see :class:`NavierStokes2D`.
        dt: time step; ``None`` picks :func:`ns2d_time_step` from the first chunk.
        chunk: samples integrated together (bounds memory).
        device, dtype: where and in which precision to solve.
        command: the generating command, recorded in the ``history`` attribute.

    Returns:
        ``vorticity(sample, time, y, x)`` with the parameters as attributes.
    """
    from tqdm.auto import tqdm

    from ..data.netcdf import trajectory_dataset

    eq = NavierStokes2D(viscosity=viscosity, forcing=forcing)
    grid = Grid.box(resolution, resolution)
    pieces = []
    chosen_dt = dt
    with tqdm(total=n_samples, desc=f"ns2d {resolution}x{resolution}", unit="sample", disable=not progress, leave=False) as bar:
        for start in range(0, n_samples, chunk):
            count = min(chunk, n_samples - start)
            w0 = ns2d_initial_condition(count, resolution, seed=seed, first_sample=first_sample + start,
                                        device=device, dtype=dtype)
            if chosen_dt is None:
                chosen_dt = ns2d_time_step(eq, w0)
            pieces.append(integrate(eq, w0, times, dt=chosen_dt).cpu())
            bar.update(count)
    coords = {name: torch.from_numpy(values) for name, values in grid.coords().items()}
    attrs = {**eq.attributes(), "dt": chosen_dt, "seed": seed,
             "first_sample": first_sample, "initial_condition": "gaussian_random_field",
             **{f"ic_{k}": v for k, v in LI2021_VORTICITY_GRF.items()}}
    if command:
        attrs["history"] = command
    ds = trajectory_dataset({"vorticity": torch.cat(pieces)}, times=times, coords=coords, attrs=attrs)
    return ds.assign_coords(sample=ds["sample"] + first_sample)
