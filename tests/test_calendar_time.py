"""Calendar time through train, predict, evaluate and the manifest: an ERA5-style 6-hourly file keeps a 6 h
lead time; predictions carry lead_time as a timedelta and a valid_time coordinate; float and calendar time
never mix silently."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sciml import ConfigError, DataError, Surrogate, data
from sciml.evaluation import evaluate
from sciml.surrogate import fit_surrogate
from sciml.train import TrainConfig

SFNO = {"hidden_channels": 8, "n_layers": 1}
CONFIG = TrainConfig(epochs=2, batch_size=4, device="cpu", progress=False)


def era5_like(times) -> xr.Dataset:
    """2 m temperature on a 16 x 32 equiangular grid as the CDS writes it: valid_time, descending latitude."""
    lat = np.linspace(90.0, -90.0, 16)
    lon = np.arange(32) * 11.25
    hours = np.arange(len(times))[:, None, None]
    phase = np.deg2rad(lon)[None, None, :] - 0.3 * hours  # a pattern travelling east
    t2m = 280.0 + 10.0 * np.cos(np.deg2rad(lat))[None, :, None] * (1 + 0.3 * np.sin(phase))
    return xr.Dataset({"t2m": (("valid_time", "latitude", "longitude"), t2m.astype(np.float32),
                               {"units": "K", "long_name": "2 metre temperature"})},
                      coords={"valid_time": times, "latitude": ("latitude", lat, {"units": "degrees_north"}),
                              "longitude": ("longitude", lon, {"units": "degrees_east"})})


@pytest.fixture(scope="module")
def era5(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("era5")
    path = tmp / "era5.nc"
    era5_like(pd.date_range("2020-01-01", periods=12, freq="6h")).to_netcdf(path)
    ds = data.open(path)
    surrogate, history = fit_surrogate(ds, inputs=["t2m"], outputs=["t2m"], lag=1, model="sfno", model_options=SFNO,
                                       config=CONFIG)
    return tmp, path, ds, surrogate


def test_an_era5_file_keeps_its_six_hour_lead_time_through_training_and_the_manifest(era5, tmp_path):
    _, _, ds, surrogate = era5
    assert ds["time"].dtype.kind == "M" and "renamed valid_time->time" in ds.attrs["sciml_normalisation"]
    assert surrogate.lead_time == pd.Timedelta(hours=6) and surrogate.time_units is None
    surrogate.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["lead_time"] == {"kind": "timedelta", "seconds": 21600.0}
    assert Surrogate.load(tmp_path / "run").lead_time == pd.Timedelta(hours=6)


def test_predictions_carry_timedelta_lead_times_and_valid_times_and_round_trip(era5, tmp_path):
    _, _, ds, surrogate = era5
    rollout = surrogate.predict(ds.isel(time=[0, 4]), steps=2)
    assert rollout["t2m"].dims == ("sample", "time", "lead_time", "lat", "lon")
    assert rollout["lead_time"].dtype.kind == "m"
    np.testing.assert_array_equal(rollout["lead_time"].values, np.array([6, 12], dtype="timedelta64[h]"))
    assert rollout["valid_time"].dims == ("time", "lead_time")
    np.testing.assert_array_equal(rollout["valid_time"].values[1], np.array(["2020-01-02T06", "2020-01-02T12"],
                                                                            dtype="datetime64[ns]"))
    assert rollout["t2m"].attrs["units"] == "K"
    path = data.write(rollout, tmp_path / "rollout.nc")
    xr.testing.assert_identical(data.open(path), rollout.assign_attrs(Conventions="CF-1.10"))  # added on write
    one = surrogate.predict(ds.isel(time=[3]))  # the same convention for one step: initial time + lead time
    assert one["time"].values[0] == np.datetime64("2020-01-01T18") and one["lead_time"].values == np.timedelta64(6, "h")
    assert one["valid_time"].values[0] == np.datetime64("2020-01-02T00")
    xr.testing.assert_identical(data.open(data.write(one, tmp_path / "one.nc")), one.assign_attrs(Conventions="CF-1.10"))


def test_evaluate_finds_the_lag_in_calendar_time(era5, tmp_path):
    tmp, _, ds, surrogate = era5
    result = evaluate(surrogate, ds)
    assert 0 < result["rel_l2"]["t2m"] < 1 and result["grid"] == "latlon"
    hourly = era5_like(pd.date_range("2020-01-01", periods=13, freq="3h"))  # 3-hourly: the lead is 2 steps
    hourly.to_netcdf(tmp / "three_hourly.nc")
    three = data.open(tmp / "three_hourly.nc")
    assert evaluate(surrogate, three)["rel_l2"]["t2m"] > 0
    odd = era5_like(pd.date_range("2020-01-01", periods=8, freq="4h"))
    odd.to_netcdf(tmp / "four_hourly.nc")
    with pytest.raises(DataError, match="lead time 6 h is not a whole number of time steps"):
        evaluate(surrogate, data.open(tmp / "four_hourly.nc"))


def test_float_and_calendar_time_never_mix_silently(era5, tmp_path):
    _, _, ds, surrogate = era5
    hours = ds.assign_coords(time=("time", np.arange(ds.sizes["time"]) * 6.0, {"units": "hours"}))
    with pytest.raises(DataError, match=r"holds float times \(units 'hours'\) but the lead time 6 h is a timedelta"):
        surrogate.predict(hours)
    float_surrogate, _ = fit_surrogate(hours, inputs=["t2m"], outputs=["t2m"], lag=1, model="sfno", model_options=SFNO,
                                       config=CONFIG)
    assert float_surrogate.lead_time == 6.0 and float_surrogate.time_units == "hours"
    with pytest.raises(DataError, match="holds datetime64 dates but the lead time 6 hours is a float"):
        float_surrogate.predict(ds)
    with pytest.raises(DataError, match="holds datetime64 dates but the lead time 6 hours is a float"):
        fit_surrogate(hours, inputs=["t2m"], outputs=["t2m"], lag=1, validation=ds, model="sfno", model_options=SFNO,
                      config=CONFIG)
    noleap = ds.assign_coords(time=xr.date_range("2001-02-27", periods=ds.sizes["time"], freq="6h", calendar="noleap",
                                                 use_cftime=True))
    rollout = surrogate.predict(noleap.isel(time=[7]), steps=1)  # 2001-02-28T18 + 6 h is 2001-03-01 (no Feb 29)
    assert str(rollout["valid_time"].values[0, 0]) == "2001-03-01 00:00:00"
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        surrogate.predict(ds, steps=0)
