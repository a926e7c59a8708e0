"""A deep ensemble of statistics neural ODEs: independently seeded members trained through the same task and
``fit``; the prediction's geometric mean, spread and members; the spread is 0 at t = 0 and grows; the ensemble
mean is no worse than the average member on held-out runs; save/load; ``sciml node train --members``."""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import pytest
import torch
import xarray as xr

from sciml.errors import ConfigError, DataError
from sciml.node import (
    KEpsilonBaseline,
    StatisticsConfig,
    StatisticsEnsemble,
    StatisticsModel,
    decay_errors,
    fit_statistics_ensemble,
    interval_coverage,
    load_statistics_model,
    predict_statistics,
)
from sciml.train import TrainConfig

TIMES = np.linspace(0.0, 10.0, 21)


def k_epsilon_dataset(*, n: int, seed: int) -> xr.Dataset:
    """Decay curves of a k-epsilon model whose constant depends on Re (1.3 at Re 10 to 1.9 at Re 40), K_0 = 0.5,
    eps_0 in [0.05, 0.15] (as in tests/test_node_statistics.py): an analytic decay with a known answer."""
    rng = np.random.default_rng(seed)
    reynolds = np.exp(rng.uniform(np.log(10), np.log(40), n))
    k0, eps0 = np.full(n, 0.5), rng.uniform(0.05, 0.15, n)
    c = 1.3 + 0.6 * np.log(reynolds / 10.0) / np.log(4.0)
    k, eps = np.zeros((n, len(TIMES))), np.zeros((n, len(TIMES)))
    for i in range(n):
        k[i], eps[i] = (a[0] for a in KEpsilonBaseline(float(c[i])).predict(k0[i:i + 1], eps0[i:i + 1], TIMES[None]))
    return xr.Dataset({"kinetic_energy": (("sample", "time"), k, {"units": "1"}),
                       "dissipation": (("sample", "time"), eps, {"units": "1"})},
                      coords={"sample": np.arange(n), "time": TIMES, "reynolds": ("sample", reynolds),
                              "inverse_froude": ("sample", np.zeros(n))})


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ensemble():
    torch.set_num_threads(1)
    train = k_epsilon_dataset(n=8, seed=0)
    model, histories = fit_statistics_ensemble(
        train, members=3, config=StatisticsConfig(hidden=32, layers=2, step=0.2), irregular=0.6, seed=0,
        train_config=TrainConfig(epochs=30, batch_size=4, lr=1e-2, weight_decay=0.0, device="cpu", progress=False))
    held_out = k_epsilon_dataset(n=6, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some held-out runs lie just outside the trained Re range
        predicted = predict_statistics(model, held_out)
    return model, histories, held_out, predicted


def test_members_are_independently_seeded_fits_of_the_same_data(ensemble):
    model, histories, _, _ = ensemble
    assert isinstance(model, StatisticsEnsemble) and len(model.members) == 3 and len(histories) == 3
    assert all(h[-1]["train_loss"] < 0.2 * h[0]["train_loss"] for h in histories)  # every member trained
    first = model.members[0].module.state_dict()
    for member in model.members[1:]:  # the same normalisation and baselines, other weights
        state = member.module.state_dict()
        assert torch.equal(state["state_mean"], first["state_mean"]) and torch.equal(state["time_scale"],
                                                                                      first["time_scale"])
        assert not torch.allclose(state["net.0.weight"], first["net.0.weight"])
        assert member.k_epsilon == model.members[0].k_epsilon


def test_prediction_is_the_geometric_mean_with_the_spread_over_members(ensemble):
    model, _, held_out, predicted = ensemble
    assert predicted["dissipation_members"].dims == ("member", "sample", "time")
    assert predicted.sizes["member"] == 3 and predicted.attrs["ensemble_members"] == 3
    assert predicted["dissipation"].attrs["units"] == "1" and predicted["dissipation_spread"].attrs["units"] == "1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = np.stack([predict_statistics(m, held_out)["dissipation"].values for m in model.members])
    np.testing.assert_allclose(predicted["dissipation_members"].values, alone, rtol=1e-12)
    logs = np.log(alone)
    np.testing.assert_allclose(predicted["dissipation"].values, np.exp(logs.mean(axis=0)), rtol=1e-12)
    np.testing.assert_allclose(predicted["dissipation_spread"].values, logs.std(axis=0, ddof=1), rtol=1e-9, atol=1e-15)


def test_spread_is_zero_at_the_start_and_grows(ensemble):
    _, _, _, predicted = ensemble
    spread = predicted["dissipation_spread"].values  # (sample, time), nepers
    assert np.abs(spread[:, 0]).max() < 1e-6  # all members start from the same initial state
    assert (spread[:, 1:] > 0).all()
    mean = spread.mean(axis=0)
    assert mean[-1] > 3 * mean[1]  # grows over the decay
    assert mean[-1] < 0.1  # but the members agree to a few percent on these smooth decays


def test_ensemble_mean_is_no_worse_than_the_average_member_on_held_out_runs(ensemble):
    # the geometric mean can be worse than the average member when all members err on the same side (it is
    # below their arithmetic mean), so this can fail
    model, _, held_out, predicted = ensemble
    together = decay_errors(predicted, held_out)
    members = [decay_errors(predicted.assign(dissipation=predicted["dissipation_members"].isel(member=m)),
                            held_out)["node"] for m in range(len(model.members))]
    assert together["node"] <= np.mean(members), (together, members)
    assert together["node"] < 0.5 * together["k_epsilon"]
    coverage = interval_coverage(predicted, held_out)
    assert 0.0 <= coverage <= 1.0


def test_interval_coverage_by_hand():
    predicted = xr.Dataset({"dissipation": (("sample", "time"), np.ones((1, 3))),
                            "dissipation_spread": (("sample", "time"), np.array([[0.0, 0.1, 0.1]]))})
    truth = xr.Dataset({"dissipation": (("sample", "time"), np.exp([[0.0, 0.15, -0.25]]))})
    assert interval_coverage(predicted, truth) == 0.5  # |0.15| <= 2 * 0.1 inside, |-0.25| outside; t = 0 left out
    assert interval_coverage(predicted, truth, width=3.0) == 1.0
    with pytest.raises(DataError, match="no kinetic_energy_spread"):
        interval_coverage(predicted, truth, "kinetic_energy")


def test_save_load_round_trip(ensemble, tmp_path):
    model, _, held_out, predicted = ensemble
    path = model.save(tmp_path / "ensemble")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "node-statistics-ensemble" and len(manifest["members"]) == 3
    loaded = load_statistics_model(path)
    assert isinstance(loaded, StatisticsEnsemble)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xr.testing.assert_identical(predict_statistics(loaded, held_out), predicted)
    with pytest.raises(DataError, match="an ensemble of 3") as info:
        StatisticsModel.load(path)
    assert "\n" not in str(info.value)
    model.members[0].save(tmp_path / "single")
    assert isinstance(load_statistics_model(tmp_path / "single"), StatisticsModel)
    state = torch.load(path / "weights.pt", weights_only=True)
    state["1.net.0.weight"][0, 0] = float("nan")
    torch.save(state, path / "weights.pt")
    with pytest.raises(DataError, match="non-finite weights"):
        StatisticsEnsemble.load(path)


def test_bad_ensembles_are_one_line():
    with pytest.raises(ConfigError, match="members must be an integer >= 2"):
        fit_statistics_ensemble(k_epsilon_dataset(n=2, seed=0), members=1)
    with pytest.raises(ConfigError, match="at least 2"):
        StatisticsEnsemble(members=[])


def test_cli_train_members_and_predict_with_spread(tmp_path):
    from sciml.data import write
    from sciml.node import _cli

    data = write(k_epsilon_dataset(n=4, seed=0), tmp_path / "stats.nc")
    parser = argparse.ArgumentParser()
    _cli.add_parser(parser.add_subparsers(dest="command"))
    _cli.run(parser.parse_args(["node", "train", "--data", str(data), "--out", str(tmp_path / "model"), "--epochs", "2",
                                "--hidden", "8", "--members", "2", "--no-progress"]), "sciml node train ...")
    assert len(json.loads((tmp_path / "model" / "history.json").read_text())) == 2  # one history per member
    _cli.run(parser.parse_args(["node", "predict", str(tmp_path / "model"), "--data", str(data), "--out",
                                str(tmp_path / "pred.nc"), "--figure", str(tmp_path / "pred.png"), "--json",
                                str(tmp_path / "errors.json")]), "sciml node predict ...")
    predicted = xr.load_dataset(tmp_path / "pred.nc")
    assert predicted["dissipation_members"].dims == ("member", "sample", "time")
    assert float(np.abs(predicted["dissipation_spread"].isel(time=0)).max()) < 1e-6
    errors = json.loads((tmp_path / "errors.json").read_text())["dissipation"]
    assert len(errors["members"]) == 2 and 0 <= errors["interval_coverage_2sigma"] <= 1
    truth = xr.load_dataset(data)
    member = predicted.assign(dissipation=predicted["dissipation_members"].isel(member=1))
    assert errors["members"][1] == pytest.approx(decay_errors(member, truth)["node"], rel=1e-12)
    assert errors["interval_coverage_2sigma"] == pytest.approx(interval_coverage(predicted, truth), rel=1e-12)
    assert (tmp_path / "pred.png").stat().st_size > 10_000
    _cli.run(parser.parse_args(["node", "train", "--data", str(data), "--out", str(tmp_path / "calibrated"),
                                "--epochs", "2", "--hidden", "8", "--members", "2", "--no-progress", "--calibrate",
                                str(write(k_epsilon_dataset(n=3, seed=5), tmp_path / "cal.nc"))]), "")
    assert set(load_statistics_model(tmp_path / "calibrated").spread_scale) == {"kinetic_energy", "dissipation"}
    with pytest.raises(ConfigError, match="--calibrate scales an ensemble"):
        _cli.run(parser.parse_args(["node", "train", "--data", str(data), "--out", str(tmp_path / "m3"),
                                    "--calibrate", str(data)]), "")
    with pytest.raises(ConfigError, match="--members must be >= 1"):
        _cli.run(parser.parse_args(["node", "train", "--data", str(data), "--out", str(tmp_path / "m2"),
                                    "--members", "0"]), "")


def test_calibrate_scales_the_spread_to_the_asked_coverage(ensemble, tmp_path):
    model, _, held_out, predicted = ensemble
    calibration = k_epsilon_dataset(n=6, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = model.calibrate(calibration, coverage=0.9)
        on_calibration = predict_statistics(calibrated, calibration)
        on_held_out = predict_statistics(calibrated, held_out)
    scale = calibrated.spread_scale["dissipation"]
    assert scale > 0 and model.spread_scale == {}  # a copy; the original keeps its raw spread
    np.testing.assert_allclose(on_held_out["dissipation_spread"].values, scale * predicted["dissipation_spread"].values,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(on_held_out["dissipation"].values, predicted["dissipation"].values, rtol=1e-12)
    count = on_calibration.sizes["sample"] * (on_calibration.sizes["time"] - 1)
    coverage = interval_coverage(on_calibration, calibration)  # the 0.9 quantile ("higher"): at least 0.9
    assert 0.9 <= coverage < 0.9 + 2 / count, coverage
    calibrated.save(tmp_path / "calibrated")
    assert load_statistics_model(tmp_path / "calibrated").spread_scale == pytest.approx(calibrated.spread_scale)
    with pytest.raises(ConfigError, match="coverage must be in"):
        model.calibrate(calibration, coverage=1.5)
