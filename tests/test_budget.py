"""Impossible work is refused up front with the estimate and the limit; a full disk is a one-line DataError.

Issue 17, items 6 and 7. Memory and disk are monkeypatched to fixed sizes, so the numbers are the same on
every machine; the recipes' solvers are replaced by a stub that fails the test if the refusal comes too late.
"""

import errno
import functools
import importlib
import shutil
import warnings
from collections import namedtuple

import numpy as np
import pytest
import torch
import xarray as xr

from sciml import ConfigError, DataError, Grid, _budget, data
from sciml.cli import main
from sciml.models import build, defaults_for
from sciml.surrogate import NormalizedOperator, Surrogate

GiB = 2**30
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def memory(monkeypatch):
    """16 GiB available, whatever the machine has."""
    monkeypatch.setattr(_budget, "available_memory", lambda: 16 * GiB)


@pytest.fixture
def no_solving(monkeypatch):
    """Each recipe's solver fails the test: a refusal must come before any work."""
    from sciml import datasets

    for module in set(datasets.RECIPES.values()) - {"turbulence", "turbulence2d"}:
        recipe = importlib.import_module(f"sciml.datasets.{module}")

        @functools.wraps(recipe.generate)  # keeps the signature generate() checks the options against
        def solved(*args, _name=module, **kwargs):
            raise AssertionError(f"{_name} started solving")

        monkeypatch.setattr(recipe, "generate", solved)


def _surrogate():
    grid = Grid.box(16, 16)
    options = {"in_channels": 1, "out_channels": 1, "hidden_channels": 4, "n_modes": (4, 4), "n_layers": 1}
    options = {**defaults_for("fno", grid, options), **options}
    torch.manual_seed(0)
    module = NormalizedOperator(build("fno", **options), 1, 1)
    return Surrogate(module=module, inputs=["u"], outputs=["u"], grid=grid, units={"u": "1"}, model="fno",
                     model_options=options, origin={"y": 0.0, "x": 0.0})


# ----------------------------------------------------------------------------- 6. memory and run time

@pytest.mark.parametrize("argv, message", [
    # ns2d: 51 float32 frames of 1e10 points, three copies, + 200 B per point of solver work: 7.39 TiB
    (["ns2d", "--resolution", "100000"], ("ns2d: 1 trajectories at 100000x100000 needs about 7.39 TiB of memory and "
                                          "16 GiB is available; use a smaller --resolution")),
    # burgers: 2 float64 frames of 1e8 points (x3: 4.8e9 B) + 2e10 B of work = 2.48e10 B = 23.1 GiB
    (["burgers", "--resolution", "100000000"], ("burgers: 1 trajectories on 100000000 points needs about 23.1 GiB of "
                                                "memory and 16 GiB is available")),
    # darcy: 2 float64 fields (x3: 4.8e11 B) + 48 B/node of fields + 300 B/node of the factorisation = 3.6 TiB
    (["darcy", "--resolution", "100000"], ("darcy: 1 solutions at 100000x100000 nodes needs about 3.6 TiB of memory "
                                           "and 16 GiB is available")),
])
def test_generate_refuses_what_cannot_fit_in_memory_before_solving(memory, no_solving, tmp_path, capsys, argv, message):
    # before: ns2d and darcy died with a raw MemoryError, burgers ran for hours
    assert main(["generate", *argv, "--n", "1", "--seed", "0", "--out", str(tmp_path / "d.nc"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d.nc").exists()


def test_generate_refuses_a_run_of_years_and_warns_with_the_eta_of_a_long_one(memory, no_solving, tmp_path, capsys):
    from sciml.datasets import generate

    # burgers to t = 1e9 at dt = 0.5 dx / max|u0| (3.2e-4 on 1024 points): 3e12 steps of 1024 x 5e-7 s
    assert main(["generate", "burgers", "--n", "1", "--resolution", "64", "--times", "0", "1e9", "--seed", "0",
                 "--out", str(tmp_path / "b.nc")]) == 2
    err = capsys.readouterr().err
    assert "burgers: 1 trajectories on 1024 points needs about 1.62e+12 solver steps, estimated 26.4 years" in err
    # ns2d 64 x 256^2 to t = 50: dt capped at 0.01, 5000 steps of 64 x 65536 x 5e-7 s = 2.1 s: 2.9 h
    with pytest.warns(UserWarning, match=r"ns2d: 64 trajectories at 256x256: about 5e\+03 steps, estimated 2\.9 h"), \
            pytest.raises(AssertionError, match="ns2d started solving"):
        generate("ns2d", 64, 256, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a small run: no warning
        with pytest.raises(AssertionError, match="ns2d started solving"):
            generate("ns2d", 2, 32, seed=0, times=[0.0, 1.0])


def test_the_estimates_match_hand_counts():
    from sciml.datasets import estimate

    est = estimate("ns2d", 10, 64, times=[0.0, 0.5, 1.0], chunk=4)
    assert est.output_bytes == 10 * 3 * 64 * 64 * 4  # float32 frames
    assert est.work_bytes == 4 * 64 * 64 * 200
    assert est.file_bytes == est.output_bytes
    # dt = min(0.01, CFL step): 100 steps per chunk, 3 chunks; 4 samples x 4096 points x 5e-7 s a step
    assert est.steps == 300 and est.seconds_per_step == pytest.approx(4 * 4096 * 5e-7)
    coarse = estimate("burgers", 3, 64, times=[0.0, 1.0])  # solved on 1024 points, kept on 64
    assert coarse.file_bytes == 3 * 2 * 64 * 8 and coarse.output_bytes == 3 * 2 * 1024 * 8


def test_predict_refuses_a_declared_640_tib_output_before_allocating(memory, tmp_path):
    # 2^20 x 10 frames of 4096 x 4096 declared, none held: a zero-stride view, as a lazily opened file would be
    shape = (2**20, 10, 4096, 4096)
    ds = xr.Dataset({"u": (("sample", "time", "y", "x"), np.broadcast_to(np.float32(0), shape), {"units": "1"})},
                    coords={"time": np.arange(10.0), "y": np.arange(4096) / 4096, "x": np.arange(4096) / 4096})
    ds.encoding["source"] = path = "huge.nc"
    with pytest.raises(ConfigError) as err:  # before: np.empty of 640 TiB (MemoryError, or a lazy overcommit)
        _surrogate().predict(ds)
    assert str(err.value) == (f"{path}: the prediction (1 float32 output(s) over {{'sample': 1048576, 'time': 10}} "
                              "frames of 4096x4096) needs about 640 TiB of memory and 16 GiB is available; predict a "
                              "part at a time (ds.isel(sample=slice(start, stop)), about 640 MiB per sample), or stream "
                              "a rollout to disk with sciml forecast --out")


# ----------------------------------------------------------------------------- 7. a full disk

def _fields(n=2):
    rng = np.random.default_rng(0)
    return xr.Dataset({"u": (("sample", "y", "x"), rng.standard_normal((n, 16, 16)).astype(np.float32), {"units": "1"})},
                      coords={"sample": np.arange(n), "y": np.arange(16) / 16, "x": np.arange(16) / 16})


def test_write_and_generate_check_the_free_disk_first(monkeypatch, no_solving, tmp_path, capsys):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DataError) as err:
        data.write(_fields(), tmp_path / "u.nc")
    # 2 x 16 x 16 float32 + coordinates (2 int64, 2 x 16 float64): 2048 + 16 + 256 = 2320 B
    assert str(err.value) == (f"{tmp_path / 'u.nc'}: the dataset (uncompressed) needs about 2.27 KiB of disk and "
                              "1000 B is free there; free some space or choose another --out")
    # generate: 4 x 11 frames of 32^2 float32 = 180224 B, checked before solving (the stub would fail the test)
    assert main(["generate", "ns2d", "--n", "4", "--resolution", "32", "--times", *map(str, range(11)), "--seed", "0",
                 "--out", str(tmp_path / "w.nc")]) == 2
    assert "the ns2d dataset needs about 176 KiB of disk and 1000 B is free there" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("NetCDF: HDF error")])
def test_a_write_that_fills_the_disk_is_a_data_error_and_keeps_the_existing_file(monkeypatch, tmp_path, error):
    path = tmp_path / "u.nc"
    data.write(_fields(), path)
    before = path.read_bytes()

    def full(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    # after a failed write the disk is (nearly) full: netCDF-C's "HDF error" is read as a full disk only then
    monkeypatch.setattr(_budget, "free_disk", lambda p: 4096)
    monkeypatch.setattr(_budget, "check_disk", lambda *a, **k: None)  # the up-front check saw room
    with pytest.raises(DataError, match=rf"^{path}: the disk is full \(4 KiB free\), the file was not written "
                                        rf"\({type(error).__name__}: .*\); free some space or choose another location, "
                                        r"then run again \(existing files are unchanged\)$"):
        data.write(_fields(), path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.nc"]  # no staging directory left


def test_another_write_error_is_not_called_a_full_disk(monkeypatch, tmp_path):
    def broken(self, *args, **kwargs):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)  # plenty of room: not a full disk, not hidden
    with pytest.raises(RuntimeError, match="HDF error"):
        data.write(_fields(), tmp_path / "u.nc")


def test_predict_checks_the_free_disk_before_predicting(monkeypatch, tmp_path, capsys):
    run = _surrogate().save(tmp_path / "run")
    data.write(_fields(3), tmp_path / "u.nc")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    monkeypatch.setattr(Surrogate, "predict", lambda *a, **k: pytest.fail("predicted before checking the disk"))
    assert main(["predict", str(run), "--data", str(tmp_path / "u.nc"), "--out", str(tmp_path / "p.nc")]) == 2
    # 3 frames of 16 x 16, one float32 output: 3072 B
    assert capsys.readouterr().err.strip() == (f"sciml predict: error: {tmp_path / 'p.nc'}: the prediction needs about "
                                               "3 KiB of disk and 1000 B is free there; free some space or choose "
                                               "another --out")
