"""Skill scores of gridded forecasts, defined as WeatherBench 2 defines them.

Reference: Rasp et al. (2024), "WeatherBench 2: A benchmark for the next generation of data-driven
global weather models", JAMES 16, e2023MS004019 (arXiv:2308.15560), and its code
(``weatherbench2/metrics.py``), whose conventions these functions follow:

* **Area weights.** A spatial mean is ``<g> = (1/N) sum_x w(x) g(x)`` over the ``N`` grid points,
  with weights normalised to mean 1 (``sum_x w = N``), as WB2 normalises its latitude weights
  (``get_lat_weights``). WB2 takes the areas of cells bounded by the latitude mid-points; here ``w``
  is the grid's own quadrature (:meth:`sciml.grids.Grid.quadrature_weights`: Clenshaw-Curtis or
  Gauss-Legendre in ``sin(lat)`` on the sphere, uniform on a periodic box, trapezoidal on a bounded
  box), the area mean every other part of ``sciml`` uses. The two differ by less than 2e-4 (of the
  mean weight 1) on the 0.25-degree equiangular grid and 7e-4 on the 1-degree one.
* **Order of averaging.** Every score is first computed for each forecast (each initial ``time``,
  ``lead_time``, ``level``, ``member``, ...) as a spatial mean, then averaged over the cases
  (``over``: by default the ``sample`` and ``time`` dims that are present; WB2 averages over the
  initial times). RMSE takes the square root *after* the mean over cases,
  ``sqrt(mean_t <(f - o)^2>)``: WB2's ``MSE`` metric followed by a square root, which its code
  recommends over the alternative it keeps, ``RMSESqrtBeforeTimeAvg`` (``mean_t sqrt(<(f - o)^2>)``).
  Every dim that is neither spatial nor averaged (``lead_time``, ``level``, ...) is kept.
* **Valid times.** A forecast's ``time`` is its initial time; with a ``lead_time`` it carries the
  coordinate ``valid_time = time + lead_time`` (:func:`sciml.forecast.forecast` writes it), and the
  truth, indexed by ``time``, is read at the valid times (:func:`align_truth`).

Inputs are :class:`xarray.DataArray` or :class:`xarray.Dataset` (then every data variable of the
forecast is scored against the truth's variable of that name) with spatial dims ``(lat, lon)`` (a
global grid that :meth:`~sciml.grids.Grid.from_latlon` recognises), ``(y, x)`` or ``(x,)``, or the
spatial dims named by ``dims=``. Results are of the same kind. The truth is read at the valid times
(lazily indexed or dask-backed data: only those) and scored in memory. Bad input is a one-line
:class:`~sciml.errors.DataError` naming the variable.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Hashable, Iterable, Sequence

import numpy as np

from ..data import times as timing
from ..data._layout import check_finite, source_name
from ..errors import DataError
from ..grids import Grid
from ..spectral import isotropic_spectrum

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "acc", "align_truth", "area_weights", "climatology", "crps", "energy_spectrum", "mae", "rank_histogram",
    "rmse", "spectrum_ratio", "spread_skill",
]

#: Dims averaged over by default (those present): independent trajectories and initial times.
CASE_DIMS = ("sample", "time")
#: Calendar keys :func:`climatology` groups by (``xarray``'s ``.dt`` accessor names).
CALENDAR_KEYS = ("month", "dayofyear", "hour")


# --------------------------------------------------------------------------------------------- helpers
def _variables(obj: xr.DataArray | xr.Dataset, role: str) -> dict[Hashable, xr.DataArray]:
    """``{name: DataArray}`` of a Dataset's data variables, or ``{name: obj}`` for a DataArray."""
    import xarray as xr

    if isinstance(obj, xr.Dataset):
        if not obj.data_vars:
            raise DataError(f"{role} {source_name(obj)} has no data variables to score")
        return dict(obj.data_vars)
    if isinstance(obj, xr.DataArray):
        return {obj.name if obj.name is not None else "<unnamed>": obj}
    raise DataError(f"{role} is a {type(obj).__name__}; give an xarray DataArray or Dataset")


def _partner(name: Hashable, other: xr.DataArray | xr.Dataset, role: str) -> xr.DataArray:
    """The variable ``name`` of ``other`` (a Dataset), or ``other`` itself (a DataArray)."""
    import xarray as xr

    if isinstance(other, xr.Dataset):
        if name not in other.data_vars:
            raise DataError(f"variable {name!r} of the forecast is not in the {role} {source_name(other)}; "
                            f"available: {sorted(map(str, other.data_vars))}")
        return other[name]
    if not isinstance(other, xr.DataArray):
        raise DataError(f"{role} is a {type(other).__name__}; give an xarray DataArray or Dataset")
    return other


def _pack(results: dict[Hashable, xr.DataArray], like: xr.DataArray | xr.Dataset) -> xr.DataArray | xr.Dataset:
    """A Dataset of ``results`` when ``like`` is one, else the single DataArray (named as ``like``)."""
    import xarray as xr

    if isinstance(like, xr.Dataset):
        return xr.Dataset(results)
    (result,) = results.values()
    return result.rename(like.name)


def _show(value: object) -> str:
    """A time, lead time or coordinate value for a message: ``2020-01-01T06:00:00``, ``6 h``, ``0.15``."""
    import pandas as pd

    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.timedelta64):
        return timing.format_lead(pd.Timedelta(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.10g}"
    return str(value)


def _finite(da: xr.DataArray, name: Hashable, role: str) -> None:
    check_finite(np.asarray(da.values), source=f"{role} {source_name(da)}", name=str(name), dims=da.dims)


def _grid(da: xr.DataArray, name: Hashable, dims: Sequence[str] | None) -> Grid:
    """The grid of ``da``'s spatial dims: :func:`sciml.data.grid_of`, or a box/sphere on ``dims``."""
    from ..data.tensors import grid_of, grid_on

    try:
        field = da.to_dataset(name="field")
        return grid_of(field) if dims is None else grid_on(field, dims)
    except DataError as err:
        raise DataError(f"variable {name!r}: {err}") from None


def _weights(da: xr.DataArray, grid: Grid) -> xr.DataArray:
    import xarray as xr

    w = grid.quadrature_weights().numpy()  # float64
    return xr.DataArray(w / w.mean(), dims=grid.dims, coords={d: da[d] for d in grid.dims},
                        attrs={"long_name": "area weights (grid quadrature, mean 1)"})


def area_weights(field: xr.DataArray | xr.Dataset, *, dims: Sequence[str] | None = None) -> xr.DataArray:
    """Area weights of the field's grid normalised to mean 1 over the spatial points: shape ``grid.shape``.

    ``w(x) = N q(x) / sum_x q(x)`` with ``q`` the grid's quadrature weights and ``N`` the number of
    points, so the spatial mean ``(1/N) sum_x w g`` is the area mean of ``g``. On a sphere the weights
    depend on latitude only and are largest at the equator (on a 3-point equiangular grid: Simpson's
    ``0.5, 2, 0.5``); on a periodic box they are all 1. WB2 normalises its latitude weights the same
    way (``get_lat_weights``).

    Args:
        field: a DataArray or Dataset on the grid (its first data variable's dims are read).
        dims: the spatial dims when they are not ``(lat, lon)``, ``(y, x)`` or ``(x,)``.
    """
    (name, da), *_ = _variables(field, "field").items()
    return _weights(da, _grid(da, name, dims))


def _space_mean(values: xr.DataArray, weights: xr.DataArray) -> xr.DataArray:
    """``(1/N) sum_x w(x) values(x)`` over the spatial dims (weights of mean 1)."""
    return (values * weights).mean(weights.dims)


def _case_dims(da: xr.DataArray, name: Hashable, over: str | Sequence[str] | None,
               exclude: Iterable[str]) -> tuple[str, ...]:
    """The dims averaged over: every one of :data:`CASE_DIMS` present (``None``), or exactly ``over``."""
    if over is None:
        return tuple(d for d in CASE_DIMS if d in da.dims)
    over = (over,) if isinstance(over, str) else tuple(over)
    bad = [d for d in over if d not in da.dims or d in exclude]
    if bad:
        raise DataError(f"variable {name!r}: cannot average over {bad}; over= takes non-spatial dims of the "
                        f"forecast other than the member dim, here {tuple(d for d in da.dims if d not in exclude)}")
    return over


def _same_coords(a: xr.DataArray, b: xr.DataArray, dim: str) -> bool:
    x, y = np.asarray(a[dim].values), np.asarray(b[dim].values)
    if x.shape != y.shape:
        return False
    if x.dtype.kind in "fc" and y.dtype.kind in "iufc":
        scale = float(np.max(np.abs(x))) if x.size else 0.0
        return bool(np.allclose(x, y, rtol=1e-9, atol=1e-12 * max(scale, 1.0)))
    return bool(np.array_equal(x, y))


def _check_pair(name: Hashable, forecast: xr.DataArray, truth: xr.DataArray, *, member_dim: str | None,
                what: str = "truth") -> None:
    """Truth dims within the forecast's (less the member dim), equal coordinates on them, no NaN/Inf in the truth."""
    if member_dim is not None:
        if member_dim not in forecast.dims:
            raise DataError(f"variable {name!r}: the ensemble has no member dim {member_dim!r} (dims {forecast.dims}); "
                            "pass member_dim= the dim that indexes the members")
        if member_dim in truth.dims:
            raise DataError(f"variable {name!r}: the {what} has the member dim {member_dim!r}; the {what} is one field "
                            "per case, so select or average its members first")
    extra = [d for d in truth.dims if d not in forecast.dims]
    if extra:
        raise DataError(f"variable {name!r}: the {what} has dims {extra} that the forecast (dims {forecast.dims}) "
                        "lacks; select them from the truth or add them to the forecast")
    for dim in truth.dims:
        if forecast.sizes[dim] != truth.sizes[dim]:
            raise DataError(f"variable {name!r}: dim {dim!r} has {forecast.sizes[dim]} values in the forecast and "
                            f"{truth.sizes[dim]} in the {what}; score them on the same grid/coordinates")
        if dim in forecast.coords and dim in truth.coords and not _same_coords(forecast, truth, dim):
            raise DataError(f"variable {name!r}: coordinate {dim!r} differs between the forecast and the {what}; "
                            f"regrid or select both onto the same {dim!r} values")
    _finite(truth, name, what)


def _valid_times(forecast: xr.DataArray, name: Hashable, time_dim: str) -> xr.DataArray | None:
    """The forecast's valid times: ``valid_time``, or ``time`` without a lead time, or ``None`` (no time dim)."""
    if "valid_time" in forecast.coords:
        return forecast["valid_time"]
    if time_dim not in forecast.dims or time_dim not in forecast.coords:
        return None
    if "lead_time" in forecast.coords:
        raise DataError(f"variable {name!r}: the forecast has a lead_time but no valid_time coordinate; add "
                        f"valid_time = {time_dim} + lead_time (sciml.forecast.forecast writes it)")
    return forecast[time_dim]


def _time_positions(index_coord: xr.DataArray, wanted: np.ndarray, *, name: Hashable, what: str,
                    describe: Callable[[int], str]) -> np.ndarray:
    """Positions of the ``wanted`` times in the 1-D time coordinate ``index_coord``; a missing one is an error."""
    import xarray as xr

    label = f"variable {name!r}: the {what}"
    kind = timing.time_kind(index_coord, source=label)
    wanted_kind = timing.time_kind(xr.DataArray(wanted, dims="valid", name="valid_time"), source=f"variable {name!r}")
    if wanted_kind != kind:
        raise DataError(f"{label} has {kind} times but the forecast's valid times are {wanted_kind}; "
                        "use one kind of time")
    index = index_coord.to_index()
    if not index.is_unique or not index.is_monotonic_increasing:
        raise DataError(f"{label}'s {index_coord.name!r} coordinate is not strictly increasing; "
                        "sort it and drop duplicates")
    if kind == "float":  # nearest time, within the tolerance of float time steps
        values, wanted = np.asarray(index, dtype=np.float64), wanted.astype(np.float64)
        right = np.clip(np.searchsorted(values, wanted), 0, values.size - 1)
        left = np.clip(right - 1, 0, values.size - 1)
        pos = np.where(np.abs(values[left] - wanted) < np.abs(values[right] - wanted), left, right)
        step = float(np.min(np.diff(values))) if values.size > 1 else max(abs(float(values[0])), 1.0)
        pos = np.where(np.abs(values[pos] - wanted) <= timing.FLOAT_RTOL * step, pos, -1)
    else:
        pos = index.get_indexer(wanted)
    missing = np.flatnonzero(pos < 0)
    if missing.size:
        i = int(missing[0])
        first, last = _show(index_coord.values[0]), _show(index_coord.values[-1])
        raise DataError(f"{label} has no time {_show(wanted[i])} ({describe(i)}; {missing.size} valid time(s) "
                        f"missing); its times run from {first} to {last}, so give a {what} that covers every "
                        "valid time")
    return pos


def align_truth(forecast: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset, *,
                time_dim: str = "time") -> xr.DataArray | xr.Dataset:
    """The truth at the forecast's valid times, on the forecast's time coordinates.

    ``forecast``: dims ``(..., time, lead_time, ...)`` with ``time`` the initial time and the coordinate
    ``valid_time`` (dims ``(time, lead_time)``, or ``(time,)`` with a scalar ``lead_time``);
    ``truth``: dims ``(..., time, ...)`` with ``time`` the verifying time. Returns the truth with its
    ``time`` dim replaced by the dims of ``valid_time``, whose element ``[i, j]`` is
    ``truth.sel(time=valid_time[i, j])``, and the forecast's ``time``, ``lead_time`` and ``valid_time``
    coordinates. Without a lead time the valid time is ``time`` itself, so a truth over a longer period
    is cut to the forecast's times; a forecast without a time coordinate, or a truth that already has
    a ``lead_time`` dim, leaves the truth unchanged.

    Times are matched exactly for ``datetime64`` and cftime dates and within relative
    :data:`sciml.data.times.FLOAT_RTOL` of the truth's time step for float times. A valid time the
    truth does not have is a one-line :class:`DataError` naming it and the forecast case it belongs to.
    """
    import xarray as xr

    if isinstance(forecast, xr.Dataset) and isinstance(truth, xr.Dataset):
        return xr.Dataset({name: _align(name, da, _partner(name, truth, "truth"), time_dim)
                           for name, da in _variables(forecast, "forecast").items()})
    (name, da), *_ = _variables(forecast, "forecast").items()
    if isinstance(truth, xr.Dataset):
        return truth.map(lambda t: _align(name, da, t, time_dim), keep_attrs=True)
    return _align(name, da, truth, time_dim)


def _align(name: Hashable, forecast: xr.DataArray, truth: xr.DataArray, time_dim: str,
           what: str = "truth") -> xr.DataArray:
    import xarray as xr

    if "lead_time" in truth.dims:
        return truth
    valid = _valid_times(forecast, name, time_dim)
    if valid is None:
        return truth
    if time_dim not in truth.dims or time_dim not in truth.coords:
        raise DataError(f"variable {name!r}: the {what} has no {time_dim!r} coordinate to read the forecast's valid "
                        f"times from (dims {truth.dims})")
    wanted = np.asarray(valid.values).ravel()
    shape = valid.shape

    def describe(i: int) -> str:
        at = np.unravel_index(i, shape)
        return "valid time of the forecast at " + ", ".join(
            f"{d}={_show(np.asarray(forecast[d].values)[k])}" if d in forecast.coords else f"{d}={k}"
            for d, k in zip(valid.dims, at))

    pos = _time_positions(truth[time_dim], wanted, name=name, what=what, describe=describe)
    hidden = f"__{what}_{time_dim}"
    picked = truth.rename({time_dim: hidden}).isel({hidden: xr.DataArray(pos.reshape(shape), dims=valid.dims)})
    coords = {d: forecast[d] for d in valid.dims if d in forecast.coords}
    if "lead_time" in forecast.coords and set(forecast["lead_time"].dims) <= set(valid.dims):
        coords["lead_time"] = forecast["lead_time"]
    if valid.name != time_dim:
        coords[valid.name] = valid
    return picked.drop_vars(hidden).assign_coords(coords)


def _prepare(forecast, truth, *, member_dim: str | None, dims: Sequence[str] | None):
    """``(name, forecast, aligned truth, weights)`` for every variable, checked."""
    for name, f in _variables(forecast, "forecast").items():
        grid = _grid(f, name, dims)
        f = f.compute()
        t = _align(name, f, _partner(name, truth, "truth"), "time").compute()
        _check_pair(name, f, t, member_dim=member_dim)
        _finite(f, name, "forecast")
        yield name, f, t, _weights(f, grid)


def _attrs(da: xr.DataArray, what: str, *, units: bool = True) -> dict:
    attrs = {"long_name": f"{what} of {da.attrs.get('long_name', da.name)}"}
    if units and "units" in da.attrs:
        attrs["units"] = da.attrs["units"]
    return attrs


# --------------------------------------------------------------------------------------------- deterministic
def rmse(forecast: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset, *,
         over: str | Sequence[str] | None = None, dims: Sequence[str] | None = None) -> xr.DataArray | xr.Dataset:
    """Area-weighted root-mean-square error, square root after the mean over cases (WB2's RMSE).

    ``RMSE = sqrt( mean_over <(f - o)^2> )``, ``<.>`` the area mean (weights of mean 1, see the module
    docstring), ``mean_over`` the mean over the dims ``over`` (default: ``sample`` and ``time`` where
    present; ``over=()`` gives one RMSE per case). WB2 (Rasp et al. 2024, Eq. for RMSE; ``MSE`` in
    ``weatherbench2/metrics.py``) averages the spatial MSE over initial times before the square root.

    Shapes: ``forecast (*cases, *kept, *space)``, ``truth`` the same or, with a ``lead_time``, indexed by
    verifying ``time`` (:func:`align_truth`); returns ``(*kept)``. Forecast dims the truth lacks (e.g.
    ``member``) are kept: one RMSE per member.
    """
    results = {}
    for name, f, t, w in _prepare(forecast, truth, member_dim=None, dims=dims):
        mse = _space_mean((f - t) ** 2, w)
        results[name] = np.sqrt(mse.mean(_case_dims(f, name, over, w.dims))).assign_attrs(_attrs(f, "RMSE"))
    return _pack(results, forecast)


def mae(forecast: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset, *,
        over: str | Sequence[str] | None = None, dims: Sequence[str] | None = None) -> xr.DataArray | xr.Dataset:
    """Area-weighted mean absolute error ``mean_over <|f - o|>`` (WB2's ``MAE``); shapes as :func:`rmse`."""
    results = {}
    for name, f, t, w in _prepare(forecast, truth, member_dim=None, dims=dims):
        results[name] = _space_mean(abs(f - t), w).mean(_case_dims(f, name, over, w.dims)).assign_attrs(
            _attrs(f, "MAE"))
    return _pack(results, forecast)


# --------------------------------------------------------------------------------------------- climatology, ACC
def climatology(data: xr.DataArray | xr.Dataset, *, by: str | Sequence[str] | None = "auto",
                time_dim: str = "time") -> xr.DataArray | xr.Dataset:
    """The mean of ``data`` over time (and ``sample``), per calendar key of its times.

    ``by``: one or more of :data:`CALENDAR_KEYS` (``"month"``, ``"dayofyear"``, ``"hour"``): the result
    has one dim per key (``dayofyear`` 1..366, ``hour`` 0..23, ...) in place of ``time`` and
    ``sample``; a combination the data never reach is NaN (:func:`acc` refuses to use it). ``None``:
    the plain mean over ``time`` and ``sample``, for simulations in float time or a stationary
    climate. ``"auto"`` (default): ``("dayofyear", "hour")``, WB2's climatology keys, for datetime64 and
    cftime times, the plain mean for float times. Calendar keys of cftime dates follow their calendar
    (``360_day`` has day of year 1..360). WB2 also smooths its climatology over a 61-day window
    (Rasp et al. 2024, Sec. on the climatology); none is applied here.

    Shapes: ``(sample, time, *other, *space) -> (*keys, *other, *space)``.
    """
    for name, da in _variables(data, "climatology data").items():
        if time_dim not in da.dims or time_dim not in da.coords:
            raise DataError(f"variable {name!r} has no {time_dim!r} coordinate to average over (dims {da.dims})")
        _finite(da, name, "climatology data")
    first = next(iter(_variables(data, "climatology data").values()))
    kind = timing.time_kind(first[time_dim], source=f"climatology data {source_name(data)}")
    if isinstance(by, str) and by == "auto":
        by = ("dayofyear", "hour") if kind != "float" else None
    keys = () if by is None else ((by,) if isinstance(by, str) else tuple(by))
    bad = [k for k in keys if k not in CALENDAR_KEYS]
    if bad or len(set(keys)) != len(keys):
        raise DataError(f"climatology by={by!r}: the keys must be distinct ones of {CALENDAR_KEYS}, "
                        "or None for the time mean")
    if keys and kind == "float":
        raise DataError(f"climatology by={by!r}: coordinate {time_dim!r} holds float times, which have no calendar; "
                        "use by=None (the mean over time) or decode the times as dates")
    average = [d for d in (time_dim, "sample") if d in first.dims]
    if not keys:
        return data.mean(average, keep_attrs=True)
    tagged = data.assign_coords({k: (time_dim, getattr(data[time_dim].dt, k).values) for k in keys})
    return tagged.groupby(list(keys) if len(keys) > 1 else keys[0]).mean(average, keep_attrs=True).transpose(*keys, ...)


def _climatology_at(name: Hashable, forecast: xr.DataArray, clim: xr.DataArray) -> xr.DataArray:
    """``clim`` at the forecast's valid times: by calendar keys, by ``time``, or as it is (no time dims)."""
    keys = [k for k in CALENDAR_KEYS if k in clim.dims]
    if not keys:
        return _align(name, forecast, clim, "time", what="climatology") if "time" in clim.dims else clim
    valid = _valid_times(forecast, name, "time")
    if valid is None:
        raise DataError(f"variable {name!r}: the climatology is indexed by {keys} but the forecast has no time")
    wanted = {k: getattr(valid.dt, k) for k in keys}
    missing = np.zeros(valid.shape, dtype=bool)
    for k in keys:
        missing |= ~np.isin(wanted[k].values, clim[k].values)
    if not missing.any():
        picked = clim.sel(wanted).drop_vars(keys)
        missing = picked.isnull().any([d for d in picked.dims if d not in valid.dims]).transpose(*valid.dims).values
    if missing.any():
        at = np.unravel_index(int(np.flatnonzero(missing)[0]), valid.shape)
        keys_at = ", ".join(f"{k}={int(np.asarray(wanted[k].values)[at])}" for k in keys)
        when = _show(np.asarray(valid.values)[at])
        raise DataError(f"variable {name!r}: the climatology has no value for valid time {when} ({keys_at}); "
                        "build it from data that cover every calendar key the forecast verifies at")
    return picked.assign_coords({d: forecast[d] for d in valid.dims if d in forecast.coords})


def acc(forecast: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset,
        climatology: xr.DataArray | xr.Dataset, *, over: str | Sequence[str] | None = None,
        dims: Sequence[str] | None = None) -> xr.DataArray | xr.Dataset:
    """Anomaly correlation coefficient, area-weighted, per case and then averaged (WB2's ``ACC``).

    With anomalies ``f' = f - c`` and ``o' = o - c`` from the climatology ``c`` at the valid time,
    ``ACC = mean_over [ <f' o'> / sqrt(<f'^2> <o'^2>) ]`` (Rasp et al. 2024, Eq. for ACC): the
    anomalies are not centred by their spatial mean, and the correlation of each case is averaged, not
    pooled. ``ACC = 1`` for ``f = o``, ``-1`` for ``f' = -o'``, and it does not change when ``f'`` is
    multiplied by a positive constant. A case with a zero anomaly gives NaN.

    ``climatology``: from :func:`climatology`: indexed by calendar keys (``dayofyear``, ``hour``,
    ``month``; read at each valid time), or by ``time`` like the truth, or without time dims (a
    constant climatology, e.g. the mean: ACC of simulations in float time). Shapes as :func:`rmse`.
    """
    results = {}
    for name, f, t, w in _prepare(forecast, truth, member_dim=None, dims=dims):
        c = _climatology_at(name, f, _partner(name, climatology, "climatology"))
        _check_pair(name, f, c, member_dim=None, what="climatology")
        fa, oa = f - c, t - c
        r = _space_mean(fa * oa, w) / np.sqrt(_space_mean(fa**2, w) * _space_mean(oa**2, w))
        acc_value = r.mean(_case_dims(f, name, over, w.dims))
        acc_value.attrs = _attrs(f, "ACC", units=False)  # replaced, not merged: a correlation has no units
        results[name] = acc_value
    return _pack(results, forecast)


# --------------------------------------------------------------------------------------------- ensembles
def _crps_points(members: np.ndarray, truth: np.ndarray, *, fair: bool) -> np.ndarray:
    """Pointwise ensemble CRPS; ``members (..., M)``, ``truth (...)`` -> ``(...)``.

    With the members sorted, ``x_(1) <= ... <= x_(M)``, ``sum_{i,j} |x_i - x_j| = 2 sum_k (2k - M - 1)
    x_(k)`` (Zamo & Naveau 2018, App. B): O(M log M) time and O(M) memory per point instead of the
    O(M^2) pairwise sum.
    """
    m = members.shape[-1]
    skill = np.abs(members - truth[..., None]).mean(axis=-1)
    if m == 1:
        return skill
    k = np.arange(1, m + 1)
    half_pairs = (np.sort(members, axis=-1) * (2 * k - m - 1)).sum(axis=-1)  # (1/2) sum_{i,j} |x_i - x_j|
    return skill - half_pairs / (m * (m - 1) if fair else m * m)


def crps(ensemble: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset, *, member_dim: str = "member",
         fair: bool = True, over: str | Sequence[str] | None = None,
         dims: Sequence[str] | None = None) -> xr.DataArray | xr.Dataset:
    """Continuous ranked probability score of an ensemble, area-weighted and averaged over cases.

    ``CRPS(F, y) = E|X - y| - (1/2) E|X - X'|`` (Gneiting & Raftery 2007, JASA 102:359), estimated
    pointwise from the ``M`` members ``x_i`` as

    * ``fair=True`` (default; WB2's ``CRPS``): ``(1/M) sum_i |x_i - y| - 1/(2 M (M - 1)) sum_{i != j}
      |x_i - x_j|``, the ensemble-size-unbiased ("fair") estimator (Ferro 2014, QJRMS 140:1917; the
      PWM estimator of Zamo & Naveau 2018, Math. Geosci. 50:209): its expectation for members drawn
      from ``F`` is ``CRPS(F, y)`` whatever ``M``;
    * ``fair=False``: ``... - 1/(2 M^2) sum_{i,j} |x_i - x_j|``, the CRPS of the empirical distribution
      of the members, whose expectation grows as ``M`` shrinks.

    One member gives the MAE exactly; an ensemble of members all equal to the truth gives 0. The
    pairwise sum is evaluated on sorted members, ``O(M log M)`` per point. Then
    ``mean_over <CRPS>`` as in :func:`rmse`.

    Shapes: ``ensemble (*cases, *kept, member, *space)``, ``truth`` without ``member``; returns
    ``(*kept)``.
    """
    import xarray as xr

    results = {}
    for name, f, t, w in _prepare(ensemble, truth, member_dim=member_dim, dims=dims):
        points = xr.apply_ufunc(_crps_points, f, t, input_core_dims=[[member_dim], []], kwargs={"fair": fair})
        results[name] = _space_mean(points, w).mean(_case_dims(f, name, over, (*w.dims, member_dim))).assign_attrs(
            _attrs(f, "fair CRPS" if fair else "CRPS"))
    return _pack(results, ensemble)


def spread_skill(ensemble: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset, *,
                 member_dim: str = "member", corrected: bool = True, over: str | Sequence[str] | None = None,
                 dims: Sequence[str] | None = None) -> xr.DataArray | xr.Dataset:
    """Spread/skill ratio: ensemble spread over the RMSE of the ensemble mean, ~1 when calibrated.

    ``spread = sqrt( mean_over <var(x)> )`` with ``var`` the unbiased (``ddof = 1``) variance over the
    ``M >= 2`` members, ``skill = sqrt( mean_over <(mean(x) - o)^2> )`` (WB2's ``EnsembleVariance`` and
    ``EnsembleMeanMSE``, each averaged over the cases before the square root), and

        ``ratio = sqrt((M + 1) / M) * spread / skill``   (``corrected=True``; ``spread / skill`` else).

    For members and truth drawn from one distribution of variance ``s^2`` (a perfectly reliable
    ensemble) ``E[var] = s^2`` but ``E[(mean(x) - o)^2] = s^2 (1 + 1/M)``, so the plain ratio of WB2's
    two metrics tends to ``sqrt(M / (M + 1))`` (0.99 for the 50 members of IFS ENS, 0.82 for 2);
    the factor makes it tend to 1 for every ``M`` (Fortin et al. 2014, J. Hydrometeor. 15:1708;
    Leutbecher & Palmer 2008, J. Comput. Phys. 227:3515). Below 1: an under-dispersive
    (over-confident) ensemble.

    Shapes as :func:`crps`.
    """
    results = {}
    for name, f, t, w in _prepare(ensemble, truth, member_dim=member_dim, dims=dims):
        m = f.sizes[member_dim]
        if m < 2:
            raise DataError(f"variable {name!r}: the ensemble has {m} member along {member_dim!r}; the spread needs "
                            "at least 2")
        cases = _case_dims(f, name, over, (*w.dims, member_dim))
        spread2 = _space_mean(f.var(member_dim, ddof=1), w).mean(cases)
        skill2 = _space_mean((f.mean(member_dim) - t) ** 2, w).mean(cases)
        factor = math.sqrt((m + 1) / m) if corrected else 1.0
        ratio = factor * np.sqrt(spread2 / skill2)
        ratio.attrs = {**_attrs(f, "spread/skill ratio", units=False), "ensemble_size": m}  # a ratio: no units
        results[name] = ratio
    return _pack(results, ensemble)


def rank_histogram(ensemble: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset, *,
                   member_dim: str = "member", over: str | Sequence[str] | None = None,
                   dims: Sequence[str] | None = None, seed: int = 0) -> xr.DataArray | xr.Dataset:
    """How often the truth has each rank among the members (Talagrand diagram): ``M + 1`` bins.

    The rank of ``y`` among ``x_1..x_M`` is the number of members below it, ``0..M``; members equal to
    ``y`` (``t`` ties) add a uniformly drawn ``0..t`` from ``numpy.random.default_rng(seed)``, so ties
    spread over the bins they straddle and the result is reproducible. Counts are of grid points
    (not area-weighted, so that a flatness test on them counts independent cases), summed over the
    spatial dims and ``over`` (default as :func:`rmse`). A calibrated ensemble gives a flat histogram,
    an under-dispersive one a U, a biased one a slope (Hamill 2001, Mon. Wea. Rev. 129:550).

    Shapes: ``ensemble (*cases, *kept, member, *space)`` -> ``(*kept, rank)`` (int64, ``rank = 0..M``).
    """
    import xarray as xr

    rng = np.random.default_rng(seed)

    def ranks(members: np.ndarray, y: np.ndarray) -> np.ndarray:
        below = (members < y[..., None]).sum(axis=-1)
        ties = (members == y[..., None]).sum(axis=-1)
        return below + np.floor(rng.random(y.shape) * (ties + 1)).astype(np.int64)

    results = {}
    for name, f, t, w in _prepare(ensemble, truth, member_dim=member_dim, dims=dims):
        m = f.sizes[member_dim]
        r = xr.apply_ufunc(ranks, f, t, input_core_dims=[[member_dim], []])
        reduced = (*w.dims, *_case_dims(f, name, over, (*w.dims, member_dim)))
        bins = xr.DataArray(np.arange(m + 1), dims="rank", attrs={"long_name": "members below the truth"})
        counts = (r == bins).sum(reduced).astype(np.int64).assign_coords(rank=bins)
        results[name] = counts.assign_attrs(long_name=f"rank histogram of {f.attrs.get('long_name', f.name)}",
                                            ensemble_size=m)
    return _pack(results, ensemble)


# --------------------------------------------------------------------------------------------- spectra
def _spectrum(name: Hashable, da: xr.DataArray, dims: Sequence[str] | None) -> xr.DataArray:
    import xarray as xr

    grid = _grid(da, name, dims)
    if grid.kind == "bounded":
        raise DataError(f"variable {name!r} lies on a bounded (non-periodic) box; its Fourier spectrum would measure "
                        "the jump at the boundary: energy_spectrum takes periodic boxes and the sphere")
    _finite(da, name, "field")
    other = [d for d in da.dims if d not in grid.dims]
    da = da.transpose(*other, *grid.dims)
    if grid.kind == "latlon":
        power, axis = isotropic_spectrum(da.values, grid)
        coord = xr.DataArray(axis, dims="degree", attrs={"long_name": "total wavenumber (spherical-harmonic degree l)"})
        out_dim = "degree"
    else:
        power, axis = isotropic_spectrum(da.values, grid)
        coord = xr.DataArray(axis, dims="wavenumber", attrs={
            "long_name": "shell of angular wavenumber |k| (2 pi / length units)", "units": "rad per length unit"})
        out_dim = "wavenumber"
    attrs = {"long_name": f"energy spectrum of {da.attrs.get('long_name', da.name)}"}
    if "units" in da.attrs:
        attrs["units"] = f"({da.attrs['units']})^2"
    coords = {c: v for c, v in da.coords.items() if not set(v.dims) & set(grid.dims)}
    return xr.DataArray(power, dims=(*other, out_dim), coords={**coords, out_dim: coord}, attrs=attrs, name=da.name)


def energy_spectrum(field: xr.DataArray | xr.Dataset, *,
                    dims: Sequence[str] | None = None) -> xr.DataArray | xr.Dataset:
    """Power per total wavenumber, normalised so that the sum over wavenumbers is ``<f^2>``.

    **Sphere** (``lat, lon``): the spherical-harmonic coefficients ``a_lm`` of torch-harmonics'
    ``RealSHT`` on the grid's latitude nodes (orthonormal harmonics, ``norm="ortho"``) give
    ``P(l) = (|a_l0|^2 + 2 sum_{m=1}^{l} |a_lm|^2) / (4 pi)``, dim ``degree``, for ``l < L``: the degrees
    the grid resolves exactly, ``L = min(n_lat, (n_lon + 1) // 2)`` on a Gaussian grid and
    ``min((n_lat + 1) // 2, (n_lon + 1) // 2)`` on an equiangular one. For a field of degree ``< L``,
    ``sum_l P(l) = <f^2>``, the area mean of ``f^2`` with the grid's quadrature (Parseval); beyond ``L``
    the grid does not resolve the harmonics exactly and the sum is an approximation that misses the
    power above ``L`` (white noise, the extreme case, keeps 17% of its mean square in ``l < L`` on a
    33 x 64 equiangular grid and 61% on a 32 x 64 Gaussian one; smooth fields keep nearly all). WB2's
    spectra are zonal (along latitude circles); this is the isotropic spectrum of the whole sphere.

    **Periodic box** (``y, x`` or ``x``): ``P(k) = sum_{|k'| in shell k} |f_k'|^2`` with
    ``f_k = (1/N) sum_x f(x) e^{-i k.x}`` (the FFT with ``norm="forward"``), the shells ``|k'|`` rounded
    to multiples of ``dk = 2 pi / max(L)``, dim ``wavenumber`` (angular, ``k dk``). Every mode lies in
    a shell (the corners beyond ``min(n) / 2`` too), so ``sum_k P(k) = mean(f^2)`` exactly.

    Shapes: ``(*other, *space) -> (*other, degree | wavenumber)``; every other dim is kept. Bounded
    boxes are refused.
    """
    results = {name: _spectrum(name, da, dims) for name, da in _variables(field, "field").items()}
    return _pack(results, field)


def spectrum_ratio(forecast: xr.DataArray | xr.Dataset, truth: xr.DataArray | xr.Dataset, *,
                   over: str | Sequence[str] | None = None,
                   dims: Sequence[str] | None = None) -> xr.DataArray | xr.Dataset:
    """``mean_over P_forecast / mean_over P_truth`` per degree or wavenumber (:func:`energy_spectrum`).

    Below 1 at high wavenumbers: the forecast is smoother than the truth (the blurring of forecasts
    trained on the MSE); above 1: spurious small-scale energy. A wavenumber where the truth has no
    power gives inf or NaN. Shapes: as :func:`rmse`, with ``degree``/``wavenumber`` added.
    """
    results = {}
    for name, f, t, w in _prepare(forecast, truth, member_dim=None, dims=dims):
        cases = _case_dims(f, name, over, w.dims)
        ratio = _spectrum(name, f, dims).mean(cases) / _spectrum(name, t, dims).mean([d for d in cases if d in t.dims])
        what = f.attrs.get("long_name", f.name)
        results[name] = ratio.assign_attrs(long_name=f"spectrum ratio forecast/truth of {what}")
    return _pack(results, forecast)
