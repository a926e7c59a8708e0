"""Darcy finite volumes: manufactured solution with measured second order, CG == direct, layered media."""

import math

import numpy as np
import pytest
import torch

from sciml import SolverError
from sciml.solvers.darcy import apply_operator, solve, solve_pressure


def manufactured(s):
    """p = sin(pi x) sin(pi y), a = 1 + 0.5 sin(2 pi x) cos(2 pi y); f = -div(a grad p) analytically."""
    x = torch.linspace(0.0, 1.0, s, dtype=torch.float64)
    y, x = torch.meshgrid(x, x, indexing="ij")
    pi = math.pi
    p = torch.sin(pi * x) * torch.sin(pi * y)
    a = 1 + 0.5 * torch.sin(2 * pi * x) * torch.cos(2 * pi * y)
    a_x = pi * torch.cos(2 * pi * x) * torch.cos(2 * pi * y)
    a_y = -pi * torch.sin(2 * pi * x) * torch.sin(2 * pi * y)
    p_x = pi * torch.cos(pi * x) * torch.sin(pi * y)
    p_y = pi * torch.sin(pi * x) * torch.cos(pi * y)
    f = -(a_x * p_x + a_y * p_y - 2 * pi**2 * a * p)
    return a[None], f[None], p[None]


def test_manufactured_solution_converges_at_second_order():
    errors = []
    for s in (17, 33, 65, 129):
        a, f, exact = manufactured(s)
        errors.append(float((solve_pressure(a, f, method="direct") - exact).abs().max()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.1), (errors, orders)
    assert errors[-1] < 2e-4  # measured 1.0e-4 at s = 129


def test_cg_matches_direct_on_rough_coefficients():
    gen = torch.Generator().manual_seed(0)
    a = torch.where(torch.rand(3, 33, 33, generator=gen) > 0.5, 12.0, 3.0).double()
    direct = solve_pressure(a, 1.0, method="direct")
    cg = solve_pressure(a, 1.0, method="cg", rtol=1e-12)
    torch.testing.assert_close(cg, direct, atol=1e-10 * float(direct.abs().max()), rtol=0)
    residual = apply_operator(a, direct) - 1.0
    assert float(residual.abs().max()) < 1e-9
    assert torch.all(direct[:, 1:-1, 1:-1] > 0)  # maximum principle: positive forcing, positive pressure


def test_fluxes_balance_the_source_exactly_on_rough_media():
    # Finite volumes are conservative: the flux through the boundary equals the total source.
    gen = torch.Generator().manual_seed(1)
    s = 41
    a = torch.exp(2 * torch.randn(2, s, s, generator=gen, dtype=torch.float64))  # contrast ~ 1e5
    p = solve_pressure(a, 1.0)
    h = 1.0 / (s - 1)
    ax = 2 * a[..., :, 1:] * a[..., :, :-1] / (a[..., :, 1:] + a[..., :, :-1])
    ay = 2 * a[..., 1:, :] * a[..., :-1, :] / (a[..., 1:, :] + a[..., :-1, :])
    outflow = (ax[:, 1:-1, 0] * p[:, 1:-1, 1]).sum(1) + (ax[:, 1:-1, -1] * p[:, 1:-1, -2]).sum(1) \
        + (ay[:, 0, 1:-1] * p[:, 1, 1:-1]).sum(1) + (ay[:, -1, 1:-1] * p[:, -2, 1:-1]).sum(1)
    source = torch.full((2,), (s - 2) ** 2 * h**2, dtype=torch.float64)
    torch.testing.assert_close(outflow, source, rtol=1e-10, atol=0)


def test_solve_returns_a_cf_dataset_on_the_nodes():
    a, f, _ = manufactured(9)
    ds = solve(a, 1.0)
    assert set(ds.data_vars) == {"a", "pressure"} and ds["pressure"].dims == ("sample", "y", "x")
    assert ds["x"].values[0] == 0.0 and ds["x"].values[-1] == 1.0
    assert float(np.abs(ds["pressure"].values[:, 0, :]).max()) == 0.0  # Dirichlet boundary


def test_bad_coefficients_name_the_parameter():
    a = torch.ones(2, 9, 9)
    a[1, 3, 3] = -1.0
    with pytest.raises(SolverError, match="coefficient a must be positive everywhere; sample 1 has min a = -1"):
        solve_pressure(a)
    a[1, 3, 3] = float("nan")
    with pytest.raises(SolverError, match="NaN or Inf"):
        solve_pressure(a)
    with pytest.raises(SolverError, match="method must be"):
        solve_pressure(torch.ones(1, 9, 9), method="multigrid")
    with pytest.raises(SolverError, match="did not reach rtol"):
        solve_pressure(torch.ones(1, 33, 33, dtype=torch.float64), method="cg", max_iter=3)
