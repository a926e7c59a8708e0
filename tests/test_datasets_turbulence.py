"""The turbulence statistics recipes: energy budgets of the written statistics, resolution-consistent initial
spectra, analytic Taylor-Green values, per-sample parameters, CF NetCDF round trip, bad input in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from sciml.datasets import generate

from sciml.errors import ConfigError, SciMLError, SolverError

H = 0.125
TIMES = [H * i for i in range(17)]  # 0 .. 2


def _simpson_residual(q: np.ndarray, rate: np.ndarray, h: float) -> np.ndarray:
    """``q(t + h) - q(t - h) - int rate dt`` by Simpson's rule: O(h^5) for a smooth budget ``dq/dt = rate``."""
    return (q[2:] - q[:-2]) - h / 3 * (rate[:-2] + 4 * rate[1:-1] + rate[2:])


@pytest.fixture(scope="module")
def unstratified() -> xr.Dataset:
    return generate("turbulence3d", 2, 16, seed=3, times=TIMES, progress=False)


def test_energy_budget_unstratified(unstratified):
    # dK/dt = -eps holds exactly for the truncated system (no mode beyond the 2/3 band); between samples of
    # the written series it holds to Simpson's accuracy, ~1e-7 K_0 here. A wrong eps (nu Z instead of
    # 2 nu Z) would leave ~eps h = 1e-2 K_0.
    for i in range(2):
        k = unstratified.kinetic_energy.values[i]
        eps = unstratified.dissipation.values[i]
        assert np.abs(_simpson_residual(k, -eps, H)).max() < 1e-5 * k[0]
        assert k[-1] < 0.8 * k[0]  # it decays


def test_energy_budget_stratified():
    ds = generate("turbulence3d", 1, 16, seed=3, times=TIMES, buoyancy_frequency=(2.0, 2.0), progress=False)
    k, kp = ds.kinetic_energy.values[0], ds.potential_energy.values[0]
    eps, eps_p, flux = (ds[v].values[0] for v in ("dissipation", "potential_dissipation", "buoyancy_flux"))
    assert np.abs(flux).max() > 0.2 * k[0]  # the exchange is large: the budget test has teeth
    assert np.abs(_simpson_residual(k, flux - eps, H)).max() < 2e-4 * k[0]
    assert np.abs(_simpson_residual(kp, -flux - eps_p, H)).max() < 2e-4 * k[0]
    assert float(ds.inverse_froude[0]) == pytest.approx(2.0 / (2.0 * math.sqrt(2 * 0.5 / 3)))
    assert 0.05 < kp[0] / k[0] < 0.2  # expected K_P = 0.1 K at t = 0


def test_energy_budget_2d():
    ds = generate("turbulence2d", 1, 32, seed=3, times=[0.25 * i for i in range(17)], progress=False)
    k, eps = ds.kinetic_energy.values[0], ds.dissipation.values[0]
    assert np.abs(_simpson_residual(k, -eps, 0.25)).max() < 1e-5 * k[0]
    np.testing.assert_allclose(eps, 2 * float(ds.viscosity[0]) * ds.enstrophy.values[0], rtol=1e-12)


def test_bands_and_spectrum_sum_to_the_energy(unstratified):
    k = unstratified.kinetic_energy.values
    np.testing.assert_allclose(unstratified.band_energy.sum("band").values, k, rtol=1e-10)
    np.testing.assert_allclose(unstratified.energy_spectrum.sum("wavenumber").values, k, rtol=1e-10)


@pytest.mark.parametrize("name,cutoff", [("turbulence3d", 5), ("turbulence2d", 5)])
def test_initial_spectrum_is_resolution_consistent(name, cutoff):
    # same seed on 16 and 32 points: the same Fourier modes up to the coarse band (max |k_i| <= 5), so every
    # shell |k| < 5.5 of the initial spectrum agrees to round-off (shell 6 already differs).
    coarse = generate(name, 2, 16, seed=5, times=[0.0], progress=False).energy_spectrum.values[:, 0]
    fine = generate(name, 2, 32, seed=5, times=[0.0], progress=False).energy_spectrum.values[:, 0]
    np.testing.assert_allclose(coarse[:, 1:cutoff + 1], fine[:, 1:cutoff + 1], rtol=1e-10)
    assert not np.allclose(coarse[:, cutoff + 1], fine[:, cutoff + 1], rtol=1e-3)
    assert not np.allclose(coarse[0], coarse[1])  # samples differ


def test_taylor_green_initial_values():
    # K = U^2 / 8 = 0.5 and, every mode at |k| = sqrt 3, eps = 2 nu |k|^2 K = 6 nu K.
    ds = generate("turbulence3d", 1, 16, seed=0, times=[0.0, 0.5], initial="taylor-green", viscosity=0.02,
                  progress=False)
    assert float(ds.kinetic_energy[0, 0]) == pytest.approx(0.5, rel=1e-12)
    assert float(ds.dissipation[0, 0]) == pytest.approx(6 * 0.02 * 0.5, rel=1e-12)
    assert float(ds.reynolds[0]) == pytest.approx(math.sqrt(2 * 0.5 / 3) / (math.sqrt(3) * 0.02))


def test_per_sample_parameters_and_netcdf_round_trip(unstratified, tmp_path):
    from sciml.data import write

    nu = unstratified.viscosity.values
    assert np.all((nu >= 0.01) & (nu <= 0.04)) and nu[0] != nu[1]
    np.testing.assert_allclose(unstratified.reynolds.values, math.sqrt(2 * 0.5 / 3) / (2.0 * nu))
    np.testing.assert_array_equal(unstratified.inverse_froude.values, 0.0)
    # the same seed and sample index gives the same run whatever the split (to round-off: FFT sums depend on
    # the thread count, which the module fixture may not share with this test)
    part = generate("turbulence3d", 1, 16, seed=3, times=TIMES, first_sample=1, progress=False)
    np.testing.assert_allclose(part.dissipation.values[0], unstratified.dissipation.values[1], rtol=1e-10)
    assert int(part.sample[0]) == 1
    path = write(unstratified, tmp_path / "stats.nc")
    back = xr.load_dataset(path)
    xr.testing.assert_identical(back.kinetic_energy, unstratified.kinetic_energy)
    assert back.dissipation.attrs["units"] == "1" and "dissipation" in back.dissipation.attrs["long_name"]
    assert back.attrs["viscosity_range"].tolist() == [0.01, 0.04]


def test_fields_are_written_on_request():
    ds = generate("turbulence3d", 1, 16, seed=0, times=[0.0, 0.25], fields=True, progress=False)
    u, v, w = (ds[name].values[0, 0] for name in ("u", "v", "w"))
    assert ds.u.dims == ("sample", "time", "z", "y", "x")
    assert (u**2 + v**2 + w**2).mean() / 2 == pytest.approx(float(ds.kinetic_energy[0, 0]), rel=1e-10)


def test_unstable_time_step_is_one_line():
    with pytest.raises(SciMLError, match="above the stability bound") as info:
        generate("turbulence3d", 1, 16, seed=0, times=[0.0, 1.0], dt=1.0, progress=False)
    assert "\n" not in str(info.value)
    with pytest.raises(SciMLError) as info:
        generate("turbulence2d", 1, 32, seed=0, times=[0.0, 4.0], dt=2.0, progress=False)
    assert "\n" not in str(info.value)


def test_non_solenoidal_initial_velocity_is_one_line():
    # the recipes draw solenoidal fields; the solver's check refuses any other
    from sciml.solvers import navier_stokes3d as ns3

    eq = ns3.NavierStokes3D(viscosity=0.02)
    n = 16
    x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    state = torch.zeros(1, 3, n, n, n, dtype=torch.float64)
    state[0, 0] = torch.sin(x)[None, None, :]  # u = sin x: div u = cos x
    with pytest.raises(SolverError, match="not solenoidal") as info:
        ns3.integrate(eq, state, [0.0, 0.1])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("options,match", [
    ({"viscosity": (0.04, 0.01)}, "viscosity"),
    ({"viscosity": (0.0, 0.01)}, "log-uniformly"),
    ({"initial": "vortex"}, "initial"),
    ({"buoyancy_frequency": (0.0, 1.0)}, "stratified"),
])
def test_bad_options_are_one_line_config_errors(options, match):
    with pytest.raises(ConfigError, match=match) as info:
        generate("turbulence3d", 1, 16, seed=0, times=[0.0, 0.25], progress=False, **options)
    assert "\n" not in str(info.value)
