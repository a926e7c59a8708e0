"""sciml.jepa.discovery: estimates with intervals from files, save/load, resampling, bad input, figures, the CLI."""

import argparse
import math
import warnings

import numpy as np
import pytest
import torch
import xarray as xr

from sciml.data import write
from sciml.errors import DataError, SciMLError
from sciml.jepa import EncoderConfig, JEPAModel, discover, fit_probe, load, save
from sciml.jepa import _cli
from sciml.jepa.discovery import plot_embeddings, plot_estimates, plot_label_efficiency
from sciml.jepa.objectives import spec_of


def heat(n_samples=40, points=64, frames=21, spacing=0.05, seed=0):
    """Exact solutions of u_t = nu u_xx on [0, 1): three modes decaying as exp(-nu (2 pi k)^2 t)."""
    rng = np.random.default_rng(seed)
    nu = np.exp(rng.uniform(np.log(1e-3), np.log(1e-2), n_samples))
    a, phase = rng.normal(size=(n_samples, 3)), rng.uniform(0, 2 * np.pi, (n_samples, 3))
    x, t = np.arange(points) / points, spacing * np.arange(frames)
    k = np.arange(1, 4)
    u = np.einsum("sk,skx,stk->stx", a, np.sin(2 * np.pi * k[None, :, None] * x[None, None] + phase[..., None]),
                  np.exp(-nu[:, None, None] * (2 * np.pi * k) ** 2 * t[None, :, None]))
    return xr.Dataset({"u": (("sample", "time", "x"), u, {"units": "1", "long_name": "temperature"})},
                      coords={"sample": np.arange(n_samples), "time": t, "x": ("x", x, {"periodic": "true"}),
                              "viscosity": ("sample", nu, {"long_name": "diffusivity", "units": "1"})})


@pytest.fixture(scope="module")
def coefficient_model():
    ds = heat()
    torch.manual_seed(0)
    spec = spec_of(ds, "u", size_t=8, size_x=16)
    network = JEPAModel(EncoderConfig(widths=(4, 8), groups=2, embedding_dim=8, projector_dim=16), spec=spec,
                        scale=float(ds.u.std()))
    return fit_probe(network.eval(), ds, level=0.9, seed=0), ds


def test_discover_reads_files_keeps_coordinates_and_round_trips(tmp_path, coefficient_model):
    model, _ = coefficient_model
    assert model.calibration == 10  # max(10, 25% of 40)
    test = heat(16, seed=1)
    write(test, tmp_path / "test.nc")
    found = discover(model, tmp_path / "test.nc")
    assert set(found.data_vars) == {"viscosity_estimate", "viscosity_lower", "viscosity_upper"}
    assert np.array_equal(found["viscosity"].values, test["viscosity"].values)  # the truth kept as coordinate
    est, lo, hi = (found[f"viscosity_{k}"].values for k in ("estimate", "lower", "upper"))
    width = float(model.half_width[0])
    assert np.allclose(hi / est, math.exp(width)) and np.allclose(est / lo, math.exp(width))
    assert found.attrs["level"] == 0.9 and found["viscosity_estimate"].attrs["units"] == "1"
    save(model, tmp_path / "model")
    again = discover(tmp_path / "model", test)  # load(weights_only=True) + manifest
    for name in found.data_vars:
        assert np.allclose(again[name].values, found[name].values, rtol=1e-12, atol=0), name
    assert load(tmp_path / "model").names == ["viscosity"]
    with pytest.raises(DataError, match="not a saved coefficient model"):
        load(tmp_path)


def test_another_resolution_or_denser_frames_are_brought_onto_the_training_grid(coefficient_model):
    model, _ = coefficient_model
    base = discover(model, heat(16, seed=1))["viscosity_estimate"].values
    fine = discover(model, heat(16, points=128, seed=1))["viscosity_estimate"].values  # band-limited: exact resample
    dense = discover(model, heat(16, frames=41, spacing=0.025, seed=1))["viscosity_estimate"].values  # every 2nd frame
    assert np.allclose(fine, base, rtol=1e-4) and np.allclose(dense, base, rtol=1e-5)


def test_bad_input_gives_one_line(coefficient_model):
    model, _ = coefficient_model
    test = heat(8, seed=2)
    nan = test.copy(deep=True)
    nan["u"][3, 4, 5] = np.nan
    cases = {
        "shorter than the encoder's 8-frame crop": test.isel(time=slice(0, 5)),
        "trained on 'u', which the data lack": test.rename(u="w"),
        "another spatial domain": test.assign_coords(x=("x", 2 * test["x"].values, test["x"].attrs)),
        "NaN": nan,
        "frames 0.03 apart": test.assign_coords(time=0.03 * np.arange(test.sizes["time"])),
        "narrower than the encoder's 16-point crop": heat(8, points=8, seed=2),
    }
    for message, ds in cases.items():
        with pytest.raises(DataError, match=message) as err:
            discover(model, ds)
        assert "\n" not in str(err.value)


def test_the_figures_label_their_axes_and_colorbar(coefficient_model):
    model, ds = coefficient_model
    found = discover(model, ds)
    fig = plot_estimates(found)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and ax.get_xlabel() == "true viscosity [1]"
    fig = plot_embeddings(np.random.default_rng(0).normal(size=(40, 5)), ds["viscosity"].values, name="viscosity")
    assert fig.axes[1].get_ylabel() == "viscosity [1]" and "principal component 1" in fig.axes[0].get_xlabel()
    fig = plot_label_efficiency({"probe": {"budgets": [16, 64], "relative_error": [0.1, 0.05]}})
    assert fig.axes[0].get_ylabel() == "relative error of viscosity [%]"
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [10, 5])


def test_the_cli_pretrains_probes_and_discovers(tmp_path):
    parser = argparse.ArgumentParser(prog="sciml")
    _cli.add_parser(parser.add_subparsers(dest="command", required=True))
    data, test = tmp_path / "pool.nc", tmp_path / "test.nc"
    write(heat(40, seed=0), data)
    write(heat(16, seed=1), test)

    def sciml(*argv):
        args = parser.parse_args(["jepa", *map(str, argv)])
        _cli.run(args, "sciml jepa " + " ".join(map(str, argv)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a one-epoch encoder may be reported collapsed; not what is tested here
        sciml("pretrain", "--data", data, "--out", tmp_path / "enc", "--epochs", 1, "--batch-size", 8, "--size-t", 8,
              "--size-x", 16, "--no-progress")
    assert (tmp_path / "enc" / "encoder.pt").is_file() and (tmp_path / "enc" / "history.jsonl").is_file()
    sciml("probe", "--encoder", tmp_path / "enc", "--data", data, "--out", tmp_path / "probe", "--test", test,
          "--budgets", 16, 64)
    import json

    metrics = json.loads((tmp_path / "probe" / "metrics.json").read_text())
    assert 0 <= metrics["viscosity"]["coverage"] <= 1 and metrics["viscosity"]["label_efficiency"]["budgets"] == [16]
    assert (tmp_path / "probe" / "viscosity_pca.png").is_file()
    sciml("discover", "--model", tmp_path / "probe", "--data", test, "--out", tmp_path / "found.nc",
          "--figure", tmp_path / "found.png")
    found = xr.open_dataset(tmp_path / "found.nc")
    assert found.sizes["sample"] == 16 and (tmp_path / "found.png").is_file()
    assert found.attrs["command"].startswith("sciml jepa discover")
    unlabelled = tmp_path / "unlabelled.nc"
    xr.open_dataset(test).drop_vars("viscosity").to_netcdf(unlabelled)
    with pytest.raises(SciMLError, match="no 'viscosity' coordinate"):  # refused before anything is written
        sciml("discover", "--model", tmp_path / "probe", "--data", unlabelled, "--out", tmp_path / "u.nc",
              "--figure", tmp_path / "u.png")
    assert not (tmp_path / "u.nc").exists()
    with pytest.raises(SciMLError):
        sciml("discover", "--model", tmp_path / "enc", "--data", test, "--out", tmp_path / "x.nc")
    before = (tmp_path / "found.nc").read_bytes()
    with pytest.raises(SciMLError, match="exists"):  # no silent replacement of earlier results
        sciml("discover", "--model", tmp_path / "probe", "--data", test, "--out", tmp_path / "found.nc")
    assert (tmp_path / "found.nc").read_bytes() == before
    with pytest.raises(SciMLError, match="--overwrite to replace it or --resume"):
        sciml("pretrain", "--data", data, "--out", tmp_path / "enc", "--epochs", 1, "--no-progress")
    with pytest.raises(SciMLError, match="--overwrite to replace it"):
        sciml("probe", "--encoder", tmp_path / "enc", "--data", data, "--out", tmp_path / "probe")
    found.close()
    sciml("discover", "--model", tmp_path / "probe", "--data", test, "--out", tmp_path / "found.nc", "--overwrite")
