import math

import numpy as np
import pytest
import torch

from sciml import Grid, GridError


def test_box_coordinates_exclude_the_periodic_endpoint():
    grid = Grid.box(4, 8, lengths=(2.0, 1.0))
    coords = grid.coords()
    np.testing.assert_allclose(coords["y"], [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(coords["x"], np.arange(8) / 8)
    assert grid.dims == ("y", "x") and grid.spacing == (0.5, 0.125)


def test_box_quadrature_integrates_trigonometric_polynomials_exactly():
    grid = Grid.box(16, 12, lengths=(1.0, 2.0))
    y, x = np.meshgrid(grid.coords()["y"], grid.coords()["x"], indexing="ij")
    f = torch.from_numpy(3.0 + np.sin(2 * np.pi * y) * np.cos(np.pi * x) ** 2)
    integral = float((grid.quadrature_weights() * f).sum())
    assert integral == pytest.approx(3.0 * 2.0, rel=1e-13)


def test_sphere_weights_integrate_area_and_sin_squared_lat_exactly():
    grid = Grid.latlon(91, 180)
    w = grid.quadrature_weights()
    assert float(w.sum()) == pytest.approx(4 * math.pi, rel=1e-12)
    lat = torch.deg2rad(torch.from_numpy(grid.coords()["lat"]))[:, None].expand(grid.shape)
    # integral of sin^2(lat) over the sphere is 4 pi / 3; Clenshaw-Curtis is exact for it (more in test_sphere_grid)
    assert float((w * torch.sin(lat) ** 2).sum()) == pytest.approx(4 * math.pi / 3, rel=1e-13)


def test_from_coords_recovers_the_period_and_rejects_bad_axes():
    grid = Grid.from_coords({"y": np.arange(8) / 8, "x": np.arange(16) / 16 * 2.0})
    assert grid.shape == (8, 16) and grid.lengths == pytest.approx((1.0, 2.0))
    with pytest.raises(GridError, match="'x' is not uniformly spaced"):
        Grid.from_coords({"x": np.array([0.0, 0.1, 0.3, 0.4])})
    with pytest.raises(GridError, match="'x' is not strictly increasing"):
        Grid.from_coords({"x": np.array([0.0, 0.2, 0.2, 0.4])})


def test_same_domain_ignores_resolution_only():
    grid = Grid.box(32, 32)
    assert grid.same_domain(grid.with_shape(64, 64))
    assert not grid.same_domain(Grid.box(32, 32, lengths=2.0))
    assert Grid.from_json(grid.to_json()) == grid


def test_bounded_grid_has_nodes_on_both_ends_and_trapezoid_weights():
    grid = Grid.bounded(5, 9, lengths=(2.0, 1.0))
    np.testing.assert_allclose(grid.coords()["y"], [0.0, 0.5, 1.0, 1.5, 2.0])
    assert grid.spacing == (0.5, 0.125) and grid.kind == "bounded"
    w = grid.quadrature_weights()
    assert float(w[0, 0]) == pytest.approx(0.25 * 0.5 * 0.125) and float(w[2, 3]) == pytest.approx(0.5 * 0.125)
    y, x = np.meshgrid(grid.coords()["y"], grid.coords()["x"], indexing="ij")
    f = torch.from_numpy(1.0 + 3.0 * x - y)  # the trapezoidal rule is exact for bilinear functions
    assert float((w * f).sum()) == pytest.approx(2.0 * (1.0 + 1.5 - 1.0), rel=1e-13)


def test_bounded_quadrature_converges_at_second_order():
    errors = []
    for n in (9, 17, 33):
        grid = Grid.bounded(n, n)
        y, x = np.meshgrid(grid.coords()["y"], grid.coords()["x"], indexing="ij")
        f = torch.from_numpy(np.exp(x + y))
        errors.append(abs(float((grid.quadrature_weights() * f).sum()) - (math.e - 1) ** 2))
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(abs(order - 2.0) < 0.05 for order in orders), orders


def test_from_coords_on_nodes_gives_the_same_bounded_domain_at_every_resolution():
    coarse = Grid.from_coords({"y": np.linspace(0, 1, 16), "x": np.linspace(0, 2, 16)}, periodic=False)
    fine = Grid.from_coords({"y": np.linspace(0, 1, 32), "x": np.linspace(0, 2, 32)}, periodic=False)
    assert coarse.kind == "bounded" and coarse.lengths == pytest.approx((1.0, 2.0))
    assert coarse.same_domain(fine) and not coarse.same_domain(Grid.box(32, 32, lengths=(1.0, 2.0)))
    assert Grid.from_json(fine.to_json()) == fine
