"""Initial-condition perturbations for ensembles that respect the geometry: smooth random fields on the
box or the sphere, the same function on every grid.

White noise added to an initial state is mostly damped in the first steps and makes the spread depend
on the grid. A Gaussian random field with a trace-class covariance (:mod:`sciml.diffusion.noise`) is one
random *function*: its perturbation of a 32x64 and of a 64x128 state is the same up to the coarse band,
and its length scale is a physical choice (``1 / tau``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..errors import ConfigError
from ..grids import Grid

__all__ = ["GaussianPerturbation"]


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
