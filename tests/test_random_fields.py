import math

import numpy as np
import pytest
import torch

from sciml import Grid, gaussian_random_field
from sciml.spectral import spectral_resample


@pytest.mark.parametrize("shape", [(32,), (16, 24)])
def test_same_seed_gives_the_same_function_at_every_resolution(shape):
    coarse = gaussian_random_field(Grid.box(*shape), 3, seed=7)
    fine = gaussian_random_field(Grid.box(*(4 * n for n in shape)), 3, seed=7)
    # Truncating the fine field to the coarse band limit gives the coarse field exactly.
    np.testing.assert_allclose(spectral_resample(fine, shape).numpy(), coarse.numpy(), atol=1e-13)
    # And the fine field really has more modes (the test would pass trivially otherwise).
    assert float((spectral_resample(coarse, fine.shape[1:]) - fine).abs().max()) > 1e-6


def test_sample_depends_on_seed_and_index_only():
    grid = Grid.box(16, 16)
    batch = gaussian_random_field(grid, 5, seed=3)
    one = gaussian_random_field(grid, 1, seed=3, first_sample=3)
    assert torch.equal(batch[3:4], one)
    assert not torch.equal(gaussian_random_field(grid, 1, seed=4), batch[:1])
    assert torch.equal(gaussian_random_field(grid, 5, seed=3), batch)  # deterministic, same bytes


def test_pointwise_variance_matches_the_covariance_operator():
    grid = Grid.box(32, 32)
    alpha, tau, sigma = 2.0, 3.0, 1.0
    fields = gaussian_random_field(grid, 2000, seed=0, alpha=alpha, tau=tau, sigma=sigma, mean_zero=False)
    k = np.arange(-15, 16)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    expected = np.sum(sigma**2 * (4 * math.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha))  # trace of C
    measured = float(fields.var(dim=0).mean())
    # 2000 samples x 1024 correlated points: a few percent of sampling error.
    assert measured == pytest.approx(expected, rel=0.05)
    assert abs(float(fields.mean())) < 0.05 * math.sqrt(expected)


def test_mean_zero_removes_the_constant_mode_and_bad_parameters_fail():
    fields = gaussian_random_field(Grid.box(16, 16), 4, seed=1)
    assert float(fields.mean(dim=(1, 2)).abs().max()) < 1e-14
    with pytest.raises(ValueError, match="alpha must be finite and exceed"):
        gaussian_random_field(Grid.box(16, 16), 1, seed=0, alpha=1.0)
    for bad, message in (({"alpha": float("nan")}, "alpha must be finite"), ({"tau": float("inf")}, "tau must be"),
                         ({"sigma": float("nan")}, "sigma must be"), ({"sigma": -1.0}, "sigma must be positive")):
        with pytest.raises(ValueError, match=message):  # NaN gave an all-NaN field, sigma < 0 acted as |sigma|
            gaussian_random_field(Grid.box(16, 16), 1, seed=0, **bad)


def test_band_limited_field_is_one_function_sampled_at_any_grid():
    # With a fixed band limit the field is the same continuous function everywhere: a 12-point grid
    # sees exactly every fourth value of a 48-point grid, even though it cannot resolve all modes.
    coarse = gaussian_random_field(Grid.box(12, 12), 2, seed=5, band_limit=10)
    fine = gaussian_random_field(Grid.box(48, 48), 2, seed=5, band_limit=10)
    torch.testing.assert_close(coarse, fine[:, ::4, ::4], atol=1e-13, rtol=0)
    unlimited = gaussian_random_field(Grid.box(48, 48), 2, seed=5)
    assert float((unlimited - fine).abs().max()) > 1e-4  # the band limit really removed modes
