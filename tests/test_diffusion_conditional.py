"""Conditional generation (sciml.diffusion.conditional): super-resolution and sparse observations by data-consistency
guidance, checked against the exact Gaussian posterior (GaussianDenoiser: Gaussian data, known posterior)."""

import math

import pytest
import torch

from sciml import ConfigError, DataError, Grid
from sciml.diffusion import (
    EDMDenoiser,
    FieldNetConfig,
    GaussianDenoiser,
    GaussianRandomField,
    LowModes,
    NeuralVelocityField,
    PointValues,
    conditional_sample,
    noise_covariance,
    sample_tensor,
)
from sciml.spectral import spectral_resample

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


GRID = Grid.box(16, 16)
NOISE = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)


def _mask(count: int, seed: int = 1) -> torch.Tensor:
    mask = torch.zeros(GRID.shape, dtype=torch.bool)
    mask.view(-1)[torch.randperm(mask.numel(), generator=_generator(seed))[:count]] = True
    return mask


def test_the_noise_covariance_kernel_is_the_trace_formula_and_the_empirical_covariance():
    kernel = noise_covariance(NOISE, GRID)
    assert math.isclose(float(kernel[0, 0]), NOISE.pointwise_variance(GRID), rel_tol=1e-12)  # c(0) = sum lambda / |D|
    fields = NOISE.sample(GRID, 4000, generator=_generator(0), dtype=F64)
    empirical = (fields * fields.roll(shifts=(2, 5), dims=(1, 2))).mean()  # E xi(x) xi(x - r), r = (2, 5)
    assert abs(float(empirical - kernel[2, 5])) < 0.05 * float(kernel[0, 0])  # 4000 x 256 correlated products


def test_point_guidance_samples_the_kriging_posterior_of_gaussian_data():
    # Data ~ N(0, 9 C) (the noise's covariance times 9): the guided exact denoiser is the exact conditional denoiser
    # (module doc), so the samples' mean and variance are the kriging ones. 8 of 256 points observed (3%). 1024
    # members: the mean's standard error is 3% of the posterior sd, the variance's 4.4%. Measured: max |mean - kriging|
    # 0.028 prior sd, variance ratio 0.93..1.15 per point, 1.046 on average (Heun with 32 steps).
    data = GaussianRandomField(alpha=2.0, tau=3.0, sigma=3.0 * 3.0 ** (2.0 - 1.0), band_limit=7)
    model = GaussianDenoiser(data=data, domain=GRID, noise=NOISE)
    truth = data.sample(GRID, 1, generator=_generator(0), dtype=F64)[:, None]
    mask = _mask(8)
    condition = PointValues.from_fields(truth, mask)
    x = conditional_sample(model, GRID, condition, 1024, steps=32, generator=_generator(2), dtype=F64)
    assert x.shape == (1, 1024, 1, 16, 16)
    assert float((x[0, :, 0][:, mask] - truth[0, 0][mask]).abs().max()) < 1e-8  # the observation, exactly

    kernel = noise_covariance(NOISE, GRID)
    points = torch.arange(256)
    observed = mask.flatten().nonzero().flatten()
    cross = kernel[(points[:, None] // 16 - observed[None] // 16) % 16, (points[:, None] % 16 - observed[None] % 16) % 16]
    inner = cross[observed]
    weights = torch.linalg.solve(inner, cross.T).T  # (points, observed)
    mean = (weights @ truth[0, 0][mask]).view(16, 16)
    variance = (9.0 * (kernel[0, 0] - (weights * cross).sum(1))).view(16, 16)
    prior_sd = math.sqrt(9.0 * float(kernel[0, 0]))
    assert float((x[0, :, 0].mean(0) - mean).abs().max()) < 0.1 * prior_sd
    ratio = (x[0, :, 0].var(0) / variance)[~mask]
    assert 0.8 < float(ratio.min()) and float(ratio.max()) < 1.3, (float(ratio.min()), float(ratio.max()))
    assert 0.97 < float(ratio.mean()) < 1.12
    # far from every observation the posterior is nearly the prior; next to them it is much tighter
    assert float(variance[~mask].min()) < 0.5 * prior_sd**2


@pytest.mark.parametrize("sampler", ["heun", "euler_maruyama"])
def test_low_mode_guidance_keeps_the_observation_and_draws_the_high_modes_from_the_prior(sampler):
    # Gaussian data of another spectrum than the noise's: Fourier modes are independent, so given the modes |k| < 4
    # (an 8 x 8 coarse field) the others keep their prior: mean 0, variance a_k. With the exact (per-mode) denoiser the
    # unobserved modes evolve exactly as in the unconditional sampler fed the same noise, so they equal its samples';
    # against the prior the band ratios carry the samplers' discretisation error on this spectrum: measured 1.050,
    # 1.069, 1.075 (heun, 32 steps) and 1.047, 1.056, 1.060 (euler_maruyama, 256 steps; 1.10-1.13 with 128), with 256
    # fields (~3% standard error per band).
    grid = Grid.box(32, 32)
    data = GaussianRandomField(alpha=3.0, tau=3.0, band_limit=15)
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=15)
    model = GaussianDenoiser(data=data, domain=grid, noise=noise)
    truth = data.sample(grid, 2, generator=_generator(3), dtype=F64)[:, None]
    coarse = spectral_resample(truth, (8, 8))
    steps = 32 if sampler == "heun" else 256
    x = conditional_sample(model, grid, LowModes(coarse), 128, sampler=sampler, steps=steps, generator=_generator(4),
                           dtype=F64)
    assert x.shape == (2, 128, 1, 32, 32)
    assert float((spectral_resample(x, (8, 8)) - coarse[:, None]).abs().max()) < 1e-9

    coefficients = torch.fft.fft2(x.flatten(0, 1)[:, 0], norm="forward")  # (256, 32, 32)
    k = torch.fft.fftfreq(32, 1 / 32).round().long()
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    free = sample_tensor(model, grid, 256, sampler=sampler, steps=steps, generator=_generator(4), dtype=F64)
    same = (torch.fft.fft2(free[:, 0], norm="forward") - coefficients)[:, (ky.abs() >= 4) | (kx.abs() >= 4)]
    assert float(same.abs().max()) < 1e-10 * float(coefficients.abs().max())
    variance = data.spectral_variance(grid)
    prior = torch.where((ky.abs() <= 15) & (kx.abs() <= 15), variance[(ky + 15).clamp(0, 30), (kx + 15).clamp(0, 30)],
                        0.0)
    unobserved = (ky.abs() >= 4) | (kx.abs() >= 4)
    power = coefficients.abs().pow(2).mean(0)
    for low, high in ((4, 6), (6, 9), (9, 16)):
        band = unobserved & (torch.maximum(ky.abs(), kx.abs()) >= low) & (torch.maximum(ky.abs(), kx.abs()) < high)
        ratio = float(power[band].sum() / prior[band].sum())
        assert 0.95 < ratio < 1.15, (sampler, low, high, ratio)
    # the high modes do not follow the truth's (independent of the observation): the ensemble mean's high-mode power
    # is 1/128 of the prior's up to noise
    mean_power = torch.fft.fft2(x[:, :, 0].mean(1), norm="forward").abs().pow(2).mean(0)
    assert float(mean_power[unobserved].sum() / prior[unobserved].sum()) < 0.03


def _tiny_denoiser() -> EDMDenoiser:
    torch.manual_seed(0)
    return EDMDenoiser(domain=Grid.box(8, 8), noise=GaussianRandomField(alpha=2.0, tau=3.0, band_limit=3),
                       network=FieldNetConfig(n_modes=(4, 4), hidden_channels=4, n_layers=1, embedding_channels=8))


def test_a_neural_denoiser_reproduces_the_coarse_observation_and_the_unconditional_path_is_unchanged():
    model = _tiny_denoiser()
    coarse = GaussianRandomField(alpha=2.5, tau=3.0, band_limit=3).sample(Grid.box(8, 8), 3, generator=_generator(5))
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape))
    x = conditional_sample(model, Grid.box(32, 32), LowModes(coarse[:, None]), 2, steps=4, generator=_generator(6))
    assert x.shape == (3, 2, 1, 32, 32) and len(calls) == 7  # 2 N - 1 evaluations, all 6 fields in one batch
    deviation = (spectral_resample(x, (8, 8)) - spectral_resample(coarse[:, None, None], (8, 8))).abs().max()
    assert float(deviation) < 1e-5 * float(coarse.abs().max())
    # the unconditional sampler is untouched: same generator, same fields as before guidance existed
    first = sample_tensor(model, Grid.box(16, 16), 2, steps=3, generator=_generator(7))
    again = sample_tensor(model, Grid.box(16, 16), 2, steps=3, generator=_generator(7))
    assert torch.equal(first, again)


def test_bad_conditions_are_one_line_errors():
    model = _tiny_denoiser()
    good = torch.zeros(2, 1, 8, 8)
    nan = good.clone()
    nan[0, 0, 3, 3] = float("nan")
    cases = [
        (lambda: LowModes(nan), DataError, "NaN"),
        (lambda: conditional_sample(model, Grid.box(8, 8), LowModes(good), 2), ConfigError, "finer than"),
        (lambda: conditional_sample(model, Grid.box(4, 4), LowModes(good), 2), ConfigError, "finer than"),
        (lambda: conditional_sample(model, Grid.box(16, 16), LowModes(good), 2, steps=0), ConfigError, "budget"),
        (lambda: conditional_sample(model, Grid.box(16, 16, lengths=2.0), LowModes(good), 2), ConfigError, "lengths"),
        (lambda: conditional_sample(model, Grid.box(16, 16), LowModes(good), 0), ConfigError, "members"),
        (lambda: conditional_sample(model, Grid.box(16, 16), LowModes(torch.zeros(2, 2, 8, 8)), 2), ConfigError,
         "channel"),
        (lambda: PointValues(mask=torch.zeros(8, 8, dtype=torch.bool), values=torch.zeros(1, 1, 0)), ConfigError,
         "no point"),
        (lambda: PointValues.from_fields(nan, torch.ones(8, 8, dtype=torch.bool)), DataError, "NaN"),
        (lambda: conditional_sample(model, Grid.box(16, 16), PointValues.from_fields(good, torch.ones(8, 8, dtype=torch.bool)),
                                    2), ConfigError, "mask"),
    ]
    velocity = NeuralVelocityField(domain=Grid.box(8, 8), noise=GaussianRandomField(alpha=2.0, tau=3.0, band_limit=3),
                                   network=FieldNetConfig(n_modes=(4, 4), hidden_channels=4, n_layers=1,
                                                          embedding_channels=8))
    cases.append((lambda: conditional_sample(velocity, Grid.box(16, 16), LowModes(good), 2), ConfigError, "Denoiser"))
    for make, error, words in cases:
        with pytest.raises(error, match=words) as info:
            make()
        assert "\n" not in str(info.value)
