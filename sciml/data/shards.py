"""Shard directories: one dataset written as many NetCDF files, one per contiguous range of samples.

A shard directory holds ``shards.json`` (the manifest: which recipe, resolution, seed and options made
it, and the list of shards it must hold) and the shards ``part-{first_sample:08d}.nc``, each a complete
CF NetCDF file written atomically by :func:`sciml.data.write` (a shard is there whole or not at all).
The manifest is written first, before any shard, so a directory always says what it is for; several
writers (the workers of :func:`sciml.datasets.generate` with ``shard_dir=``) may add shards at once.

:func:`shard_paths` is the reader's check: it returns the shards in sample order once every expected
shard is present, each holds the samples its name says, and all agree with the manifest and with each
other; anything else is a one-line :class:`~sciml.errors.DataError` (missing samples named, shards of
another seed or resolution, overlapping or unexpected shards). :func:`open_shards` joins them lazily
into the dataset one process would have written (the same values, coordinates and attributes, ``dt``
holding the step of every chunk).

Manifest keys (JSON)::

    {"format": "sciml-shards-1", "recipe": "ns2d", "resolution": 64, "seed": 0,
     "options": {...every option of the recipe, defaults included...},
     "first_sample": 0, "n_samples": 200, "chunk": 64, "shards": [[0, 64], [64, 64], [128, 64], [192, 8]]}

``shards`` lists ``[first_sample, count]`` of each shard in sample order.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import DataError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["MANIFEST", "FORMAT", "shard_name", "shard_manifest", "prepare", "write_shard", "shard_paths", "open_shards",
           "join"]

MANIFEST = "shards.json"
FORMAT = "sciml-shards-1"
_SHARD = re.compile(r"part-(?P<first>\d{8,})\.nc")
_SPACE = ("x", "y", "z")  # dims whose length is the manifest's resolution, where a dataset has them
# Attributes that differ between the shards of one run: their own first sample, their own steps, the command
# that wrote them (a resumed run), and the file-level Conventions write() adds.
_PER_SHARD_ATTRS = {"first_sample", "dt", "chunk", "history", "Conventions"}


def shard_name(first_sample: int) -> str:
    """The file name of the shard whose first sample is ``first_sample``: ``part-{first_sample:08d}.nc``."""
    return f"part-{int(first_sample):08d}.nc"


def _jsonable(value):
    """``value`` as JSON types (tuples as lists, torch dtypes and devices as their names); what JSON cannot hold
    raises :class:`DataError`."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return value.item()
    if type(value).__module__ == "torch" and type(value).__name__ in ("dtype", "device"):
        return str(value)
    raise DataError(f"option value {value!r} ({type(value).__name__}) cannot be recorded in {MANIFEST}; "
                    "pass numbers, strings or lists")


def shard_manifest(*, recipe: str, resolution: int, seed: int, options: Mapping, first_sample: int, n_samples: int,
                   chunk: int, shards: Sequence[tuple[int, int]]) -> dict:
    """The manifest of a shard directory (see the module docstring), as JSON types.

    ``shards`` are ``(first_sample, count)`` pairs that must tile ``first_sample .. first_sample + n_samples - 1``
    in order; :class:`DataError` otherwise.
    """
    expected = int(first_sample)
    for first, count in shards:
        if int(first) != expected or int(count) < 1:
            raise DataError(f"shards {list(shards)} do not tile samples {first_sample} to {first_sample + n_samples - 1}")
        expected += int(count)
    if expected != first_sample + n_samples:
        raise DataError(f"shards {list(shards)} do not tile samples {first_sample} to {first_sample + n_samples - 1}")
    return {"format": FORMAT, "recipe": str(recipe), "resolution": int(resolution), "seed": int(seed),
            "options": _jsonable(dict(sorted(options.items()))), "first_sample": int(first_sample),
            "n_samples": int(n_samples), "chunk": int(chunk), "shards": [[int(a), int(b)] for a, b in shards]}


def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{directory}: no {MANIFEST}, so not a shard directory; give the directory "
                        "generate(shard_dir=...) wrote") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot be read as JSON ({err}); delete the directory and generate again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a {FORMAT} manifest; delete the directory and generate again")
    return manifest


def _differences(found: Mapping, wanted: Mapping) -> list[str]:
    """``key: found X, wanted Y`` for the manifest entries that differ (options compared one by one)."""
    diffs = []
    for key in ("recipe", "resolution", "seed", "first_sample", "n_samples", "chunk"):
        if found.get(key) != wanted.get(key):
            diffs.append(f"{key} {found.get(key)!r} (wanted {wanted.get(key)!r})")
    found_options, wanted_options = found.get("options", {}), wanted.get("options", {})
    for key in sorted(set(found_options) | set(wanted_options)):
        if found_options.get(key) != wanted_options.get(key):
            diffs.append(f"option {key} {found_options.get(key)!r} (wanted {wanted_options.get(key)!r})")
    if not diffs and found.get("shards") != wanted.get("shards"):
        diffs.append("the shard list")
    return diffs


def prepare(directory: str | os.PathLike, manifest: Mapping) -> set[int]:
    """Make ``directory`` a shard directory for ``manifest`` (from :func:`shard_manifest`); return the indices
    (into ``manifest["shards"]``) of the shards already there and valid, which a resumed run skips.

    A new or empty directory gets ``shards.json`` (atomically, never replacing one another writer put there
    first). A directory whose manifest differs (another recipe, resolution, seed or option) is refused with
    a one-line :class:`DataError` naming what differs, as is one holding a shard that does not belong to it.
    """
    from .._atomic import write_text

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{directory}: cannot create the shard directory ({err.strerror}); choose another") from None
    if not directory.is_dir():
        raise DataError(f"{directory}: exists and is not a directory; choose another shard directory")
    path = directory / MANIFEST
    if not path.exists():
        stray = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
        if stray:
            raise DataError(f"{directory}: holds {', '.join(stray[:3])}{' ...' if len(stray) > 3 else ''} but no "
                            f"{MANIFEST}; use an empty or new shard directory")
        try:
            write_text(path, json.dumps(manifest, indent=1) + "\n", overwrite=False)
        except DataError:  # another writer created it meanwhile: it is checked below like any other
            pass
    found = _read_manifest(directory)
    diffs = _differences(found, manifest)
    if diffs:
        raise DataError(f"{directory}: holds shards of another run ({'; '.join(diffs)}); use another shard "
                        "directory, or delete this one")
    present = _present(directory, found)
    by_first = {first: i for i, (first, _) in enumerate(found["shards"])}
    return {by_first[first] for first in present}


def _shard_files(directory: Path) -> dict[int, Path]:
    files = {}
    for entry in sorted(directory.iterdir()):
        match = _SHARD.fullmatch(entry.name)
        if match:
            files[int(match["first"])] = entry
        elif entry.suffix == ".nc" and not entry.name.startswith("."):
            raise DataError(f"{entry}: not a shard name (part-NNNNNNNN.nc) in shard directory {directory}; move it out")
    return files


def _check_shard(path: Path, first: int, manifest: Mapping, reference: dict | None) -> dict:
    """Open shard ``path`` (named for sample ``first``); :class:`DataError` where it disagrees with the manifest or
    with ``reference`` (what another shard of the directory holds). Returns its summary."""
    import numpy as np

    from .io import open as open_data

    with open_data(path) as ds:
        samples = np.asarray(ds["sample"].values) if "sample" in ds.coords else np.arange(ds.sizes.get("sample", 0))
        attrs = dict(ds.attrs)
        summary = {"path": path, "first": first, "count": int(samples.size),
                   "sizes": {d: int(n) for d, n in ds.sizes.items() if d != "sample"},
                   "variables": sorted(map(str, ds.data_vars)),
                   "attrs": {k: v for k, v in attrs.items() if k not in _PER_SHARD_ATTRS}}
    seed = attrs.get("seed")
    if seed is None or int(seed) != manifest["seed"]:
        raise DataError(f"{path}: a shard of seed {seed if seed is None else int(seed)} in a directory of seed {manifest['seed']} "
                        "(another run's file); move it out or use another shard directory")
    if samples.size == 0 or not np.array_equal(samples, np.arange(first, first + samples.size)):
        raise DataError(f"{path}: holds samples {samples[:1].tolist()}..{samples[-1:].tolist()}, not a run from {first} "
                        "as its name says; move it out or generate again")
    if int(attrs.get("first_sample", first)) != first:
        raise DataError(f"{path}: its first_sample attribute is {attrs['first_sample']}, its name says {first}; move "
                        "it out or generate again")
    for dim in _SPACE:
        if dim in summary["sizes"] and summary["sizes"][dim] != manifest["resolution"]:
            raise DataError(f"{path}: a shard at resolution {summary['sizes'][dim]} in a directory of resolution "
                            f"{manifest['resolution']} (another run's file); move it out or use another shard directory")
    if reference is not None:
        for key, what in (("variables", "variables"), ("sizes", "sizes"), ("attrs", "attributes")):
            if summary[key] != reference[key]:
                raise DataError(f"{path}: its {what} differ from {reference['path'].name}'s (another run's file?); "
                                "move it out or use another shard directory")
    return summary


def _present(directory: Path, manifest: Mapping) -> list[int]:
    """First samples of the shards present, each checked; overlapping and unexpected shards are refused."""
    expected = {int(first): int(count) for first, count in manifest["shards"]}
    summaries, reference = [], None
    for first, path in sorted(_shard_files(directory).items()):
        summary = _check_shard(path, first, manifest, reference)
        reference = reference or summary
        if summaries and summaries[-1]["first"] + summaries[-1]["count"] > first:
            previous = summaries[-1]
            raise DataError(f"{directory}: shards {previous['path'].name} (samples {previous['first']} to "
                            f"{previous['first'] + previous['count'] - 1}) and {path.name} overlap; one is another "
                            "run's: move it out")
        if expected.get(first) != summary["count"]:
            raise DataError(f"{path}: samples {first} to {first + summary['count'] - 1} are not a shard of {MANIFEST} "
                            "(another run's file); move it out")
        summaries.append(summary)
    return [s["first"] for s in summaries]


def _ranges(numbers: list[int]) -> str:
    """``0-3, 8, 12-15`` for sorted integers."""
    spans, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            spans.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(spans)


def write_shard(ds: xr.Dataset, directory: str | os.PathLike, *, index: int, manifest: Mapping) -> Path:
    """Write ``ds``, shard ``index`` of ``manifest["shards"]``, into ``directory`` as ``part-{first:08d}.nc``.

    The manifest is written first when the directory has none (:func:`prepare`); a directory of another
    run is refused. ``ds`` must hold exactly the shard's samples (``sample`` coordinate ``first .. first +
    count - 1``) of the manifest's seed. The file is written atomically (:func:`sciml.data.write`) and
    replaces a shard of the same name (the same samples of the same run: a task run again after its worker
    died). Returns the path.
    """
    import numpy as np

    from .io import write

    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        prepare(directory, manifest)
    found = _read_manifest(directory)
    diffs = _differences(found, manifest)
    if diffs:
        raise DataError(f"{directory}: holds shards of another run ({'; '.join(diffs)}); use another shard directory")
    if not 0 <= index < len(manifest["shards"]):
        raise DataError(f"shard index {index} is outside the manifest's {len(manifest['shards'])} shards")
    first, count = manifest["shards"][index]
    samples = np.asarray(ds["sample"].values) if "sample" in ds.coords else None
    if samples is None or not np.array_equal(samples, np.arange(first, first + count)):
        raise DataError(f"shard {index} must hold samples {first} to {first + count - 1}; the dataset holds "
                        f"{'none' if samples is None else _ranges(samples.tolist())}")
    if int(ds.attrs.get("seed", -1)) != manifest["seed"]:
        raise DataError(f"shard {index}: the dataset's seed {ds.attrs.get('seed')!r} is not the manifest's "
                        f"{manifest['seed']}")
    return write(ds, directory / shard_name(first), overwrite=True)


def shard_paths(directory: str | os.PathLike) -> list[Path]:
    """The shards of ``directory`` in sample order, once all are present and agree.

    Raises:
        DataError: one line: no manifest; shards missing (the samples named); a shard of another seed or
            resolution, whose samples or attributes disagree with its name, the manifest or the other
            shards; overlapping or unexpected shards.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such shard directory; check the path")
    manifest = _read_manifest(directory)
    present = set(_present(directory, manifest))
    missing = [(first, count) for first, count in manifest["shards"] if first not in present]
    if missing:
        samples = [s for first, count in missing for s in range(first, first + count)]
        raise DataError(f"{directory}: samples {_ranges(samples)} are missing ({len(missing)} of "
                        f"{len(manifest['shards'])} shards); run generate again with the same shard directory to "
                        "finish it")
    return [directory / shard_name(first) for first, _ in manifest["shards"]]


def open_shards(directory: str | os.PathLike, *, chunks: Mapping[str, int] | None = None) -> xr.Dataset:
    """The shards of ``directory`` (:func:`shard_paths`, so all present and agreeing) joined lazily along ``sample``.

    Each shard opens with dask ``chunks`` (default ``{}``: the file's own chunks, whole frames); the join is
    :func:`join` with the manifest's ``chunk``, so the dataset equals the one a single process generates
    (``.identical()``; the same bytes once written by :func:`sciml.data.write`).
    """
    from .io import open as open_data

    paths = shard_paths(directory)
    manifest = _read_manifest(Path(directory))
    return join([open_data(path, chunks=dict(chunks or {})) for path in paths], chunk=manifest["chunk"])


def join(parts: Sequence[xr.Dataset], *, chunk: int) -> xr.Dataset:
    """Datasets of consecutive chunks of samples joined along ``sample`` as one process records them.

    The first part's attributes, except ``dt``: the step of every chunk (``chunk`` samples solved together),
    one number when all chunks used the same step, else the list with ``attrs["chunk"] = chunk`` (samples
    ``first_sample + i * chunk, ...`` used ``dt[i]``), keys in the first part's order.
    """
    import xarray as xr

    parts = list(parts)
    if not parts:
        raise DataError("no parts to join")
    joined = xr.concat(parts, dim="sample", data_vars="minimal", coords="minimal", compat="override",
                       combine_attrs="override")
    if "dt" not in joined.attrs:
        return joined
    steps = []
    for part in parts:
        dt = part.attrs["dt"]
        n_chunks = -(-part.sizes["sample"] // chunk)
        steps += [float(s) for s in dt] if hasattr(dt, "__len__") else [float(dt)] * n_chunks
    recorded = {"dt": steps[0]} if len(set(steps)) == 1 else {"dt": steps, "chunk": chunk}
    attrs = {}
    for key, value in joined.attrs.items():
        if key == "dt":
            attrs.update(recorded)
        elif key != "chunk":
            attrs[key] = value
    joined.attrs = attrs
    return joined
