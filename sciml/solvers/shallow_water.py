"""Rotating shallow water on the sphere, through torch-harmonics' spectral solver.

The equations in vorticity-divergence form on a sphere of radius ``a`` rotating at ``Omega``
(Williamson et al. 1992), integrated spectrally by ``torch_harmonics.examples.ShallowWaterSolver``:
spherical-harmonic transforms on an equiangular grid, third-order Adams-Bashforth with implicit
hyperdiffusion of vorticity and divergence. Initial conditions: the barotropically unstable jet of
Galewsky, Scott & Polvani (2004, Tellus 56A) or random fields. Output: ``height``,
``eastward_velocity``, ``northward_velocity`` over ``(sample, time, lat, lon)`` with latitude
**ascending** (the solver's native order is descending; the flip is recorded in the attributes).
torch-harmonics is imported only when a solve runs.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from .._optional import require_torch_harmonics
from ..errors import SolverError
from ._stepping import check_times

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["solve", "invariants"]

INITIAL_CONDITIONS = ("galewsky", "random")


def _solver(nlat: int, nlon: int, dt: float, device):
    require_torch_harmonics("the shallow-water solver")
    from torch_harmonics.examples import ShallowWaterSolver

    return ShallowWaterSolver(nlat, nlon, dt, lmax=nlat, mmax=nlat, grid="equiangular").to(device).double()


def invariants(solver, uspec: torch.Tensor) -> tuple[float, float]:
    """``(mass, energy)``: integrals of ``phi`` and of ``(phi |u|^2 + phi^2 / g) / 2`` over the sphere."""
    ugrid = solver.gethuv(uspec)  # (3, lat, lon): phi, u, v
    phi, uv = solver.spec2grid(uspec[:1])[0], ugrid[1:]
    mass = float(solver.integrate_grid(phi))
    energy = float(solver.integrate_grid(0.5 * (phi * (uv**2).sum(0) + phi**2 / solver.gravity)))
    return mass, energy


def solve(
    n_samples: int,
    nlat: int,
    nlon: int,
    *,
    times_hours: Sequence[float],
    dt: float = 150.0,
    initial_condition: str = "galewsky",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> xr.Dataset:
    """Integrate ``n_samples`` runs and record them at ``times_hours`` (0 records the initial state).

    Args:
        nlat, nlon: equiangular grid (poles included), e.g. 64 x 128 or 256 x 512.
        dt: time step in seconds; must satisfy ``dt <= 0.7 a / (c lmax)`` with ``c = sqrt(g H)`` (about
            229 s at 64 x 128, 57 s at 256 x 512).
        initial_condition: ``"galewsky"`` (identical for all samples) or ``"random"`` (seeded per sample).
    """
    from tqdm.auto import tqdm

    from ..data.cf import trajectory_dataset

    if initial_condition not in INITIAL_CONDITIONS:
        raise SolverError(f"initial_condition must be one of {INITIAL_CONDITIONS}, got {initial_condition!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise SolverError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    if nlat < 8 or nlon < nlat:
        raise SolverError(f"need nlat >= 8 and nlon >= nlat, got {nlat} x {nlon}")
    if not (dt > 0 and math.isfinite(dt)):
        raise SolverError(f"dt must be positive seconds, got {dt}")
    times = check_times(times_hours)
    solver = _solver(nlat, nlon, dt, device)
    # Gravity waves at the truncation degree oscillate at c sqrt(l (l + 1)) / a ~ c lmax / a; Adams-Bashforth 3
    # is stable on the imaginary axis up to about 0.72.
    wave_speed = math.sqrt(float(solver.gravity) * float(solver.havg))
    limit = 0.7 * float(solver.radius) / (wave_speed * solver.lmax)
    if dt > limit:
        raise SolverError(f"dt={dt:g} s violates the gravity-wave stability bound; use dt <= {limit:.0f} s for {nlat} x {nlon}")
    steps = [round((b - a) * 3600 / dt) for a, b in zip([0.0, *times[:-1]], times)]
    if any(abs(s * dt - (b - a) * 3600) > 1e-6 * dt for s, a, b in zip(steps, [0.0, *times[:-1]], times)):
        raise SolverError(f"output intervals must be whole multiples of dt={dt:g} s")
    fields = np.empty((n_samples, len(times), 3, nlat, nlon))
    with tqdm(total=n_samples * sum(steps), desc=f"shallow water {nlat}x{nlon}", unit="step",
              disable=not progress, leave=False) as bar:
        for i in range(n_samples):
            if initial_condition == "galewsky":
                with warnings.catch_warnings():  # local: torch-harmonics calls meshgrid without indexing=
                    warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)
                    uspec = solver.galewsky_initial_condition()
            else:
                torch.manual_seed(seed * 1_000_003 + i)  # the example draws from torch's global generator
                uspec = solver.random_initial_condition()
            for k, count in enumerate(steps):
                if count:
                    uspec = solver.timestep(uspec, count)
                    bar.update(count)
                grid = solver.gethuv(uspec)  # (3, lat, lon): phi, u, v
                if not bool(torch.isfinite(grid).all()):
                    raise SolverError(f"sample {i} became non-finite by t={times[k]:g} h; reduce dt (now {dt:g} s)")
                grid[0] = grid[0] / solver.gravity  # geopotential -> height
                fields[i, k] = grid.flip(-2).cpu().numpy()  # latitude ascending
    lat = np.rad2deg(solver.lats.cpu().numpy())[::-1].copy()
    lon = np.rad2deg(solver.lons.cpu().numpy())
    ds = trajectory_dataset(
        {"height": fields[:, :, 0], "eastward_velocity": fields[:, :, 1], "northward_velocity": fields[:, :, 2]},
        times=times, coords={"lat": lat, "lon": lon},
        attrs={"equation": "rotating_shallow_water_sphere", "solver": "torch_harmonics.examples.ShallowWaterSolver",
               "scheme": "spherical harmonics, Adams-Bashforth 3, implicit hyperdiffusion", "dt_seconds": dt,
               "initial_condition": initial_condition, "seed": seed, "radius_m": float(solver.radius),
               "omega_s-1": float(solver.omega), "gravity_m_s-2": float(solver.gravity),
               "latitude_order": "flipped from the solver's descending order to ascending"})
    ds["time"].attrs.update({"units": "hours", "long_name": "time since the initial condition"})
    return ds
