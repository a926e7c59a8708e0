"""Bad inputs to the library and the command line are one-line errors naming the thing and the fix (issue 17).

The list of the bad-input probe, entry by entry: each test names what it refused before as a traceback
(or with a misleading message), or, where it already held, keeps it so.
"""

import errno
import json
import pathlib
import re
import tempfile

import numpy as np
import pytest
import torch
import xarray as xr

from sciml import ConfigError, DataError, Grid, SolverError, data
from sciml.cli import main
from sciml.models import build, defaults_for
from sciml.surrogate import NormalizedOperator, Surrogate
from sciml.train import Task, TrainConfig, fit, read_checkpoint


def _surrogate(shape=(16, 16)):
    grid = Grid.box(*shape)
    options = {"in_channels": 1, "out_channels": 1, "hidden_channels": 4, "n_modes": (4, 4), "n_layers": 1}
    options = {**defaults_for("fno", grid, options), **options}
    torch.manual_seed(0)
    module = NormalizedOperator(build("fno", **options), 1, 1)
    module.input_norm.set([0.5], [0.3])
    module.output_norm.set([0.1], [2.0])
    return Surrogate(module=module, inputs=["u"], outputs=["u"], grid=grid, units={"u": "1"}, model="fno",
                     model_options=options, origin={"y": 0.0, "x": 0.0})


def _fields(n=3, shape=(16, 16), x_shift=0.0):
    rng = np.random.default_rng(0)
    ny, nx = shape
    return xr.Dataset({"u": (("sample", "y", "x"), rng.standard_normal((n, ny, nx)).astype(np.float32), {"units": "1"})},
                      coords={"sample": np.arange(n), "y": np.arange(ny) / ny, "x": np.arange(nx) / nx + x_shift})


def _trajectories(n=10, times=3, shape=(8, 8)):
    rng = np.random.default_rng(1)
    ny, nx = shape
    fields = {name: (("sample", "time", "y", "x"), rng.standard_normal((n, times, ny, nx)).astype(np.float32),
                     {"units": "1"}) for name in ("vorticity", "u")}
    return xr.Dataset(fields, coords={"sample": np.arange(n), "time": np.arange(float(times)),
                                      "y": np.arange(ny) / ny, "x": np.arange(nx) / nx})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inputs")
    run = tmp / "run"
    _surrogate().save(run)
    data.write(_fields(), tmp / "fields.nc")
    data.write(_trajectories(), tmp / "trajectories.nc")
    return tmp, run, tmp / "fields.nc", tmp / "trajectories.nc"


@pytest.fixture
def no_training(monkeypatch):
    """Training fails the test: a refusal must come before it."""
    import sciml.surrogate

    def trained(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(sciml.surrogate, "fit_surrogate", trained)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------- reading data

def test_glob_members_with_equal_shapes_but_other_coordinates_are_refused_by_name(tmp_path):
    data.write(_fields(2), tmp_path / "a.nc")
    data.write(_fields(2, x_shift=0.01), tmp_path / "b.nc")
    for source in (str(tmp_path / "*.nc"), [tmp_path / "a.nc", tmp_path / "b.nc"]):
        with pytest.raises(DataError) as err:  # before: xarray's AlignmentError, a traceback
            data.open(source)
        assert str(err.value) == (f"{tmp_path / 'b.nc'}: coordinate 'x' differs from {tmp_path / 'a.nc'}'s (first at "
                                  "index 0: 0.01 against 0.0); files joined along 'sample' must share every other "
                                  "coordinate: regrid them to one grid, or open them separately")
    assert data.open([tmp_path / "a.nc", tmp_path / "a.nc"]).sizes["sample"] == 4  # equal coordinates still join


def test_a_file_without_read_permission_is_a_one_line_error_also_for_root(files, monkeypatch):
    _, _, fields, _ = files
    real = pathlib.Path.open

    def denied(self, *args, **kwargs):  # what a non-root user gets for a mode-000 file
        if self == fields:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", denied)
    with pytest.raises(DataError, match=rf"^{re.escape(str(fields))}: cannot read it \(Permission denied\); check its "
                                        "permissions$"):
        data.open(fields)


def test_a_misspelt_variable_is_named_with_the_likely_one(files, capsys, no_training):
    tmp, _, _, trajectories = files
    # before: the list of what is there, without the guess
    assert main(["train", "--data", str(trajectories), "--inputs", "vorticty", "--outputs", "vorticity", "--lag", "1",
                 "--out", str(tmp / "r-misspelt")]) == 2
    assert _error(capsys) == (f"sciml train: error: {trajectories}: variable(s) ['vorticty'] not found; training needs "
                              "['vorticty', 'vorticity']; available: ['u', 'vorticity']; did you mean 'vorticity' for "
                              "'vorticty'?")


def test_lag_messages_say_what_the_lag_must_be(files, capsys):
    tmp, _, _, trajectories = files
    assert main(["train", "--data", str(trajectories), "--inputs", "u", "--outputs", "u", "--lag", "0",
                 "--out", str(tmp / "r-lag0")]) == 2
    assert _error(capsys) == "sciml train: error: lag must be a positive integer (time steps), got 0"
    from sciml.data import OperatorPairs

    ds = data.open(trajectories)
    with pytest.raises(ConfigError, match=r"^lag must be an integer >= 1 \(time steps between input and output\), got 0$"):
        OperatorPairs(ds, inputs=["u"], outputs=["u"], lag=0)  # before: "needs more than 0 time steps" (a DataError)
    with pytest.raises(DataError, match=rf"^{re.escape(str(trajectories))}: lag 3 needs more than 3 time steps, file has "
                                        r"3 \(the input at step t pairs with the output at t \+ 3\); use a lag of at "
                                        "most 2$"):
        OperatorPairs(ds, inputs=["u"], outputs=["u"], lag=3)


# ----------------------------------------------------------------------------- command-line options

def test_an_unwritable_train_out_is_refused_before_training(files, capsys, no_training):
    _, _, fields, trajectories = files
    out = fields / "run"  # under a regular file: no directory can be made there, even by root
    assert main(["train", "--data", str(trajectories), "--inputs", "u", "--outputs", "u", "--lag", "1",
                 "--out", str(out)]) == 2  # before: trained, then failed to save
    assert _error(capsys) == (f"sciml train: error: --out {out}: cannot create the run directory in {fields} (File "
                              "exists); choose another --out")


def test_an_unwritable_predict_out_is_refused_before_predicting(files, capsys, monkeypatch):
    tmp, run, fields, _ = files

    def read_only(*args, **kwargs):  # a read-only file system, where os.access still says yes to root
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert main(["predict", str(run), "--data", str(fields), "--out", str(tmp / "p.nc")]) == 2
    assert _error(capsys) == (f"sciml predict: error: {tmp / 'p.nc'}: directory {tmp} is not writable (Read-only file "
                              "system); choose another --out")


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_device_banana_is_a_one_line_error(files, capsys, command):
    tmp, run, fields, trajectories = files
    argv = {"train": ["train", "--data", str(trajectories), "--inputs", "u", "--outputs", "u", "--lag", "1",
                      "--epochs", "1", "--out", str(tmp / "r-banana")],
            "predict": ["predict", str(run), "--data", str(fields), "--out", str(tmp / "banana.nc")],
            "evaluate": ["evaluate", str(run), "--data", str(fields)]}[command]
    assert main([*argv, "--device", "banana"]) == 2
    assert _error(capsys) == (f"sciml {command}: error: device 'banana' is not a torch device; use auto, cpu, cuda or "
                              "cuda:N")


def test_train_seed_minus_one_and_the_config_messages_name_the_option(files, capsys, no_training):
    tmp, _, _, trajectories = files
    assert main(["train", "--data", str(trajectories), "--inputs", "u", "--outputs", "u", "--seed", "-1",
                 "--out", str(tmp / "r-seed")]) == 2
    assert _error(capsys) == "sciml train: error: seed must be an integer >= 0, got -1"
    with pytest.raises(ConfigError, match=r"^batch_size must be an integer >= 1, got 0$"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match=r"^lr must be a positive number, got 0$"):
        TrainConfig(lr=0)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_batch_size_zero_is_a_one_line_error(files, capsys, command):
    tmp, run, fields, _ = files
    argv = ["predict", str(run), "--data", str(fields), "--out", str(tmp / "bs.nc")] if command == "predict" else \
        ["evaluate", str(run), "--data", str(fields), "--figures", str(tmp / "figures")]
    assert main([*argv, "--batch-size", "0"]) == 2  # before: RuntimeError from torch's split
    assert _error(capsys) == (f"sciml {command}: error: batch_size must be an integer >= 1 (frames per forward pass), "
                              "got 0")
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        _surrogate().predict_tensor(torch.zeros(2, 1, 16, 16), batch_size=0)


# ----------------------------------------------------------------------------- predict

def test_a_frame_without_a_sample_dim_is_predicted_with_the_dims_it_has(files):
    surrogate = _surrogate()
    ds = _fields(1)
    frame = ds.isel(sample=0, drop=True)  # (y, x) only
    pred = surrogate.predict(frame)  # before: ValueError "could not broadcast input array"
    assert pred["u"].dims == ("y", "x")
    np.testing.assert_array_equal(pred["u"].values, surrogate.predict(ds)["u"].values[0])
    x = torch.from_numpy(ds["u"].values[:, None])
    np.testing.assert_allclose(pred["u"].values, surrogate.predict_tensor(x)[0, 0].numpy(), rtol=0, atol=0)


def test_a_1d_dataset_into_a_2d_model_is_reported_as_a_dimensionality_mismatch():
    ds = xr.Dataset({"u": (("sample", "x"), np.zeros((2, 16), np.float32), {"units": "1"})},
                    coords={"sample": [0, 1], "x": np.arange(16) / 16})
    with pytest.raises(DataError) as err:  # before: "box domain {'x': 1.0} differs from the training box domain"
        _surrogate().predict(ds)
    assert str(err.value) == ("<in-memory dataset>: the fields are 1-D on a box grid over dims ('x',), the surrogate "
                              "was trained on 2-D fields on a box grid over dims ('y', 'x'); give it fields over "
                              "('y', 'x')")


def test_steps_with_inputs_other_than_outputs_is_a_one_line_error():
    surrogate = _surrogate()
    surrogate.outputs, surrogate.lead_time = ["v"], 1.0
    with pytest.raises(ConfigError, match=r"^steps= feeds outputs back as inputs, which needs inputs == outputs; this "
                                          r"surrogate maps \['u'\] to \['v'\]$"):
        surrogate.predict(_fields(1), steps=2)


# ----------------------------------------------------------------------------- solvers

@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_a_navier_stokes_state_with_no_resolved_mode_is_refused(n):
    from sciml.solvers.navier_stokes import NavierStokes2D, solve, stable_dt, step

    eq = NavierStokes2D(viscosity=1e-3)
    w0 = torch.zeros(1, n, n)
    message = rf"^w0 is a {n}x{n} grid: the 2/3-dealiased spectral solver keeps wavenumbers k with 3 k < n, none on " \
              rf"{n} points; use n >= 4 points per side$"
    with pytest.raises(SolverError, match=message):  # before: ZeroDivisionError (0x0), a silent "solution" (1x1)
        solve(eq, w0, [0.1], progress=False)
    with pytest.raises(SolverError, match=message):
        stable_dt(eq, w0)
    if n % 2 == 1:  # rfft2 of an odd square grid: n x (n // 2 + 1), a valid spectral shape
        with pytest.raises(SolverError, match=rf"^state is the rfft2 of a {n}x{n} grid"):
            step(eq, torch.fft.rfft2(w0.double()), 0.01)
    with pytest.raises(SolverError, match=r"^w0 has no samples"):
        solve(eq, torch.zeros(0, 8, 8), [0.1], progress=False)  # before: an MKL FFT error


@pytest.mark.parametrize("n", [0, 1])
def test_a_burgers_state_with_no_resolved_mode_is_refused(n):
    from sciml.solvers.burgers import Burgers1D, solve

    with pytest.raises(SolverError, match=rf"^u0 has {n} points: .* use n >= 4 points$"):
        solve(Burgers1D(viscosity=0.1), torch.zeros(1, n, dtype=torch.float64), [0.0, 0.1], progress=False)


# ----------------------------------------------------------------------------- training provenance

class _Regression(Task):
    def loss(self, model, batch):
        x, y = batch
        return (model(x) - y).pow(2).mean()


def test_train_seconds_accumulate_over_resumes(tmp_path):
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    y = x.sum(dim=1, keepdim=True)
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, device="cpu", progress=False)
    steps = 0

    def crashing(model, batch):
        nonlocal steps
        steps += 1
        if steps == 3:  # first step of epoch 2, after the epoch-1 checkpoint
            raise KeyboardInterrupt
        return _Regression.loss(None, model, batch)

    task = _Regression(torch.nn.Linear(2, 1))
    task.loss = crashing
    with pytest.raises(KeyboardInterrupt):
        fit(task, (x, y), config=config, checkpoint_dir=tmp_path)
    manifest_path = tmp_path / "checkpoint.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["epoch"] == 1
    manifest["elapsed_s"] = 1000.0  # the first part "took" 1000 s
    manifest_path.write_text(json.dumps(manifest))
    assert read_checkpoint(tmp_path)[0]["elapsed_s"] == 1000.0
    history = fit(_Regression(torch.nn.Linear(2, 1)), (x, y), config=config, checkpoint_dir=tmp_path, resume=True)
    # before: only the resumed part was counted (fit_surrogate's own wall clock)
    assert history.train_seconds > 1000.0  # the checkpoint's 1000 s plus this part (no bound on the part: load)
    assert history[-1]["elapsed_s"] <= history.train_seconds


# ----------------------------------------------------------------------------- siblings: "need a and b" messages

def test_two_condition_messages_say_which_option_is_wrong(files, capsys):
    from sciml.data import ChunkShuffleSampler
    from sciml.datasets import generate
    with pytest.raises(ConfigError, match=r"^block_size must be an integer >= 1 \(consecutive items read together\), "
                                          "got 0$"):  # before: "need block_size >= 1 and 0 <= rank < num_replicas"
        ChunkShuffleSampler(10, block_size=0)
    with pytest.raises(ConfigError, match=r"^rank must be in \[0, num_replicas = 2\), got 2$"):
        ChunkShuffleSampler(10, block_size=2, num_replicas=2, rank=2)
    with pytest.raises(ConfigError, match=r"^n must be an integer >= 1, got 0$"):  # before: "need n >= 1 and resolution >= 4"
        generate("ns2d", 0, 16, seed=0)
    with pytest.raises(ConfigError, match=r"^resolution must be an integer >= 4, got 2$"):
        generate("ns2d", 1, 2, seed=0)
