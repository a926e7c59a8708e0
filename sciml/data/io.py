"""``sciml.data.open`` and ``sciml.data.write``: every supported format into the canonical layout and back.

Formats are detected from content, not from file names: NetCDF3 (``CDF`` magic), HDF5 (``\\x89HDF``
magic) which is then NetCDF4, PDEBench (:mod:`.pdebench`) or The Well (:mod:`.the_well`) by its
structure, and zarr stores (a directory with ``.zgroup``/``.zmetadata``/``zarr.json``). CF decoding
(``scale_factor``/``add_offset`` packing, ``_FillValue``/``missing_value`` masks, time units and
calendars) is xarray's; ERA5 names are mapped and a descending latitude is flipped, each change written
to ``ds.attrs["sciml_normalisation"]``. The detected format is ``ds.encoding["sciml_format"]``.

Data stay lazy: a single file opens with lazily indexed arrays (nothing is read until values are
asked for, and only those values are read); several files open dask-backed and are concatenated.
"""

from __future__ import annotations

import datetime
import glob
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .._atomic import atomic_path, is_partial, partial_message
from ..errors import ConfigError, DataError
from ._layout import SPACE_ORDER, record, require_variables
from .tensors import in_canonical_order

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["open", "write", "detect_format", "file_sha256", "KNOWN_CALENDARS"]

KNOWN_CALENDARS = frozenset(
    {"standard", "gregorian", "proleptic_gregorian", "noleap", "365_day", "all_leap", "366_day", "360_day", "julian", "none"}
)
# ERA5 (new CDS) and other common long names -> canonical names.
_ERA5_NAMES = {"latitude": "lat", "longitude": "lon", "valid_time": "time", "pressure_level": "level"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_CHECKED_COORDS = ("time", *SPACE_ORDER)
_CHUNK_TARGET_BYTES = 1 << 16  # >= 64 KiB per chunk: below that, per-chunk overhead dominates reads


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _expand(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Paths from one path, a glob pattern, or a sequence of paths; :class:`DataError` when none exist."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if any(c in text for c in "*?[") and not Path(text).exists():
            paths = sorted(Path(p) for p in glob.glob(text) if not is_partial(p))  # never unfinished writes
            if not paths:
                raise DataError(f"{text}: the pattern matches no file; check the path")
            return paths
        paths = [Path(text)]
    else:
        paths = [Path(p) for p in source]
        if not paths:
            raise DataError("no files given; pass a path, a glob pattern or a list of paths")
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: no such file; check the path or generate the data first")
        if is_partial(path):
            raise DataError(partial_message(path))
    return paths


def is_shard_directory(path: Path) -> bool:
    """Whether ``path`` is a directory of shards (it holds ``shards.json``) rather than a zarr store."""
    return (path.is_dir() and (path / "shards.json").is_file()
            and not any((path / name).exists() for name in (".zgroup", ".zmetadata", "zarr.json", ".zarray")))


def _expand_shards(paths: list[Path]) -> tuple[list[Path], bool]:
    """Replace each shard directory by its shards, in order (:func:`sciml.data.shards.shard_paths`)."""
    if not any(is_shard_directory(p) for p in paths):
        return paths, False
    from .shards import shard_paths

    expanded = []
    for path in paths:
        if is_shard_directory(path):
            shards = [Path(p) for p in shard_paths(path)]
            if not shards:
                raise DataError(f"{path}: the shard directory lists no shards; generate the data first")
            expanded += _expand(shards)
        else:
            expanded.append(path)
    return expanded, True


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks), for provenance records."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_format(path: str | os.PathLike) -> str:
    """``"netcdf3"``, ``"netcdf4"``, ``"pdebench"``, ``"the_well"`` or ``"zarr"``, from the content of ``path``."""
    path = Path(path)
    try:
        if path.is_dir():
            entries = os.listdir(path)
            if any(name in entries for name in (".zgroup", ".zmetadata", "zarr.json", ".zarray")):
                return "zarr"
            raise DataError(f"{path}: is a directory but not a zarr store (no .zgroup, .zmetadata or zarr.json); give a file or a zarr store")
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror}); check its permissions") from None
    if not head:
        raise DataError(f"{path}: file is empty; re-create or re-download it")
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if head[:8] != _HDF5_MAGIC:
        raise DataError(f"{path}: not a NetCDF, HDF5 or zarr file (starts with bytes {head[:8]!r}); check the path")
    # Superblocks of version 2 and 3 flag a file open for writing until it is closed (HDF5 file format, "File
    # Consistency Flags"): set in a file nobody writes, its writer was killed, and parts of it may be missing.
    if len(head) == 12 and head[8] in (2, 3) and head[11] & 1:
        raise DataError(f"{path}: was not closed by its writer (the HDF5 superblock still marks it open for writing), "
                        "so its data may be incomplete; wait for the writer to finish, or re-create the file")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "_NCProperties" in f.attrs or _has_dimension_scales(f):
                return "netcdf4"
            from . import pdebench, the_well

            if the_well.matches(f):
                return "the_well"
            if pdebench.matches(f):
                return "pdebench"
            entries = sorted(f.keys())[:8]
    except OSError as err:
        raise DataError(f"{path}: truncated or corrupt HDF5 file ({_one_line(err)}); re-create or re-download it") from None
    raise DataError(
        f"{path}: HDF5 file matches no known layout (NetCDF4, PDEBench, The Well); top-level entries {entries}; "
        "convert it to NetCDF with named dimensions"
    )


# NetCDF classic (CDF1), 64-bit offset (CDF2) and 64-bit data (CDF5) headers, as the format specification
# (https://docs.unidata.ucar.edu/netcdf-c/current/file_format_specifications.html) lays them out.
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 10, 11, 12
_NC_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}


class _Corrupt(Exception):
    pass


def _netcdf3_declared_size(handle, size: int) -> int:
    """The file size a NetCDF3 header declares: the end of the last variable's data (``size``: the file's)."""
    version = handle.read(4)[3]
    count_width = 8 if version == 5 else 4
    offset_width = 4 if version == 1 else 8

    def skip(n: int) -> None:
        if handle.tell() + n > size:
            raise _Corrupt(f"the NetCDF3 header is cut short at byte {size}")
        handle.seek(n, 1)

    def number(width: int) -> int:
        data = handle.read(width)
        if len(data) < width:
            raise _Corrupt(f"the NetCDF3 header is cut short at byte {size}")
        return int.from_bytes(data, "big")

    def name() -> None:
        n = number(count_width)
        skip(n + (-n) % 4)

    def items(tag: int, what: str) -> int:
        at, found, n = handle.tell(), number(4), number(count_width)
        if found not in (0, tag) or (found == 0 and n):
            raise _Corrupt(f"the NetCDF3 header has no {what} list at byte {at}")
        return n

    def type_size() -> int:
        nc_type = number(4)
        if nc_type not in _NC_TYPE_SIZES:
            raise _Corrupt(f"the NetCDF3 header has an unknown data type {nc_type} at byte {handle.tell() - 4}")
        return _NC_TYPE_SIZES[nc_type]

    def attributes() -> None:
        for _ in range(items(_NC_ATTRIBUTE, "attribute")):
            name()
            width = type_size()
            n = number(count_width) * width
            skip(n + (-n) % 4)

    records = number(count_width)
    lengths = []
    for _ in range(items(_NC_DIMENSION, "dimension")):
        name()
        lengths.append(number(count_width))
    attributes()
    end, record_vars = handle.tell(), []
    for _ in range(items(_NC_VARIABLE, "variable")):
        name()
        dims = [number(count_width) for _ in range(number(count_width))]
        if any(d >= len(lengths) for d in dims):
            raise _Corrupt(f"a NetCDF3 variable names dimension {max(dims)}, the header has {len(lengths)}")
        attributes()
        width = type_size()
        number(count_width)  # vsize: redundant, and clipped for variables over 4 GiB
        begin = number(offset_width)
        is_record = bool(dims) and lengths[dims[0]] == 0
        nbytes = width * math.prod(lengths[d] for d in dims[is_record:])
        if is_record:
            record_vars.append((begin, nbytes))
        else:
            end = max(end, begin + nbytes)
    if record_vars and 0 < records < (1 << 8 * count_width) - 1:  # all ones: streaming, count unknown
        # Records interleave the record variables, each padded to 4 bytes unless there is only one.
        record = record_vars[0][1] if len(record_vars) == 1 else sum(n + (-n) % 4 for _, n in record_vars)
        end = max(end, *(begin + (records - 1) * record + n for begin, n in record_vars))
    return end


def _check_netcdf3_size(path: Path) -> None:
    """:class:`DataError` when the file is shorter than its header declares (netCDF-C would read stale buffers)."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            declared = _netcdf3_declared_size(handle, size)
        except _Corrupt as err:
            raise DataError(f"{path}: truncated or corrupt file ({err}); re-create or re-download it") from None
    if size < declared:
        raise DataError(f"{path}: truncated or corrupt file (its header declares {declared} bytes, the file has {size}); "
                        "re-create or re-download it")


def _has_dimension_scales(f) -> bool:
    """True when any root dataset is an HDF5 dimension scale (netCDF-4 without ``_NCProperties``)."""
    for item in f.values():
        if getattr(item, "attrs", None) is not None and item.attrs.get("CLASS") == b"DIMENSION_SCALE":
            return True
    return False


def _open_netcdf(path: Path, chunks) -> xr.Dataset:
    import xarray as xr

    engine = "netcdf4"
    try:
        return xr.open_dataset(path, engine=engine, chunks=chunks, cache=False)
    except ValueError as err:
        if "unable to decode time" in str(err):
            raise _calendar_error(path, engine) from None
        raise DataError(f"{path}: cannot decode the file ({_one_line(err)}); fix the offending attributes") from None
    except (OSError, RuntimeError, TypeError) as err:
        raise DataError(f"{path}: truncated or corrupt file ({_one_line(err)}); re-create or re-download it") from None


def _calendar_error(path: Path, engine: str) -> DataError:
    import xarray as xr

    with xr.open_dataset(path, engine=engine, decode_times=False) as raw:
        for name, var in raw.variables.items():
            calendar = str(var.attrs.get("calendar", "standard")).lower()
            if "since" in str(var.attrs.get("units", "")) and calendar not in KNOWN_CALENDARS:
                return DataError(
                    f"{path}: variable {name!r} has unknown calendar {calendar!r}; "
                    f"use one of {sorted(KNOWN_CALENDARS)} or open with decode_times=False"
                )
    return DataError(f"{path}: cannot decode the time units; check the units/calendar attributes")


def _zarr_consolidated(path: Path) -> bool:
    """Whether the store carries consolidated metadata (v2 ``.zmetadata`` or v3 ``consolidated_metadata``)."""
    if (path / ".zmetadata").exists():
        return True
    root = path / "zarr.json"
    if root.exists():
        import json

        return bool(json.loads(root.read_text()).get("consolidated_metadata"))
    return False


def _check_zarr_codecs(path: Path) -> None:
    """Refuse a store whose metadata names the pickle codec: decoding it unpickles, running code from the store."""
    import json

    names = [path / ".zmetadata", path / "zarr.json"]
    names += [child / meta for child in path.iterdir() if child.is_dir() for meta in (".zarray", "zarr.json")]

    def walk(node, where: Path) -> None:
        if isinstance(node, dict):
            codec = node.get("id") if isinstance(node.get("id"), str) else node.get("name")
            if isinstance(codec, str) and codec.rsplit(".", 1)[-1].lower() == "pickle":
                raise DataError(f"{where}: names the pickle codec, which would run code stored in the data when read; "
                                "refusing to open it: re-write the store without object arrays")
            for key, value in node.items():
                if key != "attributes" and not key.endswith(".zattrs"):  # the user's attributes are not codecs
                    walk(value, where)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    for name in names:
        if name.is_file():
            try:
                walk(json.loads(name.read_text()), name)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise DataError(f"{name}: unreadable zarr metadata ({_one_line(err)}); re-create the store") from None


def _open_one(path: Path, *, chunks) -> xr.Dataset:
    kind = detect_format(path)
    if kind == "netcdf3":
        _check_netcdf3_size(path)
    if kind in ("netcdf3", "netcdf4"):
        ds = _open_netcdf(path, chunks)
    elif kind == "zarr":
        import xarray as xr

        _check_zarr_codecs(path)
        try:
            ds = xr.open_dataset(path, engine="zarr", chunks=chunks, consolidated=_zarr_consolidated(path))
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"{path}: unreadable zarr store ({_one_line(err)}); re-create it") from None
    else:
        from . import pdebench, the_well

        reader = pdebench if kind == "pdebench" else the_well
        ds = reader.read(path)
        if chunks is not None:
            ds = ds.chunk(chunks)
    ds.attrs.pop("sciml_format", None)
    ds.encoding["sciml_format"] = kind
    ds.encoding["source"] = str(path)
    return ds


def _normalise(ds: xr.Dataset, path: Path, dims: Mapping[str, str] | None) -> xr.Dataset:
    """Rename to canonical names, flip descending latitude, add ``sample``, transpose; record each change."""
    attrs = dict(ds.attrs)
    if dims:
        unknown = [name for name in dims if name not in ds.dims and name not in ds.variables]
        if unknown:
            raise DataError(f"{path}: dims= names {unknown} not in the file; its dims are {sorted(map(str, ds.dims))}")
        ds = ds.rename(dict(dims))
        changes = [f"renamed {old}->{new}" for old, new in dims.items() if old != new]
    else:
        changes = []
    # valid_time is ERA5's time only as a dimension; a non-dimension valid_time (a prediction's init + lead,
    # cfgrib's time + step) sits beside the time it is computed from and is kept.
    era5 = {old: new for old, new in _ERA5_NAMES.items()
            if old in ds.dims or (old in ds.variables and old != "valid_time")}
    clashes = [new for new in era5.values() if new in ds.variables or new in ds.dims]
    if clashes:
        raise DataError(f"{path}: both {sorted(era5)} and {clashes} are present; pass dims= to say which is which")
    if era5:
        ds = ds.rename(era5)
        changes += [f"renamed {old}->{new}" for old, new in era5.items()]
    ds.attrs = attrs
    for change in changes:
        record(ds, change)
    if "lat" in ds.dims and "lat" in ds.coords and ds.sizes["lat"] > 1:
        lat = np.asarray(ds["lat"].values)
        if np.all(np.diff(lat) < 0):
            ds = ds.isel(lat=slice(None, None, -1))
            record(ds, f"flipped lat to ascending (file order {lat[0]:g}..{lat[-1]:g})")
    if "sample" not in ds.dims:
        fields = [name for name, var in ds.data_vars.items() if set(var.dims) & set(SPACE_ORDER)]
        ds = ds.assign({name: ds[name].expand_dims("sample") for name in fields})
        ds = ds.assign_coords(sample=np.arange(1))
        record(ds, "added a sample dim of length 1")
    ordered = in_canonical_order(ds)
    if ordered is not ds:
        ds = record(ordered, "transposed fields to (sample, time, ..., y, x)")
    _check_coordinates(ds, path)
    return ds


def _check_coordinates(ds: xr.Dataset, path: Path) -> None:
    """Time and space coordinates must be 1-D and strictly increasing (no duplicates, no reordering)."""
    for name in _CHECKED_COORDS:
        if name not in ds.coords or ds[name].ndim != 1 or ds.sizes.get(name, 0) < 2:
            continue
        values = np.asarray(ds[name].values)
        steps = np.diff(values)
        origin = datetime.timedelta(0) if values.dtype == object else steps.dtype.type(0)  # cftime steps are timedeltas
        zero = np.flatnonzero(steps == origin)
        if zero.size:
            i = int(zero[0])
            raise DataError(
                f"{path}: coordinate {name!r} has duplicate value {values[i]} at indices {i} and {i + 1}; "
                f"drop duplicates with ds.drop_duplicates({name!r}) or fix the file"
            )
        back = np.flatnonzero(steps < origin)
        if back.size:
            i = int(back[0])
            raise DataError(
                f"{path}: coordinate {name!r} is not increasing ({name}[{i + 1}]={values[i + 1]} after {name}[{i}]={values[i]}); "
                f"sort it with ds.sortby({name!r}) or fix the file"
            )


def _check_consistent(datasets: list[xr.Dataset], paths: list[Path], concat_dim: str) -> None:
    first, first_path = datasets[0], paths[0]
    for ds, path in zip(datasets[1:], paths[1:]):
        missing = sorted(set(first.data_vars) ^ set(ds.data_vars))
        if missing:
            raise DataError(f"{path}: variables differ from {first_path} ({missing}); open the files separately or select variables")
        for name, var in ds.data_vars.items():
            shape = {d: n for d, n in var.sizes.items() if d != concat_dim}
            expected = {d: n for d, n in first[name].sizes.items() if d != concat_dim}
            if shape != expected:
                raise DataError(
                    f"{path}: variable {name!r} has shape {shape}, {first_path} has {expected}; "
                    f"files must agree in every dim but {concat_dim!r}"
                )
        for dim in ds.dims:  # equal shapes, other coordinate values: xarray's AlignmentError otherwise
            if dim == concat_dim or dim not in ds.indexes or dim not in first.indexes:
                continue
            mine, theirs = np.asarray(ds.indexes[dim]), np.asarray(first.indexes[dim])
            if mine.shape == theirs.shape and not np.array_equal(mine, theirs):
                at = int(np.flatnonzero(mine != theirs)[0])
                raise DataError(f"{path}: coordinate {dim!r} differs from {first_path}'s (first at index {at}: {mine[at]} "
                                f"against {theirs[at]}); files joined along {concat_dim!r} must share every other "
                                "coordinate: regrid them to one grid, or open them separately")


def _numbered_in_sequence(datasets: list[xr.Dataset]) -> bool:
    """Whether the files' ``sample`` numbers already continue one another (shards of one run: 0..63, 64..127)."""
    if not all("sample" in d.coords and d["sample"].ndim == 1 for d in datasets):
        return False
    numbers = np.concatenate([np.asarray(d["sample"].values) for d in datasets])
    return numbers.dtype.kind in "iu" and bool(np.all(np.diff(numbers) > 0))


def open(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    dims: Mapping[str, str] | None = None,
    variables: Sequence[str] | None = None,
    concat_dim: str = "sample",
    chunks: Mapping[str, int] | None = None,
) -> xr.Dataset:
    """Open simulation output in any supported format into the canonical layout.

    Args:
        source: a file, a zarr store, a glob pattern (``"runs/*.nc"``), a list of paths, or a shard
            directory (one holding ``shards.json``, :mod:`sciml.data.shards`): its shards are joined
            along ``sample`` as a list of them would be, dask-backed.
        dims: explicit renames applied first, e.g. ``{"nx": "x", "run": "sample"}``.
        variables: keep only these fields (:class:`DataError` naming any that are missing).
        concat_dim: the dim along which several files are joined (``"sample"`` or ``"time"``). Joined
            along ``sample``, files whose sample numbers already increase from one file to the next (the
            shards of one run) keep them; otherwise (each file numbered from 0) they are renumbered 0, 1, ...
        chunks: dask chunks (e.g. ``{"sample": 1}``); ``None`` gives lazily indexed arrays for one file.

    Returns:
        ``xr.Dataset`` with dims ``(sample, [time,] ..., y, x)`` or ``(..., lat, lon)``, fields as
        variables, CF attributes kept, and what was changed in ``attrs["sciml_normalisation"]``.

    Raises:
        DataError: one line naming the file, the variable or coordinate, the problem and the fix; among
            others for a NetCDF3 file shorter than its header declares, an HDF5 file its writer never
            closed, a zarr store that names the pickle codec, an unreadable file, files to join whose
            coordinates differ (equal shapes, other grid points), and anything inside the
            ``.NAME.<hex>.partial`` staging directory of an unfinished write (which globs skip).
    """
    import xarray as xr

    expanded = _expand(source)
    if len(expanded) == 1 and is_shard_directory(expanded[0]) and dims is None:
        from .shards import open_shards  # the manifest's checks and the run's joined attrs (every chunk's dt)

        ds = open_shards(expanded[0], chunks=chunks)
        if variables is not None:
            require_variables(ds, variables)
            ds = ds[list(variables)]
        return ds
    paths, sharded = _expand_shards(expanded)
    if (len(paths) > 1 or sharded) and chunks is None:
        chunks = {}
    datasets = []
    for path in paths:
        ds = _normalise(_open_one(path, chunks=chunks), path, dims)
        if variables is not None:
            require_variables(ds, variables)
            ds = ds[list(variables)]
        datasets.append(ds)
    if len(datasets) == 1:
        return datasets[0]
    _check_consistent(datasets, paths, concat_dim)
    if concat_dim == "sample" and not _numbered_in_sequence(datasets):  # each file numbered from 0: renumber
        offsets = np.cumsum([0] + [d.sizes["sample"] for d in datasets[:-1]])
        datasets = [d.assign_coords(sample=d["sample"].values + off) if "sample" in d.coords else d for d, off in zip(datasets, offsets)]
    joined = xr.concat(datasets, dim=concat_dim, data_vars="minimal", coords="minimal", compat="override", join="exact",
                       combine_attrs="override")
    joined.encoding.update(sciml_format=datasets[0].encoding["sciml_format"], source=f"{paths[0]} (+{len(paths) - 1} files)")
    record(joined, f"concatenated {len(paths)} files along {concat_dim}")
    _check_coordinates(joined, paths[0])
    return joined


def _chunk_sizes(var: xr.Variable) -> tuple[int, ...] | None:
    """One frame per chunk (whole space), grown along the last leading dim until the chunk is >= 64 KiB."""
    if var.ndim == 0 or var.dtype.kind not in "biuf" or 0 in var.shape:
        return None
    space = [i for i, d in enumerate(var.dims) if d in SPACE_ORDER]
    chunks = [n if i in space else 1 for i, n in enumerate(var.shape)]
    lead = [i for i in range(var.ndim) if i not in space]
    if lead:
        frame = int(np.prod([var.shape[i] for i in space], dtype=np.int64)) * var.dtype.itemsize
        last = lead[-1]
        chunks[last] = int(min(var.shape[last], max(1, -(-_CHUNK_TARGET_BYTES // max(frame, 1)))))
    return tuple(chunks)


def _check_attrs(owner: str, attrs: Mapping[str, object], path: Path, fmt: str = "NetCDF") -> None:
    """NetCDF attributes are strings, numbers or 1-D numeric arrays; anything else is refused up front.

    ``fmt`` names the target in the message: zarr stores follow the same rules, so every store converts
    to NetCDF and back without loss.
    """
    for key, value in attrs.items():
        if isinstance(value, (bool, np.bool_)):
            raise DataError(f"{path}: attribute {key!r} of {owner} is a bool, which {fmt} cannot store; store 0/1 or a string")
        if isinstance(value, str) and "\x00" in value:
            raise DataError(f"{path}: attribute {key!r} of {owner} contains a NUL character, which {fmt} would "
                            "silently cut the string at; remove or escape it")
        if isinstance(value, (str, int, float, np.number)):
            continue
        array = np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else None
        if array is None or array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iuf":
            raise DataError(
                f"{path}: attribute {key!r} of {owner} is a {type(value).__name__}, which {fmt} cannot store; "
                "use a string, a number or a non-empty 1-D list of numbers"
            )


#: The zarr format :func:`write` emits: version 2, whose consolidated metadata (``.zmetadata``) is part of the
#: format and read by every zarr implementation (version 3 has no consolidated metadata in its specification).
ZARR_FORMAT = 2
_ZARR_FMT = "a CF zarr store (NetCDF's attribute types)"


def frame_chunks(dims: Sequence[str], shape: Sequence[int]) -> tuple[int, ...]:
    """Zarr chunks of whole frames: the full extent along space dims (``x``, ``y``, ``z``, ``lat``, ``lon``),
    1 along every other dim (``sample``, ``time``, ``lead_time``, ``member``, ...).

    A reader of one frame (a training window, one lead time of a forecast) then touches exactly one
    chunk per frame and variable, and an append along ``time`` never rewrites a chunk.
    """
    return tuple(int(n) if d in SPACE_ORDER else 1 for d, n in zip(dims, shape))


def zarr_compressor(compression: int):
    """The codec of sciml's zarr stores: Blosc with zstd at ``compression`` (1-9) and byte shuffle; ``None`` for 0.

    Blosc is numcodecs' standard codec (never pickle); byte shuffle groups the exponent bytes of
    floating-point values, which is where zstd finds its redundancy.
    """
    if not compression:
        return None
    import numcodecs

    return numcodecs.Blosc(cname="zstd", clevel=int(compression), shuffle=numcodecs.Blosc.SHUFFLE)


def _zarr_encoding(ds: xr.Dataset, compression: int) -> dict[str, dict]:
    """Per-variable encoding for :meth:`xarray.Dataset.to_zarr`: whole-frame chunks for fields, one compressor."""
    compressor = zarr_compressor(compression)
    encoding = {}
    for name, var in ds.variables.items():
        entry = {"compressors": None if compressor is None else (compressor,)}
        if name in ds.data_vars and var.ndim and 0 not in var.shape and set(var.dims) & set(SPACE_ORDER):
            entry["chunks"] = frame_chunks(var.dims, var.shape)
        encoding[name] = entry
    return encoding


def _fsync_tree(root: Path) -> None:
    """``fsync`` every file and directory of a store (its chunks lie in subdirectories), deepest first."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in [*files, "."]:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            except OSError:  # some file systems refuse fsync on directories
                pass
            finally:
                os.close(fd)


def _prepare(ds: xr.Dataset, path: Path, fmt: str) -> xr.Dataset:
    """A shallow copy with checked attributes, no stale encoding and ``Conventions`` set."""
    ds = ds.copy(deep=False)
    _check_attrs("the dataset", ds.attrs, path, fmt)
    for name, var in ds.variables.items():
        _check_attrs(f"variable {name!r}", var.attrs, path, fmt)
        var.encoding = {}
    ds.attrs.setdefault("Conventions", "CF-1.10")
    return ds


def write(ds: xr.Dataset, path: str | os.PathLike, *, compression: int = 4, overwrite: bool = False,
          append_dim: str | None = None) -> Path:
    """Write ``ds`` as CF NetCDF4, or as a zarr store when ``path`` ends in ``.zarr``, atomically.

    The format follows the suffix: ``.zarr`` writes a zarr store (a directory), any other suffix a
    NetCDF4 file, as before. Both carry the same CF encoding (attributes, ``units``, time ``units`` and
    ``calendar``, ``coordinates``) and values, dtypes, coordinates and attributes round trip exactly
    through :func:`open`, with one exception NetCDF imposes: a one-element list attribute reads back as
    its element there. ``Conventions = "CF-1.10"`` is added when absent.

    NetCDF: chunks hold whole spatial frames (a training read touches one chunk per frame) and at least
    64 KiB; zlib at ``compression`` (0 = none, 1-9). Zarr (format 2, consolidated ``.zmetadata``): one
    chunk per frame (:func:`frame_chunks`: 1 along ``sample``, ``time``, ``lead_time``, ``member``, the
    full extent along space dims), Blosc-zstd at ``compression`` (:func:`zarr_compressor`), never pickle.

    The file (or store) is written inside a hidden ``.NAME.<hex>.partial`` directory beside ``path`` and
    renamed when complete (a write killed halfway leaves only that, which :func:`open` refuses and the
    next write to ``path`` removes); it gets the permissions of any new file (``0o666`` less the process
    umask). An existing ``path`` is replaced only with ``overwrite=True`` (a directory only when it is a
    zarr store).

    Args:
        ds: the dataset, fields over ``(sample, [time,] ..., y, x)`` or ``(..., lat, lon)``.
        path: target file (``.nc``, ...) or zarr store (``.zarr``).
        compression: 0 (none) to 9 (smallest).
        overwrite: replace an existing ``path``.
        append_dim: zarr only: append ``ds`` along this dim (``"time"``) to the store at ``path`` (created
            when absent) after checking that it continues the store: the same variables with the same
            dims, sizes, dtypes and units, equal values of every coordinate not along ``append_dim``, the
            same kind of time (datetime64, cftime calendar, or float with the same ``units``) and values
            that increase strictly past the store's last. The store keeps its attributes; readers of its
            consolidated metadata see it before or after an append, never halfway.

    Raises:
        ConfigError: ``append_dim`` with a non-zarr path or with ``overwrite``.
        DataError: a ``compression`` outside 0-9, unwritable target, an existing file without ``overwrite``, an attribute NetCDF
            cannot represent (named), data that do not continue the store appended to (what differs,
            named), or a full disk (checked before writing against the uncompressed size, and when the
            write fails with ENOSPC; an existing ``path`` is then left as it was).
    """
    from .cf import check_writable

    zarr = Path(path).suffix == ".zarr"
    if not 0 <= compression <= 9:
        raise DataError(f"{path}: compression={compression}; use 0 (none) to 9 (smallest)")
    if append_dim is not None:
        if not zarr:
            raise ConfigError(f"{path}: append_dim={append_dim!r} needs a zarr store (a path ending in .zarr); "
                              "NetCDF files are written whole")
        if overwrite:
            raise ConfigError(f"{path}: append_dim and overwrite=True contradict each other; pass one of them")
        if Path(path).exists():
            return _append_zarr(ds, Path(path), append_dim=append_dim)
    path = check_writable(path, overwrite=overwrite)
    if zarr:
        return _write_zarr(ds, path, compression=compression, overwrite=overwrite)
    ds = _prepare(ds, path, "NetCDF")
    encoding = {}
    for name, var in ds.variables.items():
        chunks = _chunk_sizes(var)
        if chunks is not None and name in ds.data_vars:
            encoding[name] = {"chunksizes": chunks, "zlib": compression > 0}
            if compression:
                encoding[name]["complevel"] = compression
    from .._budget import check_disk, disk_full_error, is_disk_full

    check_disk(path, sum(var.nbytes for var in ds.variables.values()), what="the dataset (uncompressed)")
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    except (OSError, RuntimeError) as err:  # netCDF-C reports ENOSPC as "NetCDF: HDF error"
        if is_disk_full(err, path):
            raise disk_full_error(path, err) from None
        raise
    return path


def _write_zarr(ds: xr.Dataset, path: Path, *, compression: int, overwrite: bool) -> Path:
    from .._atomic import atomic_directory, exists_message
    from .._budget import check_disk, disk_full_error, is_disk_full

    ds = _prepare(ds, path, _ZARR_FMT)
    for name in list(ds.data_vars):
        var = ds[name].variable
        if var.chunks is not None:  # dask chunks must tile the zarr chunks: whole frames along space
            ds[name] = ds[name].chunk({d: -1 for d in var.dims if d in SPACE_ORDER})
    encoding = _zarr_encoding(ds, compression)
    check_disk(path, sum(var.nbytes for var in ds.variables.values()), what="the dataset (uncompressed)")
    try:
        with atomic_directory(path, overwrite=overwrite) as staging:
            ds.to_zarr(staging, mode="w", encoding=encoding, consolidated=True, zarr_format=ZARR_FORMAT)
            _fsync_tree(staging)
            if not overwrite and (path.exists() or path.is_symlink()):  # appeared while writing: not ours to replace
                raise DataError(exists_message(path))
    except (OSError, RuntimeError) as err:
        if is_disk_full(err, path):
            raise disk_full_error(path, err) from None
        raise
    return path


def _time_kind(coord) -> str:
    """``"datetime64"``, ``"cftime <calendar>"`` or ``"float (units U)"``: what must agree to append times."""
    values = np.asarray(coord.values)
    if values.dtype.kind == "M":
        return "datetime64"
    if values.dtype == object and values.size and hasattr(values.flat[0], "calendar"):
        return f"cftime {values.flat[0].calendar}"
    return f"{values.dtype.kind == 'f' and 'float' or values.dtype.name} (units {coord.attrs.get('units', 'none')!r})"


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _check_continues(store: xr.Dataset, ds: xr.Dataset, path: Path, dim: str) -> None:
    """:class:`DataError` naming the first way ``ds`` does not continue ``store`` along ``dim``."""
    where = f"{path}: cannot append along {dim!r}:"
    if dim not in store.dims:
        raise DataError(f"{where} the store has no dim {dim!r} (its dims are {sorted(map(str, store.dims))})")
    if dim not in ds.dims:
        raise DataError(f"{where} the data to append have no dim {dim!r} (their dims are {sorted(map(str, ds.dims))})")
    extra, missing = sorted(set(ds.data_vars) - set(store.data_vars)), sorted(set(store.data_vars) - set(ds.data_vars))
    if extra or missing:
        raise DataError(f"{where} variables differ (store only: {missing}, new only: {extra}); append the same variables")
    for name, var in ds.data_vars.items():
        old = store[name]
        if var.dims != old.dims:
            raise DataError(f"{where} variable {name!r} has dims {var.dims}, the store's has {old.dims}; "
                            "transpose it to the store's order")
        sizes = {d: n for d, n in var.sizes.items() if d != dim}
        expected = {d: n for d, n in old.sizes.items() if d != dim}
        if sizes != expected:
            raise DataError(f"{where} variable {name!r} has sizes {sizes}, the store's has {expected}")
        if var.dtype != old.dtype:
            raise DataError(f"{where} variable {name!r} is {var.dtype}, the store's is {old.dtype}; cast it with "
                            f".astype({str(old.dtype)!r})")
        if var.attrs.get("units") != old.attrs.get("units"):
            raise DataError(f"{where} variable {name!r} has units {var.attrs.get('units')!r}, the store's has "
                            f"{old.attrs.get('units')!r}; convert it first")
    for name, coord in store.coords.items():
        if name not in ds.coords:
            raise DataError(f"{where} the data to append lack coordinate {name!r}, which the store has")
        if dim not in coord.dims and not _same_values(np.asarray(ds[name].values), np.asarray(coord.values)):
            raise DataError(f"{where} coordinate {name!r} differs from the store's; appended data must share every "
                            f"coordinate not along {dim!r}")
        if dim in coord.dims and ds[name].dims != coord.dims:
            raise DataError(f"{where} coordinate {name!r} has dims {ds[name].dims}, the store's has {coord.dims}")
    new_coords = sorted(set(ds.coords) - set(store.coords))
    if new_coords:
        raise DataError(f"{where} coordinates {new_coords} are not in the store; drop them or write a new store")
    if dim in store.coords and store[dim].ndim == 1:
        old_kind, new_kind = _time_kind(store[dim]), _time_kind(ds[dim])
        if old_kind != new_kind:
            raise DataError(f"{where} {dim!r} is {new_kind}, the store's is {old_kind}; convert it to the store's encoding")
        new, last = np.asarray(ds[dim].values), np.asarray(store[dim].values)[-1:]
        both = np.concatenate([last, new])
        steps = np.diff(both)
        origin = datetime.timedelta(0) if both.dtype == object else steps.dtype.type(0)
        bad = np.flatnonzero(~(steps > origin))
        if bad.size:
            i = int(bad[0])
            before = f"the store's last {dim} {both[0]}" if i == 0 else f"{dim} {both[i]}"
            raise DataError(f"{where} {dim} {both[i + 1]} does not come after {before}; appended {dim} values "
                            "must increase strictly, without duplicates")


def _restore_committed(path: Path) -> None:
    """Make a format-2 store's per-array metadata that of its consolidated ``.zmetadata`` again.

    An append resizes the arrays (``NAME/.zarray``) as it goes and rewrites ``.zmetadata`` last, so the
    consolidated metadata is the last complete state: after an append killed halfway, the arrays are
    put back to it and the next append overwrites the orphaned chunks.
    """
    from .._atomic import write_text

    consolidated = path / ".zmetadata"
    if not consolidated.is_file():
        return
    import json

    try:
        committed = json.loads(consolidated.read_text())["metadata"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{consolidated}: unreadable zarr metadata ({_one_line(err)}); re-create the store") from None
    for key, meta in committed.items():
        target = path / key
        try:
            current = json.loads(target.read_text()) if target.is_file() else None
        except (OSError, ValueError):
            current = None
        if current != meta:
            write_text(target, json.dumps(meta, indent=4, sort_keys=True, allow_nan=True))


def _append_zarr(ds: xr.Dataset, path: Path, *, append_dim: str) -> Path:
    import xarray as xr

    from .._budget import check_disk, disk_full_error, is_disk_full

    if is_partial(path):
        raise DataError(partial_message(path))
    if detect_format(path) != "zarr":  # detect_format: a DataError for a directory that is not a store
        raise DataError(f"{path}: is not a zarr store; append_dim appends to zarr stores only")
    _check_zarr_codecs(path)
    ds = _prepare(ds, path, _ZARR_FMT)
    _restore_committed(path)
    try:
        store = xr.open_zarr(path, consolidated=_zarr_consolidated(path) or None, chunks=None)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: unreadable zarr store ({_one_line(err)}); re-create it") from None
    with store:
        _check_continues(store, ds, path, append_dim)
        # the store keeps its own attributes; what does not run along append_dim is already there, unchanged
        new = ds.drop_vars([n for n, v in ds.variables.items() if append_dim not in v.dims])
        new.attrs = dict(store.attrs)  # to_zarr(mode="a") sets the group attributes to these
        for name, var in new.variables.items():
            var.attrs = dict(store[name].attrs)
        for name in list(new.data_vars):
            if new[name].variable.chunks is not None:
                new[name] = new[name].chunk({d: -1 for d in new[name].dims if d in SPACE_ORDER})
    check_disk(path, sum(var.nbytes for var in new.variables.values()), what="the data to append (uncompressed)")
    try:  # opening by the consolidated metadata, rewritten last: a killed append leaves the store as it was
        new.to_zarr(path, mode="a", append_dim=append_dim, consolidated=True)
    except (OSError, RuntimeError) as err:
        if is_disk_full(err, path):
            raise disk_full_error(path, err) from None
        raise
    except ValueError as err:  # e.g. times the store's integer time units cannot hold exactly
        raise DataError(f"{path}: cannot append along {append_dim!r} ({_one_line(err)})") from None
    _fsync_tree(path)
    return path
