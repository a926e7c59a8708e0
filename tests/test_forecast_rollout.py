"""Rollouts: exact against a known propagator, streamed to NetCDF/zarr, ensembles, static and forcing inputs."""

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch import nn

from sciml import ConfigError, DataError, Grid
from sciml.forecast import forecast
from sciml.surrogate import NormalizedOperator, Surrogate

NU, DT = 0.01, 0.5  # diffusivity (m2 s-1, on a 1 m box) and the model's step (s)


class HeatPropagator(nn.Module):
    """The exact step of u_t = nu Laplacian(u) on the periodic unit box: each Fourier mode times exp(-nu |2 pi k|^2 dt)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the surrogate has a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, 1, y, x)
        n = x.shape[-1]
        k = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
        k2 = (2 * torch.pi) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2)
        decay = torch.exp(-NU * k2 * DT)
        return torch.fft.ifft2(torch.fft.fft2(x.double()) * decay).real.to(x.dtype) * self.scale


def heat_surrogate(lead_time=DT, time_units="s") -> Surrogate:
    return Surrogate(module=NormalizedOperator(HeatPropagator(), 1, 1), inputs=["u"], outputs=["u"],
                     grid=Grid.box(16, 16), units={"u": "K"}, model="heat", model_options={}, lead_time=lead_time,
                     time_units=time_units, origin={"y": 0.0, "x": 0.0})


def box_dataset(values: np.ndarray, dims=("sample", "time", "y", "x"), *, times=None, name="u", units="K") -> xr.Dataset:
    n = values.shape[-1]
    coords = {d: xr.DataArray(np.arange(n) / n, dims=d, attrs={"units": "m"}) for d in ("y", "x")}
    if "sample" in dims:
        coords["sample"] = np.arange(values.shape[dims.index("sample")])
    if "time" in dims:
        coords["time"] = xr.DataArray(np.asarray(times if times is not None else np.arange(values.shape[dims.index("time")]) * 1.0),
                                      dims="time", attrs={"units": "s"})
    return xr.Dataset({name: (dims, values.astype(np.float32), {"units": units, "long_name": "temperature"})}, coords=coords)


def plane_waves(n: int) -> tuple[np.ndarray, callable]:
    """Two samples of sums of Fourier modes and their exact solution at time t."""
    y, x = np.meshgrid(np.arange(n) / n, np.arange(n) / n, indexing="ij")
    modes = [((1, 0), 1.0), ((2, 3), 0.5), ((0, 4), -0.3)]

    def field(t: float, sample: int) -> np.ndarray:
        return sum((sample + 1) * a * np.cos(2 * np.pi * (ky * y + kx * x)) * np.exp(-NU * (2 * np.pi) ** 2 * (ky ** 2 + kx ** 2) * t)
                   for (ky, kx), a in modes)

    return np.stack([field(0.0, s) for s in range(2)]), field


def test_rollout_is_the_exact_propagator_and_keeps_the_forecast_coordinates():
    init_values, exact = plane_waves(16)
    init = box_dataset(init_values[:, None], times=[10.0])
    out = forecast(heat_surrogate(), init, steps=5, progress=False)
    assert out["u"].dims == ("sample", "time", "lead_time", "y", "x")
    np.testing.assert_allclose(out["lead_time"].values, DT * np.arange(1, 6))
    np.testing.assert_allclose(out["valid_time"].values, 10.0 + DT * np.arange(1, 6)[None, :])
    assert out["valid_time"].dims == ("time", "lead_time") and out["time"].values.tolist() == [10.0]
    for step in range(5):
        for s in range(2):
            np.testing.assert_allclose(out["u"].values[s, 0, step], exact(DT * (step + 1), s), atol=2e-6)
    assert out["u"].attrs["units"] == "K" and out["u"].attrs["long_name"] == "temperature"
    assert "forecast by sciml" in out.attrs["history"]
    # the same rollout on a finer grid (any resolution of the training domain)
    fine_values, _ = plane_waves(32)
    fine = forecast(heat_surrogate(), box_dataset(fine_values[:, None], times=[10.0]), steps=2, progress=False)
    assert fine["u"].shape == (2, 1, 2, 32, 32)


def test_transposed_init_gives_the_same_forecast():
    init_values, _ = plane_waves(16)
    init = box_dataset(init_values[:, None], times=[0.0])
    ref = forecast(heat_surrogate(), init, steps=2, progress=False)
    flipped = forecast(heat_surrogate(), init.transpose("x", "time", "y", "sample"), steps=2, progress=False)
    xr.testing.assert_allclose(ref["u"], flipped["u"].transpose(*ref["u"].dims))


def test_calendar_time_horizon_in_whole_model_steps():
    init_values, _ = plane_waves(16)
    times = pd.date_range("2021-03-01", periods=2, freq="6h")
    init = box_dataset(np.stack([init_values[0]] * 2)[None], times=times).squeeze("sample", drop=True)
    model = heat_surrogate(lead_time=pd.Timedelta("6h"), time_units=None)
    out = forecast(model, init, horizon="1D", progress=False)
    assert out["u"].dims == ("time", "lead_time", "y", "x") and out.sizes["lead_time"] == 4
    assert out["valid_time"].values[1, -1] == np.datetime64("2021-03-02T06:00")
    assert out["lead_time"].values[-1] == np.timedelta64(24, "h")
    with pytest.raises(ConfigError, match="not a whole number of the model's steps of 6 h"):
        forecast(model, init, horizon="7h", progress=False)
    with pytest.raises(ConfigError, match="exactly one of steps"):
        forecast(model, init, steps=2, horizon="12h", progress=False)
    with pytest.raises(ConfigError, match="not the same kind of time"):
        forecast(model, init, horizon=12.0, progress=False)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_streamed_rollout_equals_the_in_memory_one_and_is_read_lazily(tmp_path, suffix):
    init_values, _ = plane_waves(16)
    init = box_dataset(init_values[:, None], times=[0.0])
    memory = forecast(heat_surrogate(), init, steps=6, progress=False)
    path = tmp_path / f"forecast{suffix}"
    streamed = forecast(heat_surrogate(), init, steps=6, out=path, progress=False)
    assert streamed["u"].chunks is not None  # dask-backed: read from the file, not held
    xr.testing.assert_identical(memory["u"].load().reset_coords(drop=True), streamed["u"].load().reset_coords(drop=True))
    np.testing.assert_array_equal(memory["valid_time"].values, streamed["valid_time"].values)
    assert streamed.attrs["Conventions"].startswith("CF-")
    with pytest.raises(DataError, match="exists"):
        forecast(heat_surrogate(), init, steps=1, out=path, progress=False)
    again = forecast(heat_surrogate(), init, steps=1, out=path, overwrite=True, progress=False)
    assert again.sizes["lead_time"] == 1
    with pytest.raises(ConfigError, match="NetCDF"):
        forecast(heat_surrogate(), init, steps=1, out=tmp_path / "forecast.txt", progress=False)


def test_an_interrupted_stream_leaves_no_file(tmp_path):
    init_values, _ = plane_waves(16)
    init = box_dataset(init_values[:, None], times=[0.0])
    calls = []

    def failing_forcing(valid):  # the model has no forcing: fail inside the writer instead
        raise AssertionError

    model = heat_surrogate()
    original = model.module.network.forward

    def forward(x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(x)

    model.module.network.forward = forward
    with pytest.raises(KeyboardInterrupt):
        forecast(model, init, steps=5, out=tmp_path / "f.nc", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_thousand_step_rollout_streams_and_stays_exact(tmp_path):
    values = np.ones((1, 1, 16, 16))
    values[0, 0] += np.cos(2 * np.pi * np.arange(16) / 16)[None, :]
    init = box_dataset(values, times=[0.0])
    out = forecast(heat_surrogate(), init, steps=1000, out=tmp_path / "long.nc", progress=False)
    assert out.sizes["lead_time"] == 1000
    last = out["u"].isel(lead_time=-1).values[0, 0]
    expected = 1 + np.cos(2 * np.pi * np.arange(16) / 16) * np.exp(-NU * (2 * np.pi) ** 2 * DT * 1000)
    np.testing.assert_allclose(last, np.broadcast_to(expected, (16, 16)), atol=1e-5)


class Additive(nn.Module):
    """u_next = u + scale * noise-free offset: members keep their initial differences exactly."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(offset))

    def forward(self, x):
        return x + self.offset


def additive_surrogate(offset=0.0) -> Surrogate:
    return Surrogate(module=NormalizedOperator(Additive(offset), 1, 1), inputs=["u"], outputs=["u"],
                     grid=Grid.box(16, 16), units={"u": "K"}, model="additive", model_options={}, lead_time=1.0,
                     time_units="s", origin={"y": 0.0, "x": 0.0})


def constant_perturbation(state, *, grid, generator):
    return torch.randn(state.shape[0], 1, 1, 1, generator=generator).expand_as(state).to(state.dtype)


def test_ensembles_from_perturbations_and_from_several_models():
    init = box_dataset(np.zeros((2, 1, 16, 16)), times=[0.0])
    out = forecast(additive_surrogate(), init, steps=3, members=4, perturbation=constant_perturbation, seed=7, progress=False)
    assert out["u"].dims == ("sample", "time", "lead_time", "member", "y", "x")
    members = out["u"].values[0, 0, -1, :, 0, 0]
    assert len(set(members.round(6))) == 4  # distinct members
    np.testing.assert_allclose(out["u"].values[:, :, 0], out["u"].values[:, :, -1], atol=1e-6)  # offset 0
    same = forecast(additive_surrogate(), init, steps=3, members=4, perturbation=constant_perturbation, seed=7, progress=False)
    xr.testing.assert_identical(out, same.assign_attrs(history=out.attrs["history"]))
    other = forecast(additive_surrogate(), init, steps=1, members=4, perturbation=constant_perturbation, seed=8, progress=False)
    assert not np.allclose(other["u"].values[0, 0, 0, :, 0, 0], members)
    # two models, two members each: members 0-1 from model 0, 2-3 from model 1
    pair = forecast([additive_surrogate(0.0), additive_surrogate(1.0)], init, steps=2, progress=False)
    assert pair["member_model"].values.tolist() == [0, 1]
    np.testing.assert_allclose(pair["u"].values[0, 0, -1, :, 0, 0], [0.0, 2.0])
    with pytest.raises(ConfigError, match="would be identical"):
        forecast(additive_surrogate(), init, steps=1, members=3, progress=False)
    with pytest.raises(ConfigError, match="perturbation returned shape"):
        forecast(additive_surrogate(), init, steps=1, members=2, progress=False,
                 perturbation=lambda state, grid, generator: state[:1])


class MaskedForcing(nn.Module):
    """u_next = mask * u + forcing: inputs (u, mask, forcing), output u."""

    def __init__(self) -> None:
        super().__init__()
        self.one = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.one * (x[:, 1:2] * x[:, :1] + x[:, 2:3])


def test_static_fields_are_held_and_forcings_are_read_at_each_steps_input_time():
    model = Surrogate(module=NormalizedOperator(MaskedForcing(), 3, 1), inputs=["u", "mask", "forcing"], outputs=["u"],
                      grid=Grid.box(16, 16), units={"u": "K", "mask": "1", "forcing": "K"}, model="masked",
                      model_options={}, lead_time=1.0, time_units="s", origin={"y": 0.0, "x": 0.0})
    init = box_dataset(np.ones((1, 1, 16, 16)), times=[0.0])
    mask = np.zeros((16, 16))
    mask[:, :8] = 1.0
    init["mask"] = (("y", "x"), mask, {"units": "1"})  # static: no time or sample dim
    forcing_times = np.arange(0.0, 6.0)
    forcings = box_dataset(np.broadcast_to(forcing_times[:, None, None], (6, 16, 16)).copy(), ("time", "y", "x"),
                           times=forcing_times, name="forcing")
    out = forecast(model, init, steps=3, forcings=forcings, progress=False)
    u = out["u"].values[0, 0, :, 0]  # (lead, x) at y = 0
    # masked half: u_k = u_{k-1} + t_{k-1} with t = 0, 1, 2 -> 1, 2, 4; the other half: u_k = t_{k-1} -> 0, 1, 2
    np.testing.assert_allclose(u[:, 0], [1.0, 2.0, 4.0])
    np.testing.assert_allclose(u[:, 15], [0.0, 1.0, 2.0])
    # a function of the valid times gives the same
    by_function = forecast(model, init, steps=3, progress=False, forcings=lambda t: forcings.sel(time=t))
    np.testing.assert_allclose(by_function["u"].values, out["u"].values)
    with pytest.raises(DataError, match="no forcings at time 2.0"):
        forecast(model, init, steps=4, forcings=forcings.isel(time=[0, 1, 3, 4]), progress=False)
    with pytest.raises(DataError, match=r"\['forcing'\] not found"):
        forecast(model, init, steps=1, progress=False)


def test_bad_inputs_are_one_line_errors():
    model = heat_surrogate()
    init_values, _ = plane_waves(16)
    good = box_dataset(init_values[:, None], times=[0.0])
    other_domain = good.assign_coords(x=good["x"] * 2, y=good["y"] * 2)
    with pytest.raises(DataError, match="domain"):
        forecast(model, other_domain, steps=1, progress=False)
    with pytest.raises(DataError, match=r"\['u'\] not found"):
        forecast(model, good.rename(u="temperature"), steps=1, progress=False)
    nan = good.copy(deep=True)
    nan["u"][1, 0, 3, 4] = np.nan
    with pytest.raises(DataError, match="'u' has NaN/Inf values"):
        forecast(model, nan, steps=1, progress=False)
    for steps in (0, 1.5, True):
        with pytest.raises(ConfigError, match="steps must be a positive integer"):
            forecast(model, good, steps=steps, progress=False)
    with pytest.raises(ConfigError, match="members must be"):
        forecast(model, good, steps=1, members=0, progress=False)
    field_map = Surrogate(module=model.module, inputs=["u"], outputs=["u"], grid=model.grid, units={}, model="heat",
                          model_options={})
    with pytest.raises(ConfigError, match="time-stepping surrogate"):
        forecast(field_map, good, steps=1, progress=False)


def test_gaussian_perturbation_is_a_fraction_of_each_variables_spread_and_the_same_function_on_every_grid():
    from sciml.forecast import GaussianPerturbation

    def state(n):  # (frames, channel, y, x): two variables of very different size
        x = np.arange(n) / n
        u = np.broadcast_to(np.cos(2 * np.pi * x)[None, :], (n, n))
        return torch.from_numpy(np.stack([u, 1000.0 + 50.0 * u])[None].repeat(64, axis=0)).float()

    perturb = GaussianPerturbation(scale=[0.1, 0.02])
    deltas = {n: perturb(state(n), grid=Grid.box(n, n), generator=torch.Generator().manual_seed(3)) for n in (16, 32)}
    # the cosine's std is the same on both grids, so the perturbations agree at the shared points
    np.testing.assert_allclose(deltas[32][..., ::2, ::2], deltas[16], rtol=1e-4, atol=1e-6)
    spread = deltas[32].transpose(0, 1).reshape(2, -1).std(dim=1)
    expected = torch.tensor([0.1 * np.sqrt(0.5), 0.02 * 50 * np.sqrt(0.5)])
    np.testing.assert_allclose(spread, expected, rtol=0.1)  # 64 x 32 x 32 points of smooth noise
    sphere = Grid.latlon(16, 32)
    delta = GaussianPerturbation()(torch.rand(2, 3, 16, 32), grid=sphere, generator=torch.Generator().manual_seed(0))
    assert delta.shape == (2, 3, 16, 32) and torch.isfinite(delta).all()
    with pytest.raises(ConfigError, match="2 values for 1 prognostic"):
        perturb(state(16)[:, :1], grid=Grid.box(16, 16), generator=torch.Generator())
    with pytest.raises(ConfigError, match="scale must be"):
        GaussianPerturbation(scale=-1.0)


def test_an_ensemble_of_perturbed_rollouts_spreads_and_is_reproducible():
    from sciml.forecast import GaussianPerturbation

    init_values, _ = plane_waves(16)
    init = box_dataset(init_values[:, None], times=[0.0])
    kwargs = dict(steps=3, members=8, perturbation=GaussianPerturbation(scale=0.05), seed=1, progress=False)
    out = forecast(heat_surrogate(), init, **kwargs)
    spread = out["u"].std("member")
    assert float(spread.min()) > 0
    # the heat equation damps the perturbation's fine scales: the spread shrinks with lead time
    by_lead = spread.mean(("sample", "time", "y", "x")).values
    assert by_lead[0] > by_lead[1] > by_lead[2]
    np.testing.assert_array_equal(out["u"].values, forecast(heat_surrogate(), init, **kwargs)["u"].values)
