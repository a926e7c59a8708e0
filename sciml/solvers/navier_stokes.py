"""2-D incompressible Navier-Stokes in vorticity form on a periodic square, pseudo-spectral.

Equation (Li et al. 2021, "Fourier Neural Operator for Parametric PDEs", sec. 5.3):

    d_t w + u . grad w = nu Laplacian w - alpha w + f,    u = (d_y psi, -d_x psi),    -Laplacian psi = w,

on ``[0, L)^2`` with periodic boundaries and an optional linear drag ``alpha``. The state is the vorticity
spectrum ``w_hat = rfft2(w)`` (laid out ``(batch, y, k_x)``); the Jacobian ``u . grad w`` is evaluated in
physical space and dealiased with the 2/3 rule (Orszag 1971).

An optional closure adds an explicit term ``c(w, t)`` to the right-hand side (``closure(w, t)``, ``w`` the
physical vorticity ``(batch, y, x)``, returning its tendency of the same shape). It enters wherever the
advection does, at each stage's time, and is dealiased with it: it acts on the modes the 2/3 rule keeps
(``-beta w`` as a closure is ``drag=beta`` on those). Steps are differentiable with autograd.

Time stepping, both unconditionally stable for the linear (viscous + drag) part and bounded by a CFL
condition for advection:

* ``scheme="cn-heun"`` (default): Crank-Nicolson for the linear part, Heun (explicit trapezoid) for
  advection, forcing and closure, second order. With ``L = -nu |k|^2 - alpha`` and ``N(w, t)`` the
  dealiased nonlinear term plus forcing and closure:

    w* = [(1 + dt L / 2) w_n + dt N(w_n, t_n)] / (1 - dt L / 2)
    w_{n+1} = [(1 + dt L / 2) w_n + dt (N(w_n, t_n) + N(w*, t_n + dt)) / 2] / (1 - dt L / 2)

  This is the scheme of the data generator published with Li et al. (2021), so datasets are comparable.
* ``scheme="etdrk4"``: exponential time differencing RK4 (Cox & Matthews 2002), fourth order, the
  linear part integrated exactly; ``N`` is evaluated at ``t_n``, ``t_n + dt/2`` (twice) and ``t_n + dt``.

Each output interval is split into equal steps, of a fixed largest ``dt`` or, with ``adaptive=True``,
of ``dt <= courant dx / max(|u| + |v|)`` re-chosen from the flow at the interval's start. The spectral
operators of each grid, dtype, device and step live in a small cache on the equation object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Sequence

import torch

from ..spectral import wavenumbers
from ..errors import SolverError
from ._etd import ETDRK4Coefficients, ETDRK4Forcing, etdrk4_coefficients, etdrk4_forcing, etdrk4_step
from ._stepping import (Closure, OperatorCache, check_dt, check_field, check_finite, check_state, check_times,
                        closure_attrs, closure_tendency, run_to_times)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["NavierStokes2D", "step", "integrate", "solve", "velocity", "courant_number", "nonlinear_term",
           "stable_dt", "forcing_step_limit"]

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
    _cache: OperatorCache = field(default_factory=OperatorCache, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.viscosity) and self.viscosity >= 0):
            raise SolverError(f"viscosity must be finite and >= 0, got {self.viscosity}")
        if self.forcing not in FORCINGS:
            raise SolverError(f"forcing must be one of {FORCINGS}, got {self.forcing!r}")
        if not (math.isfinite(self.length) and self.length > 0):
            raise SolverError(f"length must be positive, got {self.length}")
        if not (math.isfinite(self.drag) and self.drag >= 0):
            raise SolverError(f"drag must be finite and >= 0, got {self.drag}")
        if (isinstance(self.forcing_wavenumber, bool) or not isinstance(self.forcing_wavenumber, int)
                or self.forcing_wavenumber < 1):
            raise SolverError(f"forcing_wavenumber must be an integer >= 1, got {self.forcing_wavenumber!r}")

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
    gradients: torch.Tensor  # (5, 1, k_y, k_x) maps w_hat to the spectra of (-u, -v, d_x w, d_y w, w)
    linear: torch.Tensor  # (k_y, k_x) real, -nu |k|^2 - alpha
    forcing_hat: torch.Tensor  # (k_y, k_x) dealiased forcing spectrum
    cutoff: int  # 2/3 rule: modes with integer |k_x| or |k_y| > cutoff = (n - 1) // 3 are dropped (3 k < n)


def _operators(eq: NavierStokes2D, n: int, dtype: torch.dtype, device: torch.device) -> _Operators:
    return eq._cache(("operators", n, dtype, device), lambda: _build_operators(eq, n, dtype, device))


def _build_operators(eq: NavierStokes2D, n: int, dtype: torch.dtype, device: torch.device) -> _Operators:
    real = _real(dtype)
    kx = wavenumbers(n, eq.length, real=True, dtype=real, device=device)[None, :]
    ky = wavenumbers(n, eq.length, dtype=real, device=device)[:, None]
    nyquist_x = torch.zeros_like(kx, dtype=torch.bool)
    nyquist_y = torch.zeros_like(ky, dtype=torch.bool)
    if n % 2 == 0:
        nyquist_x[:, n // 2] = nyquist_y[n // 2, :] = True
    ikx = torch.where(nyquist_x, 0.0, kx) * 1j
    iky = torch.where(nyquist_y, 0.0, ky) * 1j
    k2 = kx**2 + ky**2
    inv = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    cutoff = (n - 1) // 3  # 3 k < n: a product of kept modes never aliases onto a kept mode (k = n / 3 would)
    full_forcing = torch.fft.rfft2(eq.forcing_field(n, dtype=real, device=device))
    forcing_hat = _truncate_(full_forcing.clone(), cutoff)
    if (full_forcing - forcing_hat).abs().max() > 1e-6 * full_forcing.abs().max():
        k = eq.forcing_wavenumber if eq.forcing == "kolmogorov" else 1  # li2021: sin/cos of 2 pi (x + y)
        raise SolverError(f"the {eq.forcing} forcing at wavenumber {k} is not resolved on the {n}x{n} grid: 2/3 "
                          f"dealiasing keeps integer wavenumbers k with 3 k < n (here k <= {cutoff}); use n >= {3 * k + 1}")
    # -u = -d_y psi, -v = d_x psi with psi_hat = w_hat / |k|^2, so that the first four fields' products sum to
    # -u . grad w; derivatives vanish at the Nyquist modes. The fifth is w itself, for a closure.
    one = torch.ones_like(ikx)
    gradients = torch.stack(torch.broadcast_tensors(-iky * inv, ikx * inv, ikx, iky, one))[:, None]
    return _Operators(gradients, -eq.viscosity * k2 - eq.drag, forcing_hat, cutoff)


def _truncate_(spectrum: torch.Tensor, cutoff: int) -> torch.Tensor:
    """Zero the ``rfft2`` modes ``(..., k_y, k_x)`` with integer ``|k_x|`` or ``|k_y| > cutoff``, in place."""
    n = spectrum.shape[-2]
    spectrum[..., cutoff + 1:] = 0
    spectrum[..., cutoff + 1:n - cutoff, :cutoff + 1] = 0
    return spectrum


def _ops_for(eq: NavierStokes2D, w_hat: torch.Tensor) -> _Operators:
    n = w_hat.shape[-2]
    if w_hat.shape[-1] != n // 2 + 1:
        raise SolverError(f"state must be rfft2 of a square (y, x) grid, got spectral shape {tuple(w_hat.shape[-2:])}")
    if n < MIN_POINTS:
        raise SolverError(f"state is the rfft2 of a {n}x{n} grid: the 2/3-dealiased spectral solver keeps wavenumbers k "
                          f"with 3 k < n, none on {n} points; use n >= {MIN_POINTS} points per side")
    return _operators(eq, n, w_hat.dtype, w_hat.device)


def _explicit(ops: _Operators, w_hat: torch.Tensor, closure: Closure | None, t: float) -> torch.Tensor:
    """Dealiased spectrum of ``-u . grad w`` (plus ``closure(w, t)``): one inverse FFT of the four (five)
    stacked fields, one forward FFT."""
    n = w_hat.shape[-2]
    if closure is None:
        fields = torch.fft.irfft2(ops.gradients[:4] * w_hat, s=(n, n))  # (4, batch, y, x): -u, -v, d_x w, d_y w
        product = torch.mul(fields[0], fields[2])  # not in place on fields: autograd
    else:
        fields = torch.fft.irfft2(ops.gradients * w_hat, s=(n, n))  # (5, batch, y, x): ..., w
        product = torch.addcmul(closure_tendency(closure, fields[4], t), fields[0], fields[2])
    return _truncate_(torch.fft.rfft2(product.addcmul_(fields[1], fields[3])), ops.cutoff)


def nonlinear_term(eq: NavierStokes2D, w_hat: torch.Tensor) -> torch.Tensor:
    """Dealiased ``-u . grad w + f`` in spectral space; ``(batch, k_y, k_x) -> (batch, k_y, k_x)``.

    Costs one batched inverse FFT of four fields and one forward FFT: the floor of a pseudo-spectral step.
    """
    ops = _ops_for(eq, w_hat)
    return _explicit(ops, w_hat, None, 0.0).add_(ops.forcing_hat)


def _real(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


def step(eq: NavierStokes2D, w_hat: torch.Tensor, dt: float, *, t: float = 0.0, scheme: str = "cn-heun",
         closure: Closure | None = None) -> torch.Tensor:
    """Advance the vorticity spectrum from time ``t`` by ``dt``; shape ``(batch, k_y, k_x)``.

    ``closure(w, t)``, when given, adds the tendency ``(batch, y, x)`` of the physical vorticity ``w`` to the
    explicit part at each stage (see the module doc for the schemes). Differentiable with autograd.
    """
    ops = _ops_for(eq, w_hat)
    n, dt = w_hat.shape[-2], float(dt)
    if scheme == "etdrk4":
        coefficients, forcing = eq._cache(("etdrk4", n, dt, w_hat.dtype, w_hat.device),
                                          lambda: _etdrk4(ops, dt, w_hat.dtype))
        return etdrk4_step(w_hat, lambda v, s: _explicit(ops, v, closure, t + s * dt), coefficients, forcing=forcing)
    if scheme != "cn-heun":
        raise SolverError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    gain, source, half_source, forced = eq._cache(("cn-heun", n, dt, w_hat.dtype, w_hat.device),
                                                  lambda: _crank_nicolson(ops, dt, w_hat.dtype))
    # With N = f + A(w, t): w_{n+1} = gain w_n + source f + (source / 2) (A(w_n, t) + A(w*, t + dt)),
    # w* = gain w_n + source f + source A(w_n, t).
    base = torch.addcmul(forced, gain, w_hat)
    a0 = _explicit(ops, w_hat, closure, t)
    a1 = _explicit(ops, torch.addcmul(base, source, a0), closure, t + dt)
    return base.addcmul_(half_source, a0.add_(a1))


def _etdrk4(ops: _Operators, h: float, dtype: torch.dtype) -> tuple[ETDRK4Coefficients, ETDRK4Forcing]:
    coefficients = etdrk4_coefficients(ops.linear, h, dtype=dtype)
    return coefficients, etdrk4_forcing(coefficients, ops.forcing_hat)


def _crank_nicolson(ops: _Operators, h: float, dtype: torch.dtype):
    """``(gain, source, source / 2, source f_hat)``, each ``(k_y, k_x)`` of the state's complex dtype, with
    ``gain = (1 + h L / 2) / (1 - h L / 2)`` and ``source = h / (1 - h L / 2)``."""
    half = 0.5 * h * ops.linear
    source = h / (1 - half)
    return ((1 + half) / (1 - half)).to(dtype), source.to(dtype), (0.5 * source).to(dtype), source * ops.forcing_hat


def velocity(eq: NavierStokes2D, w: torch.Tensor) -> torch.Tensor:
    """Velocity ``(u, v)`` from vorticity: ``(batch, y, x) -> (batch, 2, y, x)``."""
    w_hat = torch.fft.rfft2(w)
    minus_uv_hat = _ops_for(eq, w_hat).gradients[:2] * w_hat  # (2, batch, k_y, k_x)
    return torch.fft.irfft2(minus_uv_hat, s=w.shape[-2:]).neg_().transpose(0, 1)


def courant_number(eq: NavierStokes2D, w: torch.Tensor, dt: float) -> float:
    """Largest ``dt (|u| + |v|) / dx`` over the batch and grid."""
    return _max_speed(eq, w) * dt / (eq.length / w.shape[-1])


def _max_speed(eq: NavierStokes2D, w: torch.Tensor) -> float:
    """Largest ``|u| + |v|`` over the batch and grid."""
    return float(velocity(eq, w).abs().sum(dim=1).max())


def _check_state(eq: NavierStokes2D, w: torch.Tensor, dt: float, t: float, max_courant: float) -> None:
    check_state(w, lambda field: courant_number(eq, field, dt), dt=dt, t=t, max_courant=max_courant,
                dx=eq.length / w.shape[-1])


# The 2/3-dealiased solver keeps wavenumbers k with 3 k < n: n >= 4 keeps at least k = 1.
MIN_POINTS = 4


def _check_initial(w0: torch.Tensor) -> None:
    """A ``(batch, n, n)`` float field with batch >= 1 and n >= :data:`MIN_POINTS`: :class:`SolverError` otherwise."""
    if not isinstance(w0, torch.Tensor) or w0.ndim != 3 or w0.shape[-1] != w0.shape[-2]:
        raise SolverError(f"w0 must be (batch, n, n), got shape {tuple(getattr(w0, 'shape', ()))}")
    check_field(w0, "w0", "(batch, n, n)")
    if w0.shape[-1] < MIN_POINTS:
        n = w0.shape[-1]
        raise SolverError(f"w0 is a {n}x{n} grid: the 2/3-dealiased spectral solver keeps wavenumbers k with 3 k < n, "
                          f"none on {n} points; use n >= {MIN_POINTS} points per side")


def stable_dt(eq: NavierStokes2D, w0: torch.Tensor, *, courant: float = 0.5, max_speed_factor: float = 1.5) -> float:
    """A time step with Courant number ``courant`` for ``max_speed_factor`` times the initial peak speed,
    and no longer than :func:`forcing_step_limit` allows."""
    _check_initial(w0)
    dx = eq.length / w0.shape[-1]
    speed = _max_speed(eq, w0) * max_speed_factor
    return min(courant * dx / speed if speed > 0 else courant * dx, forcing_step_limit(eq, w0.shape[-1], courant))


def forcing_step_limit(eq: NavierStokes2D, n: int, courant: float) -> float:
    """The longest step a forced flow allows whatever its current speed, on the ``n x n`` grid:

        h <= sqrt(courant dx / U_f)     and     h <= 1 / (nu |k_f|^2 + alpha),

    with ``U_f`` the peak speed the forcing adds per unit time (the velocity of ``f`` taken as a
    vorticity) and ``k_f`` its largest wavenumber. The first keeps the Courant number below
    ``courant`` for a flow accelerated from rest over one step; the second resolves the forced mode's
    relaxation time, which Crank-Nicolson damps wrongly (gain -> -1) for ``h |L| >> 1``. Without
    them a flow at rest or slow to start would be advanced by one step per output interval.
    ``inf`` for an unforced flow.
    """
    if eq.forcing == "none":
        return math.inf
    return eq._cache(("forcing_step_limit", n, float(courant)), lambda: _forcing_step_limit(eq, n, courant))


def _forcing_step_limit(eq: NavierStokes2D, n: int, courant: float) -> float:
    ops = _operators(eq, n, torch.complex128, torch.device("cpu"))  # the entry velocity() below uses
    speed = _max_speed(eq, eq.forcing_field(n)[None])  # the forcing taken as a vorticity: its velocity per unit time
    forced = ops.forcing_hat.abs() > 1e-12 * float(ops.forcing_hat.abs().max())
    rate = float(-ops.linear[forced].min())  # nu |k_f|^2 + alpha of the fastest-relaxing forced mode
    limits = [math.sqrt(courant * (eq.length / n) / speed) if speed > 0 else math.inf,
              1.0 / rate if rate > 0 else math.inf]
    return min(limits)


def integrate(
    eq: NavierStokes2D,
    w0: torch.Tensor,
    times: Sequence[float],
    *,
    dt: float | None = None,
    adaptive: bool = False,
    courant: float = 0.5,
    scheme: str = "cn-heun",
    max_courant: float = 1.0,
    closure: Closure | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Integrate from ``t = 0`` and record the vorticity at ``times``.

    Args:
        eq: the equation.
        w0: initial vorticity ``(batch, n, n)`` (float32 or float64, any device).
        times: increasing output times ``>= 0``; a time of 0 records ``w0``.
        dt: largest time step; each output interval is split into equal steps no larger than it.
            ``None`` picks :func:`stable_dt` (with ``adaptive``: no cap beyond the CFL bound).
        adaptive: re-choose the step at the start of each output interval from the current peak speed,
            ``h <= courant dx / max(|u| + |v|)`` over the batch, within :func:`forcing_step_limit` (and
            ``h <= dt`` when given).
        courant: the Courant number adaptive steps aim at, in ``(0, max_courant]``.
        scheme: ``"cn-heun"`` or ``"etdrk4"`` (see the module doc).
        max_courant: raise :class:`SolverError` when the Courant number exceeds this at an output time.
        closure: ``closure(w, t)``, an extra explicit tendency of the vorticity ``(batch, n, n)`` (see :func:`step`).
        progress: show a progress bar over steps.

    Returns:
        ``(batch, len(times), n, n)`` tensor, same dtype and device as ``w0``.

    Raises:
        SolverDiverged: the state became non-finite (naming the first non-finite step and its time) or
            broke the CFL bound; it keeps the frames completed before.
    """
    return _integrate(eq, w0, times, dt=dt, adaptive=adaptive, courant=courant, scheme=scheme,
                      max_courant=max_courant, closure=closure, progress=progress)[0]


def _integrate(eq: NavierStokes2D, w0: torch.Tensor, times: Sequence[float], *, dt: float | None, adaptive: bool,
               courant: float, scheme: str, max_courant: float, closure: Closure | None,
               progress: bool) -> tuple[torch.Tensor, list[tuple[float, int]]]:
    """:func:`integrate`, also returning ``(h, count)`` of each output interval."""
    _check_initial(w0)
    if scheme not in SCHEMES:
        raise SolverError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    check_finite(w0, "vorticity w0")
    times = check_times(times)
    n = w0.shape[-1]
    if adaptive:
        if not 0 < courant <= max_courant:
            raise SolverError(f"courant must be in (0, max_courant={max_courant}], got {courant}")
        cap = math.inf if dt is None else check_dt(dt)

        cap = min(cap, forcing_step_limit(eq, n, courant))

        def bound(w: torch.Tensor) -> float:
            speed = _max_speed(eq, w)
            return min(cap, courant * eq.length / n / speed) if speed > 0 else cap
    else:
        bound = check_dt(stable_dt(eq, w0) if dt is None else dt)
        _check_state(eq, w0, bound, 0.0, max_courant)
    steps_taken: list[tuple[float, int]] = []
    trajectory = run_to_times(
        initial=w0, state=torch.fft.rfft2(w0), times=times, dt=bound, progress=progress, desc="navier-stokes",
        step=lambda w_hat, t, h: step(eq, w_hat, h, t=t, scheme=scheme, closure=closure),
        observe=lambda w_hat: torch.fft.irfft2(w_hat, s=(n, n)),
        check=lambda w, h, t: _check_state(eq, w, h, t, max_courant),
        steps_taken=steps_taken,
    )
    return trajectory, steps_taken


def solve(
    eq: NavierStokes2D,
    w0: torch.Tensor,
    times: Sequence[float],
    *,
    dt: float | None = None,
    adaptive: bool = False,
    courant: float = 0.5,
    scheme: str = "cn-heun",
    closure: Closure | None = None,
    progress: bool = True,
    attrs: dict | None = None,
) -> xr.Dataset:
    """:func:`integrate` and wrap the trajectory as a CF-annotated ``xr.Dataset``.

    Returns a dataset with ``vorticity(sample, time, y, x)`` and the equation's parameters as
    attributes (plus ``attrs``). ``dt`` is the largest step; with ``adaptive``, ``dt`` lists the step
    used up to each output time ``t > 0`` and ``time_stepping``/``courant`` record the rule. A closure is
    recorded by its qualified name.
    """
    from ..data.cf import trajectory_dataset

    dt = stable_dt(eq, w0) if dt is None and not adaptive else dt
    trajectory, steps_taken = _integrate(eq, w0, times, dt=dt, adaptive=adaptive, courant=courant, scheme=scheme,
                                         max_courant=1.0, closure=closure, progress=progress)
    stepping = ({"time_stepping": "adaptive-cfl", "courant": courant, "dt": [h for h, _ in steps_taken]} if adaptive
                else {"dt": dt})
    n = w0.shape[-1]
    coord = torch.arange(n, dtype=torch.float64) * (eq.length / n)
    return trajectory_dataset({"vorticity": trajectory}, times=times, coords={"y": coord, "x": coord},
                              attrs={**eq.attributes(), "scheme": scheme, **stepping, **closure_attrs(closure),
                                     **(attrs or {})})
