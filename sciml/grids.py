"""Grids: coordinates, spacing, periodicity and quadrature weights.

A :class:`Grid` is data, not a convention: every metric, spectrum and resampling routine reads it,
so nothing in ``sciml`` hard-codes a resolution. Tensors on a grid are laid out
``(batch, channel, *grid.shape)`` with the spatial dims in the order of ``grid.dims``.

Three kinds exist:

* ``"box"``: a periodic box ``[0, L_1) x ... x [0, L_d)`` sampled at ``x_j = j L / n`` (endpoint
  excluded), ``d`` = 1 or 2, dims ``("x",)`` or ``("y", "x")``;
* ``"bounded"``: a non-periodic box ``[0, L_1] x ... x [0, L_d]`` sampled at the nodes
  ``x_j = j L / (n - 1)`` (both endpoints included), as for Dirichlet problems such as Darcy flow;
  trapezoidal quadrature weights;
* ``"latlon"``: an equiangular latitude-longitude grid on the unit sphere, dims ``("lat", "lon")``,
  latitude ascending, with ``cos(lat)`` quadrature weights (a stub until the forecasting issue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import GridError

__all__ = ["Grid", "GridError", "PERIODIC_ATTR", "is_periodic"]

#: Attribute of a spatial coordinate variable saying whether the domain is periodic along it
#: (``"true"``/``"false"``; also 0/1 or booleans). Absent means periodic.
PERIODIC_ATTR = "periodic"


def is_periodic(attrs: dict, *, name: str = "coordinate") -> bool:
    """Read :data:`PERIODIC_ATTR` from a coordinate's attributes; absent means periodic."""
    value = attrs.get(PERIODIC_ATTR, True)
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise GridError(f"{name} attribute {PERIODIC_ATTR}={value!r} must be 'true' or 'false'")


KINDS = ("box", "bounded", "latlon")


@dataclass(frozen=True)
class Grid:
    """A structured grid.

    Attributes:
        kind: ``"box"`` (periodic box), ``"bounded"`` (non-periodic box, endpoints included) or
            ``"latlon"`` (equiangular sphere).
        shape: points per spatial dim, in the order of ``dims``.
        lengths: domain length per dim (``(pi, 2 pi)`` for the sphere).
        dims: names of the spatial dims, e.g. ``("y", "x")``.
    """

    kind: str
    shape: tuple[int, ...]
    lengths: tuple[float, ...]
    dims: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GridError(f"grid kind must be one of {KINDS}, got {self.kind!r}")
        if not (len(self.shape) == len(self.lengths) == len(self.dims)):
            raise GridError(f"shape {self.shape}, lengths {self.lengths} and dims {self.dims} differ in length")
        if any(int(n) != n or n < 2 for n in self.shape):
            raise GridError(f"every grid size must be an integer >= 2, got shape {self.shape}")
        if any(not (length > 0 and math.isfinite(length)) for length in self.lengths):
            raise GridError(f"domain lengths must be positive and finite, got {self.lengths}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def box(cls, *shape: int, lengths: float | tuple[float, ...] = 1.0) -> Grid:
        """Periodic box: ``Grid.box(n)`` (dim ``x``) or ``Grid.box(ny, nx)`` (dims ``y, x``)."""
        if len(shape) not in (1, 2):
            raise GridError(f"a box grid is 1-D or 2-D, got shape {shape}")
        if isinstance(lengths, (int, float)):
            lengths = (float(lengths),) * len(shape)
        dims = ("x",) if len(shape) == 1 else ("y", "x")
        return cls("box", tuple(int(n) for n in shape), tuple(float(v) for v in lengths), dims)

    @classmethod
    def bounded(cls, *shape: int, lengths: float | tuple[float, ...] = 1.0) -> Grid:
        """Non-periodic box ``[0, L]^d`` sampled at ``n`` nodes per dim, both endpoints included."""
        box = cls.box(*shape, lengths=lengths)
        return cls("bounded", box.shape, box.lengths, box.dims)

    @classmethod
    def latlon(cls, nlat: int, nlon: int) -> Grid:
        """Equiangular lat-lon grid on the unit sphere (poles included, longitude periodic)."""
        return cls("latlon", (int(nlat), int(nlon)), (math.pi, 2 * math.pi), ("lat", "lon"))

    @classmethod
    def from_coords(cls, coords: dict[str, np.ndarray], *, periodic: bool = True, rtol: float = 1e-6) -> Grid:
        """Infer a box from 1-D coordinate arrays ``{"y": ..., "x": ...}``.

        The coordinates must be strictly increasing and uniform, starting anywhere. Periodic: the
        period is ``n * spacing`` (the endpoint is not repeated). ``periodic=False``: a
        ``"bounded"`` grid whose points are the nodes, length ``(n - 1) * spacing``. Raises
        :class:`GridError` naming the dim otherwise, since spectral operators on a non-uniform grid
        would silently be wrong.
        """
        dims = tuple(coords)
        shape, lengths = [], []
        for dim in dims:
            values = np.asarray(coords[dim], dtype=np.float64)
            if values.ndim != 1 or values.size < 2:
                raise GridError(f"coordinate {dim!r} must be 1-D with at least 2 points, got shape {values.shape}")
            steps = np.diff(values)
            if not np.all(steps > 0):
                raise GridError(f"coordinate {dim!r} is not strictly increasing; sort the data along {dim!r}")
            spacing = float(steps.mean())
            if np.max(np.abs(steps - spacing)) > rtol * max(abs(spacing), 1e-300) + 1e-12:
                raise GridError(
                    f"coordinate {dim!r} is not uniformly spaced (steps from {steps.min():.6g} to "
                    f"{steps.max():.6g}); interpolate onto a uniform grid first"
                )
            shape.append(values.size)
            lengths.append(spacing * (values.size if periodic else values.size - 1))
        if len(dims) not in (1, 2):
            raise GridError(f"expected 1 or 2 spatial dims, got {dims}")
        return cls("box" if periodic else "bounded", tuple(shape), tuple(lengths), dims)

    # ------------------------------------------------------------------ geometry
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing per dim (radians for the sphere)."""
        if self.kind == "latlon":
            return (math.pi / (self.shape[0] - 1), 2 * math.pi / self.shape[1])
        if self.kind == "bounded":
            return tuple(length / (n - 1) for length, n in zip(self.lengths, self.shape))
        return tuple(length / n for length, n in zip(self.lengths, self.shape))

    def coords(self) -> dict[str, np.ndarray]:
        """1-D coordinate arrays (float64) keyed by dim name; degrees for the sphere."""
        if self.kind == "latlon":
            nlat, nlon = self.shape
            return {"lat": np.linspace(-90.0, 90.0, nlat), "lon": np.arange(nlon) * (360.0 / nlon)}
        if self.kind == "bounded":
            return {dim: np.linspace(0.0, length, n) for dim, n, length in zip(self.dims, self.shape, self.lengths)}
        return {dim: np.arange(n) * (length / n) for dim, n, length in zip(self.dims, self.shape, self.lengths)}

    def quadrature_weights(self, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Weights ``w`` with ``sum(w * f) ~ integral of f`` over the domain; shape ``self.shape``.

        Box: uniform cell measure ``prod(dx)`` (the trapezoidal rule, spectrally accurate for periodic
        functions). Bounded box: the tensor-product trapezoidal rule (half weights on the boundary
        nodes), second-order accurate. Sphere: the exact area of each point's latitude band ``[lat - dlat/2, lat + dlat/2]``
        (clipped at the poles) split evenly in longitude, so the weights sum to ``4 pi``.
        """
        if self.kind == "latlon":
            nlat, nlon = self.shape
            dlat = math.pi / (nlat - 1)
            lat = torch.linspace(-math.pi / 2, math.pi / 2, nlat, dtype=torch.float64)
            upper = (lat + dlat / 2).clamp(max=math.pi / 2)
            lower = (lat - dlat / 2).clamp(min=-math.pi / 2)
            band = 2 * math.pi * (torch.sin(upper) - torch.sin(lower)) / nlon  # (lat,)
            return band[:, None].expand(nlat, nlon).to(dtype=dtype, device=device).clone()
        cell = math.prod(self.spacing)
        weights = torch.full(self.shape, cell, dtype=torch.float64)
        if self.kind == "bounded":
            for axis in range(self.ndim):
                ends = [slice(None)] * self.ndim
                for index in (0, -1):
                    ends[axis] = index
                    weights[tuple(ends)] *= 0.5
        return weights.to(dtype=dtype, device=device)

    def with_shape(self, *shape: int) -> Grid:
        """The same domain sampled at another resolution."""
        if len(shape) != self.ndim:
            raise GridError(f"{self.ndim}-D grid cannot take shape {shape}")
        return Grid(self.kind, tuple(int(n) for n in shape), self.lengths, self.dims)

    def same_domain(self, other: Grid, *, rtol: float = 1e-6) -> bool:
        """True when both grids cover the same domain with the same dims (resolution may differ)."""
        return (
            self.kind == other.kind
            and self.dims == other.dims
            and all(math.isclose(a, b, rel_tol=rtol) for a, b in zip(self.lengths, other.lengths))
        )

    def to_json(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "lengths": list(self.lengths), "dims": list(self.dims)}

    @classmethod
    def from_json(cls, data: dict) -> Grid:
        return cls(data["kind"], tuple(data["shape"]), tuple(data["lengths"]), tuple(data["dims"]))
