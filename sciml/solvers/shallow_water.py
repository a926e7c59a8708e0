"""Rotating shallow water on the sphere, pseudo-spectral on torch-harmonics' spherical-harmonic transforms.

The equations in vorticity-divergence form (Williamson et al. 1992, J. Comput. Phys. 102) for the
geopotential ``Phi = g h``, vorticity ``zeta`` and divergence ``delta`` of a layer on a sphere of radius
``a`` rotating at ``Omega`` (Coriolis parameter ``f = 2 Omega sin(lat)``):

    d_t zeta  = -div((zeta + f) u),
    d_t delta = curl((zeta + f) u) - Laplacian(Phi + |u|^2 / 2),
    d_t Phi   = -div(Phi u),

with the velocity ``u`` from ``zeta`` and ``delta`` through the stream function and velocity potential.
The state is the spectrum ``(batch, 3, l, m)`` of ``(Phi, zeta, delta)``, triangularly truncated at
``lmax = mmax = nlat`` on the equiangular ``nlat x 2 nlat`` grid (poles included); the products are
formed on that grid with torch-harmonics' ``RealSHT``/``RealVectorSHT`` (the tendency of
``torch_harmonics.examples.ShallowWaterSolver``, whose own ``timestep`` takes one unbatched state).

Time stepping as that solver: third-order Adams-Bashforth (AB3) for the tendencies, then implicit
hyperdiffusion, ``zeta_l`` and ``delta_l`` multiplied by ``exp(-dt (l (l + 1) / (L (L + 1)))^order / T)``
with ``L = nlat - 1`` the truncation degree (the grid scale is damped with e-folding time ``T``, the
resolved scales hardly). The multistep history travels in :class:`ShallowWaterState`; the first two steps
are Heun and AB2, so the scheme is third order from the start (torch-harmonics starts with forward Euler).
Stable for ``dt (c + max|u|) lmax / a <= 0.7`` with ``c = sqrt(g H)``: AB3 is stable on the imaginary
axis up to about 0.72. An optional closure adds an explicit tendency of ``(height, u, v)`` to each
tendency evaluation.

Outputs are ``height``, ``eastward_velocity`` and ``northward_velocity`` over ``(sample, time, lat, lon)``
with latitude **ascending** (the solver's native order is descending). Initial conditions: the
barotropically unstable jet of Galewsky, Scott & Polvani (2004, Tellus 56A), or any vorticity spectrum with
its geopotential in nonlinear balance (:func:`balanced`). torch-harmonics is imported only when a grid is
first built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Sequence

import torch

from .._optional import require_torch_harmonics
from ..errors import SolverError
from ._stepping import Closure, OperatorCache, check_dt, check_times, closure_attrs, closure_tendency, run_to_times

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ShallowWater", "ShallowWaterState", "step", "integrate", "solve", "tendency", "to_fields",
           "to_spectrum", "galewsky", "balanced", "invariants", "max_stable_dt"]

MAX_COURANT = 0.7


@dataclass(frozen=True)
class ShallowWater:
    """Rotating shallow water on a sphere; the defaults are the Earth-like constants of torch-harmonics'
    ``ShallowWaterSolver``.

    Attributes:
        radius: sphere radius ``a`` in m.
        rotation_rate: ``Omega`` in rad/s.
        gravity: ``g`` in m/s^2.
        mean_depth: mean layer depth ``H`` in m (the mean geopotential is ``g H``).
        hyperdiffusion_order: ``order`` of the hyperdiffusion (4: ``Laplacian^4``).
        hyperdiffusion_time: e-folding time ``T`` in s of vorticity and divergence at the truncation degree.
    """

    radius: float = 6.37122e6
    rotation_rate: float = 7.292e-5
    gravity: float = 9.80616
    mean_depth: float = 10.0e3
    hyperdiffusion_order: int = 4
    hyperdiffusion_time: float = 7200.0
    _cache: OperatorCache = field(default_factory=OperatorCache, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("radius", "rotation_rate", "gravity", "mean_depth", "hyperdiffusion_time"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or (value <= 0 and name != "rotation_rate")):
                kind = "finite" if name == "rotation_rate" else "positive finite"
                raise SolverError(f"{name} must be a {kind} number, got {value!r}")
        if (isinstance(self.hyperdiffusion_order, bool) or not isinstance(self.hyperdiffusion_order, int)
                or self.hyperdiffusion_order < 1):
            raise SolverError(f"hyperdiffusion_order must be an integer >= 1, got {self.hyperdiffusion_order!r}")

    @property
    def wave_speed(self) -> float:
        """Gravity-wave speed ``c = sqrt(g H)`` in m/s."""
        return math.sqrt(self.gravity * self.mean_depth)

    def attributes(self) -> dict:
        """The equation and its discretisation as NetCDF attributes."""
        return {"equation": "rotating_shallow_water_sphere", "radius_m": self.radius,
                "omega_s-1": self.rotation_rate, "gravity_m_s-2": self.gravity, "mean_depth_m": self.mean_depth,
                "hyperdiffusion_order": self.hyperdiffusion_order,
                "hyperdiffusion_time_s": self.hyperdiffusion_time,
                "grid": "equiangular nlat x 2 nlat, poles included; triangular truncation lmax = mmax = nlat",
                "scheme": "spherical harmonics (torch-harmonics transforms), Adams-Bashforth 3 started by Heun "
                          "and AB2, implicit hyperdiffusion of vorticity and divergence"}


class _Grid(NamedTuple):
    sht: torch.nn.Module  # (..., lat, lon) -> (..., l, m)
    isht: torch.nn.Module
    vsht: torch.nn.Module  # (..., 2, lat, lon) eastward, northward -> (..., 2, l, m)
    ivsht: torch.nn.Module
    lap: torch.Tensor  # (l, 1): -l (l + 1) / a^2
    invlap: torch.Tensor  # (l, 1): its inverse, 0 at l = 0
    coriolis: torch.Tensor  # (lat, 1), latitude descending
    lats: torch.Tensor  # (lat,) radians, descending
    lons: torch.Tensor  # (lon,) radians
    weights: torch.Tensor  # (lat, 1): quadrature weights in sin(lat)


def _grid(eq: ShallowWater, nlat: int, device: torch.device) -> _Grid:
    return eq._cache(("grid", nlat, device), lambda: _build_grid(eq, nlat, device))


def _build_grid(eq: ShallowWater, nlat: int, device: torch.device) -> _Grid:
    require_torch_harmonics("the shallow-water solver")
    import torch_harmonics as th

    nlon = 2 * nlat
    options = dict(lmax=nlat, mmax=nlat, grid="equiangular", csphase=False)
    transforms = [cls(nlat, nlon, **options).to(device=device, dtype=torch.float64)
                  for cls in (th.RealSHT, th.InverseRealSHT, th.RealVectorSHT, th.InverseRealVectorSHT)]
    cost, weights = th.quadrature.clenshaw_curtiss_weights(nlat, -1, 1)
    lats = -torch.arcsin(cost).to(device=device, dtype=torch.float64)
    lons = torch.arange(nlon, dtype=torch.float64, device=device) * (2 * math.pi / nlon)
    degree = torch.arange(nlat, dtype=torch.float64, device=device)[:, None]
    lap = -degree * (degree + 1) / eq.radius**2
    invlap = torch.where(degree > 0, 1.0 / torch.where(degree > 0, lap, 1.0), 0.0)
    coriolis = (2 * eq.rotation_rate * torch.sin(lats))[:, None]
    weights = weights.to(device=device, dtype=torch.float64)[:, None]
    return _Grid(*transforms, lap, invlap, coriolis, lats, lons, weights)


def _hyperdiffusion(eq: ShallowWater, grid: _Grid, dt: float) -> torch.Tensor:
    """``(3, l, 1)`` factors of one step: 1 for ``Phi``, ``exp(-dt rate_l)`` for ``zeta`` and ``delta``."""
    def build() -> torch.Tensor:
        top = grid.lap[-1]
        factor = torch.exp(-dt / eq.hyperdiffusion_time * (grid.lap / top) ** eq.hyperdiffusion_order)
        return torch.stack((torch.ones_like(factor), factor, factor))
    return eq._cache(("hyperdiffusion", grid.lap.shape[0], dt, grid.lap.device), build)


class ShallowWaterState(NamedTuple):
    """What :func:`step` advances: the spectrum and the Adams-Bashforth history.

    ``spectrum``: ``(batch, 3, l, m)`` complex128 of ``(Phi, zeta, delta)``; ``tendencies``: the tendencies of
    the previous steps, newest first (at most two; none at the start); ``dt``: the step they were taken with.
    """

    spectrum: torch.Tensor
    tendencies: tuple[torch.Tensor, ...] = ()
    dt: float | None = None


def _check_spectrum(spectrum: torch.Tensor, name: str = "spectrum") -> int:
    """The ``nlat`` of a ``(batch, 3, nlat, nlat)`` complex128 state spectrum; :class:`SolverError` otherwise."""
    if not isinstance(spectrum, torch.Tensor) or spectrum.dtype != torch.complex128:
        got = spectrum.dtype if isinstance(spectrum, torch.Tensor) else type(spectrum).__name__
        raise SolverError(f"{name} must be a complex128 tensor (batch, 3, nlat, nlat) of (Phi, zeta, delta), got {got}")
    if spectrum.ndim != 4 or spectrum.shape[1] != 3 or spectrum.shape[2] != spectrum.shape[3] or spectrum.shape[2] < 8:
        raise SolverError(f"{name} must be (batch, 3, nlat, nlat) with nlat >= 8, got shape {tuple(spectrum.shape)}")
    if spectrum.shape[0] == 0:
        raise SolverError(f"{name} has no samples: shape {tuple(spectrum.shape)}")
    return spectrum.shape[-1]


def _velocity(eq: ShallowWater, grid: _Grid, spectrum: torch.Tensor) -> torch.Tensor:
    """``(batch, 2, lat, lon)`` eastward and northward velocity (latitude descending) from ``zeta, delta``."""
    return grid.ivsht(grid.invlap * spectrum[:, 1:] / eq.radius)


def _curl_div(eq: ShallowWater, grid: _Grid, vectors: torch.Tensor) -> torch.Tensor:
    """Spectra of the curl and divergence of ``(..., 2, lat, lon)`` vector fields: ``(..., 2, l, m)``."""
    return grid.lap * eq.radius * grid.vsht(vectors)


def tendency(eq: ShallowWater, spectrum: torch.Tensor, *, t: float = 0.0,
             closure: Closure | None = None) -> torch.Tensor:
    """``d_t`` of the spectrum ``(batch, 3, l, m)`` of ``(Phi, zeta, delta)``, same shape (see the module doc).

    ``closure(fields, t)`` adds the tendency of ``fields = (height, eastward, northward velocity)``,
    ``(batch, 3, lat, lon)`` with latitude ascending as :func:`to_fields` gives them, returned in the same
    layout; it is transformed like the rest (``g`` times the height's, the curl and divergence of the velocity's).
    """
    grid = _grid(eq, _check_spectrum(spectrum), spectrum.device)
    phi_zeta = grid.isht(spectrum[:, :2])  # (batch, 2, lat, lon)
    uv = _velocity(eq, grid, spectrum)
    fluxes = _curl_div(eq, grid, torch.stack((uv * (phi_zeta[:, 1:] + grid.coriolis), uv * phi_zeta[:, :1]), dim=1))
    bernoulli = grid.sht(phi_zeta[:, 0] + 0.5 * (uv**2).sum(dim=1))
    rate = torch.stack((-fluxes[:, 1, 1], -fluxes[:, 0, 1], fluxes[:, 0, 0] - grid.lap * bernoulli), dim=1)
    if closure is None:
        return rate
    fields = torch.cat((phi_zeta[:, :1] / eq.gravity, uv), dim=1).flip(-2)
    extra = closure_tendency(closure, fields, t).flip(-2)
    return rate + torch.cat((eq.gravity * grid.sht(extra[:, :1]), _curl_div(eq, grid, extra[:, 1:])), dim=1)


def step(eq: ShallowWater, state: ShallowWaterState, dt: float, *, t: float = 0.0,
         closure: Closure | None = None) -> ShallowWaterState:
    """Advance ``state`` from time ``t`` by ``dt`` seconds: Heun, AB2 or AB3 by the history's length, then the
    hyperdiffusion. ``closure`` as in :func:`tendency`, evaluated at ``t`` (and ``t + dt`` in the Heun step).
    The history must have been taken with the same ``dt``. Differentiable with autograd."""
    if not isinstance(state, ShallowWaterState):
        raise SolverError(f"state must be a ShallowWaterState, got {type(state).__name__}; start one as "
                          f"ShallowWaterState(spectrum)")
    dt = float(dt)
    spectrum, history = state.spectrum, state.tendencies
    if history and not math.isclose(dt, state.dt, rel_tol=1e-9):
        raise SolverError(f"the Adams-Bashforth history was taken with dt={state.dt:g} s, not {dt:g} s; restart "
                          f"from ShallowWaterState(state.spectrum)")
    rate = tendency(eq, spectrum, t=t, closure=closure)
    if not history:
        predictor = spectrum + dt * rate
        increment = 0.5 * dt * (rate + tendency(eq, predictor, t=t + dt, closure=closure))
    elif len(history) == 1:
        increment = dt * (1.5 * rate - 0.5 * history[0])
    else:
        increment = dt * ((23 / 12) * rate - (16 / 12) * history[0] + (5 / 12) * history[1])
    grid = _grid(eq, spectrum.shape[-1], spectrum.device)
    return ShallowWaterState(_hyperdiffusion(eq, grid, dt) * (spectrum + increment), (rate, *history[:1]), dt)


def to_fields(eq: ShallowWater, spectrum: torch.Tensor) -> torch.Tensor:
    """``(batch, 3, nlat, 2 nlat)`` height (m), eastward and northward velocity (m/s), latitude ascending."""
    grid = _grid(eq, _check_spectrum(spectrum), spectrum.device)
    height = grid.isht(spectrum[:, :1]) / eq.gravity
    return torch.cat((height, _velocity(eq, grid, spectrum)), dim=1).flip(-2)


def to_spectrum(eq: ShallowWater, fields: torch.Tensor) -> torch.Tensor:
    """The state spectrum ``(batch, 3, nlat, nlat)`` of ``(Phi, zeta, delta)`` from :func:`to_fields`' layout.

    The forward transform is a Clenshaw-Curtis quadrature, exact for a field of degree ``L`` only in the degrees
    ``l <= nlat - 1 - L``; the higher ones pick up quadrature error, so ``to_spectrum(to_fields(s))`` is not
    ``s`` there. Build initial states spectrally (:func:`galewsky`, :func:`balanced`) where possible.
    """
    if (not isinstance(fields, torch.Tensor) or fields.dtype != torch.float64 or fields.ndim != 4
            or fields.shape[1] != 3 or fields.shape[3] != 2 * fields.shape[2] or fields.shape[2] < 8):
        got = f"{tuple(fields.shape)} {fields.dtype}" if isinstance(fields, torch.Tensor) else type(fields).__name__
        raise SolverError(f"fields must be float64 (batch, 3, nlat, 2 nlat) with nlat >= 8, got {got}")
    fields = fields.flip(-2)
    grid = _grid(eq, fields.shape[2], fields.device)
    return torch.cat((eq.gravity * grid.sht(fields[:, :1]), _curl_div(eq, grid, fields[:, 1:])), dim=1)


def galewsky(eq: ShallowWater, nlat: int, *, device: str | torch.device = "cpu") -> torch.Tensor:
    """The Galewsky et al. (2004) jet with its height bump, spectrum ``(1, 3, nlat, nlat)``: an 80 m/s zonal jet
    between latitudes pi/7 and 5 pi/14 in nonlinear balance, plus a 120 m height bump at 45 N that is not
    (as torch-harmonics' ``galewsky_initial_condition``, computed on the ``nlat x 2 nlat`` grid)."""
    grid = _grid(eq, nlat, torch.device(device))
    lats, lons = torch.meshgrid(grid.lats, grid.lons, indexing="ij")  # (lat, lon)
    lat0, lat1, bump_lat = math.pi / 7, 0.5 * math.pi - math.pi / 7, 0.25 * math.pi
    inside = (lats > lat0) & (lats < lat1)
    product = torch.where(inside, (lats - lat0) * (lats - lat1), -1.0)  # safe outside the jet: exp would overflow
    jet = torch.where(inside, 80.0 / math.exp(-4.0 / (lat1 - lat0) ** 2) * torch.exp(1.0 / product), 0.0)
    bump = 120.0 * torch.cos(lats) * torch.exp(-((3 * (lons - math.pi)) ** 2) - 15 * (bump_lat - lats) ** 2)
    uv = torch.stack((jet, torch.zeros_like(jet)))  # (2, lat, lon)
    zeta_delta = _curl_div(eq, grid, uv)
    absolute = grid.isht(zeta_delta[0]) + grid.coriolis
    fluxes = _curl_div(eq, grid, uv * absolute)
    phi = grid.invlap * fluxes[0] - grid.sht(0.5 * (uv**2).sum(0)) + grid.sht(eq.gravity * (eq.mean_depth + bump))
    return torch.tril(torch.stack((phi, zeta_delta[0], zeta_delta[1])))[None]


def balanced(eq: ShallowWater, vorticity: torch.Tensor, nlat: int) -> torch.Tensor:
    """The non-divergent flow with vorticity spectrum ``(batch, K, K)`` (degrees ``< K``) and the geopotential in
    nonlinear balance with it (``d_t delta = 0``), of mean ``g H``; spectrum ``(batch, 3, nlat, nlat)``:

        Laplacian(Phi) = curl((zeta + f) u) - Laplacian(|u|^2 / 2).

    The products are formed on an equiangular grid of ``4 K`` latitudes, where every coefficient of the
    geopotential (degrees ``<= 2 K - 2``) is exact, and the result truncated (or zero-padded) to ``nlat``: the
    same vorticity gives the same continuous state at every ``nlat >= 2 K - 1``.
    """
    if (not isinstance(vorticity, torch.Tensor) or vorticity.dtype != torch.complex128 or vorticity.ndim != 3
            or vorticity.shape[1] != vorticity.shape[2]):
        got = f"{tuple(vorticity.shape)} {vorticity.dtype}" if isinstance(vorticity, torch.Tensor) else type(vorticity)
        raise SolverError(f"vorticity must be a complex128 spectrum (batch, K, K), got {got}")
    degrees = vorticity.shape[-1]
    aux = 4 * degrees
    grid = _grid(eq, aux, vorticity.device)
    zeta = torch.zeros(vorticity.shape[0], aux, aux, dtype=torch.complex128, device=vorticity.device)
    zeta[:, :degrees, :degrees] = torch.tril(vorticity)
    spectrum = torch.stack((torch.zeros_like(zeta), zeta, torch.zeros_like(zeta)), dim=1)
    uv = _velocity(eq, grid, spectrum)
    fluxes = _curl_div(eq, grid, uv * (grid.isht(zeta)[:, None] + grid.coriolis))
    phi = grid.invlap * fluxes[:, 0] - grid.sht(0.5 * (uv**2).sum(dim=1))
    phi[:, 0, 0] = math.sqrt(4 * math.pi) * eq.gravity * eq.mean_depth  # Y_00 = 1 / sqrt(4 pi)
    spectrum = torch.tril(torch.stack((phi, zeta, torch.zeros_like(zeta)), dim=1))
    out = torch.zeros(spectrum.shape[0], 3, nlat, nlat, dtype=torch.complex128, device=vorticity.device)
    keep = min(nlat, 2 * degrees - 1)  # the products' degrees; the quadrature leaves noise above them
    out[..., :keep, :keep] = spectrum[..., :keep, :keep]
    return out


def invariants(eq: ShallowWater, spectrum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mass, energy)`` per sample, ``(batch,)`` each: the integrals of ``Phi`` and of
    ``(Phi |u|^2 + Phi^2 / g) / 2`` over the sphere (by the grid's quadrature)."""
    grid = _grid(eq, _check_spectrum(spectrum), spectrum.device)
    phi, uv = grid.isht(spectrum[:, 0]), _velocity(eq, grid, spectrum)
    area = grid.weights * (2 * math.pi / grid.lons.shape[0]) * eq.radius**2  # (lat, 1)
    mass = (phi * area).sum(dim=(-2, -1))
    energy = (0.5 * (phi * (uv**2).sum(dim=1) + phi**2 / eq.gravity) * area).sum(dim=(-2, -1))
    return mass, energy


def max_stable_dt(eq: ShallowWater, nlat: int, speed: float = 0.0) -> float:
    """The longest stable step in s for flow speeds up to ``speed`` m/s: ``0.7 a / ((c + speed) lmax)``,
    with gravity waves at the truncation degree oscillating at about ``c lmax / a``."""
    return MAX_COURANT * eq.radius / ((eq.wave_speed + speed) * nlat)


def _check_stable(eq: ShallowWater, fields: torch.Tensor, dt: float, t: float) -> None:
    nlat = fields.shape[-2]
    speed = float(fields[:, 1:].square().sum(dim=1).sqrt().max())
    limit = max_stable_dt(eq, nlat, speed)
    if dt > limit:
        raise SolverError(f"dt={dt:g} s violates the stability bound of gravity waves and advection at "
                          f"t={t / 3600:g} h (c + max|u| = {eq.wave_speed + speed:.0f} m/s); use dt <= {limit:.0f} s "
                          f"for {nlat} x {2 * nlat}")


def integrate(eq: ShallowWater, state0: torch.Tensor, times: Sequence[float], *, dt: float,
              closure: Closure | None = None, progress: bool = False) -> torch.Tensor:
    """Integrate the spectrum ``state0`` ``(batch, 3, nlat, nlat)`` of ``(Phi, zeta, delta)`` from ``t = 0``.

    Args:
        times: increasing output times in seconds, ``>= 0``, each interval a whole multiple of ``dt`` (the
            Adams-Bashforth history assumes one step); 0 records the initial fields.
        dt: time step in seconds; refused above :func:`max_stable_dt` at the start and every output time.
        closure: ``closure(fields, t)``, an extra explicit tendency (see :func:`tendency`).

    Returns:
        ``(batch, len(times), 3, nlat, 2 nlat)`` float64: height, eastward and northward velocity, latitude
        ascending (:func:`to_fields`).

    Raises:
        SolverDiverged: the state became non-finite or broke the stability bound; it keeps the frames before.
    """
    nlat = _check_spectrum(state0, "state0")
    if not bool(torch.isfinite(torch.view_as_real(state0)).all()):
        raise SolverError("the initial state0 contains NaN or Inf")
    dt = check_dt(dt)
    times = check_times(times)
    for start, stop in zip([0.0, *times[:-1]], times):
        if abs((stop - start) / dt - round((stop - start) / dt)) > 1e-9:  # as run_to_times splits them
            raise SolverError(f"output intervals must be whole multiples of dt={dt:g} s, got {stop - start:g} s")
    initial = to_fields(eq, state0)
    _check_stable(eq, initial, dt, 0.0)
    return run_to_times(
        initial=initial, state=ShallowWaterState(state0), times=times, dt=dt, progress=progress,
        desc=f"shallow water {nlat}x{2 * nlat}",
        step=lambda state, t, h: step(eq, state, h, t=t, closure=closure),
        observe=lambda state: to_fields(eq, state.spectrum),
        check=lambda fields, h, t: _check_stable(eq, fields, h, t),
    )


def solve(eq: ShallowWater, initial: torch.Tensor, times_hours: Sequence[float], *, dt: float,
          closure: Closure | None = None, progress: bool = True, attrs: dict | None = None) -> xr.Dataset:
    """:func:`integrate` the spectrum ``initial`` to ``times_hours`` (hours; ``dt`` in seconds) and wrap the
    trajectory as ``height``, ``eastward_velocity``, ``northward_velocity`` over ``(sample, time, lat, lon)``,
    latitude ascending, with the equation's attributes (plus ``attrs``; a closure by its qualified name)."""
    from ..data.cf import trajectory_dataset

    times = check_times(times_hours)
    trajectory = integrate(eq, initial, [3600.0 * t for t in times], dt=dt, closure=closure,
                           progress=progress).cpu()
    grid = _grid(eq, initial.shape[-1], initial.device)
    lat = torch.rad2deg(grid.lats).flip(0).cpu()
    lon = torch.rad2deg(grid.lons).cpu()
    ds = trajectory_dataset(
        {"height": trajectory[:, :, 0], "eastward_velocity": trajectory[:, :, 1],
         "northward_velocity": trajectory[:, :, 2]},
        times=times, coords={"lat": lat, "lon": lon},
        attrs={**eq.attributes(), "dt_seconds": float(dt), **closure_attrs(closure),
               "latitude_order": "flipped from the solver's descending order to ascending", **(attrs or {})})
    ds["time"].attrs.update({"units": "hours", "long_name": "time since the initial condition"})
    return ds
