"""Lat-lon spheres on both node sets: quadrature exact to the stated degree, coordinates recognised from
files, latitude never periodic, channels before (lat, lon)."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import lpmv

from sciml import DataError, Grid, GridError
from sciml.data import OperatorPairs, grid_of, stack_fields, trajectory_dataset
from sciml.grids import LATLON_NODES

NODES = LATLON_NODES


def _lat(grid: Grid) -> np.ndarray:
    return np.deg2rad(grid.coords()["lat"])


def _integral(grid: Grid, values: np.ndarray) -> float:
    """Quadrature of ``values`` of shape ``grid.shape`` (or ``(nlat, 1)``, constant in longitude)."""
    values = np.broadcast_to(values, grid.shape)
    return float((grid.quadrature_weights() * torch.from_numpy(np.ascontiguousarray(values))).sum())


def _power_integral(d: int) -> float:
    """Integral of ``sin(lat)^d`` over the unit sphere: ``2 pi int_{-1}^{1} x^d dx``."""
    return 2 * math.pi * (1 - (-1) ** (d + 1)) / (d + 1)


@pytest.mark.parametrize("nodes", NODES)
@pytest.mark.parametrize("shape", [(2, 4), (3, 6), (16, 32), (17, 32), (64, 128), (721, 1440)])
def test_weights_sum_to_the_area_of_the_sphere(nodes, shape):
    grid = Grid.latlon(*shape, nodes=nodes)
    w = grid.quadrature_weights()
    assert w.shape == shape and bool((w > 0).all())
    assert float(w.sum()) == pytest.approx(4 * math.pi, rel=1e-13)
    torch.testing.assert_close(w, w[:, :1].expand(shape))  # uniform in longitude
    torch.testing.assert_close(w, w.flip(0), rtol=1e-11, atol=0)  # both node sets are symmetric about the equator


def test_small_rules_are_simpson_clenshaw_curtis_and_two_point_gauss():
    # weights in x = sin(lat), i.e. the latitude weights divided by 2 pi / nlon
    def latitude_weights(grid):
        return grid.quadrature_weights()[:, 0].numpy() / (2 * math.pi / grid.shape[1])

    np.testing.assert_allclose(latitude_weights(Grid.latlon(3, 4)), [1 / 3, 4 / 3, 1 / 3], rtol=1e-14)  # Simpson
    np.testing.assert_allclose(latitude_weights(Grid.latlon(5, 4)), np.array([1, 8, 12, 8, 1]) / 15, rtol=1e-14)
    gauss = Grid.latlon(2, 4, nodes="legendre-gauss")
    np.testing.assert_allclose(np.sin(_lat(gauss)), [-1 / math.sqrt(3), 1 / math.sqrt(3)], rtol=1e-15)
    np.testing.assert_allclose(latitude_weights(gauss), [1.0, 1.0], rtol=1e-15)


@pytest.mark.parametrize(("nodes", "nlat", "exact_below", "first_wrong", "error"), [
    ("equiangular", 9, 9, 10, 7.2e-5),  # Clenshaw-Curtis: degree < nlat (odd nlat: nlat itself by symmetry)
    ("equiangular", 10, 10, 10, 2.3e-5),
    ("legendre-gauss", 5, 10, 10, 2.9e-3),  # Gauss: degree < 2 nlat
])
def test_polynomials_in_sin_lat_are_integrated_exactly_up_to_the_stated_degree(nodes, nlat, exact_below, first_wrong, error):
    grid = Grid.latlon(nlat, 8, nodes=nodes)
    sin_lat = np.sin(_lat(grid))[:, None]
    for d in range(exact_below):
        assert _integral(grid, sin_lat**d) == pytest.approx(_power_integral(d), abs=1e-13), d
    # the rule is no better than stated: the first even degree past it is off (error in x, times 2 pi)
    miss = abs(_integral(grid, sin_lat**first_wrong) - _power_integral(first_wrong)) / (2 * math.pi)
    assert miss == pytest.approx(error, rel=0.02)


@pytest.mark.parametrize("nodes", NODES)
def test_cos_squared_and_sin_to_the_fourth_of_latitude(nodes):
    grid = Grid.latlon(8, 16, nodes=nodes)
    lat = _lat(grid)[:, None]
    assert _integral(grid, np.cos(lat) ** 2) == pytest.approx(8 * math.pi / 3, rel=1e-14)
    assert _integral(grid, np.sin(lat) ** 4) == pytest.approx(4 * math.pi / 5, rel=1e-14)


def _real_harmonics(grid: Grid, degrees: int) -> np.ndarray:
    """Orthonormal real spherical harmonics ``Y_l^m``, ``|m| <= l < degrees``: ``(count, nlat, nlon)``."""
    lat = _lat(grid)[:, None]
    lon = np.deg2rad(grid.coords()["lon"])[None, :]
    out = []
    for l in range(degrees):
        for m in range(-l, l + 1):
            k = abs(m)
            norm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - k) / math.factorial(l + k))
            legendre = norm * lpmv(k, l, np.sin(lat))
            out.append(legendre * np.ones_like(lon) if m == 0 else
                       math.sqrt(2) * legendre * (np.cos(k * lon) if m > 0 else np.sin(k * lon)))
    return np.stack(out)


@pytest.mark.parametrize(("nodes", "nlat"), [("equiangular", 17), ("legendre-gauss", 9)])
def test_spherical_harmonics_are_orthonormal_under_the_quadrature(nodes, nlat):
    # Y_l^m Y_l'^m' has degree l + l' <= 16 in sin(lat) and orders up to 16 in longitude: within both
    # rules at these sizes (Clenshaw-Curtis: 16 < 17; Gauss: 16 < 18; longitude: 16 < 18).
    grid = Grid.latlon(nlat, 18, nodes=nodes)
    ys = _real_harmonics(grid, 9).reshape(81, -1)
    w = grid.quadrature_weights().numpy().reshape(-1)
    np.testing.assert_allclose((ys * w) @ ys.T, np.eye(81), atol=1e-13)
    # one latitude fewer and the top degrees are no longer orthogonal
    coarse = Grid.latlon(nlat - 1, 18, nodes=nodes)
    ys = _real_harmonics(coarse, 9).reshape(81, -1)
    gram = (ys * coarse.quadrature_weights().numpy().reshape(-1)) @ ys.T
    assert np.abs(gram - np.eye(81)).max() > 1e-4


@pytest.mark.parametrize("nodes", NODES)
def test_nodes_and_weights_are_torch_harmonics_own(nodes):
    quadrature = pytest.importorskip("torch_harmonics.quadrature")
    grid = Grid.latlon(33, 64, nodes=nodes)
    colat, weights = quadrature.precompute_latitudes(33, grid=nodes)  # north pole first
    np.testing.assert_allclose(_lat(grid), (math.pi / 2 - colat.numpy())[::-1], atol=1e-14, rtol=0)
    np.testing.assert_allclose(grid.quadrature_weights()[:, 0].numpy(), weights.numpy()[::-1] * 2 * math.pi / 64, rtol=1e-12)
    s2 = quadrature.QuadratureS2(img_shape=(33, 64), grid=nodes)
    field = torch.randn(1, 1, 33, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # QuadratureS2 keeps float32 weights
    assert float((grid.quadrature_weights() * field.flip(-2)).sum()) == pytest.approx(float(s2(field)), rel=1e-6)


def test_coordinates_spacing_and_equality():
    gauss = Grid.latlon(16, 32, nodes="legendre-gauss")
    lat = gauss.coords()["lat"]
    np.testing.assert_allclose(lat, np.degrees(np.arcsin(np.polynomial.legendre.leggauss(16)[0])), rtol=0, atol=1e-13)
    assert np.all(np.diff(lat) > 0) and -90 < lat[0] < -80 and lat[-1] == pytest.approx(-lat[0], abs=1e-13)
    np.testing.assert_allclose(gauss.coords()["lon"], np.arange(32) * 11.25)
    equiangular = Grid.latlon(16, 32)
    np.testing.assert_array_equal(equiangular.coords()["lat"], np.linspace(-90, 90, 16))
    assert equiangular.nodes == "equiangular" and equiangular.spacing == pytest.approx((math.pi / 15, math.pi / 16))
    # Gaussian latitudes are not uniform: the spacing is the largest gap (at the equator), about pi / (nlat + 1/2)
    assert gauss.spacing[0] == pytest.approx(float(np.diff(np.deg2rad(lat)).max()), rel=1e-14)
    assert gauss.spacing[0] == pytest.approx(math.pi / 16.5, rel=1e-3)
    assert gauss.with_shape(32, 64) == Grid.latlon(32, 64, nodes="legendre-gauss")
    assert gauss.same_domain(gauss.with_shape(64, 128)) and equiangular.same_domain(Grid.latlon(33, 64))
    assert not gauss.same_domain(equiangular) and gauss != Grid.latlon(16, 32)


def test_json_round_trips_and_old_sphere_json_is_equiangular():
    gauss = Grid.latlon(16, 32, nodes="legendre-gauss")
    assert gauss.to_json() == {"kind": "latlon", "shape": [16, 32], "lengths": [math.pi, 2 * math.pi],
                               "dims": ["lat", "lon"], "nodes": "legendre-gauss"}
    assert Grid.from_json(gauss.to_json()) == gauss
    old = {"kind": "latlon", "shape": [16, 32], "lengths": [math.pi, 2 * math.pi], "dims": ["lat", "lon"]}
    assert Grid.from_json(old) == Grid.latlon(16, 32) and Grid.from_json(old).nodes == "equiangular"
    assert "nodes" not in Grid.box(8, 8).to_json() and Grid.from_json(Grid.bounded(5).to_json()) == Grid.bounded(5)


def test_bad_node_sets_are_refused():
    with pytest.raises(GridError) as err:
        Grid.latlon(16, 32, nodes="gaussian")
    assert str(err.value) == "latitude nodes must be one of ('equiangular', 'legendre-gauss'), got 'gaussian'"
    with pytest.raises(GridError) as err:
        Grid("box", (8,), (1.0,), ("x",), "equiangular")
    assert str(err.value) == "nodes='equiangular' applies to 'latlon' grids only; a 'box' grid takes nodes=None"


# ----------------------------------------------------------------------------- from files

def _sphere(lat, lon, *, source="/data/sphere.nc", lat_attrs=None, lon_attrs=None):
    import xarray as xr

    lat, lon = np.asarray(lat), np.asarray(lon)
    values = np.zeros((1, lat.size, lon.size))
    ds = xr.Dataset({"height": (("sample", "lat", "lon"), values)},
                    coords={"lat": ("lat", lat, lat_attrs or {}), "lon": ("lon", lon, lon_attrs or {})})
    ds.encoding["source"] = source
    return ds


@pytest.mark.parametrize("nodes", NODES)
@pytest.mark.parametrize("lon_start", [0.0, -180.0, 5.625])  # any start; 5.625 is half a step at 32 longitudes
def test_grid_of_recognises_both_node_sets_with_any_longitude_start(nodes, lon_start):
    expected = Grid.latlon(16, 32, nodes=nodes)
    coords = expected.coords()
    assert grid_of(_sphere(coords["lat"], coords["lon"] + lon_start)) == expected
    # float32 coordinates (as files often hold them) are recognised too
    assert grid_of(_sphere(coords["lat"].astype(np.float32), (coords["lon"] + lon_start).astype(np.float32))) == expected


def test_grid_of_recognises_era5_and_the_shallow_water_solver():
    era5 = _sphere(np.linspace(-90, 90, 721), np.arange(1440) * 0.25)  # as sciml.data.open leaves ERA5 (flipped)
    assert grid_of(era5) == Grid.latlon(721, 1440)
    pytest.importorskip("torch_harmonics")
    from sciml.datasets import generate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.meshgrid indexing notice inside torch-harmonics
        ds = generate("swe-sphere", 1, 16, seed=0, times=[0.0], progress=False)
    assert grid_of(ds) == Grid.latlon(16, 32)
    assert ds["lat"].attrs["periodic"] == "false" and ds["lon"].attrs["periodic"] == "true"
    fields = stack_fields(ds, ["height", "eastward_velocity", "northward_velocity"])
    assert fields.shape == (1, 1, 3, 16, 32)  # (sample, time, channel, lat, lon)
    torch.testing.assert_close(fields[0, 0, 1], torch.from_numpy(ds["eastward_velocity"].values[0, 0]).float())


GAUSS_16 = np.degrees(np.arcsin(np.polynomial.legendre.leggauss(16)[0]))
LON_32 = np.arange(32) * 11.25
BAD_SPHERES = [
    ("a regional box", dict(lat=np.linspace(30, 60, 16), lon=np.linspace(0, 40, 32)),
     "coordinate 'lat' (16 values from 30 to 60) is neither equiangular with both poles (linspace(-90, 90, 16)) nor "
     "Gauss-Legendre (degrees(arcsin(leggauss(16)))); only global grids on these nodes are supported, so regrid first"),
    ("equiangular without poles", dict(lat=-90 + (np.arange(16) + 0.5) * 180 / 16, lon=LON_32),
     "coordinate 'lat' (16 values from -84.375 to 84.375) is neither equiangular with both poles (linspace(-90, 90, 16)) "
     "nor Gauss-Legendre (degrees(arcsin(leggauss(16)))); only global grids on these nodes are supported, so regrid first"),
    ("descending latitude", dict(lat=GAUSS_16[::-1], lon=LON_32),
     "coordinate 'lat' is descending; flip the data along 'lat' so it ascends"),
    ("a non-uniform longitude", dict(lat=GAUSS_16, lon=np.r_[LON_32[:-1], 350.0]),
     "coordinate 'lon' steps by 11.25 to 12.5 degrees, but a global grid of 32 longitudes steps by 360 / 32 = 11.25; "
     "only uniform longitudes covering 360 degrees are supported, so regrid first"),
    ("a longitude short of 360 degrees", dict(lat=GAUSS_16, lon=np.arange(32) * 10.0),
     "coordinate 'lon' steps by 10 to 10 degrees, but a global grid of 32 longitudes steps by 360 / 32 = 11.25; "
     "only uniform longitudes covering 360 degrees are supported, so regrid first"),
]


@pytest.mark.parametrize(("case", "coords", "message"), BAD_SPHERES, ids=[case[0] for case in BAD_SPHERES])
def test_grid_of_refuses_what_the_spherical_transforms_cannot_use(case, coords, message):
    with pytest.raises(DataError) as err:
        grid_of(_sphere(**coords))
    assert str(err.value) == f"/data/sphere.nc: {message}"


def test_latitude_is_never_periodic_but_old_files_claiming_it_still_load():
    coords = Grid.latlon(16, 32).coords()
    # files written before this fix mark lat periodic = "true": the attribute is ignored on lat
    old = _sphere(coords["lat"], coords["lon"], lat_attrs={"periodic": "true"}, lon_attrs={"periodic": "true"})
    assert grid_of(old) == Grid.latlon(16, 32)
    with pytest.raises(DataError) as err:
        grid_of(_sphere(coords["lat"], coords["lon"], lon_attrs={"periodic": "false"}))
    assert str(err.value) == ("/data/sphere.nc: coordinate 'lon' is marked periodic = 'false', but a global lat-lon grid is "
                              "periodic in longitude; drop the attribute or set it to 'true'")


def test_trajectory_dataset_marks_only_periodic_coordinates():
    grid = Grid.latlon(8, 16, nodes="legendre-gauss")
    field = np.random.default_rng(0).standard_normal((2, 3, 8, 16))
    ds = trajectory_dataset({"height": field}, times=[0.0, 1.0, 2.0], coords=grid.coords())
    assert ds["lat"].attrs["periodic"] == "false" and ds["lon"].attrs["periodic"] == "true"
    assert grid_of(ds) == grid
    box = trajectory_dataset({"u": field}, times=[0.0, 1.0, 2.0], coords=Grid.box(8, 16).coords())
    assert box["y"].attrs["periodic"] == box["x"].attrs["periodic"] == "true"
    with pytest.raises(DataError) as err:
        trajectory_dataset({"height": field}, times=[0.0, 1.0, 2.0], coords=grid.coords(), periodic=False)
    assert str(err.value) == "periodic=False describes a bounded box, but a lat-lon grid is periodic in longitude; leave periodic=True"


def test_channels_go_just_before_lat_and_lon():
    grid = Grid.latlon(8, 16)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, 2, 3, 8, 16))  # each (sample, time, lat, lon)
    ds = trajectory_dataset({"eastward_velocity": u, "northward_velocity": v}, times=[0.0, 1.0, 2.0], coords=grid.coords())
    stacked = stack_fields(ds, ["eastward_velocity", "northward_velocity"], dtype=torch.float64)
    assert stacked.shape == (2, 3, 2, 8, 16)
    torch.testing.assert_close(stacked[:, :, 1], torch.from_numpy(v))
    static = stack_fields(ds.isel(time=0), ["northward_velocity", "eastward_velocity"], dtype=torch.float64)
    assert static.shape == (2, 2, 8, 16)  # (sample, channel, lat, lon)
    torch.testing.assert_close(static[:, 0], torch.from_numpy(v[:, 0]))
    pairs = OperatorPairs(ds, inputs=["eastward_velocity"], outputs=["eastward_velocity"], lag=2, dtype=torch.float64)
    inputs, outputs = (torch.stack(part) for part in zip(*pairs.__getitems__(range(len(pairs)))))
    assert inputs.shape == outputs.shape == (2, 1, 8, 16)  # (pair, channel, lat, lon)
    torch.testing.assert_close(outputs[:, 0], torch.from_numpy(u[:, 2]))
