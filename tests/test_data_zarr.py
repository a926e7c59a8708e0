"""sciml.data.write to zarr stores: the NetCDF round trip over both formats, the store's layout, appends,
overwrite / atomicity / full-disk semantics, lazy opening, shard directories and ``sciml generate --out x.zarr``.

The store's layout is read back from its own metadata (``.zmetadata``, JSON), not through sciml, so a
reader bug cannot hide behind a matching writer bug.
"""

import errno
import json
import shutil
import sys
import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sciml import ConfigError, DataError, _budget, data
from sciml.data import trajectory_dataset

FORMATS = [".nc", ".zarr"]


def _listing(directory):
    return sorted(p.name for p in directory.iterdir())


def _metadata(store):
    """The consolidated metadata of a format-2 store: ``{"w/.zarray": {...}, "w/.zattrs": {...}, ...}``."""
    return json.loads((store / ".zmetadata").read_text())["metadata"]


def trajectories(n=3, t=4, ny=4, nx=6, times=None):
    rng = np.random.default_rng(0)
    return trajectory_dataset(
        {"vorticity": rng.standard_normal((n, t, ny, nx)).astype(np.float32)},
        times=np.arange(t) * 0.5 if times is None else times,
        coords={"y": np.arange(ny) / ny, "x": np.arange(nx) / nx},
        attrs={"viscosity": 1e-3, "history": "sciml test"},
    )


def era5_like(time, *, dtype=np.float32):
    """One field over (sample, time, lat, lon) with CF attributes, on any kind of time coordinate."""
    n = len(time)
    field = np.arange(n * 3 * 4).reshape(1, n, 3, 4).astype(dtype)
    if dtype == np.float32:
        field[0, 0, 1, 2] = np.nan  # a missing value: written as the fill value, read back as NaN
    return xr.Dataset(
        {"t2m": (("sample", "time", "lat", "lon"), field, {"units": "K", "long_name": "2 metre temperature"})},
        coords={"sample": np.arange(1), "time": ("time", time),
                "lat": ("lat", np.array([-30.0, 0.0, 30.0]), {"units": "degrees_north"}),
                "lon": ("lon", np.arange(4) * 90.0, {"units": "degrees_east"})},
        attrs={"Conventions": "CF-1.10", "levels": [1, 2, 3], "scale": 0.25},
    )


TIMES = {
    "datetime64": pd.date_range("2020-01-01", periods=5, freq="6h"),
    "noleap": xr.date_range("2004-02-28", periods=5, freq="12h", calendar="noleap", use_cftime=True),
    "360_day": xr.date_range("2001-02-27", periods=5, freq="1D", calendar="360_day", use_cftime=True),
    "float": xr.Variable("time", np.arange(5) * 0.5, {"units": "s"}),
}


# ----------------------------------------------------------------------------- one round trip, two formats

@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_is_exact_and_cf_annotated(tmp_path, suffix):
    ds = trajectories()
    path = data.write(ds, tmp_path / f"traj{suffix}")
    back = data.open(path).load()
    assert back.identical(ds)  # values, dtypes, coordinates and every attribute
    assert back.encoding["sciml_format"] == ("zarr" if suffix == ".zarr" else "netcdf4")
    assert _listing(tmp_path) == [f"traj{suffix}"]  # no staging directory left behind


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("kind", list(TIMES))
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_time_calendars_dtypes_and_missing_values_round_trip(tmp_path, suffix, kind, dtype):
    ds = era5_like(TIMES[kind], dtype=dtype)
    back = data.open(data.write(ds, tmp_path / f"t{suffix}")).load()
    xr.testing.assert_identical(back, ds)
    assert back["t2m"].dtype == dtype and back["time"].dtype.kind == ds["time"].dtype.kind  # (ns or us: xarray decodes to ns)
    if dtype == np.float32:
        assert np.isnan(back["t2m"].values[0, 0, 1, 2]) and np.isnan(back["t2m"].values).sum() == 1
    if kind in ("noleap", "360_day"):
        assert back["time"].values[0].calendar == kind
        assert str(back["time"].values[2]) == ("2004-03-01 00:00:00" if kind == "noleap" else "2001-02-29 00:00:00")


def test_zarr_and_netcdf_encode_time_alike_and_the_store_carries_the_cf_attributes(tmp_path):
    ds = era5_like(TIMES["noleap"]).assign_coords(
        valid_time=(("time",), TIMES["noleap"] + pd.Timedelta(hours=6), {"long_name": "valid time"}))
    store = data.write(ds, tmp_path / "t.zarr")
    nc = data.open(data.write(ds, tmp_path / "t.nc"))
    zr = data.open(store)
    for name, units in (("time", "hours since 2004-02-28 00:00:00.000000"),
                        ("valid_time", "hours since 2004-02-28 06:00:00.000000")):
        assert zr[name].encoding["units"] == nc[name].encoding["units"] == units
        assert zr[name].encoding["calendar"] == nc[name].encoding["calendar"] == "noleap"
    meta = _metadata(store)
    assert meta[".zattrs"]["Conventions"] == "CF-1.10" and meta[".zattrs"]["levels"] == [1, 2, 3]
    assert meta["time/.zattrs"]["calendar"] == "noleap" and meta["time/.zattrs"]["units"].startswith("hours since")
    assert meta["t2m/.zattrs"]["units"] == "K" and meta["t2m/.zattrs"]["coordinates"] == "valid_time"
    assert meta["t2m/.zarray"]["fill_value"] == "NaN"


_names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6).filter(lambda s: not s.startswith("_"))
_attr_values = st.one_of(
    st.text(st.characters(exclude_characters="\x00"), max_size=12),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, width=64),
    st.lists(st.integers(-1000, 1000), min_size=2, max_size=4),  # NetCDF reads [v] back as v (documented)
)


@st.composite
def canonical_datasets(draw):
    """The strategy of tests/test_data_io.py's NetCDF identity test, for both formats."""
    ny, nx, nt, ns = (draw(st.integers(1, 5)) for _ in range(4))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.int64, np.uint8]))
    shape = draw(st.sampled_from([(ns, nt, ny, nx), (ns, ny, nx), (ns, nt, nx)]))
    dims = {4: ("sample", "time", "y", "x"), 3: ("sample", "y", "x") if shape == (ns, ny, nx) else ("sample", "time", "x")}[len(shape)]
    elements = st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8) if np.dtype(dtype).kind == "f" else None
    values = draw(hnp.arrays(dtype, shape, elements=elements))
    var_attrs = draw(st.dictionaries(_names, _attr_values, max_size=3))
    global_attrs = {"Conventions": "CF-1.10", **draw(st.dictionaries(_names, _attr_values, max_size=3))}
    coords = {"sample": np.arange(ns)}
    for dim in dims[1:]:
        n = dict(zip(dims, shape))[dim]
        steps = draw(hnp.arrays(np.float64, n, elements=st.floats(0.01, 10.0)))
        coords[dim] = np.cumsum(steps) - draw(st.floats(-100, 100))
    return xr.Dataset({"field": (dims, values, var_attrs)}, coords=coords, attrs=global_attrs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ds=canonical_datasets())
def test_write_then_open_is_the_identity_for_zarr_stores(tmp_path, ds):
    path = data.write(ds, tmp_path / "roundtrip.zarr", overwrite=True)  # tmp_path is shared by the examples
    back = data.open(path).load()
    xr.testing.assert_identical(back, ds)  # values (NaN, inf included), dtypes, coords, every attribute
    assert back["field"].dtype == ds["field"].dtype


# ----------------------------------------------------------------------------- layout

def test_store_is_chunked_in_whole_frames_compressed_without_pickle_and_consolidated(tmp_path):
    ds = trajectories(n=3, t=40, ny=32, nx=32)
    ds["ens"] = (("sample", "time", "member", "y", "x"), np.zeros((3, 40, 2, 32, 32), np.float32))
    store = data.write(ds, tmp_path / "c.zarr")
    meta = _metadata(store)
    assert meta["vorticity/.zarray"]["chunks"] == [1, 1, 32, 32]  # one chunk per frame (NetCDF: 16 frames)
    assert meta["ens/.zarray"]["chunks"] == [1, 1, 1, 32, 32]
    assert meta["vorticity/.zarray"]["compressor"] == {"id": "blosc", "cname": "zstd", "clevel": 4, "shuffle": 1,
                                                       "blocksize": 0}
    assert meta[".zgroup"]["zarr_format"] == 2 and (store / ".zmetadata").is_file()
    assert "pickle" not in (store / ".zmetadata").read_text()
    assert len(list((store / "vorticity").glob("*.*.0.0"))) == 3 * 40  # one file per frame
    plain = data.write(ds, tmp_path / "plain.zarr", compression=0)
    assert _metadata(plain)["vorticity/.zarray"]["compressor"] is None
    assert data.open(plain).load().identical(data.open(store).load())


def test_a_dask_backed_dataset_is_rechunked_to_whole_frames(tmp_path):
    ds = trajectories(n=2, t=3, ny=8, nx=8).chunk({"sample": 2, "time": 3, "y": 3, "x": 5})  # frames split
    store = data.write(ds, tmp_path / "d.zarr")
    assert _metadata(store)["vorticity/.zarray"]["chunks"] == [1, 1, 8, 8]
    xr.testing.assert_identical(data.open(store).load(), ds.load())


def test_open_of_a_store_of_many_frames_reads_nothing_until_asked(tmp_path):
    ds = trajectories(n=2, t=1000, ny=8, nx=8)
    store = data.write(ds, tmp_path / "many.zarr", compression=1)
    (store / "vorticity" / "1.500.0.0").unlink()  # one frame gone: opening must not notice, reading it must
    lazy = data.open(store)
    chunked = data.open(store, chunks={})
    assert chunked["vorticity"].chunks == ((1, 1), (1,) * 1000, (8,), (8,))  # dask: one task per frame
    np.testing.assert_array_equal(lazy["vorticity"].isel(sample=0, time=999).values, ds["vorticity"].values[0, 999])
    assert np.isnan(lazy["vorticity"].isel(sample=1, time=500).values).all()  # a missing chunk is the fill value
    np.testing.assert_array_equal(chunked["vorticity"].isel(sample=1, time=501).values, ds["vorticity"].values[1, 501])


# ----------------------------------------------------------------------------- overwrite, atomicity, disk

def test_an_existing_store_is_replaced_only_with_overwrite(tmp_path):
    store = data.write(trajectories(n=1), tmp_path / "s.zarr")
    with pytest.raises(DataError) as err:
        data.write(trajectories(n=2), store)
    assert str(err.value) == (f"{store}: file exists and would be replaced; pass overwrite=True (--overwrite on the "
                              "command line) to replace it, or choose another path")
    assert data.open(store).sizes["sample"] == 1
    data.write(trajectories(n=2), store, overwrite=True)
    assert data.open(store).sizes["sample"] == 2 and _listing(tmp_path) == ["s.zarr"]


def test_overwrite_never_replaces_a_directory_of_other_files_or_a_plain_file(tmp_path):
    precious = tmp_path / "notes.zarr"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(DataError, match=r"notes\.zarr: is a directory of other files, not a zarr store; refusing"):
        data.write(trajectories(), precious, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"
    plain = tmp_path / "file.zarr"
    plain.write_text("x")
    with pytest.raises(DataError, match=r"file\.zarr: is a file, not a zarr store"):
        data.write(trajectories(), plain, overwrite=True)
    assert plain.read_text() == "x" and _listing(tmp_path) == ["file.zarr", "notes.zarr"]


def test_a_store_that_appears_while_writing_is_not_replaced(tmp_path, monkeypatch):
    out = tmp_path / "race.zarr"
    to_zarr = xr.Dataset.to_zarr

    def slow_write(self, *args, **kwargs):  # another process writes the store meanwhile
        result = to_zarr(self, *args, **kwargs)
        out.mkdir()
        (out / "theirs").write_text("theirs")
        return result

    monkeypatch.setattr(xr.Dataset, "to_zarr", slow_write)
    with pytest.raises(DataError, match="file exists and would be replaced"):
        data.write(trajectories(), out)
    assert (out / "theirs").read_text() == "theirs" and _listing(tmp_path) == ["race.zarr"]


def test_an_interrupted_write_leaves_only_a_staging_directory_that_open_refuses(tmp_path, monkeypatch):
    def killed(self, store, *args, **kwargs):
        (store / ".zgroup").write_text("{}")  # halfway
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_zarr", killed)
    with pytest.raises(KeyboardInterrupt):
        data.write(trajectories(), tmp_path / "k.zarr")
    assert _listing(tmp_path) == []  # the staging directory is removed on the way out


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_write_that_fills_the_disk_is_the_same_data_error_for_both_formats(monkeypatch, tmp_path, suffix):
    path = tmp_path / f"u{suffix}"
    data.write(trajectories(n=1), path)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_zarr" if suffix == ".zarr" else "to_netcdf", full)
    monkeypatch.setattr(_budget, "free_disk", lambda p: 4096)
    monkeypatch.setattr(_budget, "check_disk", lambda *a, **k: None)  # the up-front check saw room
    with pytest.raises(DataError, match=rf"^{path}: the disk is full \(4 KiB free\), the file was not written "
                                        r"\(OSError: .*\); free some space or choose another location, "
                                        r"then run again \(existing files are unchanged\)$"):
        data.write(trajectories(n=2), path, overwrite=True)
    assert data.open(path).sizes["sample"] == 1 and _listing(tmp_path) == [f"u{suffix}"]


def test_the_free_disk_is_checked_before_writing_a_store(monkeypatch, tmp_path):
    Usage = type(shutil.disk_usage(tmp_path))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DataError) as err:
        data.write(trajectories(), tmp_path / "u.zarr")
    # 3 x 4 x 4 x 6 float32 + coordinates (3 int64, 4 + 4 + 6 float64): 1152 + 24 + 112 = 1288 B
    assert str(err.value) == (f"{tmp_path / 'u.zarr'}: the dataset (uncompressed) needs about 1.26 KiB of disk and "
                              "1000 B is free there; free some space or choose another --out")
    assert _listing(tmp_path) == []


def test_attributes_a_cf_file_cannot_hold_are_refused_for_stores_too(tmp_path):
    ds = trajectories()
    ds.attrs["converged"] = True
    with pytest.raises(DataError) as err:
        data.write(ds, tmp_path / "b.zarr")
    assert str(err.value) == (f"{tmp_path / 'b.zarr'}: attribute 'converged' of the dataset is a bool, which a CF "
                              "zarr store (NetCDF's attribute types) cannot store; store 0/1 or a string")
    assert _listing(tmp_path) == []


# ----------------------------------------------------------------------------- append along time

@pytest.mark.parametrize("kind", list(TIMES))
def test_appending_frames_gives_the_store_written_at_once(tmp_path, kind):
    ds = era5_like(TIMES[kind])
    store = data.write(ds.isel(time=slice(0, 2)), tmp_path / "a.zarr")
    assert data.write(ds.isel(time=slice(2, 4)), store, append_dim="time") == store
    data.write(ds.isel(time=[4]).assign_attrs(history="a later run"), store, append_dim="time")
    back = data.open(store).load()
    xr.testing.assert_identical(back, ds)  # the store keeps its own attributes (no 'history' added)
    assert _metadata(store)["t2m/.zarray"]["chunks"] == [1, 1, 3, 4] and _metadata(store)["t2m/.zarray"]["shape"][1] == 5


def test_append_to_an_absent_store_creates_it(tmp_path):
    ds = trajectories()
    store = data.write(ds, tmp_path / "new.zarr", append_dim="time")
    xr.testing.assert_identical(data.open(store).load(), ds)


def test_append_along_time_of_a_non_index_time_dependent_coordinate(tmp_path):
    ds = era5_like(TIMES["datetime64"])
    ds = ds.assign_coords(valid_time=("time", ds["time"].values + np.timedelta64(6, "h")))
    store = data.write(ds.isel(time=slice(0, 3)), tmp_path / "v.zarr")
    data.write(ds.isel(time=slice(3, 5)), store, append_dim="time")
    xr.testing.assert_identical(data.open(store).load(), ds)


def _store(tmp_path):
    ds = era5_like(TIMES["datetime64"])
    return ds, data.write(ds.isel(time=slice(0, 3)), tmp_path / "s.zarr")


@pytest.mark.parametrize("change, message", [
    (lambda d: d.rename(t2m="t"), r"variables differ \(store only: \['t2m'\], new only: \['t'\]\)"),
    (lambda d: d.transpose("sample", "time", "lon", "lat"),
     r"variable 't2m' has dims \('sample', 'time', 'lon', 'lat'\), the store's has \('sample', 'time', 'lat', 'lon'\)"),
    (lambda d: d.isel(lon=slice(0, 3)), r"variable 't2m' has sizes \{'sample': 1, 'lat': 3, 'lon': 3\}, the store's has"),
    (lambda d: d.astype(np.float64), r"variable 't2m' is float64, the store's is float32"),
    (lambda d: d.assign(t2m=d["t2m"].assign_attrs(units="degC")), r"variable 't2m' has units 'degC', the store's has 'K'"),
    (lambda d: d.assign_coords(lat=d["lat"] + 1.0), r"coordinate 'lat' differs from the store's"),
    (lambda d: d.assign_coords(member=0), r"coordinates \['member'\] are not in the store"),
    (lambda d: d.assign_coords(time=("time", np.arange(2) * 6.0, {"units": "hours"})),
     r"'time' is float \(units 'hours'\), the store's is datetime64"),
    (lambda d: d.assign_coords(time=xr.date_range("2020-01-01T18", periods=2, freq="6h", calendar="noleap",
                                                  use_cftime=True)), r"'time' is cftime noleap, the store's is datetime64"),
    (lambda d: d.assign_coords(time=d["time"].values - np.timedelta64(6, "h")),
     r"time 2020-01-01T12:00:00.000000000 does not come after the store's last time 2020-01-01T12:00:00.000000000"),
    (lambda d: d.assign_coords(time=d["time"].values[::-1]),
     r"time 2020-01-01T18:00:00.000000000 does not come after time 2020-01-02T00:00:00.000000000"),
])
def test_append_refuses_data_that_do_not_continue_the_store(tmp_path, change, message):
    ds, store = _store(tmp_path)
    before = data.open(store).load()
    with pytest.raises(DataError, match=rf"^{store}: cannot append along 'time': {message}"):
        data.write(change(ds.isel(time=slice(3, 5))), store, append_dim="time")
    xr.testing.assert_identical(data.open(store).load(), before)  # untouched


def test_append_options_that_contradict_are_config_errors(tmp_path):
    ds, store = _store(tmp_path)
    with pytest.raises(ConfigError, match=r"x\.nc: append_dim='time' needs a zarr store"):
        data.write(ds, tmp_path / "x.nc", append_dim="time")
    with pytest.raises(ConfigError, match="append_dim and overwrite=True contradict"):
        data.write(ds, store, append_dim="time", overwrite=True)
    with pytest.raises(DataError, match=r"cannot append along 'level': the store has no dim 'level'"):
        data.write(ds, store, append_dim="level")


def test_an_append_killed_before_its_metadata_leaves_the_store_as_it_was_and_the_next_append_completes(tmp_path,
                                                                                                        monkeypatch):
    import zarr

    ds, store = _store(tmp_path)
    before = data.open(store).load()

    def killed(*args, **kwargs):  # every chunk and array shape written, the consolidated metadata not yet
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(zarr, "consolidate_metadata", killed)
        with pytest.raises(KeyboardInterrupt):
            data.write(ds.isel(time=[3]), store, append_dim="time")
    xr.testing.assert_identical(data.open(store).load(), before)  # readers see the store before the append
    data.write(ds.isel(time=[3, 4]), store, append_dim="time")  # the interrupted append, redone
    xr.testing.assert_identical(data.open(store).load(), ds)


# ----------------------------------------------------------------------------- shard directories

def _fake_shards(tmp_path, monkeypatch, suffix, numbering):
    """Three shards (2 + 2 + 1 samples) and a stand-in for ``sciml.data.shards.shard_paths`` that lists them."""
    full = trajectories(n=5)
    directory = tmp_path / "shards"
    directory.mkdir()
    parts = [full.isel(sample=s) for s in (slice(0, 2), slice(2, 4), slice(4, 5))]
    if numbering == "each from 0":
        parts = [p.assign_coords(sample=np.arange(p.sizes["sample"])) for p in parts]
    paths = [data.write(p, directory / f"part-{i}{suffix}") for i, p in enumerate(parts)]
    (directory / "shards.json").write_text(json.dumps({"shards": [p.name for p in paths]}))
    try:
        import sciml.data.shards as shards
    except ImportError:  # helper A's module not there yet: a fake one
        shards = types.ModuleType("sciml.data.shards")
        monkeypatch.setitem(sys.modules, "sciml.data.shards", shards)
    calls = []

    def shard_paths(where):
        calls.append(where)
        return [where / name for name in json.loads((where / "shards.json").read_text())["shards"]]

    monkeypatch.setattr(shards, "shard_paths", shard_paths, raising=False)
    return full, directory, paths, calls


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("numbering", ["global", "each from 0"])
def test_a_shard_directory_in_a_list_expands_to_its_shards_joined_along_sample(tmp_path, monkeypatch, suffix, numbering):
    # a directory alone opens through sciml.data.shards.open_shards (its manifest checked: tests/test_shards.py);
    # in a list of sources each shard directory is replaced by its shards, in order
    from sciml.data.io import _expand_shards

    full, directory, paths, calls = _fake_shards(tmp_path, monkeypatch, suffix, numbering)
    expanded, sharded = _expand_shards([directory])
    assert sharded and calls == [directory] and expanded == list(paths)
    joined = data.open(expanded)
    assert joined["vorticity"].chunks is not None  # dask-backed: nothing read yet
    if suffix == ".zarr":
        assert joined["vorticity"].chunks == ((1,) * 5, (1,) * 4, (4,), (6,))  # one dask chunk per stored frame
    xr.testing.assert_identical(joined.load().drop_attrs(), full.drop_attrs())  # samples 0..4 either way
    assert joined.attrs["sciml_normalisation"] == "concatenated 3 files along sample"


def test_a_zarr_store_holding_a_shards_json_is_still_a_store(tmp_path, monkeypatch):
    store = data.write(trajectories(), tmp_path / "s.zarr")
    (store / "shards.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "sciml.data.shards", None)  # importing it would fail the test
    xr.testing.assert_identical(data.open(store).load(), trajectories())


def test_a_shard_directory_of_the_shards_module_opens_with_its_global_sample_numbers(tmp_path):
    shards = pytest.importorskip("sciml.data.shards")
    full = trajectories(n=7, ny=6, nx=6).assign_attrs(seed=3)
    manifest = shards.shard_manifest(recipe="ns2d", resolution=6, seed=3, options={}, first_sample=0, n_samples=7,
                                     chunk=3, shards=[(0, 3), (3, 3), (6, 1)])
    for index, (first, count) in enumerate(manifest["shards"]):
        shards.write_shard(full.isel(sample=slice(first, first + count)), tmp_path / "run", index=index,
                           manifest=manifest)
    joined = data.open(tmp_path / "run")
    assert joined["vorticity"].chunks is not None and joined["sample"].values.tolist() == list(range(7))
    xr.testing.assert_identical(joined.load().drop_attrs(), full.drop_attrs())
    (tmp_path / "run" / shards.shard_name(3)).unlink()
    with pytest.raises(DataError, match=r"samples 3-5 are missing"):
        data.open(tmp_path / "run")


# ----------------------------------------------------------------------------- sciml generate --out x.zarr

def test_generate_writes_a_zarr_store_through_write(tmp_path, monkeypatch, capsys):
    from sciml.cli import main

    made = trajectories(n=2, t=3)
    fake = types.ModuleType("sciml.datasets")  # the CLI's path to write(), without solving anything

    class Budget:
        file_bytes = 1.0

        def check(self):
            return self

    fake.estimate = lambda *args, **kwargs: Budget()
    fake.generate = lambda name, n, resolution, **kwargs: made
    monkeypatch.setitem(sys.modules, "sciml.datasets", fake)
    import sciml

    monkeypatch.setattr(sciml, "datasets", fake, raising=False)
    out = tmp_path / "gen.zarr"
    argv = ["generate", "ns2d", "--n", "2", "--resolution", "8", "--seed", "0", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    xr.testing.assert_identical(data.open(out).load(), made)
    assert _metadata(out)["vorticity/.zarray"]["chunks"] == [1, 1, 4, 6]
    assert main(argv) == 2 and "file exists and would be replaced" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0 and _listing(tmp_path) == ["gen.zarr"]
