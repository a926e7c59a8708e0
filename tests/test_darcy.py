"""Darcy finite volumes: manufactured solution with measured second order, CG == direct, layered media,
and the refusals of inputs that would give a silent wrong answer."""

import math
import warnings

import numpy as np
import pytest
import torch

from sciml import ConfigError, SolverError
from sciml.datasets import generate
from sciml.solvers.darcy import Darcy2D, apply_operator, solve, solve_pressure


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
        errors.append(float((solve_pressure(Darcy2D(method="direct"), a, f=f) - exact).abs().max()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.1), (errors, orders)
    assert errors[-1] < 2e-4  # measured 1.0e-4 at s = 129


def test_cg_matches_direct_on_rough_coefficients():
    gen = torch.Generator().manual_seed(0)
    a = torch.where(torch.rand(3, 33, 33, generator=gen) > 0.5, 12.0, 3.0).double()
    direct = solve_pressure(Darcy2D(method="direct"), a)
    cg = solve_pressure(Darcy2D(method="cg", rtol=1e-12), a)
    torch.testing.assert_close(cg, direct, atol=1e-10 * float(direct.abs().max()), rtol=0)
    residual = apply_operator(a, direct) - 1.0
    assert float(residual.abs().max()) < 1e-9
    assert torch.all(direct[:, 1:-1, 1:-1] > 0)  # maximum principle: positive forcing, positive pressure


def test_fluxes_balance_the_source_exactly_on_rough_media():
    # Finite volumes are conservative: the flux through the boundary equals the total source.
    gen = torch.Generator().manual_seed(1)
    s = 41
    a = torch.exp(2 * torch.randn(2, s, s, generator=gen, dtype=torch.float64))  # contrast ~ 1e5
    p = solve_pressure(Darcy2D(), a)
    h = 1.0 / (s - 1)
    ax = 2 * a[..., :, 1:] * a[..., :, :-1] / (a[..., :, 1:] + a[..., :, :-1])
    ay = 2 * a[..., 1:, :] * a[..., :-1, :] / (a[..., 1:, :] + a[..., :-1, :])
    outflow = (ax[:, 1:-1, 0] * p[:, 1:-1, 1]).sum(1) + (ax[:, 1:-1, -1] * p[:, 1:-1, -2]).sum(1) \
        + (ay[:, 0, 1:-1] * p[:, 1, 1:-1]).sum(1) + (ay[:, -1, 1:-1] * p[:, -2, 1:-1]).sum(1)
    source = torch.full((2,), (s - 2) ** 2 * h**2, dtype=torch.float64)
    torch.testing.assert_close(outflow, source, rtol=1e-10, atol=0)


def test_solve_returns_a_cf_dataset_on_the_nodes():
    a, f, _ = manufactured(9)
    ds = solve(Darcy2D(), a)
    assert set(ds.data_vars) == {"a", "pressure"} and ds["pressure"].dims == ("sample", "y", "x")
    assert ds["x"].values[0] == 0.0 and ds["x"].values[-1] == 1.0
    assert float(np.abs(ds["pressure"].values[:, 0, :]).max()) == 0.0  # Dirichlet boundary
    assert ds.attrs["solver"] == "direct" and ds.attrs["forcing"] == 1.0  # "auto", resolved on the CPU


def test_the_equation_checks_its_options_and_the_old_call_names_the_new_one():
    for bad in (True, float("nan"), "1"):
        with pytest.raises(SolverError, match="forcing must be a finite number, got "):
            Darcy2D(forcing=bad)
    assert Darcy2D(forcing=2) == Darcy2D(forcing=2.0) and Darcy2D(forcing=2).attributes()["forcing"] == 2.0
    with pytest.raises(SolverError, match=r"eq must be a Darcy2D, got Tensor; call solve_pressure\(Darcy2D\(...\), a\)"):
        solve_pressure(torch.ones(1, 9, 9), 1.0)


def test_bad_coefficients_name_the_parameter():
    a = torch.ones(2, 9, 9)
    a[1, 3, 3] = -1.0
    with pytest.raises(SolverError, match="coefficient a must be positive everywhere; sample 1 has min a = -1"):
        solve_pressure(Darcy2D(), a)
    a[1, 3, 3] = float("nan")
    with pytest.raises(SolverError, match="NaN or Inf"):
        solve_pressure(Darcy2D(), a)
    with pytest.raises(SolverError, match="method must be"):
        Darcy2D(method="multigrid")
    with pytest.raises(SolverError, match="did not reach rtol"):
        solve_pressure(Darcy2D(method="cg", max_iter=3), torch.ones(1, 33, 33, dtype=torch.float64))


def rough(n, s, seed=0):
    """Li et al.-style two-valued coefficient 12 / 3, float64 ``(n, s, s)``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(n, s, s, generator=gen) > 0.5, 12.0, 3.0).double()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float16, torch.bfloat16])
def test_coefficients_other_than_float32_or_float64_are_refused(dtype):
    # An integer a used to return p = 0 (the float64 result truncated to int), and f = 0.5 truncated to 0.
    a = rough(2, 9).to(dtype)
    with pytest.raises(SolverError, match=f"coefficient a must be float32 or float64, got {dtype}"):
        solve_pressure(Darcy2D(forcing=0.5), a)


def test_float32_gives_the_float64_pressure_rounded():
    a = rough(2, 33)
    reference = solve_pressure(Darcy2D(forcing=0.5, method="direct"), a)
    for method in ("direct", "cg"):
        p = solve_pressure(Darcy2D(forcing=0.5, method=method), a.float())  # the forcing is not rounded to the dtype of a either
        assert p.dtype == torch.float32
        # The audit saw float32 CG stop at a true residual of 2.4e-4 while claiming rtol = 1e-10.
        torch.testing.assert_close(p.double(), reference, rtol=0, atol=2e-7 * float(reference.abs().max()))


@pytest.mark.parametrize("method", ["direct", "cg"])
@pytest.mark.parametrize("scale", [1e20, 1e-25])
def test_float32_extreme_coefficients_are_solved_in_float64(method, scale):
    # 2 a a' overflows (1e40) or underflows (1e-50) float32: the faces used to be NaN and the pressure NaN.
    a = rough(2, 17)
    reference = solve_pressure(Darcy2D(method="direct"), a) / scale  # p scales as 1 / a
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SciPy "Matrix is exactly singular" either
        p = solve_pressure(Darcy2D(method=method), (a * scale).float())
    torch.testing.assert_close(p.double(), reference, rtol=1e-6, atol=0)


@pytest.mark.parametrize("method", ["direct", "cg"])
def test_a_pressure_beyond_the_dtype_names_the_coefficient_range(method):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SolverError, match=r"coefficient a spans \[1e-42, 1e-42\].*overflow or underflow "
                                              r"torch.float32"):
            solve_pressure(Darcy2D(method=method), torch.full((1, 9, 9), 1e-42, dtype=torch.float32))  # p ~ 1e40
        with pytest.raises(SolverError, match=r"coefficient a spans \[1, 1e\+200\].*torch.float64"):
            a = torch.ones(1, 9, 9, dtype=torch.float64)
            a[0, 3:6, 3:6] = 1e200  # 2 a a' = inf between two such nodes
            solve_pressure(Darcy2D(method=method), a)


@pytest.mark.parametrize("rtol", [1, 2.0, 0, -1e-3, float("nan"), True])
def test_cg_rtol_must_lie_in_zero_one(rtol):
    # rtol >= 1 used to return p = 0 (converged before the first step), rtol <= 0 "residual nan".
    with pytest.raises(SolverError, match=r"rtol must be a number with 0 < rtol < 1, got "):
        Darcy2D(method="cg", rtol=rtol)


@pytest.mark.parametrize("max_iter", [0, -1, 2.5, True])
def test_cg_max_iter_must_be_a_positive_integer(max_iter):
    with pytest.raises(SolverError, match=f"max_iter must be an integer >= 1 \\(or None for 20 s\\), got {max_iter}"):
        Darcy2D(method="cg", max_iter=max_iter)


def test_cg_max_iter_one_is_one_iteration_not_the_default():
    with pytest.raises(SolverError, match="did not reach rtol=1e-10 in max_iter=1 iterations"):
        solve_pressure(Darcy2D(method="cg", max_iter=1), rough(1, 17))


def test_cg_returns_zero_for_a_sample_with_zero_forcing():
    a = rough(3, 17)
    f = torch.ones(3, 17, 17, dtype=torch.float64)
    f[1] = 0.0  # 0 / 0 in the relative residual used to fail the whole batch with "residual nan"
    direct = solve_pressure(Darcy2D(method="direct"), a, f=f)
    cg = solve_pressure(Darcy2D(method="cg", rtol=1e-12), a, f=f)
    assert float(cg[1].abs().max()) == 0.0 and float(direct[1].abs().max()) == 0.0
    torch.testing.assert_close(cg, direct, atol=1e-10 * float(direct.abs().max()), rtol=0)


def test_forcing_shapes():
    a = rough(2, 9)
    with pytest.raises(SolverError, match=r"forcing f must be a scalar, \(s, s\) or \(batch, s, s\) matching "
                                          r"coefficient a \(2, 9, 9\), got f \(3, 9, 9\)"):
        solve_pressure(Darcy2D(), a, f=torch.ones(3, 9, 9))
    with pytest.raises(SolverError, match=r"got f \(9, 8\)"):
        solve_pressure(Darcy2D(), a, f=torch.ones(9, 8))
    with pytest.raises(SolverError, match="forcing f must be real, got torch.complex64"):
        solve_pressure(Darcy2D(), a, f=torch.ones(9, 9, dtype=torch.complex64))
    scalar = solve_pressure(Darcy2D(forcing=2.0), a)
    for f in (torch.full((9, 9), 2.0), torch.full((1, 9, 9), 2.0), torch.full((2, 9, 9), 2, dtype=torch.int64)):
        torch.testing.assert_close(solve_pressure(Darcy2D(), a, f=f), scalar, rtol=0, atol=0)


@pytest.mark.parametrize("solve_resolution", [0, 1, 9, 17.0])
def test_dataset_solve_resolution_zero_is_refused_not_the_default(solve_resolution):
    with pytest.raises(ConfigError, match=f"dataset 'darcy': solve_resolution must be an integer >= resolution = 17 "
                                          f"\\(or None for resolution\\), got {solve_resolution}"):
        generate("darcy", 1, 17, seed=0, solve_resolution=solve_resolution, progress=False)
    with pytest.raises(ConfigError, match="solve_resolution - 1 = 24 must be a multiple of resolution - 1 = 16"):
        generate("darcy", 1, 17, seed=0, solve_resolution=25, progress=False)
