"""Forecasts streamed to zarr: the layout of sciml.data.write's stores, and the in-memory rollout through data.open."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from sciml import DataError, Grid, data
from sciml.forecast import _stream, forecast
from sciml.surrogate import NormalizedOperator, Surrogate

NU, DT = 0.01, 0.5  # diffusivity (m2 s-1, on a 1 m box) and the model's step (s)


class HeatPropagator(nn.Module):
    """The exact step of u_t = nu Laplacian(u) on the periodic unit box (each Fourier mode decays exactly)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, 1, y, x)
        n = x.shape[-1]
        k = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
        decay = torch.exp(-NU * (2 * torch.pi) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2) * DT)
        return torch.fft.ifft2(torch.fft.fft2(x.double()) * decay).real.to(x.dtype) * self.scale


def heat_surrogate() -> Surrogate:
    return Surrogate(module=NormalizedOperator(HeatPropagator(), 1, 1), inputs=["u"], outputs=["u"],
                     grid=Grid.box(16, 16), units={"u": "K"}, model="heat", model_options={}, lead_time=DT,
                     time_units="s", origin={"y": 0.0, "x": 0.0})


def init_dataset(n_samples=2) -> xr.Dataset:
    y, x = np.meshgrid(np.arange(16) / 16, np.arange(16) / 16, indexing="ij")
    values = np.stack([(s + 1) * np.cos(2 * np.pi * (x + 2 * y)) + 0.5 * np.sin(2 * np.pi * 3 * x)
                       for s in range(n_samples)])[:, None].astype(np.float32)  # (sample, time, y, x)
    coords = {d: xr.DataArray(np.arange(16) / 16, dims=d, attrs={"units": "m"}) for d in ("y", "x")}
    coords.update(sample=np.arange(n_samples), time=xr.DataArray([10.0], dims="time", attrs={"units": "s"}))
    return xr.Dataset({"u": (("sample", "time", "y", "x"), values, {"units": "K", "long_name": "temperature"})},
                      coords=coords, attrs={"title": "heat test", "levels": [1, 2]})


def _metadata(store):
    return json.loads((store / ".zmetadata").read_text())["metadata"]


def test_a_streamed_forecast_opens_through_data_open_as_the_in_memory_one(tmp_path):
    init = init_dataset()
    memory = forecast(heat_surrogate(), init, steps=3, progress=False)
    store = tmp_path / "f.zarr"
    forecast(heat_surrogate(), init, steps=3, out=store, progress=False)
    back = data.open(store)
    assert back.encoding["sciml_format"] == "zarr"
    # identical: values, dtypes, lead_time (timedelta-free float seconds here), valid_time, every attribute
    xr.testing.assert_identical(back.load(), memory.assign_attrs(Conventions="CF-1.10"))
    # the exact propagator: mode (1, 2) of sample 1 after 3 steps, computed by hand
    decay = np.exp(-NU * (2 * np.pi) ** 2 * (1 + 4) * DT * 3)
    y, x = np.meshgrid(np.arange(16) / 16, np.arange(16) / 16, indexing="ij")
    expected = 2 * np.cos(2 * np.pi * (x + 2 * y)) * decay + 0.5 * np.sin(2 * np.pi * 3 * x) * np.exp(
        -NU * (2 * np.pi) ** 2 * 9 * DT * 3)
    np.testing.assert_allclose(back["u"].values[1, 0, 2], expected, atol=2e-6)


def test_the_stream_has_the_layout_of_data_write(tmp_path):
    init = init_dataset()
    store = tmp_path / "f.zarr"
    streamed = forecast(heat_surrogate(), init, steps=3, out=store, progress=False)
    meta = _metadata(store)
    written = data.write(data.open(store).load(), tmp_path / "w.zarr")
    again = _metadata(written)
    for key in ("u/.zarray", "u/.zattrs", "lead_time/.zattrs", "valid_time/.zattrs", ".zattrs"):
        assert {k: v for k, v in meta[key].items() if k != "fill_value"} == \
               {k: v for k, v in again[key].items() if k != "fill_value"}, key
    assert meta["u/.zarray"]["chunks"] == [1, 1, 1, 16, 16]  # (sample, time, lead_time, y, x): whole frames
    assert meta["u/.zarray"]["compressor"]["id"] == "blosc" and meta["u/.zarray"]["compressor"]["cname"] == "zstd"
    assert meta[".zgroup"]["zarr_format"] == 2 and "pickle" not in (store / ".zmetadata").read_text()
    assert meta[".zattrs"]["Conventions"] == "CF-1.10" and meta["u/.zattrs"]["units"] == "K"
    assert streamed["u"].chunks == ((1, 1), (1,), (1, 1, 1), (16,), (16,))  # the result reads the store lazily


def test_an_ensemble_stream_is_chunked_one_member_per_frame(tmp_path):
    def perturb(state, *, grid, generator):
        return state + 0.01 * torch.randn(state.shape, generator=generator, dtype=state.dtype)

    init = init_dataset(n_samples=1)
    memory = forecast(heat_surrogate(), init, steps=2, members=3, perturbation=perturb, seed=1, progress=False)
    store = tmp_path / "ens.zarr"
    forecast(heat_surrogate(), init, steps=2, members=3, perturbation=perturb, seed=1, out=store, progress=False)
    assert _metadata(store)["u/.zarray"]["chunks"] == [1, 1, 1, 1, 16, 16]  # (sample, time, lead, member, y, x)
    xr.testing.assert_identical(data.open(store).load(), memory.assign_attrs(Conventions="CF-1.10"))


def test_each_step_reaches_the_disk_before_the_next_is_computed(tmp_path, monkeypatch):
    seen = []
    write = _stream.StreamWriter.write

    def spy(self, step, values):
        write(self, step, values)
        staging = next(tmp_path.glob(".f.zarr.*.partial"))  # the unfinished store, beside the target
        seen.append(len(list((staging / "u").glob("*.*.*.0.0"))))  # frames on disk so far

    monkeypatch.setattr(_stream.StreamWriter, "write", spy)
    forecast(heat_surrogate(), init_dataset(), steps=4, out=tmp_path / "f.zarr", progress=False)
    assert seen == [2, 4, 6, 8]  # two samples' frames per step: written as they come, not held to the end


def test_a_stream_refuses_attributes_a_cf_store_cannot_hold_before_any_step(tmp_path):
    init = init_dataset().assign_attrs(converged=True)
    with pytest.raises(DataError, match=r"attribute 'converged' of the dataset is a bool, which a CF zarr store"):
        forecast(heat_surrogate(), init, steps=2, out=tmp_path / "f.zarr", progress=False)
    assert list(tmp_path.iterdir()) == []
