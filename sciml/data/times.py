"""Time coordinates and lead times: float, datetime64 and cftime times, never silently mixed.

A 1-D time coordinate is one of three kinds (:func:`time_kind`): ``"float"`` (numbers, integers
included, in the units of ``attrs["units"]``, ``"1"`` when absent: solver output, the swe-sphere
recipe's hours), ``"datetime64"`` (numpy dates: ERA5, standard calendars) or ``"cftime"`` (cftime
objects: ``noleap``, ``360_day``, ... calendars). A lead time is a ``float`` in the time units for float
time and a :class:`pandas.Timedelta` for calendar time; a lead of one kind on times of the other is a
one-line :class:`DataError`, never a cast (``np.asarray(datetime64, float)`` would give nanoseconds).

Why :class:`pandas.Timedelta` for calendar lead times: it is the one timedelta that adds to every
container of calendar times sciml meets: ``datetime64`` scalars, numpy arrays and xarray DataArrays (as
a ``timedelta64``), and cftime objects, object arrays and DataArrays (it subclasses
``datetime.timedelta``). ``datetime.timedelta`` fails on ``datetime64`` arrays and DataArrays (numpy
makes it an object: ``ufunc 'add' cannot use ... dtype('O')``) and on ``datetime64[ns]`` scalars;
``np.timedelta64`` fails on cftime object arrays and DataArrays. It is exact to the
nanosecond, compares and hashes equal to the ``timedelta64``/``timedelta`` of the same length, and
arrays of lead times are ``timedelta64[ns]``, which xarray writes to NetCDF (``units`` set by its
encoder) and reads back exactly.
"""

from __future__ import annotations

import datetime
import numbers
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "TimeKind", "Lead", "time_kind", "time_units", "as_lead", "check_same_kind", "uniform_step", "lag_for",
    "shift", "lead_time_coord", "valid_time_coord", "lead_to_json", "lead_from_json", "format_lead",
]

TimeKind = Literal["float", "datetime64", "cftime"]
Lead = Union[float, "pd.Timedelta"]

FLOAT_RTOL = 1e-6  # relative tolerance of float time steps and lead times; calendar time is exact
# Attributes that describe the values of a time coordinate and are wrong once it is shifted.
_RANGE_ATTRS = ("bounds", "actual_range", "valid_min", "valid_max", "valid_range")
_UNITS = ((86400, "day"), (3600, "h"), (60, "min"), (1, "s"))


def _name(coord: xr.DataArray) -> str:
    return str(coord.name) if coord.name is not None else "time"


def _units(coord: xr.DataArray) -> str:
    return str(coord.attrs.get("units", "1"))


def time_kind(coord: xr.DataArray, *, source: str) -> TimeKind:
    """``"float"`` (numbers), ``"datetime64"`` or ``"cftime"`` (one calendar) for a 1-D time coordinate."""
    import cftime

    name, values = _name(coord), np.asarray(coord.values)
    if values.ndim != 1:
        raise DataError(f"{source}: coordinate {name!r} has dims {coord.dims}; a time coordinate is 1-D")
    if values.dtype.kind in "iufM":
        missing = np.flatnonzero(np.isnat(values) if values.dtype.kind == "M" else np.isnan(values.astype(np.float64)))
        if missing.size:
            raise DataError(f"{source}: coordinate {name!r} has a missing time at index {int(missing[0])}; drop or fill it")
        return "datetime64" if values.dtype.kind == "M" else "float"
    others = [type(v).__name__ for v in values if not isinstance(v, cftime.datetime)] if values.dtype.kind == "O" else []
    if values.dtype.kind == "O" and values.size and not others:
        calendars = sorted({v.calendar for v in values})
        if len(calendars) > 1:
            raise DataError(f"{source}: coordinate {name!r} mixes the calendars {calendars}; convert it to one calendar")
        return "cftime"
    found = others[0] if others else str(values.dtype)
    raise DataError(
        f"{source}: coordinate {name!r} holds {found} values; time must be numbers, datetime64 or cftime dates: "
        "decode it with CF units such as 'hours since 2000-01-01' or convert it to numbers"
    )


def time_units(coord: xr.DataArray, *, source: str) -> str | None:
    """The units of float times (``attrs["units"]``, ``"1"`` when absent); ``None`` for calendar times."""
    return _units(coord) if time_kind(coord, source=source) == "float" else None


def as_lead(value: object) -> Lead:
    """A lead time as ``float`` (numbers) or :class:`pandas.Timedelta` (``timedelta``/``timedelta64``)."""
    import pandas as pd

    if isinstance(value, (datetime.timedelta, np.timedelta64)):
        lead = pd.Timedelta(value)
        if lead is pd.NaT:
            raise ConfigError("lead time is NaT; give a duration such as pd.Timedelta(hours=6)")
        return lead
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        if not np.isfinite(value):
            raise ConfigError(f"lead time {value!r} is not finite; give a finite number of time units")
        return float(value)
    raise ConfigError(f"lead time {value!r} is a {type(value).__name__}; give a number (time units) or a timedelta")


def check_same_kind(coord: xr.DataArray, lead: object, *, source: str, units: str | None = None) -> TimeKind:
    """The kind of ``coord`` after checking that ``lead`` (and float ``units``, unless ``None``) fit it."""
    kind, lead = time_kind(coord, source=source), as_lead(lead)
    name = _name(coord)
    if kind == "float" and not isinstance(lead, float):
        raise DataError(
            f"{source}: coordinate {name!r} holds float times (units {_units(coord)!r}) but the lead "
            f"time {format_lead(lead)} is a timedelta; decode {name!r} as dates (CF units 'hours since ...') "
            "or use a surrogate trained on float times"
        )
    if kind != "float" and isinstance(lead, float):
        raise DataError(
            f"{source}: coordinate {name!r} holds {kind} dates but the lead time {format_lead(lead, units)} is a float; "
            f"convert {name!r} to numbers in those units or use a surrogate trained on calendar times"
        )
    if kind == "float" and units is not None and _units(coord) != units:
        raise DataError(
            f"{source}: coordinate {name!r} has units {_units(coord)!r} but the lead time {format_lead(lead, units)} is in "
            f"{units!r}; convert the times to {units!r}"
        )
    return kind


def uniform_step(coord: xr.DataArray, *, source: str) -> Lead:
    """The constant spacing of a time coordinate: exact for dates, within relative 1e-6 for floats."""
    import pandas as pd

    kind, name, values = time_kind(coord, source=source), _name(coord), np.asarray(coord.values)
    if values.size < 2:
        raise DataError(f"{source}: coordinate {name!r} has {values.size} time(s); a time step needs at least 2")
    if kind == "float":
        values = values.astype(np.float64)
    steps = np.diff(values)
    if kind == "float":
        same = np.isclose(steps, steps[0], rtol=FLOAT_RTOL, atol=0.0)
        step = float((values[-1] - values[0]) / (values.size - 1))
        positive = steps[0] > 0
    else:
        same = steps == steps[0]
        step = pd.Timedelta(steps[0])
        positive = step > pd.Timedelta(0)
    units = _units(coord) if kind == "float" else None
    if not positive:
        raise DataError(
            f"{source}: coordinate {name!r} does not increase ({name}[1]={values[1]} after {name}[0]={values[0]}); "
            f"sort it with ds.sortby({name!r})"
        )
    bad = np.flatnonzero(~same)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{source}: coordinate {name!r} is not uniform: {name}[{i}]={values[i]} -> {name}[{i + 1}]={values[i + 1]} "
            f"is a step of {format_lead(as_lead(steps[i]), units)}, the first step is {format_lead(as_lead(steps[0]), units)}; "
            "select a uniformly spaced part with ds.isel(time=...)"
        )
    return step


def lag_for(coord: xr.DataArray, lead: object, *, source: str, units: str | None = None) -> int:
    """How many time steps of ``coord`` the lead time spans (a whole number, within the coordinate)."""
    import pandas as pd

    kind = check_same_kind(coord, lead, source=source, units=units)
    lead, step, name = as_lead(lead), uniform_step(coord, source=source), _name(coord)
    units = _units(coord) if kind == "float" else None
    if isinstance(lead, float):
        ratio = lead / step
        lag = int(round(ratio))
        whole = lag >= 1 and abs(ratio - lag) <= FLOAT_RTOL * lag
    else:
        lag = lead // step
        whole = lag >= 1 and lead % step == pd.Timedelta(0)
    if not whole:
        raise DataError(
            f"{source}: lead time {format_lead(lead, units)} is not a whole number of time steps "
            f"({format_lead(step, units)}) of coordinate {name!r}; use a file whose time step divides the lead time"
        )
    if lag >= coord.size:
        raise DataError(
            f"{source}: lead time {format_lead(lead, units)} spans {lag} time steps but coordinate {name!r} has only "
            f"{coord.size} times; use a file with at least {lag + 1}"
        )
    return int(lag)


def shift(coord: xr.DataArray, lead: object, *, source: str, units: str | None = None) -> xr.DataArray:
    """The valid times ``coord + lead``: same name, dims and attributes, less those naming the old values."""
    import xarray as xr

    check_same_kind(coord, lead, source=source, units=units)
    attrs = {k: v for k, v in coord.attrs.items() if k not in _RANGE_ATTRS}
    return xr.DataArray(np.asarray(coord.values) + as_lead(lead), dims=coord.dims, name=coord.name, attrs=attrs)


def lead_time_coord(lead: object, steps: int, *, units: str | None = None) -> xr.DataArray:
    """The ``lead_time`` coordinate ``lead * (1..steps)``: ``timedelta64[ns]``, or floats in ``units``."""
    import xarray as xr

    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    lead, factors = as_lead(lead), np.arange(1, steps + 1)
    attrs = {"standard_name": "forecast_period", "long_name": "time after the initial condition"}
    if isinstance(lead, float):
        return xr.DataArray(lead * factors, dims="lead_time", name="lead_time", attrs={**attrs, "units": units or "1"})
    values = lead.to_timedelta64().astype("timedelta64[ns]") * factors  # units are set by xarray's encoder
    return xr.DataArray(values, dims="lead_time", name="lead_time", attrs=attrs)


def valid_time_coord(init: xr.DataArray, lead_coord: xr.DataArray, *, source: str) -> xr.DataArray:
    """``valid_time = init + lead`` over ``(init dim, lead dim)``, for float, datetime64 and cftime times."""
    import xarray as xr

    lead = np.asarray(lead_coord.values)
    units = lead_coord.attrs.get("units") if lead.dtype.kind in "iuf" else None
    kind = check_same_kind(init, lead[0], source=source, units=units)
    if kind == "cftime":  # cftime adds datetime.timedelta objects, not timedelta64 arrays
        lead = lead.astype("timedelta64[us]").astype(object)
    attrs = {"standard_name": "time", "long_name": "valid time (initial time + lead time)"}
    if kind == "float":
        attrs["units"] = _units(init)
    values = np.asarray(init.values)[:, None] + lead[None, :]
    return xr.DataArray(values, dims=(init.dims[0], lead_coord.dims[0]), name="valid_time", attrs=attrs)


def lead_to_json(lead: object | None, units: str | None = None) -> dict | None:
    """``{"kind": "timedelta", "seconds": s}`` or ``{"kind": "float", "value": v, "units": u}``; ``None`` stays ``None``."""
    if lead is None:
        return None
    lead = as_lead(lead)
    if isinstance(lead, float):
        return {"kind": "float", "value": lead, "units": units}
    return {"kind": "timedelta", "seconds": lead.total_seconds()}


def lead_from_json(data: object, *, source: str) -> tuple[Lead | None, str | None]:
    """``(lead, units)`` from :func:`lead_to_json`'s dict, or from an old manifest's bare number or null (units ``None``)."""
    import pandas as pd

    if data is None:
        return None, None
    if _is_number(data):
        return float(data), None
    if isinstance(data, dict) and data.get("kind") == "timedelta" and _is_number(data.get("seconds")):
        return pd.Timedelta(seconds=data["seconds"]), None
    if (isinstance(data, dict) and data.get("kind") == "float" and _is_number(data.get("value"))
            and (data.get("units") is None or isinstance(data["units"], str))):
        return float(data["value"]), data.get("units")
    raise DataError(
        f"{source}: lead_time {data!r} is not a lead time; expected null, a number, "
        '{"kind": "float", "value": ..., "units": ...} or {"kind": "timedelta", "seconds": ...}; re-save the surrogate'
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_lead(lead: object, units: str | None = None) -> str:
    """For reports: ``"6 h"``, ``"1 day"``, ``"90 min"``, ``"0.5 s"``; floats with their units, ``"6 hours"``,
    ``"2 (nondimensional)"`` for units ``"1"``, ``"2 (time units unknown)"``."""
    lead = as_lead(lead)
    if isinstance(lead, float):
        value = np.format_float_positional(lead, trim="-")  # 2.0 -> "2", 0.15 -> "0.15", every digit kept
        if units is None:
            return f"{value} (time units unknown)"
        return f"{value} (nondimensional)" if units == "1" else f"{value} {units}"
    nanoseconds = lead.value  # pandas gives nanoseconds whatever the Timedelta's unit
    for seconds, unit in _UNITS:
        count, rest = divmod(nanoseconds, seconds * 10**9)
        if rest == 0 and count != 0:
            plural = "s" if unit == "day" and abs(count) != 1 else ""
            return f"{count} {unit}{plural}"
    return f"{nanoseconds / 1e9:g} s"
