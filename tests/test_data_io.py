"""sciml.data.open / write: formats detected from content, CF decoding, ERA5 normalisation, bad input.

Fixtures are written with netCDF4 / h5py / zarr directly from the conventions (CF-1.10, ERA5's CDS
NetCDF layout), never with sciml's writer, so a reader bug cannot hide behind a matching writer bug.
"""

import re

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sciml import DataError, data


def _write_plain(path, *, dims=("sample", "time", "y", "x"), shape=(2, 3, 4, 5), coords=None, fmt="NETCDF4", name="w"):
    """A plain NetCDF file: one float32 field with values 0, 1, 2, ... and coordinates 0, 1, 2, ..."""
    coords = coords or {}
    with netCDF4.Dataset(path, "w", format=fmt) as f:
        for dim, n in zip(dims, shape):
            f.createDimension(dim, n)
            f.createVariable(dim, "f8", (dim,))[:] = coords.get(dim, np.arange(n, dtype=float))
        var = f.createVariable(name, "f4", dims)
        var[:] = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        var.units = "m s-1"
    return path


def test_plain_netcdf3_and_netcdf4_open_lazily_with_values_and_attrs(tmp_path):
    for fmt in ("NETCDF3_CLASSIC", "NETCDF4"):
        path = _write_plain(tmp_path / f"{fmt}.nc", fmt=fmt)
        ds = data.open(path)
        assert ds.encoding["sciml_format"] == ("netcdf3" if fmt.startswith("NETCDF3") else "netcdf4")
        assert not ds["w"].variable._in_memory  # lazy: nothing read yet
        assert ds["w"].dims == ("sample", "time", "y", "x") and ds["w"].attrs["units"] == "m s-1"
        np.testing.assert_array_equal(ds["w"].values, np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5))
        assert "sciml_normalisation" not in ds.attrs  # nothing changed, nothing recorded


def test_cf_packing_fill_and_missing_values_are_decoded(tmp_path):
    path = tmp_path / "packed.nc"
    packed = np.array([[0, 100, -32767, 250]], dtype=np.int16)
    with netCDF4.Dataset(path, "w") as f:
        f.createDimension("sample", 1)
        f.createDimension("x", 4)
        f.createVariable("x", "f8", ("x",))[:] = [0.0, 0.25, 0.5, 0.75]
        t = f.createVariable("t", "i2", ("sample", "x"), fill_value=np.int16(-32767))
        t.set_auto_maskandscale(False)
        t.scale_factor, t.add_offset, t.units = 0.01, 273.15, "K"
        t[:] = packed
        q = f.createVariable("q", "f4", ("sample", "x"))
        q.missing_value = np.float32(-999.0)
        q.set_auto_maskandscale(False)
        q[:] = np.array([[1.0, -999.0, 3.0, 4.0]], dtype=np.float32)
    ds = data.open(path)
    t_values = ds["t"].values
    np.testing.assert_allclose(t_values[0, [0, 1, 3]], [273.15, 274.15, 275.65], rtol=1e-6)
    assert np.isnan(t_values[0, 2]) and ds["t"].attrs["units"] == "K"
    assert np.isnan(ds["q"].values[0, 1]) and ds["q"].values[0, 2] == 3.0


def _write_era5(path, *, calendar="proleptic_gregorian"):
    """ERA5 as the CDS writes NetCDF: valid_time, pressure_level, latitude 90..-90, longitude 0..360, packed t."""
    lat = np.array([90.0, 45.0, 0.0, -45.0, -90.0])
    lon = np.arange(8) * 45.0
    with netCDF4.Dataset(path, "w") as f:
        for dim, n in (("valid_time", 2), ("pressure_level", 3), ("latitude", 5), ("longitude", 8)):
            f.createDimension(dim, n)
        vt = f.createVariable("valid_time", "i8", ("valid_time",))
        vt.units, vt.calendar, vt.standard_name = "seconds since 1970-01-01", calendar, "time"
        vt[:] = [1704067200, 1704088800]  # 2024-01-01T00 and T06
        pl = f.createVariable("pressure_level", "f8", ("pressure_level",))
        pl.units = "hPa"
        pl[:] = [500.0, 850.0, 1000.0]
        la = f.createVariable("latitude", "f8", ("latitude",))
        la.units, la.standard_name = "degrees_north", "latitude"
        la[:] = lat
        lo = f.createVariable("longitude", "f8", ("longitude",))
        lo.units, lo.standard_name = "degrees_east", "longitude"
        lo[:] = lon
        t = f.createVariable("t", "i2", ("valid_time", "pressure_level", "latitude", "longitude"), fill_value=np.int16(-32767))
        t.set_auto_maskandscale(False)
        t.scale_factor, t.add_offset, t.units, t.standard_name = 0.01, 250.0, "K", "air_temperature"
        raw = (np.arange(2 * 3 * 5 * 8) % 3000).astype(np.int16).reshape(2, 3, 5, 8)
        t[:] = raw
        f.Conventions = "CF-1.7"
    return path, raw


def test_era5_names_are_mapped_and_latitude_flipped_with_the_mapping_recorded(tmp_path):
    path, raw = _write_era5(tmp_path / "era5.nc")
    ds = data.open(path)
    assert ds["t"].dims == ("sample", "time", "level", "lat", "lon")
    np.testing.assert_array_equal(ds["lat"].values, [-90.0, -45.0, 0.0, 45.0, 90.0])
    assert ds["lon"].values[-1] == 315.0  # longitudes stay 0..360 (already increasing)
    assert ds["time"].values[1] == np.datetime64("2024-01-01T06:00:00")
    # The southernmost row of the file (last) is now first: the flip moved data with its coordinate.
    np.testing.assert_allclose(ds["t"].values[0, 1, 0, 0, :], raw[1, 0, -1, :] * 0.01 + 250.0, rtol=1e-6)
    assert ds.attrs["sciml_normalisation"] == (
        "renamed latitude->lat; renamed longitude->lon; renamed valid_time->time; renamed pressure_level->level; "
        "flipped lat to ascending (file order 90..-90); added a sample dim of length 1"
    )
    assert ds.attrs["Conventions"] == "CF-1.7"


def test_unknown_calendar_names_the_variable(tmp_path):
    path, _ = _write_era5(tmp_path / "mars.nc", calendar="martian")
    with pytest.raises(DataError) as err:
        data.open(path)
    assert str(err.value) == (
        f"{path}: variable 'valid_time' has unknown calendar 'martian'; use one of "
        "['360_day', '365_day', '366_day', 'all_leap', 'gregorian', 'julian', 'noleap', 'none', "
        "'proleptic_gregorian', 'standard'] or open with decode_times=False"
    )


def test_non_monotonic_and_duplicate_coordinates_are_refused(tmp_path):
    path = _write_plain(tmp_path / "shuffled.nc", coords={"x": [0.0, 0.2, 0.1, 0.3, 0.4]})
    with pytest.raises(DataError) as err:
        data.open(path)
    assert str(err.value) == f"{path}: coordinate 'x' is not increasing (x[2]=0.1 after x[1]=0.2); sort it with ds.sortby('x') or fix the file"
    path = _write_plain(tmp_path / "dup.nc", coords={"time": [0.0, 1.0, 1.0]})
    with pytest.raises(DataError) as err:
        data.open(path)
    assert str(err.value) == f"{path}: coordinate 'time' has duplicate value 1.0 at indices 1 and 2; drop duplicates with ds.drop_duplicates('time') or fix the file"


def test_explicit_dim_mapping_and_its_errors(tmp_path):
    path = _write_plain(tmp_path / "model.nc", dims=("run", "t", "i", "j"), shape=(2, 3, 5, 4))
    ds = data.open(path, dims={"run": "sample", "t": "time", "i": "x", "j": "y"})
    assert ds["w"].dims == ("sample", "time", "y", "x")  # transposed: x was before y in the file
    expected = np.arange(120, dtype=np.float32).reshape(2, 3, 5, 4).transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(ds["w"].values, expected)
    assert ds.attrs["sciml_normalisation"] == "renamed run->sample; renamed t->time; renamed i->x; renamed j->y; transposed fields to (sample, time, ..., y, x)"
    with pytest.raises(DataError) as err:
        data.open(path, dims={"nx": "x"})
    assert str(err.value) == f"{path}: dims= names ['nx'] not in the file; its dims are ['i', 'j', 'run', 't']"
    with pytest.raises(DataError) as err:
        data.open(path, variables=["w", "p"])
    assert str(err.value) == f"{path}: variable(s) ['p'] not found; available: ['w']"


def test_several_files_join_along_sample_or_time_and_must_agree(tmp_path):
    a = _write_plain(tmp_path / "a.nc")
    b = _write_plain(tmp_path / "b.nc")
    ds = data.open(str(tmp_path / "[ab].nc"))
    assert ds.sizes["sample"] == 4 and list(ds["sample"].values) == [0, 1, 2, 3]
    np.testing.assert_array_equal(ds["w"].values[2:], ds["w"].values[:2])
    assert ds.attrs["sciml_normalisation"] == "concatenated 2 files along sample"
    late = _write_plain(tmp_path / "late.nc", coords={"time": [3.0, 4.0, 5.0]})
    joined = data.open([a, late], concat_dim="time")
    np.testing.assert_array_equal(joined["time"].values, [0, 1, 2, 3, 4, 5])
    with pytest.raises(DataError) as err:
        data.open([a, b], concat_dim="time")  # times 0,1,2,0,1,2: not increasing
    assert "coordinate 'time' has duplicate value" in str(err.value) or "is not increasing" in str(err.value)
    narrow = _write_plain(tmp_path / "narrow.nc", shape=(2, 3, 4, 6))
    with pytest.raises(DataError) as err:
        data.open([a, narrow])
    assert str(err.value) == (
        f"{narrow}: variable 'w' has shape {{'time': 3, 'y': 4, 'x': 6}}, {a} has {{'time': 3, 'y': 4, 'x': 5}}; "
        "files must agree in every dim but 'sample'"
    )


def test_zarr_store_opens_to_the_same_dataset(tmp_path):
    nc = data.open(_write_plain(tmp_path / "plain.nc")).load()
    store = tmp_path / "store.zarr"
    nc.to_zarr(store, consolidated=False)  # xarray's zarr writer, not sciml's
    ds = data.open(store)
    assert data.detect_format(store) == "zarr" and ds.encoding["sciml_format"] == "zarr"
    xr.testing.assert_identical(ds.load(), nc)


def test_unreadable_files_are_one_line_errors(tmp_path):
    missing = tmp_path / "nope.nc"
    with pytest.raises(DataError) as err:
        data.open(missing)
    assert str(err.value) == f"{missing}: no such file; check the path or generate the data first"
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as err:
        data.open(empty)
    assert str(err.value) == f"{empty}: file is empty; re-create or re-download it"
    text = tmp_path / "notes.nc"
    text.write_bytes(b"hello world")
    with pytest.raises(DataError) as err:
        data.open(text)
    assert str(err.value) == f"{text}: not a NetCDF, HDF5 or zarr file (starts with bytes b'hello wo'); check the path"
    good = _write_plain(tmp_path / "good.nc")
    for name, cut in (("truncated4.nc", 3000), ("truncated3.nc", 200)):
        source = good if name == "truncated4.nc" else _write_plain(tmp_path / "classic.nc", fmt="NETCDF3_CLASSIC")
        truncated = tmp_path / name
        truncated.write_bytes(source.read_bytes()[:cut])
        with pytest.raises(DataError, match=rf"^{re.escape(str(truncated))}: truncated or corrupt (HDF5 )?file \(.+\); re-create or re-download it$"):
            data.open(truncated).load()
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"CDF\x01 this is not really netcdf")
    with pytest.raises(DataError, match=rf"^{re.escape(str(corrupt))}: truncated or corrupt file \(.+\); re-create or re-download it$"):
        data.open(corrupt)


def test_hdf5_of_no_known_layout_lists_what_it_found(tmp_path):
    path = tmp_path / "mystery.h5"
    with h5py.File(path, "w") as f:
        f["fields"] = np.zeros((2, 3))
        f.create_group("meta")
    with pytest.raises(DataError) as err:
        data.open(path)
    assert str(err.value) == (
        f"{path}: HDF5 file matches no known layout (NetCDF4, PDEBench, The Well); top-level entries "
        "['fields', 'meta']; convert it to NetCDF with named dimensions"
    )


def test_non_uniform_grid_is_refused_where_an_operator_needs_a_uniform_one(tmp_path):
    path = _write_plain(tmp_path / "stretched.nc", coords={"x": [0.0, 0.1, 0.3, 0.4, 0.5]})
    ds = data.open(path)  # opening a stretched grid is fine ...
    with pytest.raises(DataError) as err:
        data.grid_of(ds)  # ... building a spectral operator grid on it is not
    assert str(err.value) == f"{path}: coordinate 'x' is not uniformly spaced (steps from 0.1 to 0.2); interpolate onto a uniform grid first"


# ----------------------------------------------------------------------------- write

def test_write_refuses_attributes_netcdf_cannot_hold_and_leaves_no_file(tmp_path):
    ds = data.open(_write_plain(tmp_path / "src.nc")).load()
    ds.attrs["converged"] = True
    out = tmp_path / "out" / "x.nc"
    out.parent.mkdir()
    with pytest.raises(DataError) as err:
        data.write(ds, out)
    assert str(err.value) == f"{out}: attribute 'converged' of the dataset is a bool, which NetCDF cannot store; store 0/1 or a string"
    assert list(out.parent.iterdir()) == []


def test_write_refuses_a_nul_in_a_string_attribute_rather_than_truncating_it(tmp_path):
    ds = xr.Dataset({"w": (("sample", "x"), np.zeros((1, 4)))}, coords={"x": np.arange(4.0)},
                    attrs={"comment": "before\x00after"})
    out = tmp_path / "nul.nc"
    with pytest.raises(DataError) as err:
        data.write(ds, out)
    assert str(err.value) == (f"{out}: attribute 'comment' of the dataset contains a NUL character, which NetCDF "
                              "would silently cut the string at; remove or escape it")
    assert not out.exists()


def test_write_chunks_whole_frames_of_at_least_64_kib(tmp_path):
    ds = xr.Dataset({"w": (("sample", "time", "y", "x"), np.zeros((3, 40, 32, 32), np.float32))})
    path = data.write(ds, tmp_path / "c.nc")
    with netCDF4.Dataset(path) as f:
        assert f["w"].chunking() == [1, 16, 32, 32]  # 16 frames x 4 KiB = 64 KiB
        assert f["w"].filters()["zlib"] and f.Conventions == "CF-1.10"


def test_write_refuses_an_existing_file_unless_overwrite_and_keeps_its_bytes(tmp_path):
    ds = xr.Dataset({"w": (("sample", "x"), np.ones((1, 4)))}, coords={"x": np.arange(4.0)})
    out = _write_plain(tmp_path / "precious.nc")
    before = out.read_bytes()
    with pytest.raises(DataError) as err:
        data.write(ds, out)
    assert str(err.value) == (f"{out}: file exists and would be replaced; pass overwrite=True (--overwrite on the "
                              "command line) to replace it, or choose another path")
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["precious.nc"]
    data.write(ds, out, overwrite=True)
    assert data.open(out)["w"].values.tolist() == [[1.0] * 4]


def test_write_refuses_a_file_that_appears_while_it_writes(tmp_path, monkeypatch):
    ds = xr.Dataset({"w": (("sample", "x"), np.ones((1, 4)))}, coords={"x": np.arange(4.0)})
    out = tmp_path / "race.nc"
    to_netcdf = xr.Dataset.to_netcdf

    def slow_write(self, *args, **kwargs):  # another process creates the file meanwhile
        result = to_netcdf(self, *args, **kwargs)
        out.write_text("theirs")
        return result

    monkeypatch.setattr(xr.Dataset, "to_netcdf", slow_write)
    with pytest.raises(DataError, match="file exists and would be replaced"):
        data.write(ds, out)
    assert out.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["race.nc"]


def test_written_file_has_the_mode_of_a_new_file_under_the_umask(tmp_path):
    import os

    ds = xr.Dataset({"w": (("sample", "x"), np.ones((1, 4)))}, coords={"x": np.arange(4.0)})
    old = os.umask(0o027)
    try:
        path = data.write(ds, tmp_path / "mode.nc")
        replaced = data.write(ds, path, overwrite=True)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640  # 0o666 & ~0o027; a temp file's 0o600 must not leak through
    assert (replaced.stat().st_mode & 0o777) == 0o640


_names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6).filter(lambda s: not s.startswith("_"))
_attr_values = st.one_of(
    st.text(st.characters(exclude_characters="\x00"), max_size=12),  # NUL is refused (tested below)
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, width=64),
    st.lists(st.integers(-1000, 1000), min_size=2, max_size=4),  # NetCDF reads [v] back as v (documented)
)


@st.composite
def canonical_datasets(draw):
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ds=canonical_datasets())
def test_write_then_open_is_the_identity(tmp_path, ds):
    path = data.write(ds, tmp_path / "roundtrip.nc", overwrite=True)  # tmp_path is shared by the examples
    back = data.open(path).load()
    xr.testing.assert_identical(back, ds)  # values (NaN included), dtypes, coords, every attribute
    assert back["field"].dtype == ds["field"].dtype
