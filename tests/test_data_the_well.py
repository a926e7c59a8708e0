"""The Well HDF5 reader: files written with h5py straight from The Well's spec (docs/data_format.md)."""

from __future__ import annotations

import itertools
import pickle
import re
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import xarray as xr

from sciml.data import the_well
from sciml.errors import DataError


def distinct(shape: tuple[int, ...], offset: int) -> np.ndarray:
    """float32 values that differ at every index (and from every other field), so swapped axes show."""
    return (offset + np.arange(int(np.prod(shape)))).reshape(shape).astype(np.float32)


def put_field(f: h5py.File, group: str, name: str, data: np.ndarray, *, sample: bool = True, time: bool = True, dims: list[bool] | None = None) -> None:
    fields = f.require_group(group)
    fields.attrs["field_names"] = [*(str(n) for n in fields.attrs.get("field_names", [])), name]
    ds = fields.create_dataset(name, data=data)
    ds.attrs["dim_varying"] = np.array(dims if dims is not None else [True] * f.attrs["n_spatial_dims"])
    ds.attrs["sample_varying"] = sample
    ds.attrs["time_varying"] = time


def write_well(path: Path, *, n_traj: int = 2, n_time: int = 4, space: dict[str, int] | None = None, full: bool = True) -> dict[str, np.ndarray]:
    """A The Well file as the spec lays it out; returns the field arrays written, by ``group/name``."""
    space = space or {"x": 6, "y": 8}
    spatial, shape = list(space), tuple(space.values())
    n, lead = len(space), (n_traj, n_time)
    written: dict[str, np.ndarray] = {}
    with h5py.File(path, "w") as f:
        f.attrs.update(
            dataset_name="toy_flow", grid_type="cartesian", n_spatial_dims=n, n_trajectories=n_traj,
            simulation_parameters=["Re"], Re=100.0,
        )
        dimensions = f.create_group("dimensions")
        dimensions.attrs["spatial_dims"] = spatial
        dimensions.create_dataset("time", data=0.5 * np.arange(n_time, dtype=np.float32))
        dimensions["time"].attrs["sample_varying"] = False
        for k, (dim, size) in enumerate(space.items()):
            dimensions.create_dataset(dim, data=(np.arange(size) / size + k).astype(np.float32))
            dimensions[dim].attrs.update(sample_varying=False, time_varying=False)
        for group in the_well.FIELD_GROUPS:
            f.create_group(group).attrs["field_names"] = []
        written["t0_fields/density"] = distinct((*lead, *shape), 0)
        written["t1_fields/velocity"] = distinct((*lead, *shape, n), 100_000)
        put_field(f, "t0_fields", "density", written["t0_fields/density"])
        put_field(f, "t1_fields", "velocity", written["t1_fields/velocity"])
        if not full:
            return written
        written["t0_fields/obstacle"] = distinct((n_traj, *shape), 200_000)  # constant in time
        written["t0_fields/forcing"] = distinct((n_time, *shape), 300_000)  # same for every trajectory
        written["t2_fields/stress"] = distinct((*lead, *shape, n, n), 400_000)
        put_field(f, "t0_fields", "obstacle", written["t0_fields/obstacle"], time=False)
        put_field(f, "t0_fields", "forcing", written["t0_fields/forcing"], sample=False)
        put_field(f, "t2_fields", "stress", written["t2_fields/stress"])
        f["t2_fields/stress"].attrs.update(symmetric=False, antisymmetric=False)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["Re", "nu", "energy"]
        for name, data, sample, time in [
            ("Re", np.float32(100.0), False, False),
            ("nu", 0.01 * np.arange(1, n_traj + 1, dtype=np.float32), True, False),
            ("energy", np.arange(n_time, dtype=np.float32) + 1, False, True),
        ]:
            scalars.create_dataset(name, data=data)
            scalars[name].attrs.update(sample_varying=sample, time_varying=time)
        bcs = f.create_group("boundary_conditions")
        for name, dim, kind in [("x_periodic", "x", "PERIODIC"), ("y_wall", "y", "WALL")]:
            bc = bcs.create_group(name)
            bc.attrs.update(associated_dims=[dim], associated_fields=[], bc_type=kind, sample_varying=False, time_varying=False)
            mask = np.zeros(space[dim], dtype=bool)
            mask[[0, -1]] = True
            bc.create_dataset("mask", data=mask)
    return written


@pytest.fixture
def well(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "toy_flow.hdf5"
    return path, write_well(path)


def test_matches_the_well_and_nothing_else(tmp_path: Path, well: tuple[Path, dict]) -> None:
    path, _ = well
    netcdf = tmp_path / "plain.nc"
    xr.Dataset({"u": (("time", "x"), np.zeros((2, 3)))}).to_netcdf(netcdf, engine="h5netcdf")
    pdebench = tmp_path / "pdebench.h5"
    with h5py.File(pdebench, "w") as f:
        f.create_dataset("tensor", data=np.zeros((2, 3, 4)))
        f.create_dataset("x-coordinate", data=np.arange(4.0))
    seeds = tmp_path / "seeds.h5"
    with h5py.File(seeds, "w") as f:
        for seed in ("0000", "0001"):
            f.create_group(seed).create_dataset("data", data=np.zeros((2, 3)))
    with h5py.File(path, "r") as f:
        assert the_well.matches(f)
    for other in (netcdf, pdebench, seeds):
        with h5py.File(other, "r") as f:
            assert not the_well.matches(f)


def test_read_maps_every_field_kind_scalar_and_attribute(well: tuple[Path, dict]) -> None:
    path, written = well
    with the_well.read(path) as ds:
        assert sorted(ds.data_vars) == sorted(
            ["density", "obstacle", "forcing", "velocity_x", "velocity_y", "stress_xx", "stress_xy", "stress_yx", "stress_yy"]
        )
        assert ds["density"].dims == ("sample", "time", "x", "y")
        assert ds["velocity_y"].dims == ("sample", "time", "x", "y")
        assert ds["stress_xy"].dims == ("sample", "time", "x", "y")
        assert ds["obstacle"].dims == ("sample", "x", "y")  # time_varying false: no time axis
        assert ds["forcing"].dims == ("time", "x", "y")  # sample_varying false: no sample axis
        np.testing.assert_array_equal(ds["density"].values, written["t0_fields/density"])
        np.testing.assert_array_equal(ds["obstacle"].values, written["t0_fields/obstacle"])
        np.testing.assert_array_equal(ds["forcing"].values, written["t0_fields/forcing"])
        velocity, stress = written["t1_fields/velocity"], written["t2_fields/stress"]
        np.testing.assert_array_equal(ds["velocity_x"].values, velocity[..., 0])
        np.testing.assert_array_equal(ds["velocity_y"].values, velocity[..., 1])
        for (i, a), (j, b) in itertools.product(enumerate("xy"), repeat=2):
            np.testing.assert_array_equal(ds[f"stress_{a}{b}"].values, stress[..., i, j])

        np.testing.assert_array_equal(ds["sample"].values, [0, 1])
        np.testing.assert_array_equal(ds["time"].values, [0.0, 0.5, 1.0, 1.5])
        np.testing.assert_allclose(ds["x"].values, np.arange(6) / 6, rtol=1e-6)
        np.testing.assert_allclose(ds["y"].values, np.arange(8) / 8 + 1, rtol=1e-6)
        assert ds["nu"].dims == ("sample",) and ds["nu"].values.tolist() == pytest.approx([0.01, 0.02])
        assert ds["energy"].dims == ("time",) and ds["energy"].values.tolist() == [1, 2, 3, 4]
        assert "nu" in ds.coords and "energy" in ds.coords and "Re" not in ds.variables

        assert ds.attrs["sciml_format"] == "the_well"
        assert ds.attrs["dataset_name"] == "toy_flow" and ds.attrs["grid_type"] == "cartesian"
        assert ds.attrs["n_spatial_dims"] == 2 and ds.attrs["Re"] == 100.0
        assert ds.attrs["simulation_parameters"] == ["Re"]
        assert ds.attrs["boundary_conditions"] == "x: PERIODIC; y: WALL"
        assert ds["stress_xy"].attrs == {"symmetric": 0, "antisymmetric": 0}
        assert ds.encoding["source"] == str(path)
        changes = ds.attrs["sciml_normalisation"].split("; ")
        assert "t1_fields/velocity split into velocity_x, velocity_y" in changes
        assert "t2_fields/stress split into stress_xx, stress_xy, stress_yx, stress_yy" in changes
        assert "t0_fields/obstacle kept without dims time (it does not vary along them)" in changes
        assert "t0_fields/forcing kept without dims sample (it does not vary along them)" in changes
        assert "boundary_conditions/ summarised as attribute boundary_conditions (masks and values dropped)" in changes


def test_equal_lengths_are_told_apart_by_the_attributes(tmp_path: Path) -> None:
    # n_traj == n_time == nx == ny == D**2: every axis has length 4, only the attributes say which is which.
    path = tmp_path / "square.hdf5"
    written = write_well(path, n_traj=4, n_time=4, space={"x": 4, "y": 4})
    with the_well.read(path) as ds:
        np.testing.assert_array_equal(ds["density"].values, written["t0_fields/density"])
        np.testing.assert_array_equal(ds["obstacle"].values, written["t0_fields/obstacle"])
        np.testing.assert_array_equal(ds["forcing"].values, written["t0_fields/forcing"])
        np.testing.assert_array_equal(ds["velocity_y"].values, written["t1_fields/velocity"][..., 1])
        np.testing.assert_array_equal(ds["stress_yx"].values, written["t2_fields/stress"][..., 1, 0])
        assert ds["obstacle"].dims == ("sample", "x", "y") and ds["forcing"].dims == ("time", "x", "y")
        assert dict(ds.sizes) == {"sample": 4, "time": 4, "x": 4, "y": 4}


@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("sample, time", list(itertools.product([True, False], repeat=2)))
def test_every_combination_of_layout_flags(tmp_path: Path, order: int, sample: bool, time: bool) -> None:
    path = tmp_path / "flags.hdf5"
    write_well(path, n_traj=3, n_time=3, space={"x": 3, "y": 3}, full=False)
    lead = (3,) * (sample + time)
    data = distinct((*lead, 3, 3, *(2,) * order), 500_000)
    with h5py.File(path, "a") as f:
        put_field(f, f"t{order}_fields", "q", data, sample=sample, time=time)
    name = {0: "q", 1: "q_y", 2: "q_yx"}[order]
    with the_well.read(path) as ds:
        dims = (*(["sample"] if sample else []), *(["time"] if time else []), "x", "y")
        assert ds[name].dims == dims
        np.testing.assert_array_equal(ds[name].values, data[(..., *(1, 0)[:order])])


def test_field_constant_along_a_spatial_dim(tmp_path: Path) -> None:
    # The spec omits the axis (FieldC: B x T x H); the reference loader tiles a kept length-1 axis.
    path = tmp_path / "profile.hdf5"
    write_well(path, space={"x": 3, "y": 5}, full=False)
    omitted, kept = distinct((2, 4, 3), 600_000), distinct((2, 4, 1, 5), 700_000)
    with h5py.File(path, "a") as f:
        put_field(f, "t0_fields", "profile", omitted, dims=[True, False])
        put_field(f, "t0_fields", "inflow", kept, dims=[False, True])
    with the_well.read(path) as ds:
        assert ds["profile"].dims == ("sample", "time", "x") and ds["inflow"].dims == ("sample", "time", "y")
        np.testing.assert_array_equal(ds["profile"].values, omitted)
        np.testing.assert_array_equal(ds["inflow"].values, kept[:, :, 0])
        assert "t0_fields/inflow kept without dims x (it does not vary along them)" in ds.attrs["sciml_normalisation"]


def test_three_dimensional_vector_components(tmp_path: Path) -> None:
    path = tmp_path / "cube.hdf5"
    written = write_well(path, space={"x": 2, "y": 3, "z": 4}, full=False)
    with the_well.read(path) as ds:
        assert ds["velocity_z"].dims == ("sample", "time", "x", "y", "z")
        for k, dim in enumerate("xyz"):
            np.testing.assert_array_equal(ds[f"velocity_{dim}"].values, written["t1_fields/velocity"][..., k])


def test_sample_varying_time_is_kept_once_when_identical(tmp_path: Path) -> None:
    path = tmp_path / "times.hdf5"
    write_well(path, full=False)
    with h5py.File(path, "a") as f:
        del f["dimensions/time"]
        f["dimensions"].create_dataset("time", data=np.tile(np.arange(4.0), (2, 1)))
        f["dimensions/time"].attrs["sample_varying"] = True
    with the_well.read(path) as ds:
        assert ds["time"].dims == ("time",) and ds["time"].values.tolist() == [0, 1, 2, 3]


def test_fields_stay_lazy_and_pickle(well: tuple[Path, dict]) -> None:
    path, written = well
    with the_well.read(path) as ds:
        for name in ("density", "velocity_x", "stress_yy", "obstacle"):
            assert ds[name].variable._in_memory is False
        back = pickle.loads(pickle.dumps(ds))
        try:
            assert back["velocity_x"].variable._in_memory is False
            xr.testing.assert_identical(back.load(), ds.load())
            np.testing.assert_array_equal(back["velocity_y"].values, written["t1_fields/velocity"][..., 1])
        finally:
            back.close()


def _delete(name: str) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        del f[name]

    return mutate


def _replace(name: str, shape: tuple[int, ...]) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        group, field = name.split("/")
        del f[name]
        put_field(f, group, field, np.zeros(shape, dtype=np.float32))
        f[group].attrs["field_names"] = list(dict.fromkeys(str(n) for n in f[group].attrs["field_names"]))

    return mutate


def _set(name: str, key: str, value: object) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        f[name].attrs[key] = value

    return mutate


def _sample_varying_times(f: h5py.File) -> None:
    del f["dimensions/time"]
    f["dimensions"].create_dataset("time", data=np.arange(8.0).reshape(2, 4))
    f["dimensions/time"].attrs["sample_varying"] = True


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_replace("t0_fields/density", (2, 4, 5, 8)),
         "t0_fields/density has length 5 along x (axis 2) but dimensions/x says 6; rewrite the field or the file's dimensions so they agree"),
        (_replace("t0_fields/density", (3, 4, 6, 8)),
         "t0_fields/density has length 3 along sample (axis 0) but root attribute n_trajectories says 2; rewrite the field or the file's dimensions so they agree"),
        (_replace("t1_fields/velocity", (2, 4, 6, 8, 3)),
         "t1_fields/velocity has 3 components on its last axis but n_spatial_dims is 2; store one component per spatial dim (x, y)"),
        (_replace("t2_fields/stress", (2, 4, 6, 8, 4)),
         "t2_fields/stress has shape (2, 4, 6, 8, 4), expected 6 axes (sample, time, x, y, component, component) from its "
         "sample_varying/time_varying/dim_varying attributes; fix the attributes or the array"),
        (_set("t0_fields/density", "time_varying", False),
         "t0_fields/density has shape (2, 4, 6, 8), expected 3 axes (sample, x, y) from its "
         "sample_varying/time_varying/dim_varying attributes; fix the attributes or the array"),
        (_set("t0_fields/density", "dim_varying", [True]),
         "t0_fields/density attribute dim_varying has 1 entries but there are 2 spatial dims (x, y); give one flag per spatial dim"),
        (_delete("dimensions/time"), "dimensions/time is missing; add it with one output time per stored step"),
        (_delete("dimensions/y"), "dimensions/y is missing but dimensions/spatial_dims lists 'y'; add the coordinate or fix spatial_dims"),
        (_set("/", "n_spatial_dims", 3), "root attribute n_spatial_dims is 3 but dimensions/spatial_dims lists 2 (x, y); make them agree"),
        (_sample_varying_times,
         "dimensions/time differs between trajectories; sciml needs one time axis per file: "
         "resample the trajectories onto common times or split them into separate files"),
        (_set("dimensions/x", "time_varying", True),
         "dimensions/x is not one fixed 1-D grid (shape (6,), time_varying); "
         "sciml needs the same grid for every sample and time: interpolate the fields onto one"),
        (_set("dimensions/time", "sample_varying", True),
         "dimensions/time has shape (4,), expected (2, steps) as it is sample_varying; store one time per step"),
        (lambda f: f["t1_fields/velocity"].attrs.__delitem__("sample_varying"),
         "t1_fields/velocity has no attribute sample_varying; The Well marks every field and scalar with it"),
        (_set("t0_fields", "field_names", ["density", "vorticity"]),
         "t0_fields/ lists 'vorticity' in field_names but has no such dataset; fix field_names"),
        (lambda f: put_field(f, "t0_fields", "velocity_x", np.zeros((2, 4, 6, 8), dtype=np.float32)),
         "t1_fields/velocity would become 'velocity_x', which is already taken by t0_fields/velocity_x; rename one of them in the file"),
        (_set("scalars/nu", "time_varying", True),
         "scalars/nu has shape (2,), expected (2, 4) from its sample_varying/time_varying attributes; fix the attributes or the array"),
    ],
)
def test_bad_files_are_one_line_errors_naming_the_fix(well: tuple[Path, dict], mutate: Callable[[h5py.File], None], message: str) -> None:
    path, _ = well
    with h5py.File(path, "a") as f:
        mutate(f)
    with pytest.raises(DataError, match=f"^{re.escape(f'{path}: {message}')}$") as err:
        the_well.read(path).close()
    assert "\n" not in str(err.value)


def test_unreadable_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.hdf5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n but truncated")
    with pytest.raises(DataError, match=re.escape(f"{path}: not a readable HDF5 file (")):
        the_well.read(path)


def test_open_dispatches_to_the_well_and_transposes_to_canonical_order(well: tuple[Path, dict]) -> None:
    from sciml import data

    path, written = well
    assert data.detect_format(path) == "the_well"
    ds = data.open(path)
    assert ds.encoding["sciml_format"] == "the_well"
    assert ds["density"].dims == ("sample", "time", "y", "x")  # the file stores (..., x, y)
    np.testing.assert_array_equal(ds["density"].values, written["t0_fields/density"].transpose(0, 1, 3, 2))
    np.testing.assert_array_equal(ds["velocity_y"].values, written["t1_fields/velocity"][..., 1].transpose(0, 1, 3, 2))
    assert ds["forcing"].dims == ("time", "y", "x")  # not sample-varying: no sample dim is invented
    assert ds.attrs["sciml_normalisation"].endswith("transposed fields to (sample, time, ..., y, x)")
