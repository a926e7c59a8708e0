"""2-D incompressible Navier-Stokes in vorticity form on a periodic square, pseudo-spectral.

Equation (Li et al. 2021, "Fourier Neural Operator for Parametric PDEs", sec. 5.3):

    d_t w + u . grad w = nu Laplacian w - alpha w + f,    u = (d_y psi, -d_x psi),    -Laplacian psi = w,

on ``[0, L)^2`` with periodic boundaries. The state is the vorticity spectrum ``w_hat = rfft2(w)``
(laid out ``(batch, y, k_x)``); the Jacobian ``u . grad w`` is evaluated in physical space and
dealiased with the 2/3 rule (Orszag 1971).

with optional linear drag ``alpha``. Time stepping, both unconditionally stable for the linear
(viscous + drag) part and bounded by a CFL condition for advection:

* ``scheme="cn-heun"`` (default): Crank-Nicolson for the linear part, Heun (explicit trapezoid) for
  advection and forcing, second order. With ``L = -nu |k|^2 - alpha`` and ``N`` the dealiased
  nonlinear term plus forcing:

    w* = [(1 + dt L / 2) w_n + dt N(w_n)] / (1 - dt L / 2)
    w_{n+1} = [(1 + dt L / 2) w_n + dt (N(w_n) + N(w*)) / 2] / (1 - dt L / 2)

  This is the scheme of the data generator published with Li et al. (2021), so datasets are comparable.
* ``scheme="etdrk4"``: exponential time differencing RK4 (Cox & Matthews 2002), fourth order, the
  linear part integrated exactly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Sequence

import torch

from ..spectral import wavenumbers
from ..errors import SolverError
from ._etd import ETDRK4Coefficients, etdrk4_coefficients, etdrk4_step
from ._stepping import check_dt, check_finite, check_state, check_times, run_to_times

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["NavierStokes2D", "step", "integrate", "solve", "velocity", "courant_number", "nonlinear_term"]

FORCINGS = ("li2021", "kolmogorov", "none")
SCHEMES = ("cn-heun", "etdrk4")


@dataclass(frozen=True)
class NavierStokes2D:
    """Vorticity-form Navier-Stokes on the periodic square ``[0, length)^2``.

    Attributes:
        viscosity: kinematic viscosity ``nu`` (>= 0), in units of length^2 / time.
        forcing: ``"li2021"`` for ``f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` (Li et al. 2021,
            defined for ``length = 1``); ``"kolmogorov"`` for the curl of the body force
            ``(sin(k_f y), 0)``, i.e. ``f = -k_f cos(k_f y)`` with ``k_f = 2 pi n_f / length``
            (Kolmogorov flow, cf. Kochkov et al. 2021); or ``"none"``.
        length: side of the periodic square.
        drag: linear drag coefficient ``alpha >= 0`` (Rayleigh friction).
        forcing_wavenumber: ``n_f`` of the Kolmogorov forcing.
    """

    viscosity: float
    forcing: str = "li2021"
    length: float = 1.0
    drag: float = 0.0
    forcing_wavenumber: int = 4

    def __post_init__(self) -> None:
        if not (math.isfinite(self.viscosity) and self.viscosity >= 0):
            raise SolverError(f"viscosity must be finite and >= 0, got {self.viscosity}")
        if self.forcing not in FORCINGS:
            raise SolverError(f"forcing must be one of {FORCINGS}, got {self.forcing!r}")
        if not (math.isfinite(self.length) and self.length > 0):
            raise SolverError(f"length must be positive, got {self.length}")
        if not (math.isfinite(self.drag) and self.drag >= 0):
            raise SolverError(f"drag must be finite and >= 0, got {self.drag}")
        if self.forcing_wavenumber < 1:
            raise SolverError(f"forcing_wavenumber must be >= 1, got {self.forcing_wavenumber}")

    def attributes(self) -> dict:
        """The equation and its discretisation as NetCDF attributes."""
        attrs = {"equation": "navier_stokes_2d_vorticity", "viscosity": self.viscosity, "forcing": self.forcing,
                 "domain_length": self.length, "drag": self.drag, "dealiasing": "2/3"}
        if self.forcing == "kolmogorov":
            attrs["forcing_wavenumber"] = self.forcing_wavenumber
        return attrs

    def forcing_field(self, n: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
        """The forcing on the ``n x n`` grid, shape ``(y, x)``."""
        x = torch.arange(n, dtype=dtype, device=device) * (self.length / n)
        if self.forcing == "none":
            return torch.zeros(n, n, dtype=dtype, device=device)
        if self.forcing == "kolmogorov":
            k_f = 2 * math.pi * self.forcing_wavenumber / self.length
            return (-k_f * torch.cos(k_f * x))[:, None].expand(n, n).clone()  # (y, x)
        phase = 2 * math.pi * (x[None, :] + x[:, None])  # (y, x)
        return 0.1 * (torch.sin(phase) + torch.cos(phase))


class _Operators(NamedTuple):
    gradients: torch.Tensor  # (4, 1, k_y, k_x) maps w_hat to the spectra of (u, v, d_x w, d_y w)
    linear: torch.Tensor  # (k_y, k_x) -nu |k|^2 - alpha
    dealias: torch.Tensor  # (k_y, k_x) 2/3-rule mask
    forcing_hat: torch.Tensor  # (k_y, k_x) dealiased forcing spectrum


@functools.lru_cache(maxsize=16)
def _operators(eq: NavierStokes2D, n: int, dtype: torch.dtype, device: torch.device) -> _Operators:
    real = _real(dtype)
    kx = wavenumbers(n, eq.length, real=True, dtype=real, device=device)[None, :]
    ky = wavenumbers(n, eq.length, dtype=real, device=device)[:, None]
    k_int_x = torch.fft.rfftfreq(n, d=1.0 / n).to(device)[None, :].abs()
    k_int_y = torch.fft.fftfreq(n, d=1.0 / n).to(device)[:, None].abs()
    nyquist_x = (k_int_x == n // 2) if n % 2 == 0 else torch.zeros_like(k_int_x, dtype=torch.bool)
    nyquist_y = (k_int_y == n // 2) if n % 2 == 0 else torch.zeros_like(k_int_y, dtype=torch.bool)
    ikx = torch.where(nyquist_x, 0.0, kx) * 1j
    iky = torch.where(nyquist_y, 0.0, ky) * 1j
    k2 = kx**2 + ky**2
    inv = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    dealias = ((k_int_x <= n / 3) & (k_int_y <= n / 3)).to(real)
    forcing_hat = dealias * torch.fft.rfft2(eq.forcing_field(n, dtype=real, device=device))
    # u = d_y psi, v = -d_x psi with psi_hat = w_hat / |k|^2; derivatives vanish at the Nyquist modes.
    gradients = torch.stack(torch.broadcast_tensors(iky * inv, -ikx * inv, ikx, iky))[:, None]
    return _Operators(gradients, -eq.viscosity * k2 - eq.drag, dealias, forcing_hat)


def _ops_for(eq: NavierStokes2D, w_hat: torch.Tensor) -> _Operators:
    n = w_hat.shape[-2]
    if w_hat.shape[-1] != n // 2 + 1:
        raise SolverError(f"state must be rfft2 of a square (y, x) grid, got spectral shape {tuple(w_hat.shape[-2:])}")
    return _operators(eq, n, w_hat.dtype, w_hat.device)


def nonlinear_term(eq: NavierStokes2D, w_hat: torch.Tensor) -> torch.Tensor:
    """Dealiased ``-u . grad w + f`` in spectral space; ``(batch, k_y, k_x) -> (batch, k_y, k_x)``.

    Costs one batched inverse FFT of four fields and one forward FFT: the floor of a pseudo-spectral step.
    """
    ops = _ops_for(eq, w_hat)
    n = w_hat.shape[-2]
    u, v, w_x, w_y = torch.fft.irfft2(ops.gradients * w_hat, s=(n, n))  # each (batch, y, x)
    advection = torch.addcmul(u * w_x, v, w_y)
    return torch.addcmul(ops.forcing_hat, ops.dealias, torch.fft.rfft2(advection), value=-1)


@functools.lru_cache(maxsize=16)
def _etdrk4(eq: NavierStokes2D, n: int, h: float, dtype: torch.dtype, device: torch.device) -> ETDRK4Coefficients:
    return etdrk4_coefficients(_operators(eq, n, dtype, device).linear, h, dtype=_real(dtype))


def _real(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


def step(eq: NavierStokes2D, w_hat: torch.Tensor, dt: float, *, scheme: str = "cn-heun") -> torch.Tensor:
    """Advance the vorticity spectrum by ``dt``; shape ``(batch, k_y, k_x)``. See the module doc for schemes."""
    _ops_for(eq, w_hat)  # checks the shape
    if scheme == "etdrk4":
        coefficients = _etdrk4(eq, w_hat.shape[-2], float(dt), w_hat.dtype, w_hat.device)
        return etdrk4_step(w_hat, lambda v: nonlinear_term(eq, v), coefficients)
    if scheme != "cn-heun":
        raise SolverError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    gain, source = _crank_nicolson(eq, w_hat.shape[-2], float(dt), w_hat.dtype, w_hat.device)
    n0 = nonlinear_term(eq, w_hat)
    propagated = gain * w_hat
    predicted = propagated + source * n0
    return propagated + (0.5 * source) * (n0 + nonlinear_term(eq, predicted))


@functools.lru_cache(maxsize=16)
def _crank_nicolson(eq: NavierStokes2D, n: int, h: float, dtype: torch.dtype, device: torch.device):
    """``((1 + h L / 2) / (1 - h L / 2), h / (1 - h L / 2))``, each ``(k_y, k_x)``."""
    half = 0.5 * h * _operators(eq, n, dtype, device).linear
    return (1 + half) / (1 - half), h / (1 - half)


def velocity(eq: NavierStokes2D, w: torch.Tensor) -> torch.Tensor:
    """Velocity ``(u, v)`` from vorticity: ``(batch, y, x) -> (batch, 2, y, x)``."""
    w_hat = torch.fft.rfft2(w)
    uv_hat = _ops_for(eq, w_hat).gradients[:2] * w_hat  # (2, batch, k_y, k_x)
    return torch.fft.irfft2(uv_hat, s=w.shape[-2:]).transpose(0, 1)


def courant_number(eq: NavierStokes2D, w: torch.Tensor, dt: float) -> float:
    """Largest ``dt (|u| + |v|) / dx`` over the batch and grid."""
    dx = eq.length / w.shape[-1]
    speed = velocity(eq, w).abs().sum(dim=1)  # (batch, y, x)
    return float(speed.max()) * dt / dx


def _check_state(eq: NavierStokes2D, w: torch.Tensor, dt: float, t: float, max_courant: float) -> None:
    check_state(w, lambda field: courant_number(eq, field, dt), dt=dt, t=t, max_courant=max_courant,
                dx=eq.length / w.shape[-1])


def stable_dt(eq: NavierStokes2D, w0: torch.Tensor, *, courant: float = 0.5, max_speed_factor: float = 1.5) -> float:
    """A time step with Courant number ``courant`` for ``max_speed_factor`` times the initial peak speed."""
    dx = eq.length / w0.shape[-1]
    speed = float(velocity(eq, w0).abs().sum(dim=1).max()) * max_speed_factor
    return courant * dx / speed if speed > 0 else courant * dx


def integrate(
    eq: NavierStokes2D,
    w0: torch.Tensor,
    times: Sequence[float],
    *,
    dt: float | None = None,
    scheme: str = "cn-heun",
    max_courant: float = 1.0,
    progress: bool = False,
) -> torch.Tensor:
    """Integrate from ``t = 0`` and record the vorticity at ``times``.

    Args:
        eq: the equation.
        w0: initial vorticity ``(batch, n, n)`` (float32 or float64, any device).
        times: increasing output times ``>= 0``; a time of 0 records ``w0``.
        dt: largest time step; each output interval is split into equal steps no larger than it.
            ``None`` picks :func:`stable_dt`.
        scheme: ``"cn-heun"`` or ``"etdrk4"`` (see the module doc).
        max_courant: raise :class:`SolverError` when the Courant number exceeds this at an output time.
        progress: show a progress bar over steps.

    Returns:
        ``(batch, len(times), n, n)`` tensor, same dtype and device as ``w0``.
    """
    if w0.ndim != 3 or w0.shape[-1] != w0.shape[-2]:
        raise SolverError(f"w0 must be (batch, n, n), got shape {tuple(w0.shape)}")
    if scheme not in SCHEMES:
        raise SolverError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    check_finite(w0, "vorticity w0")
    times = check_times(times)
    dt = check_dt(stable_dt(eq, w0) if dt is None else dt)
    _check_state(eq, w0, dt, 0.0, max_courant)
    n = w0.shape[-1]
    return run_to_times(
        initial=w0, state=torch.fft.rfft2(w0), times=times, dt=dt, progress=progress, desc="navier-stokes",
        step=lambda w_hat, h: step(eq, w_hat, h, scheme=scheme),
        observe=lambda w_hat: torch.fft.irfft2(w_hat, s=(n, n)),
        check=lambda w, h, t: _check_state(eq, w, h, t, max_courant),
    )


def solve(
    eq: NavierStokes2D,
    w0: torch.Tensor,
    times: Sequence[float],
    *,
    dt: float | None = None,
    scheme: str = "cn-heun",
    progress: bool = True,
    attrs: dict | None = None,
) -> xr.Dataset:
    """:func:`integrate` and wrap the trajectory as a CF-annotated ``xr.Dataset``.

    Returns a dataset with ``vorticity(sample, time, y, x)`` and the equation's parameters as
    attributes (plus ``attrs``).
    """
    from ..data.cf import trajectory_dataset

    dt = stable_dt(eq, w0) if dt is None else dt
    trajectory = integrate(eq, w0, times, dt=dt, scheme=scheme, progress=progress)
    n = w0.shape[-1]
    coord = torch.arange(n, dtype=torch.float64) * (eq.length / n)
    return trajectory_dataset({"vorticity": trajectory}, times=times, coords={"y": coord, "x": coord},
                              attrs={**eq.attributes(), "scheme": scheme, "dt": dt, **(attrs or {})})
