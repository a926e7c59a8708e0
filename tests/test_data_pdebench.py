"""PDEBench HDF5 reader: files written with h5py straight from PDEBench's layouts (``Data_Merge.py``, ``gen_*.py``)."""

from __future__ import annotations

import pickle
import re
import resource
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import xarray as xr

import sciml.data
from sciml.data import pdebench
from sciml.errors import DataError

N, T, X, Y = 3, 5, 16, 8


def distinct(shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
    """float32 values that differ at every index (and between fields), so a swapped axis shows."""
    return (offset + np.arange(int(np.prod(shape)))).reshape(shape).astype(np.float32)


def centres(n: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Cell centres, as PDEBench stores its x-/y-coordinate."""
    return (lo + (np.arange(n) + 0.5) * (hi - lo) / n).astype(np.float32)


def write_1d(path: Path, *, nt: int = T, nx: int = X, t_extra: int = 1) -> np.ndarray:
    """1-D Burgers-style file: tensor (N, T, X), x-coordinate (X,), t-coordinate (T + t_extra,), @Nu."""
    tensor = distinct((N, nt, nx))
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=tensor)
        f.create_dataset("x-coordinate", data=centres(nx, -1.0, 1.0))
        f.create_dataset("t-coordinate", data=(np.arange(nt + t_extra) * 0.05).astype(np.float32))
        f.attrs["Nu"] = 0.01
    return tensor


def write_darcy(path: Path, *, nx: int = X, ny: int = Y) -> tuple[np.ndarray, np.ndarray]:
    """Darcy file: tensor (N, 1, X, Y) solution, nu (N, X, Y) coefficient, x-/y-coordinate, @beta."""
    tensor, nu = distinct((N, 1, nx, ny)), distinct((N, nx, ny), 100_000)
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=tensor)
        f.create_dataset("nu", data=nu)
        f.create_dataset("x-coordinate", data=centres(nx))
        f.create_dataset("y-coordinate", data=centres(ny, 0.0, 2.0))
        f.attrs["beta"] = 1.0
    return tensor, nu


def write_cfd(path: Path, space: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Compressible NS file: density, pressure, Vx[, Vy[, Vz]] (N, T, *space), coordinates, @eta @zeta [@M]."""
    names = ["density", "pressure", "Vx", "Vy", "Vz"][: 2 + len(space)]
    fields = {name: distinct((N, T, *space), 100_000 * k) for k, name in enumerate(names)}
    with h5py.File(path, "w") as f:
        for name, data in fields.items():
            f.create_dataset(name, data=data)
        for k, (dim, n) in enumerate(zip("xyz", space)):
            f.create_dataset(f"{dim}-coordinate", data=centres(n, 0.0, k + 1.0))
        f.create_dataset("t-coordinate", data=(np.arange(T + 1) * 0.2).astype(np.float32))
        f.attrs.update(eta=0.1, zeta=0.01)
        if len(space) > 1:
            f.attrs["M"] = 1.0
    return fields


def write_groups(path: Path, shape: tuple[int, ...], *, config_at_root: bool = False) -> np.ndarray:
    """One group per sample: NNNN/data (T, *space, C), NNNN/grid/{x,y,t}; returns data stacked (N, T, *space, C)."""
    data = distinct((N, *shape))
    with h5py.File(path, "w") as f:
        for i in range(N):
            name = f"{i:04d}"
            group = f.create_group(name)
            group.create_dataset("data", data=data[i])
            for k, dim in enumerate("xyz"[: len(shape) - 2]):
                group.create_dataset(f"grid/{dim}", data=centres(shape[1 + k], -1.0 - k, 1.0))
            group.create_dataset("grid/t", data=np.linspace(0.0, 1.0, shape[0], dtype=np.float32))
            if config_at_root:
                f.attrs[f"{name}/config"] = f"sim:\n  seed: {i}\n"
            else:
                group.attrs["config"] = f"sim:\n  seed: {i}\n"
    return data


def is_lazy(ds: xr.Dataset) -> bool:
    return all(not var.variable._in_memory for var in ds.data_vars.values())


def assert_pickles(ds: xr.Dataset) -> None:
    back = pickle.loads(pickle.dumps(ds))
    xr.testing.assert_identical(back.load(), ds.load())


def test_matches_pdebench_layouts_and_nothing_else(tmp_path: Path) -> None:
    pde = {"1d.h5": lambda p: write_1d(p), "darcy.h5": lambda p: write_darcy(p), "cfd.h5": lambda p: write_cfd(p, (X, Y)),
           "groups.h5": lambda p: write_groups(p, (T, X, Y, 2))}
    for name, write in pde.items():
        write(tmp_path / name)
    netcdf = tmp_path / "plain.nc"  # a NetCDF4 file, even with a variable called tensor
    xr.Dataset({"tensor": (("time", "x"), np.zeros((2, 3)))}).to_netcdf(netcdf, engine="h5netcdf")
    well = tmp_path / "well.hdf5"
    with h5py.File(well, "w") as f:
        f.attrs.update(dataset_name="toy", n_spatial_dims=2)
        f.create_group("dimensions").create_dataset("time", data=np.arange(3.0))
        f.create_group("t0_fields").create_dataset("density", data=np.zeros((1, 3, 4, 4)))
    empty, unrelated = tmp_path / "empty.h5", tmp_path / "unrelated.h5"
    h5py.File(empty, "w").close()
    with h5py.File(unrelated, "w") as f:
        f.create_dataset("density", data=np.zeros(3))  # a density, but no velocity: not CFD
        f.create_group("0000")
    for name in pde:
        with h5py.File(tmp_path / name, "r") as f:
            assert pdebench.matches(f), name
    for other in (netcdf, well, empty, unrelated):
        with h5py.File(other, "r") as f:
            assert not pdebench.matches(f), other.name


@pytest.mark.parametrize("nt, nx, t_extra", [(T, X, 1), (6, 6, 0)], ids=["t-edges", "nt==nx"])
def test_1d_tensor(tmp_path: Path, nt: int, nx: int, t_extra: int) -> None:
    path = tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5"
    tensor = write_1d(path, nt=nt, nx=nx, t_extra=t_extra)
    ds = pdebench.read(path)
    assert list(ds.data_vars) == ["u"]
    assert ds["u"].dims == ("sample", "time", "x")
    assert is_lazy(ds)
    np.testing.assert_array_equal(ds["u"].values, tensor)
    np.testing.assert_array_equal(ds["u"].isel(sample=[2, 0], x=[4, 1]).values, tensor[[2, 0]][:, :, [4, 1]])
    np.testing.assert_array_equal(ds["sample"].values, np.arange(N))
    np.testing.assert_array_equal(ds["x"].values, centres(nx, -1.0, 1.0))
    np.testing.assert_allclose(ds["time"].values, np.arange(nt) * 0.05)  # the first T of the T + 1 stored times
    assert ds.attrs["Nu"] == 0.01 and ds.attrs["sciml_format"] == "pdebench"
    trimmed = f"kept the first {nt} of the {nt + 1} t-coordinate values as time (one per stored step); " if t_extra else ""
    assert ds.attrs["sciml_normalisation"] == f"renamed tensor->u; {trimmed}renamed x-coordinate->x, t-coordinate->time"
    assert_pickles(ds)


@pytest.mark.parametrize("nx, ny", [(X, Y), (Y, Y)], ids=["nx!=ny", "nx==ny"])
def test_darcy(tmp_path: Path, nx: int, ny: int) -> None:
    path = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    tensor, nu = write_darcy(path, nx=nx, ny=ny)
    ds = pdebench.read(path)
    assert sorted(ds.data_vars) == ["a", "u"]
    assert ds["u"].dims == ds["a"].dims == ("sample", "x", "y")  # no time: a steady problem
    assert "time" not in ds.dims
    assert is_lazy(ds)
    np.testing.assert_array_equal(ds["u"].values, tensor[:, 0])
    np.testing.assert_array_equal(ds["a"].values, nu)
    np.testing.assert_array_equal(ds["u"].isel(sample=1, x=2, y=3).values, tensor[1, 0, 2, 3])
    np.testing.assert_array_equal(ds["x"].values, centres(nx))
    np.testing.assert_array_equal(ds["y"].values, centres(ny, 0.0, 2.0))
    assert ds.attrs["beta"] == 1.0
    assert ds.attrs["sciml_normalisation"] == (
        "renamed tensor->u; dropped the singleton axis 1 of tensor; renamed nu->a; renamed x-coordinate->x, y-coordinate->y"
    )
    assert_pickles(ds)


@pytest.mark.parametrize("space", [(X,), (X, Y), (4, 3, 2), (T, T)], ids=["1d", "2d", "3d", "nt==nx==ny"])
def test_compressible_cfd(tmp_path: Path, space: tuple[int, ...]) -> None:
    path = tmp_path / "CFD_Rand_Eta0.1_Zeta0.01_periodic_Train.hdf5"
    fields = write_cfd(path, space)
    ds = pdebench.read(path)
    dims = ("x", "y", "z")[: len(space)]
    assert sorted(ds.data_vars) == sorted(fields)
    assert is_lazy(ds)
    for name, data in fields.items():
        assert ds[name].dims == ("sample", "time", *dims)
        np.testing.assert_array_equal(ds[name].values, data)
    for k, (dim, n) in enumerate(zip(dims, space)):
        np.testing.assert_array_equal(ds[dim].values, centres(n, 0.0, k + 1.0))
    np.testing.assert_allclose(ds["time"].values, np.arange(T) * 0.2)
    assert ds.attrs["eta"] == 0.1 and ds.attrs["zeta"] == 0.01
    assert ("M" in ds.attrs) == (len(space) > 1)
    renamed = ", ".join(f"{d}-coordinate->{d}" for d in dims)
    assert ds.attrs["sciml_normalisation"] == (
        f"kept the first {T} of the {T + 1} t-coordinate values as time (one per stored step); renamed {renamed}, t-coordinate->time"
    )
    assert_pickles(ds)


@pytest.mark.parametrize(
    "shape, names",
    [((T, X, Y, 2), ["u", "v"]), ((T, Y, Y, 1), ["h"]), ((Y, Y, 1), ["u"]), ((T, X, Y, 3), ["data_0", "data_1", "data_2"])],
    ids=["diff-react", "shallow-water nx==ny", "diff-sorp nt==nx", "unknown channels"],
)
def test_one_group_per_sample(tmp_path: Path, shape: tuple[int, ...], names: list[str]) -> None:
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    data = write_groups(path, shape, config_at_root=len(shape) == 3)  # diff-sorp keeps configs on the root
    ds = pdebench.read(path)
    space = ("x", "y")[: len(shape) - 2]
    assert list(ds.data_vars) == names
    assert is_lazy(ds)
    for c, name in enumerate(names):
        assert ds[name].dims == ("sample", "time", *space)
        np.testing.assert_array_equal(ds[name].values, data[..., c])
        np.testing.assert_array_equal(ds[name].isel(sample=[2, 0], time=1).values, data[[2, 0], 1, ..., c])
    assert ds["u" if "u" in names else names[0]].isel(sample=slice(0, 0)).shape == (0, *shape[:-1])
    np.testing.assert_array_equal(ds["sample"].values, np.arange(N))
    assert list(ds["sample_name"].values) == ["0000", "0001", "0002"]
    assert ds["config"].values[2] == "sim:\n  seed: 2\n"
    for k, dim in enumerate(space):
        np.testing.assert_array_equal(ds[dim].values, centres(shape[1 + k], -1.0 - k, 1.0))
    np.testing.assert_allclose(ds["time"].values, np.linspace(0.0, 1.0, shape[0]))
    assert not {key for key in ds.attrs if key.endswith("/config")}
    grids = ", ".join(f"grid/{d}->{d}" for d in space)
    assert ds.attrs["sciml_normalisation"] == (
        f"stacked the 3 sample groups 0000..0002 along sample; split the channel axis of data into {', '.join(names)}; "
        f"renamed {grids}, grid/t->time (from group 0000); kept each group's config attribute as the config coordinate"
    )
    assert_pickles(ds)


def test_read_touches_no_field_data(tmp_path: Path) -> None:
    # 40 GB declared, nothing written (HDF5 allocates chunks only when written): read must not load it
    path = tmp_path / "huge.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", shape=(100_000, 100, 1000), dtype="f4", chunks=(1, 100, 1000), fillvalue=7.0)
        f.create_dataset("x-coordinate", data=centres(1000))
        f.create_dataset("t-coordinate", data=np.arange(101, dtype=np.float32))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB: the high-water mark of resident memory
    ds = pdebench.read(path)
    assert not isinstance(ds["u"].variable._data, np.ndarray)  # lazily indexed, not read
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024  # (not a wall-clock bound)
    assert ds["u"].shape == (100_000, 100, 1000)
    assert ds["u"].isel(sample=99_999, time=-1).values.tolist() == [7.0] * 1000


class _Samples(torch.utils.data.Dataset):
    def __init__(self, ds: xr.Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return self.ds.sizes["sample"]

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.ds["u"].isel(sample=i).values)


def test_dataloader_workers_read_lazily(tmp_path: Path) -> None:
    path = tmp_path / "groups.h5"
    data = write_groups(path, (T, X, Y, 2))
    loader = torch.utils.data.DataLoader(_Samples(pdebench.read(path)), batch_size=2, num_workers=1)
    batches = torch.cat(list(loader))
    np.testing.assert_array_equal(batches.numpy(), data[..., 0])


def _message(path: Path, *parts: str) -> str:
    """Regex for exactly the one-line message ``f"{path}: " + "".join(parts)``."""
    return "^" + re.escape(f"{path}: " + "".join(parts)) + "$"


def test_missing_or_mismatched_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    write_1d(path)
    with h5py.File(path, "a") as f:
        del f["x-coordinate"]
    with pytest.raises(DataError, match=_message(
        path, "no 'x-coordinate' dataset for the x axis of 'tensor' (axis 2 of shape (3, 5, 16)); add it or re-download the file"
    )):
        pdebench.read(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("x-coordinate", data=centres(X - 1))
    with pytest.raises(DataError, match=_message(
        path, "'x-coordinate' has shape (15,) but 'tensor' has 16 along x (axis 2 of shape (3, 5, 16)); fix or re-download the file"
    )):
        pdebench.read(path)
    write_1d(path, t_extra=-1)
    with pytest.raises(DataError, match=_message(
        path, "'t-coordinate' has shape (4,) but 'tensor' has 5 along time (axis 1 of shape (3, 5, 16)); fix or re-download the file"
    )):
        pdebench.read(path)


def test_bad_shapes(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=np.zeros((3, 5)))
    with pytest.raises(DataError, match=_message(
        path, "'tensor' has shape (3, 5); expected (sample, time, x[, y[, z]]), or (sample, 1, x, y) with 'nu' for Darcy flow; ",
        "check that this is a PDEBench file",
    )):
        pdebench.read(path)
    write_darcy(path)
    with h5py.File(path, "a") as f:
        del f["nu"]
        f.create_dataset("nu", data=np.zeros((N, Y, X)))
    with pytest.raises(DataError, match=_message(
        path, "'nu' has shape (3, 8, 16) but 'tensor' has shape (3, 1, 16, 8); expected 'nu' of shape (3, 16, 8); re-download the file"
    )):
        pdebench.read(path)
    with h5py.File(path, "a") as f:
        del f["tensor"]
        f.create_dataset("tensor", data=np.zeros((N, 2, X, Y)))
    with pytest.raises(DataError, match=_message(
        path, "'tensor' has shape (3, 2, 16, 8) but a Darcy file ('nu' present) stores the solution as (sample, 1, x, y); check the file"
    )):
        pdebench.read(path)
    write_cfd(path, (X, Y))
    with h5py.File(path, "a") as f:
        del f["Vy"]
        f.create_dataset("Vy", data=np.zeros((N, T, Y, X)))
    with pytest.raises(DataError, match=_message(
        path, "'Vy' has shape (3, 5, 8, 16) but 'density' has (3, 5, 16, 8); every CFD field must share (sample, time, x[, y[, z]]); ",
        "re-download the file",
    )):
        pdebench.read(path)


def test_bad_groups(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    write_groups(path, (T, X, Y, 2))
    with h5py.File(path, "a") as f:
        del f["0001/data"]
    with pytest.raises(DataError, match=_message(
        path, "group '0001' has no 'data' dataset; every sample group needs 'data' (time, x[, y], channel) and 'grid/x', 'grid/t'; ",
        "drop the group or re-download the file",
    )):
        pdebench.read(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("0001/data", data=np.zeros((T + 1, X, Y, 2)))
    with pytest.raises(DataError, match=_message(
        path, "'0001/data' has shape (6, 16, 8, 2) but '0000/data' has (5, 16, 8, 2); all samples must share one grid and length; ",
        "drop group '0001' or re-download the file",
    )):
        pdebench.read(path)
    with h5py.File(path, "a") as f:
        del f["0001/data"], f["0000/grid/y"]
        f.create_dataset("0001/data", data=np.zeros((T, X, Y, 2)))
    with pytest.raises(DataError, match=_message(
        path, "no '0000/grid/y' dataset for the y axis of '0000/data' (axis 2 of shape (5, 16, 8, 2)); add it or re-download the file"
    )):
        pdebench.read(path)


def test_read_refuses_a_file_of_another_layout(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("velocity", data=np.zeros(3))
    with pytest.raises(DataError, match=_message(
        path, "not a PDEBench file (no 'tensor', no 'density' and 'Vx', no numbered sample groups; top-level entries ['velocity']); ",
        "open it with sciml.data.open to detect its format",
    )):
        pdebench.read(path)


def test_dispatcher_puts_x_last(tmp_path: Path) -> None:
    """Through ``sciml.data.open``: dims named by meaning come out as (sample, time, y, x) with the values moved along."""
    path = tmp_path / "2D_rdb_NA_NA.h5"
    data = write_groups(path, (T, X, Y, 1))
    ds = sciml.data.open(path)
    assert ds["h"].dims == ("sample", "time", "y", "x")
    np.testing.assert_array_equal(ds["h"].values, data[..., 0].transpose(0, 1, 3, 2))
    assert ds.encoding["sciml_format"] == "pdebench"
