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
* ``"latlon"``: a global latitude-longitude grid on the unit sphere, dims ``("lat", "lon")``, latitude
  ascending (south to north), longitude uniform and periodic, ``lambda_j = 2 pi j / n_lon``. Its
  latitudes are one of the node sets of :data:`LATLON_NODES` (torch-harmonics' names):
  ``"equiangular"``, ``lat_k = -pi/2 + k pi / (n_lat - 1)`` with both poles, and
  ``"legendre-gauss"``, ``sin(lat_k)`` the roots of the Legendre polynomial ``P_{n_lat}``. The
  quadrature is the rule of the node set in ``x = sin(lat)`` (Clenshaw-Curtis, Gauss-Legendre) times
  the trapezoidal rule ``2 pi / n_lon`` in longitude: the weights torch-harmonics' transforms use.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import GridError

__all__ = ["Grid", "GridError", "LATLON_NODES", "PERIODIC_ATTR", "is_periodic"]

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

#: Latitude node sets of a ``"latlon"`` grid, named as torch-harmonics names its grids.
LATLON_NODES = ("equiangular", "legendre-gauss")


@functools.lru_cache(maxsize=64)
def _latitude_rule(nlat: int, nodes: str) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes ``lat_k`` (radians, ascending) and weights ``w_k`` of a node set, read-only arrays.

    ``sum_k w_k g(sin lat_k)`` approximates ``int_{-1}^{1} g(x) dx``, i.e. ``int cos(lat) f dlat``.

    * ``"equiangular"``: ``x_k = -cos(theta_k)``, ``theta_k = k pi / N``, ``N = nlat - 1`` (the
      Chebyshev extrema, both poles included) with the Clenshaw-Curtis weights (Waldvogel 2006, BIT
      46:195; Trefethen 2008, SIAM Rev. 50:67)
      ``w_k = (c_k / N) (1 - sum_{j=1}^{floor(N/2)} b_j cos(2 j theta_k) / (4 j^2 - 1))``, ``c_k = 1``
      at the poles and 2 elsewhere, ``b_j = 1`` for ``j = N / 2`` and 2 elsewhere: exact for
      polynomials in ``x`` of degree ``< nlat``; the cosine sums are one FFT.
    * ``"legendre-gauss"``: ``x_k`` the roots of ``P_nlat`` with the Gauss weights
      ``2 / ((1 - x_k^2) P'_nlat(x_k)^2)``: exact for degree ``< 2 nlat``.
    """
    if nodes == "legendre-gauss":
        x, weights = np.polynomial.legendre.leggauss(nlat)
        lat = np.arcsin(x)
    else:
        n = nlat - 1
        # sum_j a_j cos(2 pi j k / N) is the real part of a length-N DFT of a (k = N wraps to k = 0)
        a = np.zeros(n)
        j = np.arange(1, n // 2 + 1)
        a[j] = np.where(2 * j == n, 1.0, 2.0) / (4.0 * j**2 - 1.0)
        cosines = np.fft.fft(a).real
        c = np.full(nlat, 2.0)
        c[[0, -1]] = 1.0
        weights = c / n * (1.0 - np.append(cosines, cosines[0]))
        lat = np.linspace(-math.pi / 2, math.pi / 2, nlat)
    lat.flags.writeable = weights.flags.writeable = False
    return lat, weights


@dataclass(frozen=True)
class Grid:
    """A structured grid.

    Attributes:
        kind: ``"box"`` (periodic box), ``"bounded"`` (non-periodic box, endpoints included) or
            ``"latlon"`` (global sphere).
        shape: points per spatial dim, in the order of ``dims``.
        lengths: domain length per dim (``(pi, 2 pi)`` for the sphere).
        dims: names of the spatial dims, e.g. ``("y", "x")``.
        nodes: the latitude node set of a ``"latlon"`` grid, one of :data:`LATLON_NODES` (``None``
            given for a ``"latlon"`` grid means ``"equiangular"``, as before node sets existed); ``None``
            for boxes, whose nodes the kind fixes.
    """

    kind: str
    shape: tuple[int, ...]
    lengths: tuple[float, ...]
    dims: tuple[str, ...]
    nodes: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GridError(f"grid kind must be one of {KINDS}, got {self.kind!r}")
        if not (len(self.shape) == len(self.lengths) == len(self.dims)):
            raise GridError(f"shape {self.shape}, lengths {self.lengths} and dims {self.dims} differ in length")
        if any(int(n) != n or n < 2 for n in self.shape):
            raise GridError(f"every grid size must be an integer >= 2, got shape {self.shape}")
        if any(not (length > 0 and math.isfinite(length)) for length in self.lengths):
            raise GridError(f"domain lengths must be positive and finite, got {self.lengths}")
        if self.kind == "latlon":
            if self.nodes is None:
                object.__setattr__(self, "nodes", "equiangular")
            if self.nodes not in LATLON_NODES:
                raise GridError(f"latitude nodes must be one of {LATLON_NODES}, got {self.nodes!r}")
        elif self.nodes is not None:
            raise GridError(f"nodes={self.nodes!r} applies to 'latlon' grids only; a {self.kind!r} grid takes nodes=None")

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
    def latlon(cls, nlat: int, nlon: int, *, nodes: str = "equiangular") -> Grid:
        """Global lat-lon grid on the unit sphere with latitudes ``nodes`` (:data:`LATLON_NODES`).

        ``"equiangular"`` includes both poles; ``"legendre-gauss"`` (Gaussian grid) has no node at
        the poles. Longitude ``2 pi j / nlon`` is periodic.
        """
        return cls("latlon", (int(nlat), int(nlon)), (math.pi, 2 * math.pi), ("lat", "lon"), nodes)

    @classmethod
    def from_coords(cls, coords: dict[str, np.ndarray], *, periodic: bool = True, rtol: float = 1e-6) -> Grid:
        """Infer a box from 1-D coordinate arrays ``{"y": ..., "x": ...}``.

        The coordinates must be strictly increasing and uniform, starting anywhere. Periodic: the
        period is ``n * spacing`` (the endpoint is not repeated). ``periodic=False``: a
        ``"bounded"`` grid whose points are the nodes, length ``(n - 1) * spacing``. Raises
        :class:`GridError` naming the dim otherwise, since spectral operators on a non-uniform grid
        would silently be wrong. Lat-lon coordinates are :meth:`from_latlon`'s.
        """
        dims = tuple(coords)
        shape, lengths = [], []
        for dim in dims:
            values = _coordinate(coords[dim], dim)
            steps = np.diff(values)
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

    @classmethod
    def from_latlon(cls, lat: np.ndarray, lon: np.ndarray, *, tol: float = 1e-3) -> Grid:
        """Recognise a global lat-lon grid from its coordinates in degrees.

        ``lat`` must be ascending and, within ``tol`` times the nominal spacing ``180 / nlat``, the
        nodes of one of :data:`LATLON_NODES`: ``linspace(-90, 90, nlat)`` (equiangular with both
        poles) or ``degrees(arcsin(x_k))`` with ``x_k`` the Gauss-Legendre nodes
        (``numpy.polynomial.legendre.leggauss``). ``lon`` must step by ``360 / nlon`` within ``tol``
        of that step (uniform and covering 360 degrees), starting anywhere. Anything else (a regional
        box, an equiangular grid without poles, a descending latitude) raises :class:`GridError`
        naming the coordinate: the spherical transforms would silently be wrong on it. Where the
        longitudes start is not recorded (as a box does not record its origin): :meth:`coords` starts at 0.
        """
        lat, lon = _coordinate(lat, "lat"), _coordinate(lon, "lon")
        nlat, nlon = lat.size, lon.size
        found = [nodes for nodes in LATLON_NODES
                 if np.max(np.abs(lat - np.degrees(_latitude_rule(nlat, nodes)[0]))) <= tol * 180.0 / nlat]
        if not found:
            raise GridError(
                f"coordinate 'lat' ({nlat} values from {lat[0]:.6g} to {lat[-1]:.6g}) is neither equiangular with both "
                f"poles (linspace(-90, 90, {nlat})) nor Gauss-Legendre (degrees(arcsin(leggauss({nlat})))); only global "
                "grids on these nodes are supported, so regrid first"
            )
        steps = np.diff(lon)
        dlon = 360.0 / nlon
        if np.max(np.abs(steps - dlon)) > tol * dlon:
            raise GridError(
                f"coordinate 'lon' steps by {steps.min():.6g} to {steps.max():.6g} degrees, but a global grid of {nlon} "
                f"longitudes steps by 360 / {nlon} = {dlon:.6g}; only uniform longitudes covering 360 degrees are "
                "supported, so regrid first"
            )
        return cls.latlon(nlat, nlon, nodes=found[0])

    # ------------------------------------------------------------------ geometry
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing per dim (radians for the sphere).

        On the sphere: the largest gap between adjacent latitudes (torch-harmonics'
        ``compute_latitude_spacing``; ``pi / (nlat - 1)`` on the equiangular grid, the only uniform
        one) and ``2 pi / nlon``.
        """
        if self.kind == "latlon":
            lat, _ = _latitude_rule(self.shape[0], self.nodes)
            return (float(np.diff(lat).max()), 2 * math.pi / self.shape[1])
        if self.kind == "bounded":
            return tuple(length / (n - 1) for length, n in zip(self.lengths, self.shape))
        return tuple(length / n for length, n in zip(self.lengths, self.shape))

    def coords(self) -> dict[str, np.ndarray]:
        """1-D coordinate arrays (float64) keyed by dim name; degrees for the sphere, latitude ascending."""
        if self.kind == "latlon":
            nlat, nlon = self.shape
            if self.nodes == "equiangular":  # exact in degrees: -90, ..., 90
                lat = np.linspace(-90.0, 90.0, nlat)
            else:
                lat = np.degrees(_latitude_rule(nlat, self.nodes)[0])
            return {"lat": lat, "lon": np.arange(nlon) * (360.0 / nlon)}
        if self.kind == "bounded":
            return {dim: np.linspace(0.0, length, n) for dim, n, length in zip(self.dims, self.shape, self.lengths)}
        return {dim: np.arange(n) * (length / n) for dim, n, length in zip(self.dims, self.shape, self.lengths)}

    def quadrature_weights(self, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Weights ``w`` with ``sum(w * f) ~ integral of f`` over the domain; shape ``self.shape``.

        Box: uniform cell measure ``prod(dx)`` (the trapezoidal rule, spectrally accurate for periodic
        functions). Bounded box: the tensor-product trapezoidal rule (half weights on the boundary
        nodes), second-order accurate. Sphere: ``w_kj = w_k 2 pi / nlon`` for the area element
        ``cos(lat) dlat dlon``, with ``w_k`` the latitude rule of the node set in ``x = sin(lat)``:
        Clenshaw-Curtis on ``"equiangular"`` (exact for polynomials in ``sin(lat)`` of degree
        ``< nlat``), Gauss-Legendre on ``"legendre-gauss"`` (degree ``< 2 nlat``); the longitude sum
        is exact for ``e^{i m lon}``, ``|m| < nlon``. The weights sum to ``4 pi`` and equal
        torch-harmonics' ``QuadratureS2`` weights.
        """
        if self.kind == "latlon":
            nlat, nlon = self.shape
            band = torch.from_numpy(_latitude_rule(nlat, self.nodes)[1] * (2 * math.pi / nlon))  # (lat,)
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
        """The same domain sampled at another resolution (and, on the sphere, on the same node set)."""
        if len(shape) != self.ndim:
            raise GridError(f"{self.ndim}-D grid cannot take shape {shape}")
        return Grid(self.kind, tuple(int(n) for n in shape), self.lengths, self.dims, self.nodes)

    def same_domain(self, other: Grid, *, rtol: float = 1e-6) -> bool:
        """True when both grids cover the same domain with the same dims and node rule (resolution may differ).

        Two spheres on different latitude node sets are not the same: a spherical transform built for
        one node set is wrong on the other, so a model trained on one must not be fed the other.
        """
        return (
            self.kind == other.kind
            and self.dims == other.dims
            and self.nodes == other.nodes
            and all(math.isclose(a, b, rel_tol=rtol) for a, b in zip(self.lengths, other.lengths))
        )

    def to_json(self) -> dict:
        """``{"kind", "shape", "lengths", "dims"}``, plus ``"nodes"`` for a sphere."""
        data = {"kind": self.kind, "shape": list(self.shape), "lengths": list(self.lengths), "dims": list(self.dims)}
        if self.nodes is not None:
            data["nodes"] = self.nodes
        return data

    @classmethod
    def from_json(cls, data: dict) -> Grid:
        """Inverse of :meth:`to_json`; a ``"latlon"`` grid saved without ``"nodes"`` is equiangular."""
        return cls(data["kind"], tuple(data["shape"]), tuple(data["lengths"]), tuple(data["dims"]), data.get("nodes"))


def _coordinate(values: np.ndarray, dim: str) -> np.ndarray:
    """``values`` as a float64 1-D strictly increasing array of at least 2 points, else :class:`GridError`."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise GridError(f"coordinate {dim!r} must be 1-D with at least 2 points, got shape {values.shape}")
    steps = np.diff(values)
    if np.all(steps < 0):
        raise GridError(f"coordinate {dim!r} is descending; flip the data along {dim!r} so it ascends")
    if not np.all(steps > 0):
        raise GridError(f"coordinate {dim!r} is not strictly increasing; sort the data along {dim!r}")
    return values
