"""Shallow water on the sphere: the batched tendency against torch-harmonics, conservation over a Galewsky run,
third order in time, resolution-consistent random flows, CF layout, and the refusals."""

import math
import warnings

import numpy as np
import pytest
import torch

from sciml import SolverError
from sciml.solvers.shallow_water import (ShallowWater, ShallowWaterState, balanced, galewsky, integrate, invariants,
                                         solve, step, tendency, to_fields, to_spectrum)

EQ = ShallowWater()


def reference_solver(nlat, dt):
    from torch_harmonics.examples import ShallowWaterSolver

    return ShallowWaterSolver(nlat, 2 * nlat, dt, lmax=nlat, mmax=nlat, grid="equiangular").double()


def advance(eq, spectrum, dt, count):
    state = ShallowWaterState(spectrum)
    for k in range(count):
        state = step(eq, state, dt, t=k * dt)
    return state.spectrum


def sphere_mean(field):
    """Area mean over the trailing ``(lat, lon)`` of an equiangular grid (Clenshaw-Curtis weights in sin(lat))."""
    from torch_harmonics.quadrature import clenshaw_curtiss_weights

    weights = clenshaw_curtiss_weights(field.shape[-2], -1, 1)[1].to(field.dtype)[:, None]
    return (field * weights).sum(dim=(-2, -1)) / (2 * field.shape[-1])


def rel_l2(a, b):
    """Per-sample relative L2 of ``a - b`` over ``(lat, lon)``, the largest over samples."""
    return float((torch.linalg.vector_norm(a - b, dim=(-2, -1)) / torch.linalg.vector_norm(b, dim=(-2, -1))).max())


def test_the_batched_tendency_and_galewsky_state_are_torch_harmonics_ones():
    reference = reference_solver(32, 300.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.meshgrid indexing notice inside torch-harmonics
        jet = reference.galewsky_initial_condition()
    # torch-harmonics forms the jet's constants (pi / 7, ...) in float32: 3.4e-9 measured
    assert float((galewsky(EQ, 32)[0] - jet).abs().max() / jet.abs().max()) < 1e-8
    gen = torch.Generator().manual_seed(0)
    noise = torch.tril(torch.randn(3, 32, 32, dtype=torch.complex128, generator=gen)) * jet.abs().amax(dim=(1, 2))[:, None, None] * 1e-3
    batch = torch.stack([jet, jet + noise])
    rates = tendency(EQ, batch)
    for i in range(2):  # ShallowWaterSolver.dudtspec takes one unbatched state
        expected = reference.dudtspec(batch[i])
        assert float((rates[i] - expected).abs().max() / expected.abs().max()) < 1e-12


def test_galewsky_run_conserves_mass_and_energy_and_follows_torch_harmonics():
    state0 = galewsky(EQ, 64)
    mass0, energy0 = invariants(EQ, state0)
    state = advance(EQ, state0, 150.0, 6 * 3600 // 150)
    mass1, energy1 = invariants(EQ, state)
    assert float(abs(mass1 - mass0) / mass0) < 1e-12  # flux form: the l = 0 mode of d(Phi)/dt vanishes exactly
    # measured -5.7e-5 over 6 h (implicit hyperdiffusion dissipates a little)
    assert float(abs(energy1 - energy0) / energy0) < 2e-4
    # torch-harmonics' own (unbatched) timestep starts with forward Euler, this one with Heun and AB2. After 6 h,
    # relative L2 apart (measured): 1.2e-5 in the height anomaly, 8.1e-6 in the eastward, 8.8e-4 in the (small)
    # northward velocity, where each is 2e-3 from a run with dt = 75 s.
    theirs = to_fields(EQ, reference_solver(64, 150.0).timestep(state0[0], 6 * 3600 // 150)[None])
    mine = to_fields(EQ, state)
    assert rel_l2(mine[:, 0] - EQ.mean_depth, theirs[:, 0] - EQ.mean_depth) < 3e-5
    assert rel_l2(mine[:, 1], theirs[:, 1]) < 3e-5 and rel_l2(mine[:, 2], theirs[:, 2]) < 2e-3


def test_third_order_in_time_with_a_time_dependent_closure():
    # A layer at rest forced uniformly, dh/dt = A cos(w t), stays at rest: h = H + A sin(w t) / w. The closure is
    # evaluated at the stage times (t, t + dt in the first, Heun, step), so the error falls as dt^3.
    nlat = 8
    rest = torch.zeros(1, 3, nlat, nlat, dtype=torch.complex128)
    rest[:, 0, 0, 0] = math.sqrt(4 * math.pi) * EQ.gravity * EQ.mean_depth  # Y_00 = 1 / sqrt(4 pi)
    amplitude, frequency = 100.0 / 3600, 2 * math.pi / (6 * 3600)  # 100 m per hour, a period of 6 h

    def closure(fields, t):
        rate = torch.zeros_like(fields)
        rate[:, 0] = amplitude * math.cos(frequency * t)
        return rate

    end = 6 * 3600.0
    exact = EQ.mean_depth + amplitude * math.sin(frequency * end) / frequency
    errors = [float((integrate(EQ, rest, [end], dt=dt, closure=closure)[0, 0, 0] - exact).abs().max())
              for dt in (1200.0, 600.0, 300.0)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 3.0) < 0.15), (errors, orders)  # measured 2.90, 2.98


def test_random_flows_are_balanced_and_the_same_continuous_field_at_every_resolution():
    from sciml.datasets.swe_sphere import initial_state

    coarse = initial_state(3, 32, seed=7, kind="random")
    fine = initial_state(3, 64, seed=7, kind="random")
    # one spectral draw, one balance on one grid (equal up to MKL's run-to-run rounding)
    torch.testing.assert_close(fine[..., :32, :32], coarse, rtol=0, atol=1e-14 * float(coarse.abs().max()))
    assert float(fine[..., 21:, :].abs().max()) == 0.0  # degrees <= 20: a 32-latitude grid holds all of it
    torch.testing.assert_close(initial_state(1, 32, seed=7, first_sample=2, kind="random"), coarse[2:], rtol=0,
                               atol=1e-14 * float(coarse.abs().max()))
    assert float((initial_state(1, 32, seed=8, kind="random") - coarse[:1]).abs().max()) > 0.1 * float(coarse[:, 1].abs().max())

    fields = to_fields(EQ, fine)
    speed = fields[:, 1:].square().sum(dim=1).sqrt()
    torch.testing.assert_close(sphere_mean(speed.square()).sqrt(), torch.full((3,), 20.0, dtype=torch.float64))
    assert 30.0 < float(speed.max()) < 80.0 and float(fields[:, 0].min()) > 8000.0
    torch.testing.assert_close(sphere_mean(fields[:, 0]), torch.full((3,), EQ.mean_depth, dtype=torch.float64))
    # Nonlinear balance: the divergence does not change at first (round-off: 1e-11 of the vorticity's rate)
    rate = tendency(EQ, fine)
    assert float(rate[:, 2, :21].abs().max()) < 1e-9 * float(rate[:, 1].abs().max())


def test_random_flows_at_32x64_and_64x128_agree_after_six_hours():
    # The zero-shot check of a spherical FNO trained at 32x64 compares it at 64x128 with the 64x128 solution
    # from the same seed: the two solver solutions must be the same flow. Measured after 6 h, the fine solution
    # truncated spectrally to the coarse grid: relative L2 5.2e-3 (height anomaly), 4.1e-3 (eastward),
    # 4.9e-3 (northward velocity); the 64x128 and 128x256 solutions differ by 8e-4 to 1e-3.
    from sciml.datasets import generate

    options = dict(seed=0, times=[0.0, 6.0], initial_condition="random", progress=False)
    coarse = generate("swe-sphere", 2, 32, **options)
    fine = generate("swe-sphere", 2, 64, **options)  # the recipe's default step, 150 s: stable
    assert coarse.attrs["dt_seconds"] == 300.0 and fine.attrs["dt_seconds"] == 150.0
    names = ("height", "eastward_velocity", "northward_velocity")
    stack = lambda ds: torch.from_numpy(np.stack([ds[name].values[:, -1] for name in names], axis=1))  # noqa: E731
    truncated = to_fields(EQ, to_spectrum(EQ, stack(fine))[..., :32, :32])
    solved = stack(coarse)
    assert rel_l2(solved[:, 0] - EQ.mean_depth, truncated[:, 0] - EQ.mean_depth) < 1e-2
    assert rel_l2(solved[:, 1:], truncated[:, 1:]) < 1e-2
    initial = stack(coarse.isel(time=[0]))
    assert rel_l2(solved[:, 1:], initial[:, 1:]) > 0.1  # and the flow did evolve (winds by up to 49%)


def test_solve_writes_ascending_latitude_and_physical_units():
    ds = solve(EQ, galewsky(EQ, 33), [0.0, 1.0], dt=150.0, progress=False)
    assert ds["height"].dims == ("sample", "time", "lat", "lon") and ds.sizes["lon"] == 66
    assert np.all(np.diff(ds["lat"].values) > 0) and ds["lat"].values[0] == pytest.approx(-90.0)
    assert ds["lat"].attrs["units"] == "degrees_north" and ds["eastward_velocity"].attrs["units"] == "m s-1"
    assert ds["time"].attrs["units"] == "hours" and ds.attrs["dt_seconds"] == 150.0
    # Galewsky: a 10 km layer, jet of 80 m/s in the northern mid-latitudes
    assert 9.0e3 < float(ds["height"].mean()) < 11.0e3
    jet = ds["eastward_velocity"].isel(sample=0, time=0).max("lon")
    assert float(jet.idxmax()) > 20.0 and float(jet.max()) == pytest.approx(80.0, rel=0.1)


def test_bad_input_is_refused_in_one_line():
    state = galewsky(EQ, 64)
    with pytest.raises(SolverError, match=r"dt=600 s violates the stability bound .* use dt <= \d+ s for 64 x 128"):
        solve(EQ, state, [1.0], dt=600.0, progress=False)
    with pytest.raises(SolverError, match=r"output intervals must be whole multiples of dt=140 s"):
        integrate(EQ, state, [3600.0], dt=140.0)
    with pytest.raises(SolverError, match=r"state0 must be a complex128 tensor \(batch, 3, nlat, nlat\)"):
        integrate(EQ, to_fields(EQ, state), [3600.0], dt=150.0)
    with pytest.raises(SolverError, match=r"state0 must be \(batch, 3, nlat, nlat\) with nlat >= 8, got shape \(3, 64, 64\)"):
        integrate(EQ, state[0], [3600.0], dt=150.0)
    with pytest.raises(SolverError, match=r"state must be a ShallowWaterState, got Tensor; start one as "
                                          r"ShallowWaterState\(spectrum\)"):
        step(EQ, state, 150.0)
    with pytest.raises(SolverError, match="history was taken with dt=150 s, not 100 s"):
        step(EQ, step(EQ, ShallowWaterState(state), 150.0), 100.0)
    with pytest.raises(SolverError, match="mean_depth must be a positive finite number"):
        ShallowWater(mean_depth=-1.0)
    with pytest.raises(SolverError, match="hyperdiffusion_order must be an integer >= 1"):
        ShallowWater(hyperdiffusion_order=2.5)


def test_to_spectrum_inverts_to_fields_where_its_quadrature_is_exact():
    gen = torch.Generator().manual_seed(1)
    zeta = torch.tril(torch.randn(2, 6, 6, dtype=torch.complex128, generator=gen)) * 1e-5
    zeta[..., 0] = zeta[..., 0].real
    zeta[:, 0] = 0
    state = balanced(EQ, zeta, 32)  # degrees <= 10
    back = to_spectrum(EQ, to_fields(EQ, state))
    # Clenshaw-Curtis on 32 latitudes is exact for degree <= 31: degrees l <= 31 - 10 come back to round-off,
    # the higher ones (zero here) pick up quadrature error
    torch.testing.assert_close(back[..., :22, :], state[..., :22, :], rtol=0, atol=1e-12 * float(state.abs().max()))
    assert float(back[..., 22:, :].abs().max()) > 1e-9 * float(state.abs().max())


def test_a_missing_torch_harmonics_is_named_with_the_fix(monkeypatch):
    import sys

    from sciml.models import build

    monkeypatch.setitem(sys.modules, "torch_harmonics", None)  # import fails as where the wheel does not load
    with pytest.raises(ImportError, match="the shallow-water solver needs torch-harmonics 0.9.3.*torch-harmonics==0.9.3"):
        galewsky(ShallowWater(), 16)
    with pytest.raises(ImportError, match="the sfno model needs torch-harmonics"):
        build("sfno", in_channels=1, out_channels=1, lmax=4)
