"""Reader for The Well's HDF5 files into the canonical layout (``_layout.py``).

The Well (PolymathicAI; Ohana et al., "The Well: a large-scale collection of diverse physics
simulations for machine learning", NeurIPS 2024 Datasets & Benchmarks) stores each file as, for a
2-D dataset with ``B`` trajectories, ``T`` steps and spatial dims ``(x, y)`` of lengths ``(nx, ny)``
(spec: ``docs/data_format.md`` of github.com/PolymathicAI/the_well; reference readers
``the_well/data/datasets.py`` and ``the_well/utils/export.py``)::

    /  @dataset_name @grid_type @n_spatial_dims=D @n_trajectories=B
       @simulation_parameters=[names] and one attribute per name
    dimensions/   @spatial_dims=["x", "y"]       (order of the spatial axes in every field)
      time        (T,), or (B, T) when @sample_varying
      x, y        (nx,), (ny,)                   (@sample_varying/@time_varying must be false)
    boundary_conditions/<name>/  @bc_type @associated_dims @associated_fields; mask, values
    scalars/      @field_names; each (), (B,), (T,) or (B, T) by @sample_varying/@time_varying
    t0_fields/    @field_names; each (B, T, nx, ny)          scalar fields
    t1_fields/    @field_names; each (B, T, nx, ny, D)       vector fields
    t2_fields/    @field_names; each (B, T, nx, ny, D, D)    tensor fields

A field drops its ``B`` axis when not ``@sample_varying`` and its ``T`` axis when not
``@time_varying``; ``@dim_varying`` flags, per spatial dim, whether the field varies along it (the
spec omits that axis; the reference loader tiles a length-1 axis, so both are accepted).

Mapping to the canonical layout (every change is recorded in ``ds.attrs["sciml_normalisation"]``):

- dims ``sample`` (trajectories, coordinate ``0..B-1``), ``time`` and the ``spatial_dims`` names;
  a field has only the dims it varies along (a time-constant field has no ``time``);
- t0 field ``p`` -> ``p``; t1 field ``velocity`` -> ``velocity_x``, ``velocity_y``; t2 field ``T``
  -> ``T_xx``, ``T_xy``, ``T_yx``, ``T_yy`` (suffixes from ``spatial_dims``, as The Well names them);
- constant scalars -> global attributes; sample-/time-varying scalars -> coordinates along
  ``sample``/``time``; root attributes (simulation parameters, ``dataset_name``, ``grid_type``,
  ``n_spatial_dims``, ...) -> global attributes;
- boundary conditions -> the attribute ``boundary_conditions`` (e.g. ``"x: PERIODIC; y: WALL"``);
  masks and values have no place in the layout and are dropped.

Field arrays stay lazy (xarray's h5netcdf backend: picklable, so usable by DataLoader workers).
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from ._layout import record

if TYPE_CHECKING:
    import h5py
    import xarray as xr

__all__ = ["matches", "read"]

FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")  # index = tensor order
COMPONENT_DIMS = ("component_i", "component_j")  # temporary names of the tensor axes
LAYOUT_ATTRS = ("sample_varying", "time_varying", "dim_varying")  # expressed by dims, not kept


def matches(f: h5py.File) -> bool:
    """Cheap structural check: True when the open HDF5 file follows The Well's layout."""
    import h5py

    def is_group(name: str) -> bool:
        return f.get(name, getclass=True) is h5py.Group

    return is_group("dimensions") and any(is_group(g) for g in FIELD_GROUPS)


def read(path: Path) -> xr.Dataset:
    """Open a The Well file lazily into the canonical layout."""
    import h5py
    import xarray as xr

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: not a readable HDF5 file ({reason}); re-create or re-download it") from None
    notes: list[str] = []
    with f:
        spatial, coords, n_samples, n_times = _grid(path, f, notes)
        sizes = {"sample": n_samples, "time": n_times, **{d: coords[d].size for d in spatial}}
        scalar_attrs, scalar_coords = _scalars(path, f, sizes, notes)
        taken = {name: "a coordinate" for name in (*coords, *scalar_coords)}
        plans = []  # (group, name, dims, length-1 dims to drop, attrs, {variable: component index})
        for order, group in enumerate(FIELD_GROUPS):
            for name in _names(path, f[group]) if group in f else []:
                components = {
                    f"{name}_{''.join(spatial[k] for k in index)}" if order else name: index
                    for index in itertools.product(range(len(spatial)), repeat=order)
                }
                for variable in components:
                    _claim(path, taken, variable, f"{group}/{name}")
                dims, squeeze, var_attrs = _field_dims(path, f[group][name], sizes, spatial, order)
                plans.append((group, name, dims, squeeze, var_attrs, components))
                if order:
                    notes.append(f"{group}/{name} split into {', '.join(components)}")
                absent = [d for d in ("sample", "time", *spatial) if d not in dims or d in squeeze]
                if absent:
                    notes.append(f"{group}/{name} kept without dims {', '.join(absent)} (it does not vary along them)")
        attrs = {key: _attr(value) for key, value in f.attrs.items()}
        bcs = _boundary_summary(f, spatial)
    for key, value in scalar_attrs.items():
        if key in attrs and np.any(np.asarray(attrs[key]) != np.asarray(value)):
            notes.append(f"scalars/{key} ({value}) replaces root attribute {key} ({attrs[key]})")
        attrs[key] = value
    for key in scalar_coords:
        if attrs.pop(key, None) is not None:
            notes.append(f"root attribute {key} dropped: scalars/{key} is its coordinate")
    if bcs:
        attrs["boundary_conditions"] = bcs
        notes.append("boundary_conditions/ summarised as attribute boundary_conditions (masks and values dropped)")

    opened = {
        group: xr.open_dataset(path, engine="h5netcdf", phony_dims="sort", group=group, decode_cf=False)
        for group in dict.fromkeys(plan[0] for plan in plans)
    }
    data_vars: dict[str, xr.Variable] = {}
    for group, name, dims, squeeze, var_attrs, components in plans:
        var = opened[group].variables[name].copy(deep=False)  # lazy; its phony dims are replaced
        var.dims = dims  # e.g. (sample, time, x, y, component_i)
        var = var.isel({d: 0 for d in squeeze})  # (sample, time, x) for a field constant along y
        var.attrs = var_attrs
        for variable, index in components.items():
            data_vars[variable] = var.isel(dict(zip(COMPONENT_DIMS, index)))  # lazy component

    ds = xr.Dataset(data_vars, coords={**coords, **scalar_coords}, attrs=attrs)
    ds.set_close(functools.partial(_close_all, list(opened.values())))
    ds.encoding["source"] = str(path)
    ds.attrs["sciml_format"] = "the_well"
    for note in notes:
        record(ds, note)
    return ds


def _close_all(datasets: list[xr.Dataset]) -> None:
    """Close the per-group datasets the fields were read from (module level so it pickles)."""
    for opened in datasets:
        opened.close()


def _grid(path: Path, f: h5py.File, notes: list[str]) -> tuple[list[str], dict[str, xr.Variable], int, int]:
    """Spatial dim names, coordinates ``sample``/``time``/space, number of trajectories and steps."""
    import xarray as xr

    dimensions = f["dimensions"]
    if "spatial_dims" not in dimensions.attrs:
        raise DataError(f"{path}: dimensions/ has no attribute spatial_dims; list the spatial coordinate names there, e.g. ['x', 'y']")
    spatial = [_text(d) for d in np.atleast_1d(dimensions.attrs["spatial_dims"])]
    n_dims = f.attrs.get("n_spatial_dims", len(spatial))
    if n_dims != len(spatial):
        raise DataError(
            f"{path}: root attribute n_spatial_dims is {n_dims} but dimensions/spatial_dims lists {len(spatial)} "
            f"({', '.join(spatial)}); make them agree"
        )
    if "n_trajectories" not in f.attrs:
        raise DataError(f"{path}: root attribute n_trajectories is missing; set it to the number of trajectories in the file")
    n_samples = int(f.attrs["n_trajectories"])
    if "time" not in dimensions:
        raise DataError(f"{path}: dimensions/time is missing; add it with one output time per stored step")
    time = dimensions["time"]
    times = np.asarray(time[()])  # (time,), or (sample, time) when sample_varying
    per_sample = _flag(path, time, "sample_varying", default=False)
    if times.ndim != 1 + per_sample or (per_sample and len(times) != n_samples):
        expected = f"({n_samples}, steps) as it is sample_varying" if per_sample else "(steps,)"
        raise DataError(f"{path}: dimensions/time has shape {times.shape}, expected {expected}; store one time per step")
    if per_sample:
        if not (times == times[:1]).all():
            raise DataError(
                f"{path}: dimensions/time differs between trajectories; sciml needs one time axis per file: "
                "resample the trajectories onto common times or split them into separate files"
            )
        times = times[0]
        notes.append("dimensions/time is the same for every trajectory: kept once")
    coords = {
        "sample": xr.Variable("sample", np.arange(n_samples), {"long_name": "trajectory index"}),
        "time": xr.Variable("time", times, _attrs(time)),
    }
    notes.append(f"sample coordinate 0..{n_samples - 1} added (trajectory index)")
    for d in spatial:
        if d not in dimensions:
            raise DataError(f"{path}: dimensions/{d} is missing but dimensions/spatial_dims lists {d!r}; add the coordinate or fix spatial_dims")
        coord = dimensions[d]
        values = np.asarray(coord[()])  # (d,)
        varying = [flag for flag in ("sample_varying", "time_varying") if _flag(path, coord, flag, default=False)]
        if varying or values.ndim != 1:
            raise DataError(
                f"{path}: dimensions/{d} is not one fixed 1-D grid (shape {values.shape}{''.join(', ' + v for v in varying)}); "
                "sciml needs the same grid for every sample and time: interpolate the fields onto one"
            )
        coords[d] = xr.Variable(d, values, _attrs(coord))
    return spatial, coords, n_samples, times.size


def _field_dims(
    path: Path, field: h5py.Dataset, sizes: dict[str, int], spatial: list[str], order: int
) -> tuple[tuple[str, ...], list[str], dict[str, Any]]:
    """The dims of a field's axes (from its attributes), the length-1 axes to drop, and its attributes."""
    where = field.name.lstrip("/")
    lead = [d for d, flag in (("sample", "sample_varying"), ("time", "time_varying")) if _flag(path, field, flag)]
    if "dim_varying" not in field.attrs:
        raise DataError(f"{path}: {where} has no attribute dim_varying; add one flag per spatial dim ({', '.join(spatial)})")
    varying = [bool(v) for v in np.atleast_1d(field.attrs["dim_varying"])]
    if len(varying) != len(spatial):
        raise DataError(
            f"{path}: {where} attribute dim_varying has {len(varying)} entries but there are {len(spatial)} "
            f"spatial dims ({', '.join(spatial)}); give one flag per spatial dim"
        )
    components = list(COMPONENT_DIMS[:order])
    squeeze = [d for d, v in zip(spatial, varying) if not v]
    dims = [*lead, *(d for d, v in zip(spatial, varying) if v), *components]
    if squeeze and field.ndim == len(dims) + len(squeeze):  # reference-loader convention: length-1 axes kept
        dims = [*lead, *spatial, *components]
    else:
        squeeze = []
    shape = field.shape
    if len(shape) != len(dims):
        named = ", ".join(d if d not in COMPONENT_DIMS else "component" for d in dims)
        raise DataError(
            f"{path}: {where} has shape {shape}, expected {len(dims)} axes ({named}) from its "
            "sample_varying/time_varying/dim_varying attributes; fix the attributes or the array"
        )
    n = len(spatial)
    if order and shape[-order:] != (n,) * order:
        if order == 1:
            raise DataError(
                f"{path}: {where} has {shape[-1]} components on its last axis but n_spatial_dims is {n}; "
                f"store one component per spatial dim ({', '.join(spatial)})"
            )
        raise DataError(
            f"{path}: {where} has components of shape {shape[-2:]} on its last two axes but n_spatial_dims is {n}; "
            f"store a ({n}, {n}) tensor per point"
        )
    for axis, (dim, length) in enumerate(zip(dims[: len(dims) - order], shape)):
        expected = 1 if dim in squeeze else sizes[dim]
        if length != expected:
            source = "root attribute n_trajectories" if dim == "sample" else f"dimensions/{dim}"
            if dim in squeeze:
                source = f"its dim_varying flag for {dim}"
            raise DataError(
                f"{path}: {where} has length {length} along {dim} (axis {axis}) but {source} says {expected}; "
                "rewrite the field or the file's dimensions so they agree"
            )
    return tuple(dims), squeeze, _attrs(field)


def _scalars(path: Path, f: h5py.File, sizes: dict[str, int], notes: list[str]) -> tuple[dict[str, Any], dict[str, xr.Variable]]:
    """``scalars/``: constant ones as attributes, sample- or time-varying ones as coordinates."""
    import xarray as xr

    if "scalars" not in f:
        return {}, {}
    attrs: dict[str, Any] = {}
    coords: dict[str, xr.Variable] = {}
    for name in _names(path, f["scalars"]):
        scalar = f["scalars"][name]
        dims = tuple(d for d, flag in (("sample", "sample_varying"), ("time", "time_varying")) if _flag(path, scalar, flag))
        expected = tuple(sizes[d] for d in dims)
        values = np.asarray(scalar[()])
        if [s for s in values.shape if s != 1] != [s for s in expected if s != 1]:
            raise DataError(
                f"{path}: scalars/{name} has shape {values.shape}, expected {expected} from its "
                "sample_varying/time_varying attributes; fix the attributes or the array"
            )
        values = values.reshape(expected)
        if dims:
            coords[name] = xr.Variable(dims, values, _attrs(scalar))
        else:
            attrs[name] = values.item()
    if attrs:
        notes.append(f"constant scalars {', '.join(attrs)} as attributes")
    if coords:
        varying = ", ".join(f"{name} along {'/'.join(c.dims)}" for name, c in coords.items())
        notes.append(f"varying scalars {varying} as coordinates")
    return attrs, coords


def _boundary_summary(f: h5py.File, spatial: list[str]) -> str:
    """``"x: PERIODIC; y: WALL"``: each dim's boundary types (and the fields they constrain), in file order."""
    if "boundary_conditions" not in f:
        return ""
    by_dim: dict[str, list[str]] = {}
    for bc in f["boundary_conditions"].values():
        kind = _text(bc.attrs.get("bc_type", "unknown")).upper()
        fields = [_text(v) for v in np.atleast_1d(bc.attrs.get("associated_fields", []))]
        if fields:
            kind += f" on {', '.join(fields)}"
        for dim in np.atleast_1d(bc.attrs.get("associated_dims", [])):
            kinds = by_dim.setdefault(_text(dim), [])
            if kind not in kinds:
                kinds.append(kind)
    ordered = [d for d in spatial if d in by_dim] + [d for d in by_dim if d not in spatial]
    return "; ".join(f"{d}: {', '.join(by_dim[d])}" for d in ordered)


def _names(path: Path, group: h5py.Group) -> list[str]:
    """The datasets a group lists in ``@field_names`` (all its datasets when the attribute is absent)."""
    if "field_names" not in group.attrs:
        return list(group)
    names = [_text(n) for n in np.atleast_1d(group.attrs["field_names"])]
    where = group.name.lstrip("/")
    for name in names:
        if name not in group:
            raise DataError(f"{path}: {where}/ lists {name!r} in field_names but has no such dataset; fix field_names")
    return names


def _claim(path: Path, taken: dict[str, str], name: str, source: str) -> None:
    """Reserve a variable name, failing when two things in the file would share it."""
    if name in taken:
        raise DataError(f"{path}: {source} would become {name!r}, which is already {taken[name]}; rename one of them in the file")
    taken[name] = f"taken by {source}"


def _flag(path: Path, obj: h5py.HLObject, key: str, default: bool | None = None) -> bool:
    """A boolean layout attribute; :class:`DataError` when it is required and missing."""
    if key in obj.attrs:
        return bool(obj.attrs[key])
    if default is None:
        raise DataError(f"{path}: {obj.name.lstrip('/')} has no attribute {key}; The Well marks every field and scalar with it")
    return default


def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    """An object's attributes, NetCDF-writable, without the layout flags the dims now express."""
    return {key: _attr(value) for key, value in obj.attrs.items() if key not in LAYOUT_ATTRS}


def _attr(value: Any) -> Any:
    """An HDF5 attribute as a NetCDF-writable value: str, number, list of str or numeric array."""
    if isinstance(value, (bytes, str)):
        return _text(value)
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        return [_text(v) for v in array.ravel()]
    if array.dtype.kind == "b":
        array = array.astype(np.int8)  # NetCDF has no boolean attributes
    return array.item() if array.ndim == 0 else array


def _text(value: Any) -> str:
    """``str`` from HDF5 text (h5py gives ``str`` or ``bytes`` depending on how it was written)."""
    return value.decode() if isinstance(value, bytes) else str(value)
