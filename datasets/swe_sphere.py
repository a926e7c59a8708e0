"""``swe-sphere``: rotating shallow water on the Earth-sized sphere (torch-harmonics' spectral solver).

``resolution`` is the number of latitudes (poles included); longitudes are twice that. The Galewsky
et al. (2004) jet is an analytic initial condition, so it is the same flow at every resolution; the
``random`` initial condition is drawn per resolution and is not resolution-consistent.
Records ``height``, ``eastward_velocity``, ``northward_velocity`` over ``(sample, time, lat, lon)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from sciml.solvers.shallow_water import solve

from ._common import check_dt

if TYPE_CHECKING:
    import xarray as xr


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float] = (0.0, 24.0, 48.0, 72.0, 96.0, 120.0),
    initial_condition: str = "galewsky",
    dt: float | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    """``times`` in hours; ``dt`` in seconds (default ``150 * 64 / resolution``, inside the stability bound)."""
    dt = check_dt(dt)
    step = 150.0 * 64 / resolution if dt is None else dt
    ds = solve(n_samples, resolution, 2 * resolution, times_hours=times, dt=step, initial_condition=initial_condition,
               seed=seed, device=device, progress=progress)
    if command:
        ds.attrs["history"] = command
    return ds
