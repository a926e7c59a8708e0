"""The statistics neural ODE: it learns a known analytic decay, the baselines recover known constants,
irregular times, save/load, the CLI and bad input in one line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import xarray as xr

from sciml.errors import DataError
from sciml.node import (
    KEpsilonBaseline,
    PowerLawBaseline,
    StatisticsConfig,
    StatisticsModel,
    StatisticsODE,
    decay_errors,
    fit_statistics_model,
    predict_statistics,
    trajectories_from_dataset,
)
from sciml.train import TrainConfig

TIMES = np.linspace(0.0, 10.0, 21)


def k_epsilon_dataset(c, *, n: int = 8, seed: int = 0, times=TIMES) -> xr.Dataset:
    """Decay curves of the k-epsilon model itself with constant ``c`` (one, one per run, or a function of the
    Reynolds number), K_0 = 0.5 and eps_0 in [0.05, 0.15], Re in [10, 40] log-spaced: an analytic decay
    with a known answer."""
    rng = np.random.default_rng(seed)
    reynolds = np.exp(rng.uniform(np.log(10), np.log(40), n))
    k0, eps0 = np.full(n, 0.5), rng.uniform(0.05, 0.15, n)
    c = np.broadcast_to(np.asarray(c(reynolds) if callable(c) else c, dtype=np.float64), (n,))
    k, eps = np.zeros((n, len(times))), np.zeros((n, len(times)))
    for i in range(n):
        k[i], eps[i] = (a[0] for a in KEpsilonBaseline(float(c[i])).predict(k0[i:i + 1], eps0[i:i + 1], times[None]))
    return xr.Dataset({"kinetic_energy": (("sample", "time"), k, {"units": "1"}),
                       "dissipation": (("sample", "time"), eps, {"units": "1"})},
                      coords={"sample": np.arange(n), "time": times, "reynolds": ("sample", reynolds),
                              "inverse_froude": ("sample", np.zeros(n))})


QUICK = TrainConfig(epochs=200, batch_size=8, lr=1e-2, weight_decay=0.0, device="cpu", progress=False)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # a tiny network: one thread is fastest, and safe on a loaded machine


def c_of_reynolds(reynolds):
    """A decay constant that depends on Re (1.3 at Re = 10 to 1.9 at Re = 40): no single C fits every run."""
    return 1.3 + 0.6 * np.log(np.asarray(reynolds) / 10.0) / np.log(4.0)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    ds = k_epsilon_dataset(c_of_reynolds, n=8)
    model, history = fit_statistics_model(ds, config=StatisticsConfig(hidden=32, layers=2, step=0.2),
                                          train_config=QUICK, irregular=0.6, seed=0)
    return ds, model, history


def test_k_epsilon_fit_recovers_the_constant():
    ds = k_epsilon_dataset(1.75, n=6)
    fitted = KEpsilonBaseline.fit(trajectories_from_dataset(ds))
    assert fitted.c_eps2 == pytest.approx(1.75, abs=1e-5)


def test_power_law_fit_recovers_exponent_and_origin():
    n, t0 = 1.3, 2.5
    ratio = 1 + TIMES / t0
    k = 0.5 * ratio[None] ** -n * np.array([[1.0], [0.8], [1.2]])
    eps = n * k / (t0 * ratio[None])
    ds = xr.Dataset({"kinetic_energy": (("sample", "time"), k), "dissipation": (("sample", "time"), eps)},
                    coords={"time": TIMES, "reynolds": ("sample", [10.0, 20.0, 30.0])})
    fitted = PowerLawBaseline.fit(trajectories_from_dataset(ds))
    assert fitted.exponent == pytest.approx(n, rel=1e-5) and fitted.origin == pytest.approx(t0, rel=1e-5)
    k_hat, eps_hat = fitted.predict(k[:, 0], eps[:, 0], np.broadcast_to(TIMES, k.shape))
    np.testing.assert_allclose(eps_hat, eps, rtol=1e-4)


def test_node_learns_an_analytic_decay(trained):
    # Data of the k-epsilon model whose constant depends on Re (1.3 to 1.9): the calibrated one-constant
    # k-epsilon model cannot follow every run, the neural ODE (the exact K budget plus a learned correction
    # to that k-epsilon eps equation) learns C(Re). Held-out runs (other eps_0 and Re) from their initial state.
    ds, model, history = trained
    held_out = k_epsilon_dataset(c_of_reynolds, n=4, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two held-out runs lie just above the trained Re range
        errors = decay_errors(predict_statistics(model, held_out), held_out)
    assert errors["node"] < 0.5 * errors["k_epsilon"], errors
    assert errors["node"] < 0.03, errors
    assert history[-1]["train_loss"] < 0.1 * history[0]["train_loss"]
    assert 1.3 < model.k_epsilon.c_eps2 < 1.9  # one constant between the runs' own


def test_the_kinetic_energy_budget_is_exact_and_k_never_grows(trained):
    # dK/dt = -eps holds for the prediction itself (trapezoidal rule on a fine output grid), so K decreases
    _, model, _ = trained
    times = np.linspace(0.0, 30.0, 601)  # three times the trained span: K must still fall
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict_statistics(model, {"kinetic_energy": [0.5, 0.4], "dissipation": [0.1, 0.06],
                                         "reynolds": [15.0, 30.0]}, times, baselines=False)
    k, eps = out["kinetic_energy"].values, out["dissipation"].values
    assert (np.diff(k, axis=1) < 0).all()
    budget = np.diff(k, axis=1) + 0.5 * (eps[:, 1:] + eps[:, :-1]) * np.diff(times)
    assert np.abs(budget).max() < 1e-3 * k[:, 0].min()


def test_irregular_times_match_separate_solves():
    # one solve on the union of the times, each trajectory read at its own == each solved alone
    torch.manual_seed(0)
    module = StatisticsODE(2, 2, config=StatisticsConfig(hidden=16, method="dopri5", rtol=1e-9, atol=1e-10)).double()
    z0, p = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    tau = torch.tensor([[0.0, 0.3, 1.1, 2.0], [0.0, 0.7, 0.9, 0.9], [0.0, 1.5, 1.5, 1.5]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    together = module.integrate_irregular(z0, p, tau, mask)
    for i in range(3):
        alone = module.integrate(z0[i:i + 1], p[i:i + 1], tau[i, mask[i]])[:, 0]
        torch.testing.assert_close(together[i, mask[i]], alone, atol=1e-7, rtol=1e-7)


def test_rk4_with_interpolation_matches_dopri5():
    torch.manual_seed(1)
    # the integrators on a generic right-hand side (no imposed budget, whose eps / K can be stiff for random z0)
    rk4 = StatisticsODE(2, 2, config=StatisticsConfig(hidden=16, method="rk4", step=0.05, energy_budget=False)).double()
    dopri = StatisticsODE(2, 2, config=StatisticsConfig(hidden=16, method="dopri5", rtol=1e-10, atol=1e-12,
                                                        energy_budget=False)).double()
    dopri.load_state_dict(rk4.state_dict())
    z0, p = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    tau = torch.tensor([0.0, 0.013, 0.4, 0.77, 1.0], dtype=torch.float64)  # off the rk4 grid
    torch.testing.assert_close(rk4.integrate(z0, p, tau), dopri.integrate(z0, p, tau), atol=2e-6, rtol=0)


def test_trajectories_irregular_keeps_the_start_and_differs_per_run():
    data = trajectories_from_dataset(k_epsilon_dataset(1.6, n=4)).irregular(0.5, seed=0)
    assert bool(data.mask[:, 0].all()) and torch.all(data.times[:, 0] == 0)
    assert int(data.mask.sum(dim=1)[0]) == 1 + 10
    kept = [tuple(data.times[i, data.mask[i]].tolist()) for i in range(4)]
    assert len(set(kept)) == 4
    assert all(np.all(np.diff(k) > 0) for k in kept)


def test_save_load_round_trip(trained, tmp_path):
    ds, model, _ = trained
    path = model.save(tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["variables"] == ["kinetic_energy", "dissipation"]
    assert manifest["k_epsilon"]["c_eps2"] == pytest.approx(model.k_epsilon.c_eps2)
    assert set(torch.load(path / "weights.pt", weights_only=True)) >= {"state_mean", "time_scale"}
    loaded = StatisticsModel.load(path)
    xr.testing.assert_identical(predict_statistics(loaded, ds), predict_statistics(model, ds))
    (path / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="unreadable weights"):
        StatisticsModel.load(path)


def test_predict_from_values_with_units(trained):
    ds, model, _ = trained
    out = predict_statistics(model, {"kinetic_energy": 0.5, "dissipation": 0.1, "reynolds": 20.0}, [0.0, 1.0, 5.0])
    assert out.dissipation.dims == ("sample", "time") and out.dissipation.attrs["units"] == "1"
    assert float(out.kinetic_energy[0, 0]) == pytest.approx(0.5, rel=1e-5)
    assert float(out.reynolds[0]) == 20.0
    initial, times = (np.array([0.5]), np.array([0.1])), np.array([[0.0, 1.0, 5.0]])
    calibrated = KEpsilonBaseline(model.k_epsilon.c_eps2).predict(*initial, times)[1][0]
    np.testing.assert_allclose(out.dissipation_k_epsilon.values[0], calibrated, rtol=1e-3)
    truth = KEpsilonBaseline(float(c_of_reynolds(20.0))).predict(*initial, times)[1][0]  # the data's own C at Re 20
    np.testing.assert_allclose(out.dissipation.values[0], truth, rtol=0.05)


def _bad(ds: xr.Dataset, name: str, index: tuple[int, int], value: float) -> xr.Dataset:
    bad = ds.copy(deep=True)
    bad[name].values[index] = value
    return bad


@pytest.mark.parametrize("mutate,match", [
    (lambda ds: ds.assign_coords(time=ds.time.values[::-1].copy()), "strictly increasing"),
    (lambda ds: ds.assign_coords(time=np.r_[0.0, 0.0, ds.time.values[2:]]), "strictly increasing"),
    (lambda ds: _bad(ds, "kinetic_energy", (1, 3), -0.1), "must be positive"),
    (lambda ds: _bad(ds, "dissipation", (0, 5), np.nan), "not finite"),
])
def test_bad_statistics_are_one_line(mutate, match, trained):
    ds, model, _ = trained
    bad = mutate(ds)
    for call in (lambda: trajectories_from_dataset(bad), lambda: predict_statistics(model, bad)):
        with pytest.raises(DataError, match=match) as info:
            call()
        assert "\n" not in str(info.value)


def test_parameters_outside_the_trained_range_warn_with_the_range(trained):
    ds, model, _ = trained
    low, high = model.parameter_range["reynolds"]
    with pytest.warns(UserWarning, match=rf"reynolds 80 .*outside the trained range \[{low:.4g}, {high:.4g}\]"):
        predict_statistics(model, {"kinetic_energy": 0.5, "dissipation": 0.1, "reynolds": 80.0}, [0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_statistics(model, ds)  # the training runs themselves: no warning


def test_cli_train_and_predict(tmp_path):
    from sciml.data import write
    from sciml.node import _cli

    data = write(k_epsilon_dataset(1.6, n=4), tmp_path / "stats.nc")
    parser = argparse.ArgumentParser()
    _cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["node", "train", "--data", str(data), "--out", str(tmp_path / "model"), "--epochs", "3",
                              "--hidden", "8", "--no-progress", "--figure", str(tmp_path / "train.png")])
    _cli.run(args, "sciml node train ...")
    assert (tmp_path / "model" / "manifest.json").is_file() and (tmp_path / "train.png").stat().st_size > 10_000
    args = parser.parse_args(["node", "predict", str(tmp_path / "model"), "--data", str(data), "--out",
                              str(tmp_path / "pred.nc"), "--figure", str(tmp_path / "pred.png"), "--json",
                              str(tmp_path / "errors.json")])
    _cli.run(args, "sciml node predict ...")
    predicted = xr.load_dataset(tmp_path / "pred.nc")
    assert {"dissipation", "dissipation_k_epsilon", "dissipation_power_law"} <= set(predicted.data_vars)
    errors = json.loads((tmp_path / "errors.json").read_text())
    assert errors["dissipation"]["k_epsilon"] < 1e-4  # the k-epsilon data's own model
    assert (tmp_path / "pred.png").is_file()
    with pytest.raises(DataError, match="not empty"):
        _cli.run(parser.parse_args(["node", "train", "--data", str(data), "--out", str(tmp_path / "model")]), "")


def test_import_is_light():
    code = ("import sys, sciml.node; bad = [m for m in ('xarray', 'torchdiffeq', 'scipy', 'matplotlib') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stratified_runs_evolve_the_potential_energy_too():
    # a stratified set (potential_energy present) gives a 3-component state; 1/Fr conditions the model and
    # its trained range is checked like Re's
    ds = k_epsilon_dataset(1.6, n=4)
    ds["potential_energy"] = 0.1 * ds.kinetic_energy * np.exp(-0.05 * ds.time)
    ds = ds.assign_coords(inverse_froude=("sample", [0.5, 1.0, 1.5, 2.0]))
    model, _ = fit_statistics_model(ds, train_config=TrainConfig(epochs=2, batch_size=4, device="cpu",
                                                                 progress=False))
    assert model.variables == ("kinetic_energy", "dissipation", "potential_energy")
    assert model.parameter_range["inverse_froude"] == [0.5, 2.0]
    out = predict_statistics(model, ds)
    assert out.potential_energy.dims == ("sample", "time")
    np.testing.assert_allclose(out.potential_energy.values[:, 0], ds.potential_energy.values[:, 0], rtol=1e-5)
    with pytest.warns(UserWarning, match=r"inverse_froude 4 of 1 run\(s\) is outside the trained range \[0.5, 2\]"):
        predict_statistics(model, {"kinetic_energy": 0.5, "dissipation": 0.1, "potential_energy": 0.05,
                                   "reynolds": 20.0, "inverse_froude": 4.0}, [0.0, 1.0])
    with pytest.raises(DataError, match="lacks potential_energy"):
        predict_statistics(model, {"kinetic_energy": 0.5, "dissipation": 0.1, "reynolds": 20.0}, [0.0, 1.0])
