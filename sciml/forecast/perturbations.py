"""Initial-condition perturbations for ensembles that respect the geometry: smooth random fields on the
box or the sphere, the same function on every grid.

White noise added to an initial state is mostly damped in the first steps and makes the spread depend
on the grid. A Gaussian random field with a trace-class covariance (:mod:`sciml.diffusion.noise`) is one
random *function*: its perturbation of a 32x64 and of a 64x128 state is the same up to the coarse band,
and its length scale is a physical choice (``1 / tau``).

Random perturbations are not the directions in which a forecast's error grows: most of their amplitude
lies in directions the model damps, so the ensemble is under-dispersive in its first days. Bred vectors
(Toth & Kalnay 1993, 1997) are grown by the model itself: :class:`BredVectors` breeds a random field
through a few cycles of the model and rescaling, which converges to the fastest-growing directions of
the flow (for a linear model, to its leading eigenvector, as power iteration does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import torch

from ..errors import ConfigError
from ..grids import Grid

__all__ = ["GaussianPerturbation", "BredVectors"]


def _default_noise():
    from ..diffusion.noise import GaussianRandomField

    return GaussianRandomField(alpha=2.0, tau=3.0, band_limit=31, mean_zero=True)


@dataclass(frozen=True)
class GaussianPerturbation:
    """``x_c + scale_c * std_c(x) * g / sqrt(var(g))`` for each prognostic channel ``c``.

    ``g`` is a draw of ``noise`` (default ``(-Laplacian + 3^2)^-2`` on the unit sphere or the box, mean
    zero, band limit 31) normalised to unit pointwise variance, independent per channel, member and
    initial frame; ``std_c(x)`` is the standard deviation of channel ``c`` of the initial state over
    its frames and points, so ``scale`` is a fraction of each variable's variability (e.g. ``0.01``)
    whatever its units.

    Attributes:
        scale: one fraction for every channel, or one per prognostic variable (the surrogate's output order).
        noise: a noise object with ``sample(grid, n, generator=) -> (n, *grid.shape)`` and
            ``pointwise_variance(grid)``, e.g. :class:`sciml.diffusion.GaussianRandomField` or ``MaternField``.
    """

    scale: float | Sequence[float] = 0.01
    noise: object = field(default_factory=_default_noise)

    def __post_init__(self) -> None:
        scales = [self.scale] if isinstance(self.scale, (int, float)) else list(self.scale)
        if not scales or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0 for s in scales):
            raise ConfigError(f"scale must be a fraction >= 0 or one per variable, got {self.scale!r}")

    def __call__(self, state: torch.Tensor, *, grid: Grid, generator: torch.Generator) -> torch.Tensor:
        """The perturbation of ``state`` ``(frames, channel, *space)``, same shape."""
        frames, channels = state.shape[:2]
        scales = torch.as_tensor([self.scale] * channels if isinstance(self.scale, (int, float)) else list(self.scale),
                                 dtype=state.dtype)
        if scales.numel() != channels:
            raise ConfigError(f"scale gives {scales.numel()} values for {channels} prognostic variables")
        grid = grid.with_shape(*state.shape[2:])
        draws = self.noise.sample(grid, frames * channels, generator=generator, dtype=torch.float64)
        variance = torch.as_tensor(self.noise.pointwise_variance(grid), dtype=torch.float64)
        unit = (draws / variance.sqrt()).reshape(state.shape).to(state.dtype)  # (frames, channel, *space)
        spread = state.transpose(0, 1).reshape(channels, -1).std(dim=1)  # (channel,)
        return unit * (scales * spread).reshape(1, channels, *([1] * grid.ndim))


def _channel_rms(field: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Area-weighted root mean square per frame and channel: ``(frames, channel, *space) -> (frames, channel)``."""
    space = tuple(range(2, field.ndim))
    return ((field.to(torch.float64) ** 2 * weights).sum(space) / weights.sum()).sqrt()


@dataclass(frozen=True)
class BredVectors:
    """Bred-vector perturbations (Toth & Kalnay 1993, BAMS 74, 2317; 1997, MWR 125, 3297).

    A random seed perturbation ``d_0`` (a :class:`GaussianPerturbation` of amplitude ``scale``) is bred
    through ``cycles`` cycles along the control forecast from the initial state ``x_0``: in cycle ``c``,
    both ``x_c`` and ``x_c + d_c`` are stepped ``steps`` model steps, and the difference is rescaled to the
    seed's amplitude,

        ``d_{c+1} = a * (M^s(x_c + d_c) - M^s(x_c)) / ||M^s(x_c + d_c) - M^s(x_c)||``,  ``x_{c+1} = M^s(x_c)``,

    per initial frame and prognostic channel, with ``||.||`` the area-weighted RMS over the grid and
    ``a = scale_c * std_c(x_0)``. The last ``d`` is returned as the perturbation of ``x_0``. The directions
    that grow fastest over ``steps`` steps come to dominate; for a linear model ``M`` the vector converges
    to its leading eigenvector like power iteration. Breeding along the control forecast from ``x_0``
    stands in for breeding through the preceding analysis cycle, which needs a series of analyses; it
    costs ``2 * cycles * steps`` model steps per member.

    Attributes:
        scale: the amplitude, as a fraction of each variable's standard deviation (one value, or one per
            prognostic variable in the surrogate's output order), as for :class:`GaussianPerturbation`.
        cycles: breeding cycles (``>= 1``); 3 to 5 usually suffice for the leading directions to emerge.
        steps: model steps per cycle (the breeding interval).
        noise: the seed perturbation's noise (default that of :class:`GaussianPerturbation`).
    """

    scale: float | Sequence[float] = 0.01
    cycles: int = 4
    steps: int = 1
    noise: object = field(default_factory=_default_noise)
    uses_model: ClassVar[bool] = True  # forecast() passes step= (the model's one-step map)

    def __post_init__(self) -> None:
        GaussianPerturbation(scale=self.scale, noise=self.noise)  # checks scale
        for name in ("cycles", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"BredVectors {name} must be an integer >= 1, got {value!r}")

    def __call__(self, state: torch.Tensor, *, grid: Grid, generator: torch.Generator,
                 step: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
        """The bred perturbation of ``state`` ``(frames, channel, *space)``, same shape.

        ``step(x, k)`` advances prognostic states ``x`` ``(frames, channel, *space)`` by one model step
        from the ``k``-th step's input time (``k = 0`` at the initial time).
        """
        seed = GaussianPerturbation(scale=self.scale, noise=self.noise)
        delta = seed(state, grid=grid, generator=generator)  # (frames, channel, *space)
        weights = grid.with_shape(*state.shape[2:]).quadrature_weights()  # (*space,)
        amplitude = _channel_rms(delta, weights)  # (frames, channel): the seed's own amplitude
        control = state
        for cycle in range(self.cycles):
            perturbed = control + delta
            for k in range(cycle * self.steps, (cycle + 1) * self.steps):
                control, perturbed = step(control, k), step(perturbed, k)
            grown = perturbed - control
            norm = _channel_rms(grown, weights)
            if not torch.isfinite(norm).all():
                raise ConfigError("a bred perturbation became non-finite; use a smaller scale or fewer steps per cycle")
            factor = torch.where(norm > 0, amplitude / norm.clamp_min(torch.finfo(torch.float64).tiny),
                                 torch.zeros_like(norm))
            delta = grown * factor.to(grown.dtype).reshape(*norm.shape, *([1] * grid.ndim))
        return delta
