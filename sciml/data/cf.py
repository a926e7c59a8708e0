"""CF attributes of sciml's fields and coordinates, and the canonical trajectory dataset solvers return.

Canonical layout: fields as variables over ``(sample, time, y, x)`` (or ``(sample, time, x)``, or
``(sample, time, lat, lon)`` on the sphere),
coordinates with ``units``/``long_name``/``axis``, PDE parameters and provenance as global attributes,
``Conventions = "CF-1.10"``. Reading and writing files is :mod:`sciml.data.io`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch

from .._atomic import exists_message
from ..errors import DataError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["trajectory_dataset", "check_writable", "VARIABLE_ATTRS", "derived_attrs"]

# CF attributes of the variables sciml's solvers produce (nondimensional: units "1").
VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "vorticity": {"long_name": "vertical component of vorticity, curl(u) . e_z", "units": "1"},
    "u": {"long_name": "velocity", "units": "1"},
    "a": {"long_name": "diffusion coefficient (permeability)", "units": "1"},
    "pressure": {"long_name": "pressure head, solution of -div(a grad p) = f", "units": "1"},
    "height": {"long_name": "fluid layer thickness", "units": "m"},
    "eastward_velocity": {"standard_name": "eastward_wind", "long_name": "eastward velocity", "units": "m s-1"},
    "northward_velocity": {"standard_name": "northward_wind", "long_name": "northward velocity", "units": "m s-1"},
}

_COORD_ATTRS: dict[str, dict[str, str]] = {
    "x": {"long_name": "x coordinate (nondimensional)", "units": "1", "axis": "X"},
    "y": {"long_name": "y coordinate (nondimensional)", "units": "1", "axis": "Y"},
    "time": {"long_name": "nondimensional simulation time", "units": "1", "axis": "T"},
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
    "sample": {"long_name": "sample index (independent initial condition)", "units": "1"},
}


#: Attributes that describe the stored numbers of a field rather than the quantity (packing, bounds seen in
#: the file): a model's output does not inherit them.
_VALUE_ATTRS = ("scale_factor", "add_offset", "_FillValue", "missing_value", "valid_range", "valid_min", "valid_max",
                "actual_range", "_Unsigned")


def derived_attrs(source: dict, *, units: str, name: str) -> dict:
    """The attributes of a field a model computed from the field ``name`` with ``source`` attributes.

    What describes the quantity (``long_name``, ``standard_name``, ``comment``, user attributes) is
    carried over; ``units`` are the model's; packing and value-range attributes are dropped since the
    new values were never stored that way.
    """
    attrs = {k: v for k, v in source.items() if k not in _VALUE_ATTRS}
    attrs["units"] = units
    attrs.setdefault("long_name", name)
    return attrs


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def trajectory_dataset(
    fields: Mapping[str, torch.Tensor | np.ndarray],
    *,
    times: Sequence[float] | None,
    coords: Mapping[str, torch.Tensor | np.ndarray],
    attrs: Mapping[str, object] | None = None,
    field_attrs: Mapping[str, Mapping[str, str]] | None = None,
    periodic: bool = True,
) -> xr.Dataset:
    """Wrap ``(sample, time, *space)`` (or, with ``times=None``, ``(sample, *space)``) arrays as a CF dataset.

    Args:
        fields: variable name -> array of shape ``(sample, time, *space)`` or ``(sample, *space)``.
        times: the ``time`` coordinate, or ``None`` for time-independent fields.
        coords: spatial coordinates in dim order, e.g. ``{"y": ..., "x": ...}``.
        attrs: global attributes (PDE parameters, provenance).
        field_attrs: per-variable attributes overriding :data:`VARIABLE_ATTRS`.
        periodic: whether a box domain is periodic; ``False`` marks its coordinates ``periodic =
            "false"`` (their values are then nodes including both ends of the domain). On the sphere
            ``lon`` is marked ``"true"`` and ``lat`` ``"false"``: latitude is never periodic.
    """
    import xarray as xr

    from ..grids import PERIODIC_ATTR

    space = list(coords)
    if not periodic and "lon" in space:
        raise DataError("periodic=False describes a bounded box, but a lat-lon grid is periodic in longitude; leave periodic=True")
    lead = ("sample",) if times is None else ("sample", "time")
    expected = (*([] if times is None else [len(times)]), *(len(_numpy(c)) for c in coords.values()))
    data_vars = {}
    for name, value in fields.items():
        array = _numpy(value)
        if array.ndim != 1 + len(expected) or array.shape[1:] != expected:
            raise DataError(f"field {name!r} has shape {array.shape}; expected (sample, {', '.join(map(str, expected))})")
        var_attrs = {**VARIABLE_ATTRS.get(name, {"long_name": name, "units": "1"}), **(field_attrs or {}).get(name, {})}
        data_vars[name] = ((*lead, *space), array, var_attrs)
    n_samples = next(iter(data_vars.values()))[1].shape[0]
    all_coords = {"sample": ("sample", np.arange(n_samples), _COORD_ATTRS["sample"])}
    if times is not None:
        all_coords["time"] = ("time", np.asarray(times, dtype=np.float64), _COORD_ATTRS["time"])
    for dim, values in coords.items():
        coord_attrs = {**_COORD_ATTRS.get(dim, {"long_name": dim, "units": "1"}), PERIODIC_ATTR: str(periodic and dim != "lat").lower()}
        all_coords[dim] = (dim, _numpy(values).astype(np.float64), coord_attrs)
    from .. import __version__

    global_attrs = {"Conventions": "CF-1.10", "source": f"sciml {__version__}", **(attrs or {})}
    return xr.Dataset(data_vars, coords=all_coords, attrs=global_attrs)


def check_writable(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Fail early, before hours of work, when ``path`` cannot be written: :class:`DataError` naming it.

    An existing file is refused unless ``overwrite`` (its data would be lost). A path ending in ``.zarr``
    names a zarr store, a directory: an existing one is replaced only with ``overwrite`` and only when it
    is a zarr store or empty (never a directory of other files, nor a plain file of that name).
    """
    path = Path(path)
    directory = path.parent
    if path.suffix == ".zarr":
        _check_zarr_target(path, overwrite=overwrite)
    elif path.is_dir():
        raise DataError(f"{path}: is a directory; give a file name such as {path / 'data.nc'}")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise DataError(exists_message(path))
    if not directory.is_dir():
        raise DataError(f"{path}: directory {directory} does not exist; create it or choose another --out")
    if not os.access(directory, os.W_OK):
        raise DataError(f"{path}: directory {directory} is not writable; choose another --out")
    import tempfile

    try:  # os.access says yes to root, and to a read-only file system: try it
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as err:
        raise DataError(f"{path}: directory {directory} is not writable ({err.strerror or err}); choose another --out") from None
    return path


def _check_zarr_target(path: Path, *, overwrite: bool) -> None:
    """What may stand at a ``.zarr`` target: nothing, or (with ``overwrite``) a zarr store or an empty directory."""
    if not (path.exists() or path.is_symlink()) or not overwrite:
        return  # absent, or refused as existing by the caller
    if path.is_symlink() or not path.is_dir():
        raise DataError(f"{path}: is a file, not a zarr store, and a store would replace it; remove it or choose "
                        "another path")
    entries = set(os.listdir(path))
    if entries and not entries & {".zgroup", ".zmetadata", "zarr.json", ".zarray"}:
        raise DataError(f"{path}: is a directory of other files, not a zarr store; refusing to replace it even with "
                        "overwrite: remove it or choose another path")
