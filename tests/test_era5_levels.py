"""ERA5-layout files end to end: pressure levels become channels (stack_levels), a forecaster trains on them,
its forecast goes back onto the level dim (unstack_levels) and is scored per level; a level dim the
operators would read at one index only is refused."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sciml import DataError, data
from sciml.data import stack_levels, unstack_levels
from sciml.forecast import fit_forecaster, forecast
from sciml.forecast.scores import rmse
from sciml.surrogate import fit_surrogate
from sciml.train import TrainConfig

LEVELS = np.array([500.0, 850.0])


def era5_with_levels(n_times: int = 10) -> xr.Dataset:
    """Temperature and eastward wind on two pressure levels as the CDS writes them (valid_time, pressure_level,
    descending latitude), 16 x 32, 6-hourly: a pattern travelling east whose amplitude depends on the level."""
    times = pd.date_range("2020-01-01", periods=n_times, freq="6h")
    lat, lon = np.linspace(90.0, -90.0, 16), np.arange(32) * 11.25
    hours = np.arange(n_times)[:, None, None, None]
    wave = np.cos(np.deg2rad(lat))[None, None, :, None] * (1 + 0.3 * np.sin(np.deg2rad(lon)[None, None, None, :] - 0.3 * hours))
    level = LEVELS[None, :, None, None] / 1000
    dims = ("valid_time", "pressure_level", "latitude", "longitude")
    return xr.Dataset(
        {"t": (dims, (250 + 20 * wave * (1 + level)).astype(np.float32), {"units": "K", "long_name": "temperature"}),
         "u": (dims, (20 * wave * level).astype(np.float32), {"units": "m s**-1", "long_name": "eastward wind"})},
        coords={"valid_time": times, "pressure_level": ("pressure_level", LEVELS, {"units": "hPa"}),
                "latitude": ("latitude", lat, {"units": "degrees_north"}),
                "longitude": ("longitude", lon, {"units": "degrees_east"})})


@pytest.fixture(scope="module")
def era5(tmp_path_factory):
    path = tmp_path_factory.mktemp("era5_levels") / "era5.nc"
    era5_with_levels().to_netcdf(path)
    return data.open(path)


def test_stack_levels_names_a_channel_per_level_and_unstack_restores_the_dataset_exactly(era5):
    flat = stack_levels(era5)
    assert sorted(flat.data_vars) == ["t500", "t850", "u500", "u850"]
    assert "level" not in flat.dims and flat["t850"].dims == ("sample", "time", "lat", "lon")
    np.testing.assert_array_equal(flat["u850"].values, era5["u"].sel(level=850.0).values)
    assert flat["t500"].attrs["units"] == "K" and flat["t500"].attrs["sciml_level"] == 500.0
    assert "stacked level into channels (t -> t500, t850)" in flat.attrs["sciml_normalisation"]
    assert "stacked" not in era5.attrs["sciml_normalisation"]  # the input's attrs are not changed
    back = unstack_levels(flat)
    assert back["t"].dims == era5["t"].dims
    xr.testing.assert_identical(back[["t", "u"]].drop_attrs(deep=False), era5[["t", "u"]].drop_attrs(deep=False))
    assert back["level"].attrs == {"units": "hPa"} and back["t"].attrs == era5["t"].attrs


def test_a_level_dim_is_refused_by_training_instead_of_read_at_its_first_level(era5):
    with pytest.raises(DataError) as info:
        fit_surrogate(era5, inputs=["t", "u"], outputs=["t", "u"], lag=1, model="sfno",
                      config=TrainConfig(epochs=1, device="cpu", progress=False))
    message = str(info.value)
    assert "\n" not in message and "'level' (2 values)" in message and "stack_levels" in message


def test_bad_stacking_requests_are_one_line_errors(era5):
    for kwargs, words in (({"dim": "lat"}, "spatial dim"), ({"dim": "member"}, "no 'member' dim"),
                          ({"variables": ["q"]}, "no variable 'q'")):
        with pytest.raises(DataError, match=words):
            stack_levels(era5, **kwargs)
    clash = era5.assign(t500=era5["t"].isel(level=0, drop=True))
    with pytest.raises(DataError, match="'t500', a name already taken"):
        stack_levels(clash, variables=["t"])


def test_a_forecaster_on_stacked_levels_forecasts_onto_the_level_dim_and_scores_per_level(era5):
    flat = stack_levels(era5)
    variables = list(flat.data_vars)
    model, stages = fit_forecaster(flat, variables=variables, model="sfno",
                                   model_options={"hidden_channels": 8, "n_layers": 1},
                                   pretrain=TrainConfig(epochs=2, batch_size=4, device="cpu", progress=False),
                                   curriculum=())
    assert model.inputs == variables and len(stages[1]) == 2
    fc_flat = forecast(model, flat.isel(time=[0, 2]), steps=3)
    fc = unstack_levels(fc_flat)
    assert fc["t"].dims == ("sample", "time", "lead_time", "level", "lat", "lon")
    np.testing.assert_array_equal(fc["level"].values, LEVELS)
    np.testing.assert_array_equal(fc["u"].sel(level=850.0).values, fc_flat["u850"].values)
    assert fc["valid_time"].values[1, 0] == np.datetime64("2020-01-01T18:00")
    per_level = rmse(fc, era5)
    per_channel = rmse(fc_flat, flat)
    assert per_level["t"].dims == ("lead_time", "level")
    for name in variables:
        np.testing.assert_allclose(per_level[name[0]].sel(level=float(name[1:])).values, per_channel[name].values,
                                   rtol=1e-6)
    assert np.isfinite(per_level["t"].values).all() and (per_level["t"] > 0).all()
