"""Spherical Fourier neural operator (``sfno``) on global lat-lon grids, equiangular or Gaussian."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Mapping

import torch
from torch import nn

from .._optional import require_torch_harmonics
from ..errors import ConfigError
from ..grids import LATLON_NODES, Grid
from ._common import Operator, one_of, positive_int
from .features import SphereFeatures

__all__ = ["SFNOConfig", "SFNO", "least_points"]

#: ``lmax`` of :class:`SFNOConfig` unless given, and the cap of :meth:`SFNOConfig.defaults_for`.
DEFAULT_LMAX = 16


def least_points(lmax: int, grid: str) -> tuple[int, int]:
    """Fewest ``(latitudes, longitudes)`` on which the transforms of degrees ``l < lmax`` are exact.

    The forward transform integrates products ``f Y_l^m`` of degree up to ``2 (lmax - 1)`` in
    ``sin(lat)`` and in ``e^{i lon}``: Clenshaw-Curtis (``"equiangular"``) integrates degree ``< nlat``
    exactly, so ``nlat >= 2 lmax - 1``; Gauss-Legendre (``"legendre-gauss"``) degree ``< 2 nlat``, so
    ``nlat >= lmax``; the longitude sum needs ``nlon >= 2 lmax - 1`` (torch-harmonics' ``truncate_sht``).
    """
    return (2 * lmax - 1 if grid == "equiangular" else lmax), 2 * lmax - 1


@dataclass(frozen=True, kw_only=True)
class SFNOConfig:
    """Options of the spherical FNO (Bonev et al. 2023, arXiv:2306.03838) from ``neuraloperator``.

    Its layers convolve in spherical-harmonic space (torch-harmonics' SHT on the grid's latitude
    nodes) with weights that depend on the degree ``l`` only, so they commute with rotations of the
    sphere.

    Attributes:
        in_channels, out_channels: physical channels.
        lmax: spherical-harmonic degrees and orders kept, ``0 <= m <= l < lmax`` (triangular
            truncation); inputs need :func:`least_points` latitudes and longitudes (``2 lmax - 1`` of
            each on the equiangular grid, ``lmax`` latitudes on the Gaussian grid).
        hidden_channels: width of the spectral layers.
        n_layers: number of spherical layers.
        position_features: append the unit vector ``(cos lat cos lon, cos lat sin lon, sin lat)``
            of each point (:class:`~sciml.models.features.SphereFeatures`) so the model can learn
            position-dependent effects (e.g. Coriolis, land-sea contrasts); ``False`` keeps the whole
            model equivariant to rotations about the polar axis and to the north-south reflection.
        grid: the latitude nodes of the data, :attr:`sciml.grids.Grid.nodes`: ``"equiangular"``
            (both poles) or ``"legendre-gauss"`` (Gaussian grid); the transforms and the features are
            built for them, at every resolution.
    """

    in_channels: int
    out_channels: int
    lmax: int = DEFAULT_LMAX
    hidden_channels: int = 32
    n_layers: int = 4
    position_features: bool = True
    grid: str = "equiangular"

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "lmax", "hidden_channels", "n_layers"):
            positive_int(self, name)
        if not isinstance(self.position_features, bool):
            raise ConfigError(f"position_features must be true or false, got {self.position_features!r}")
        one_of(self, "grid", LATLON_NODES)

    @classmethod
    def defaults_for(cls, grid: Grid, given: Mapping | None = None) -> dict[str, object]:
        """Options for training on ``grid``: ``{"lmax": ..., "grid": grid.nodes}``.

        ``lmax`` is the largest degree count up to :data:`DEFAULT_LMAX` that the grid resolves
        (:func:`least_points`), e.g. 16 on 32 x 64 equiangular, 8 on 16 x 32 equiangular and 16 on
        16 x 32 Gaussian. ``given`` holds the options the user chose (the caller keeps those); a
        given ``grid`` other than the data's node set would build transforms for the wrong latitudes
        and is refused. Raises :class:`~sciml.errors.ConfigError` for a grid that is not a sphere.
        """
        if not isinstance(grid, Grid) or grid.kind != "latlon":
            kind = grid.kind if isinstance(grid, Grid) else type(grid).__name__
            raise ConfigError(f"sfno works on a 'latlon' sphere grid, not on a {kind!r} grid; use a box model such as fno")
        given = given or {}
        if given.get("grid", grid.nodes) != grid.nodes:
            raise ConfigError(f"model option grid={given['grid']!r} does not match the data's {grid.nodes!r} latitudes; "
                              f"drop it or pass grid={grid.nodes!r}")
        nlat, nlon = grid.shape
        lmax = max(lmax for lmax in range(1, DEFAULT_LMAX + 1)
                   if all(n >= least for n, least in zip((nlat, nlon), least_points(lmax, grid.nodes))))
        return {"lmax": lmax, "grid": grid.nodes}


class SFNO(Operator):
    """Sphere features + ``neuralop.models.SFNO``; ``(batch, c_in, lat, lon) -> (batch, c_out, lat, lon)``.

    The input is on :meth:`sciml.grids.Grid.latlon` with nodes ``config.grid``: latitude ascending
    (torch-harmonics' grids count from the north pole: both node sets are symmetric about the
    equator and the spectral layers commute with that reflection, so only the features depend on the
    orientation). Every spherical layer gets ``sht_grids = config.grid``, so the transforms it builds
    for each input resolution integrate on the data's own nodes. Positional features are not
    :class:`~sciml.models.features.PeriodicFeatures`, which would treat latitude as periodic and be
    multivalued at the poles.
    """

    def __init__(self, config: SFNOConfig) -> None:
        require_torch_harmonics("the sfno model")
        from neuralop.layers.spherical_convolution import SphericalConv
        from neuralop.models import SFNO as NeuralopSFNO

        super().__init__(config, 2)
        self.features = SphereFeatures(nodes=config.grid) if config.position_features else nn.Identity()
        self.operator = NeuralopSFNO(
            # neuraloperator keeps degrees < n_modes[0] and orders < n_modes[1] // 2
            n_modes=(config.lmax, 2 * config.lmax),
            in_channels=config.in_channels + self.feature_channels,
            out_channels=config.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            positional_embedding=None,
            # neuraloperator's SFNO does not forward the node set to its layers: bind it here
            conv_module=partial(SphericalConv, sht_grids=config.grid),
        )

    @property
    def feature_channels(self) -> int:
        """The three Cartesian coordinates of each point, or none."""
        return 3 if self.config.position_features else 0

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        self.check_input(field)
        nlat, nlon = least_points(self.config.lmax, self.config.grid)
        if field.shape[-2] < nlat or field.shape[-1] < nlon:
            raise ConfigError(
                f"SFNO with lmax={self.config.lmax} on the {self.config.grid} grid needs at least {nlat} latitudes and "
                f"{nlon} longitudes, got a {field.shape[-2]} x {field.shape[-1]} grid; use a finer grid or a smaller lmax"
            )
        return self.operator(self.features(field))
