"""Shallow water on the sphere: conservation over a Galewsky run, CF layout, stability guard."""

import warnings

import numpy as np
import pytest

from sciml import SolverError
from sciml.solvers.shallow_water import _solver, invariants, solve


def test_galewsky_run_conserves_mass_and_energy():
    solver = _solver(64, 128, 150.0, "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.meshgrid indexing notice inside torch-harmonics
        uspec = solver.galewsky_initial_condition()
    mass0, energy0 = invariants(solver, uspec)
    uspec = solver.timestep(uspec, 6 * 3600 // 150)
    mass1, energy1 = invariants(solver, uspec)
    assert abs(mass1 - mass0) / mass0 < 1e-12  # flux form: the l = 0 mode of d(phi)/dt vanishes exactly
    # measured -5.7e-5 over 6 h (implicit hyperdiffusion dissipates a little)
    assert abs(energy1 - energy0) / energy0 < 2e-4


def test_solve_writes_ascending_latitude_and_physical_units():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = solve(1, 33, 64, times_hours=[0.0, 1.0], dt=150.0, progress=False)
    assert ds["height"].dims == ("sample", "time", "lat", "lon")
    assert np.all(np.diff(ds["lat"].values) > 0) and ds["lat"].values[0] == pytest.approx(-90.0)
    assert ds["lat"].attrs["units"] == "degrees_north" and ds["eastward_velocity"].attrs["units"] == "m s-1"
    # Galewsky: a 10 km layer, jet of 80 m/s in the northern mid-latitudes
    assert 9.0e3 < float(ds["height"].mean()) < 11.0e3
    jet = ds["eastward_velocity"].isel(sample=0, time=0).max("lon")
    assert float(jet.idxmax()) > 20.0 and float(jet.max()) == pytest.approx(80.0, rel=0.1)


def test_unstable_time_step_is_refused():
    with pytest.raises(SolverError, match=r"dt=600 s violates the gravity-wave stability bound; use dt <= \d+ s"):
        solve(1, 64, 128, times_hours=[1.0], dt=600.0, progress=False)
    with pytest.raises(SolverError, match=r"n_samples must be an integer >= 1, got 0"):
        solve(0, 16, 32, times_hours=[1.0], progress=False)


def test_a_missing_torch_harmonics_is_named_with_the_fix(monkeypatch):
    import sys

    from sciml.models import build

    monkeypatch.setitem(sys.modules, "torch_harmonics", None)  # import fails as where the wheel does not load
    with pytest.raises(ImportError, match="the shallow-water solver needs torch-harmonics 0.9.3.*torch-harmonics==0.9.3"):
        solve(1, 16, 32, times_hours=[0.5], progress=False)
    with pytest.raises(ImportError, match="the sfno model needs torch-harmonics"):
        build("sfno", in_channels=1, out_channels=1, lmax=4)
