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


def test_sphere_weights_integrate_area_and_cos_lat():
    grid = Grid.latlon(91, 180)
    w = grid.quadrature_weights()
    assert float(w.sum()) == pytest.approx(4 * math.pi, rel=1e-12)
    lat = torch.deg2rad(torch.from_numpy(grid.coords()["lat"]))[:, None].expand(grid.shape)
    # integral of sin^2(lat) over the sphere is 4 pi / 3
    assert float((w * torch.sin(lat) ** 2).sum()) == pytest.approx(4 * math.pi / 3, rel=1e-3)


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
