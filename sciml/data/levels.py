"""Vertical levels as channels: ``t(level, lat, lon)`` <-> ``t500(lat, lon), t850(lat, lon)``.

Reanalyses such as ERA5 store each field on pressure levels, ``(time, level, lat, lon)``. A neural
operator couples its input channels at every point, so the levels of a forecast model's state are
channels: temperature at 500 hPa and at 850 hPa are two inputs, as in FourCastNet (Pathak et al. 2022,
arXiv:2202.11214) and WeatherBench 2 (Rasp et al. 2024), whose channel names (``t500``, ``z500``) these
follow. :func:`stack_levels` makes one variable per level before training; :func:`unstack_levels` puts
a forecast (or anything with the stacked names) back on the level dim, exactly: the values are not
touched, only named and moved, and each stacked variable records where it came from in its attributes
(``sciml_level_of``, ``sciml_level``, ``sciml_level_dim``), so the round trip needs nothing else.

Example::

    ds = sciml.data.open("era5.nc")                   # t, u: (sample, time, level, lat, lon)
    flat = sciml.data.stack_levels(ds)                # t500, t850, u500, u850: (sample, time, lat, lon)
    model, _ = fit_forecaster(flat, variables=list(flat.data_vars), model="sfno")
    fc = sciml.data.unstack_levels(forecast(model, flat.isel(time=[0]), steps=4))  # t: (..., level, ...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import DataError
from ._layout import SPACE_ORDER, record, source_name

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["stack_levels", "unstack_levels"]

_OF, _LEVEL, _DIM, _COORD_ATTRS = "sciml_level_of", "sciml_level", "sciml_level_dim", "sciml_level_units"


def _level_name(variable: str, value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return f"{variable}{value}"


def stack_levels(ds: xr.Dataset, *, dim: str = "level", variables: Sequence[str] | None = None) -> xr.Dataset:
    """One variable per level: ``ds[v]`` with dims ``(..., dim, *space)`` becomes ``v{level}`` for each level.

    Args:
        ds: a dataset whose ``variables`` (default: every data variable that has ``dim``) carry ``dim``.
        dim: the level dim (ERA5's ``pressure_level`` is already ``level`` after :func:`sciml.data.open`).
        variables: the variables to stack; the others are kept as they are.

    Returns:
        ``ds`` with each stacked variable replaced by ``len(ds[dim])`` variables named ``{v}{level}``
        (``t500``; levels without a coordinate are numbered from 0), in level order, each with ``v``'s
        attributes plus its level (``sciml_level``, ``sciml_level_units``) and origin (``sciml_level_of``,
        ``sciml_level_dim``); ``dim`` and its coordinate are dropped when no variable keeps them. The
        change is listed in ``attrs["sciml_normalisation"]``.

    Raises:
        DataError: ``dim`` is absent or spatial, a named variable lacks it, or a new name is taken.
    """
    source = source_name(ds)
    if dim in SPACE_ORDER:
        raise DataError(f"{source}: {dim!r} is a spatial dim; stack_levels makes channels of a level dim such as 'level'")
    if dim not in ds.dims:
        raise DataError(f"{source}: no {dim!r} dim to stack (dims: {', '.join(map(str, ds.dims))}); pass dim=")
    names = [str(v) for v in ds.data_vars if dim in ds[v].dims] if variables is None else list(variables)
    for name in names:
        if name not in ds.data_vars:
            raise DataError(f"{source}: no variable {name!r} to stack (variables: {', '.join(map(str, ds.data_vars))})")
        if dim not in ds[name].dims:
            raise DataError(f"{source}: variable {name!r} has no {dim!r} dim (dims {ds[name].dims})")
    if not names:
        raise DataError(f"{source}: no variable has the {dim!r} dim")
    values = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
    units = ds[dim].attrs.get("units") if dim in ds.coords else None
    out = ds.drop_vars(names)
    new = {}
    for name in names:
        for i, value in enumerate(values):
            stacked = _level_name(name, value)
            if stacked in out.variables or stacked in new:
                raise DataError(f"{source}: stacking {name!r} by {dim} would make {stacked!r}, a name already taken; "
                                f"rename the variable first")
            field = ds[name].isel({dim: i}, drop=True)
            level = value.item() if isinstance(value, np.generic) else value
            attrs = {**field.attrs, _OF: name, _LEVEL: level, _DIM: dim}
            if units is not None:
                attrs[_COORD_ATTRS] = units
            new[stacked] = field.assign_attrs(attrs)
    out = out.assign(new)
    if not any(dim in out[v].dims for v in out.variables if v != dim):
        out = out.drop_vars(dim, errors="ignore")
    out.attrs = dict(out.attrs)  # record() appends in place: never to the caller's dict
    shown = ", ".join(_level_name(names[0], v) for v in values[:3]) + (", ..." if len(values) > 3 else "")
    return record(out, f"stacked {dim} into channels ({names[0]} -> {shown})")


def unstack_levels(ds: xr.Dataset) -> xr.Dataset:
    """The inverse of :func:`stack_levels`: variables that record their level go back onto the level dim.

    The level dim is put just before the spatial dims (``(..., lead_time, [member], level, lat, lon)``
    for a forecast), its coordinate rebuilt from the levels recorded (with their units); the stacked
    attributes are removed. Variables without the record are kept as they are.

    Raises:
        DataError: the levels of one variable disagree in dims, or two variables give the same level.
    """
    import xarray as xr

    source = source_name(ds)
    groups: dict[tuple[str, str], list[str]] = {}
    for name in ds.data_vars:
        attrs = ds[name].attrs
        if _OF in attrs and _LEVEL in attrs and _DIM in attrs:
            groups.setdefault((str(attrs[_OF]), str(attrs[_DIM])), []).append(str(name))
    if not groups:
        return ds
    out = ds.drop_vars([n for names in groups.values() for n in names])
    new = {}
    for (variable, dim), names in groups.items():
        levels = [ds[n].attrs[_LEVEL] for n in names]
        if len(set(levels)) != len(levels):
            raise DataError(f"{source}: two variables give {variable!r} the same {dim} ({levels})")
        dims = ds[names[0]].dims
        for n in names[1:]:
            if ds[n].dims != dims:
                raise DataError(f"{source}: {n!r} has dims {ds[n].dims}, {names[0]!r} has {dims}; cannot unstack {variable!r}")
        if variable in out.variables:
            raise DataError(f"{source}: unstacking would make {variable!r}, a name already taken")
        position = next((i for i, d in enumerate(dims) if d in SPACE_ORDER), len(dims))
        coord_attrs = {"units": ds[names[0]].attrs[_COORD_ATTRS]} if _COORD_ATTRS in ds[names[0]].attrs else {}
        coord = xr.DataArray(np.asarray(levels), dims=dim, attrs=coord_attrs)
        field = xr.concat([ds[n] for n in names], dim=coord, coords="minimal", compat="override",
                          combine_attrs="override")
        order = (*dims[:position], dim, *dims[position:])
        attrs = {k: v for k, v in ds[names[0]].attrs.items() if k not in (_OF, _LEVEL, _DIM, _COORD_ATTRS)}
        field = field.transpose(*order).assign_coords({dim: coord})
        field.attrs = attrs  # replaced, not merged: the stacking record goes
        new[variable] = field
    out = out.assign(new)
    out.attrs = dict(out.attrs)
    return record(out, "unstacked " + ", ".join(f"{v} onto {d}" for v, d in groups))
