"""sciml.data.times: float, datetime64 and cftime time coordinates and lead times, through write/open."""

import datetime
import json
import re

import cftime
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sciml import DataError, data
from sciml.data import times

H6, H12 = pd.Timedelta(hours=6), pd.Timedelta(hours=12)


def _dataset(time, *, time_attrs=None):
    """A canonical ERA5-like dataset: one field over (sample, time, lat, lon), CF attributes."""
    n = len(time)
    field = np.arange(n * 3 * 4, dtype=np.float32).reshape(1, n, 3, 4)
    return xr.Dataset(
        {"t2m": (("sample", "time", "lat", "lon"), field, {"units": "K", "long_name": "2 metre temperature"})},
        coords={"sample": np.arange(1), "time": ("time", time, time_attrs or {}),
                "lat": ("lat", np.array([-30.0, 0.0, 30.0]), {"units": "degrees_north"}),
                "lon": ("lon", np.arange(4) * 90.0, {"units": "degrees_east"})},
        attrs={"Conventions": "CF-1.10"},
    )


def _round_trip(ds, path):
    return data.open(data.write(ds, path))


def _with_leads(ds, lead, steps, units=None):
    lead_coord = times.lead_time_coord(lead, steps, units=units)
    valid = times.valid_time_coord(ds["time"], lead_coord, source="test")
    return ds.assign_coords(lead_time=lead_coord, valid_time=valid)


# ------------------------------------------------------------------ datetime64 (ERA5-style, 6-hourly)
def test_era5_six_hourly_file_keeps_datetime64_and_a_six_hour_step(tmp_path):
    ds = _round_trip(_dataset(pd.date_range("2020-01-01", periods=8, freq="6h")), tmp_path / "era5.nc")
    coord = ds["time"]
    assert coord.dtype.kind == "M" and times.time_kind(coord, source="f") == "datetime64"
    step = times.uniform_step(coord, source="f")
    assert isinstance(step, pd.Timedelta) and step == H6 and step.value == 6 * 3600 * 10**9
    assert times.lag_for(coord, H12, source="f") == 2
    assert times.lag_for(coord, np.timedelta64(12, "h"), source="f") == 2
    assert times.lag_for(coord, datetime.timedelta(days=1), source="f") == 4
    assert times.time_units(coord, source="f") is None
    shifted = times.shift(coord, H6, source="f")
    expected = np.array(["2020-01-01T06", "2020-01-01T12", "2020-01-01T18", "2020-01-02T00",
                         "2020-01-02T06", "2020-01-02T12", "2020-01-02T18", "2020-01-03T00"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(shifted.values, expected)
    assert shifted.dims == ("time",) and shifted.name == "time"


def test_datetime64_lead_and_valid_time_are_exact_and_round_trip(tmp_path):
    ds = _dataset(pd.date_range("2020-01-01", periods=8, freq="6h"))
    lead = times.lead_time_coord(H6, 3)
    assert lead.dtype == np.dtype("timedelta64[ns]") and "units" not in lead.attrs
    np.testing.assert_array_equal(lead.values, np.array([6, 12, 18], dtype="timedelta64[h]"))
    valid = times.valid_time_coord(ds["time"], lead, source="test")
    assert valid.dims == ("time", "lead_time") and valid.shape == (8, 3)
    assert valid.values[0, 0] == np.datetime64("2020-01-01T06:00")
    assert valid.values[7, 2] == np.datetime64("2020-01-03T12:00")  # 2020-01-02T18 + 18 h
    np.testing.assert_array_equal(valid.values, ds["time"].values[:, None] + lead.values[None, :])
    full = ds.assign_coords(lead_time=lead, valid_time=valid)
    back = _round_trip(full, tmp_path / "pred.nc")
    xr.testing.assert_identical(back, full)
    assert back["lead_time"].dtype.kind == "m" and back["valid_time"].dtype.kind == "M"
    with netCDF4.Dataset(tmp_path / "pred.nc") as f:  # xarray's encoder gives CF units on disk
        assert f["lead_time"].units == "hours" and f["valid_time"].units.startswith("hours since")


def test_shift_keeps_attrs_but_drops_those_describing_the_old_values():
    coord = xr.DataArray(pd.date_range("2020-01-01", periods=3, freq="6h"), dims="time", name="time",
                         attrs={"standard_name": "time", "bounds": "time_bnds", "actual_range": [0, 12]})
    shifted = times.shift(coord, H6, source="f")
    assert shifted.attrs == {"standard_name": "time"}
    assert shifted.values[-1] == np.datetime64("2020-01-01T18:00")


# ------------------------------------------------------------------ cftime noleap
def test_cftime_noleap_crosses_feb_28_to_mar_1_and_round_trips(tmp_path):
    time = xr.date_range("2020-02-28", periods=8, freq="6h", calendar="noleap", use_cftime=True)
    ds = _round_trip(_dataset(time), tmp_path / "noleap.nc")
    coord = ds["time"]
    assert times.time_kind(coord, source="f") == "cftime"
    assert coord.values[4] == cftime.DatetimeNoLeap(2020, 3, 1) and coord.values[0].calendar == "noleap"
    assert times.uniform_step(coord, source="f") == H6
    assert times.lag_for(coord, H12, source="f") == 2
    assert times.lag_for(coord, pd.Timedelta(days=1), source="f") == 4
    shifted = times.shift(coord, H6, source="f")
    assert shifted.values[3] == cftime.DatetimeNoLeap(2020, 3, 1)  # 2020-02-28T18 + 6 h: no Feb 29
    assert shifted.values[7] == cftime.DatetimeNoLeap(2020, 3, 2)
    lead = times.lead_time_coord(H6, 2)
    valid = times.valid_time_coord(coord, lead, source="f")
    assert valid.values[3, 0] == cftime.DatetimeNoLeap(2020, 3, 1)
    assert valid.values[2, 1] == cftime.DatetimeNoLeap(2020, 3, 1)
    assert valid.values[7, 1] == cftime.DatetimeNoLeap(2020, 3, 2, 6)
    full = _with_leads(_dataset(time), H6, 2)
    back = _round_trip(full, tmp_path / "noleap_pred.nc")
    xr.testing.assert_identical(back, full)
    assert back["valid_time"].values[3, 0] == cftime.DatetimeNoLeap(2020, 3, 1)
    with netCDF4.Dataset(tmp_path / "noleap_pred.nc") as f:
        assert f["time"].calendar == "noleap" and f["valid_time"].calendar == "noleap"


def test_open_checks_cftime_times_for_duplicates(tmp_path):
    time = xr.date_range("2020-02-28", periods=3, freq="6h", calendar="noleap", use_cftime=True)
    path = data.write(_dataset(time[[0, 1, 1]]), tmp_path / "dup.nc")
    with pytest.raises(DataError, match=re.escape(
            f"{path}: coordinate 'time' has duplicate value 2020-02-28 06:00:00 at indices 1 and 2")):
        data.open(path)


def test_cftime_step_is_exact():
    time = xr.date_range("2001-01-01", periods=4, freq="D", calendar="360_day", use_cftime=True)
    coord = xr.DataArray(time, dims="time", name="time")
    assert times.uniform_step(coord, source="f") == pd.Timedelta(days=1)
    with pytest.raises(DataError, match=re.escape("lead time 36 h is not a whole number of time steps (1 day)")):
        times.lag_for(coord, pd.Timedelta(hours=36), source="f")


# ------------------------------------------------------------------ float time
def test_float_time_in_hours_round_trips_with_its_units(tmp_path):
    ds = _dataset(6.0 * np.arange(8), time_attrs={"units": "hours", "long_name": "time"})
    back = _round_trip(ds, tmp_path / "swe.nc")
    coord = back["time"]
    assert coord.dtype == np.float64 and coord.attrs["units"] == "hours"
    assert times.time_kind(coord, source="f") == "float" and times.time_units(coord, source="f") == "hours"
    step = times.uniform_step(coord, source="f")
    assert isinstance(step, float) and step == 6.0
    assert times.lag_for(coord, 12.0, source="f", units="hours") == 2
    assert times.lag_for(coord, 12.0, source="f") == 2  # units unknown (old manifest): not checked
    np.testing.assert_array_equal(times.shift(coord, 6.0, source="f").values, 6.0 * np.arange(1, 9))
    assert times.shift(coord, 6.0, source="f").attrs == {"units": "hours", "long_name": "time"}
    lead = times.lead_time_coord(6.0, 3, units="hours")
    assert lead.dtype == np.float64 and lead.attrs["units"] == "hours"
    np.testing.assert_array_equal(lead.values, [6.0, 12.0, 18.0])
    valid = times.valid_time_coord(coord, lead, source="f")
    assert valid.attrs["units"] == "hours"
    np.testing.assert_array_equal(valid.values[:, 0], 6.0 * np.arange(1, 9))
    assert valid.values[7, 2] == 60.0
    full = _with_leads(ds, 6.0, 3, units="hours")
    xr.testing.assert_identical(_round_trip(full, tmp_path / "swe_pred.nc"), full)


def test_float_time_with_units_1_and_integer_time():
    coord = xr.DataArray(np.arange(8) * 0.1, dims="time", name="time", attrs={"units": "1"})
    assert times.uniform_step(coord, source="f") == pytest.approx(0.1, rel=1e-12)
    assert times.lag_for(coord, 0.2, source="f", units="1") == 2
    assert times.lag_for(coord, 0.30000001, source="f") == 3  # within relative 1e-6
    with pytest.raises(DataError, match=re.escape("f: lead time 0.15 (nondimensional) is not a whole number of time steps")):
        times.lag_for(coord, 0.15, source="f")
    integers = xr.DataArray(np.arange(5), dims="time", name="time")
    assert times.time_kind(integers, source="f") == "float" and times.time_units(integers, source="f") == "1"
    assert times.uniform_step(integers, source="f") == 1.0 and times.lag_for(integers, 2, source="f") == 2


def test_float_units_mismatch_is_one_line():
    coord = xr.DataArray(6.0 * np.arange(4), dims="time", name="time", attrs={"units": "hours"})
    with pytest.raises(DataError) as err:
        times.lag_for(coord, 1.0, source="swe.nc", units="1")
    assert str(err.value) == ("swe.nc: coordinate 'time' has units 'hours' but the lead time 1 (nondimensional) is in '1'; "
                              "convert the times to '1'")


# ------------------------------------------------------------------ mixing kinds
def test_timedelta_lead_on_float_time_is_a_one_line_error():
    coord = xr.DataArray(np.arange(8.0), dims="time", name="time", attrs={"units": "1"})
    for call in (lambda: times.lag_for(coord, H6, source="run.nc"), lambda: times.shift(coord, H6, source="run.nc"),
                 lambda: times.valid_time_coord(coord, times.lead_time_coord(H6, 2), source="run.nc")):
        with pytest.raises(DataError) as err:
            call()
        assert str(err.value) == (
            "run.nc: coordinate 'time' holds float times (units '1') but the lead time 6 h is a timedelta; "
            "decode 'time' as dates (CF units 'hours since ...') or use a surrogate trained on float times"
        )


def test_float_lead_on_calendar_time_is_a_one_line_error_never_nanoseconds():
    coord = xr.DataArray(pd.date_range("2020-01-01", periods=8, freq="6h"), dims="time", name="time")
    with pytest.raises(DataError) as err:
        times.lag_for(coord, 2.0, source="era5.nc", units="1")
    assert str(err.value) == (
        "era5.nc: coordinate 'time' holds datetime64 dates but the lead time 2 (nondimensional) is a float; "
        "convert 'time' to numbers in those units or use a surrogate trained on calendar times"
    )
    noleap = xr.DataArray(xr.date_range("2020-01-01", periods=3, freq="6h", calendar="noleap", use_cftime=True),
                          dims="time", name="time")
    with pytest.raises(DataError, match=r"^era5.nc: coordinate 'time' holds cftime dates but the lead time 21600000000000 "):
        times.shift(noleap, 21600000000000.0, source="era5.nc")


# ------------------------------------------------------------------ bad coordinates
def test_non_uniform_spacing_names_the_first_offending_pair():
    stamps = pd.to_datetime(["2020-01-01T00", "2020-01-01T06", "2020-01-01T12", "2020-01-02T00", "2020-01-02T06"])
    coord = xr.DataArray(stamps, dims="time", name="time")
    with pytest.raises(DataError) as err:
        times.uniform_step(coord, source="gap.nc")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("gap.nc: coordinate 'time' is not uniform: time[2]=2020-01-01T12:00:00")
    assert "-> time[3]=2020-01-02T00:00:00" in message and "is a step of 12 h, the first step is 6 h" in message
    floats = xr.DataArray([0.0, 1.0, 2.0, 3.5], dims="time", name="time", attrs={"units": "hours"})
    with pytest.raises(DataError, match=re.escape(
            "f: coordinate 'time' is not uniform: time[2]=2.0 -> time[3]=3.5 is a step of 1.5 hours, "
            "the first step is 1 hours")):
        times.uniform_step(floats, source="f")
    assert times.uniform_step(xr.DataArray([0.0, 1.0, 2.0000001], dims="time"), source="f") == pytest.approx(1.00000005)


def test_too_few_decreasing_and_too_short_coordinates():
    with pytest.raises(DataError, match=re.escape("f: coordinate 'time' has 1 time(s); a time step needs at least 2")):
        times.uniform_step(xr.DataArray(pd.date_range("2020-01-01", periods=1), dims="time", name="time"), source="f")
    with pytest.raises(DataError, match=re.escape("f: coordinate 'time' does not increase (time[1]=1.0 after time[0]=2.0)")):
        times.uniform_step(xr.DataArray([2.0, 1.0, 0.0], dims="time", name="time"), source="f")
    coord = xr.DataArray(pd.date_range("2020-01-01", periods=8, freq="6h"), dims="time", name="time")
    with pytest.raises(DataError, match=re.escape(
            "f: lead time 2 days spans 8 time steps but coordinate 'time' has only 8 times; use a file with at least 9")):
        times.lag_for(coord, pd.Timedelta(days=2), source="f")
    with pytest.raises(DataError, match=re.escape("f: lead time 9 h is not a whole number of time steps (6 h)")):
        times.lag_for(coord, pd.Timedelta(hours=9), source="f")
    with pytest.raises(DataError, match=re.escape("f: lead time 3 h is not a whole number of time steps (6 h)")):
        times.lag_for(coord, pd.Timedelta(hours=3), source="f")


def test_time_kind_refuses_strings_mixed_objects_timedeltas_and_missing_times():
    cases = {
        "holds <U10 values": np.array(["2020-01-01", "2020-01-02"]),
        "holds str values": np.array([cftime.DatetimeNoLeap(2020, 1, 1), "2020-01-02"], dtype=object),
        "holds timedelta64[ns] values": np.array([0, 6], dtype="timedelta64[h]").astype("timedelta64[ns]"),
        "has a missing time at index 1; drop or fill it": np.array(["2020-01-01", "NaT"], dtype="datetime64[ns]"),
        "mixes the calendars ['360_day', 'noleap']": np.array(
            [cftime.DatetimeNoLeap(2020, 1, 1), cftime.Datetime360Day(2020, 1, 2)], dtype=object),
    }
    for text, values in cases.items():
        with pytest.raises(DataError, match=re.escape(f"bad.nc: coordinate 'time' {text}")):
            times.time_kind(xr.DataArray(values, dims="time", name="time"), source="bad.nc")
    with pytest.raises(DataError, match="time must be numbers, datetime64 or cftime dates"):
        times.time_kind(xr.DataArray(np.array(["a", "b"]), dims="time", name="time"), source="bad.nc")


# ------------------------------------------------------------------ manifest JSON and strings
def test_lead_json_round_trips_and_reads_old_manifests():
    for lead in (H6, pd.Timedelta(minutes=90), pd.Timedelta(days=1), pd.Timedelta(milliseconds=1)):
        text = json.dumps(times.lead_to_json(lead))
        back, units = times.lead_from_json(json.loads(text), source="m.json")
        assert isinstance(back, pd.Timedelta) and back == lead and units is None
    assert times.lead_to_json(np.timedelta64(6, "h")) == {"kind": "timedelta", "seconds": 21600.0}
    assert times.lead_to_json(2.0, "1") == {"kind": "float", "value": 2.0, "units": "1"}
    assert times.lead_from_json(json.loads(json.dumps(times.lead_to_json(6.0, "hours"))), source="m") == (6.0, "hours")
    assert times.lead_to_json(None) is None and times.lead_from_json(None, source="m") == (None, None)
    assert times.lead_from_json(0.5, source="m") == (0.5, None)  # manifest before calendar times: a bare float
    back, units = times.lead_from_json(2, source="m")
    assert isinstance(back, float) and back == 2.0 and units is None
    for bad in (True, "6h", {"kind": "timedelta"}, {"kind": "float", "value": 1.0, "units": 3}, {"kind": "days", "value": 1}):
        with pytest.raises(DataError, match=r"^m.json: lead_time .* is not a lead time; expected null, a number"):
            times.lead_from_json(bad, source="m.json")


def test_format_lead():
    assert times.format_lead(H6) == "6 h"
    assert times.format_lead(pd.Timedelta(days=1)) == "1 day" and times.format_lead(pd.Timedelta(days=2)) == "2 days"
    assert times.format_lead(pd.Timedelta(minutes=90)) == "90 min"
    assert times.format_lead(pd.Timedelta(seconds=1.5)) == "1.5 s"
    assert times.format_lead(np.timedelta64(30, "h")) == "30 h"
    assert times.format_lead(2.0, "1") == "2 (nondimensional)"
    assert times.format_lead(6, "hours") == "6 hours"
    assert times.format_lead(0.5) == "0.5 (time units unknown)"


def test_as_lead_and_steps_refuse_nonsense():
    from sciml.errors import ConfigError

    assert times.as_lead(datetime.timedelta(hours=6)) == H6 and isinstance(times.as_lead(np.timedelta64(6, "h")), pd.Timedelta)
    for bad in ("6h", None, True, float("nan"), np.timedelta64("NaT")):
        with pytest.raises(ConfigError):
            times.as_lead(bad)
    with pytest.raises(ConfigError, match=re.escape("steps must be a positive integer, got 0")):
        times.lead_time_coord(H6, 0)
