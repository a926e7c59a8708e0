"""Positional input features that are functions of the continuous coordinates.

Being evaluated on whatever grid the input has, they are the same functions at every resolution, so
a model that reads them still super-resolves zero-shot.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["PeriodicFeatures", "SphereFeatures"]


class PeriodicFeatures(nn.Module):
    """Append ``sin(2 pi x_i / L_i), cos(2 pi x_i / L_i)`` for each spatial dim as input channels.

    ``(batch, c, *space) -> (batch, c + 2 d, *space)``, evaluated on the points ``x_j = j L / n`` of
    whatever grid the input has. Being periodic and resolution-independent, they let a model learn
    position-dependent effects (e.g. forcing) without breaking periodicity or super-resolution.
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.ndim = ndim

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        batch, space = field.shape[0], field.shape[2:]
        if len(space) != self.ndim:
            raise ConfigError(f"expected {self.ndim} spatial dims, got input shape {tuple(field.shape)}")
        features = []
        for axis, n in enumerate(space):
            phase = torch.arange(n, device=field.device, dtype=field.dtype) * (2 * math.pi / n)
            shape = [1] * self.ndim
            shape[axis] = n
            phase = phase.view(shape).expand(space)
            features += [torch.sin(phase), torch.cos(phase)]
        grid = torch.stack(features).unsqueeze(0).expand(batch, -1, *space)
        return torch.cat([field, grid], dim=1)


class SphereFeatures(nn.Module):
    """Append the Cartesian coordinates of each point of the unit sphere as three input channels.

    ``(batch, c, lat, lon) -> (batch, c + 3, lat, lon)`` on the equiangular grid of
    :meth:`sciml.grids.Grid.latlon` (latitude ascending from -90 to 90 degrees, poles included;
    longitude ``2 pi j / n_lon``): ``(cos(lat) cos(lon), cos(lat) sin(lon), sin(lat))``.

    Unlike ``sin/cos`` of latitude and longitude separately, these are smooth functions on the sphere
    (the degree-1 spherical harmonics): single-valued at the poles, periodic in longitude and
    band-limited, so the spectral layers see them exactly at every resolution.
    """

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if field.ndim != 4:
            raise ConfigError(f"expected (batch, channel, lat, lon), got input shape {tuple(field.shape)}")
        batch, _, nlat, nlon = field.shape
        options = {"device": field.device, "dtype": field.dtype}
        lat = torch.linspace(-math.pi / 2, math.pi / 2, nlat, **options)[:, None]
        lon = (torch.arange(nlon, **options) * (2 * math.pi / nlon))[None, :]
        xyz = torch.stack(
            [torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat).expand(nlat, nlon)]
        )
        return torch.cat([field, xyz.unsqueeze(0).expand(batch, -1, -1, -1)], dim=1)
