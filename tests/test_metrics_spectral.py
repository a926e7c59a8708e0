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


@pytest.mark.parametrize(("nodes", "pole", "equator"), [("equiangular", 0.0393, 0.2954), ("legendre-gauss", 0.0986, 0.2838)])
def test_sphere_weighting_discounts_polar_points(nodes, pole, equator):
    grid = Grid.latlon(19, 36, nodes=nodes)
    weights = grid.quadrature_weights()
    true = torch.ones(1, 1, *grid.shape)
    unweighted = math.sqrt(1 / 19)  # one row of 19 in error by 1, whichever row
    errors = {}
    for row in (-1, 9):  # the northernmost row, the equator
        pred = true.clone()
        pred[..., row, :] += 1.0
        assert float(rel_l2(pred, true)) == pytest.approx(unweighted, rel=1e-6)
        errors[row] = float(rel_l2(pred, true, grid=grid))
        # ||error||^2 / ||true||^2 = (area of the row's band) / (area of the sphere)
        assert errors[row] ** 2 == pytest.approx(float(weights[row].sum()) / (4 * math.pi), rel=1e-6)
    assert errors[-1] == pytest.approx(pole, abs=1e-4) and errors[9] == pytest.approx(equator, abs=1e-4)
    assert errors[-1] < 0.45 * unweighted < errors[9]  # the polar row weighs much less than its share of points


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
