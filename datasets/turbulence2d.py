"""``turbulence2d``: freely decaying 2-D turbulence (no forcing), the statistics it writes; the fast cases.

Each sample is one run of :class:`sciml.solvers.navier_stokes.NavierStokes2D` (``forcing="none"``, ``L = 2 pi``,
ETDRK4) with its own viscosity (a per-sample coordinate), from a random vorticity whose velocity has the
expected spectrum ``E(k) = A k^4 exp(-2 (k / k_p)^2)``. Written over ``(sample, time)``: ``kinetic_energy``
``K = <|u|^2> / 2``, ``enstrophy`` ``Z = <w^2> / 2``, ``dissipation`` ``eps = 2 nu Z`` (exactly ``-dK/dt``
for 2-D incompressible flow), ``palinstrophy`` ``P = <|grad w|^2> / 2`` (``dZ/dt = -2 nu P``), octave
``band_energy`` and the shell-summed ``energy_spectrum``; ``vorticity`` fields with ``fields=True``.
Coordinates along ``sample``: ``viscosity``, ``buoyancy_frequency`` (0), ``reynolds = u' l / nu`` with
``u' = sqrt(K_0)`` and ``l = 1 / k_p``, ``inverse_froude`` (0). 2-D turbulence decays differently from 3-D
(energy cascades to large scales, enstrophy to small; McWilliams 1984, J. Fluid Mech. 146): a cheap, different
test of a statistics model, not a stand-in for 3-D physics.

The initial vorticity is drawn mode by mode in square shells ``max_i |k_i| = m`` from a per-sample
``torch.Generator`` (seeded from ``SeedSequence(seed, spawn_key=(sample,))``), one call per shell, as
:func:`~sciml.solvers.navier_stokes3d.random_velocity` does in 3-D: the same seed gives the same Fourier modes
on every grid up to the coarser band ``(n - 1) // 3``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._common import check_chunk, check_dt, solve_grid
from .turbulence import (
    PARAMETER_ATTRS,
    band_energies,
    draw_parameters,
    octave_bands,
    parameter_range,
    statistics_dataset,
    viscosity_setting,
)

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_TIMES = tuple(round(0.5 * i, 10) for i in range(41))  # 0, 0.5, ..., 20


def random_vorticity(n: int, count: int = 1, *, seed: int, peak_wavenumber: float = 4.0, energy: float = 0.5,
                     first_sample: int = 0, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Random vorticity ``(count, n, n)`` on ``[0, 2 pi)^2`` whose velocity has the expected spectrum
    ``E(k) = A k^4 exp(-2 (k / k_p)^2)`` with ``int E dk = energy``.

    Mode ``k`` (integer, ``0 < max_i |k_i| <= (n - 1) // 3``) gets the stream function coefficient
    ``(a + i b) s(|k|)``, ``a, b ~ N(0, 1)``, ``s^2 = E(|k|) / (pi |k|^3)`` (about ``2 pi |k|`` modes share a shell
    and the real part of the series halves the power), and ``w_hat = |k|^2 psi_hat``.
    """
    band = (n - 1) // 3
    amplitude = energy / (0.375 * math.sqrt(math.pi) * (peak_wavenumber**2 / 2) ** 2.5)
    shells = []
    for m in range(1, band + 1):
        axis = torch.arange(-m, m + 1)
        k = torch.cartesian_prod(axis, axis)  # (k_y, k_x)
        shells.append(k[k.abs().amax(dim=1) == m])
    modes = torch.cat(shells)
    magnitude = modes.to(torch.float64).norm(dim=1)
    spectrum = amplitude * magnitude**4 * torch.exp(-2 * (magnitude / peak_wavenumber) ** 2)
    scale = (spectrum / (math.pi * magnitude**3)).sqrt() * magnitude**2  # vorticity coefficient
    out = torch.zeros(count, n, n, dtype=torch.complex128)
    index = (modes[:, 0] % n, modes[:, 1] % n)
    for i in range(count):
        state = np.random.SeedSequence(seed, spawn_key=(first_sample + i,)).generate_state(2, dtype=np.uint32)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        draws = torch.cat([torch.randn(len(shell), 2, generator=generator, dtype=torch.float64) for shell in shells])
        out[i][index] = torch.complex(draws[:, 0], draws[:, 1]) * scale / math.sqrt(2)
    w = torch.fft.ifft2(out, norm="forward").real
    return w.to(dtype=dtype, device=device)


def _statistics(eq, w: torch.Tensor, dk: float) -> dict[str, torch.Tensor]:
    """K, Z, eps, P and the spectrum of vorticity ``(time, n, n)`` (float64)."""
    n = w.shape[-1]
    w_hat = torch.fft.fft2(w) / n**2  # Fourier coefficients
    ky = torch.fft.fftfreq(n, d=1 / n, dtype=torch.float64)[:, None] * dk
    kx = torch.fft.fftfreq(n, d=1 / n, dtype=torch.float64)[None, :] * dk
    k2 = kx**2 + ky**2
    power = w_hat.abs().square()
    inverse = torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, 1.0), 0.0)
    energy_density = power * inverse / 2  # |u_hat|^2 / 2 = |w_hat|^2 / (2 |k|^2)
    shell = torch.round(k2.sqrt() / dk).to(torch.long).flatten()
    count = int(shell.max()) + 1
    spectrum = energy_density.flatten(-2).new_zeros((w.shape[0], count)).index_add_(
        -1, shell, energy_density.flatten(-2)) / dk
    return {"kinetic_energy": energy_density.sum(dim=(-2, -1)), "enstrophy": power.sum(dim=(-2, -1)) / 2,
            "palinstrophy": (power * k2).sum(dim=(-2, -1)) / 2, "spectrum": spectrum,
            "k": torch.arange(count, dtype=torch.float64) * dk}


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float] = DEFAULT_TIMES,
    viscosity: float | tuple[float, float] | None = None,
    viscosity_range: tuple[float, float] | None = None,
    peak_wavenumber: float = 4.0,
    energy: float = 0.5,
    fields: bool = False,
    first_sample: int = 0,
    solve_resolution: int | None = None,
    dt: float | None = None,
    courant: float = 0.5,
    chunk: int = 1,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    """Decaying 2-D turbulence: the statistics of runs numbered ``first_sample, ...`` over ``(sample, time)``.

    Args:
        n_samples: runs.
        resolution: grid points per side (64 is a few seconds per run on a CPU core).
        seed: master seed.
        times: increasing output times ``>= 0`` (default 0, 0.5, ..., 20).
        viscosity, viscosity_range: ``nu`` of every run, or a ``(low, high)`` range drawn log-uniformly
            per sample (either argument; as in the other recipes, ``viscosity_range`` is the range).
            Default: the range ``(2e-3, 1e-2)``.
        peak_wavenumber, energy: the initial spectrum's ``k_p`` and expected kinetic energy.
        fields: also write ``vorticity(sample, time, y, x)``.
        first_sample: index of the first run.
        solve_resolution: solve on a finer grid (statistics from the solve grid).
        dt: largest step; ``None``: Courant number ``courant`` for 1.5 times each run's initial peak speed
            (:func:`~sciml.solvers.navier_stokes.stable_dt`; ``attrs["dt"]`` lists them per run).
        chunk: runs per part when split over workers (each run is solved alone).
        device, dtype: where and in which precision to solve.
        progress: a progress bar over the runs.
        command: the command line, recorded as ``history``.
    """
    from tqdm.auto import tqdm

    from sciml.solvers.navier_stokes import NavierStokes2D, integrate, stable_dt

    nu_range = parameter_range(viscosity_setting(viscosity, viscosity_range, default=(2e-3, 1e-2)), "viscosity")
    for name, value in (("peak_wavenumber", peak_wavenumber), ("energy", energy)):
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    check_chunk(chunk)
    dt = check_dt(dt)
    solve_at = solve_grid(resolution, solve_resolution)
    length, dk = 2 * math.pi, 1.0
    bands = octave_bands(math.sqrt(2) * ((solve_at - 1) // 3) * dk)  # the corners of the 2/3 band
    series = {name: [] for name in ("kinetic_energy", "dissipation", "enstrophy", "palinstrophy")}
    spectra, band_out, field_out, params, steps = [], [], [], {k: [] for k in PARAMETER_ATTRS}, []
    k = None
    for i in tqdm(range(n_samples), desc=f"turbulence2d {solve_at}^2", unit="run", disable=not progress, leave=False):
        sample = first_sample + i
        nu, _ = draw_parameters(seed, sample, nu_range, (0.0, 0.0))
        eq = NavierStokes2D(viscosity=nu, forcing="none", length=length)
        w0 = random_vorticity(solve_at, 1, seed=seed, first_sample=sample, peak_wavenumber=peak_wavenumber,
                              energy=energy, dtype=dtype, device=device)
        step = stable_dt(eq, w0, courant=courant) if dt is None else dt
        steps.append(step)
        w = integrate(eq, w0, times, dt=step, scheme="etdrk4")[0]
        stats = _statistics(eq, w.to(torch.float64).cpu(), dk)
        series["kinetic_energy"].append(stats["kinetic_energy"])
        series["enstrophy"].append(stats["enstrophy"])
        series["dissipation"].append(2 * nu * stats["enstrophy"])
        series["palinstrophy"].append(stats["palinstrophy"])
        k = stats["k"]
        spectra.append(stats["spectrum"])
        band_out.append(band_energies(k, stats["spectrum"], bands, dk))
        params["viscosity"].append(nu)
        params["buoyancy_frequency"].append(0.0)
        params["reynolds"].append(math.sqrt(energy) / (peak_wavenumber * nu))
        params["inverse_froude"].append(0.0)
        if fields:
            from sciml.spectral import spectral_resample

            field_out.append(spectral_resample(w.cpu(), (resolution, resolution)))
    attrs = {"equation": "navier_stokes_2d_vorticity", "forcing": "none", "scheme": "etdrk4", "dealiasing": "2/3",
             "time_stepping": "fixed", "courant": courant, "dt": steps,
             "solve_resolution": solve_at, "initial_condition": "random",
             "ic_spectrum": "E(k) = A k^4 exp(-2 (k / k_p)^2)", "ic_peak_wavenumber": float(peak_wavenumber),
             "ic_energy": float(energy), "domain_length": length, "viscosity_range": list(nu_range),
             "budget": "dK/dt = -eps = -2 nu Z; dZ/dt = -2 nu P"}
    field_vars = {"vorticity": torch.stack(field_out).numpy()} if fields else None
    return statistics_dataset({name: torch.stack(v).numpy() for name, v in series.items()}, times=times,
                              parameters={k_: np.asarray(v) for k_, v in params.items()}, k=k.numpy(),
                              spectrum=torch.stack(spectra).numpy(), bands=bands,
                              band=torch.stack(band_out).numpy(), fields=field_vars, length=length, attrs=attrs,
                              first_sample=first_sample, seed=seed, command=command)
