"""Positional input features that are functions of the continuous coordinates.

Being evaluated on whatever grid the input has, they are the same functions at every resolution, so
a model that reads them still super-resolves zero-shot.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..grids import LATLON_NODES, Grid

__all__ = ["PeriodicFeatures", "BoundedFeatures", "SphereFeatures", "BOUNDARIES", "reflect", "crop"]

#: How a box model treats the domain's edges: ``"periodic"`` (the FFT's own wrap-around) or
#: ``"reflect"`` (even extension of a bounded domain, see :func:`reflect`).
BOUNDARIES = ("periodic", "reflect")


def reflect(field: torch.Tensor, ndim: int) -> torch.Tensor:
    """Even extension across both ends of each of the last ``ndim`` dims: ``n -> 2 (n - 1)`` points.

    For nodes ``x_j = j L / (n - 1)`` of a bounded box, ``f[0..n-1]`` followed by ``f[n-2..1]`` is
    ``f`` on the periodic box ``[0, 2 L)`` extended by ``f(2 L - x) = f(x)``: continuous, and with a
    period of ``2 L`` at every resolution, so a spectral layer's mode ``k`` is the physical
    frequency ``k / (2 L)`` whatever ``n`` is (the cosine-transform view of a bounded domain).
    """
    for axis in range(field.ndim - ndim, field.ndim):
        n = field.shape[axis]
        field = torch.cat([field, field.narrow(axis, 1, n - 2).flip(axis)], dim=axis)
    return field


def crop(field: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`reflect`: the first ``shape`` points of the trailing dims."""
    index = (..., *(slice(0, n) for n in shape))
    return field[index]


class _AxisFeatures(nn.Module):
    """Append functions of each spatial coordinate as channels: ``(batch, c, *space) -> (batch, c + k d, *space)``.

    Subclasses give ``functions(index, n)``: the ``k`` feature values on the grid points ``index``
    (``0..n-1`` along one axis).
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.ndim = ndim

    def functions(self, index: torch.Tensor, n: int) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        batch, space = field.shape[0], field.shape[2:]
        if len(space) != self.ndim:
            raise ConfigError(f"expected {self.ndim} spatial dims, got input shape {tuple(field.shape)}")
        features = []
        for axis, n in enumerate(space):
            shape = [1] * self.ndim
            shape[axis] = n
            index = torch.arange(n, device=field.device, dtype=field.dtype)
            features += [f.view(shape).expand(space) for f in self.functions(index, n)]
        grid = torch.stack(features).unsqueeze(0).expand(batch, -1, *space)
        return torch.cat([field, grid], dim=1)


class PeriodicFeatures(_AxisFeatures):
    """Append ``sin(2 pi x_i / L_i), cos(2 pi x_i / L_i)`` for each spatial dim as input channels.

    ``(batch, c, *space) -> (batch, c + 2 d, *space)``, evaluated on the points ``x_j = j L / n`` of
    whatever grid the input has. Being periodic and resolution-independent, they let a model learn
    position-dependent effects (e.g. forcing) without breaking periodicity or super-resolution.
    """

    def functions(self, index: torch.Tensor, n: int) -> list[torch.Tensor]:
        phase = index * (2 * math.pi / n)
        return [torch.sin(phase), torch.cos(phase)]


class BoundedFeatures(_AxisFeatures):
    """Append ``cos(pi x_i / L_i)`` for each spatial dim on the nodes of a bounded box.

    ``(batch, c, *space) -> (batch, c + d, *space)`` with ``x_j = j L / (n - 1)``. The lowest cosine
    mode is one-to-one on ``[0, L]`` (so it locates every point) and smooth under the even extension
    of :func:`reflect`, so the spectral layers see the same function at every resolution.
    """

    def functions(self, index: torch.Tensor, n: int) -> list[torch.Tensor]:
        return [torch.cos(index * (math.pi / (n - 1)))]


class SphereFeatures(nn.Module):
    """Append the Cartesian coordinates of each point of the unit sphere as three input channels.

    ``(batch, c, lat, lon) -> (batch, c + 3, lat, lon)`` on :meth:`sciml.grids.Grid.latlon` with the
    latitude node set ``nodes`` (:data:`sciml.grids.LATLON_NODES`; latitude ascending, longitude
    ``2 pi j / n_lon``): ``(cos(lat) cos(lon), cos(lat) sin(lon), sin(lat))``, with ``lat`` the
    grid's own latitudes at whatever ``n_lat`` the input has (``k pi / (n_lat - 1) - pi / 2`` on
    ``"equiangular"``, ``arcsin`` of the Gauss-Legendre nodes on ``"legendre-gauss"``).

    Unlike ``sin/cos`` of latitude and longitude separately, these are smooth functions on the sphere
    (the degree-1 spherical harmonics): single-valued at the poles, periodic in longitude and
    band-limited, so the spectral layers see them exactly at every resolution.
    """

    def __init__(self, *, nodes: str = "equiangular") -> None:
        super().__init__()
        if nodes not in LATLON_NODES:
            raise ConfigError(f"nodes must be one of {', '.join(map(repr, LATLON_NODES))}, got {nodes!r}")
        self.nodes = nodes
        self._xyz: dict[tuple, torch.Tensor] = {}  # per (nlat, nlon, device, dtype): one host-to-device copy each

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if field.ndim != 4:
            raise ConfigError(f"expected (batch, channel, lat, lon), got input shape {tuple(field.shape)}")
        batch, _, nlat, nlon = field.shape
        key = (nlat, nlon, field.device, field.dtype)
        if key not in self._xyz:
            coords = Grid.latlon(nlat, nlon, nodes=self.nodes).coords()
            lat, lon = np.deg2rad(coords["lat"])[:, None], np.deg2rad(coords["lon"])[None, :]
            xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.broadcast_to(np.sin(lat), (nlat, nlon))])
            self._xyz[key] = torch.from_numpy(xyz).to(device=field.device, dtype=field.dtype)
        return torch.cat([field, self._xyz[key].unsqueeze(0).expand(batch, -1, -1, -1)], dim=1)
