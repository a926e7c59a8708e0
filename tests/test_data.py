import os

import netCDF4
import numpy as np
import pytest
import torch

from sciml import DataError
from sciml import data
from sciml.data import OperatorPairs, grid_of, stack_fields, trajectory_dataset


def make_dataset(n=3, t=2, ny=4, nx=6):
    rng = np.random.default_rng(0)
    return trajectory_dataset(
        {"vorticity": rng.standard_normal((n, t, ny, nx)).astype(np.float32)},
        times=np.arange(t) * 0.5,
        coords={"y": np.arange(ny) / ny, "x": np.arange(nx) / nx},
        attrs={"viscosity": 1e-3, "history": "sciml test"},
    )


def test_netcdf_round_trip_is_exact_and_cf_annotated(tmp_path):
    ds = make_dataset()
    path = data.write(ds, tmp_path / "traj.nc")
    back = data.open(path).load()
    assert back.identical(ds)  # values, dtypes, coordinates and every attribute
    # Read the file with netCDF4 directly: the CF attributes are really in it.
    with netCDF4.Dataset(path) as raw:
        assert raw.Conventions == "CF-1.10"
        assert raw.variables["vorticity"].dimensions == ("sample", "time", "y", "x")
        assert raw.variables["vorticity"].units == "1" and raw.variables["vorticity"].long_name
        assert raw.variables["x"].axis == "X" and raw.variables["time"].axis == "T"
        assert raw.viscosity == 1e-3 and raw.history == "sciml test"
    assert [p.name for p in tmp_path.iterdir()] == ["traj.nc"]  # no temporary left behind


def test_failed_write_leaves_no_file(tmp_path):
    ds = make_dataset()
    ds["vorticity"].attrs["bad"] = {"nested": "dicts are not NetCDF attributes"}
    with pytest.raises(DataError, match=r"out\.nc: attribute 'bad' of variable 'vorticity' is a dict, which NetCDF cannot store"):
        data.write(ds, tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_or_missing_directory_is_a_one_line_error(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        data.write(make_dataset(), tmp_path / "missing" / "out.nc")
    # Tests run as root here, which writes anywhere; simulate the permission check's answer.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(DataError, match=r"out\.nc: directory .* is not writable"):
        data.write(make_dataset(), tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def test_tensors_from_datasets_and_their_errors(tmp_path):
    ds = make_dataset()
    pairs = OperatorPairs(ds, inputs=["vorticity"], outputs=["vorticity"], lag=1)
    inputs, outputs = (torch.stack(part) for part in zip(*pairs.__getitems__(range(len(pairs)))))
    assert inputs.shape == (3, 1, 4, 6)
    torch.testing.assert_close(outputs[:, 0], torch.from_numpy(ds["vorticity"].values[:, 1]))
    assert grid_of(ds).shape == (4, 6)
    with pytest.raises(DataError, match=r"variable\(s\) \['pressure'\] not found"):
        stack_fields(ds, ["pressure"])
    path = data.write(ds, tmp_path / "nan.nc")
    with netCDF4.Dataset(path, "a") as raw:
        raw.variables["vorticity"][1, 0, 2, 3] = np.nan
    with pytest.raises(DataError, match=r"nan\.nc: variable 'vorticity' has NaN/Inf values \(first at sample=1, time=0, y=2, x=3\)"):
        stack_fields(data.open(path), ["vorticity"])
    stretched = ds.assign_coords(x=np.array([0.0, 0.1, 0.3, 0.4, 0.5, 0.6]))
    with pytest.raises(DataError, match="not uniformly spaced"):
        grid_of(stretched)
