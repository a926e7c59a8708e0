"""Metrics of generated fields (sciml.diffusion.metrics): hand-worked values and identities."""

import math

import pytest
import torch

from sciml import ConfigError, DataError, Grid
from sciml.diffusion import (
    GaussianRandomField,
    ensemble_scores,
    isotropic_spectrum,
    mmd,
    moment_errors,
    noise_covariance,
    spectrum_error,
    two_point_correlation,
    wasserstein_1d,
)

F64 = torch.float64


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grid_xy(n: int):
    coords = torch.arange(n, dtype=F64) / n
    return torch.meshgrid(coords, coords, indexing="ij")


def test_the_spectrum_of_one_fourier_mode_is_in_its_shell_and_sums_to_the_mean_square():
    y, x = _grid_xy(16)
    # cos(2 pi (3 y + 4 x)): modes (3, 4) and (-3, -4), |k| = 5, each coefficient 1/2: E(5) = 2 (1/2)^2 = 1/2
    field = (2.0 * torch.cos(2 * math.pi * (3 * y + 4 * x)) + 0.5)[None]
    spectrum = isotropic_spectrum(field)
    assert spectrum.shape == (1, 12)  # shells 0..round(sqrt(8^2 + 8^2)) = 11
    expected = torch.zeros(12, dtype=F64)
    expected[0], expected[5] = 0.25, 2.0
    assert torch.allclose(spectrum[0], expected, atol=1e-12)
    assert math.isclose(float(spectrum.sum()), float(field.pow(2).mean()), rel_tol=1e-12)  # Parseval


def test_spectrum_error_is_zero_for_identical_fields_and_the_band_ratio_minus_one_otherwise():
    fields = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7).sample(Grid.box(16, 16), 6, generator=_generator(0),
                                                                          dtype=F64)
    bands = spectrum_error(fields, fields.clone())
    assert [b["band"] for b in bands] == [(1, 2), (2, 4), (4, 8)]
    assert all(b["error"] == 0.0 for b in bands)
    doubled = spectrum_error(2 * fields, fields, bands=[(0, 3), (3, 8)])  # energy x 4 in every band
    assert all(math.isclose(b["error"], 3.0, rel_tol=1e-12) for b in doubled)
    with pytest.raises(ConfigError, match="band"):
        spectrum_error(fields, fields, bands=[(3, 2)])
    with pytest.raises(DataError, match="lies on"):
        spectrum_error(fields, fields[:, :8, :8])


def test_wasserstein_of_shifted_samples_is_the_shift_and_hand_values():
    values = torch.randn(500, 8, 8, generator=_generator(1), dtype=F64)
    assert math.isclose(wasserstein_1d(values + 0.3, values), 0.3, rel_tol=1e-12)
    assert wasserstein_1d(values, values.flip(0)) == 0.0  # the same values in another order
    assert math.isclose(wasserstein_1d(torch.tensor([0.0]), torch.tensor([1.0, 3.0])), 2.0)  # E|X - 0|
    assert math.isclose(wasserstein_1d(torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([0.5])), 1.25)
    assert math.isclose(wasserstein_1d(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 1.0])), 0.0, abs_tol=0)
    with pytest.raises(DataError, match="NaN"):
        wasserstein_1d(torch.tensor([float("nan")]), torch.tensor([1.0]))


def test_mmd_hand_value_and_zero_for_one_distribution():
    # Constant fields 0, 1 against 0, 2 with h = 1: within-samples exp(-1/2), within-data exp(-2), cross
    # (1 + e^-2 + 2 e^-1/2) / 4, so MMD_u^2 = e^-1/2 + e^-2 - (1 + e^-2 + 2 e^-1/2) / 2 = (e^-2 - 1) / 2.
    samples = torch.tensor([0.0, 1.0], dtype=F64)[:, None, None, None].expand(2, 1, 4, 4)
    data = torch.tensor([0.0, 2.0], dtype=F64)[:, None, None, None].expand(2, 1, 4, 4)
    assert math.isclose(mmd(samples, data, bandwidth=1.0), (math.exp(-2) - 1) / 2, rel_tol=1e-12)
    # Two independent sets of 200 from one GRF: unbiased, so ~0 (measured 0.0043; -0.0024..0.0064 over other seeds);
    # twice the amplitude is far (measured 0.104; 1.5x: 0.046)
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
    a = noise.sample(Grid.box(16, 16), 200, generator=_generator(2), dtype=F64)
    b = noise.sample(Grid.box(16, 16), 200, generator=_generator(3), dtype=F64)
    same, apart = mmd(a, b), mmd(a, 2.0 * b)
    assert abs(same) < 0.015 and apart > 0.06, (same, apart)
    with pytest.raises(ConfigError, match="bandwidth"):
        mmd(a, b, bandwidth=0.0)


def test_moment_errors_hand_values():
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
    data = noise.sample(Grid.box(16, 16), 64, generator=_generator(4), dtype=F64)
    zero = moment_errors(data, data.clone())
    assert zero == {"mean": 0.0, "std": 0.0, "correlation": 0.0}
    shifted = moment_errors(data + 0.5, data)  # a shift moves the mean only
    sd = data.std(dim=0)
    assert math.isclose(shifted["mean"], 0.5 * 16 / float(sd.norm()), rel_tol=1e-12)
    assert shifted["std"] < 1e-12 and shifted["correlation"] < 1e-12
    scaled = moment_errors(2 * data, data)  # a scale doubles the std and leaves the correlation
    assert math.isclose(scaled["std"], 1.0, rel_tol=1e-12) and scaled["correlation"] < 1e-12


def test_the_two_point_correlation_of_a_grf_is_its_normalised_kernel():
    noise = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=7)
    grid = Grid.box(16, 16)
    fields = noise.sample(grid, 2000, generator=_generator(5), dtype=F64)
    rho = two_point_correlation(fields)[0]
    kernel = noise_covariance(noise, grid)
    assert float(rho[0, 0]) == pytest.approx(1.0, abs=1e-12)
    assert float((rho - kernel / kernel[0, 0]).abs().max()) < 0.05  # 2000 fields x 256 points


def test_ensemble_scores_hand_values_and_a_reliable_ensemble():
    truth = torch.randn(4, 1, 8, 8, generator=_generator(6), dtype=F64)
    exact = ensemble_scores(truth[:, None].expand(4, 3, 1, 8, 8), truth)
    assert exact["rel_l2"] < 1e-14 and exact["crps"] < 1e-14 and exact["mae_of_mean"] < 1e-14
    guess = truth + 0.25 * torch.randn(4, 1, 8, 8, generator=_generator(7), dtype=F64)
    two_equal = ensemble_scores(guess[:, None].expand(4, 2, 1, 8, 8), truth)  # no spread: CRPS = MAE
    assert math.isclose(two_equal["crps"], float((guess - truth).abs().mean()), rel_tol=1e-12)
    assert math.isclose(two_equal["rel_l2"], float(((guess - truth).flatten(1).norm(dim=1)
                                                    / truth.flatten(1).norm(dim=1)).mean()), rel_tol=1e-12)
    # members and truth drawn alike (a perfectly reliable ensemble): the corrected spread/skill -> 1 (measured 1.00)
    cases = torch.randn(64, 9, 1, 8, 8, generator=_generator(8), dtype=F64)
    reliable = ensemble_scores(cases[:, 1:], cases[:, 0])
    assert 0.93 < reliable["spread_skill"] < 1.07, reliable
    with pytest.raises(DataError, match="2 members"):
        ensemble_scores(truth[:, None], truth)
