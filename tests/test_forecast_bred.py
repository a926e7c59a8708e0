"""Bred vectors: the model's fastest-growing direction, at the seed's amplitude, through forecast()."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from sciml import ConfigError, Grid
from sciml.forecast import BredVectors, GaussianPerturbation, forecast
from sciml.surrogate import NormalizedOperator, Surrogate

GROWTH, DAMPING = 1.5, 0.8  # the factor of Fourier mode (ky, kx) = (0, +-1) per step, and of every other mode


class GrowingMode(nn.Module):
    """A linear step whose only growing direction is the x-wavenumber-1 mode: its leading eigenvector."""

    def __init__(self) -> None:
        super().__init__()
        self.one = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, 1, y, x)
        n = x.shape[-1]
        k = torch.fft.fftfreq(n, 1.0 / n)
        factor = torch.full((n, n), DAMPING, dtype=torch.complex128)
        factor[0, k.abs() == 1] = GROWTH
        return torch.fft.ifft2(torch.fft.fft2(x.double()) * factor).real.to(x.dtype) * self.one


def growing_surrogate() -> Surrogate:
    return Surrogate(module=NormalizedOperator(GrowingMode(), 1, 1), inputs=["u"], outputs=["u"],
                     grid=Grid.box(16, 16), units={"u": "K"}, model="growing", model_options={}, lead_time=1.0,
                     time_units="s", origin={"y": 0.0, "x": 0.0})


def leading_mode_fraction(field: torch.Tensor) -> torch.Tensor:
    """Share of each frame's variance in the (0, +-1) modes: (frames, 1, y, x) -> (frames,)."""
    power = torch.fft.fft2(field.double()).abs() ** 2
    power[..., 0, 0] = 0.0
    return power[..., 0, [1, -1]].sum((-1, -2)) / power.sum((-1, -2, -3))


def test_breeding_converges_to_the_leading_eigenvector_at_the_seeds_amplitude():
    grid = Grid.box(16, 16)
    y, x = np.meshgrid(np.arange(16) / 16, np.arange(16) / 16, indexing="ij")
    state = torch.tensor(np.sin(2 * np.pi * (2 * y + x)) + 0.3 * np.cos(2 * np.pi * 3 * y))[None, None].repeat(3, 1, 1, 1)
    model = GrowingMode().double()
    calls = []

    @torch.no_grad()
    def step(s, k):
        calls.append(k)
        return model(s)

    bred = BredVectors(scale=0.05, cycles=8, steps=2)(state, grid=grid, generator=torch.Generator().manual_seed(3), step=step)
    seed = GaussianPerturbation(scale=0.05)(state, grid=grid, generator=torch.Generator().manual_seed(3))
    assert calls == [k for k in range(16) for _ in range(2)]  # control and perturbed, step k from step k's input time
    assert float(leading_mode_fraction(seed).max()) < 0.7  # the random seed: a third or more outside that mode
    assert float(leading_mode_fraction(bred).min()) > 1 - 1e-6  # power iteration: (0.8/1.5)^32 of the rest is left
    rms = lambda f: f.double().pow(2).mean((-1, -2)).sqrt()  # noqa: E731 (equal weights on the box)
    torch.testing.assert_close(rms(bred), rms(seed), rtol=1e-10, atol=0)


def test_a_bred_ensemble_spreads_at_the_models_growth_rate():
    init = xr.Dataset({"u": (("sample", "y", "x"), np.random.default_rng(0).normal(size=(2, 16, 16)).astype(np.float32),
                             {"units": "K"})},
                      coords={d: xr.DataArray(np.arange(16) / 16, dims=d, attrs={"units": "m"}) for d in ("y", "x")})
    model = growing_surrogate()
    kwargs = dict(steps=3, members=4, seed=0, progress=False)
    bred = forecast(model, init, perturbation=BredVectors(scale=0.01, cycles=6), **kwargs)
    control = forecast(model, init, steps=3, progress=False)
    spread = ((bred["u"] - control["u"]) ** 2).mean(("sample", "member", "y", "x")).pipe(np.sqrt).values  # by lead
    np.testing.assert_allclose(spread[1:] / spread[:-1], GROWTH, rtol=1e-3)
    gaussian = forecast(model, init, perturbation=GaussianPerturbation(scale=0.01), **kwargs)
    grown = ((gaussian["u"] - control["u"]) ** 2).mean(("sample", "member", "y", "x")).pipe(np.sqrt).values
    assert grown[1] / grown[0] < 1.4  # a random perturbation is partly in damped modes
    again = forecast(model, init, perturbation=BredVectors(scale=0.01, cycles=6), **kwargs)
    np.testing.assert_array_equal(bred["u"].values, again["u"].values)


@pytest.mark.parametrize("options", [{"cycles": 0}, {"steps": 1.5}, {"scale": -0.1}])
def test_bad_breeding_options_are_one_line_errors(options):
    with pytest.raises(ConfigError):
        BredVectors(**options)
