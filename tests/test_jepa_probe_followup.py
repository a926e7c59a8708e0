"""Follow-up checks of the JEPA probes (issue 16): the split-conformal rank and the exact leave-one-out ridge."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.jepa.probes import RidgeProbe, conformal_quantile


@pytest.mark.parametrize("m", [9, 32, 63])
def test_conformal_marginal_coverage_is_finite_sample_rank(m):
    # Exchangeable continuous residuals: with the ceil((m + 1) level)-th smallest of m calibration residuals the
    # marginal coverage of a new residual is exactly ceil((m + 1) level) / (m + 1), in [level, level + 1 / (m + 1)].
    # Each of the `draws` columns is one independent calibration set (conformal_quantile works per column).
    draws, level = 40_000, 0.9
    g = torch.Generator().manual_seed(m)
    calibration = torch.randn(m, draws, generator=g, dtype=torch.float64).abs()
    new = torch.randn(draws, generator=g, dtype=torch.float64).abs()
    half_width = conformal_quantile(calibration, level=level)
    coverage = float((new <= half_width).double().mean())
    se = math.sqrt(level * (1 - level) / draws)
    exact = math.ceil((m + 1) * level) / (m + 1)
    assert level <= exact <= level + 1 / (m + 1)
    assert level - 3 * se <= coverage <= level + 1 / (m + 1) + 3 * se
    assert abs(coverage - exact) <= 3 * se
    # the naive rank ceil(m level) (the in-sample quantile) under-covers at m = 32 and 63 by more than 3 se
    naive = torch.sort(calibration, dim=0).values[math.ceil(m * level) - 1]
    if math.ceil(m * level) != math.ceil((m + 1) * level):
        assert float((new <= naive).double().mean()) < level - 3 * se


def test_conformal_too_few_calibration_points_gives_infinite_width():
    # m = 8 at level 0.9: ceil(9 * 0.9) = 9 > 8, no finite interval has the guarantee
    assert torch.isinf(conformal_quantile(torch.ones(8, 2), level=0.9)).all()
    # m = 9: rank ceil(10 * 0.9) = 9, the largest residual
    r = torch.arange(1.0, 10.0)[:, None]
    assert float(conformal_quantile(r, level=0.9)[0]) == 9.0


def test_ridge_leave_one_out_is_exact():
    # The closed-form LOO error RidgeProbe.fit minimises equals refitting without each row (same feature centring
    # and scale, which are computed once on all rows), at the chosen penalty.
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(30, 6)) * np.array([3.0, 1.0, 0.5, 0.1, 2.0, 1.0]))
    y = x @ torch.from_numpy(rng.normal(size=(6, 2))) + 0.3 * torch.from_numpy(rng.normal(size=(30, 2)))
    probe = RidgeProbe.fit(x, y)
    alpha, mean, std = probe.alpha, probe.x_mean, probe.x_std
    xs = (x - mean) / std
    errors = []
    for i in range(len(x)):
        keep = torch.arange(len(x)) != i
        a, b = xs[keep], y[keep]
        am, bm = a.mean(0), b.mean(0)
        # intercept unpenalised: centre the kept rows, penalise the slopes only
        w = torch.linalg.solve((a - am).T @ (a - am) + alpha * torch.eye(6, dtype=x.dtype), (a - am).T @ (b - bm))
        errors.append(((xs[i] - am) @ w + bm - y[i]).pow(2))
    assert probe.loo_mse == pytest.approx(float(torch.stack(errors).mean()), rel=1e-8)


def _random_encoder():
    from sciml.jepa.encoder import EncoderConfig, JEPAModel

    torch.manual_seed(0)
    config = EncoderConfig(widths=(4, 8), embedding_dim=8, projector_dim=16)
    return JEPAModel(config, spec={"size_t": 8, "size_x": [16]}).eval()


def test_embed_is_the_mean_over_the_shifted_tiling_and_translation_invariant():
    # (sample 3, time 20, channel 1, x 64): windows 8 x 16, shifts 4 -> space starts 0, 4, ..., 60 and 4 time
    # starts 0, 4, 8, 12 (evenly spaced over 0..12): the mean of represent() over those 64 windows.
    from sciml.jepa import embed
    from sciml.jepa.views import CropOffsets, crop

    model = _random_encoder()
    x = torch.randn(3, 20, 1, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    features = embed(model, x)
    with torch.no_grad():
        manual = torch.stack([model.represent(crop(x.float(), size_t=8, size_x=[16], offsets=CropOffsets(
            torch.full((3,), t, dtype=torch.long), torch.full((3, 1), s, dtype=torch.long)))).double()
            for t in (0, 4, 8, 12) for s in range(0, 64, 4)]).mean(0)
    assert torch.allclose(features, manual, atol=1e-6)
    # A periodic translation by 4 points maps the tiling onto itself: the features are unchanged (to float32
    # summation order). With shifts=1 (starts 0, 16, 32, 48) the same translation changes them.
    rolled = torch.roll(x, 4, dims=-1)
    assert torch.allclose(embed(model, rolled), features, atol=1e-5)
    coarse, coarse_rolled = embed(model, x, shifts=1), embed(model, rolled, shifts=1)
    assert (coarse - coarse_rolled).abs().max() > 100 * (embed(model, rolled) - features).abs().max()


def test_embed_rejects_bad_shifts():
    from sciml.errors import ConfigError
    from sciml.jepa import embed

    with pytest.raises(ConfigError, match="shifts"):
        embed(_random_encoder(), torch.zeros(1, 20, 1, 64), shifts=0)
