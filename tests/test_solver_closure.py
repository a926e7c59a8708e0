"""The closure seam of the spectral solvers (an extra explicit tendency), gradients through their steps, and the
per-equation operator cache."""

import gc
import math
import pickle
import weakref

import numpy as np
import pytest
import torch

from sciml import Grid, SolverError, gaussian_random_field, rel_l2
from sciml.datasets.ns2d import LI2021_VORTICITY_GRF
from sciml.solvers import burgers, navier_stokes, shallow_water
from sciml.solvers.burgers import Burgers1D, cole_hopf
from sciml.solvers.navier_stokes import NavierStokes2D


def orders(errors):
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


def mesh(n):
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(x, x, indexing="ij")  # (y, x)


def kept_modes_only(w):
    """``w`` ``(batch, n, n)`` without the modes 2/3 dealiasing drops (integer |k_x| or |k_y| > (n - 1) // 3)."""
    n = w.shape[-1]
    k = torch.fft.fftfreq(n, 1 / n).abs()[:, None].maximum(torch.arange(n // 2 + 1)[None, :])
    return torch.fft.irfft2(torch.fft.rfft2(w).masked_fill(k > (n - 1) // 3, 0), s=(n, n))


def rayleigh_drag(state, t):
    return -0.1 * state


def test_a_closure_minus_beta_w_is_linear_drag_to_the_order_of_each_scheme():
    # Taylor-Green (a steady Euler flow) decays as exp(-(nu |k|^2 + beta) t) with the drag as a closure; CN-Heun
    # then treats the drag explicitly (Heun), ETDRK4 in its nonlinear stages: measured 9.6e-6 and 3.2e-12.
    y, x = mesh(32)
    w0 = (torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y))[None]
    nu, beta = 1e-2, 0.3
    exact = w0 * math.exp(-(nu * 20 * math.pi**2 + beta))
    drag = lambda w, t: -beta * w  # noqa: E731
    eq = NavierStokes2D(viscosity=nu, forcing="none")
    for scheme, tol in (("cn-heun", 2e-5), ("etdrk4", 1e-11)):
        out = navier_stokes.integrate(eq, w0, [1.0], dt=0.01, scheme=scheme, closure=drag)
        assert float((out[:, 0] - exact).abs().max()) < tol, scheme
    # On a forced turbulent flow the closure and drag=beta agree at each scheme's order. The flow holds only the
    # modes dealiasing keeps: the closure is dealiased like advection, so it leaves the others to nu alone.
    # Measured rel. L2 apart at t = 1: CN-Heun 2.3e-5, 5.8e-6, 1.5e-6; ETDRK4 1.7e-7, 1.0e-8, 6.4e-10.
    w0 = kept_modes_only(gaussian_random_field(Grid.box(32, 32), 2, seed=0, dtype=torch.float64,
                                               **LI2021_VORTICITY_GRF))
    plain, dragged = NavierStokes2D(viscosity=1e-3), NavierStokes2D(viscosity=1e-3, drag=0.5)
    for scheme, dts, order, last in (("cn-heun", (0.02, 0.01, 0.005), 2.0, 3e-6),
                                     ("etdrk4", (0.1, 0.05, 0.025), 4.0, 2e-9)):
        gaps = [float(rel_l2(navier_stokes.integrate(plain, w0, [1.0], dt=dt, scheme=scheme, closure=lambda w, t: -0.5 * w),
                             navier_stokes.integrate(dragged, w0, [1.0], dt=dt, scheme=scheme)).max()) for dt in dts]
        assert np.all(np.abs(orders(gaps) - order) < 0.15) and gaps[-1] < last, (scheme, gaps)


@pytest.mark.parametrize("scheme, dts, order", [("cn-heun", (0.04, 0.02, 0.01), 2.0), ("etdrk4", (0.2, 0.1, 0.05), 4.0)])
def test_a_time_dependent_closure_is_evaluated_at_the_stage_times(scheme, dts, order):
    # A single-|k| mode w = A(t) m(x, y) is a steady Euler flow; forced by c(t) = cos(W t) m it stays one, with
    # A' = -lam A + cos(W t). Measured orders: CN-Heun 2.00, 2.00 (stages t, t + dt); ETDRK4 4.09, 4.02
    # (t, t + dt/2, t + dt/2, t + dt). A closure evaluated at t alone would be first order.
    y, x = mesh(16)
    mode = torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y)
    nu, frequency, end = 0.02, 2 * math.pi, 1.0
    lam = nu * 8 * math.pi**2
    amplitude = ((1 - lam / (lam**2 + frequency**2)) * math.exp(-lam * end)
                 + (lam * math.cos(frequency * end) + frequency * math.sin(frequency * end)) / (lam**2 + frequency**2))
    eq = NavierStokes2D(viscosity=nu, forcing="none")
    closure = lambda w, t: math.cos(frequency * t) * mode.expand_as(w)  # noqa: E731
    errors = [float((navier_stokes.integrate(eq, mode[None], [end], dt=dt, scheme=scheme, closure=closure)[0, 0]
                     - amplitude * mode).abs().max()) for dt in dts]
    assert np.all(np.abs(orders(errors) - order) < 0.15), errors


def test_burgers_closures_linear_and_time_dependent():
    n, nu = 128, 0.05
    x = torch.arange(n, dtype=torch.float64) / n
    eq = Burgers1D(viscosity=nu)
    # A uniform forcing g(t) = a cos(W t) shifts a Cole-Hopf solution v (Galilean invariance):
    # u = v(x - X(t), t) + U(t), U' = g, X' = U. Measured max errors at t = 0.5: 5.4e-7, 3.5e-8, 2.3e-9 (order 3.95).
    a, frequency, end = 2.0, 4 * math.pi, 0.5
    shift = lambda t: a * (1 - math.cos(frequency * t)) / frequency**2  # noqa: E731
    exact = lambda t: (cole_hopf(x - shift(t), t, viscosity=nu, amplitudes=(0.9,))  # noqa: E731
                       + a * math.sin(frequency * t) / frequency)
    forcing = lambda u, t: torch.full_like(u, a * math.cos(frequency * t))  # noqa: E731
    errors = [float((burgers.integrate(eq, exact(0.0)[None], [end], dt=dt, max_courant=5, closure=forcing)[0, 0]
                     - exact(end)).abs().max()) for dt in (0.02, 0.01, 0.005)]
    assert np.all(np.abs(orders(errors) - 4.0) < 0.15), errors
    # Linear damping -beta u of u = U0 + eps sin(k x) (eps small: linear in eps): the mean decays as
    # U0 exp(-beta t) and carries the wave, which decays as exp(-(nu k^2 + beta) t). Measured at dt = 2.5e-3:
    # mean 4.7e-14 off, wave 4.8e-8 of eps (and 1.2e-5, 7.8e-7 at dt = 1e-2, 5e-3).
    n, nu, beta, eps, k = 64, 0.02, 0.8, 1e-6, 4 * math.pi
    x = torch.arange(n, dtype=torch.float64) / n
    mean, travelled = math.exp(-beta), (1 - math.exp(-beta)) / beta
    wave = eps * math.exp(-(nu * k**2 + beta)) * torch.sin(k * (x - travelled))
    out = burgers.integrate(Burgers1D(viscosity=nu), (1.0 + eps * torch.sin(k * x))[None], [1.0], dt=2.5e-3,
                            closure=lambda u, t: -beta * u)[0, 0]
    assert abs(float(out.mean()) - mean) < 1e-12
    assert float((out - out.mean() - wave).abs().max()) < 1e-6 * eps


def test_a_closure_output_of_the_wrong_kind_is_one_line_error_and_a_closure_is_recorded():
    w0 = torch.zeros(1, 16, 16, dtype=torch.float64)
    with pytest.raises(SolverError, match=r"closure\(state, t\) must return the tendency as a tensor like the state, "
                                          r"\(1, 16, 16\) torch.float64 on cpu; got \(16, 16\) torch.float64 on cpu"):
        navier_stokes.integrate(NavierStokes2D(viscosity=1e-2), w0, [0.1], dt=0.01, closure=lambda w, t: w[0])
    with pytest.raises(SolverError, match=r"got \(1, 16\) torch.float32"):
        burgers.integrate(Burgers1D(viscosity=0.1), torch.zeros(1, 16, dtype=torch.float64), [0.1], dt=0.01,
                          closure=lambda u, t: u.float())
    eq = shallow_water.ShallowWater()
    with pytest.raises(SolverError, match=r"\(1, 3, 8, 16\) torch.float64 on cpu; got NoneType"):
        shallow_water.step(eq, shallow_water.ShallowWaterState(shallow_water.galewsky(eq, 8)), 600.0,
                           closure=lambda fields, t: None)
    ds = navier_stokes.solve(NavierStokes2D(viscosity=1e-2), w0, [0.0, 0.1], dt=0.01, progress=False,
                             closure=rayleigh_drag)
    assert ds.attrs["closure"] == f"{__name__}.rayleigh_drag"


def navier_stokes_steps(scheme):
    eq = NavierStokes2D(viscosity=1e-2)

    def run(w, beta):
        w_hat = torch.fft.rfft2(w)
        for k in range(3):
            w_hat = navier_stokes.step(eq, w_hat, 0.05, t=0.05 * k, scheme=scheme,
                                       closure=lambda v, t: -beta * (1 + t) * v)
        return torch.fft.irfft2(w_hat, s=w.shape[-2:])

    return run


@pytest.mark.parametrize("scheme", ["cn-heun", "etdrk4"])
def test_gradients_flow_through_navier_stokes_steps(scheme):
    # float64 finite differences against autograd through 3 steps on 8x8, with respect to the initial vorticity
    # and to the parameter of a closure
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(1, 8, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    beta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(navier_stokes_steps(scheme), (w0, beta))
    eq = NavierStokes2D(viscosity=1e-2, forcing="none")
    assert torch.autograd.gradcheck(lambda w: torch.fft.irfft2(
        navier_stokes.step(eq, torch.fft.rfft2(w), 0.05, scheme=scheme), s=(8, 8)), (w0,))


def test_gradients_flow_through_burgers_and_shallow_water_steps():
    gen = torch.Generator().manual_seed(1)
    u0 = torch.randn(1, 16, dtype=torch.float64, generator=gen, requires_grad=True)
    beta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    eq = Burgers1D(viscosity=0.05)

    def burgers_steps(u, beta):
        u_hat = torch.fft.rfft(u)
        for k in range(3):
            u_hat = burgers.step(eq, u_hat, 0.01, t=0.01 * k, closure=lambda v, t: -beta * v)
        return torch.fft.irfft(u_hat, n=16)

    assert torch.autograd.gradcheck(burgers_steps, (u0, beta))
    sphere = shallow_water.ShallowWater()
    state0 = shallow_water.galewsky(sphere, 8)
    drag = torch.tensor(1e-5, dtype=torch.float64, requires_grad=True)  # Rayleigh friction on the winds, 1/s

    def sphere_steps(drag):
        state = shallow_water.ShallowWaterState(state0)
        for k in range(3):  # Heun, AB2, AB3
            state = shallow_water.step(sphere, state, 900.0, t=900.0 * k,
                                       closure=lambda f, t: torch.cat((torch.zeros_like(f[:, :1]), -drag * f[:, 1:]), 1))
        return (shallow_water.to_fields(sphere, state.spectrum) * weights).sum()  # one direction: a fast check

    weights = torch.randn(1, 3, 8, 16, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(sphere_steps, (drag,))


def test_operators_live_in_a_bounded_cache_on_the_equation():
    eq = NavierStokes2D(viscosity=1e-3)
    w_hat = torch.fft.rfft2(torch.zeros(1, 16, 16, dtype=torch.float64))
    first = navier_stokes.step(eq, w_hat, 1e-3)
    for i in range(20):  # adaptive stepping: a new step size every interval
        navier_stokes.step(eq, w_hat, 1e-3 * (1 + i / 7), scheme="etdrk4" if i % 2 else "cn-heun")
    assert len(eq._cache) == 8
    torch.testing.assert_close(navier_stokes.step(eq, w_hat, 1e-3), first, rtol=0, atol=0)  # rebuilt alike
    same = NavierStokes2D(viscosity=1e-3)
    assert eq == same and hash(eq) == hash(same) and "_cache" not in repr(eq)
    assert len(pickle.loads(pickle.dumps(eq))._cache) == 0
    # nothing outside the equation holds its operators: they die with it
    ref = weakref.ref(eq)
    del eq
    gc.collect()
    assert ref() is None
    b = Burgers1D(viscosity=(0.1, 0.2))
    burgers.step(b, torch.fft.rfft(torch.zeros(2, 16, dtype=torch.float64)), 1e-3)
    assert len(b._cache) == 1 and b == Burgers1D(viscosity=(0.1, 0.2))
