"""Fourth-order exponential time differencing Runge-Kutta (ETDRK4) for ``d_t v = L v + N(v, t)``, L diagonal.

Cox & Matthews (2002), "Exponential time differencing for stiff systems", J. Comput. Phys. 176; the
phi-function coefficients are evaluated by the contour integrals of Kassam & Trefethen (2005),
"Fourth-order time-stepping for stiff PDEs", SIAM J. Sci. Comput. 26, which avoid the cancellation of
the direct formulas when ``h L`` is small.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch


class ETDRK4Coefficients(NamedTuple):
    E: torch.Tensor  # exp(h L)
    E2: torch.Tensor  # exp(h L / 2)
    Q: torch.Tensor
    f1: torch.Tensor
    f2: torch.Tensor
    f3: torch.Tensor


def etdrk4_coefficients(linear: torch.Tensor, h: float, *, dtype: torch.dtype, contour_points: int = 32) -> ETDRK4Coefficients:
    """Coefficients for a real diagonal linear operator ``linear`` (any shape), computed in float64.

    ``dtype`` is that of the coefficients; the state's complex dtype avoids a real-to-complex cast per
    product on the CPU.
    """
    hl = h * linear.to(torch.float64)
    j = torch.arange(1, contour_points + 1, dtype=torch.float64, device=linear.device)
    z = hl[..., None] + torch.exp(1j * math.pi * (j - 0.5) / contour_points)  # circles around each h L
    ez = torch.exp(z)

    def contour_mean(values: torch.Tensor) -> torch.Tensor:
        return (h * values.mean(dim=-1).real).to(dtype)

    return ETDRK4Coefficients(
        torch.exp(hl).to(dtype),
        torch.exp(hl / 2).to(dtype),
        contour_mean((torch.exp(z / 2) - 1) / z),
        contour_mean((-4 - z + ez * (4 - 3 * z + z**2)) / z**3),
        contour_mean((2 + z + ez * (z - 2)) / z**3),
        contour_mean((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3),
    )


class ETDRK4Forcing(NamedTuple):
    """A constant forcing ``F`` folded into the stages: ``Q F`` and ``(f1 + 4 f2 + f3) F``."""

    stage: torch.Tensor  # Q F, broadcastable to the state (batch, *modes)
    step: torch.Tensor  # (f1 + 4 f2 + f3) F, likewise


def etdrk4_forcing(c: ETDRK4Coefficients, forcing: torch.Tensor) -> ETDRK4Forcing:
    """The stage and step increments of a constant forcing ``forcing`` (broadcastable to the state)."""
    return ETDRK4Forcing(c.Q * forcing, (c.f1 + 4 * c.f2 + c.f3) * forcing)


def etdrk4_step(v: torch.Tensor, nonlinear: Callable[[torch.Tensor, float], torch.Tensor], c: ETDRK4Coefficients, *,
                forcing: ETDRK4Forcing | None = None) -> torch.Tensor:
    """One ETDRK4 step ``t -> t + h`` of the spectral state ``v`` for ``d_t v = L v + N(v, t) + F``, ``F`` constant:

        a = E2 v + Q (N(v, t) + F),   b = E2 v + Q (N(a, t + h/2) + F),
        c = E2 a + Q (2 N(b, t + h/2) - N(v, t) + F),
        v' = E v + f1 N(v, t) + 2 f2 (N(a, t + h/2) + N(b, t + h/2)) + f3 N(c, t + h) + (f1 + 4 f2 + f3) F.

    ``nonlinear(x, s)`` evaluates ``N`` at the stage time ``t + s h``, ``s`` in ``(0, 1/2, 1/2, 1)``. Folding
    ``F`` into the first product of each combination (``forcing``, from :func:`etdrk4_forcing`) saves a pass
    over the state per stage. ``v`` is not updated in place; ``nonlinear``'s results are.
    """
    def scaled(factor: torch.Tensor, x: torch.Tensor, increment: torch.Tensor | None) -> torch.Tensor:
        return factor * x if increment is None else torch.addcmul(increment, factor, x)

    stage = None if forcing is None else forcing.stage
    nv = nonlinear(v, 0.0)
    e2v = scaled(c.E2, v, stage)
    a = torch.addcmul(e2v, c.Q, nv)
    na = nonlinear(a, 0.5)
    b = e2v.addcmul_(c.Q, na)
    nb = nonlinear(b, 0.5)
    nc = nonlinear(scaled(c.E2, a, stage).addcmul_(c.Q, nb, value=2).addcmul_(c.Q, nv, value=-1), 1.0)
    step = scaled(c.E, v, None if forcing is None else forcing.step)
    return step.addcmul_(c.f1, nv).addcmul_(c.f2, na.add_(nb), value=2).addcmul_(c.f3, nc)
