"""xarray in and out (sciml.diffusion.api): sample and super_resolve keep coordinates and attributes; bad input is
a one-line error."""

import subprocess
import sys

import numpy as np
import pytest
import torch

xr = pytest.importorskip("xarray")

from sciml import ConfigError, DataError, Grid
from sciml.diffusion import (
    GaussianDenoiser,
    GaussianRandomField,
    sample,
    sample_tensor,
    super_resolve,
)
from sciml.spectral import spectral_resample

NOISE = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
DATA = GaussianRandomField(alpha=3.0, tau=3.0, band_limit=7)
MODEL = GaussianDenoiser(data=DATA, domain=Grid.box(16, 16), noise=NOISE)


def _coarse() -> xr.Dataset:
    """Coarse vorticity (time, sample, y, x) on 8 x 8 nodes of the unit box starting at 0.0625, with CF attributes."""
    fields = DATA.sample(Grid.box(16, 16), 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    coarse = spectral_resample(fields, (8, 8)).view(2, 3, 8, 8).numpy()
    axis = 0.0625 + np.arange(8) / 8
    return xr.Dataset(
        {"vorticity": (("time", "sample", "y", "x"), coarse, {"units": "s-1", "long_name": "vorticity"})},
        coords={"time": ("time", [10.0, 20.0], {"units": "s"}), "sample": [4, 7, 9],
                "y": ("y", axis, {"units": "m"}), "x": ("x", axis, {"units": "m"})},
        attrs={"title": "coarse run", "viscosity": 1e-3})


def test_sample_on_a_grid_is_the_tensor_sampler_with_coordinates_and_provenance():
    ds = sample(MODEL, Grid.box(32, 32), 3, steps=4, seed=5)
    assert list(ds.data_vars) == ["channel_0"] and ds["channel_0"].dims == ("sample", "y", "x")
    np.testing.assert_array_equal(ds["x"].values, np.arange(32) / 32)
    assert list(ds["sample"].values) == [0, 1, 2]
    assert ds.attrs["sampler"] == "heun" and ds.attrs["steps"] == 4 and ds.attrs["network_evaluations"] == 7
    tensor = sample_tensor(MODEL, Grid.box(32, 32), 3, steps=4, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(ds["channel_0"].values, tensor[:, 0].numpy())


def test_sample_on_a_template_copies_its_names_coordinates_and_attributes():
    coarse = _coarse()
    axis = 0.0625 + np.arange(16) / 16
    template = xr.Dataset({"vorticity": (("y", "x"), np.zeros((16, 16)), coarse["vorticity"].attrs)},
                          coords={"y": axis, "x": axis}, attrs=coarse.attrs)
    ds = sample(MODEL, template, 2, steps=3)
    assert list(ds.data_vars) == ["vorticity"] and ds["vorticity"].attrs["units"] == "s-1"
    assert ds.attrs["title"] == "coarse run" and ds.attrs["viscosity"] == 1e-3
    np.testing.assert_allclose(ds["x"].values, template["x"].values)


def test_super_resolve_keeps_coordinates_and_attributes_and_the_observation():
    coarse = _coarse()
    out = super_resolve(MODEL, coarse, Grid.box(32, 32), 4, steps=6, seed=1)
    v = out["vorticity"]
    assert v.dims == ("time", "sample", "member", "y", "x") and v.shape == (2, 3, 4, 32, 32)
    assert list(out["sample"].values) == [4, 7, 9] and list(out["time"].values) == [10.0, 20.0]
    assert out["time"].attrs["units"] == "s" and out["x"].attrs["units"] == "m"
    assert v.attrs == {"units": "s-1", "long_name": "vorticity"}
    assert out.attrs["title"] == "coarse run" and out.attrs["condition_grid"] == [8, 8]
    np.testing.assert_allclose(out["x"].values, 0.0625 + np.arange(32) / 32)  # the coarse grid's origin
    # every member reproduces its own coarse field's modes (|k| < 4), to float32 rounding
    low = spectral_resample(torch.from_numpy(v.values.astype(np.float64)), (8, 8))
    truth = torch.from_numpy(coarse["vorticity"].values)[:, :, None]
    assert float((low - truth).abs().max()) < 1e-5 * float(truth.abs().max())
    # a DataArray works the same and the members differ
    single = super_resolve(MODEL, coarse["vorticity"].isel(time=0), Grid.box(32, 32), 2, steps=3)
    assert single["vorticity"].dims == ("sample", "member", "y", "x")
    assert float(abs(single["vorticity"].diff("member")).max()) > 0


def test_bad_inputs_are_one_line_errors():
    coarse = _coarse()
    nan = coarse.copy(deep=True)
    nan["vorticity"][0, 0, 2, 2] = np.nan
    wide = coarse.assign_coords(x=coarse["x"] * 2, y=coarse["y"] * 2)  # a 2 x 2 box
    cases = [
        (lambda: super_resolve(MODEL, wide, Grid.box(32, 32), 2), ConfigError, "domains differ"),
        (lambda: super_resolve(MODEL, coarse, Grid.box(4, 4), 2), ConfigError, "finer than"),
        (lambda: super_resolve(MODEL, coarse, Grid.box(8, 8), 2), ConfigError, "finer than"),
        (lambda: super_resolve(MODEL, nan, Grid.box(32, 32), 2), DataError, "NaN"),
        (lambda: super_resolve(MODEL, coarse, Grid.box(32, 32), 2, steps=0), ConfigError, "budget"),
        (lambda: sample(MODEL, Grid.box(32, 32), 2, steps=0), ConfigError, "budget"),
        (lambda: super_resolve(MODEL, coarse, Grid.box(32, 32, lengths=2.0), 2), ConfigError, "domains differ"),
        (lambda: sample(MODEL, wide, 2), ConfigError, "domains differ"),
        (lambda: super_resolve(MODEL, coarse.assign(other=coarse["vorticity"]), Grid.box(32, 32), 2), DataError,
         "1 channel"),
        (lambda: sample(MODEL, Grid.box(32, 32), 2, seed=-1), ConfigError, "seed"),
        (lambda: super_resolve(MODEL, coarse.drop_vars("x"), Grid.box(32, 32), 2), DataError, "coordinate"),
    ]
    for make, error, words in cases:
        with pytest.raises(error, match=words) as info:
            make()
        assert "\n" not in str(info.value)


def test_importing_the_xarray_verbs_does_not_import_xarray():
    code = "import sys, sciml.diffusion.api, sciml.diffusion.metrics, sciml.diffusion.conditional; print('xarray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == [
        "False"]


def test_the_cli_trains_samples_and_super_resolves_with_figures(tmp_path):
    import argparse

    from sciml.diffusion import _cli

    parser = argparse.ArgumentParser()
    _cli.add_parser(parser.add_subparsers(dest="command"))
    fields = DATA.sample(Grid.box(16, 16), 48, generator=torch.Generator().manual_seed(1))
    axis = np.arange(16) / 16
    ds = xr.Dataset({"vorticity": (("sample", "y", "x"), fields.numpy(), {"units": "s-1", "long_name": "vorticity"})},
                    coords={"sample": np.arange(48), "y": axis, "x": axis})
    data = tmp_path / "fields.nc"
    ds.to_netcdf(data)
    model = tmp_path / "model"

    def run(*words):
        _cli.run(parser.parse_args(["diffusion", *words]), "sciml diffusion " + " ".join(words))

    run("train", "--data", str(data), "--variable", "vorticity", "--out", str(model), "--epochs", "1", "--modes", "4",
        "--width", "4", "--layers", "1", "--batch-size", "16", "--no-progress")
    assert (model / "model.pt").is_file() and (model / "history.json").is_file()
    samples = tmp_path / "samples.nc"
    run("sample", str(model), "--resolution", "32", "--n", "3", "--steps", "2", "--out", str(samples), "--data",
        str(data), "--figure", str(tmp_path / "samples.png"))
    out = xr.load_dataset(samples)
    assert out["vorticity"].shape == (3, 32, 32) and out["vorticity"].attrs["units"] == "s-1"
    assert (tmp_path / "samples.png").stat().st_size > 10_000
    coarse = tmp_path / "coarse.nc"
    ds.isel(sample=slice(0, 2), x=slice(None, None, 2), y=slice(None, None, 2)).to_netcdf(coarse)
    fine = tmp_path / "fine.nc"
    run("superres", str(model), "--coarse", str(coarse), "--resolution", "32", "--members", "2", "--steps", "2",
        "--out", str(fine), "--truth", str(data), "--figure", str(tmp_path / "superres.png"))
    out = xr.load_dataset(fine)
    assert out["vorticity"].dims == ("sample", "member", "y", "x") and out.attrs["history"].startswith("sciml diffusion")
    assert (tmp_path / "superres.png").stat().st_size > 10_000
    with pytest.raises(ConfigError, match="exists") as info:
        run("sample", str(model), "--resolution", "32", "--out", str(samples))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="no model.pt"):
        run("sample", str(tmp_path), "--resolution", "32", "--out", str(tmp_path / "x.nc"))


def test_the_cli_default_is_the_benchmarked_recipe_and_bad_combinations_are_one_line(tmp_path):
    import argparse

    from sciml.diffusion import SpectrumMatchedField, _cli

    parser = argparse.ArgumentParser()
    _cli.add_parser(parser.add_subparsers(dest="command"))
    grid = Grid.box(16, 16)
    standing = torch.sin(2 * torch.pi * torch.arange(16) / 16)[None, :] * torch.ones(16, 1)  # (y, x): a forced pattern
    fields = 2.0 * standing + DATA.sample(grid, 32, generator=torch.Generator().manual_seed(2))
    axis = np.arange(16) / 16
    data = tmp_path / "fields.nc"
    xr.Dataset({"w": (("sample", "y", "x"), fields.numpy(), {"units": "s-1"})},
               coords={"sample": np.arange(32), "y": axis, "x": axis}).to_netcdf(data)

    def run(*words):
        _cli.run(parser.parse_args(["diffusion", *words]), "sciml diffusion " + " ".join(words))

    common = ["--data", str(data), "--variable", "w", "--epochs", "1", "--modes", "4", "--width", "4", "--layers", "1",
              "--no-progress"]
    run("train", *common, "--out", str(tmp_path / "m"))
    model, _ = _cli.load_model(tmp_path / "m")
    # unconditional default: about the data's mean field, spectrum-matched noise reaching 4x finer grids, coloured
    # output, the centred fields' scale
    assert isinstance(model.noise, SpectrumMatchedField) and model.noise.band_limit == 31 and model.spectral_output
    torch.testing.assert_close(model.mean_field, fields.mean(0, keepdim=True), atol=1e-6, rtol=0)
    assert abs(model.sigma_data - float((fields - fields.mean(0)).std())) < 1e-6
    run("train", *common, "--out", str(tmp_path / "g"), "--noise", "grf", "--no-centre")
    plain, _ = _cli.load_model(tmp_path / "g")
    assert isinstance(plain.noise, GaussianRandomField) and not plain.spectral_output and plain.mean_field is None
    for extra, message in ((["--noise", "grf", "--resolved", "4"], "--resolved is an option of --noise matched"),
                           (["--conditional", "--coarse", "8", "--noise", "matched"], "unconditional models"),
                           (["--conditional", "--coarse", "8", "--no-centre"], "unconditional models")):
        with pytest.raises(ConfigError, match=message) as info:
            run("train", *common, "--out", str(tmp_path / "bad"), *extra)
        assert "\n" not in str(info.value)


def test_the_spectrum_axis_names_squared_units_or_says_dimensionless():
    from sciml.diffusion._cli import _energy_label

    assert _energy_label({"units": "s-1"}) == "energy [(s-1)$^2$]"
    assert _energy_label({"units": "1"}) == _energy_label({}) == "energy (dimensionless)"
