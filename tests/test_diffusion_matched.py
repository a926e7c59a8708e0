"""Spectrum-matched noise, the trigonometric Heun sampler and the spectrally coloured denoiser output (issue 14's
unconditional recipe): each checked against an exact result."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml import ConfigError, DataError, Grid
from sciml.diffusion import (
    EDMDenoiser,
    FieldNetConfig,
    GaussianDenoiser,
    GaussianRandomField,
    SpectrumMatchedField,
    sample_tensor,
)
from sciml.diffusion.samplers import evaluations

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _power_law_table(k_max: int, exponent: float, amplitude: float = 1.0) -> tuple[float, ...]:
    """``amplitude |k|^-p`` on ``[-K, K]^2`` (unit box; the constant mode 1), flattened C order."""
    index = np.arange(-k_max, k_max + 1)
    radius = np.sqrt(index[:, None] ** 2 + index[None, :] ** 2)
    return tuple(float(v) for v in (amplitude * np.where(radius > 0, radius, 1.0) ** -exponent).ravel())


# --------------------------------------------------------------------------------------------- the noise
def test_from_fields_recovers_the_per_mode_variances_and_the_tail_of_its_own_samples():
    truth = SpectrumMatchedField(variances=_power_law_table(10, 4.0, 0.01), lengths=(1.0, 1.0), tail_exponent=4.0,
                                 tail_amplitude=0.01, band_limit=15)
    grid = Grid.box(32, 32)
    fields = truth.sample(grid, 3000, generator=_generator(0), dtype=F64)  # (3000, 32, 32)
    fitted = SpectrumMatchedField.from_fields(fields, grid, band_limit=15, resolved=10)
    ratio = np.asarray(fitted.variances) / np.asarray(truth.variances)
    # Per complex mode the variance estimate has relative standard error 1/sqrt(3000) = 1.8% (the pair k, -k is one
    # coefficient, 2.6% for the real constant mode): 0.1 is 4 of them; the mean over the 441 modes is ~0.1%.
    assert float(np.abs(ratio - 1).max()) < 0.1 and abs(float(ratio.mean()) - 1) < 0.01, ratio
    assert abs(fitted.tail_exponent - 4.0) < 0.15 and abs(math.log(fitted.tail_amplitude / 0.01)) < 0.3
    # The trace formula: pointwise variance of the samples against sum_k lambda_k / |D|.
    assert abs(float(fields.var()) / truth.pointwise_variance(grid) - 1) < 0.03


def test_the_same_generator_state_gives_the_same_function_on_every_grid():
    noise = SpectrumMatchedField(variances=_power_law_table(6, 3.0), lengths=(1.0, 2.0), tail_exponent=3.0,
                                 tail_amplitude=1.0, band_limit=15)
    coarse = noise.sample(Grid.box(32, 32, lengths=(1.0, 2.0)), 2, generator=_generator(1), dtype=F64)
    fine = noise.sample(Grid.box(64, 64, lengths=(1.0, 2.0)), 2, generator=_generator(1), dtype=F64)
    torch.testing.assert_close(fine[:, ::2, ::2], coarse, atol=1e-12, rtol=0)
    # The tail above the table is the power law in the physical wavenumber |k / L|: mode (0, 7) on the 1 x 2 box
    # is 3.5 cycles per unit length.
    variance = noise.spectral_variance(Grid.box(32, 32, lengths=(1.0, 2.0)))  # (31, 31) at k + 15
    assert math.isclose(float(variance[15, 22]), 3.5**-3.0, rel_tol=1e-12)


def test_bad_input_to_the_matched_noise_is_one_line():
    table = _power_law_table(2, 3.0)
    base = {"variances": table, "lengths": (1.0, 1.0), "tail_exponent": 3.0, "tail_amplitude": 1.0, "band_limit": 4}
    cases = [
        ({**base, "tail_exponent": 2.0}, "trace"),
        ({**base, "variances": table[:-1]}, "variances"),
        ({**base, "variances": (1.0,) + table[1:]}, "symmetric"),
        ({**base, "band_limit": 1}, "band_limit"),
        ({**base, "variances": (float("nan"),) * 25}, "finite"),
    ]
    for options, words in cases:
        with pytest.raises(ConfigError, match=words) as info:
            SpectrumMatchedField(**options)
        assert "\n" not in str(info.value)
    grid = Grid.box(16, 16)
    good = torch.randn(4, 16, 16, generator=_generator(0))
    for fields, error, words in [(good[:1], DataError, "n >= 2"), (good[:, :8], DataError, "16, 16"),
                                 (torch.where(good > 2, float("nan"), good), DataError, "NaN"),
                                 (torch.ones(4, 16, 16), DataError, "do not vary")]:
        with pytest.raises(error, match=words) as info:
            SpectrumMatchedField.from_fields(fields, grid, band_limit=7)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="resolved") as info:
        SpectrumMatchedField.from_fields(good, grid, band_limit=7, resolved=8)
    noise = SpectrumMatchedField.from_fields(good, grid, band_limit=7, tail_exponent=3.0)
    with pytest.raises(ConfigError, match="lengths") as info:
        noise.sample(Grid.box(16, 16, lengths=2.0), 1, generator=_generator(0))
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------- the sampler
def test_trig_heun_is_exact_at_any_budget_when_the_data_are_the_noise_up_to_scale():
    # Gaussian data with covariance c^2 C: the posterior mean is c_skip x, F = 0, and the flow from sigma_max to 0 is
    # the scaling x -> sigma_data / sqrt(sigma_data^2 + v sigma_max^2) x of the initial field, whatever the steps.
    grid = Grid.box(16, 16)
    noise = SpectrumMatchedField(variances=_power_law_table(4, 3.0), lengths=(1.0, 1.0), tail_exponent=3.0,
                                 tail_amplitude=1.0, band_limit=7)
    data = SpectrumMatchedField(variances=tuple(0.09 * v for v in noise.variances), lengths=(1.0, 1.0),
                                tail_exponent=3.0, tail_amplitude=0.09, band_limit=7)
    model = GaussianDenoiser(data=data, domain=grid, noise=noise)
    start = 80 * model.sigma_per_level
    initial = start * model.draw_noise(grid, 4, generator=_generator(2), device="cpu", dtype=F64)
    gain = model.sigma_data / math.sqrt(model.sigma_data**2 + model.noise_variance * start**2)
    for steps in (1, 2, 5):
        x = sample_tensor(model, grid, 4, sampler="trig_heun", steps=steps, generator=_generator(2), dtype=F64)
        torch.testing.assert_close(x, gain * initial, atol=1e-12, rtol=1e-10)
    # Heun at EDM's 18 steps is not: its discretisation error leaves each mode's energy off by percent.
    heun = sample_tensor(model, grid, 4, sampler="heun", steps=18, generator=_generator(2), dtype=F64)
    assert float((heun / (gain * initial)).median() - 1) > 0.02  # measured ~0.05 (the energy 11 % high)


def test_trig_heun_converges_to_the_flow_map_for_other_gaussian_data():
    # GRF data against GRF noise of another smoothness: F is not 0, the sampler is a second-order method in the angle
    box = Grid.box(16)
    noise, data = (GaussianRandomField(alpha=2.0, tau=3.0, sigma=1.0, band_limit=7),
                   GaussianRandomField(alpha=2.5, tau=3.0, band_limit=7))
    model = GaussianDenoiser(data=data, domain=box, noise=noise)
    a, b = data.spectral_variance(box)[7:], noise.spectral_variance(box)[7:]
    start = 80 * model.sigma_per_level
    exact = (a / (a + start**2 * b)).sqrt()
    initial = torch.fft.rfft(start * model.draw_noise(box, 8, generator=_generator(3), device="cpu", dtype=F64)[:, 0],
                             norm="forward")[:, :8]
    errors = []
    for steps in (8, 16, 32):
        x = sample_tensor(model, box, 8, sampler="trig_heun", steps=steps, generator=_generator(3), dtype=F64)
        modes = torch.fft.rfft(x[:, 0], norm="forward")[:, :8]
        errors.append(float((modes / initial / exact - 1).abs().max()))
    assert errors[-1] < 0.02, errors
    assert errors[1] / errors[2] > 2.5, errors  # second order halving the step: 4x, less from the Euler last step
    assert evaluations("trig_heun", 12) == 23


# --------------------------------------------------------------------------------------------- the coloured output
def _model(spectral_output: bool, noise) -> EDMDenoiser:
    torch.manual_seed(0)
    model = EDMDenoiser(domain=Grid.box(16, 16), noise=noise, sigma_data=0.3, spectral_output=spectral_output,
                        network=FieldNetConfig(n_modes=(8, 8), hidden_channels=8, n_layers=2, embedding_channels=8))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_the_spectral_output_is_the_plain_network_filtered_by_the_noise_square_root():
    noise = GaussianRandomField(alpha=3.0, tau=3.0, band_limit=15)
    plain, coloured = _model(False, noise), _model(True, noise)
    coloured.load_state_dict(plain.state_dict())  # the same weights: the flag adds none
    grid = Grid.box(32, 32)
    x = 0.5 * plain.draw_noise(grid, 3, generator=_generator(0), device="cpu", dtype=torch.float32)
    sigma = 0.7
    c_skip = plain.sigma_data**2 / (plain.sigma_data**2 + plain.noise_variance * sigma**2)
    with torch.no_grad():
        residual_plain, residual_coloured = plain(x, sigma) - c_skip * x, coloured(x, sigma) - c_skip * x
    gain = coloured.output_gain((32, 32), dtype=F64)
    expected = torch.fft.irfftn(gain * torch.fft.rfftn(residual_plain.double(), dim=(-2, -1)), s=(32, 32))
    torch.testing.assert_close(residual_coloured.double(), expected, atol=1e-6, rtol=0)
    # g_k = sqrt(b_k / max b): 1 at the constant mode (the GRF's largest), the same at a physical mode on 32 and 64
    # points, and it falls as b_k: the energy of mode (0, 8) relative to mode (0, 0) is b_8 / b_0.
    b = noise.spectral_variance(grid)  # (31, 31) at k + 15
    assert math.isclose(float(gain[0, 0]), 1.0, rel_tol=1e-12)
    assert math.isclose(float(gain[0, 8]) ** 2, float(b[15, 23] / b[15, 15]), rel_tol=1e-12)
    torch.testing.assert_close(coloured.output_gain((64, 64), dtype=F64)[:16, :9], gain[:16, :9], atol=1e-14,
                               rtol=0)


def test_the_spectral_output_survives_save_and_load(tmp_path):
    from sciml.diffusion._cli import load_model, save_model

    grid = Grid.box(16, 16)
    fields = GaussianRandomField(alpha=2.5, tau=3.0, band_limit=7).sample(grid, 6, generator=_generator(1))
    noise = SpectrumMatchedField.from_fields(fields, grid, band_limit=7, tail_exponent=3.0)
    model = _model(True, noise)
    save_model(model, tmp_path / "model.pt", variables=["vorticity"], attrs={}, command="test")
    loaded, _ = load_model(tmp_path)
    assert loaded.spectral_output and isinstance(loaded.noise, SpectrumMatchedField) and loaded.noise == noise
    x = model.draw_noise(grid, 2, generator=_generator(0), device="cpu", dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, 0.4), model.eval()(x, 0.4), atol=0, rtol=0)
    with pytest.raises(ConfigError, match="spectral_output"):
        EDMDenoiser(domain=grid, noise=noise, spectral_output=1)


def test_the_coarse_conditioned_denoiser_adds_nothing_above_the_band_limit_with_spectral_output():
    # Zero-shot on a grid 4x finer than the band limit needs: the plain network writes its errors into every mode of
    # the grid, the coloured one only into the noise's modes |k_i| <= B.
    from sciml.diffusion import CoarseConditionedDenoiser

    torch.manual_seed(0)
    noise = GaussianRandomField(alpha=2.0, tau=5.0, band_limit=7)
    network = FieldNetConfig(n_modes=(8, 8), hidden_channels=8, n_layers=2, embedding_channels=8)
    models = [CoarseConditionedDenoiser(domain=Grid.box(16, 16), noise=noise, coarse=4, sigma_data=0.2,
                                        network=network, spectral_output=flag) for flag in (False, True)]
    models[1].load_state_dict(models[0].state_dict())
    with torch.no_grad():
        for p in models[0].parameters():
            p.add_(0.1 * torch.randn_like(p))
        models[1].load_state_dict(models[0].state_dict())
        x = models[0].draw_noise(Grid.box(64, 64), 2, generator=_generator(0), device="cpu", dtype=torch.float32)
        condition = models[0].lift(torch.randn(2, 1, 4, 4, generator=_generator(1)), (64, 64))
        high = []
        for model in models:
            c_skip = model.sigma_data**2 / (model.sigma_data**2 + model.noise_variance * 0.25)
            correction = model(x, 0.5, condition) - condition - c_skip * (x - condition)
            modes = torch.fft.fftn(correction.double(), dim=(-2, -1)).abs()
            k = torch.fft.fftfreq(64, 1 / 64).abs()
            above = (k[:, None] > 7) | (k[None, :] > 7)
            high.append(float(modes[..., above].max() / modes.max()))
    assert high[0] > 1e-3 and high[1] < 1e-3 * high[0], high  # measured 4.9e-3 and 9.6e-8


# --------------------------------------------------------------------------------------------- the mean field
def test_a_mean_field_model_is_the_centred_model_shifted_on_every_grid(tmp_path):
    from sciml.diffusion._cli import load_model, save_model
    from sciml.spectral import spectral_resample

    noise = GaussianRandomField(alpha=2.5, tau=3.0, band_limit=15)
    coarse = Grid.box(16, 16)
    mean = GaussianRandomField(alpha=3.0, tau=2.0, band_limit=7).sample(coarse, 1, generator=_generator(4))  # (1, 16, 16)
    centred = _model(True, noise)
    shifted = EDMDenoiser(domain=coarse, noise=noise, sigma_data=0.3, spectral_output=True, mean_field=mean,
                          network=centred.net.config)
    shifted.load_state_dict(centred.state_dict(), strict=False)  # the same weights; the mean is the only new buffer
    for n in (16, 32):  # D(x) = m + D_0(x - m), with m the mean's trigonometric interpolant on the grid
        m = spectral_resample(mean[None], (n, n)) if n != 16 else mean[None]
        x = m + 0.5 * noise.sample(Grid.box(n, n), 3, generator=_generator(n), dtype=torch.float32)[:, None]
        with torch.no_grad():
            torch.testing.assert_close(shifted.eval()(x, 0.6), m + centred.eval()(x - m, 0.6), atol=1e-6, rtol=0)
    assert "mean_field" in shifted.state_dict() and "mean_field" not in centred.state_dict()
    save_model(shifted, tmp_path / "model.pt", variables=["vorticity"], attrs={}, command="test")
    loaded, _ = load_model(tmp_path)
    torch.testing.assert_close(loaded.mean_field, mean, atol=0, rtol=0)
    with pytest.raises(ConfigError, match="mean_field must be a real tensor"):
        EDMDenoiser(domain=coarse, noise=noise, mean_field=torch.zeros(2, 16, 16))
    with pytest.raises(ConfigError, match="NaN"):
        EDMDenoiser(domain=coarse, noise=noise, mean_field=torch.full((1, 16, 16), float("nan")))


def test_from_fields_finds_where_the_datas_spectrum_ends():
    grid = Grid.box(32, 32)
    band_limited = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=6).sample(grid, 64, generator=_generator(5))
    # modes |k_i| > 6 hold float32 rounding only (~1e-14 of the variance): the table ends at 6, the tail from [3, 6]
    fitted = SpectrumMatchedField.from_fields(band_limited, grid, band_limit=31, resolved="auto")
    assert fitted.table_limit == 6
    full = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=15).sample(grid, 64, generator=_generator(5))
    assert SpectrumMatchedField.from_fields(full, grid, band_limit=31, resolved="auto").table_limit == 15
    with pytest.raises(ConfigError, match="'auto' or an integer"):
        SpectrumMatchedField.from_fields(full, grid, band_limit=31, resolved="all")


def test_tempered_noise_is_flatter_where_the_data_are_strong_and_capped_where_they_are_weak():
    grid = Grid.box(32, 32)
    matched = SpectrumMatchedField(variances=_power_law_table(6, 5.0), lengths=(1.0, 1.0), tail_exponent=5.0,
                                   tail_amplitude=1.0, band_limit=15)
    data = matched.eigenvalues(grid).numpy()  # (31, 31), lambda_k at k + 15
    tempered = matched.tempered(0.5, max_ratio=100.0)
    noise = tempered.eigenvalues(grid).numpy()
    # r_k = lambda_k' / lambda_k = min((lambda_max / lambda_k)^(1/2), 100), on the table and the tail alike
    np.testing.assert_allclose(noise / data, np.minimum(np.sqrt(data.max() / data), 100.0), rtol=1e-12)
    assert tempered.table_limit == 15 and noise[15, 16] / data[15, 16] == 1.0  # the strongest mode (|k| = 1) unchanged
    assert noise[15, 15 + 3] / data[15, 15 + 3] == pytest.approx(3 ** 2.5, rel=1e-12)  # |k| = 3: sqrt(3^5)
    assert noise[15, 30] / data[15, 30] == 100.0  # |k| = 15: capped
    np.testing.assert_allclose(matched.tempered(1.0).eigenvalues(grid).numpy(), data, rtol=1e-12)
    for power, ratio in ((0.0, 10.0), (1.5, 10.0), (0.5, 0.5)):
        with pytest.raises(ConfigError, match="tempered"):
            matched.tempered(power, max_ratio=ratio)


# --------------------------------------------------------------------------------------------- per-mode preconditioning
def _wiener_model(noise, data, sigma_data: float) -> EDMDenoiser:
    torch.manual_seed(0)
    model = EDMDenoiser(domain=Grid.box(16, 16), noise=noise, sigma_data=sigma_data, data_spectrum=data,
                        network=FieldNetConfig(n_modes=(8, 8), hidden_channels=8, n_layers=2, embedding_channels=8))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_the_per_mode_skip_is_the_exact_wiener_filter_and_its_scale_the_residuals_standard_deviation():
    data = SpectrumMatchedField(variances=_power_law_table(6, 5.0, 0.2), lengths=(1.0, 1.0), tail_exponent=5.0,
                                tail_amplitude=0.2, band_limit=15)
    noise = data.tempered(0.5, max_ratio=100.0)
    model = _wiener_model(noise, data, math.sqrt(data.pointwise_variance(Grid.box(16, 16))))
    exact = GaussianDenoiser(data=data, domain=Grid.box(16, 16), noise=noise)
    for p in model.net.parameters():  # F = 0: the last layer's weights and biases zeroed
        p.data.zero_()
    grid = Grid.box(32, 32)  # resolves the band limit 15: the Wiener filter is exact there
    x = model.draw_noise(grid, 3, generator=_generator(1), device="cpu", dtype=torch.float32)
    sigma = torch.tensor([0.05, 1.0, 20.0]) * model.sigma_per_level
    with torch.no_grad():  # float32 model against the float64 filter
        torch.testing.assert_close(model(x, sigma).double(), exact(x.double(), sigma.double()), atol=1e-5, rtol=1e-4)
    # c_out^2 = sum_k a_k s^2 b_k / (a_k + s^2 b_k), checked against the residual of the exact posterior mean measured
    # on draws x_0 ~ data, x = x_0 + sigma xi: its pointwise variance (20 % at 64 x 3 fields x 1024 points)
    clean = data.sample(grid, 64, generator=_generator(2), dtype=F64).view(64, 1, 32, 32)
    level = torch.full((64,), 2.0 * model.sigma_per_level, dtype=F64)
    noisy = clean + level.view(-1, 1, 1, 1) * model.draw_noise(grid, 64, generator=_generator(3), device="cpu", dtype=F64)
    measured = float((exact(noisy, level) - clean).pow(2).mean().sqrt())
    assert measured == pytest.approx(float(model.residual_scale(level[:1])), rel=0.1)


def test_with_the_datas_own_spectrum_as_noise_the_per_mode_model_is_the_spectral_output():
    data = SpectrumMatchedField(variances=_power_law_table(6, 5.0, 0.2), lengths=(1.0, 1.0), tail_exponent=5.0,
                                tail_amplitude=0.2, band_limit=15)
    sigma_data = math.sqrt(data.pointwise_variance(Grid.box(16, 16)))
    wiener = _wiener_model(data, data, sigma_data)
    torch.manual_seed(0)
    coloured = EDMDenoiser(domain=Grid.box(16, 16), noise=data, sigma_data=sigma_data, spectral_output=True,
                           network=FieldNetConfig(n_modes=(8, 8), hidden_channels=8, n_layers=2, embedding_channels=8))
    coloured.load_state_dict(wiener.state_dict())
    for shape in ((32, 32), (64, 64)):
        x = 0.5 * wiener.draw_noise(Grid.box(*shape), 2, generator=_generator(0), device="cpu", dtype=torch.float32)
        with torch.no_grad():
            torch.testing.assert_close(wiener(x, 0.7), coloured(x, 0.7), atol=2e-6, rtol=1e-5)
    sigma = torch.tensor([0.3, 3.0])
    torch.testing.assert_close(wiener.residual_scale(sigma), coloured.residual_scale(sigma), rtol=1e-5, atol=0)


def test_bad_data_spectrum_is_one_line():
    data = SpectrumMatchedField(variances=_power_law_table(4, 3.0), lengths=(1.0, 1.0), tail_exponent=3.0,
                                tail_amplitude=1.0, band_limit=7)
    for options in ({"data_spectrum": GaussianRandomField(alpha=2.0, tau=3.0)},
                    {"data_spectrum": data, "spectral_output": True}):
        with pytest.raises(ConfigError, match="data_spectrum") as error:
            EDMDenoiser(domain=Grid.box(16, 16), noise=data, **options)
        assert "\n" not in str(error.value)
