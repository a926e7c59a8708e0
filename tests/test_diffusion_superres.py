"""Super-resolution by a denoiser conditioned on the coarse field as an input channel (CoarseConditionedDenoiser), the
xarray verbs `sample` / `super_resolve` that tell a conditioned model from a guided one, and the deprecated `generate`.

Gaussian random fields make the answer exact: with data and noise diagonal in the same Fourier basis the posterior
given the low modes is the prior on the high modes, and its mean the trigonometric interpolant of the coarse field."""

import math
import warnings

import numpy as np
import pytest
import torch

from sciml import ConfigError, Grid
from sciml._deprecation import SciMLDeprecationWarning
from sciml.diffusion import (
    CoarseConditionedDenoiser,
    ConditionedDenoiser,
    DiffusionTask,
    EDMLoss,
    FieldNetConfig,
    GaussianDenoiser,
    GaussianRandomField,
    LowModes,
    NoiseConditionedFNO,
    PointValues,
    conditional_sample,
    generate,
    sample,
    sample_tensor,
    super_resolve,
)
from sciml.diffusion.metrics import ensemble_scores
from sciml.spectral import spectral_resample
from sciml.train import TrainConfig, fit, seed_everything

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _ExactConditioned(ConditionedDenoiser):
    """``E[x_0 | x_sigma, low modes = u]`` for Gaussian data: ``u`` plus the Wiener filter of the high modes."""

    def __init__(self, data, noise, domain: Grid, coarse: tuple[int, ...]) -> None:
        super().__init__(domain=domain, noise=noise, channels=1, sigma_data=1.0)
        self.coarse = coarse
        self.wiener = GaussianDenoiser(data=data, domain=domain, noise=noise)

    def forward(self, x, sigma, condition):
        v = self.wiener(x - condition, sigma)
        return condition + v - spectral_resample(spectral_resample(v, self.coarse), tuple(x.shape[2:]))


GRID = Grid.box(16, 16)
NOISE = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
DATA = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7, sigma=3.0)


def test_channel_conditioning_samples_the_exact_posterior_of_gaussian_data_case_by_case():
    # Exact conditioned denoiser, Heun 24 steps, 2 cases x 128 members: the samples end on D, whose low modes are the
    # condition's (to rounding), and the high modes carry the prior's power (the posterior of independent modes).
    # Measured power ratios per band 1.02, 1.05, 1.04 (128 x 2 samples: ~3% standard error; Heun adds ~3%).
    model = _ExactConditioned(DATA, NOISE, GRID, (8, 8))
    truth = DATA.sample(GRID, 2, generator=_generator(1), dtype=F64)[:, None]
    coarse = spectral_resample(truth, (8, 8))
    x = conditional_sample(model, GRID, LowModes(coarse), 128, steps=24, generator=_generator(2), dtype=F64)
    assert x.shape == (2, 128, 1, 16, 16)
    # each case's members carry that case's low modes (not the other's): the case/member order is kept
    assert float((spectral_resample(x, (8, 8)) - coarse[:, None]).abs().max()) < 1e-10 * float(coarse.abs().max())
    coefficients = torch.fft.fft2(x.flatten(0, 1)[:, 0], norm="forward")
    k = torch.fft.fftfreq(16, 1 / 16).round().long()
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    b = DATA.band_limit
    inside = (ky.abs() <= b) & (kx.abs() <= b)
    prior = torch.where(inside, DATA.spectral_variance(GRID)[(ky + b).clamp(0, 2 * b), (kx + b).clamp(0, 2 * b)], 0.0)
    power = coefficients.abs().pow(2).mean(0)
    top = torch.maximum(ky.abs(), kx.abs())
    unobserved = top >= 4
    for low, high in ((4, 5), (5, 6), (6, 8)):
        band = unobserved & (top >= low) & (top < high)
        ratio = float(power[band].sum() / prior[band].sum())
        assert 0.92 < ratio < 1.15, (low, high, ratio)
    # the ensemble mean is the trigonometric interpolant (the posterior mean): its distance to it is the sampling
    # error of 128 members, ~ 1/sqrt(128) of the residual's norm
    interp = spectral_resample(coarse, (16, 16))
    residual = (truth - interp).norm()
    assert float((x.mean(1) - interp).norm() / residual) < 3 / math.sqrt(128)


def test_super_resolve_takes_the_channel_path_of_a_conditioned_model_and_keeps_coordinates():
    xr = pytest.importorskip("xarray")
    model = _ExactConditioned(DATA, NOISE, GRID, (8, 8))
    truth = DATA.sample(GRID, 3, generator=_generator(1), dtype=F64)[:, None]
    coarse = spectral_resample(truth, (8, 8)).float()
    axis = np.arange(8) / 8
    ds = xr.Dataset({"w": (("sample", "y", "x"), coarse[:, 0].numpy(), {"units": "s-1"})},
                    coords={"sample": [3, 5, 8], "y": axis, "x": axis}, attrs={"source": "test"})
    out = super_resolve(model, ds, GRID, 4, seed=11, steps=5)
    tensor = conditional_sample(model, GRID, LowModes(coarse), 4, steps=5, generator=_generator(11))
    assert out["w"].dims == ("sample", "member", "y", "x") and list(out["sample"].values) == [3, 5, 8]
    np.testing.assert_array_equal(out["w"].values, tensor[:, :, 0].numpy())
    assert out.attrs["conditioning"].startswith("input channel") and out.attrs["source"] == "test"
    assert out["w"].attrs["units"] == "s-1"
    guided = super_resolve(model, ds, GRID, 4, seed=11, steps=5, guidance=True)
    assert guided.attrs["conditioning"].endswith("data-consistency guidance")
    # the exact conditioned model already matches the low modes: guidance changes the samples only by rounding
    assert float(np.abs(guided["w"].values - out["w"].values).max()) < 1e-4


def test_trained_conditioned_denoiser_is_consistent_calibrated_and_near_the_posterior_mean():
    # 1-D GRF data on 64 points, 4x super-resolution from 16 points (modes |k| < 8). The exact posterior mean is the
    # trigonometric interpolant (rel L2 0.224 here, the best any method can do); the unconditional model's ensemble mean
    # knows nothing of the case (rel L2 ~1). Measured after 384 steps (19 CPU s): ensemble-mean rel L2 0.236, low-mode
    # rel. error 0.0045 (no guidance), spread/skill 1.07, residual variance 1.19x the prior's.
    grid = Grid.box(64)
    data = GaussianRandomField(alpha=1.0, tau=3.0, band_limit=31)
    noise = GaussianRandomField(alpha=1.0, tau=3.0, band_limit=31)
    fields = data.sample(grid, 1024, generator=_generator(0), dtype=torch.float32)[:, None]
    scales = CoarseConditionedDenoiser.scales(fields, 16)
    seed_everything(0)
    model = CoarseConditionedDenoiser(domain=grid, noise=noise, coarse=16, **scales,
                                      network=FieldNetConfig(n_modes=(64,), hidden_channels=16, n_layers=2,
                                                             embedding_channels=32))
    task = DiffusionTask(model, objective=EDMLoss(), ema_decay=0.98)
    history = fit(task, (fields,), config=TrainConfig(epochs=24, batch_size=64, lr=5e-3, warmup_fraction=0.05,
                                                      device="cpu", progress=False))
    assert history.stop_reason == "epochs"
    truth = data.sample(grid, 32, generator=_generator(9), dtype=torch.float32)[:, None]
    low = spectral_resample(truth, (16,))
    members = conditional_sample(task.ema.module, grid, LowModes(low), 16, steps=16, generator=_generator(3))
    scores = ensemble_scores(members, truth, grid=grid)
    interp = spectral_resample(low, (64,))

    def rel(p):
        return float(((p - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)).mean())

    unconditional = sample_tensor(GaussianDenoiser(data=data, domain=grid, noise=noise), grid, 16, steps=16,
                                  generator=_generator(3)).mean(0, keepdim=True).float()
    assert scores["rel_l2"] < 0.5 * rel(unconditional.expand_as(truth))
    assert scores["rel_l2"] < 1.15 * rel(interp)
    repeated = low.repeat_interleave(16, 0)
    assert float((spectral_resample(members.flatten(0, 1), (16,)) - repeated).norm() / repeated.norm()) < 0.02
    assert 0.7 < scores["spread_skill"] < 1.3
    ratio = float((members - interp[:, None]).pow(2).mean()) / scales["sigma_data"] ** 2
    assert 0.75 < ratio < 1.5


def test_pairs_and_fields_give_the_same_loss_when_the_coarse_field_is_the_truncation():
    torch.manual_seed(0)
    model = CoarseConditionedDenoiser(domain=GRID, noise=NOISE, coarse=8,
                                      network=FieldNetConfig(n_modes=(8, 8), hidden_channels=4, n_layers=1,
                                                             embedding_channels=8))
    fine = DATA.sample(GRID, 4, generator=_generator(0))[:, None]
    one, two = DiffusionTask(model, seed=3), DiffusionTask(model, seed=3)
    from_fields, _ = one.loss(model, (fine,))
    from_pairs, _ = two.loss(model, (fine, spectral_resample(fine, (8, 8))))
    assert torch.allclose(from_fields, from_pairs, rtol=1e-5)
    # and the condition is what the network sees: another coarse field changes the loss
    other, _ = DiffusionTask(model, seed=3).loss(model, (fine, torch.zeros(4, 1, 8, 8)))
    assert not torch.allclose(other, from_fields, rtol=1e-3)


def test_the_residual_form_is_the_identity_at_zero_noise_and_skips_the_residual_only():
    torch.manual_seed(0)
    model = CoarseConditionedDenoiser(domain=GRID, noise=NOISE, coarse=8, sigma_data=0.1,
                                      network=FieldNetConfig(n_modes=(8, 8), hidden_channels=4, n_layers=1,
                                                             embedding_channels=8))
    x = torch.randn(2, 1, 16, 16)
    u = model.condition_of(x)
    assert torch.allclose(model(x, 1e-6, u), x, atol=1e-5)  # c_skip -> 1, c_out -> 0 (the spectral weights: complex64)
    # with the network's output zeroed, D = u + c_skip (x - u): the condition passes, the residual is shrunk
    last = model.net.project[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    sigma = 2.0
    c_skip = 0.1**2 / (0.1**2 + model.noise_variance * sigma**2)
    assert torch.allclose(model(x, sigma, u), u + c_skip * (x - u), atol=1e-6)


def test_bad_input_is_a_one_line_error_and_a_foreign_coarse_grid_warns():
    model = _ExactConditioned(DATA, NOISE, GRID, (8, 8))
    good = torch.zeros(2, 1, 8, 8)
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[0, 0] = True
    unconditional = GaussianDenoiser(data=DATA, domain=GRID, noise=NOISE)
    cases = [
        (lambda: conditional_sample(model, GRID, PointValues.from_fields(torch.zeros(2, 1, 16, 16), mask), 2),
         ConfigError, "LowModes"),
        (lambda: conditional_sample(unconditional, GRID, LowModes(good), 2, guidance=False), ConfigError,
         "unconditional"),
        (lambda: conditional_sample(model, GRID, LowModes(good), 2, guidance="yes"), ConfigError, "guidance"),
        (lambda: conditional_sample(model, Grid.box(8, 8), LowModes(good), 2), ConfigError, "finer than"),
        (lambda: conditional_sample(model, GRID, LowModes(good), 2, steps=0), ConfigError, "budget"),
        (lambda: sample(model, GRID, 2), ConfigError, "super_resolve"),
        (lambda: sample(unconditional, GRID, 2, generator=_generator(0)), ConfigError, "seed="),
        (lambda: CoarseConditionedDenoiser(domain=GRID, noise=NOISE, coarse=(8,)), ConfigError, "coarse"),
        (lambda: CoarseConditionedDenoiser(domain=GRID, noise=NOISE, coarse=8, condition_scale=0.0), ConfigError,
         "condition_scale"),
        (lambda: NoiseConditionedFNO(1, FieldNetConfig(n_modes=(4, 4)), input_channels=-1), ConfigError,
         "input_channels"),
    ]
    for call, error, text in cases:
        with pytest.raises(error, match=text) as caught:
            call()
        assert "\n" not in str(caught.value)
    net = CoarseConditionedDenoiser(domain=GRID, noise=NOISE, coarse=8,
                                    network=FieldNetConfig(n_modes=(4, 4), hidden_channels=4, n_layers=1,
                                                           embedding_channels=8))
    with pytest.raises(ConfigError, match="lifted to x's grid"):
        net(torch.zeros(2, 1, 16, 16), 1.0, torch.zeros(2, 1, 8, 8))
    with pytest.warns(UserWarning, match=r"trained on the modes of a \(8, 8\) grid"):
        conditional_sample(model, GRID, LowModes(torch.zeros(1, 1, 4, 4)), 1, steps=2, generator=_generator(0))


def test_generate_is_the_deprecated_name_of_sample():
    pytest.importorskip("xarray")
    model = GaussianDenoiser(data=DATA, domain=GRID, noise=NOISE)
    new = sample(model, GRID, 2, steps=3, seed=4)
    with pytest.warns(SciMLDeprecationWarning, match=r"sciml.diffusion.generate is deprecated .* sciml.diffusion.sample"):
        old = generate(model, GRID, 2, steps=3, seed=4)
    np.testing.assert_array_equal(old["channel_0"].values, new["channel_0"].values)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample(model, GRID, 1, steps=2)  # the new name does not warn
