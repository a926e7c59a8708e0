"""Where a rollout's steps go: numpy arrays in memory, or a NetCDF4 file / zarr store written step by step.

A zarr store has the layout of :func:`sciml.data.write`'s (format 2, consolidated metadata, one chunk per
frame: 1 along sample, time, lead time and member, whole fields; Blosc-zstd), so it opens with
:func:`sciml.data.open` to the dataset the in-memory rollout returns. The file is laid out in full before the first step (CF coordinates and attributes, data variables filled
with NaN, one chunk per lead time and initial frame: whole fields), then each step's values are written
into their slice, so memory holds one step whatever the forecast's length. The file is written under a
temporary name and renamed when complete (:mod:`sciml._atomic`): an interrupted forecast leaves no file
that looks finished.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from .._atomic import atomic_directory, atomic_path
from ..errors import ConfigError, DataError

__all__ = ["MemoryWriter", "StreamWriter"]

STREAM_COMPRESSION = 4  # zarr: Blosc-zstd level, as sciml.data.write's default


class MemoryWriter:
    """Holds the whole forecast as float32 arrays; :meth:`result` is the in-memory dataset."""

    def __init__(self, *, shape: tuple[int, ...], dims: tuple[str, ...], variables: dict[str, dict], coords: dict,
                 attrs: dict, lead_axis: int, overwrite: bool = False) -> None:
        self.dims, self.variables, self.coords, self.attrs, self.lead_axis = dims, variables, coords, attrs, lead_axis
        self.arrays = {name: np.full(shape, np.nan, dtype=np.float32) for name in variables}

    def __enter__(self) -> MemoryWriter:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def write(self, step: int, values: dict[str, np.ndarray]) -> None:
        """``values[name]``: one lead time, the full shape less the lead-time axis."""
        index = (slice(None),) * self.lead_axis + (step,)
        for name, array in values.items():
            self.arrays[name][index] = array

    def result(self):
        import xarray as xr

        data = {name: (self.dims, self.arrays[name], attrs) for name, attrs in self.variables.items()}
        return xr.Dataset(data, coords=self.coords, attrs=self.attrs)


class StreamWriter(MemoryWriter):
    """Writes each step into a NetCDF4 file (``.nc``) or a zarr store (``.zarr``) as it comes."""

    def __init__(self, path: Path, *, shape, dims, variables, coords, attrs, lead_axis, overwrite: bool = False) -> None:
        from ..data.cf import check_writable

        self.dims, self.variables, self.coords, self.attrs, self.lead_axis = dims, variables, coords, attrs, lead_axis
        self.format = {".nc": "netcdf", ".zarr": "zarr"}.get(path.suffix)
        if self.format is None:
            raise ConfigError(f"{path}: a forecast streams to NetCDF ('.nc') or zarr ('.zarr'), not {path.suffix or 'no suffix'!r}")
        self.path = path if self.format == "zarr" else check_writable(path, overwrite=overwrite)
        self.overwrite = overwrite
        if self.format == "zarr" and path.exists() and not overwrite:
            raise DataError(f"{path}: exists; pass overwrite=True (--overwrite) or choose another path")
        self.shape = shape
        if self.format == "zarr":  # the layout of sciml.data.write's stores: one chunk per frame, CF attributes
            from ..data.io import _ZARR_FMT, _check_attrs, frame_chunks

            self.chunks = frame_chunks(dims, shape)  # 1 along sample, time, lead_time and member; whole fields
            _check_attrs("the dataset", attrs, path, _ZARR_FMT)
            for name, var_attrs in variables.items():
                _check_attrs(f"variable {name!r}", var_attrs, path, _ZARR_FMT)
        else:
            self.chunks = tuple(1 if axis <= lead_axis else size for axis, size in enumerate(shape))  # whole fields
        self._stack = contextlib.ExitStack()

    def _template(self):
        import dask.array as da
        import xarray as xr

        data = {name: (self.dims, da.zeros(self.shape, chunks=self.chunks, dtype=np.float32), attrs)
                for name, attrs in self.variables.items()}
        return xr.Dataset(data, coords=self.coords, attrs={**self.attrs, "Conventions": self.attrs.get("Conventions", "CF-1.10")})

    def __enter__(self) -> StreamWriter:
        template = self._template()
        try:
            if self.format == "netcdf":
                import netCDF4

                tmp = self._stack.enter_context(atomic_path(self.path, overwrite=self.overwrite))
                encoding = {name: {"chunksizes": self.chunks, "zlib": True, "complevel": 1, "_FillValue": np.float32(np.nan)}
                            for name in self.variables}
                template.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding, compute=False)
                self._file = self._stack.enter_context(netCDF4.Dataset(tmp, "a"))
                self._file.set_auto_mask(False)
            else:
                import zarr

                from ..data.io import ZARR_FORMAT, _fsync_tree, zarr_compressor

                staging = self._stack.enter_context(atomic_directory(self.path, overwrite=self.overwrite))
                # on a clean exit, before the rename (exit callbacks run last-in first-out): every chunk on disk
                self._stack.push(lambda kind, *_: None if kind is not None else _fsync_tree(staging))
                compressor = zarr_compressor(STREAM_COMPRESSION)
                encoding = {name: {"chunks": self.chunks, "_FillValue": np.float32(np.nan), "compressors": (compressor,)}
                            for name in self.variables}
                # the metadata (shapes, CF attributes) are final now: consolidated once, before any step is written
                template.to_zarr(staging, mode="w", encoding=encoding, compute=False, consolidated=True,
                                 zarr_format=ZARR_FORMAT)
                self._file = zarr.open_group(staging, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> bool | None:
        return self._stack.__exit__(*exc)

    def write(self, step: int, values: dict[str, np.ndarray]) -> None:
        index = (slice(None),) * self.lead_axis + (step,)
        try:
            for name, array in values.items():
                self._file[name][index] = array
        except OSError as error:
            raise DataError(f"{self.path}: writing lead time {step + 1} failed ({error}); is the disk full?") from None

    def result(self):
        import xarray as xr

        if self.format == "netcdf":
            return xr.open_dataset(self.path, engine="netcdf4", chunks={})
        return xr.open_zarr(self.path, consolidated=True)
