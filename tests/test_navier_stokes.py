"""Numerical validation of the 2-D Navier-Stokes solver: analytic solutions, measured orders, invariants."""

import math

import numpy as np
import pytest
import torch

from sciml import Grid, SolverError, gaussian_random_field, rel_l2
from sciml.solvers.navier_stokes import (NavierStokes2D, courant_number, forcing_step_limit, integrate,
                                         nonlinear_term, solve)
from sciml.spectral import spectral_resample
from sciml.datasets.ns2d import LI2021_VORTICITY_GRF


def mesh(n):
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(x, x, indexing="ij")  # (y, x)


def grf(n, count=2, seed=0, dtype=torch.float64):
    return gaussian_random_field(Grid.box(n, n), count, seed=seed, dtype=dtype, **LI2021_VORTICITY_GRF)


def test_taylor_green_decay_is_exact_to_1e_8():
    # Any combination of modes with the same |k| is a steady Euler flow (u . grad w = 0) that decays as
    # exp(-nu |k|^2 t). Crank-Nicolson's error here is t (nu |k|^2)^3 dt^2 / 12: 6.4e-9 for these values.
    y, x = mesh(32)
    w0 = (torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y) + 0.5 * torch.cos(4 * math.pi * x) * torch.sin(2 * math.pi * y))[None]
    nu, k2, t = 1e-2, 4 * math.pi**2 * 5, 1.0
    out = integrate(NavierStokes2D(viscosity=nu, forcing="none"), w0, [t], dt=1e-4)
    exact = w0 * math.exp(-nu * k2 * t)
    assert float((out[:, 0] - exact).abs().max() / exact.abs().max()) < 1e-8


def test_crank_nicolson_decay_converges_at_second_order():
    y, x = mesh(16)
    w0 = torch.sin(2 * math.pi * x)[None] * torch.sin(2 * math.pi * y)[None]
    nu = 0.05
    exact = w0 * math.exp(-nu * 8 * math.pi**2)
    errors = [float((integrate(NavierStokes2D(viscosity=nu, forcing="none"), w0, [1.0], dt=dt)[:, 0] - exact).abs().max())
              for dt in (0.04, 0.02, 0.01)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert orders == pytest.approx([2.0, 2.0], abs=0.05)


def test_nonlinear_term_matches_the_analytic_jacobian():
    # psi = sin(2 pi x) + sin(4 pi y): u . grad w = -96 pi^4 cos(2 pi x) cos(4 pi y)
    y, x = mesh(32)
    w = 4 * math.pi**2 * torch.sin(2 * math.pi * x) + 16 * math.pi**2 * torch.sin(4 * math.pi * y)
    term = torch.fft.irfft2(nonlinear_term(NavierStokes2D(viscosity=0.0, forcing="none"), torch.fft.rfft2(w[None])), s=(32, 32))[0]
    expected = 96 * math.pi**4 * torch.cos(2 * math.pi * x) * torch.cos(4 * math.pi * y)
    assert float((term - expected).abs().max()) < 1e-9 * float(expected.abs().max())


def test_forcing_enters_with_the_right_sign_and_size():
    # From rest, w(t) = f (1 - exp(-nu |k|^2 t)) / (nu |k|^2) for the single-|k| Li forcing (a steady Euler flow).
    n, nu, t = 32, 1e-2, 0.5
    eq = NavierStokes2D(viscosity=nu)
    out = integrate(eq, torch.zeros(1, n, n, dtype=torch.float64), [t], dt=1e-3)
    rate = nu * 8 * math.pi**2
    exact = eq.forcing_field(n) * (1 - math.exp(-rate * t)) / rate
    assert float((out[0, 0] - exact).abs().max()) < 1e-6 * float(exact.abs().max())


def test_temporal_convergence_order_on_a_turbulent_forced_flow():
    eq = NavierStokes2D(viscosity=1e-3)
    w0 = grf(48)
    times = [1.0]
    reference = integrate(eq, w0, times, dt=1e-3)
    errors = [float(rel_l2(integrate(eq, w0, times, dt=dt), reference).max()) for dt in (0.1, 0.05, 0.025)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.8) & (orders < 2.3)), (errors, orders)


def test_spatial_convergence_is_spectral():
    eq = NavierStokes2D(viscosity=1e-3)
    from sciml.spectral import spectral_resample

    reference = integrate(eq, grf(128), [1.0], dt=0.01)
    errors = {n: float(rel_l2(integrate(eq, grf(n), [1.0], dt=0.01), spectral_resample(reference, (n, n))).max()) for n in (16, 32, 64)}
    assert errors[16] > 10 * errors[32] > 100 * errors[64] / 10  # super-algebraic decay
    assert errors[64] < 1e-8


def test_inviscid_unforced_flow_conserves_energy_and_enstrophy():
    eq = NavierStokes2D(viscosity=0.0, forcing="none")
    w0 = grf(64)
    w1 = integrate(eq, w0, [0.5], dt=2.5e-3)[:, 0]

    def energy(w):  # (1/2) |u|^2 = (1/2) sum |w_hat|^2 / |k|^2
        from sciml.solvers.navier_stokes import velocity

        return (velocity(eq, w) ** 2).sum(dim=(1, 2, 3)) / 2

    def enstrophy(w):
        return (w**2).sum(dim=(1, 2)) / 2

    assert torch.allclose(energy(w1), energy(w0), rtol=1e-6)
    assert torch.allclose(enstrophy(w1), enstrophy(w0), rtol=1e-5)


def test_batch_members_are_independent_and_float32_agrees_with_float64():
    eq = NavierStokes2D(viscosity=1e-3)
    w0 = grf(32, count=3)
    batch = integrate(eq, w0, [1.0], dt=0.02)
    single = integrate(eq, w0[1:2], [1.0], dt=0.02)
    torch.testing.assert_close(batch[1:2], single, atol=1e-13, rtol=0)
    low = integrate(eq, w0.float(), [1.0], dt=0.02)
    assert float(rel_l2(low.double(), batch).max()) < 1e-5


def test_solve_records_initial_condition_and_parameters():
    eq = NavierStokes2D(viscosity=1e-3)
    w0 = grf(16)
    ds = solve(eq, w0, [0.0, 0.5, 1.0], dt=0.05, progress=False)
    assert ds["vorticity"].dims == ("sample", "time", "y", "x")
    np.testing.assert_array_equal(ds["vorticity"].values[:, 0], w0.numpy())
    assert ds.attrs["viscosity"] == 1e-3 and ds.attrs["forcing"] == "li2021"
    assert ds["x"].attrs["axis"] == "X" and ds["vorticity"].attrs["units"] == "1"


def test_bad_input_names_the_parameter():
    with pytest.raises(SolverError, match="viscosity must be finite and >= 0"):
        NavierStokes2D(viscosity=-1e-3)
    with pytest.raises(SolverError, match="forcing must be one of"):
        NavierStokes2D(viscosity=1e-3, forcing="kolmogorov-typo")
    eq = NavierStokes2D(viscosity=1e-3)
    w0 = grf(32)
    assert courant_number(eq, w0, 1.0) > 1
    with pytest.raises(SolverError, match=r"dt=1 violates the CFL bound .* use dt <= "):
        integrate(eq, w0, [1.0], dt=1.0)
    bad = w0.clone()
    bad[0, 3, 4] = float("nan")
    with pytest.raises(SolverError, match="NaN or Inf"):
        integrate(eq, bad, [1.0], dt=0.01)
    with pytest.raises(SolverError, match="strictly increasing"):
        integrate(eq, w0, [1.0, 0.5], dt=0.01)
    # A forcing the 2/3 rule would drop must not be dropped silently (the flow would stay at rest).
    kolmogorov = NavierStokes2D(viscosity=1e-2, forcing="kolmogorov", forcing_wavenumber=4)
    with pytest.raises(SolverError, match=r"kolmogorov forcing at wavenumber 4 is not resolved on the 12x12 grid.*n >= 13"):
        integrate(kolmogorov, torch.zeros(1, 12, 12, dtype=torch.float64), [0.1], dt=0.01)
    assert integrate(kolmogorov, torch.zeros(1, 13, 13, dtype=torch.float64), [0.1], dt=0.01).abs().max() > 0.1
    with pytest.raises(SolverError, match=r"w0 must be float32 or float64, got torch.float16"):
        integrate(eq, w0.half(), [0.1], dt=0.01)
    with pytest.raises(SolverError, match=r"w0 has no samples: shape \(0, 32, 32\)"):
        integrate(eq, w0[:0], [0.1], dt=0.01)
    with pytest.raises(SolverError, match=r"times must be finite"):
        integrate(eq, w0, [0.5, float("nan")], dt=0.01)
    with pytest.raises(SolverError, match=r"forcing_wavenumber must be an integer >= 1, got 2.5"):
        NavierStokes2D(viscosity=1e-3, forcing="kolmogorov", forcing_wavenumber=2.5)


def test_the_two_thirds_rule_is_exact_when_three_divides_n():
    # A field band-limited to the kept modes: its dealiased Jacobian on 48 points must equal the exact one
    # (from 192 points, where nothing aliases). Keeping k = n / 3 = 16 aliased k = 32 onto k = -16.
    n, fine = 48, 192
    eq = NavierStokes2D(viscosity=1e-3, forcing="none")
    k = torch.fft.fftfreq(n, 1 / n).abs()[:, None].maximum(torch.arange(n // 2 + 1)[None, :])  # (k_y, k_x)
    dropped = k > (n - 1) // 3

    w_hat = torch.fft.rfft2(grf(n).to(torch.float64)).masked_fill(dropped, 0)
    w_fine = spectral_resample(torch.fft.irfft2(w_hat, s=(n, n)), (fine, fine))
    exact = spectral_resample(torch.fft.irfft2(nonlinear_term(eq, torch.fft.rfft2(w_fine)), s=(fine, fine)), (n, n))
    exact_hat = torch.fft.rfft2(exact).masked_fill(dropped, 0)
    error = (nonlinear_term(eq, w_hat) - exact_hat).abs().max() / exact_hat.abs().max()
    assert float(error) < 1e-12


def test_adaptive_steps_of_a_flow_started_at_rest_follow_the_forcing():
    # From rest the CFL bound allows any step; forcing_step_limit must keep the steps short enough.
    eq = NavierStokes2D(viscosity=0.1)
    w0 = torch.zeros(1, 32, 32, dtype=torch.float64)
    reference = integrate(eq, w0, [1.0, 2.0], dt=1e-3)
    adaptive = integrate(eq, w0, [1.0, 2.0], adaptive=True)
    assert float(rel_l2(adaptive, reference).max()) < 1e-3  # one step per interval gave 0.78
    assert forcing_step_limit(eq, 32, 0.5) == pytest.approx(1 / (0.1 * 8 * math.pi**2))  # nu |k_f|^2, k_f = 2 pi (1, 1)
    assert forcing_step_limit(NavierStokes2D(viscosity=0.1, forcing="none"), 32, 0.5) == math.inf


def test_kolmogorov_forcing_with_drag_matches_the_laminar_transient():
    # From rest the shear flow stays a single mode: w(t) = f (1 - exp(-r t)) / r, r = nu k_f^2 + alpha.
    n, nu, alpha, t = 32, 1e-2, 0.1, 0.5
    eq = NavierStokes2D(viscosity=nu, forcing="kolmogorov", drag=alpha, forcing_wavenumber=2)
    rate = nu * (4 * math.pi) ** 2 + alpha
    exact = eq.forcing_field(n) * (1 - math.exp(-rate * t)) / rate
    for scheme, dt, tol in (("cn-heun", 1e-3, 1e-5), ("etdrk4", 0.05, 1e-12)):
        out = integrate(eq, torch.zeros(1, n, n, dtype=torch.float64), [t], dt=dt, scheme=scheme)
        assert float((out[0, 0] - exact).abs().max()) < tol * float(exact.abs().max()), scheme


def test_etdrk4_is_exact_on_taylor_green_and_fourth_order_on_turbulence():
    y, x = mesh(32)
    w0 = (torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y))[None]
    nu = 1e-2
    out = integrate(NavierStokes2D(viscosity=nu, forcing="none"), w0, [1.0], dt=0.1, scheme="etdrk4")
    assert float((out[:, 0] - w0 * math.exp(-nu * 20 * math.pi**2)).abs().max()) < 1e-12

    eq = NavierStokes2D(viscosity=1e-3, drag=0.05)
    w0 = grf(48)
    reference = integrate(eq, w0, [1.0], dt=1e-2, scheme="etdrk4")
    errors = [float(rel_l2(integrate(eq, w0, [1.0], dt=dt, scheme="etdrk4"), reference).max()) for dt in (0.2, 0.1, 0.05)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 3.6) & (orders < 4.4)), (errors, orders)


def test_instability_mid_run_reports_the_first_bad_step_and_keeps_finished_frames():
    import pickle

    from sciml.solvers import SolverDiverged

    eq = NavierStokes2D(viscosity=0.0, forcing="kolmogorov", forcing_wavenumber=1)  # accelerates without bound
    w0 = grf(32)
    with pytest.raises(SolverDiverged, match=r"became non-finite at step 78 \(t=1\.56, dt=0\.02\)") as info:
        integrate(eq, w0, [0.0, 0.5, 1.0, 3.0], dt=0.02)
    err = info.value
    assert (err.step, err.time) == (78, pytest.approx(1.56)) and err.times == [0.0, 0.5, 1.0]
    assert err.frames.shape == (2, 3, 32, 32)
    torch.testing.assert_close(err.frames[:, 0], w0, rtol=0, atol=0)
    torch.testing.assert_close(err.frames, integrate(eq, w0, [0.0, 0.5, 1.0], dt=0.02), rtol=0, atol=0)
    # Step 77 (t = 1.54) is still finite (if far beyond the CFL bound); the same step is found whatever
    # the output times.
    assert bool(torch.isfinite(integrate(eq, w0, [1.0, 1.54], dt=0.02, max_courant=math.inf)).all())
    with pytest.raises(SolverDiverged) as again:
        integrate(eq, w0, [1.2, 2.0], dt=0.02)
    assert (again.value.step, again.value.time, again.value.times) == (78, pytest.approx(1.56), [1.2])
    copy = pickle.loads(pickle.dumps(err))
    assert (str(copy), copy.step, copy.times) == (str(err), 78, err.times) and torch.equal(copy.frames, err.frames)


def test_adaptive_dt_keeps_the_courant_bound_and_matches_a_fine_fixed_step():
    eq = NavierStokes2D(viscosity=1e-3)
    w0 = 10 * grf(32)  # peak |u| + |v| ~ 0.7: about 20 steps per output interval at Courant 0.25
    times = [0.0, 0.25, 0.5, 1.0]
    reference = integrate(eq, w0, times, dt=1e-3)
    errors = {}
    for courant in (0.5, 0.25):
        ds = solve(eq, w0, times, adaptive=True, courant=courant, progress=False)
        out = torch.from_numpy(ds["vorticity"].values)
        steps = ds.attrs["dt"]
        assert ds.attrs["time_stepping"] == "adaptive-cfl" and ds.attrs["courant"] == courant and len(steps) == 3
        for i, h in enumerate(steps):  # each interval's step is chosen from the speed at its start
            assert courant_number(eq, out[:, i], h) <= courant * (1 + 1e-12)
            assert courant_number(eq, out[:, i + 1], h) < 1.1 * courant
        errors[courant] = float(rel_l2(out, reference).max())
    assert errors[0.25] < 2e-3
    assert 3.5 < errors[0.5] / errors[0.25] < 4.5  # second order in the adaptive step too
    capped = integrate(eq, w0, times, adaptive=True, courant=0.25, dt=0.005)
    assert float(rel_l2(capped, reference).max()) < errors[0.25] / 4
    with pytest.raises(SolverError, match=r"courant must be in \(0, max_courant=1.0\]"):
        integrate(eq, w0, times, adaptive=True, courant=1.5)
