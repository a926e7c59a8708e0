"""The spectral term of the rollout loss: log ratio of power per spherical-harmonic degree (or Fourier shell)."""

import functools
import math

import pytest
import torch

from sciml import ConfigError, DataError, Grid
from sciml.forecast import RolloutTask
from sciml.forecast.training import spectral_loss
from sciml.train import relative_l2_loss


def _sphere_fields(coeffs: torch.Tensor, grid: Grid) -> torch.Tensor:
    import torch_harmonics as th

    lmax = coeffs.shape[-2]
    return th.InverseRealSHT(*grid.shape, lmax=lmax, mmax=lmax, grid=grid.nodes, norm="ortho").double()(coeffs)


def _random_coeffs(*lead: int, lmax: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    c = torch.complex(torch.randn(*lead, lmax, lmax, generator=g, dtype=torch.float64),
                      torch.randn(*lead, lmax, lmax, generator=g, dtype=torch.float64))
    c = torch.tril(c)  # a_lm with m <= l only
    c[..., 0] = c[..., 0].real  # m = 0 coefficients of a real field are real
    return c


@pytest.mark.parametrize("nodes", ["equiangular", "legendre-gauss"])
def test_spectral_loss_is_zero_for_equal_spectra_and_ln4_squared_over_K_for_one_degree_with_4x_power(nodes):
    grid = Grid.latlon(32, 64, nodes=nodes)
    lmax = 16  # the degrees both node sets resolve exactly on 32 x 64 (sciml.spectral.sphere_degrees >= 16)
    coeffs = _random_coeffs(2, 3, lmax=lmax)  # (batch, channel, l, m)
    true = _sphere_fields(coeffs, grid)
    assert float(spectral_loss(true, true.clone(), grid=grid)) == 0.0
    # a rotation of the field about the axis (a shift in longitude) keeps every degree's power: loss ~ 0
    assert float(spectral_loss(torch.roll(true, 7, dims=-1), true, grid=grid)) < 1e-16
    boosted = coeffs.clone()
    boosted[..., 5, :] *= 2  # degree 5: 4 times the power, in every batch entry and channel
    pred = _sphere_fields(boosted, grid)
    degrees = (32 if nodes == "legendre-gauss" else 16) - 1  # l = 1 .. L - 1
    # the fields have no power above l = 15, so on the Gauss grid degrees 16..31 are 0 / 0 -> ratio 1 (the floor)
    expected = math.log(4.0) ** 2 / degrees
    assert float(spectral_loss(pred, true, grid=grid)) == pytest.approx(expected, rel=1e-4)
    # the log ratio is symmetric: too little power counts as much as too much
    assert float(spectral_loss(true, pred, grid=grid)) == pytest.approx(expected, rel=1e-4)


def test_spectral_loss_on_a_periodic_box_counts_the_shells_and_passes_gradients():
    grid = Grid.box(32, 32)  # [0, 2 pi)^2: shells of |k| in integers, 1 .. 15 kept
    y, x = torch.meshgrid(*[torch.arange(32, dtype=torch.float64) * 2 * math.pi / 32] * 2, indexing="ij")
    true = (torch.sin(3 * x) + 0.5 * torch.cos(5 * y))[None, None]  # (1, 1, y, x)
    amplitude = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    pred = (amplitude * torch.sin(3 * x) + 0.5 * torch.cos(5 * y))[None, None]
    loss = spectral_loss(pred, true, grid=grid)
    # shell 3 has 4x the power; the 13 shells without power in either are 0 / 0 -> 1 (the floor)
    assert float(loss.detach()) == pytest.approx(math.log(4.0) ** 2 / 15, rel=1e-5)
    loss.backward()
    # d/da of (ln a^2)^2 / 15 = 4 ln(a^2) / (15 a) at a = 2
    assert float(amplitude.grad) == pytest.approx(4 * math.log(4.0) / 30, rel=1e-4)
    with pytest.raises(DataError, match="differ in shape"):
        spectral_loss(pred, true[..., :16], grid=grid)
    with pytest.raises(ConfigError, match="periodic 'box'"):
        spectral_loss(true, true, grid=Grid.bounded(32, 32))


def test_rollout_task_adds_the_weighted_spectral_term_of_every_lead_and_refuses_a_bad_weight():
    grid = Grid.latlon(32, 64)
    scale = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
    module = torch.nn.Module()
    module.scale = scale

    def model(x):
        return scale * x

    x0 = _sphere_fields(_random_coeffs(2, 1, 3, lmax=16, seed=1), grid)  # (batch, history 1, channel, lat, lon)
    future = torch.stack([x0[:, 0], x0[:, 0]], dim=1)  # persistence over two leads
    plain = RolloutTask(module, grid=grid, steps=2, loss="rel_l2").loss(model, (x0, future))
    task = RolloutTask(module, grid=grid, steps=2, loss="rel_l2", spectral_weight=0.1)
    total = task.loss(model, (x0, future))
    # a field scaled by s has power s^2 at every degree: spectral term (ln s^2)^2 at each lead (s = 0.5, 0.25)
    spectral = (math.log(0.25) ** 2 + math.log(0.0625) ** 2) / 2
    assert float(plain.detach()) == pytest.approx(0.625, rel=1e-9)
    assert float(total.detach()) == pytest.approx(0.625 + 0.1 * spectral, rel=1e-4)  # eps floor: ~1e-5
    total.backward()
    # d/ds of the mean over the leads of |s-1| + |s^2-1| + 0.1 (ln s^2)^2 + 0.1 (ln s^4)^2 at s = 0.5
    s = 0.5
    grad = (-1 - 2 * s) / 2 + 0.1 * (4 * math.log(s**2) / s + 8 * math.log(s**4) / s) / 2
    assert float(scale.grad) == pytest.approx(grad, rel=1e-4)
    for bad in (-1.0, math.nan, True, "0.1"):
        with pytest.raises(ConfigError, match="spectral_weight must be"):
            RolloutTask(module, grid=grid, steps=2, loss="rel_l2", spectral_weight=bad)
    with pytest.raises(ConfigError, match="spectral_weight needs"):
        RolloutTask(module, grid=Grid.bounded(8, 8), steps=2, loss="rel_l2", spectral_weight=0.1)


def test_default_rollout_loss_is_unchanged_by_the_option():
    grid = Grid.box(8, 8)
    module = torch.nn.Module()
    module.scale = torch.nn.Parameter(torch.tensor(0.7))
    x0 = torch.randn(3, 1, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    future = torch.stack([x0[:, 0], 2 * x0[:, 0]], dim=1)
    default = RolloutTask(module, grid=grid, steps=2, loss="rel_l2").loss(lambda x: module.scale * x, (x0, future))
    per_step = functools.partial(relative_l2_loss, grid=grid, per_channel=True)
    x1 = module.scale * x0[:, 0]
    manual = (per_step(x1, future[:, 0]) + per_step(module.scale * x1, future[:, 1])) / 2
    assert float(default) == pytest.approx(float(manual), rel=1e-6)
