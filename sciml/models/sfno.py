"""Spherical Fourier neural operator (``sfno``) on equiangular latitude-longitude grids."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._optional import require_torch_harmonics
from ..errors import ConfigError
from ._common import Operator, positive_int
from .features import SphereFeatures

__all__ = ["SFNOConfig", "SFNO"]


@dataclass(frozen=True, kw_only=True)
class SFNOConfig:
    """Options of the spherical FNO (Bonev et al. 2023, arXiv:2306.03838) from ``neuraloperator``.

    Its layers convolve in spherical-harmonic space (torch-harmonics' SHT on the equiangular grid)
    with weights that depend on the degree ``l`` only, so they commute with rotations of the sphere.

    Attributes:
        in_channels, out_channels: physical channels.
        lmax: spherical-harmonic degrees and orders kept, ``0 <= m <= l < lmax`` (triangular
            truncation); inputs need at least ``2 lmax - 1`` latitudes and longitudes.
        hidden_channels: width of the spectral layers.
        n_layers: number of spherical layers.
        position_features: append the unit vector ``(cos lat cos lon, cos lat sin lon, sin lat)``
            of each point (:class:`~sciml.models.features.SphereFeatures`) so the model can learn
            position-dependent effects (e.g. Coriolis, land-sea contrasts); ``False`` keeps the whole
            model equivariant to rotations about the polar axis and to the north-south reflection.
    """

    in_channels: int
    out_channels: int
    lmax: int = 16
    hidden_channels: int = 32
    n_layers: int = 4
    position_features: bool = True

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "lmax", "hidden_channels", "n_layers"):
            positive_int(self, name)
        if not isinstance(self.position_features, bool):
            raise ConfigError(f"position_features must be true or false, got {self.position_features!r}")


class SFNO(Operator):
    """Sphere features + ``neuralop.models.SFNO``; ``(batch, c_in, lat, lon) -> (batch, c_out, lat, lon)``.

    The input is on :meth:`sciml.grids.Grid.latlon`: latitude ascending from -90 to 90 degrees with
    both poles (torch-harmonics' ``"equiangular"`` grid, which counts from the north pole: the
    spectral layers commute with that reflection, so only the features depend on the orientation).
    Positional features are not :class:`~sciml.models.features.PeriodicFeatures`, which would treat
    latitude as periodic and be multivalued at the poles.
    """

    def __init__(self, config: SFNOConfig) -> None:
        require_torch_harmonics("the sfno model")
        from neuralop.models import SFNO as NeuralopSFNO

        super().__init__(config, 2)
        self.features = SphereFeatures() if config.position_features else nn.Identity()
        self.operator = NeuralopSFNO(
            # neuraloperator keeps degrees < n_modes[0] and orders < n_modes[1] // 2
            n_modes=(config.lmax, 2 * config.lmax),
            in_channels=config.in_channels + (3 if config.position_features else 0),
            out_channels=config.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            positional_embedding=None,
        )

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        self.check_input(field)
        least = 2 * self.config.lmax - 1
        if min(field.shape[-2:]) < least:
            raise ConfigError(
                f"SFNO with lmax={self.config.lmax} needs at least {least} latitudes and longitudes, "
                f"got a {field.shape[-2]} x {field.shape[-1]} grid; use a finer grid or a smaller lmax"
            )
        return self.operator(self.features(field))
