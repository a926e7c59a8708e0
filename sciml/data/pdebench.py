"""Reader for PDEBench HDF5 files into the canonical layout (``_layout.py``).

PDEBench (Takamoto et al., "PDEBench: An Extensive Benchmark for Scientific Machine Learning",
NeurIPS 2022 Datasets & Benchmarks; data doi:10.18419/darus-2986) ships four HDF5 layouts,
as written by its generators (``pdebench/data_gen/data_gen_NLE/Data_Merge.py``,
``pdebench/data_gen/gen_*.py``) and read by its loaders (``pdebench/models/fno/utils.py``);
``N`` samples, ``T`` stored steps, spatial axes x before y before z::

    single array    tensor (N, T, X) [1-D advection, Burgers, reaction-diffusion]
                    x-coordinate (X,), t-coordinate (T + 1,) or (T,)
                    @beta (advection), @Nu (Burgers), @Nu @rho (reaction-diffusion)
    Darcy flow      tensor (N, 1, X, Y) solution, nu (N, X, Y) coefficient
                    x-coordinate (X,), y-coordinate (Y,), @beta (forcing); no time
    compressible    density, pressure, Vx[, Vy[, Vz]] each (N, T, X[, Y[, Z]])
    Navier-Stokes   x-, [y-, z-]coordinate, t-coordinate (T + 1,) or (T,); @eta @zeta, @M (2-D, 3-D)
    group per       0000/, 0001/, ... each data (T, X[, Y], C), grid/x, [grid/y,] grid/t (T,)
    sample          and the run's YAML @config on the group (or as root @0000/config, diff-sorp)
                    [1-D diffusion-sorption C=1, 2-D shallow water C=1, 2-D diffusion-reaction C=2]

Mapping to the canonical layout (each change is recorded in ``ds.attrs["sciml_normalisation"]``):

- dims ``sample``, ``time`` (none for Darcy) and ``x``[, ``y``[, ``z``]] in the file's axis order;
  ``sample`` is ``0..N-1``, or the group number for the group layout (group names kept in the
  ``sample_name`` coordinate, each group's ``config`` text in the ``config`` coordinate);
- ``tensor`` -> ``u``; Darcy ``nu`` -> ``a`` and the singleton axis 1 of ``tensor`` is dropped;
  CFD fields keep their names; group ``data`` channels become ``u`` (1-D, C=1), ``h`` (2-D, C=1,
  shallow-water depth), ``u``, ``v`` (2-D, C=2, diffusion-reaction activator and inhibitor), else
  ``data_0``, ``data_1``, ...;
- ``t-coordinate`` has one more value than there are steps in the 1-D and CFD files (the
  generators save ``arange(T + 1) * dt``); its first ``T`` values are the step times, as PDEBench's
  own loader uses them;
- root attributes (PDE parameters) become global attributes; group-layout coordinates are the
  first group's (PDEBench writes the same grid to every group; all groups' shapes are checked).

PDEBench documents every array as ``[t, x1, ..., xd, v]``, which this reader follows for all files.
(Its 2-D diffusion-reaction generator, ``sim_diff_react.py``, reshapes to ``(t, y, x)``: the file
cannot tell, its grid being square with equal x and y coordinates, so there x and y may be swapped;
the problem is symmetric under that swap.)

Arrays stay lazy: :class:`_HDF5Array` reads only the requested part with h5py, opening the file
for each read, so datasets pickle (path and names only) and work in ``DataLoader`` workers.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from ..errors import DataError
from ._layout import record

__all__ = ["matches", "read"]

_SPACE = ("x", "y", "z")
_CFD_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")
# Group layout: variable names by (spatial dims, channels); any other shape gets data_0, data_1, ...
_CHANNEL_NAMES = {(1, 1): ("u",), (2, 1): ("h",), (2, 2): ("u", "v")}


class _HDF5Array(BackendArray):
    """Read-only lazy view of the HDF5 dataset ``name``; with ``groups``, of ``<group>/<name>`` in each
    group stacked along a new leading axis. The file is opened for each read (pickle- and fork-safe)."""

    def __init__(self, path: str, name: str, shape: tuple[int, ...], dtype: np.dtype, groups: tuple[str, ...] | None = None):
        self.path, self.name, self.groups = path, name, groups
        self.shape = shape if groups is None else (len(groups), *shape)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        # h5py takes slices, integers and one increasing index list: xarray reduces keys to that
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            if self.groups is None:
                return np.asarray(f[self.name][key])
            picked, rest = np.arange(len(self.groups))[key[0]], key[1:]
            if picked.ndim == 0:
                return np.asarray(f[self.groups[picked]][self.name][rest])
            frames = [f[self.groups[i]][self.name][rest] for i in picked]
            if frames:
                return np.stack(frames)
            frame_shape = np.broadcast_to(np.empty((), self.dtype), self.shape[1:])[rest].shape
            return np.empty((0, *frame_shape), self.dtype)


def matches(f: h5py.File) -> bool:
    """Cheap structural check: True when the open HDF5 file has one of the PDEBench layouts."""
    if "_NCProperties" in f.attrs:
        return False
    if isinstance(f.get("tensor"), h5py.Dataset):
        return True
    if all(isinstance(f.get(name), h5py.Dataset) for name in ("density", "Vx")):
        return True
    names = list(f.keys())
    return bool(names) and all(name.isdigit() for name in names) and isinstance(f.get(names[0]), h5py.Group)


def read(path: str | os.PathLike) -> xr.Dataset:
    """Open a PDEBench file lazily into the canonical layout.

    Raises:
        DataError: one line naming the file and the dataset or group at fault, and the fix.
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        if not matches(f):
            entries = sorted(f.keys())[:8]
            raise DataError(
                f"{path}: not a PDEBench file (no 'tensor', no 'density' and 'Vx', no numbered sample groups; "
                f"top-level entries {entries}); open it with sciml.data.open to detect its format"
            )
        if "tensor" in f:
            ds = _read_tensor(path, f)
        elif "density" in f:
            ds = _read_cfd(path, f)
        else:
            ds = _read_groups(path, f)
    ds.attrs["sciml_format"] = "pdebench"
    return ds


def _lazy(path: Path, name: str, dims: tuple[str, ...], shape: tuple[int, ...], dtype: np.dtype,
          groups: tuple[str, ...] | None = None, attrs: dict | None = None) -> xr.Variable:
    """A lazily indexed variable over ``name`` (stacked over ``groups`` when given)."""
    array = _HDF5Array(str(path), name, shape, dtype, groups)
    return xr.Variable(dims, indexing.CopyOnWriteArray(indexing.LazilyIndexedArray(array)), attrs)


def _axis(path: Path, f: h5py.File, name: str, owner: str, shape: tuple[int, ...], axis: int, dim: str) -> tuple[np.ndarray, str | None]:
    """Coordinate ``name`` for ``axis`` (``dim``) of dataset ``owner``, and a note when it was trimmed.

    Only ``time`` may be longer than the axis (PDEBench stores ``T + 1`` times); its first values are used.
    """
    n = shape[axis]
    if not isinstance(f.get(name), h5py.Dataset):
        raise DataError(
            f"{path}: no {name!r} dataset for the {dim} axis of {owner!r} (axis {axis} of shape {shape}); add it or re-download the file"
        )
    values = np.asarray(f[name][()])
    if values.ndim == 1 and dim == "time" and values.size > n:
        return values[:n], f"kept the first {n} of the {values.size} {name} values as time (one per stored step)"
    if values.shape != (n,):
        raise DataError(
            f"{path}: {name!r} has shape {values.shape} but {owner!r} has {n} along {dim} (axis {axis} of shape {shape}); "
            "fix or re-download the file"
        )
    return values, None


def _space_dims(path: Path, owner: str, shape: tuple[int, ...], expected: str) -> tuple[str, ...]:
    """``x``[, ``y``[, ``z``]] for the axes of ``owner`` after its two leading ones."""
    if not 1 <= len(shape) - 2 <= 3:
        raise DataError(f"{path}: {owner!r} has shape {shape}; expected {expected}; check that this is a PDEBench file")
    return _SPACE[: len(shape) - 2]


def _read_tensor(path: Path, f: h5py.File) -> xr.Dataset:
    """Single-array files: 1-D ``tensor (N, T, X)`` and Darcy ``tensor (N, 1, X, Y)`` with ``nu (N, X, Y)``."""
    tensor = f["tensor"]
    shape = tensor.shape
    darcy = "nu" in f
    space = _space_dims(path, "tensor", shape, "(sample, time, x[, y[, z]]), or (sample, 1, x, y) with 'nu' for Darcy flow")
    coords: dict[str, object] = {"sample": np.arange(shape[0])}
    renames = [f"{dim}-coordinate->{dim}" for dim in space]
    notes = []
    for axis, dim in enumerate(space, start=2):
        coords[dim], _ = _axis(path, f, f"{dim}-coordinate", "tensor", shape, axis, dim)
    if darcy:  # (sample, 1, x, y): a steady solution, no time axis
        nu = f["nu"]
        if shape[1] != 1:
            raise DataError(
                f"{path}: 'tensor' has shape {shape} but a Darcy file ('nu' present) stores the solution as (sample, 1, x, y); "
                "check the file"
            )
        if nu.shape != (shape[0], *shape[2:]):
            raise DataError(
                f"{path}: 'nu' has shape {nu.shape} but 'tensor' has shape {shape}; expected 'nu' of shape {(shape[0], *shape[2:])}; "
                "re-download the file"
            )
        u = _lazy(path, "tensor", ("sample", "channel", *space), shape, tensor.dtype, attrs=dict(tensor.attrs))
        data_vars = {"u": u.isel(channel=0), "a": _lazy(path, "nu", ("sample", *space), nu.shape, nu.dtype, attrs=dict(nu.attrs))}
        notes += ["dropped the singleton axis 1 of tensor", "renamed nu->a"]
    else:  # (sample, time, x[, y[, z]])
        coords["time"], trimmed = _axis(path, f, "t-coordinate", "tensor", shape, 1, "time")
        renames.append("t-coordinate->time")
        if trimmed:
            notes.append(trimmed)
        data_vars = {"u": _lazy(path, "tensor", ("sample", "time", *space), shape, tensor.dtype, attrs=dict(tensor.attrs))}
    ds = xr.Dataset(data_vars, coords=coords, attrs=dict(f.attrs))
    for change in ["renamed tensor->u", *notes, f"renamed {', '.join(renames)}"]:
        record(ds, change)
    return ds


def _read_cfd(path: Path, f: h5py.File) -> xr.Dataset:
    """Compressible Navier-Stokes: ``density``, ``pressure``, ``Vx``[, ``Vy``[, ``Vz``]] each ``(N, T, X[, Y[, Z]])``."""
    shape = f["density"].shape
    space = _space_dims(path, "density", shape, "(sample, time, x[, y[, z]])")
    names = [name for name in _CFD_FIELDS if name in f]
    for name in names:
        if f[name].shape != shape:
            raise DataError(
                f"{path}: {name!r} has shape {f[name].shape} but 'density' has {shape}; "
                "every CFD field must share (sample, time, x[, y[, z]]); re-download the file"
            )
    coords: dict[str, object] = {"sample": np.arange(shape[0])}
    for axis, dim in enumerate(space, start=2):
        coords[dim], _ = _axis(path, f, f"{dim}-coordinate", "density", shape, axis, dim)
    coords["time"], trimmed = _axis(path, f, "t-coordinate", "density", shape, 1, "time")
    dims = ("sample", "time", *space)
    data_vars = {name: _lazy(path, name, dims, shape, f[name].dtype, attrs=dict(f[name].attrs)) for name in names}
    ds = xr.Dataset(data_vars, coords=coords, attrs=dict(f.attrs))
    for change in [trimmed, f"renamed {', '.join(f'{d}-coordinate->{d}' for d in space)}, t-coordinate->time"]:
        if change:
            record(ds, change)
    return ds


def _read_groups(path: Path, f: h5py.File) -> xr.Dataset:
    """One group per sample: ``NNNN/data (T, X[, Y], C)`` with ``NNNN/grid/{x,y,t}``; channels become variables."""
    names = sorted(f.keys(), key=int)
    root_attrs = dict(f.attrs.items())  # read once: diff-sorp files hold one config attribute per sample here
    shape = dtype = None
    configs = []
    for name in names:
        group = f[name]
        data = group.get("data") if isinstance(group, h5py.Group) else None
        if not isinstance(data, h5py.Dataset):
            raise DataError(
                f"{path}: group {name!r} has no 'data' dataset; every sample group needs 'data' (time, x[, y], channel) "
                "and 'grid/x', 'grid/t'; drop the group or re-download the file"
            )
        if shape is None:
            shape, dtype = data.shape, data.dtype
        elif data.shape != shape:
            raise DataError(
                f"{path}: '{name}/data' has shape {data.shape} but '{names[0]}/data' has {shape}; "
                f"all samples must share one grid and length; drop group {name!r} or re-download the file"
            )
        config = group.attrs.get("config", root_attrs.get(f"{name}/config"))
        configs.append(config.decode() if isinstance(config, bytes) else config)
    first = f"{names[0]}/data"
    space = _space_dims(path, first, shape, "(time, x[, y[, z]], channel)")
    coords: dict[str, object] = {"sample": np.array([int(name) for name in names]), "sample_name": ("sample", np.array(names))}
    for axis, dim in enumerate(space, start=1):
        coords[dim], _ = _axis(path, f, f"{names[0]}/grid/{dim}", first, shape, axis, dim)
    coords["time"], trimmed = _axis(path, f, f"{names[0]}/grid/t", first, shape, 0, "time")
    if all(config is not None for config in configs):
        coords["config"] = ("sample", np.array(configs, dtype=object))
    channels = _CHANNEL_NAMES.get((len(space), shape[-1]), tuple(f"data_{i}" for i in range(shape[-1])))
    # (sample, time, x[, y], channel), one variable per channel
    full = _lazy(path, "data", ("sample", "time", *space, "channel"), shape, dtype, groups=tuple(names))
    data_vars = {name: full.isel(channel=i) for i, name in enumerate(channels)}
    ds = xr.Dataset(data_vars, coords=coords, attrs={k: v for k, v in root_attrs.items() if not k.endswith("/config")})
    changes = [
        f"stacked the {len(names)} sample groups {names[0]}..{names[-1]} along sample",
        f"split the channel axis of data into {', '.join(channels)}",
        trimmed,
        f"renamed {', '.join(f'grid/{d}->{d}' for d in space)}, grid/t->time (from group {names[0]})",
        "kept each group's config attribute as the config coordinate" if "config" in coords else None,
    ]
    for change in changes:
        if change:
            record(ds, change)
    return ds
