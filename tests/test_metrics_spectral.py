import math

import pytest
import torch

from sciml import Grid, max_error, nrmse, rel_l2
from sciml.spectral import spectral_resample


def test_relative_l2_and_nrmse_on_known_fields():
    true = torch.ones(2, 2, 4, 4)
    pred = true.clone()
    pred[0, 0] += 0.5  # error only in sample 0, channel 0
    assert rel_l2(pred, true).tolist() == pytest.approx([math.sqrt(0.25 * 16 / 32), 0.0])
    assert nrmse(pred, true)[0].tolist() == pytest.approx([0.5, 0.0])
    assert max_error(pred, true)[0].tolist() == pytest.approx([0.5, 0.0])


def test_sphere_weighting_discounts_polar_points():
    grid = Grid.latlon(19, 36)
    true = torch.ones(1, 1, *grid.shape)
    pred = true.clone()
    pred[..., -1, :] += 1.0  # error on the north-pole row only
    weighted = float(rel_l2(pred, true, grid=grid))
    unweighted = float(rel_l2(pred, true))
    assert weighted < 0.2 * unweighted


def test_undefined_relative_error_raises():
    with pytest.raises(ValueError, match="identically zero"):
        rel_l2(torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="differs"):
        rel_l2(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 5))


def test_spectral_resample_is_exact_for_band_limited_fields():
    def field(n):
        x = torch.arange(n, dtype=torch.float64) / n
        y, x = torch.meshgrid(x, x, indexing="ij")
        return torch.sin(2 * math.pi * 3 * x) * torch.cos(2 * math.pi * 5 * y) + 0.3 * torch.cos(2 * math.pi * 7 * x)

    up = spectral_resample(field(16)[None], (48, 48))
    torch.testing.assert_close(up[0], field(48), atol=1e-12, rtol=0)
    down = spectral_resample(field(64)[None], (16, 16))
    torch.testing.assert_close(down[0], field(16), atol=1e-12, rtol=0)
