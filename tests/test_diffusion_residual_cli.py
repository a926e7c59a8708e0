"""``sciml diffusion train --conditional [--mean-run RUN]`` and ``superres`` with the conditioned / residual model,
through the group's own parser (sciml.diffusion._cli.add_parser / run)."""

import argparse

import numpy as np
import pytest
import torch
import xarray as xr

from sciml import ConfigError, Grid
from sciml.diffusion import CoarseConditionedDenoiser, GaussianRandomField, _cli
from sciml.spectral import spectral_resample

DATA = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_cli_trains_and_applies_a_residual_super_resolver(tmp_path):
    from sciml.surrogate import Surrogate, fit_surrogate
    from sciml.train import TrainConfig

    parser = argparse.ArgumentParser()
    _cli.add_parser(parser.add_subparsers(dest="command"))
    fields = DATA.sample(Grid.box(16, 16), 32, generator=torch.Generator().manual_seed(1)).view(32, 1, 16, 16)
    axis = np.arange(16) / 16
    attrs = {"units": "s-1", "long_name": "vorticity"}
    lifted = spectral_resample(spectral_resample(fields, (4, 4)), (16, 16))
    ds = xr.Dataset({"vorticity": (("sample", "y", "x"), fields[:, 0].numpy(), attrs),
                     "coarse": (("sample", "y", "x"), lifted[:, 0].numpy(), attrs)},
                    coords={"sample": np.arange(32), "y": axis, "x": axis})
    data = tmp_path / "fields.nc"
    ds[["vorticity"]].to_netcdf(data)
    mean, _ = fit_surrogate(ds, inputs=["coarse"], outputs=["vorticity"],
                            model_options={"n_modes": (4, 4), "hidden_channels": 4, "n_layers": 1},
                            config=TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False, seed=0))
    run_dir = tmp_path / "mean"
    mean.save(run_dir)
    model = tmp_path / "model"

    def run(*words):
        _cli.run(parser.parse_args(["diffusion", *words]), "sciml diffusion " + " ".join(words))

    common = ("--data", str(data), "--variable", "vorticity", "--epochs", "1", "--modes", "4", "--width", "4",
              "--layers", "1", "--batch-size", "16", "--no-progress")
    with pytest.raises(ConfigError, match="need --conditional"):
        run("train", *common, "--out", str(model), "--mean-run", str(run_dir))
    with pytest.raises(ConfigError, match="needs --coarse"):
        run("train", *common, "--out", str(model), "--conditional")
    with pytest.raises(ConfigError, match="no surrogate directory") as info:
        run("train", *common, "--out", str(model), "--conditional", "--coarse", "4", "--mean-run",
            str(tmp_path / "nowhere"))
    assert "\n" not in str(info.value)
    run("train", *common, "--out", str(model), "--conditional", "--coarse", "4", "--mean-run", str(run_dir))

    loaded, state = _cli.load_model(model)
    assert isinstance(loaded, CoarseConditionedDenoiser) and loaded.residual and loaded.coarse == (4, 4)
    assert state["kind"] == "coarse_conditioned" and state["mean_run"] == str(run_dir.resolve())
    reference = Surrogate.load(run_dir)
    coarse_fields = spectral_resample(fields[:3], (4, 4))
    # the condition is the mean surrogate's prediction from the interpolated coarse field
    assert torch.allclose(loaded.lift(coarse_fields, (16, 16)),
                          reference.predict_tensor(spectral_resample(coarse_fields, (16, 16))), atol=1e-5)
    # sigma_data is the residual's std about that mean (scales with mean_model), not the field's
    expected = CoarseConditionedDenoiser.scales(fields, 4, mean_model=reference)["sigma_data"]
    assert abs(loaded.sigma_data - expected) < 1e-5 * expected

    coarse = tmp_path / "coarse.nc"
    ds[["vorticity"]].isel(sample=slice(0, 2), x=slice(None, None, 4), y=slice(None, None, 4)).to_netcdf(coarse)
    fine = tmp_path / "fine.nc"
    run("superres", str(model), "--coarse", str(coarse), "--resolution", "32", "--members", "2", "--steps", "2",
        "--guidance", "--out", str(fine), "--truth", str(data), "--figure", str(tmp_path / "superres.png"))
    out = xr.load_dataset(fine)
    assert out["vorticity"].dims == ("sample", "member", "y", "x") and out["vorticity"].shape == (2, 2, 32, 32)
    assert "input channel" in out.attrs["conditioning"] and "guidance" in out.attrs["conditioning"]
    # --guidance: the members keep the coarse field's observed modes exactly (as the guidance lifts them)
    members = torch.from_numpy(out["vorticity"].values).flatten(0, 1)[:, None].float()
    low = spectral_resample(members, (4, 4))
    given = torch.from_numpy(xr.load_dataset(coarse)["vorticity"].values).float()[:, None].repeat_interleave(2, 0)
    assert torch.allclose(spectral_resample(low, (32, 32)), spectral_resample(given, (32, 32)), atol=1e-4)
    assert (tmp_path / "superres.png").stat().st_size > 10_000
    with pytest.raises(ConfigError, match="super_resolve"):
        run("sample", str(model), "--resolution", "32", "--out", str(tmp_path / "s.nc"))
