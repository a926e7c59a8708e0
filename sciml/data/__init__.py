"""Data in and out: CF NetCDF readers/writers and xarray <-> tensor conversion."""

from ..errors import DataError
from .netcdf import open_netcdf, trajectory_dataset, write_netcdf
from .tensors import grid_of, stack_fields, time_pairs

__all__ = ["DataError", "open_netcdf", "write_netcdf", "trajectory_dataset", "grid_of", "stack_fields", "time_pairs"]
