"""Lie point symmetries of viscous Burgers and of 2-D Navier-Stokes, applied exactly to gridded solutions.

A point symmetry maps every solution of a PDE to another solution (Olver, "Applications of Lie Groups to
Differential Equations", 2nd ed. 1993, ch. 2); as data augmentation it turns one simulated trajectory into
many (Brandstetter, Welling & Worrall 2022, "Lie point symmetry data augmentation for neural PDE solvers",
arXiv:2202.07643), and as the views of a joint-embedding encoder it tells the encoder what to ignore
(Mialon et al. 2023, "Self-supervised learning with Lie symmetries for partial differential equations",
NeurIPS, arXiv:2307.05432). For coefficient discovery the transformations that *change* a coefficient in a
known way (the time scalings below) matter as much as those that keep it.

Burgers, ``u_t + u u_x = nu u_xx`` on the periodic ``[0, L)``, fields ``(batch, time, n)``:

============================  ==========================================  ==========  ===========================
transformation                the new solution                            ``nu``      on the grid
============================  ==========================================  ==========  ===========================
space shift                   ``u(x - s, t)``                             kept        exact for integer cells;
                                                                                      spectral interpolation else
time shift                    ``u(x, t + tau)``                           kept        exact: a crop offset
                                                                                      (:func:`sciml.jepa.views.crop`)
Galilean boost                ``u(x - c t, t) + c``                       kept        a shift per frame (as above)
reflection                    ``-u(-x, t)``                               kept        exact (a permutation)
time scaling                  ``b u(x, b t)``                             ``b nu``    exact (times relabelled)
============================  ==========================================  ==========  ===========================

The scaling group of Burgers on the line, ``a u(a x, a^2 t)`` with ``nu`` kept, changes the period to
``L / a``; composed with the equivalence ``nu -> b nu`` it leaves the one-parameter family above that keeps the
domain: ``v = b u(x, b t)`` gives ``v_t = b^2 u_t``, ``v v_x = b^2 u u_x`` and ``v_xx = b u_xx``, so
``v_t + v v_x = b^2 nu u_xx = (b nu) v_xx``. On frames saved at ``t_k`` it is exact by relabelling:
values times ``b`` at times ``t_k / b``. Keeping the frame spacing instead needs ``u`` at ``b t_k``: exact
for an integer ``b`` (every ``b``-th frame), interpolation otherwise. The projective symmetry of Burgers
(``t^2 d_t + t x d_x + (x - t u) d_u``) does not preserve a periodic domain and is left out.

Navier-Stokes in vorticity form, ``w_t + u . grad w = nu Laplacian w + f`` on the periodic unit square,
fields ``(..., y, x)``: the grid's own symmetries, integer translations and the eight rotations and
reflections of the square (the dihedral group D4), all exact (permutations of grid values). Vorticity is
a pseudo-scalar, ``w'(p) = det(M) w(M^-1 (p - s))``, so it changes sign under a reflection, and the forcing
(the curl of a body force) transforms in the same way. The time scaling ``b w(x, b t)`` maps
``(nu, f)`` to ``(b nu, b^2 f)`` (``u . grad w`` scales as ``b^2`` like ``w_t``), exact by relabelling.

The forcing of Li et al. (2021), ``f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)) = 0.1 sqrt(2) sin(theta + pi/4)``
with ``theta = 2 pi (x + y)``, is kept only by the elements that preserve ``x + y`` up to a phase that a
translation along ``x + y`` undoes; with shifts ``s`` in cells on an ``n x n`` grid (``4 | n``):

=====================================  ==============================  ===============================
element (``p -> M p + s``)             ``f'`` at ``theta``              ``f' = f`` exactly when
=====================================  ==============================  ===============================
translation                            ``f(theta - sigma)``            ``s_x + s_y = 0 (mod n)``
half turn (``quarter_turns=2``)        ``f(sigma - theta)``            ``s_x + s_y = n/4 (mod n)``
reflection across ``y = x``            ``-f(theta - sigma)``           ``s_x + s_y = n/2 (mod n)``
reflection across ``y = -x``           ``-f(sigma - theta)``           ``s_x + s_y = 3n/4 (mod n)``
quarter turns, axis reflections        ``+-f`` of ``2 pi (y - x)``     never: another forcing
=====================================  ==============================  ===============================

with ``sigma = 2 pi (s_x + s_y) / n``; so a dataset solved with that forcing
is mapped into itself by ``4 n`` of the ``8 n^2`` grid symmetries; the other elements give solutions of the
same equation with a rotated or phase-shifted forcing of the same amplitude. A Galilean boost is not a
symmetry of the periodic vorticity formulation (its velocity has zero mean and its forcing is steady). In
:func:`vorticity_symmetry` the reflection is ``x -> -x`` (``M = diag(-1, 1)``), applied before the quarter
turns: the reflection across ``y = x`` is ``reflect=True, quarter_turns=3`` and across ``y = -x`` is
``reflect=True, quarter_turns=1``.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..spectral import wavenumbers

__all__ = ["space_shift", "galilean_boost", "burgers_reflection", "burgers_scaling", "vorticity_symmetry",
           "vorticity_scaling", "augment_burgers", "augment_vorticity"]

Number = float | torch.Tensor


def space_shift(u: torch.Tensor, offset: Number, *, length: float = 1.0) -> torch.Tensor:
    """``u(x - s)`` on the periodic ``[0, length)``: ``(..., n) -> (..., n)``, ``s = offset``.

    Spectral: ``u_hat_k exp(-i k s)``. ``offset`` is a number or a tensor broadcastable to ``u.shape[:-1]``
    (one shift per sample, or per sample and frame). A whole number of cells is exact up to round-off; any
    other shift is the exact shift of the trigonometric interpolant, except for the Nyquist mode of an even
    ``n``, which a grid cannot shift (only ``cos(k s)`` of it is kept).
    """
    n = u.shape[-1]
    k = wavenumbers(n, length, real=True, dtype=torch.float64, device=u.device)
    offset = torch.as_tensor(offset, dtype=torch.float64, device=u.device)[..., None]
    spectrum = torch.fft.rfft(u)
    phase = torch.polar(torch.ones_like(k * offset), -k * offset).to(spectrum.dtype)
    return torch.fft.irfft(spectrum * phase, n=n).to(u.dtype)


def galilean_boost(u: torch.Tensor, times: torch.Tensor, *, velocity: Number, length: float = 1.0) -> torch.Tensor:
    """``u(x - c t, t) + c`` for ``u`` ``(batch, time, n)`` at ``times`` ``(time,)`` or ``(batch, time)``.

    Solves Burgers with the same ``nu``: ``v_t + v v_x = u_t - c u_x + (u + c) u_x = nu v_xx``.
    ``velocity`` ``c`` is a number or ``(batch,)``. Each frame is shifted by ``c t`` with
    :func:`space_shift` (exact where ``c t`` is a whole number of cells, spectral interpolation otherwise).
    """
    c = torch.as_tensor(velocity, dtype=torch.float64, device=u.device)
    c = c[:, None] if c.ndim else c  # (batch, 1): one per sample, against the frames' times
    times = torch.as_tensor(times, dtype=torch.float64, device=u.device)
    return space_shift(u, c * times, length=length) + c.to(u.dtype)[..., None]


def burgers_reflection(u: torch.Tensor) -> torch.Tensor:
    """``-u(-x)``: ``(..., n) -> (..., n)``, exact (the point ``x_j = j dx`` goes to ``x_{-j mod n}``).

    Solves Burgers with the same ``nu``: for ``v(x) = -u(-x)``, ``v_x = u_x(-x)``, so ``v v_x = -u u_x`` and
    ``v_t - nu v_xx = -(u_t - nu u_xx)``.
    """
    return -u.flip(-1).roll(1, dims=-1)


def burgers_scaling(u: torch.Tensor, times: torch.Tensor, viscosity: Number, *,
                    factor: Number) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``v(x, t) = b u(x, b t)``, which solves Burgers with viscosity ``b nu`` on the same domain.

    Args:
        u: ``(batch, time, n)`` at ``times`` ``(time,)`` (or ``(batch, time)``).
        times: the frames' times.
        viscosity: ``nu``, a number or ``(batch,)``.
        factor: ``b > 0``, a number or ``(batch,)``.

    Returns:
        ``(b u, times / b, b nu)``: the same frames, scaled, at relabelled times (``(time,)`` for one factor,
        ``(batch, time)`` for one per sample), and the new viscosity (``(batch,)`` float64 or a 0-d tensor).
        Exact; see the module doc for keeping the frame spacing. Give times and viscosities in float64: a float32
        copy of either is off by 1e-8, which a re-solve at the new viscosity and times shows.
    """
    b = _check_factor(factor, u)
    times = torch.as_tensor(times, dtype=torch.float64, device=u.device)
    return (u * b[..., None, None].to(u.dtype), times / b[..., None],
            torch.as_tensor(viscosity, dtype=torch.float64, device=u.device) * b)


def _check_factor(factor: Number, like: torch.Tensor) -> torch.Tensor:
    b = torch.as_tensor(factor, dtype=torch.float64, device=like.device)
    if not bool(torch.isfinite(b).all() and (b > 0).all()):
        raise ConfigError(f"a scaling factor must be finite and > 0, got {factor}")
    return b


# R^-k for a quarter turn R = [[0, -1], [1, 0]] (counter-clockwise) acting on (x, y) grid indices.
_INVERSE_TURNS = torch.tensor([[[1, 0], [0, 1]], [[0, 1], [-1, 0]], [[-1, 0], [0, -1]], [[0, -1], [1, 0]]])
_REFLECT_X = torch.tensor([[-1, 0], [0, 1]])


def vorticity_symmetry(w: torch.Tensor, *, quarter_turns: int | torch.Tensor = 0, reflect: bool | torch.Tensor = False,
                       shift: tuple[int, int] | torch.Tensor = (0, 0)) -> torch.Tensor:
    """The grid symmetry ``p -> M p + s`` of the periodic square applied to a vorticity (or forcing) field.

    ``w'(p) = det(M) w(M^-1 (p - s))`` with ``M = R^k F^r``: ``F`` the reflection ``x -> -x`` (``r = reflect``)
    applied first, ``R`` the counter-clockwise quarter turn about the origin (``k = quarter_turns``), then
    the translation by ``s = shift = (s_x, s_y)`` cells. Exact: a permutation of the grid values, with the
    sign of a pseudo-scalar (``det M = -1`` for a reflection).

    Args:
        w: ``(..., n, n)`` laid out ``(y, x)``; with per-sample parameters, ``(batch, ..., n, n)``.
        quarter_turns: an integer, or ``(batch,)`` integers (taken mod 4).
        reflect: a bool, or ``(batch,)`` bools.
        shift: ``(s_x, s_y)`` integer cells, or ``(batch, 2)``.

    Returns:
        The transformed field, shape of ``w`` (a ``(n, n)`` field with per-sample parameters becomes
        ``(batch, n, n)``).
    """
    n = w.shape[-1]
    if w.ndim < 2 or w.shape[-2] != n:
        raise ConfigError(f"the field must be (..., n, n) on a square grid, got shape {tuple(w.shape)}")
    device = w.device
    turns = torch.as_tensor(quarter_turns, dtype=torch.int64, device=device).remainder(4).reshape(-1)
    mirror = torch.as_tensor(reflect, dtype=torch.bool, device=device).reshape(-1)
    offset = torch.as_tensor(shift, dtype=torch.int64, device=device).reshape(-1, 2)
    batch = max(len(turns), len(mirror), len(offset))
    if any(len(p) not in (1, batch) for p in (turns, mirror, offset)):
        raise ConfigError(f"per-sample parameters disagree on the batch: quarter_turns {tuple(turns.shape)}, "
                          f"reflect {tuple(mirror.shape)}, shift {tuple(offset.shape)}")
    # M^-1 = F^r R^-k, one (2, 2) per sample.
    inverse = torch.where(mirror[:, None, None], _REFLECT_X.to(device), torch.eye(2, dtype=torch.int64, device=device))
    inverse = inverse @ _INVERSE_TURNS.to(device)[turns]
    index = torch.arange(n, device=device)
    points = torch.stack(torch.broadcast_tensors(index[None, :], index[:, None]))  # (2, y, x): (x, y) of each point
    dx, dy = (points[None] - offset[:, :, None, None]).unbind(1)  # (batch or 1, y, x) each
    source_x = (inverse[:, 0, 0, None, None] * dx + inverse[:, 0, 1, None, None] * dy).remainder(n)
    source_y = (inverse[:, 1, 0, None, None] * dx + inverse[:, 1, 1, None, None] * dy).remainder(n)
    flat = (source_y * n + source_x).reshape(-1, n * n)  # (batch or 1, n * n) into the flattened (y, x)
    sign = torch.where(mirror, -1.0, 1.0).to(w.dtype)
    if batch == 1:
        return sign[0] * w.flatten(-2)[..., flat[0]].unflatten(-1, (n, n))
    if w.ndim == 2:
        w = w.expand(batch, n, n)
    if w.shape[0] != batch:
        raise ConfigError(f"{batch} per-sample parameters for a field of batch {w.shape[0]}")
    extra = (1,) * (w.ndim - 3)
    values = w.flatten(-2).take_along_dim(flat.reshape(batch, *extra, n * n), dim=-1)
    return values.unflatten(-1, (n, n)) * sign.reshape(batch, *extra, 1, 1)


def vorticity_scaling(w: torch.Tensor, times: torch.Tensor, viscosity: Number, forcing: Number, *,
                      factor: Number) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``b w(x, b t)``, which solves the vorticity equation with ``(b nu, b^2 f)``.

    With ``w' = b w(x, b t)``: ``w'_t = b^2 w_t``, the velocity scales by ``b`` so ``u' . grad w' = b^2 u . grad w``,
    and ``nu' Laplacian w' + f' = b^2 (nu Laplacian w + f)`` for ``nu' = b nu``, ``f' = b^2 f``.

    Args:
        w: ``(batch, time, n, n)`` at ``times`` ``(time,)`` (or ``(batch, time)``).
        times: the frames' times.
        viscosity: ``nu``, a number or ``(batch,)``.
        forcing: the forcing field ``(n, n)`` / ``(batch, n, n)`` or its amplitude (number or ``(batch,)``).
        factor: ``b > 0``, a number or ``(batch,)``.

    Returns:
        ``(b w, times / b, b nu, b^2 f)``; exact (times relabelled, as :func:`burgers_scaling`).
    """
    b = _check_factor(factor, w)
    scaled, new_times, new_viscosity = burgers_scaling(w.flatten(-2), times, viscosity, factor=b)
    if not isinstance(forcing, torch.Tensor):
        forcing = torch.as_tensor(forcing, dtype=torch.float64)
    forcing = forcing.to(w.device)
    field = forcing.ndim >= 2 and forcing.shape[-2:] == w.shape[-2:]
    squared = (b * b).reshape(b.shape + ((1, 1) if field else ())).to(forcing.dtype)
    return scaled.unflatten(-1, w.shape[-2:]), new_times, new_viscosity, forcing * squared


def augment_burgers(u: torch.Tensor, times: torch.Tensor, viscosity: Number, *, generator: torch.Generator,
                    length: float = 1.0, max_boost: float = 0.0, scale_range: tuple[float, float] = (1.0, 1.0),
                    reflect: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random Burgers symmetry per sample: time scaling, Galilean boost, reflection, then a space shift.

    Per sample: ``b`` log-uniform in ``scale_range``, ``c`` uniform in ``[-max_boost, max_boost]``, a reflection
    with probability 1/2 (``reflect``), and a shift uniform over the period. Drawn on the generator's device, in
    that order, so one seed gives one augmentation. The scaling and the reflection are exact; the boost and the
    shift are spectral interpolation (exact for fields without a Nyquist mode, see :func:`space_shift`).

    Args:
        u: ``(batch, time, n)`` at ``times`` ``(time,)``; viscosity a number or ``(batch,)``.

    Returns:
        ``(u', times' (batch, time), nu' (batch,))`` with ``nu' = b nu``.
    """
    batch = u.shape[0]
    low, high = scale_range
    if not 0 < low <= high or max_boost < 0:
        raise ConfigError(f"need 0 < scale_range[0] <= scale_range[1] and max_boost >= 0, got {scale_range}, {max_boost}")
    draws = torch.rand(4, batch, generator=generator, dtype=torch.float64, device=generator.device).to(u.device)
    factor = torch.exp(math.log(low) + (math.log(high) - math.log(low)) * draws[0])
    viscosity = torch.as_tensor(viscosity, dtype=torch.float64, device=u.device).expand(batch)
    out, new_times, new_viscosity = burgers_scaling(u, times, viscosity, factor=factor)
    out = galilean_boost(out, new_times, velocity=max_boost * (2 * draws[1] - 1), length=length)
    if reflect:
        out = torch.where((draws[2] < 0.5)[:, None, None], burgers_reflection(out), out)
    return space_shift(out, length * draws[3][:, None], length=length), new_times, new_viscosity


def augment_vorticity(w: torch.Tensor, forcing: torch.Tensor, *, generator: torch.Generator,
                      rotate: bool = True, reflect: bool = True, translate: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A random grid symmetry per sample (:func:`vorticity_symmetry`), applied to the vorticity and its forcing.

    Per sample: quarter turns uniform in 0..3 (``rotate``), a reflection with probability 1/2 (``reflect``),
    a shift uniform over the grid's cells (``translate``). Exact. The forcing comes back transformed, one per
    sample: the transformed trajectory solves the equation with that forcing (for the Li et al. forcing,
    the same forcing only for the elements listed in the module doc).

    Args:
        w: ``(batch, ..., n, n)``; forcing ``(n, n)`` or ``(batch, n, n)``.

    Returns:
        ``(w', f' (batch, n, n))``.
    """
    batch, n = w.shape[0], w.shape[-1]
    device = generator.device
    turns = torch.randint(4, (batch,), generator=generator, device=device) * int(rotate)
    mirror = (torch.rand(batch, generator=generator, device=device) < 0.5) & reflect
    shift = torch.randint(n, (batch, 2), generator=generator, device=device) * int(translate)
    element = {"quarter_turns": turns.to(w.device), "reflect": mirror.to(w.device), "shift": shift.to(w.device)}
    return vorticity_symmetry(w, **element), vorticity_symmetry(forcing.expand(batch, n, n), **element)
