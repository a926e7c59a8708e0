"""1-D viscous Burgers on a periodic interval, pseudo-spectral with ETDRK4.

Equation:

    d_t u + d_x (u^2 / 2) = nu d_xx u    on [0, L), periodic.

In Fourier space ``d_t u_hat = L u_hat + N(u_hat)`` with the stiff linear part ``L = -nu k^2`` treated
exactly and ``N = -(i k / 2) FFT(u^2)`` (2/3-rule dealiased). Time stepping is the fourth-order
exponential time differencing Runge-Kutta scheme of Cox & Matthews (2002, J. Comput. Phys. 176),
with its coefficients computed by the contour integrals of Kassam & Trefethen (2005, SIAM J. Sci.
Comput. 26) to avoid cancellation for small ``h L``. The viscosity may differ per sample.

An optional closure adds an explicit term ``c(u, t)`` to the right-hand side (``closure(u, t)``, ``u`` the
physical velocity ``(batch, x)``, returning its tendency of the same shape), evaluated with ``N`` at the
four ETDRK4 stage times ``t, t + h/2, t + h/2, t + h`` and dealiased like it. The spectral operators of each
grid, batch, step, dtype and device live in a small cache on the equation object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from ..errors import SolverError
from ..spectral import wavenumbers
from ._etd import etdrk4_coefficients, etdrk4_step
from ._stepping import (Closure, OperatorCache, check_dt, check_field, check_finite, check_state, check_times,
                        closure_attrs, closure_tendency, run_to_times)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Burgers1D", "step", "integrate", "solve", "stable_dt", "cole_hopf", "total_variation"]


@dataclass(frozen=True)
class Burgers1D:
    """Viscous Burgers on ``[0, length)``.

    Attributes:
        viscosity: ``nu > 0``, one value for the whole batch or a tuple with one per sample.
        length: period of the domain.
    """

    viscosity: float | tuple[float, ...]
    length: float = 1.0
    _cache: OperatorCache = field(default_factory=OperatorCache, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        many = hasattr(self.viscosity, "__len__")
        values = tuple(float(v) for v in self.viscosity) if many else (float(self.viscosity),)
        if not values or any(not (math.isfinite(v) and v > 0) for v in values):
            raise SolverError(f"viscosity must be finite and > 0, got {values if len(values) < 8 else 'some values that are not'}")
        object.__setattr__(self, "viscosity", values if many else values[0])
        if not (math.isfinite(self.length) and self.length > 0):
            raise SolverError(f"length must be positive, got {self.length}")

    def viscosities(self, batch: int) -> tuple[float, ...]:
        """One viscosity per sample; checks a per-sample tuple against the batch size."""
        if isinstance(self.viscosity, tuple):
            if len(self.viscosity) != batch:
                raise SolverError(f"viscosity has {len(self.viscosity)} values for a batch of {batch} samples")
            return self.viscosity
        return (self.viscosity,) * batch

    def attributes(self) -> dict:
        return {"equation": "burgers_1d_viscous", "domain_length": self.length, "scheme": "etdrk4",
                "dealiasing": "2/3"}


def _operators(eq: Burgers1D, n: int, batch: int, h: float, dtype: torch.dtype, device: torch.device):
    """``(-i k / 2 dealiased, the 2/3-rule mask, ETDRK4 coefficients of L = -nu k^2)`` for one step size; the
    mask and ``-i k / 2`` of the state's complex dtype."""
    k = wavenumbers(n, eq.length, real=True, dtype=torch.float64, device=device)
    k_int = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64).to(device)
    # 2/3 rule: keep 3 k < n, so that no product of kept modes aliases onto a kept mode (k = n / 3 would);
    # this also removes the Nyquist mode.
    dealias = (3 * k_int < n).to(torch.float64)
    nu = torch.tensor(eq.viscosities(batch), dtype=torch.float64, device=device)[:, None]
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    ik_half = (-0.5j * k * dealias).to(complex_dtype)
    return ik_half, dealias.to(complex_dtype), etdrk4_coefficients(-nu * k**2, h, dtype=dtype)


def step(eq: Burgers1D, u_hat: torch.Tensor, dt: float, *, n: int | None = None, t: float = 0.0,
         closure: Closure | None = None) -> torch.Tensor:
    """One ETDRK4 step from time ``t`` of the spectrum ``u_hat = rfft(u)`` of ``n`` grid points; shape
    ``(batch, n // 2 + 1)``. Differentiable with autograd.

    ``n`` defaults to the even size ``2 (n // 2)``; give it for an odd grid (``rfft`` of ``n`` and of
    ``n - 1`` points have the same length, but not the same wavenumbers' meaning for the product).
    ``closure(u, t)``, when given, adds the tendency ``(batch, n)`` of the physical velocity ``u`` at each
    stage (see the module doc).
    """
    if n is None:
        n = 2 * (u_hat.shape[-1] - 1)
    elif u_hat.shape[-1] != n // 2 + 1:
        raise SolverError(f"u_hat has {u_hat.shape[-1]} modes, not the n // 2 + 1 = {n // 2 + 1} of n = {n} points")
    real = torch.float64 if u_hat.dtype == torch.complex128 else torch.float32
    batch, dt = u_hat.shape[0], float(dt)
    ik_half, dealias, coefficients = eq._cache((n, batch, dt, real, u_hat.device),
                                               lambda: _operators(eq, n, batch, dt, real, u_hat.device))

    def nonlinear(v: torch.Tensor, stage: float) -> torch.Tensor:
        u = torch.fft.irfft(v, n=n)
        if closure is None:
            return ik_half * torch.fft.rfft(u * u)
        spectra = torch.fft.rfft(torch.stack((u * u, closure_tendency(closure, u, t + stage * dt))))
        return torch.addcmul(ik_half * spectra[0], dealias, spectra[1])

    return etdrk4_step(u_hat, nonlinear, coefficients)


# The 2/3-dealiased solver keeps wavenumbers k with 3 k < n: n >= 4 keeps at least k = 1.
MIN_POINTS = 4


def _check_points(u0: torch.Tensor) -> None:
    if u0.ndim >= 1 and u0.shape[-1] < MIN_POINTS:
        raise SolverError(f"u0 has {u0.shape[-1]} points: the 2/3-dealiased spectral solver keeps wavenumbers k with "
                          f"3 k < n, none on so few; use n >= {MIN_POINTS} points")


def stable_dt(eq: Burgers1D, u0: torch.Tensor, *, courant: float = 0.5) -> float:
    """``courant * dx / max|u0|`` (the maximum principle keeps ``max|u|`` from growing)."""
    _check_points(u0)
    dx = eq.length / u0.shape[-1]
    speed = float(u0.abs().max())
    return courant * dx / speed if speed > 0 else courant * dx


def _check_state(eq: Burgers1D, u: torch.Tensor, dt: float, t: float, max_courant: float,
                 initial_variation: torch.Tensor | None = None) -> None:
    """CFL and finiteness (:func:`check_state`) and, given the initial total variation per sample, that it
    has not grown: viscous Burgers is total-variation diminishing, so growth means Gibbs oscillations at
    fronts too steep for the grid (measured on Li et al. fields at 1024 points: at most 1.0000 for
    ``max|u| dx / nu <= 2.2``, 3.3 at 7.3)."""
    dx = eq.length / u.shape[-1]
    check_state(u, lambda field: float(field.abs().max()) * dt / dx, dt=dt, t=t, max_courant=max_courant, dx=dx)
    if initial_variation is not None:
        growth = float((total_variation(u) / initial_variation.clamp_min(torch.finfo(u.dtype).tiny)).max())
        if growth > 1.01:
            raise SolverError(f"the viscosity is too small for {u.shape[-1]} points: the total variation grew "
                              f"{growth:.3g}x by t={t:.6g}, which viscous Burgers cannot do (Gibbs oscillations at "
                              f"under-resolved fronts); use more points (max|u| dx / nu <= 2 resolves them) or a "
                              f"larger viscosity")


def total_variation(u: torch.Tensor) -> torch.Tensor:
    """``sum_j |u_j - u_(j-1)|`` over the periodic grid; ``(batch, n) -> (batch,)``."""
    return (u - u.roll(1, dims=-1)).abs().sum(dim=-1)


def integrate(eq: Burgers1D, u0: torch.Tensor, times: Sequence[float], *, dt: float | None = None,
              max_courant: float = 1.0, closure: Closure | None = None, progress: bool = False) -> torch.Tensor:
    """Integrate ``u0`` ``(batch, n)`` from ``t = 0``; returns ``(batch, len(times), n)``.

    ``dt=None`` picks :func:`stable_dt`; ``closure(u, t)`` adds an explicit tendency (see :func:`step`).
    Raises :class:`SolverError` for an unstable ``dt`` (checked at the start and every output time), a
    non-finite state, or, without a closure, a total variation grown above its initial value (an
    under-resolved viscosity; the frames before are kept, see ``SolverDiverged``). A closure may add
    variation, so that check is then skipped.
    """
    if u0.ndim != 2:
        raise SolverError(f"u0 must be (batch, n), got shape {tuple(u0.shape)}")
    check_field(u0, "u0", "(batch, n)")
    _check_points(u0)
    eq.viscosities(u0.shape[0])
    check_finite(u0, "velocity u0")
    times = check_times(times)
    dt = check_dt(stable_dt(eq, u0) if dt is None else dt)
    _check_state(eq, u0, dt, 0.0, max_courant)
    n = u0.shape[-1]
    initial_variation = total_variation(u0) if closure is None else None
    return run_to_times(
        initial=u0, state=torch.fft.rfft(u0), times=times, dt=dt, progress=progress, desc="burgers",
        step=lambda u_hat, t, h: step(eq, u_hat, h, n=n, t=t, closure=closure),
        observe=lambda u_hat: torch.fft.irfft(u_hat, n=n),
        check=lambda u, h, t: _check_state(eq, u, h, t, max_courant, initial_variation),
    )


def solve(eq: Burgers1D, u0: torch.Tensor, times: Sequence[float], *, dt: float | None = None,
          closure: Closure | None = None, progress: bool = True, attrs: dict | None = None) -> xr.Dataset:
    """:func:`integrate` wrapped as ``u(sample, time, x)`` with the viscosity as a ``sample`` coordinate
    (a closure is recorded by its qualified name)."""
    from ..data.cf import trajectory_dataset

    dt = stable_dt(eq, u0) if dt is None else dt
    trajectory = integrate(eq, u0, times, dt=dt, closure=closure, progress=progress)
    n = u0.shape[-1]
    ds = trajectory_dataset({"u": trajectory}, times=times,
                            coords={"x": torch.arange(n, dtype=torch.float64) * (eq.length / n)},
                            attrs={**eq.attributes(), "dt": dt, **closure_attrs(closure), **(attrs or {})})
    return ds.assign_coords(viscosity=("sample", list(eq.viscosities(u0.shape[0])),
                                       {"long_name": "kinematic viscosity", "units": "1"}))


def cole_hopf(x: torch.Tensor, t: float, *, viscosity: float, length: float = 1.0,
              amplitudes: Sequence[float] = (0.9,), offset: float = 1.0) -> torch.Tensor:
    """Exact periodic solution via the Cole-Hopf transform ``u = -2 nu phi_x / phi`` with

        phi(x, t) = offset + sum_m a_m exp(-nu k_m^2 t) cos(k_m x),   k_m = 2 pi m / L,

    which solves the heat equation; ``offset > sum |a_m|`` keeps ``phi > 0``. Shape of ``x``.
    """
    if offset <= sum(abs(a) for a in amplitudes):
        raise ValueError("offset must exceed sum(|amplitudes|) so that phi stays positive")
    phi = torch.full_like(x, offset)
    phi_x = torch.zeros_like(x)
    for m, a in enumerate(amplitudes, start=1):
        k = 2 * math.pi * m / length
        decay = a * math.exp(-viscosity * k**2 * t)
        phi = phi + decay * torch.cos(k * x)
        phi_x = phi_x - decay * k * torch.sin(k * x)
    return -2 * viscosity * phi_x / phi
