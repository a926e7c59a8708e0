"""3-D incompressible Navier-Stokes in a periodic cube, pseudo-spectral, optionally Boussinesq and rotating.

Equations, with velocity ``u = (u, v, w)`` (``w`` vertical, along ``e_z``), vorticity ``omega = curl u`` and,
when the state carries one, the buoyancy ``b``:

    d_t u = u x omega - grad P + b e_z - f e_z x u + nu Laplacian u,     div u = 0,
    d_t b = -u . grad b - N^2 w + kappa Laplacian b,

on ``[0, L)^3`` with periodic boundaries. ``P = p / rho_0 + |u|^2 / 2`` is the total head: the rotational
form ``u x omega = (u . grad) u - grad |u|^2 / 2`` of advection moves the kinetic part into the pressure,
which the Leray projection ``P(k) = I - k k^T / |k|^2`` removes in Fourier space.

Sign convention and units (any consistent set; the defaults are nondimensional with ``L = 2 pi``):
``b = -g (rho - rho_ref(z)) / rho_0`` is the buoyancy (an acceleration, length / time^2) of the departure
from a linear reference stratification, ``N^2 = -(g / rho_0) d rho_ref / dz >= 0`` the squared
Brunt-Vaisala frequency (1 / time^2), so the total buoyancy is ``N^2 z + b`` and light fluid (``b > 0``)
rises; ``f`` is the Coriolis parameter (1 / time; rotation about ``+e_z`` at rate ``f / 2``); ``nu`` and
``kappa`` are the kinematic viscosity and buoyancy diffusivity (length^2 / time). Linear internal waves
of wavevector ``k = (k_h, k_z)`` then have ``omega^2 = (N^2 |k_h|^2 + f^2 k_z^2) / |k|^2``; the energy
budget is ``dK/dt = <w b> - eps`` and ``dK_P/dt = -<w b> - eps_P`` (see the statistics below; Riley &
Lindborg 2008, "Stratified turbulence: a possible interpretation of some geophysical turbulence
measurements", J. Atmos. Sci. 65, for the regime this targets).

Discretisation (Rogallo 1981, NASA TM 81315; Canuto et al. 2006, "Spectral Methods: Fundamentals in Single
Domains"): the state is the spectrum ``rfftn`` over ``(z, y, x)`` of the fields ``(batch, C, z, y, x)``, channels
``(u, v, w)`` (``C = 3``) or ``(u, v, w, b)`` (``C = 4``, a stratified state), laid out ``(batch, C, k_z, k_y,
k_x)``.
The products ``u x omega`` and ``u b`` are formed on the grid and dealiased by the 2/3 rule (Orszag 1971,
J. Atmos. Sci. 28): modes with an integer wavenumber ``|k_i| > (n - 1) // 3`` are dropped, so no product of
kept modes aliases onto a kept mode. The advection of buoyancy is taken in flux form ``div(u b)`` (equal to
``u . grad b`` for the solenoidal, dealiased ``u``): one field more to transform back, two fewer forward
than ``u . grad b``. One evaluation of the explicit term costs one inverse FFT call of the ``C`` state fields
and the three vorticity components together and one forward call of ``u x omega`` (3 fields) and, stratified,
``u b`` (3 more): 9 3-D transforms unstratified, 13 stratified (14 with a closure). Everything else runs on
the kept modes alone, about (2/3)^3 of them, stored as a compact band.

The explicit part (advection, buoyancy, Coriolis, closure) is computed on the kept modes and projected;
viscosity and diffusion are integrated exactly by ETDRK4 (Cox & Matthews 2002; :mod:`._etd`), fourth order,
four evaluations per step. Its coefficients are scalars per mode (the same for the three velocity
components), so the velocity stays solenoidal to round-off. Modes beyond the 2/3 band, if the initial
state has any, only decay by viscosity/diffusion; the initial conditions here have none.

The waves and advection are explicit: with the largest explicit frequency

    Omega = k_max max_x (|u| + |v| + |w|) + max(N, |f|),     k_max = 2 pi ((n - 1) // 3) / L,

a step is stable while ``dt Omega <= 2 sqrt 2`` (ETDRK4 reduces to classical RK4 without the linear part,
whose stability interval on the imaginary axis this is); :func:`stability_number` is ``dt Omega``.

An optional closure adds an explicit tendency ``closure(state, t)`` of the physical state ``(batch, C, n, n,
n)``, at each stage's time; like advection it is truncated and (its velocity part) projected. Steps are
differentiable with autograd. The statistics (kinetic and potential energy, their dissipation, buoyancy flux,
spectrum) are those a reduced model of decaying stratified turbulence evolves, as in Portwood et al. (2019),
"Turbulence forecasting via Neural ODE", arXiv:1911.05180 (a neural ODE for the dissipation of DNS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np
import torch

from ..errors import SolverError
from ..spectral import wavenumbers
from ._etd import ETDRK4Coefficients, etdrk4_coefficients, etdrk4_step
from ._stepping import (Closure, OperatorCache, check_dt, check_field, check_finite, check_times, closure_attrs,
                        closure_tendency, run_to_times)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["NavierStokes3D", "step", "integrate", "solve", "explicit_tendency", "stability_number", "stable_dt",
           "STABILITY_LIMIT", "project", "divergence", "vorticity", "kinetic_energy", "enstrophy", "dissipation",
           "potential_energy", "potential_dissipation", "buoyancy_flux", "energy_spectrum", "taylor_green",
           "abc_flow", "random_velocity"]

STABILITY_LIMIT = 2 * math.sqrt(2)  # RK4's stability interval on the imaginary axis: dt * Omega <= 2 sqrt 2
_DIMS = (-3, -2, -1)


@dataclass(frozen=True)
class NavierStokes3D:
    """Incompressible (Boussinesq, rotating) Navier-Stokes on the periodic cube ``[0, length)^3``.

    Attributes:
        viscosity: kinematic viscosity ``nu >= 0`` (length^2 / time).
        diffusivity: buoyancy diffusivity ``kappa >= 0``; ``None`` (default) takes ``viscosity`` (Prandtl 1).
        buoyancy_frequency: Brunt-Vaisala frequency ``N >= 0`` of the background stratification (1 / time);
            ``N > 0`` needs a state with a buoyancy channel.
        coriolis_parameter: ``f`` (1 / time), rotation about ``+e_z``; either sign.
        length: side of the cube.

    A state with 4 channels carries buoyancy (with ``N = 0`` it is active but unstratified); 3 channels
    are velocity alone.
    """

    viscosity: float
    diffusivity: float | None = None
    buoyancy_frequency: float = 0.0
    coriolis_parameter: float = 0.0
    length: float = 2 * math.pi
    _cache: OperatorCache = field(default_factory=OperatorCache, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.viscosity) and self.viscosity >= 0):
            raise SolverError(f"viscosity must be finite and >= 0, got {self.viscosity}")
        if self.diffusivity is None:
            object.__setattr__(self, "diffusivity", float(self.viscosity))
        if not (math.isfinite(self.diffusivity) and self.diffusivity >= 0):
            raise SolverError(f"diffusivity must be finite and >= 0, got {self.diffusivity}")
        if not (math.isfinite(self.buoyancy_frequency) and self.buoyancy_frequency >= 0):
            raise SolverError(f"buoyancy_frequency N must be finite and >= 0, got {self.buoyancy_frequency}")
        if not math.isfinite(self.coriolis_parameter):
            raise SolverError(f"coriolis_parameter f must be finite, got {self.coriolis_parameter}")
        if not (math.isfinite(self.length) and self.length > 0):
            raise SolverError(f"length must be positive, got {self.length}")

    @property
    def wave_frequency(self) -> float:
        """``max(N, |f|)``, the largest frequency of linear inertia-gravity waves."""
        return max(self.buoyancy_frequency, abs(self.coriolis_parameter))

    def attributes(self) -> dict:
        """The equation and its discretisation as NetCDF attributes."""
        return {"equation": "navier_stokes_3d_boussinesq", "viscosity": self.viscosity,
                "diffusivity": self.diffusivity, "buoyancy_frequency": self.buoyancy_frequency,
                "coriolis_parameter": self.coriolis_parameter, "domain_length": self.length,
                "dealiasing": "2/3", "scheme": "etdrk4",
                "conventions": "d_t u = u x omega - grad P + b e_z - f e_z x u + nu Lap u; "
                               "d_t b = -u.grad b - N^2 w + kappa Lap b; b = -g rho'/rho_0, z up"}


class _Modes(NamedTuple):
    """Spectral multipliers on one layout of modes, broadcastable against ``(..., k_z, k_y, k_x)``."""

    ik: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # i k_x (1, 1, k_x), i k_y (1, k_y, 1), i k_z (k_z, 1, 1),
    # complex; zero on Nyquist planes, whose derivative is ambiguous (+-n/2), as in the 2-D solver
    inverse_k2: torch.Tensor  # (k_z, k_y, k_x) complex with real values: 1 / |k|^2 of those derivatives, 0 at k = 0
    k2: torch.Tensor  # (k_z, k_y, k_x) real |k|^2 (viscosity, diffusion, spectrum shells)


class _Operators(NamedTuple):
    full: _Modes  # every rfftn mode: (n, n, n // 2 + 1)
    band: _Modes  # the modes the 2/3 rule keeps, |k_i| <= c, in the band layout (2c + 1, 2c + 1, c + 1)
    weights: torch.Tensor  # (n // 2 + 1,) real: how often each rfft column counts in a sum over all modes (1 or 2)
    cutoff: int  # c = (n - 1) // 3: integer |k_i| > c are dropped (3 k < n)


def _real(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if _real(dtype) == torch.float64 else torch.complex64


def _operators(eq: NavierStokes3D, n: int, dtype: torch.dtype, device: torch.device) -> _Operators:
    real = _real(dtype)
    return eq._cache(("operators", n, real, device), lambda: _build_operators(eq, n, real, device))


def _build_operators(eq: NavierStokes3D, n: int, real: torch.dtype, device: torch.device) -> _Operators:
    axes = [wavenumbers(n, eq.length, real=True), wavenumbers(n, eq.length), wavenumbers(n, eq.length)]  # x, y, z
    derivatives = [k.clone() for k in axes]
    if n % 2 == 0:
        for k in derivatives:
            k[n // 2] = 0  # index n // 2: the Nyquist mode of fftfreq, the last of rfftfreq
    c = (n - 1) // 3  # below n / 2: the band holds no Nyquist mode
    band = torch.cat([torch.arange(c + 1), torch.arange(n - c, n)])  # k = 0 .. c, -c .. -1
    weights = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    kept = [axes[0][:c + 1], axes[1][band], axes[2][band]]
    return _Operators(_modes(axes, derivatives, real, device), _modes(kept, kept, real, device),
                      weights.to(real).to(device), c)


def _modes(axes: list[torch.Tensor], derivatives: list[torch.Tensor], real: torch.dtype, device) -> _Modes:
    """Multipliers from float64 axis wavenumbers ``[k_x, k_y, k_z]`` and those the derivatives use."""
    shapes = ((1, 1, -1), (1, -1, 1), (-1, 1, 1))
    axes = [k.view(shape) for k, shape in zip(axes, shapes)]
    derivatives = [k.view(shape) for k, shape in zip(derivatives, shapes)]
    d2 = sum(k**2 for k in derivatives)
    inverse = torch.where(d2 > 0, 1 / torch.where(d2 > 0, d2, 1.0), 0.0)
    complex_dtype = _complex(real)
    return _Modes(tuple((1j * k).to(complex_dtype).to(device) for k in derivatives),
                  inverse.to(complex_dtype).to(device), sum(k**2 for k in axes).to(real).to(device))


def _blocks(n: int, c: int) -> list[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """``(full, band)`` index pairs of the four blocks ``k_z, k_y in {0 .. c, -c .. -1}``, ``k_x in 0 .. c``: the
    modes the 2/3 rule keeps in an ``rfftn`` spectrum and in the band layout (``k_z``, ``k_y`` ordered
    ``0 .. c, -c .. -1``)."""
    halves = ((slice(0, c + 1), slice(0, c + 1)), (slice(n - c, n), slice(c + 1, 2 * c + 1)))
    return [((Ellipsis, zf, yf, slice(0, c + 1)), (Ellipsis, zb, yb, slice(None)))
            for zf, zb in halves for yf, yb in halves]


def _band(spectrum: torch.Tensor, c: int) -> torch.Tensor:
    """The kept modes of an ``rfftn`` spectrum: ``(..., n, n, n // 2 + 1) -> (..., 2c + 1, 2c + 1, c + 1)``."""
    band = spectrum.new_empty((*spectrum.shape[:-3], 2 * c + 1, 2 * c + 1, c + 1))
    for full, kept in _blocks(spectrum.shape[-3], c):
        band[kept] = spectrum[full]
    return band


def _unband_(spectrum: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """Write ``band`` ``(..., 2c + 1, 2c + 1, c + 1)`` into the kept modes of ``spectrum`` ``(..., n, n, n // 2 + 1)``,
    in place; the other modes are left as they are."""
    for full, kept in _blocks(spectrum.shape[-3], band.shape[-1] - 1):
        spectrum[full] = band[kept]
    return spectrum


def _zero_outside_(spectrum: torch.Tensor, c: int) -> torch.Tensor:
    """Zero the modes of ``spectrum`` ``(..., n, n, n // 2 + 1)`` with an integer ``|k_i| > c``, in place."""
    n = spectrum.shape[-3]
    spectrum[..., c + 1:] = 0
    spectrum[..., c + 1:n - c, :c + 1] = 0
    spectrum[..., c + 1:n - c, :, :c + 1] = 0
    return spectrum


def _curl(modes: _Modes, u_hat: torch.Tensor) -> list[torch.Tensor]:
    """The three components ``(..., k_z, k_y, k_x)`` of ``i k x u_hat`` for ``u_hat`` ``(..., 3, k_z, k_y, k_x)``."""
    ikx, iky, ikz = modes.ik
    u, v, w = u_hat.unbind(dim=-4)
    return [torch.mul(iky, w).addcmul_(ikz, v, value=-1), torch.mul(ikz, u).addcmul_(ikx, w, value=-1),
            torch.mul(ikx, v).addcmul_(iky, u, value=-1)]


def _divergence(modes: _Modes, f_hat: torch.Tensor) -> torch.Tensor:
    """``i k . f_hat``: ``(..., 3, k_z, k_y, k_x) -> (..., k_z, k_y, k_x)``."""
    ikx, iky, ikz = modes.ik
    fx, fy, fz = f_hat.unbind(dim=-4)
    return torch.mul(ikx, fx).addcmul_(iky, fy).addcmul_(ikz, fz)


def _project_(modes: _Modes, f_hat: torch.Tensor) -> torch.Tensor:
    """Leray projection ``f - k (k . f) / |k|^2 = f + (i k) (i k . f) / |k|^2`` of ``f_hat`` ``(..., 3, k_z, k_y,
    k_x)``, in place."""
    potential = _divergence(modes, f_hat).mul_(modes.inverse_k2)
    for i, ik in enumerate(modes.ik):
        f_hat[..., i, :, :, :].addcmul_(ik, potential)  # select, not unbind: autograd allows these views in place
    return f_hat


def _grid_size(shape: Sequence[int], what: str, *, spectral: bool = False) -> int:
    """``n`` of a ``(..., C, n, n, n)`` physical (``spectral``: ``(..., C, n, n, n // 2 + 1)``) shape, refused
    unless cubic with ``n >= 4`` and ``C`` in ``(3, 4)``."""
    if len(shape) < 4 or shape[-4] not in (3, 4):
        raise SolverError(f"{what} must be (..., C, n, n, n) with C = 3 (u, v, w) or 4 (u, v, w, b) channels, "
                          f"got shape {tuple(shape)}")
    n = shape[-3]
    last = n // 2 + 1 if spectral else n
    if shape[-2] != n or shape[-1] != last:
        raise SolverError(f"{what} must be on a cubic (z, y, x) grid, got spatial shape {tuple(shape[-3:])}")
    if n < 4:
        raise SolverError(f"the grid is too small: n={n} keeps no mode under the 2/3 rule (integer wavenumbers k "
                          f"with 3 k < n are kept); use n >= 4")
    return n


def _ops_for(eq: NavierStokes3D, v_hat: torch.Tensor) -> _Operators:
    n = _grid_size(v_hat.shape, "state spectrum", spectral=True)
    if v_hat.shape[-4] == 3 and eq.buoyancy_frequency > 0:
        raise SolverError(f"a stratified equation (N={eq.buoyancy_frequency}) needs a buoyancy channel: state "
                          f"(batch, 4, n, n, n) with channels (u, v, w, b), got {v_hat.shape[-4]} channels")
    return _operators(eq, n, v_hat.dtype, v_hat.device)


def _explicit(eq: NavierStokes3D, ops: _Operators, n: int, band: torch.Tensor, closure: Closure | None,
              t: float) -> torch.Tensor:
    """The dealiased explicit tendency in the band layout, ``(batch, C, 2c + 1, 2c + 1, c + 1)``, of the state
    ``band`` (same layout): the Leray projection of ``u x omega + b e_z - f e_z x u (+ closure)`` and
    ``-div(u b) - N^2 w (+ closure)``, each product taken on the ``n^3`` grid.

    Two FFT calls: one inverse of the state and vorticity together, one forward of the products together
    (fewer, larger calls: each call has a start-up cost, and a multi-threaded FFT splits a batch best). All
    else works on the band alone, about (2/3)^3 of the modes."""
    batch, channels = band.shape[:2]
    spectra = _unband_(_zero_outside_(band.new_empty(batch, channels + 3, n, n, n // 2 + 1), ops.cutoff),
                       torch.cat([band, *(c[:, None] for c in _curl(ops.band, band[:, :3]))], dim=1))
    fields = torch.fft.irfftn(spectra, s=(n, n, n), dim=_DIMS)  # (batch, C + 3, z, y, x): u, v, w[, b], omega
    u, v, w = fields[:, 0], fields[:, 1], fields[:, 2]
    ox, oy, oz = fields[:, channels], fields[:, channels + 1], fields[:, channels + 2]
    products = [torch.mul(v, oz).addcmul_(w, oy, value=-1), torch.mul(w, ox).addcmul_(u, oz, value=-1),
                torch.mul(u, oy).addcmul_(v, ox, value=-1)]  # u x omega
    if closure is not None:
        tendency = closure_tendency(closure, fields[:, :channels], t)
        for product, extra in zip(products, tendency[:, :3].unbind(dim=1)):
            product.add_(extra)
    if channels == 4:
        b = fields[:, 3]
        products += [u * b, v * b, w * b]  # the flux u b
        if closure is not None:
            products.append(tendency[:, 3])
    spectra = _band(torch.fft.rfftn(torch.stack(products, dim=1), dim=_DIMS), ops.cutoff)  # (batch, 3 | 6 | 7, ...)
    force = spectra[:, :3]
    if eq.coriolis_parameter:  # -f e_z x u = (f v, -f u, 0)
        force[:, 0].add_(band[:, 1], alpha=eq.coriolis_parameter)
        force[:, 1].add_(band[:, 0], alpha=-eq.coriolis_parameter)
    if channels == 4:
        force[:, 2].add_(band[:, 3])  # b e_z
    _project_(ops.band, force)
    if channels == 3:
        return spectra
    buoyancy = _divergence(ops.band, spectra[:, 3:6])  # (batch, ...): i k . (u b)_hat
    if eq.buoyancy_frequency:
        buoyancy.add_(band[:, 2], alpha=eq.buoyancy_frequency**2)
    if closure is not None:
        buoyancy.sub_(spectra[:, 6])
    spectra[:, 3] = buoyancy.neg_()  # -div(u b) - N^2 w (+ closure), over (u b)_hat, no longer needed
    return spectra[:, :4]


def explicit_tendency(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """The dealiased explicit part of ``d_t`` of the physical state, ``(batch, C, n, n, n) -> (batch, C, n, n,
    n)``: ``P[u x omega + b e_z - f e_z x u]`` and ``-u . grad b - N^2 w`` (viscosity and diffusion excluded),
    on the modes the 2/3 rule keeps. One call costs what one stage of :func:`step` costs."""
    n = _grid_size(state.shape, "state")
    v_hat = torch.fft.rfftn(state, dim=_DIMS)
    ops = _ops_for(eq, v_hat)
    tendency = _explicit(eq, ops, n, _band(v_hat, ops.cutoff), None, 0.0)
    return torch.fft.irfftn(_unband_(torch.zeros_like(v_hat), tendency), s=(n, n, n), dim=_DIMS)


def step(eq: NavierStokes3D, v_hat: torch.Tensor, dt: float, *, t: float = 0.0,
         closure: Closure | None = None) -> torch.Tensor:
    """One ETDRK4 step from time ``t`` of the spectrum ``v_hat = rfftn(state)``, ``(batch, C, k_z, k_y, k_x)``.

    ``closure(state, t)``, when given, adds the tendency ``(batch, C, n, n, n)`` of the physical state to the
    explicit part at each stage (``t``, ``t + dt/2`` twice, ``t + dt``). The stages run on the modes the 2/3
    rule keeps; any others only decay, by ``exp(-nu |k|^2 dt)`` (``kappa`` for buoyancy). Differentiable with
    autograd.
    """
    ops = _ops_for(eq, v_hat)
    n, channels, dt = v_hat.shape[-3], v_hat.shape[1], float(dt)
    coefficients, decay = eq._cache(("etdrk4", n, channels, dt, v_hat.dtype, v_hat.device),
                                    lambda: _etdrk4(eq, ops, channels, dt, v_hat.dtype))
    band = etdrk4_step(_band(v_hat, ops.cutoff), lambda x, s: _explicit(eq, ops, n, x, closure, t + s * dt),
                       coefficients)
    return _unband_(decay * v_hat, band)


def _linear(eq: NavierStokes3D, modes: _Modes, channels: int) -> torch.Tensor:
    """``L = -nu |k|^2`` (velocity) and ``-kappa |k|^2`` (buoyancy), float64: ``(k_z, k_y, k_x)`` when one rate
    serves every channel, else ``(C, k_z, k_y, k_x)``."""
    k2 = modes.k2.to(torch.float64)
    if channels == 3 or eq.diffusivity == eq.viscosity:
        return -eq.viscosity * k2
    return torch.stack([-eq.viscosity * k2] * 3 + [-eq.diffusivity * k2])


def _etdrk4(eq: NavierStokes3D, ops: _Operators, channels: int, h: float,
            dtype: torch.dtype) -> tuple[ETDRK4Coefficients, torch.Tensor]:
    """ETDRK4 coefficients on the band and ``exp(h L)`` on every mode (of the state's complex dtype). ``|k|^2``
    takes few distinct values (integer sums of squares), so the contour integrals run on those alone."""
    values, index = torch.unique(_linear(eq, ops.band, channels), return_inverse=True)
    coefficients = ETDRK4Coefficients(*(c[index] for c in etdrk4_coefficients(values, h, dtype=dtype)))
    return coefficients, torch.exp(h * _linear(eq, ops.full, channels)).to(dtype)


def vorticity(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """``omega = curl u`` (spectral derivatives): ``(..., C, n, n, n) -> (..., 3, n, n, n)``."""
    n = _grid_size(state.shape, "state")
    ops = _operators(eq, n, state.dtype, state.device)
    omega_hat = torch.stack(_curl(ops.full, torch.fft.rfftn(state[..., :3, :, :, :], dim=_DIMS)), dim=-4)
    return torch.fft.irfftn(omega_hat, s=(n, n, n), dim=_DIMS)


def divergence(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """``div u`` (spectral derivatives): ``(..., C, n, n, n) -> (..., n, n, n)``."""
    n = _grid_size(state.shape, "state")
    ops = _operators(eq, n, state.dtype, state.device)
    return torch.fft.irfftn(_divergence(ops.full, torch.fft.rfftn(state[..., :3, :, :, :], dim=_DIMS)), s=(n, n, n),
                            dim=_DIMS)


def project(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """The state with its velocity replaced by the Leray projection ``u - grad Laplacian^-1 div u`` (in Fourier
    space ``(I - k k^T / |k|^2) u_hat``, the nearest solenoidal field in L2); buoyancy unchanged.
    ``(..., C, n, n, n) -> (..., C, n, n, n)``."""
    n = _grid_size(state.shape, "state")
    ops = _operators(eq, n, state.dtype, state.device)
    u_hat = _project_(ops.full, torch.fft.rfftn(state[..., :3, :, :, :], dim=_DIMS))
    return torch.cat([torch.fft.irfftn(u_hat, s=(n, n, n), dim=_DIMS), state[..., 3:, :, :, :]], dim=-4)


def _relative_divergence(eq: NavierStokes3D, state: torch.Tensor) -> float:
    """Largest ``||div u|| / ||grad u||`` over the leading dims (0 for a uniform velocity)."""
    n = _grid_size(state.shape, "state")
    ops = _operators(eq, n, state.dtype, state.device)
    u_hat = torch.fft.rfftn(state[..., :3, :, :, :], dim=_DIMS)
    div = _mean_square(ops, _divergence(ops.full, u_hat)[..., None, :, :, :])
    grad = _mean_square(ops, ops.full.k2.sqrt() * u_hat)  # sum of |k|^2 |u_hat|^2 = ||grad u||^2
    ratio = torch.where(grad > 0, div / torch.where(grad > 0, grad, 1), 0)
    return float(ratio.max().sqrt())


def _mean_square(ops: _Operators, spectrum: torch.Tensor) -> torch.Tensor:
    """Volume mean of the squared fields whose ``rfftn`` is ``spectrum`` ``(..., c, k_z, k_y, k_x)``, summed over
    ``c`` (Parseval): ``(...)``."""
    n = spectrum.shape[-3]
    return (spectrum.real.square() + spectrum.imag.square()).mul(ops.weights).sum(dim=(-4, -3, -2, -1)) / n**6


def _k_max(eq: NavierStokes3D, n: int) -> float:
    """The largest wavenumber the 2/3 rule keeps on the ``n^3`` grid, ``2 pi ((n - 1) // 3) / L``."""
    return 2 * math.pi * ((n - 1) // 3) / eq.length


def _advection_frequency(eq: NavierStokes3D, state: torch.Tensor) -> float:
    """``k_max max_x(|u| + |v| + |w|)`` over the batch and grid."""
    return _k_max(eq, state.shape[-1]) * float(state[..., :3, :, :, :].abs().sum(dim=-4).max())


def stability_number(eq: NavierStokes3D, state: torch.Tensor, dt: float) -> float:
    """``dt Omega``, with ``Omega = k_max max_x (|u| + |v| + |w|) + max(N, |f|)`` the largest explicit
    frequency of the physical ``state`` ``(batch, C, n, n, n)`` (``k_max`` the largest wavenumber the 2/3 rule
    keeps). Steps are stable while it is at most :data:`STABILITY_LIMIT` ``= 2 sqrt 2``; it is the Courant
    number ``dt max(|u| + |v| + |w|) / dx`` times ``k_max dx`` (about ``2 pi / 3``), plus the wave part."""
    return float(dt) * (_advection_frequency(eq, state) + eq.wave_frequency)


def stable_dt(eq: NavierStokes3D, state: torch.Tensor, *, stability: float = 1.0,
              max_speed_factor: float = 1.5) -> float:
    """A step with :func:`stability_number` ``stability`` for ``max_speed_factor`` times the peak speed of
    ``state`` ``(batch, C, n, n, n)``: ``stability / (factor k_max max(|u| + |v| + |w|) + max(N, |f|))``, the CFL
    and inertia-gravity wave limits in one (``stability = 1`` is a Courant number of about 1 / (2.1 factor),
    0.32 by default). A flow at rest without waves gets ``stability * dx``."""
    frequency = max_speed_factor * _advection_frequency(eq, state) + eq.wave_frequency
    return stability / frequency if frequency > 0 else stability * eq.length / state.shape[-1]


def _check_state(eq: NavierStokes3D, state: torch.Tensor, dt: float, t: float, max_stability: float) -> None:
    """:class:`SolverError` if ``state`` is non-finite or ``dt`` breaks the stability bound."""
    if not bool(torch.isfinite(state).all()):
        raise SolverError(f"the solution became non-finite by t={t:.6g}; reduce dt (now {dt:.3g})")
    frequency = _advection_frequency(eq, state) + eq.wave_frequency
    if dt * frequency > max_stability:
        raise SolverError(
            f"dt={dt:.3g} is above the stability bound at t={t:.6g}: dt (k_max max(|u|+|v|+|w|) + max(N, |f|)) = "
            f"{dt * frequency:.3g} > {max_stability:.3g} (k_max={_k_max(eq, state.shape[-1]):.3g}, "
            f"N={eq.buoyancy_frequency:.3g}, f={eq.coriolis_parameter:.3g}); use dt <= {max_stability / frequency:.3g}")


def _check_initial(eq: NavierStokes3D, state0: torch.Tensor) -> int:
    if state0.ndim != 5:
        raise SolverError(f"state0 must be (batch, C, n, n, n), got shape {tuple(state0.shape)}")
    check_field(state0, "state0", "(batch, C, n, n, n)")
    n = _grid_size(state0.shape, "state0")
    if state0.shape[1] == 3 and eq.buoyancy_frequency > 0:
        raise SolverError(f"a stratified equation (N={eq.buoyancy_frequency}) needs a buoyancy channel: state0 "
                          f"(batch, 4, n, n, n) with channels (u, v, w, b), got 3 channels")
    check_finite(state0, "state0")
    tolerance = math.sqrt(torch.finfo(state0.dtype).eps)
    ratio = _relative_divergence(eq, state0)
    if ratio > tolerance:
        raise SolverError(f"the initial velocity is not solenoidal: ||div u|| / ||grad u|| = {ratio:.3g} > "
                          f"{tolerance:.3g} (sqrt of {state0.dtype} epsilon); pass project(eq, state0)")
    return n


def integrate(
    eq: NavierStokes3D,
    state0: torch.Tensor,
    times: Sequence[float],
    *,
    dt: float | None = None,
    adaptive: bool = False,
    stability: float = 1.0,
    max_stability: float = STABILITY_LIMIT,
    closure: Closure | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Integrate from ``t = 0`` and record the state at ``times``.

    Args:
        eq: the equation.
        state0: initial state ``(batch, C, n, n, n)``, channels ``(u, v, w)`` or ``(u, v, w, b)``, float32 or
            float64, any device; the velocity must be solenoidal (see :func:`project`).
        times: increasing output times ``>= 0``; a time of 0 records ``state0``.
        dt: largest time step; each output interval is split into equal steps no larger than it. ``None``
            picks :func:`stable_dt` (with ``adaptive``: no cap beyond the stability bound).
        adaptive: re-choose the step at the start of each output interval, with :func:`stability_number`
            ``stability`` for the current flow (and ``h <= dt`` when given).
        stability: the stability number adaptive steps aim at, in ``(0, max_stability]``.
        max_stability: raise :class:`SolverError` when :func:`stability_number` exceeds it, at the start (a
            ``dt`` above the bound) or at an output time (the flow sped up).
        closure: ``closure(state, t)``, an extra explicit tendency of the physical state (see :func:`step`).
        progress: show a progress bar over steps.

    Returns:
        ``(batch, len(times), C, n, n, n)`` tensor, same dtype and device as ``state0``.

    Raises:
        SolverDiverged: the state became non-finite (naming the first non-finite step) or broke the
            stability bound mid-run; it keeps the frames completed before.
    """
    return _integrate(eq, state0, times, dt=dt, adaptive=adaptive, stability=stability, max_stability=max_stability,
                      closure=closure, progress=progress)[0]


def _integrate(eq: NavierStokes3D, state0: torch.Tensor, times: Sequence[float], *, dt: float | None,
               adaptive: bool, stability: float, max_stability: float, closure: Closure | None,
               progress: bool) -> tuple[torch.Tensor, list[tuple[float, int]]]:
    """:func:`integrate`, also returning ``(h, count)`` of each output interval."""
    n = _check_initial(eq, state0)
    times = check_times(times)
    if adaptive:
        if not 0 < stability <= max_stability:
            raise SolverError(f"stability must be in (0, max_stability={max_stability:.3g}], got {stability}")
        cap = math.inf if dt is None else check_dt(dt)

        def bound(state: torch.Tensor) -> float:
            return min(cap, stable_dt(eq, state, stability=stability, max_speed_factor=1.0))
    else:
        bound = check_dt(stable_dt(eq, state0, stability=stability) if dt is None else dt)
        _check_state(eq, state0, bound, 0.0, max_stability)
    steps_taken: list[tuple[float, int]] = []
    trajectory = run_to_times(
        initial=state0, state=torch.fft.rfftn(state0, dim=_DIMS), times=times, dt=bound, progress=progress,
        desc="navier-stokes-3d",
        step=lambda v_hat, t, h: step(eq, v_hat, h, t=t, closure=closure),
        observe=lambda v_hat: torch.fft.irfftn(v_hat, s=(n, n, n), dim=_DIMS),
        check=lambda state, h, t: _check_state(eq, state, h, t, max_stability),
        steps_taken=steps_taken,
    )
    return trajectory, steps_taken


_FIELD_ATTRS = {
    "u": {"long_name": "x component of velocity", "units": "1"},
    "v": {"long_name": "y component of velocity", "units": "1"},
    "w": {"long_name": "z (vertical) component of velocity", "units": "1"},
    "buoyancy": {"long_name": "buoyancy b = -g (rho - rho_ref(z)) / rho_0", "units": "1"},
}


def solve(
    eq: NavierStokes3D,
    state0: torch.Tensor,
    times: Sequence[float],
    *,
    dt: float | None = None,
    adaptive: bool = False,
    stability: float = 1.0,
    closure: Closure | None = None,
    progress: bool = True,
    attrs: dict | None = None,
) -> xr.Dataset:
    """:func:`integrate` and wrap the trajectory as a CF-annotated ``xr.Dataset``.

    Returns ``u``, ``v``, ``w`` (and ``buoyancy`` for a 4-channel state) over ``(sample, time, z, y, x)``, ``z``
    pointing up (against gravity), with the equation's parameters as attributes (plus ``attrs``). ``dt`` is
    the largest step; with ``adaptive``, ``dt`` lists the step used up to each output time ``t > 0`` and
    ``time_stepping``/``stability_number`` record the rule. A closure is recorded by its qualified name.
    """
    from ..data.cf import trajectory_dataset

    dt = stable_dt(eq, state0, stability=stability) if dt is None and not adaptive else dt
    trajectory, steps_taken = _integrate(eq, state0, times, dt=dt, adaptive=adaptive, stability=stability,
                                         max_stability=STABILITY_LIMIT, closure=closure, progress=progress)
    trajectory = trajectory.cpu()
    stepping = ({"time_stepping": "adaptive-stability-number", "stability_number": stability,
                 "dt": [h for h, _ in steps_taken]} if adaptive else {"dt": dt})
    names = ["u", "v", "w", "buoyancy"][:state0.shape[1]]
    n = state0.shape[-1]
    coord = torch.arange(n, dtype=torch.float64) * (eq.length / n)
    ds = trajectory_dataset({name: trajectory[:, :, i] for i, name in enumerate(names)}, times=times,
                            coords={"z": coord, "y": coord, "x": coord}, field_attrs=_FIELD_ATTRS,
                            attrs={**eq.attributes(), **stepping, **closure_attrs(closure), **(attrs or {})})
    ds["z"].attrs.update({"long_name": "z coordinate (nondimensional), vertical", "axis": "Z", "positive": "up"})
    return ds


# Statistics. <.> is the volume mean; the state is (..., C, n, n, n) with channels (u, v, w[, b]), any leading
# dims (a trajectory (batch, time, C, n, n, n) works as well). Derivatives are spectral, sums over modes exact
# by Parseval.


def kinetic_energy(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """``K = <|u|^2> / 2``: ``(..., C, n, n, n) -> (...)``."""
    _grid_size(state.shape, "state")
    return state[..., :3, :, :, :].square().sum(dim=-4).mean(dim=_DIMS) / 2


def enstrophy(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """``Z = <|omega|^2> / 2`` with ``omega = curl u`` (``= <|grad u|^2> / 2`` for solenoidal ``u``):
    ``(..., C, n, n, n) -> (...)``."""
    n = _grid_size(state.shape, "state")
    ops = _operators(eq, n, state.dtype, state.device)
    u_hat = torch.fft.rfftn(state[..., :3, :, :, :], dim=_DIMS)
    return _mean_square(ops, torch.stack(_curl(ops.full, u_hat), dim=-4)) / 2


def dissipation(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """Kinetic energy dissipation ``eps = nu <|omega|^2> = 2 nu Z``, equal to ``2 nu <S_ij S_ij>`` (``S`` the
    strain rate) for a solenoidal periodic ``u``: ``(..., C, n, n, n) -> (...)``. Unforced,
    ``dK/dt = <w b> - eps``."""
    return 2 * eq.viscosity * enstrophy(eq, state)


def _buoyancy(state: torch.Tensor, what: str) -> torch.Tensor:
    _grid_size(state.shape, "state")
    if state.shape[-4] != 4:
        raise SolverError(f"{what} needs a buoyancy channel: state (..., 4, n, n, n), got shape {tuple(state.shape)}")
    return state[..., 3, :, :, :]


def _stratification(eq: NavierStokes3D, what: str) -> float:
    if eq.buoyancy_frequency <= 0:
        raise SolverError(f"{what} is defined for a stratified flow (N > 0), got N={eq.buoyancy_frequency}")
    return eq.buoyancy_frequency**2


def potential_energy(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """Available potential energy ``K_P = <b^2> / (2 N^2)`` (``N > 0``): ``(..., 4, n, n, n) -> (...)``.
    Unforced, ``dK_P/dt = -<w b> - eps_P`` (:func:`potential_dissipation`), so ``K + K_P`` only decays."""
    return _buoyancy(state, "potential_energy").square().mean(dim=_DIMS) / (2 * _stratification(eq, "potential_energy"))


def potential_dissipation(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """Potential energy dissipation ``eps_P = kappa <|grad b|^2> / N^2`` (``N > 0``): ``(..., 4, n, n, n) -> (...)``."""
    b = _buoyancy(state, "potential_dissipation")
    ops = _operators(eq, state.shape[-1], state.dtype, state.device)
    b_hat = torch.fft.rfftn(b, dim=_DIMS)
    gradient = torch.stack([ik * b_hat for ik in ops.full.ik], dim=-4)  # (..., 3, k_z, k_y, k_x)
    return eq.diffusivity * _mean_square(ops, gradient) / _stratification(eq, "potential_dissipation")


def buoyancy_flux(eq: NavierStokes3D, state: torch.Tensor) -> torch.Tensor:
    """Vertical buoyancy flux ``<w b>``, the conversion rate from potential to kinetic energy:
    ``(..., 4, n, n, n) -> (...)``."""
    return (state[..., 2, :, :, :] * _buoyancy(state, "buoyancy_flux")).mean(dim=_DIMS)


def energy_spectrum(eq: NavierStokes3D, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell-summed kinetic energy spectrum ``E(k)``: ``(..., C, n, n, n) -> (k (shells,), E (..., shells))``.

        E(k_j) dk = sum over modes with j - 1/2 <= |k| / dk < j + 1/2 of |u_hat(k)|^2 / 2,   dk = 2 pi / L,

    with ``u_hat`` the Fourier coefficients (``u = sum_k u_hat(k) exp(i k . x)``), so that
    ``sum_j E(k_j) dk = K`` exactly. ``k_j = j dk``, ``j = 0 .. round(sqrt(3) n / 2)``: shells above ``n / 2`` are
    only partly inside the grid (its corners) and those above ``(n - 1) // 3`` beyond the 2/3 band.
    """
    n = _grid_size(state.shape, "state")
    ops = _operators(eq, n, state.dtype, state.device)
    dk = 2 * math.pi / eq.length
    shell = torch.round(ops.full.k2.to(torch.float64).sqrt() / dk).to(torch.long).flatten()  # (k_z k_y k_x,)
    count = int(shell.max()) + 1
    u_hat = torch.fft.rfftn(state[..., :3, :, :, :], dim=_DIMS)
    density = (u_hat.real.square() + u_hat.imag.square()).sum(dim=-4).mul(ops.weights) / (2 * n**6 * dk)
    flat = density.flatten(start_dim=-3)  # (..., k_z k_y k_x)
    spectrum = flat.new_zeros((*flat.shape[:-1], count)).index_add_(-1, shell.to(flat.device), flat)
    k = torch.arange(count, dtype=state.dtype, device=state.device) * dk
    return k, spectrum


# Initial conditions: physical velocity (batch, 3, n, n, n) on the grid x_j = j L / n (z, y, x order); append a
# buoyancy channel with torch.cat for a stratified run.


def _axes(n: int, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Broadcastable ``(z, y, x)`` grid phases ``2 pi j / n``, shapes ``(n, 1, 1), (1, n, 1), (1, 1, n)``."""
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return tuple(x.view(shape).to(dtype=dtype, device=device) for shape in ((n, 1, 1), (1, n, 1), (1, 1, n)))


def taylor_green(n: int, *, amplitude: float = 1.0, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Taylor & Green (1937): ``u = U sin(x') cos(y') cos(z')``, ``v = -U cos(x') sin(y') cos(z')``, ``w = 0``,
    ``x' = 2 pi x / L`` (the grid values do not depend on ``L``); shape ``(1, 3, n, n, n)``. ``K = U^2 / 8``,
    every mode at ``|k| = sqrt 3 (2 pi / L)``."""
    z, y, x = _axes(n, dtype, device)
    u = amplitude * torch.sin(x) * torch.cos(y) * torch.cos(z)
    v = -amplitude * torch.cos(x) * torch.sin(y) * torch.cos(z)
    return torch.stack([u, v, torch.zeros_like(u)])[None]


def abc_flow(n: int, *, coefficients: tuple[float, float, float] = (1.0, 1.0, 1.0), wavenumber: int = 1,
             dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Arnold-Beltrami-Childress flow with ``(A, B, C) = coefficients`` and ``m = wavenumber``, ``k = 2 pi m / L``:

        u = A sin(k z) + C cos(k y),   v = B sin(k x) + A cos(k z),   w = C sin(k y) + B cos(k x);

    shape ``(1, 3, n, n, n)`` (the grid values do not depend on ``L``). A Beltrami field, ``curl u = k u``, so
    ``u x omega = 0``: an exact solution that decays as ``exp(-nu k^2 t)`` (Dombre et al. 1986, J. Fluid
    Mech. 167).
    """
    if isinstance(wavenumber, bool) or not isinstance(wavenumber, int) or wavenumber < 1:
        raise SolverError(f"wavenumber must be an integer >= 1, got {wavenumber!r}")
    a, b, c = coefficients
    z, y, x = (wavenumber * phase for phase in _axes(n, dtype, device))
    shape = (n, n, n)
    return torch.stack([(a * torch.sin(z) + c * torch.cos(y)).expand(shape),
                        (b * torch.sin(x) + a * torch.cos(z)).expand(shape),
                        (c * torch.sin(y) + b * torch.cos(x)).expand(shape)])[None]


def _cube_shell(m: int) -> torch.Tensor:
    """Integer wavevectors ``(k_z, k_y, k_x)`` with ``max_i |k_i| == m``, in a fixed order; ``(count, 3)``."""
    if m == 0:
        return torch.zeros(1, 3, dtype=torch.long)
    axis = torch.arange(-m, m + 1)
    k = torch.cartesian_prod(axis, axis, axis)
    return k[k.abs().amax(dim=1) == m]


def random_velocity(
    n: int,
    count: int = 1,
    *,
    seed: int,
    peak_wavenumber: float = 3.0,
    energy: float = 0.5,
    band_limit: int | None = None,
    first_sample: int = 0,
    length: float = 2 * math.pi,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> torch.Tensor:
    """Random solenoidal velocity fields with the expected spectrum ``E(k) = A k^4 exp(-2 (k / k_p)^2)``;
    shape ``(count, 3, n, n, n)``.

    Each Fourier mode ``k`` (integer ``max_i |k_i| <= band_limit``, ``k != 0``) gets ``P(k) (a + i b) s(|k|)``,
    ``a, b ~ N(0, I_3)``, ``P`` the Leray projector, and the field is the real part of the series, so that
    ``<|u_hat(k)|^2> = E(|k|) dk^3 / (2 pi |k|^2)`` (``dk = 2 pi / L``): about ``4 pi |k|^2 / dk^2`` modes share a
    shell. ``A`` makes ``int_0^inf E dk = energy``, the expected kinetic energy when the band holds the peak.

    Sample ``first_sample + i`` draws from its own ``torch.Generator`` (seeded from ``numpy.random.SeedSequence
    (seed, spawn_key=(first_sample + i,))``), shell by shell in ``max_i |k_i|``, six normals per mode in a fixed
    order: a grid consumes a prefix of the draws a finer one does, so **the same seed gives the same Fourier
    modes on 32^3 and 64^3 up to the coarser band**, and a sample does not depend on ``count``.

    Args:
        n: grid points per side.
        count: number of fields.
        seed: master seed.
        peak_wavenumber: ``k_p`` (physical wavenumber; ``E`` peaks at ``k = k_p``).
        energy: expected kinetic energy ``<|u|^2> / 2``.
        band_limit: largest integer ``|k_i|`` drawn; default ``(n - 1) // 3``, the modes the 2/3 rule keeps
            (a field with no mode beyond the band satisfies ``dK/dt = -eps`` exactly).
        first_sample: index of the first sample, so that a set can be drawn in chunks.
    """
    band = (n - 1) // 3 if band_limit is None else int(band_limit)
    if not 0 <= band <= (n - 1) // 2:
        raise SolverError(f"band_limit must be in [0, (n - 1) // 2 = {(n - 1) // 2}] for n={n}, got {band_limit}")
    if count < 1:
        raise SolverError(f"count must be >= 1, got {count}")
    if not (math.isfinite(peak_wavenumber) and peak_wavenumber > 0 and math.isfinite(energy) and energy >= 0):
        raise SolverError(f"peak_wavenumber must be > 0 and energy >= 0, got {peak_wavenumber} and {energy}")
    if not (math.isfinite(length) and length > 0):
        raise SolverError(f"length must be positive, got {length}")
    dk = 2 * math.pi / length
    shells = [_cube_shell(m) for m in range(band + 1)]
    modes = torch.cat(shells)  # (modes, 3) (k_z, k_y, k_x) in draw order
    k = modes.to(torch.float64).flip(-1) * dk  # (modes, 3) physical (k_x, k_y, k_z)
    magnitude = k.norm(dim=1)
    amplitude = energy / (0.375 * math.sqrt(math.pi) * (peak_wavenumber**2 / 2) ** 2.5)  # int k^4 e^(-2k^2/kp^2)
    spectrum = amplitude * magnitude**4 * torch.exp(-2 * (magnitude / peak_wavenumber) ** 2)
    scale = torch.where(magnitude > 0, (spectrum * dk**3 / (2 * math.pi * magnitude.clamp_min(1e-300) ** 2)).sqrt(),
                        0.0) / math.sqrt(2)  # E|P(a + ib)|^2 = 4; the real part halves the power: |u_hat|^2 = 2 s^2
    unit = k / magnitude.clamp_min(1e-300)[:, None]
    index = tuple((modes[:, j] % n) for j in range(3))
    fields = torch.zeros(count, 3, n, n, n, dtype=torch.complex128)
    for i in range(count):
        state = np.random.SeedSequence(seed, spawn_key=(first_sample + i,)).generate_state(2, dtype=np.uint32)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        # one call per shell: torch fills a tensor's last 16 normals differently, so one call for all shells
        # would not give a coarser grid's draws as a prefix of a finer one's
        draws = torch.cat([torch.randn(len(shell), 6, generator=generator, dtype=torch.float64) for shell in shells])
        c = torch.complex(draws[:, :3], draws[:, 3:])  # (modes, 3)
        c = (c - unit * (unit * c).sum(dim=1, keepdim=True)) * scale[:, None]
        fields[i][(slice(None), *index)] = c.T
    velocity = torch.fft.ifftn(fields, dim=_DIMS, norm="forward").real
    return velocity.to(dtype=dtype, device=device)
