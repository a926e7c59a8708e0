"""Numerical validation of the 3-D (Boussinesq, rotating) Navier-Stokes solver against exact results: Beltrami
decay, the exact Euler tendency of Taylor-Green, energy budgets, the inertia-gravity wave dispersion relation,
the measured temporal order, the Taylor-Green short-time series, dealiasing, invariants and bad input."""

import math

import numpy as np
import pytest
import torch

from sciml import SolverError, rel_l2
from sciml.solvers import SolverDiverged
from sciml.solvers.navier_stokes3d import (STABILITY_LIMIT, NavierStokes3D, abc_flow, buoyancy_flux, dissipation,
                                           divergence, energy_spectrum, enstrophy, explicit_tendency, integrate,
                                           kinetic_energy, potential_dissipation, potential_energy, project,
                                           random_velocity, solve, stability_number, stable_dt, step, taylor_green)

DIMS = (-3, -2, -1)


def grid(n):
    """``(z, y, x)`` coordinates of the 2 pi-periodic ``n^3`` grid, each ``(n, n, n)``."""
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return torch.meshgrid(x, x, x, indexing="ij")


def stratified_state(n, *, seed, energy=0.3, buoyancy=0.5, count=1):
    """A random band-limited solenoidal velocity and a random buoyancy: ``(count, 4, n, n, n)``."""
    u = random_velocity(n, count, seed=seed, energy=energy)
    b = buoyancy * random_velocity(n, count, seed=seed + 1000)[:, :1]
    return torch.cat([u, b], dim=1)


def orders(errors):
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


def test_abc_flow_decays_exactly():
    # A Beltrami field (curl u = k u) has u x omega = 0 ((u . grad) u is a gradient, taken by the pressure): it
    # decays as exp(-nu k^2 t), which ETDRK4 integrates exactly. Measured: 1.8e-15 (float64), 1.8e-7 (float32).
    nu, t = 0.05, 1.0
    eq = NavierStokes3D(viscosity=nu)
    for wavenumber in (1, 2):
        u0 = abc_flow(16, coefficients=(1.0, 0.7, 0.4), wavenumber=wavenumber)
        exact = u0 * math.exp(-nu * wavenumber**2 * t)
        out = integrate(eq, u0, [t], dt=0.1)
        assert float((out[:, 0] - exact).abs().max()) < 1e-13, wavenumber
    low = integrate(eq, u0.float(), [t], dt=0.1)
    assert float((low[:, 0].double() - exact).abs().max()) < 2e-6
    # A shear wave v = sin 7x is exact too, and beyond the 2/3 band on 16^3 (|k| <= 5 kept): such modes only decay.
    shear = torch.zeros(1, 3, 16, 16, 16, dtype=torch.float64)
    shear[0, 1] = torch.sin(7 * grid(16)[2])
    out = integrate(eq, shear, [t], dt=0.1)
    assert float((out[:, 0] - shear * math.exp(-nu * 49 * t)).abs().max()) < 1e-14


def test_explicit_tendency_is_the_exact_euler_boussinesq_tendency_of_taylor_green():
    # Taylor-Green u = (sin x cos y cos z, -cos x sin y cos z, 0) has the pressure p = (cos 2x + cos 2y)(cos 2z + 2)
    # / 16, so -(u . grad) u - grad p = (-sin 2x cos 2z, -sin 2y cos 2z, (cos 2x + cos 2y) sin 2z) / 8. The Coriolis
    # force (f v, -f u, 0) projects to -(f / 3) (cos x sin y cos z, sin x cos y cos z, 2 sin x sin y sin z); the
    # buoyancy b = sin x adds b e_z (already solenoidal) and is advected at -u cos x = -sin 2x cos y cos z / 2.
    z, y, x = grid(16)
    f, n2 = 0.7, 1.3**2
    state = torch.cat([taylor_green(16), torch.sin(x)[None, None]], dim=1)
    expected = torch.stack([
        -torch.sin(2 * x) * torch.cos(2 * z) / 8 - f / 3 * torch.cos(x) * torch.sin(y) * torch.cos(z),
        -torch.sin(2 * y) * torch.cos(2 * z) / 8 - f / 3 * torch.sin(x) * torch.cos(y) * torch.cos(z),
        (torch.cos(2 * x) + torch.cos(2 * y)) * torch.sin(2 * z) / 8
        - 2 * f / 3 * torch.sin(x) * torch.sin(y) * torch.sin(z) + torch.sin(x),
        -torch.sin(2 * x) * torch.cos(y) * torch.cos(z) / 2,  # - N^2 w, w = 0
    ])[None]
    eq = NavierStokes3D(viscosity=0.1, buoyancy_frequency=math.sqrt(n2), coriolis_parameter=f)
    assert float((explicit_tendency(eq, state) - expected).abs().max()) < 1e-14
    # -N^2 w: a buoyancy-free vertical velocity w = sin x (solenoidal) feeds b at -N^2 sin x
    lifted = torch.zeros_like(state)
    lifted[0, 2] = torch.sin(x)
    assert float((explicit_tendency(eq, lifted)[0, 3] + n2 * torch.sin(x)).abs().max()) < 1e-14


@pytest.mark.parametrize("stratified", [False, True])
def test_energy_budget_closes_to_the_centred_difference_accuracy(stratified):
    # dK/dt = <w b> - eps and dK_P/dt = -<w b> - eps_P exactly for the dealiased system (band-limited state;
    # Coriolis does no work). The centred difference (K(t + d) - K(t - d)) / 2 d misses it by d^2 K''' / 6:
    # measured residuals / eps at d = 2e-3 and 1e-3: 1.3e-6, 3.2e-7 (unstratified); stratified, rotating,
    # kappa != nu: 2.0e-6, 5.2e-7 (K) and 4.6e-7, 1.0e-7 (K_P), with <w b> = 0.67 eps.
    if stratified:
        eq = NavierStokes3D(viscosity=0.02, diffusivity=0.03, buoyancy_frequency=2.0, coriolis_parameter=1.0)
        state0 = stratified_state(16, seed=3)
        state0[:, 3] += 0.5 * state0[:, 2]  # b correlated with w: a buoyancy flux from the start
    else:
        eq = NavierStokes3D(viscosity=0.02)
        state0 = random_velocity(16, seed=3, energy=0.3)
    residuals = []
    for d in (2e-3, 1e-3):
        before, middle, after = integrate(eq, state0, [0.0, d, 2 * d], dt=d)[0].unbind(0)
        kinetic = (kinetic_energy(eq, after) - kinetic_energy(eq, before)) / (2 * d)
        eps = float(dissipation(eq, middle))
        if stratified:
            flux = buoyancy_flux(eq, middle)
            potential = (potential_energy(eq, after) - potential_energy(eq, before)) / (2 * d)
            residuals.append([float(kinetic - flux + eps) / eps,
                              float(potential + flux + potential_dissipation(eq, middle)) / eps])
            assert abs(float(flux)) > 0.2 * eps  # the exchange is in play
        else:
            residuals.append([float(kinetic + eps) / eps])
    first, second = np.abs(residuals)
    assert np.all(second < 2e-6), residuals
    assert np.all((first / second > 3.5) & (first / second < 4.5)), residuals  # d^2: the difference, not the solver


def plane_wave(n, k, amplitude=1e-3):
    """``u = A e sin(k . x)``, ``b = 0``, ``e`` the unit normal to ``k`` in its vertical plane: ``(4, n, n, n)``."""
    kx, ky, kz = k
    kh2, k2 = kx**2 + ky**2, kx**2 + ky**2 + kz**2
    e = torch.tensor([-kx * kz, -ky * kz, kh2], dtype=torch.float64) / math.sqrt(k2 * kh2)
    z, y, x = grid(n)
    velocity = amplitude * e[:, None, None, None] * torch.sin(kx * x + ky * y + kz * z)
    return torch.cat([velocity, torch.zeros_like(velocity[:1])])


@pytest.mark.parametrize("coriolis", [0.0, 1.0])
def test_internal_gravity_waves_follow_the_dispersion_relation(coriolis):
    # A plane wave is an exact nonlinear solution (u . k = 0), so w_hat(k) is e^{+-i omega t} alone, with
    # omega^2 = (N^2 |k_h|^2 + f^2 k_z^2) / |k|^2 (and a steady vortical mode without w). Prony's recurrence
    # w_{j+1} = alpha w_j + beta w_{j-1} over the frames recovers the frequency per step; without viscosity
    # ETDRK4 is RK4, whose frequency is arg R(i omega h) / h, R(z) = 1 + z + z^2/2 + z^3/6 + z^4/24, below omega
    # by (omega h)^4 / 120: measured 2e-7 to 6e-7 for these waves, matching R to 1e-12.
    n, nb, h = 8, 2.0, 0.1
    waves = [(1, 0, 1), (2, 1, 1), (1, 1, 2)]
    eq = NavierStokes3D(viscosity=0.0, buoyancy_frequency=nb, coriolis_parameter=coriolis)
    out = integrate(eq, torch.stack([plane_wave(n, k) for k in waves]), [h * j for j in range(13)], dt=h)
    w_hat = torch.fft.rfftn(out[:, :, 2], dim=DIMS)  # (wave, time, k_z, k_y, k_x)
    for i, (kx, ky, kz) in enumerate(waves):
        series = w_hat[i, :, kz % n, ky % n, kx].numpy()
        lhs = np.stack([series[1:-1], series[:-2]], axis=1)
        (alpha, beta), *_ = np.linalg.lstsq(np.concatenate([lhs.real, lhs.imag]),
                                            np.concatenate([series[2:].real, series[2:].imag]), rcond=None)
        measured = math.acos(alpha / (2 * math.sqrt(-beta))) / h
        omega = math.sqrt((nb**2 * (kx**2 + ky**2) + coriolis**2 * kz**2) / (kx**2 + ky**2 + kz**2))
        z = 1j * omega * h
        rk4 = 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24
        assert abs(measured - np.angle(rk4) / h) < 1e-9 * omega, (kx, ky, kz)
        assert abs(-beta - abs(rk4) ** 2) < 1e-10
        assert abs(measured / omega - 1) < (omega * h) ** 4 / 100, (measured, omega)


def test_temporal_order_is_four_on_stratified_rotating_turbulence():
    # Richardson differences of steps h, h/2, h/4 on a random stratified rotating flow: measured order 4.0.
    eq = NavierStokes3D(viscosity=0.01, diffusivity=0.015, buoyancy_frequency=2.0, coriolis_parameter=1.0)
    state0 = stratified_state(16, seed=5, energy=0.1, buoyancy=0.3)
    assert 0.5 < stability_number(eq, state0, 0.1) < 1.5
    runs = [integrate(eq, state0, [0.4], dt=dt)[:, 0] for dt in (0.1, 0.05, 0.025)]
    differences = [float(rel_l2(a, b).max()) for a, b in zip(runs, runs[1:])]
    assert abs(float(orders(differences)[0]) - 4) < 0.2, differences


def test_taylor_green_follows_its_short_time_series():
    # From the exact Euler tendency (test above), Z = <|omega|^2> / 2 grows as Z0 (1 + 5 t^2 / 48 + O(t^4))
    # (Z''(0) = <|omega_t|^2> + <omega . omega_tt> = 5 / 64, derived with sympy; cf. Taylor & Green 1937), and
    # since dK/dt = -2 nu Z the energy falls below the pure viscous decay K0 exp(-6 nu t) by
    # D(t) = (nu / 3) (5 / 64) t^3 (1 + O(nu t)). Measured (Z / Z0 - 1) / (5 t^2 / 48) - 1 = 4.7e-5, 1.9e-4, 7.6e-4
    # at t = 0.025, 0.05, 0.1 (O(t^2)); D / (5 nu t^3 / 192) - 1 = -0.0030, -0.0059 at t = 0.025, 0.05 (O(nu t)).
    times = [0.025, 0.05, 0.1]
    t = torch.tensor(times, dtype=torch.float64)
    inviscid = NavierStokes3D(viscosity=0.0)
    z = enstrophy(inviscid, integrate(inviscid, taylor_green(16), times, dt=0.0125))[0]
    growth = (z / 0.375 - 1) / (5 * t**2 / 48) - 1
    assert torch.all(growth.abs() < torch.tensor([1e-4, 3e-4, 1e-3])), growth
    assert 3.5 < float(growth[2] / growth[1]) < 4.5  # the next term is t^4
    nu = 0.01
    viscous = NavierStokes3D(viscosity=nu)
    k = kinetic_energy(viscous, integrate(viscous, taylor_green(16), times[:2], dt=0.0125))[0]
    deficit = (0.125 * torch.exp(-6 * nu * t[:2]) - k) / (5 * nu * t[:2] ** 3 / 192) - 1
    assert torch.all(deficit.abs() < 15 * nu * t[:2]), deficit
    assert 1.9 < float(deficit[1] / deficit[0]) < 2.1  # the next term is nu t^4


def kept_modes(spectrum, band):
    """The ``rfftn`` coefficients ``(..., k_z, k_y, k_x)`` with every integer ``|k_i| <= band``, normalised by
    ``n^3``, in a fixed order (comparable across grid sizes)."""
    n = spectrum.shape[-3]
    index = torch.cat([torch.arange(band + 1), torch.arange(n - band, n)])
    return spectrum[..., index, :, :][..., index, :][..., :band + 1] / n**3


def test_dealiasing_is_exact_on_the_kept_modes_and_random_fields_are_resolution_consistent():
    # The same band-limited field (|k_i| <= 7) on 24^3 and 48^3: the 2/3 rule keeps |k_i| <= 7 on 24^3, where
    # products reach 14 and alias (14 -> -10) only onto dropped modes, so the kept modes of the tendency agree
    # with the 48^3 tendency, where nothing aliases. Measured 3.1e-16.
    eq = NavierStokes3D(viscosity=0.01, buoyancy_frequency=1.5, coriolis_parameter=0.5)
    coarse = stratified_state(24, seed=11)
    fine = torch.cat([random_velocity(48, seed=11, energy=0.3, band_limit=7),
                      0.5 * random_velocity(48, seed=1011, band_limit=7)[:, :1]], dim=1)
    torch.testing.assert_close(fine[..., ::2, ::2, ::2], coarse, rtol=0, atol=1e-14)
    exact = kept_modes(torch.fft.rfftn(explicit_tendency(eq, fine), dim=DIMS), 7)
    dealiased = kept_modes(torch.fft.rfftn(explicit_tendency(eq, coarse), dim=DIMS), 7)
    assert float((dealiased - exact).abs().max() / exact.abs().max()) < 1e-13
    # The seed fixes the modes shell by shell: 32^3 and 64^3 share every mode with |k_i| <= 10.
    small, large = random_velocity(32, seed=7, peak_wavenumber=6.0), random_velocity(64, seed=7, peak_wavenumber=6.0)
    torch.testing.assert_close(kept_modes(torch.fft.rfftn(large, dim=DIMS), 10),
                               kept_modes(torch.fft.rfftn(small, dim=DIMS), 10), rtol=0, atol=1e-15)
    assert float(kinetic_energy(eq, large) - kinetic_energy(eq, small)) > 1e-3  # 64^3 adds the modes 11 to 21
    torch.testing.assert_close(random_velocity(16, 3, seed=1)[2:], random_velocity(16, seed=1, first_sample=2),
                               rtol=0, atol=0)


def test_divergence_and_the_dropped_band_stay_at_round_off_even_with_a_compressive_closure():
    # The closure's velocity tendency is not solenoidal; projected with advection it leaves ||div u|| / ||grad u||
    # at 4.5e-16 and the modes the 2/3 rule drops at 1.7e-16 of the largest (measured).
    eq = NavierStokes3D(viscosity=0.01, buoyancy_frequency=2.0, coriolis_parameter=1.0)
    state0 = stratified_state(16, seed=2)
    out = integrate(eq, state0, [0.2], dt=0.05, closure=lambda s, t: 0.3 * s.roll(1, dims=-1) ** 2)[:, 0]
    gradient = (2 * enstrophy(eq, out)).sqrt()  # ||grad u|| for a solenoidal u
    assert float(divergence(eq, out).square().mean(dim=DIMS).sqrt().div(gradient).max()) < 1e-14
    spectrum = torch.fft.rfftn(out, dim=DIMS).abs()
    largest = float(spectrum.max())
    spectrum[..., kept_modes_mask(16)] = 0
    assert float(spectrum.max()) < 1e-14 * largest


def kept_modes_mask(n):
    k = torch.fft.fftfreq(n, 1 / n).abs()
    band = (n - 1) // 3
    return (k[:, None, None] <= band) & (k[None, :, None] <= band) & (torch.arange(n // 2 + 1) <= band)


def test_batch_members_are_independent_and_float32_agrees_with_float64():
    # Measured: the batch member equals the lone run bit for bit; float32 is 2.2e-7 (rel. L2) from float64.
    eq = NavierStokes3D(viscosity=0.01, buoyancy_frequency=2.0, coriolis_parameter=1.0)
    state0 = stratified_state(16, seed=4, count=3)
    batch = integrate(eq, state0, [0.25], dt=0.05)
    single = integrate(eq, state0[1:2], [0.25], dt=0.05)
    torch.testing.assert_close(batch[1:2], single, rtol=0, atol=1e-13)
    low = integrate(eq, state0.float(), [0.25], dt=0.05)
    assert low.dtype == torch.float32 and float(rel_l2(low.double(), batch).max()) < 1e-5


def test_statistics_and_the_random_spectrum():
    nu = 0.02
    eq = NavierStokes3D(viscosity=nu, buoyancy_frequency=2.0)
    tg = taylor_green(16)
    assert float(kinetic_energy(eq, tg)) == pytest.approx(0.125, rel=1e-14)
    assert float(enstrophy(eq, tg)) == pytest.approx(3 * 0.125, rel=1e-13)  # every mode at |k|^2 = 3
    assert float(dissipation(eq, tg)) == pytest.approx(6 * nu * 0.125, rel=1e-13)
    abc = abc_flow(16, wavenumber=2)
    assert float(enstrophy(eq, abc)) == pytest.approx(4 * float(kinetic_energy(eq, abc)), rel=1e-13)
    z, _, x = grid(16)
    lifted = torch.stack([0 * x, 0 * x, torch.sin(x), 2 * torch.sin(x) + torch.cos(z)])[None]
    assert float(buoyancy_flux(eq, lifted)) == pytest.approx(1.0, rel=1e-13)  # <w b> = 2 <sin^2>
    assert float(potential_energy(eq, lifted)) == pytest.approx((2 + 0.5) / (2 * 4.0), rel=1e-13)
    assert float(potential_dissipation(eq, lifted)) == pytest.approx(eq.diffusivity * 2.5 / 4.0, rel=1e-13)
    # The spectrum sums to K (Parseval); the random fields have <|u_hat(k)|^2> = E(|k|) / (2 pi |k|^2) (L = 2 pi):
    # over 8 samples each shell from 3 to 8 within 15% (32 samples: within 3.2% from shell 2 on).
    fields = random_velocity(32, 8, seed=9, peak_wavenumber=3.0, energy=0.5)
    k, spectrum = energy_spectrum(eq, fields)
    assert spectrum.shape == (8, 29) and float(k[-1]) == 28  # shells 0 .. round(sqrt(3) 16)
    torch.testing.assert_close(spectrum.sum(dim=-1), kinetic_energy(eq, fields), rtol=1e-13, atol=0)
    assert abs(float(kinetic_energy(eq, fields).mean()) - 0.5) < 0.05
    k_hat = torch.fft.rfftn(fields, dim=DIMS) / 32**3
    kz = torch.fft.fftfreq(32, 1 / 32)
    magnitude = (kz[:, None, None] ** 2 + kz[None, :, None] ** 2 + torch.arange(17.0) ** 2).sqrt()
    amplitude = 0.5 / (0.375 * math.sqrt(math.pi) * (3.0**2 / 2) ** 2.5)
    expected = amplitude * magnitude**4 * torch.exp(-2 * (magnitude / 3.0) ** 2) / (2 * math.pi * magnitude**2)
    for shell in range(3, 9):
        inside = (magnitude.round() == shell) & (torch.arange(17) > 0)  # the half space k_x > 0
        ratio = (k_hat.abs() ** 2).sum(dim=1)[:, inside].mean() / expected[inside].mean()
        assert abs(float(ratio) - 1) < 0.15, (shell, float(ratio))


def test_a_closure_enters_each_stage_and_steps_are_differentiable():
    # Drag -beta (u, b) as a closure: the ABC flow (b = 0) and a z-only buoyancy b = cos z (b e_z is then a
    # gradient: no flow) decay as exp(-(nu k^2 + beta) t) and exp(-(kappa + beta) t), to ETDRK4's accuracy.
    nu, kappa, beta, t = 0.05, 0.02, 0.3, 1.0
    eq = NavierStokes3D(viscosity=nu, diffusivity=kappa)
    z, _, _ = grid(16)
    abc = torch.cat([abc_flow(16), torch.zeros(1, 1, 16, 16, 16, dtype=torch.float64)], dim=1)
    resting = torch.zeros_like(abc)
    resting[0, 3] = torch.cos(z)
    state0 = torch.cat([abc, resting])
    out = integrate(eq, state0, [t], dt=0.1, closure=lambda s, time: -beta * s)[:, 0]
    exact = torch.cat([abc * math.exp(-(nu + beta) * t), resting * math.exp(-(kappa + beta) * t)])
    assert float((out - exact).abs().max()) < 1e-8  # measured 3.5e-9 (2.2e-10 at h = 0.05): explicit drag, O(h^4)
    # Gradients through the steps match a centred difference of the final total energy in the amplitude.
    stratified = NavierStokes3D(viscosity=0.05, buoyancy_frequency=1.0, coriolis_parameter=0.5)
    state0 = stratified_state(8, seed=0)

    def energy(amplitude):
        v_hat = torch.fft.rfftn(amplitude * state0, dim=DIMS)
        for i in range(2):
            v_hat = step(stratified, v_hat, 0.05, t=0.05 * i, closure=lambda s, time: -0.1 * s)
        state = torch.fft.irfftn(v_hat, s=(8, 8, 8), dim=DIMS)
        return (kinetic_energy(stratified, state) + potential_energy(stratified, state)).sum()

    amplitude = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    energy(amplitude).backward()
    h = 1e-5
    centred = (energy(torch.tensor(1 + h, dtype=torch.float64))
               - energy(torch.tensor(1 - h, dtype=torch.float64))) / (2 * h)
    assert float(amplitude.grad) == pytest.approx(float(centred), rel=1e-8)


def test_solve_records_the_state_and_parameters():
    eq = NavierStokes3D(viscosity=0.02, buoyancy_frequency=2.0, coriolis_parameter=1.0)
    state0 = stratified_state(8, seed=1, count=2)
    ds = solve(eq, state0, [0.0, 0.1, 0.2], dt=0.05, progress=False)
    assert set(ds.data_vars) == {"u", "v", "w", "buoyancy"}
    assert ds["w"].dims == ("sample", "time", "z", "y", "x") and ds["w"].shape == (2, 3, 8, 8, 8)
    np.testing.assert_array_equal(ds["buoyancy"].values[:, 0], state0[:, 3].numpy())
    assert (ds.attrs["buoyancy_frequency"], ds.attrs["coriolis_parameter"], ds.attrs["diffusivity"]) == (2.0, 1.0, 0.02)
    assert ds.attrs["scheme"] == "etdrk4" and ds.attrs["dt"] == 0.05 and ds.attrs["domain_length"] == 2 * math.pi
    assert ds["z"].attrs["axis"] == "Z" and ds["z"].attrs["positive"] == "up" and ds["x"].attrs["axis"] == "X"
    assert ds["x"].values[1] == pytest.approx(2 * math.pi / 8)
    adaptive = solve(eq, state0, [0.0, 0.1, 0.3], adaptive=True, stability=0.8, progress=False)
    steps = adaptive.attrs["dt"]
    assert adaptive.attrs["time_stepping"] == "adaptive-stability-number" and len(steps) == 2
    states = torch.stack([torch.from_numpy(adaptive[name].values) for name in ("u", "v", "w", "buoyancy")], dim=2)
    for i, h in enumerate(steps):  # each interval's step is chosen from the flow at its start
        assert stability_number(eq, states[:, i], h) <= 0.8 * (1 + 1e-12)


def test_bad_input_gives_one_line_errors():
    with pytest.raises(SolverError, match="viscosity must be finite and >= 0"):
        NavierStokes3D(viscosity=-1e-3)
    with pytest.raises(SolverError, match="buoyancy_frequency N must be finite and >= 0"):
        NavierStokes3D(viscosity=1e-3, buoyancy_frequency=-1.0)
    with pytest.raises(SolverError, match="coriolis_parameter f must be finite"):
        NavierStokes3D(viscosity=1e-3, coriolis_parameter=math.inf)
    eq = NavierStokes3D(viscosity=0.01)
    u0 = abc_flow(16)
    # dt above the stability bound 2 sqrt 2 / (k_max max(|u| + |v| + |w|) + max(N, |f|)), k_max = 5 on 16^3
    bound = STABILITY_LIMIT / (5 * float(u0.abs().sum(dim=1).max()))
    with pytest.raises(SolverError, match=rf"dt=1 is above the stability bound at t=0: .* use dt <= {bound:.3g}$"):
        integrate(eq, u0, [1.0], dt=1.0)
    integrate(eq, u0, [0.99 * bound], dt=0.99 * bound)
    # A flow at rest in a strongly stratified or rotating fluid: the wave frequency alone bounds the step.
    waves = NavierStokes3D(viscosity=0.01, buoyancy_frequency=10.0, coriolis_parameter=-20.0)
    rest = torch.zeros(1, 4, 8, 8, 8, dtype=torch.float64)
    assert stable_dt(waves, rest) == pytest.approx(1 / 20)
    with pytest.raises(SolverError, match=r"use dt <= 0\.141"):
        integrate(waves, rest, [0.5], dt=0.5)
    compressible = u0.clone()
    compressible[0, 0] += torch.sin(grid(16)[2])  # div u = cos x
    with pytest.raises(SolverError, match=r"^the initial velocity is not solenoidal: .* pass project\(eq, state0\)$"):
        integrate(eq, compressible, [0.1], dt=0.01)
    assert float(divergence(eq, project(eq, compressible)).abs().max()) < 1e-13
    bad = u0.clone()
    bad[0, 1, 2, 3, 4] = math.nan
    with pytest.raises(SolverError, match="NaN or Inf"):
        integrate(eq, bad, [0.1], dt=0.01)
    with pytest.raises(SolverError, match=r"the grid is too small: n=3 .* use n >= 4"):
        integrate(eq, abc_flow(3), [0.1], dt=0.01)
    with pytest.raises(SolverError, match="cubic"):
        integrate(eq, u0[..., :8], [0.1], dt=0.01)
    with pytest.raises(SolverError, match="needs a buoyancy channel"):
        integrate(NavierStokes3D(viscosity=0.01, buoyancy_frequency=1.0), u0, [0.1], dt=0.01)
    with pytest.raises(SolverError, match="C = 3 \\(u, v, w\\) or 4"):
        integrate(eq, u0[:, :2], [0.1], dt=0.01)
    with pytest.raises(SolverError, match="state0 must be float32 or float64"):
        integrate(eq, u0.half(), [0.1], dt=0.01)
    with pytest.raises(SolverError, match="strictly increasing"):
        integrate(eq, u0, [0.2, 0.1], dt=0.01)
    with pytest.raises(SolverError, match="defined for a stratified flow"):
        potential_energy(eq, torch.cat([u0, u0[:, :1]], dim=1))
    # A flow driven past the bound mid-run (a growing closure) stops at the output time with the frames before.
    with pytest.raises(SolverDiverged, match=r"above the stability bound at t=0\.8.*frame\(s\) before") as info:
        integrate(eq, 0.1 * u0, [0.0, 0.4, 0.8], dt=0.05, closure=lambda s, t: 6.0 * s)
    assert info.value.frames.shape == (1, 2, 3, 16, 16, 16)
