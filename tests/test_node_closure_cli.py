"""``sciml node closure-data|closure-train|closure-eval`` through ``run(args, command)`` on a tiny DNS (32^2
filtered to 16^2): the learned closure is trained through the unrolled solver and saved, the evaluation
reproduces the library's numbers, and bad input (no vorticity, a non-periodic grid, a grid the coarse solver
cannot take, a dt that does not divide the frames) is one line."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

from sciml.errors import ConfigError, DataError, SciMLError, SolverError
from sciml.node import _cli
from sciml.node.closure import (
    Smagorinsky,
    evaluate_closures,
    load_closure,
    spectral_filter,
    tune_smagorinsky,
)

DNS = ["--fine", "32", "--coarse", "16", "--interval", "0.1", "--spinup", "1", "--viscosity", "0.02", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    _cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


def _run(*argv: str) -> None:
    _cli.run(_parser().parse_args(["node", *argv]), "sciml node " + " ".join(argv))


def _one_line(info: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(info.value) and len(str(info.value)) < 400, str(info.value)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("closure-cli")
    _run("closure-data", "--out", str(d / "train.nc"), "--samples", "3", "--frames", "12", "--seed", "0", *DNS)
    _run("closure-data", "--out", str(d / "test.nc"), "--samples", "2", "--frames", "16", "--seed", "1", *DNS)
    _run("closure-train", "--data", str(d / "train.nc"), "--out", str(d / "learned"), "--dt", "0.05", "--unroll", "3",
         "--stride", "2", "--epochs", "3", "--channels", "4", "--lr", "5e-3", "--no-progress")
    return d


def test_closure_data_writes_filtered_dns_with_its_cost(files):
    ds = xr.load_dataset(files / "train.nc")
    assert ds["vorticity"].dims == ("sample", "time", "y", "x") and ds["vorticity"].shape == (3, 13, 16, 16)
    assert ds.attrs["fine_resolution"] == 32 and ds.attrs["dns_samples"] == 3 and ds.attrs["viscosity"] == 0.02
    np.testing.assert_allclose(ds["time"].values, 0.1 * np.arange(13), atol=1e-12)
    spectrum = np.abs(np.fft.fft2(ds["vorticity"].values))
    assert spectrum[..., 6:11, :].max() < 1e-4 * spectrum.max()  # nothing beyond the coarse solver's cutoff 5


def test_closure_train_saves_a_trained_hybrid_with_the_tuned_smagorinsky_coefficient(files):
    manifest = json.loads((files / "learned" / "manifest.json").read_text())
    meta = manifest["metadata"]
    assert manifest["kind"] == "cnn" and meta["dt"] == 0.05 and meta["unroll"] == 3 and meta["coarse_resolution"] == 16
    # --unroll 3 --epochs 3 is the one-stage curriculum; the rest are the benchmark recipe's defaults
    assert meta["curriculum"] == {"frames": [3], "epochs": [3]} and meta["windows"] == 48 and meta["hold_closure"] == 8
    assert manifest["options"]["velocity"] is True and manifest["options"]["layers"] == 6
    best, _ = tune_smagorinsky(xr.load_dataset(files / "train.nc"), dt=0.05, frames=3, hold_closure=8)
    assert meta["smagorinsky"] == meta["smagorinsky_baseline"] == pytest.approx(best)  # "auto": the 1-D search's
    assert manifest["options"]["smagorinsky"] == pytest.approx(best)
    history = json.loads((files / "learned" / "history.json").read_text())
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]  # it trained
    model = load_closure(files / "learned")
    w = torch.as_tensor(xr.load_dataset(files / "test.nc")["vorticity"].values[:, 0], dtype=torch.float32)
    base = Smagorinsky(best, length=2 * math.pi)(w)
    with torch.no_grad():
        moved = float((model(w) - base).abs().max())
    assert moved > 1e-6 * float(base.abs().max())  # the CNN moved off the base


def test_closure_eval_reproduces_the_library_evaluation(files):
    out = files / "report"
    _run("closure-eval", str(files / "learned"), "--data", str(files / "test.nc"), "--out", str(out), "--no-progress")
    report = json.loads((out / "evaluation.json").read_text())
    assert list(report["decorrelation_time"]) == ["no model", "Smagorinsky", "learned"]
    test = xr.load_dataset(files / "test.nc")
    c_s = json.loads((files / "learned" / "manifest.json").read_text())["metadata"]["smagorinsky_baseline"]
    direct = evaluate_closures(test, {"no model": None, "Smagorinsky": Smagorinsky(c_s, length=2 * math.pi),
                                      "learned": load_closure(files / "learned")}, dt=0.05, progress=False,
                               hold_closure=8)  # the run's --hold
    for name in ("no model", "Smagorinsky", "learned"):
        assert report["decorrelation_time"][name] == pytest.approx(float(direct["decorrelation_time"].sel(model=name)))
        assert report["spectrum_error"][name] == pytest.approx(float(direct["spectrum_error"].sel(model=name)),
                                                               rel=1e-9)
    times = report["decorrelation_time"]
    assert report["correlation_time_ratio_to_best_baseline"] == pytest.approx(
        times["learned"] / max(times["no model"], times["Smagorinsky"]))
    assert report["dns_over_model_cost"]["no model"] > 0
    saved = xr.load_dataset(out / "evaluation.nc")
    assert saved["correlation"].dims == ("model", "sample", "time")
    assert float(saved["correlation"].isel(time=0).min()) == pytest.approx(1.0, abs=1e-6)  # all start from the DNS
    assert (out / "closure.png").stat().st_size > 10_000
    with pytest.raises(DataError, match="already holds an evaluation") as info:
        _run("closure-eval", str(files / "learned"), "--data", str(files / "test.nc"), "--out", str(out))
    _one_line(info)


def test_smagorinsky_only_run_is_scored_against_no_model(files):
    _run("closure-train", "--data", str(files / "train.nc"), "--out", str(files / "smag"), "--model", "smagorinsky",
         "--smagorinsky", "0.1", "--dt", "0.05", "--unroll", "3", "--no-progress")
    model = load_closure(files / "smag")
    assert isinstance(model, Smagorinsky) and float(model.coefficient) == pytest.approx(0.1)
    assert not (files / "smag" / "history.json").exists()
    _run("closure-eval", str(files / "smag"), "--data", str(files / "test.nc"), "--out", str(files / "smag-report"),
         "--no-progress")
    report = json.loads((files / "smag-report" / "evaluation.json").read_text())
    assert list(report["spectrum_error"]) == ["no model", "Smagorinsky (run, C_s = 0.1)"]


def _write(ds: xr.Dataset, path) -> str:
    ds.to_netcdf(path)
    return str(path)


def test_bad_input_is_one_line(files, tmp_path):
    train = xr.load_dataset(files / "train.nc")
    common = ["--out", str(tmp_path / "run"), "--dt", "0.05", "--unroll", "3", "--epochs", "1", "--no-progress"]
    cases = [
        (_write(train.rename({"vorticity": "omega"}), tmp_path / "no_vorticity.nc"), common, DataError,
         "no 'vorticity' variable"),
        (_write(train.assign_coords(x=np.linspace(0, 2 * math.pi, 16)), tmp_path / "closed.nc"), common, DataError,
         "not a periodic grid"),
        (_write(train.isel(x=slice(0, 12)), tmp_path / "rectangle.nc"), common, DataError, "square grid"),
        (str(files / "train.nc"), [*common[:2], "--dt", "0.03", *common[4:]], ConfigError,
         "must divide the frame interval"),
        (str(files / "train.nc"), [*common[:4], "--unroll", "40", *common[6:]], ConfigError, "frames must be"),
        (str(files / "train.nc"), [*common, "--curriculum", "2:1"], ConfigError, "not both"),
        (str(files / "train.nc"), [*common[:4], "--curriculum", "2-1,4-1", "--no-progress"], ConfigError,
         "FRAMES:EPOCHS"),
        (str(files / "train.nc"), [*common[:4], "--curriculum", "4:1,2:1", "--no-progress"], ConfigError,
         "must not decrease"),
        (str(files / "train.nc"), [*common[:4], "--curriculum", "2:1,3:1", "--windows", "0", "--no-progress"],
         ConfigError, "one unroll length"),
        (str(files / "train.nc"), [*common, "--hold", "-1"], ConfigError, "--hold must be >= 0"),
        (str(files / "train.nc"), [*common, "--smagorinsky", "large"], ConfigError, "--smagorinsky must be"),
    ]
    # an 8x8 grid: the solver's 2/3 rule keeps k <= 2, the Kolmogorov forcing is at k = 4
    w8 = spectral_filter(torch.as_tensor(train["vorticity"].values), 8, length=2 * math.pi).numpy()
    coarse8 = xr.Dataset({"vorticity": (("sample", "time", "y", "x"), w8)}, coords={"time": train["time"].values},
                         attrs=train.attrs)
    cases.append((_write(coarse8, tmp_path / "grid8.nc"), common, SolverError, "forcing at wavenumber 4 is not resolved"))
    for path, argv, error, match in cases:
        with pytest.raises(error, match=match) as info:
            _run("closure-train", "--data", path, *argv)
        _one_line(info)
        assert isinstance(info.value, SciMLError)
    assert not (tmp_path / "run").exists()  # nothing written by a refused command
    with pytest.raises(ConfigError, match="trained on a 16x16 grid") as info:  # a run scored on another grid
        refine = spectral_filter(torch.as_tensor(train["vorticity"].values), 8, length=2 * math.pi)
        other = xr.Dataset({"vorticity": (("sample", "time", "y", "x"), refine.numpy())},
                           coords={"time": train["time"].values}, attrs={**train.attrs, "forcing_wavenumber": 2})
        _run("closure-eval", str(files / "learned"), "--data", _write(other, tmp_path / "other.nc"), "--out",
             str(tmp_path / "r"))
    _one_line(info)
    with pytest.raises(DataError, match="not empty") as info:
        _run("closure-train", "--data", str(files / "train.nc"), "--out", str(files / "learned"))
    _one_line(info)
