"""Shard directories (sciml.data.shards): the manifest, resume, and the one-line refusals of foreign shards."""

import json
import shutil

import numpy as np
import pytest

from sciml import ConfigError, DataError
from sciml import data
from sciml.data.shards import join, open_shards, shard_manifest, shard_name, shard_paths, write_shard
from sciml.datasets import generate

OPTIONS = dict(times=[0.0, 0.1], chunk=1, progress=False)


@pytest.fixture(scope="module")
def single():
    return generate("ns2d", 3, 16, seed=4, **OPTIONS)


def _same(a, b):
    assert a.identical(b)
    assert a["vorticity"].values.tobytes() == b["vorticity"].values.tobytes()


def test_generate_writes_one_shard_per_chunk_and_they_join_to_the_one_process_dataset(tmp_path, single):
    directory = tmp_path / "shards"
    ds = generate("ns2d", 3, 16, seed=4, shard_dir=directory, **OPTIONS)
    assert sorted(p.name for p in directory.iterdir()) == ["part-00000000.nc", "part-00000001.nc", "part-00000002.nc",
                                                           "shards.json"]
    manifest = json.loads((directory / "shards.json").read_text())
    assert (manifest["recipe"], manifest["resolution"], manifest["seed"], manifest["chunk"]) == ("ns2d", 16, 4, 1)
    assert manifest["shards"] == [[0, 1], [1, 1], [2, 1]] and manifest["options"]["times"] == [0.0, 0.1]
    assert manifest["options"]["viscosity"] == 1e-3  # defaults recorded: an explicit default is the same run
    assert shard_paths(directory) == [directory / shard_name(i) for i in range(3)]
    assert ds["vorticity"].chunks is not None  # lazy, from the files
    _same(single, ds)
    _same(single, open_shards(directory))
    # The same bytes once written, as the command line writes --out.
    # (loaded: sciml.data.write of dask-backed arrays lays the HDF5 file out differently, same values)
    assert data.write(ds.load(), tmp_path / "a.nc").read_bytes() == data.write(single, tmp_path / "b.nc").read_bytes()
    # sciml.data.open joins a list of paths too (the values and samples; it records the join in attrs).
    opened = data.open(shard_paths(directory))
    np.testing.assert_array_equal(opened["sample"].values, [0, 1, 2])
    assert opened["vorticity"].values.tobytes() == single["vorticity"].values.tobytes()


def test_steps_of_every_chunk_survive_the_join(tmp_path):
    options = dict(times=[0.0, 0.05], solve_resolution=64, chunk=1, progress=False)
    whole = generate("burgers", 3, 32, seed=4, **options)
    assert len(set(whole.attrs["dt"])) == 3  # the three chunks used three steps
    sharded = generate("burgers", 3, 32, seed=4, shard_dir=tmp_path / "b", **options)
    _same_burgers = whole.identical(sharded) and whole["u"].values.tobytes() == sharded["u"].values.tobytes()
    assert _same_burgers and list(sharded.attrs["dt"]) == list(whole.attrs["dt"]) and sharded.attrs["chunk"] == 1
    parts = [whole.isel(sample=[i]).assign_attrs(dt=whole.attrs["dt"][i], first_sample=i) for i in range(3)]
    for part in parts:
        part.attrs.pop("chunk")
    assert join(parts, chunk=1).attrs == whole.attrs | {"first_sample": 0}


def test_resume_solves_only_the_missing_shards(tmp_path, single, monkeypatch):
    from sciml.datasets import _common

    directory = tmp_path / "shards"
    generate("ns2d", 3, 16, seed=4, shard_dir=directory, **OPTIONS)
    (directory / shard_name(1)).unlink()
    with pytest.raises(DataError, match=r"samples 1 are missing \(1 of 3 shards\); run generate again"):
        shard_paths(directory)
    kept = (directory / shard_name(0)).stat().st_mtime_ns
    solved = []
    original = _common._solve_part
    monkeypatch.setattr(_common, "_solve_part", lambda **call: (solved.append(call["first_sample"]), original(**call))[1])
    _same(single, generate("ns2d", 3, 16, seed=4, shard_dir=directory, **OPTIONS))
    assert solved == [1] and (directory / shard_name(0)).stat().st_mtime_ns == kept
    solved.clear()
    _same(single, generate("ns2d", 3, 16, seed=4, shard_dir=directory, **OPTIONS))  # complete: nothing solved
    assert solved == []


def test_a_directory_of_another_run_is_refused_before_any_solve(tmp_path):
    directory = tmp_path / "shards"
    generate("ns2d", 2, 16, seed=4, shard_dir=directory, **OPTIONS)
    with pytest.raises(DataError, match=r"holds shards of another run \(seed 4 \(wanted 5\)\)"):
        generate("ns2d", 2, 16, seed=5, shard_dir=directory, **OPTIONS)
    with pytest.raises(DataError, match=r"another run \(resolution 16 \(wanted 32\)\)"):
        generate("ns2d", 2, 32, seed=4, shard_dir=directory, **OPTIONS)
    with pytest.raises(DataError, match=r"another run \(recipe 'ns2d' \(wanted 'ns2d-kolmogorov'\)"):
        generate("ns2d-kolmogorov", 2, 16, seed=4, shard_dir=directory, **OPTIONS)
    with pytest.raises(DataError, match=r"option times \[0.0, 0.1\] \(wanted \[0.0, 0.2\]\)"):
        generate("ns2d", 2, 16, seed=4, shard_dir=directory, **{**OPTIONS, "times": [0.0, 0.2]})
    assert sorted(p.name for p in directory.iterdir()) == ["part-00000000.nc", "part-00000001.nc", "shards.json"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"holds notes.txt but no shards.json; use an empty or new shard directory"):
        generate("ns2d", 2, 16, seed=4, shard_dir=tmp_path / "other", **OPTIONS)
    with pytest.raises(ConfigError, match="dataset 'swe-sphere' cannot be split across workers"):
        generate("swe-sphere", 1, 8, seed=0, shard_dir=tmp_path / "swe")


def test_foreign_missing_and_overlapping_shards_are_one_line_errors(tmp_path):
    directory, other = tmp_path / "shards", tmp_path / "other"
    generate("ns2d", 3, 16, seed=4, shard_dir=directory, **OPTIONS)
    generate("ns2d", 3, 16, seed=5, shard_dir=other / "seed", **OPTIONS)
    generate("ns2d", 3, 32, seed=4, shard_dir=other / "fine", **OPTIONS)
    generate("ns2d", 3, 16, seed=4, shard_dir=other / "pairs", **{**OPTIONS, "chunk": 2})
    target = directory / shard_name(1)
    backup = tmp_path / "backup.nc"
    shutil.copy(target, backup)
    cases = [(other / "seed" / shard_name(1), r"part-00000001.nc: a shard of seed 5 in a directory of seed 4"),
             (other / "fine" / shard_name(1), r"part-00000001.nc: a shard at resolution 32 in a directory of resolution 16"),
             ]
    for source, message in cases:
        shutil.copy(source, target)
        with pytest.raises(DataError, match=message):
            shard_paths(directory)
        message_lines = str(pytest.raises(DataError, shard_paths, directory).value)
        assert "\n" not in message_lines
    shutil.copy(backup, target)
    # samples 0-1 named as shard 0: overlaps shard 1
    shutil.copy(other / "pairs" / shard_name(0), directory / shard_name(0))
    with pytest.raises(DataError, match=r"part-00000000.nc: samples 0 to 1 are not a shard of shards.json"):
        shard_paths(directory)
    (directory / shard_name(0)).unlink()
    shutil.copy(other / "pairs" / shard_name(2), directory / shard_name(3))  # a sample past the end, misnamed
    with pytest.raises(DataError, match=r"part-00000003.nc: holds samples \[2\]..\[2\], not a run from 3"):
        shard_paths(directory)
    shutil.copy(other / "seed" / shard_name(2), directory / shard_name(2))  # the same name, seed 5: checked first
    (directory / shard_name(3)).unlink()
    with pytest.raises(DataError, match=r"a shard of seed 5"):
        shard_paths(directory)
    (directory / shard_name(2)).unlink()
    with pytest.raises(DataError, match=r"samples 0, 2 are missing \(2 of 3 shards\)"):
        shard_paths(directory)
    with pytest.raises(DataError, match="no shards.json, so not a shard directory"):
        shard_paths(tmp_path)


def test_write_shard_checks_the_samples_against_the_manifest(tmp_path, single):
    manifest = shard_manifest(recipe="ns2d", resolution=16, seed=4, options={"chunk": 2}, first_sample=0, n_samples=3,
                              chunk=2, shards=[(0, 2), (2, 1)])
    with pytest.raises(DataError, match=r"shard 1 must hold samples 2 to 2; the dataset holds 0-1"):
        write_shard(single.isel(sample=[0, 1]), tmp_path / "d", index=1, manifest=manifest)
    assert (tmp_path / "d" / "shards.json").exists()  # the manifest comes first
    with pytest.raises(DataError, match=r"the dataset's seed 9 is not the manifest's 4"):
        write_shard(single.isel(sample=[2]).assign_attrs(seed=9), tmp_path / "d", index=1, manifest=manifest)
    path = write_shard(single.isel(sample=[2]).assign_attrs(first_sample=2), tmp_path / "d", index=1, manifest=manifest)
    assert path.name == "part-00000002.nc"
    with pytest.raises(DataError, match=r"samples 0-1 are missing"):
        shard_paths(tmp_path / "d")
    with pytest.raises(DataError, match="do not tile samples 0 to 2"):
        shard_manifest(recipe="ns2d", resolution=16, seed=4, options={}, first_sample=0, n_samples=3, chunk=2,
                       shards=[(0, 2), (3, 1)])
