"""``turbulence3d``: decaying homogeneous (stratified) turbulence in a periodic cube, the statistics it writes.

Each sample is one run of :class:`sciml.solvers.navier_stokes3d.NavierStokes3D` (ETDRK4, 2/3 dealiasing,
``L = 2 pi``) from rest-free initial conditions, with its own viscosity ``nu`` and Brunt-Vaisala frequency
``N`` (per-sample coordinates), and records the statistics a reduced model of the decay evolves
(Portwood et al. 2019, "Turbulence forecasting via Neural ODE", arXiv:1911.05180):

* ``kinetic_energy`` ``K = <|u|^2> / 2``, ``dissipation`` ``eps = nu <|omega|^2>``, ``enstrophy``
  ``<|omega|^2> / 2``; stratified also ``potential_energy`` ``K_P = <b^2> / (2 N^2)``,
  ``potential_dissipation`` ``eps_P`` and ``buoyancy_flux`` ``<w b>``, with the budget
  ``dK/dt = <w b> - eps`` and ``dK_P/dt = -<w b> - eps_P``;
* ``band_energy(sample, time, band)``: kinetic energy in octave bands of ``|k|`` and
  ``energy_spectrum(sample, time, wavenumber)``, the shell-summed ``E(k)`` (``sum_k E dk = K``);
* optionally (``fields=True``) the velocity (and buoyancy) fields, spectrally truncated to ``resolution``.

Initial conditions (``initial``):

* ``"random"``: :func:`~sciml.solvers.navier_stokes3d.random_velocity`, a solenoidal Gaussian field with the
  expected spectrum ``E(k) ~ k^4 exp(-2 (k / k_p)^2)`` drawn mode by mode from a per-sample stream: **the same
  seed gives the same Fourier modes on every grid** (up to the coarser band), so 16^3 and 32^3 runs start from
  one continuous field. Stratified runs start with buoyancy ``b = N sqrt(3 r) w'``, ``w'`` the vertical velocity
  of an independent field of the same spectrum, so that the expected ``K_P = r K`` (``r`` =
  ``potential_ratio``).
* ``"taylor-green"``: the Taylor-Green vortex (``|k| = sqrt 3``, ``K = U^2 / 8``), a deterministic flow that
  turns turbulent; with ``N > 0`` the buoyancy starts as above.

Per-sample parameters: ``viscosity`` and ``buoyancy_frequency`` are numbers or ``(low, high)`` ranges, drawn
log-uniformly (viscosity) and uniformly (``N``) from a stream of ``(seed, sample)``. The dimensionless
numbers written as coordinates use the initial rms velocity ``u' = sqrt(2 K_0 / 3)`` and length
``l = 1 / k_p``: ``reynolds = u' l / nu`` and ``inverse_froude = N l / u'`` (``1 / Fr``; 0 unstratified, where
``Fr`` is infinite).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._common import check_chunk, check_dt, solve_grid

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_TIMES = tuple(round(0.25 * i, 10) for i in range(41))  # 0, 0.25, ..., 10: about four turnover times
INITIAL_CONDITIONS = ("random", "taylor-green")

# CF attributes of the statistics (nondimensional, the solvers' units "1").
STATISTICS_ATTRS: dict[str, dict[str, str]] = {
    "kinetic_energy": {"long_name": "kinetic energy per unit mass K = <|u|^2> / 2", "units": "1"},
    "dissipation": {"long_name": "kinetic energy dissipation rate eps = nu <|curl u|^2>", "units": "1"},
    "enstrophy": {"long_name": "enstrophy <|omega|^2> / 2", "units": "1"},
    "potential_energy": {"long_name": "available potential energy K_P = <b^2> / (2 N^2)", "units": "1"},
    "potential_dissipation": {"long_name": "potential energy dissipation rate eps_P = kappa <|grad b|^2> / N^2",
                              "units": "1"},
    "buoyancy_flux": {"long_name": "vertical buoyancy flux <w b> (potential to kinetic energy conversion)",
                      "units": "1"},
    "palinstrophy": {"long_name": "palinstrophy <|grad omega|^2> / 2", "units": "1"},
    "band_energy": {"long_name": "kinetic energy in the band of wavenumber magnitudes", "units": "1"},
    "energy_spectrum": {"long_name": "shell-summed kinetic energy spectrum E(k), sum E dk = K", "units": "1"},
}
PARAMETER_ATTRS: dict[str, dict[str, str]] = {
    "viscosity": {"long_name": "kinematic viscosity nu", "units": "1"},
    "buoyancy_frequency": {"long_name": "Brunt-Vaisala frequency N", "units": "1"},
    "reynolds": {"long_name": "initial Reynolds number u' l / nu, u' = sqrt(2 K0 / d), l = 1 / k_p", "units": "1"},
    "inverse_froude": {"long_name": "inverse initial Froude number N l / u' (0: unstratified)", "units": "1"},
}


def viscosity_setting(viscosity, viscosity_range, *, default: tuple[float, float]):
    """The viscosity or range asked for: ``viscosity_range``, else ``viscosity``, else ``default``; not both."""
    if viscosity is not None and viscosity_range is not None:
        raise ValueError("give viscosity (one value or a range) or viscosity_range, not both")
    if viscosity_range is not None:
        return tuple(viscosity_range)
    return default if viscosity is None else viscosity


def parameter_range(value, name: str) -> tuple[float, float]:
    """``(low, high)`` of a number or a pair; :class:`ValueError` naming ``name`` unless finite, ``>= 0``, ordered."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        low = high = float(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        low, high = (float(v) for v in value)
    else:
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise ValueError(f"{name} must be finite with 0 <= low <= high, got {value!r}")
    return low, high


def draw_parameters(seed: int, sample: int, viscosity: tuple[float, float],
                    buoyancy_frequency: tuple[float, float]) -> tuple[float, float]:
    """``(nu, N)`` of sample ``sample``: ``nu`` log-uniform, ``N`` uniform over their ranges, from the stream
    ``SeedSequence(seed, spawn_key=(sample, 1))`` (independent of the initial-condition stream)."""
    uniform = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(sample, 1))).random(2)
    low, high = viscosity
    if low <= 0 and high > 0:
        raise ValueError(f"a viscosity range drawn log-uniformly must have low > 0, got {viscosity}")
    nu = low if low == high else math.exp(math.log(low) + uniform[0] * (math.log(high) - math.log(low)))
    n_low, n_high = buoyancy_frequency
    return nu, n_low + uniform[1] * (n_high - n_low)


def octave_bands(k_max: float) -> list[tuple[float, float]]:
    """Octave bands ``[2^(j - 1/2), 2^(j + 1/2))`` of ``|k|`` covering ``1 .. k_max`` (``j = 0, 1, ...``); the
    last is widened to hold every shell up to ``k_max``, so the bands sum to ``K``."""
    bands, j = [], 0
    while 2 ** (j - 0.5) <= k_max:
        bands.append((2 ** (j - 0.5), 2 ** (j + 0.5)))
        j += 1
    bands[-1] = (bands[-1][0], max(bands[-1][1], k_max + 1))
    return bands


def band_energies(k: torch.Tensor, spectrum: torch.Tensor, bands: Sequence[tuple[float, float]],
                  dk: float) -> torch.Tensor:
    """``sum E(k_j) dk`` over the shells ``k_j`` in each band: ``(..., shells) -> (..., bands)``."""
    return torch.stack([spectrum[..., (k >= lo) & (k < hi)].sum(dim=-1) * dk for lo, hi in bands], dim=-1)


def statistics_dataset(series: dict[str, np.ndarray], *, times: Sequence[float], parameters: dict[str, np.ndarray],
                       k: np.ndarray, spectrum: np.ndarray, bands: Sequence[tuple[float, float]],
                       band: np.ndarray, fields: dict[str, np.ndarray] | None, length: float, attrs: dict,
                       first_sample: int, seed: int, command: str | None) -> xr.Dataset:
    """The CF dataset of the statistics ``(sample, time)``, bands, spectra and optional fields."""
    import xarray as xr

    from sciml import __version__
    from sciml.data.cf import _COORD_ATTRS

    n_samples = len(next(iter(series.values())))
    data_vars = {name: (("sample", "time"), value, STATISTICS_ATTRS[name]) for name, value in series.items()}
    data_vars["band_energy"] = (("sample", "time", "band"), band, STATISTICS_ATTRS["band_energy"])
    data_vars["energy_spectrum"] = (("sample", "time", "wavenumber"), spectrum, STATISTICS_ATTRS["energy_spectrum"])
    coords = {
        "sample": ("sample", np.arange(first_sample, first_sample + n_samples), _COORD_ATTRS["sample"]),
        "time": ("time", np.asarray(times, dtype=np.float64), _COORD_ATTRS["time"]),
        "wavenumber": ("wavenumber", k, {"long_name": "wavenumber magnitude |k| of the shell", "units": "1"}),
        "band": ("band", np.arange(len(bands)), {"long_name": "octave band of |k|", "units": "1"}),
        "band_lower": ("band", np.array([lo for lo, _ in bands]), {"long_name": "lower edge of the band", "units": "1"}),
        "band_upper": ("band", np.array([hi for _, hi in bands]), {"long_name": "upper edge of the band", "units": "1"}),
        **{name: ("sample", value, PARAMETER_ATTRS[name]) for name, value in parameters.items()},
    }
    if fields:
        dims = ("z", "y", "x")[-next(iter(fields.values())).ndim + 2:]
        n = next(iter(fields.values())).shape[-1]
        axis = np.arange(n) * (length / n)
        for dim in dims:
            coords[dim] = (dim, axis, {**_COORD_ATTRS.get(dim, {"long_name": f"{dim} coordinate (nondimensional)",
                                                                 "units": "1", "axis": "Z"}), "periodic": "true"})
        for name, value in fields.items():
            data_vars[name] = (("sample", "time", *dims), value, _FIELD_ATTRS.get(name, {"long_name": name, "units": "1"}))
    all_attrs = {"Conventions": "CF-1.10", "source": f"sciml {__version__}", **attrs, "seed": seed,
                 "first_sample": first_sample}
    if command:
        all_attrs["history"] = command
    return xr.Dataset(data_vars, coords=coords, attrs=all_attrs)


_FIELD_ATTRS = {
    "u": {"long_name": "x component of velocity", "units": "1"},
    "v": {"long_name": "y component of velocity", "units": "1"},
    "w": {"long_name": "z (vertical) component of velocity", "units": "1"},
    "buoyancy": {"long_name": "buoyancy b = -g (rho - rho_ref(z)) / rho_0", "units": "1"},
    "vorticity": {"long_name": "vertical component of vorticity, curl(u) . e_z", "units": "1"},
}


def initial_velocity(initial: str, n: int, *, seed: int, sample: int, peak_wavenumber: float, energy: float,
                     buoyancy_frequency: float, potential_ratio: float, dtype: torch.dtype,
                     device) -> tuple[torch.Tensor, float, float]:
    """The initial state ``(1, C, n, n, n)`` of sample ``sample`` (``C = 4`` when ``N > 0``), its nominal
    kinetic energy and peak wavenumber (for ``reynolds`` and ``inverse_froude``)."""
    from sciml.solvers import navier_stokes3d as ns3

    if initial == "random":
        state = ns3.random_velocity(n, 1, seed=seed, first_sample=sample, peak_wavenumber=peak_wavenumber,
                                    energy=energy, dtype=torch.float64)
        k_p, k0 = peak_wavenumber, energy
    else:  # Taylor-Green with K = U^2 / 8 = energy
        state = ns3.taylor_green(n, amplitude=math.sqrt(8 * energy), dtype=torch.float64)
        k_p, k0 = math.sqrt(3.0), energy
    if buoyancy_frequency > 0:
        buoyancy_seed = int(np.random.SeedSequence(seed, spawn_key=(sample, 2)).generate_state(1)[0])
        other = ns3.random_velocity(n, 1, seed=buoyancy_seed, peak_wavenumber=k_p, energy=energy, dtype=torch.float64)
        b = buoyancy_frequency * math.sqrt(3 * potential_ratio) * other[:, 2:3]
        state = torch.cat([state, b], dim=1)
    return state.to(dtype=dtype, device=device), k0, k_p


def generate(
    n_samples: int,
    resolution: int,
    *,
    seed: int,
    times: Sequence[float] = DEFAULT_TIMES,
    viscosity: float | tuple[float, float] | None = None,
    viscosity_range: tuple[float, float] | None = None,
    buoyancy_frequency: float | tuple[float, float] = 0.0,
    initial: str = "random",
    peak_wavenumber: float = 2.0,
    energy: float = 0.5,
    potential_ratio: float = 0.1,
    rotation: float = 0.0,
    fields: bool = False,
    first_sample: int = 0,
    solve_resolution: int | None = None,
    dt: float | None = None,
    stability: float = 1.0,
    chunk: int = 1,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
    command: str | None = None,
) -> xr.Dataset:
    """Decaying 3-D turbulence: the statistics of runs numbered ``first_sample, ...`` over ``(sample, time)``.

    Args:
        n_samples: runs.
        resolution: grid points per side of the output fields and the solve (``solve_resolution`` when finer;
            statistics are computed on the solve grid). CPU-friendly at 16 to 32.
        seed: master seed (initial conditions and parameters of each sample from their own streams).
        times: increasing output times ``>= 0`` (default 0, 0.25, ..., 10).
        viscosity, viscosity_range: ``nu`` of every run, or a ``(low, high)`` range drawn log-uniformly
            per sample (either argument; as in the other recipes, ``viscosity_range`` is the range).
            Default: the range ``(0.01, 0.04)``.
        buoyancy_frequency: ``N`` or a ``(low, high)`` range drawn uniformly; ``N > 0`` is a stratified
            (Boussinesq) run with a buoyancy channel (Prandtl number 1).
        initial: ``"random"`` or ``"taylor-green"`` (see the module doc).
        peak_wavenumber: ``k_p`` of the random initial spectrum ``E ~ k^4 exp(-2 (k / k_p)^2)``.
        energy: expected initial kinetic energy.
        potential_ratio: expected ``K_P / K`` at ``t = 0`` of a stratified run.
        rotation: Coriolis parameter ``f``.
        fields: also write ``u``, ``v``, ``w`` (and ``buoyancy``) over ``(sample, time, z, y, x)`` (on the solve grid,
            so ``solve_resolution`` must equal ``resolution``).
        first_sample: index of the first run (draw a set in parts).
        solve_resolution: solve on a finer grid than ``resolution``.
        dt: largest step; ``None``: :func:`~sciml.solvers.navier_stokes3d.stable_dt` of each run's initial state
            (stability number ``stability`` for 1.5 times its peak speed; ``attrs["dt"]`` lists them per run). A
            ``dt`` above the stability bound is refused.
        stability: the stability number of the chosen steps.
        chunk: runs per part when split over workers (each run has its own parameters and is solved alone).
        device, dtype: where and in which precision to solve (statistics are written in float64).
        progress: a progress bar over the runs.
        command: the command line, recorded as ``history``.

    Returns:
        The statistics dataset (see the module doc), with ``viscosity``, ``buoyancy_frequency``, ``reynolds``
        and ``inverse_froude`` as coordinates along ``sample``.
    """
    from tqdm.auto import tqdm

    from sciml.solvers import navier_stokes3d as ns3

    if initial not in INITIAL_CONDITIONS:
        raise ValueError(f"initial must be one of {', '.join(INITIAL_CONDITIONS)}, got {initial!r}")
    nu_range = parameter_range(viscosity_setting(viscosity, viscosity_range, default=(0.01, 0.04)), "viscosity")
    n_range = parameter_range(buoyancy_frequency, "buoyancy_frequency")
    for name, value in (("peak_wavenumber", peak_wavenumber), ("energy", energy)):
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(potential_ratio) and potential_ratio > 0):
        raise ValueError(f"potential_ratio must be positive (log K_P must exist at t = 0), got {potential_ratio!r}")
    check_chunk(chunk)
    dt = check_dt(dt)
    solve_at = solve_grid(resolution, solve_resolution)
    if fields and solve_at != resolution:
        raise ValueError(f"fields=True writes the solve grid: use solve_resolution = resolution ({resolution}), "
                         f"got {solve_at}")
    stratified = n_range[1] > 0
    if stratified and n_range[0] <= 0:
        raise ValueError(f"a stratified set needs buoyancy_frequency > 0 for every sample, got range {n_range}")
    length = 2 * math.pi
    dk = 2 * math.pi / length
    names = ["kinetic_energy", "dissipation", "enstrophy"]
    if stratified:
        names += ["potential_energy", "potential_dissipation", "buoyancy_flux"]
    series = {name: [] for name in names}
    spectra, bands_out, field_out, params, steps = [], [], [], {k: [] for k in PARAMETER_ATTRS}, []
    bands = octave_bands(math.sqrt(3) * ((solve_at - 1) // 3) * dk)  # the corners of the 2/3 band
    k = None
    for i in tqdm(range(n_samples), desc=f"turbulence3d {solve_at}^3", unit="run", disable=not progress, leave=False):
        sample = first_sample + i
        nu, n_freq = draw_parameters(seed, sample, nu_range, n_range)
        eq = ns3.NavierStokes3D(viscosity=nu, buoyancy_frequency=n_freq, coriolis_parameter=rotation, length=length)
        state0, k0, k_p = initial_velocity(initial, solve_at, seed=seed, sample=sample, peak_wavenumber=peak_wavenumber,
                                           energy=energy, buoyancy_frequency=n_freq, potential_ratio=potential_ratio,
                                           dtype=dtype, device=device)
        step = ns3.stable_dt(eq, state0, stability=stability) if dt is None else dt
        steps.append(step)
        trajectory = ns3.integrate(eq, state0, times, dt=step)[0]
        traj64 = trajectory.to(torch.float64)  # (time, C, n, n, n)
        series["kinetic_energy"].append(ns3.kinetic_energy(eq, traj64))
        series["dissipation"].append(ns3.dissipation(eq, traj64))
        series["enstrophy"].append(ns3.enstrophy(eq, traj64))
        if stratified:
            series["potential_energy"].append(ns3.potential_energy(eq, traj64))
            series["potential_dissipation"].append(ns3.potential_dissipation(eq, traj64))
            series["buoyancy_flux"].append(ns3.buoyancy_flux(eq, traj64))
        k, spectrum = ns3.energy_spectrum(eq, traj64)
        spectra.append(spectrum)
        bands_out.append(band_energies(k, spectrum, bands, dk))
        u_rms = math.sqrt(2 * k0 / 3)
        params["viscosity"].append(nu)
        params["buoyancy_frequency"].append(n_freq)
        params["reynolds"].append(u_rms / (k_p * nu))
        params["inverse_froude"].append(n_freq / (k_p * u_rms))
        if fields:
            field_out.append(trajectory.cpu())
    numpy = {name: torch.stack(values).cpu().numpy() for name, values in series.items()}
    field_vars = None
    if fields:
        stacked = torch.stack(field_out)  # (sample, time, C, n, n, n)
        field_vars = {name: stacked[:, :, c].numpy() for c, name in enumerate(["u", "v", "w", "buoyancy"][:stacked.shape[2]])}
    attrs = {"equation": "navier_stokes_3d_boussinesq", "scheme": "etdrk4", "dealiasing": "2/3",
             "time_stepping": "fixed", "stability_number": stability, "dt": steps, "solve_resolution": solve_at, "initial_condition": initial,
             "ic_spectrum": "E(k) = A k^4 exp(-2 (k / k_p)^2)" if initial == "random" else "taylor-green",
             "ic_peak_wavenumber": float(peak_wavenumber) if initial == "random" else math.sqrt(3.0),
             "ic_energy": float(energy), "potential_ratio": float(potential_ratio) if stratified else 0.0,
             "coriolis_parameter": float(rotation), "domain_length": length, "prandtl_number": 1.0,
             "viscosity_range": list(nu_range), "buoyancy_frequency_range": list(n_range),
             "budget": "dK/dt = <w b> - eps; dK_P/dt = -<w b> - eps_P"}
    return statistics_dataset(numpy, times=times, parameters={k_: np.asarray(v) for k_, v in params.items()},
                              k=k.cpu().numpy(), spectrum=torch.stack(spectra).cpu().numpy(), bands=bands,
                              band=torch.stack(bands_out).cpu().numpy(), fields=field_vars, length=length,
                              attrs=attrs, first_sample=first_sample, seed=seed, command=command)
