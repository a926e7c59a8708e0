"""``swe-sphere``: rotating shallow water on the Earth-sized sphere (``sciml.solvers.shallow_water``).

``resolution`` is the number of latitudes (poles included); longitudes are twice that. Both initial
conditions are the same continuous flow at every resolution: the Galewsky et al. (2004) jet is analytic,
and the ``random`` flow is drawn spectrally, independently of the grid. Its vorticity has the degrees
``1 <= l <= 10`` with kinetic energy spectrum ``E(l) ~ l^3 exp(-(l / 3)^2)`` (peak near ``l = 4``), rescaled
to an rms speed of 20 m/s (peaks of about 50 m/s), no divergence, and the height in nonlinear balance with
it (degrees ``<= 20``), so a grid of 32 latitudes resolves it exactly. Sample ``first_sample + i`` of
``seed`` draws its coefficients in a fixed ``(l, m)`` order from its own stream
``numpy.random.default_rng(SeedSequence(seed, spawn_key=(first_sample + i,)))``.
Records ``height``, ``eastward_velocity``, ``northward_velocity`` over ``(sample, time, lat, lon)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from sciml.solvers.shallow_water import ShallowWater, balanced, galewsky, solve

from ._common import check_dt

if TYPE_CHECKING:
    import xarray as xr

INITIAL_CONDITIONS = ("galewsky", "random")
RANDOM_FLOW = {"max_degree": 10, "peak_scale": 3.0, "rms_speed": 20.0}


def random_vorticity(n_samples: int, *, seed: int, first_sample: int = 0, radius: float = ShallowWater.radius,
                     max_degree: int = RANDOM_FLOW["max_degree"], peak_scale: float = RANDOM_FLOW["peak_scale"],
                     rms_speed: float = RANDOM_FLOW["rms_speed"]) -> torch.Tensor:
    """Vorticity spectra ``(n_samples, max_degree + 1, max_degree + 1)`` (complex128, torch-harmonics' orthonormal
    coefficients) of random non-divergent flows on a sphere of ``radius``; see the module doc."""
    degree = np.arange(max_degree + 1)[:, None]
    order = np.arange(max_degree + 1)[None, :]
    energy = degree**3.0 * np.exp(-((degree / peak_scale) ** 2))  # per degree
    # An isotropic field: each real coefficient of degree l has variance E(l) l (l + 1) / (2 l + 1), the real and
    # imaginary parts of m > 0 half of it each.
    variance = np.where((order <= degree) & (degree > 0), energy * degree * (degree + 1) / (2 * degree + 1), 0.0)
    scale = np.sqrt(variance * np.where(order > 0, 0.5, 1.0))
    weight = np.where(order > 0, 2.0, 1.0)  # m > 0 stands for +-m
    spectra = np.empty((n_samples, max_degree + 1, max_degree + 1), dtype=np.complex128)
    for i in range(n_samples):
        stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(first_sample + i,)))
        draws = stream.standard_normal((max_degree + 1, max_degree + 1, 2))  # (l, m, re/im) in C order
        zeta = (draws[..., 0] + 1j * np.where(order > 0, draws[..., 1], 0.0)) * scale
        # mean |u|^2 = a^2 / (4 pi) sum_lm w_m |zeta_lm|^2 / (l (l + 1)) for a non-divergent flow
        laplacian = np.maximum(degree * (degree + 1), 1)
        mean_square = radius**2 / (4 * math.pi) * np.sum(weight * np.abs(zeta) ** 2 / laplacian)
        spectra[i] = zeta * (rms_speed / math.sqrt(mean_square))
    return torch.from_numpy(spectra)


def initial_state(n_samples: int, resolution: int, *, seed: int, first_sample: int = 0, kind: str = "galewsky",
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """State spectra ``(n_samples, 3, resolution, resolution)`` of ``(Phi, zeta, delta)`` on ``device``."""
    if kind not in INITIAL_CONDITIONS:
        raise ValueError(f"initial_condition must be one of {INITIAL_CONDITIONS}, got {kind!r}")
    eq = ShallowWater()
    if kind == "galewsky":
        return galewsky(eq, resolution, device=device).expand(n_samples, -1, -1, -1).clone()
    zeta = random_vorticity(n_samples, seed=seed, first_sample=first_sample, radius=eq.radius)
    return balanced(eq, zeta.to(device), resolution)


def estimate(n_samples: int, resolution: int, *, times: Sequence[float] = (0.0, 24.0, 48.0, 72.0, 96.0, 120.0),
             dt: float | None = None, device: str | torch.device = "cpu", **_):
    """Memory, file size and steps of :func:`generate` with these options (:class:`sciml._budget.Estimate`): three
    float64 fields on ``resolution x 2 resolution`` points, all samples in one batch."""
    from ._common import stepping_estimate, time_span

    step = 3600.0 / math.ceil(3600.0 * resolution / (150.0 * 64)) if dt is None else dt
    points = 3 * resolution * 2 * resolution
    return stepping_estimate(f"swe-sphere: {n_samples} trajectories at {resolution}x{2 * resolution}",
                             n_samples=n_samples, points=points, output_points=points, n_times=len(times), itemsize=8,
                             chunk=n_samples, t_span=3600.0 * time_span(times), dt=step, device=device)


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float] = (0.0, 24.0, 48.0, 72.0, 96.0, 120.0),
    initial_condition: str = "galewsky",
    first_sample: int = 0,
    dt: float | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    """``times`` in hours; ``dt`` in seconds (default: the longest step ``<= 150 * 64 / resolution`` that divides an
    hour, inside the stability bound: 150 s at 64 latitudes). All samples are solved as one batch; they are
    numbered from ``first_sample``."""
    dt = check_dt(dt)
    step = 3600.0 / math.ceil(3600.0 * resolution / (150.0 * 64)) if dt is None else dt
    state0 = initial_state(n_samples, resolution, seed=seed, first_sample=first_sample, kind=initial_condition,
                           device=device)
    attrs = {"initial_condition": initial_condition, "seed": seed, "first_sample": first_sample}
    if initial_condition == "random":
        attrs.update({f"ic_{k}": v for k, v in RANDOM_FLOW.items()})
    if command:
        attrs["history"] = command
    ds = solve(ShallowWater(), state0, times, dt=step, progress=progress, attrs=attrs)
    return ds.assign_coords(sample=ds["sample"] + first_sample)
