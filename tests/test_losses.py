"""Training losses: H1 against analytic norms and across resolutions; rollouts against an analytic linear model."""

import functools
import math

import pytest
import torch

from sciml import ConfigError, DataError, Grid, GridError, gaussian_random_field
from sciml.train.losses import h1_loss, relative_l2_loss, rollout_loss


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: on a busy 2-core machine two intra-op threads mostly wait on each other.
    torch.set_num_threads(1)


def _x(n: int, length: float) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float64) * (length / n)


def test_h1_of_a_sine_is_its_l2_norm_times_sqrt_one_plus_k_squared_1d():
    length, n, k = 3.0, 32, 3
    grid = Grid.box(n, lengths=length)
    error = torch.sin(2 * math.pi * k * _x(n, length) / length)[None, None]
    kappa2 = (2 * math.pi * k / length) ** 2
    # ||e||^2 = L / 2 and ||e'||^2 = kappa^2 L / 2
    absolute = h1_loss(error, torch.zeros_like(error), grid=grid, relative=False)
    assert float(absolute) ** 2 == pytest.approx(length / 2 * (1 + kappa2), rel=1e-13)
    # Relative to true = cos(2 pi m x / L), which has the same L2 norm.
    m = 1
    true = torch.cos(2 * math.pi * m * _x(n, length) / length)[None, None]
    relative = h1_loss(true + error, true, grid=grid)
    assert float(relative) == pytest.approx(math.sqrt((1 + kappa2) / (1 + (2 * math.pi * m / length) ** 2)), rel=1e-13)
    assert float(relative_l2_loss(true + error, true, grid=grid)) == pytest.approx(1.0, rel=1e-13)


def test_h1_gradient_term_in_2d_adds_both_wavenumbers():
    (ny, nx), (ly, lx), (ky, kx) = (16, 24), (2.0, 5.0), (2, 3)
    grid = Grid.box(ny, nx, lengths=(ly, lx))
    y, x = torch.meshgrid(_x(ny, ly), _x(nx, lx), indexing="ij")
    error = (torch.sin(2 * math.pi * ky * y / ly) * torch.cos(2 * math.pi * kx * x / lx))[None, None]
    kappa2 = (2 * math.pi * ky / ly) ** 2 + (2 * math.pi * kx / lx) ** 2
    value = h1_loss(error, torch.zeros_like(error), grid=grid, relative=False)
    assert float(value) ** 2 == pytest.approx(ly * lx / 4 * (1 + kappa2), rel=1e-13)


def test_h1_pools_channels_and_averages_samples():
    n = 16
    x = _x(n, 1.0)
    one = torch.sin(2 * math.pi * x)  # ||.||_H1^2 = (1 + 4 pi^2) / 2
    error = torch.stack([torch.stack([one, one]), torch.stack([one, 0 * one])])  # (2, 2, n)
    value = h1_loss(error, torch.zeros_like(error), relative=False)  # no grid: the unit box
    norm2 = (1 + 4 * math.pi**2) / 2
    assert float(value) == pytest.approx((math.sqrt(2 * norm2) + math.sqrt(norm2)) / 2, rel=1e-13)


@pytest.mark.parametrize("shape", [(32,), (32, 32)])
def test_h1_is_resolution_independent_for_band_limited_fields(shape):
    coarse = Grid.box(*shape, lengths=2.0)
    fine = coarse.with_shape(*(2 * n for n in shape))
    values = []
    for grid in (coarse, fine):
        fields = gaussian_random_field(grid, 6, seed=3, band_limit=10)  # the same continuous fields
        pred, true = fields[:3, None], fields[3:, None]
        values.append((h1_loss(pred, true, grid=grid), h1_loss(pred, true, grid=grid, relative=False)))
    for a, b in zip(*values):
        assert abs(float(a) - float(b)) < 1e-10 * float(b)


def test_h1_without_grid_is_the_unit_box_and_is_differentiable():
    pred = torch.randn(2, 1, 8, 6, dtype=torch.float64, requires_grad=True)
    true = torch.randn(2, 1, 8, 6, dtype=torch.float64)
    assert torch.equal(h1_loss(pred, true), h1_loss(pred, true, grid=Grid.box(8, 6)))
    assert torch.autograd.gradcheck(lambda p: h1_loss(p, true, grid=Grid.box(8, 6, lengths=(3.0, 0.5))), (pred,))


def test_losses_reject_mismatched_shapes_and_the_sphere():
    with pytest.raises(DataError, match=r"pred shape \(1, 1, 8\) differs from true shape \(1, 1, 9\)"):
        h1_loss(torch.zeros(1, 1, 8), torch.zeros(1, 1, 9))
    with pytest.raises(DataError, match=r"pred shape \(2, 1, 8\) differs from true shape \(1, 1, 8\)"):
        relative_l2_loss(torch.zeros(2, 1, 8), torch.zeros(1, 1, 8))
    with pytest.raises(GridError, match="h1_loss needs a periodic box grid \\(spectral gradients\\), got a 'latlon' grid"):
        h1_loss(torch.zeros(1, 1, 8, 16), torch.ones(1, 1, 8, 16), grid=Grid.latlon(8, 16))
    with pytest.raises(GridError, match=r"spatial shape \(8,\) does not match grid shape \(16,\)"):
        h1_loss(torch.zeros(1, 1, 8), torch.ones(1, 1, 8), grid=Grid.box(16))


class Scale(torch.nn.Module):
    """``u -> a u``: its k-step rollout is ``a^k u``."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.a * u


def _trajectory(a: float, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    u0 = torch.randn(3, 2, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return u0, torch.stack([a**j * u0 for j in range(1, steps + 1)], dim=1)  # (batch, k, channel, x)


def test_one_step_rollout_is_the_one_step_loss():
    u0, targets = _trajectory(0.9, 1)
    model = Scale(1.1)
    grid = Grid.box(16, lengths=2.0)
    assert torch.equal(rollout_loss(model, u0, targets), relative_l2_loss(model(u0), targets[:, 0]))
    h1 = functools.partial(h1_loss, grid=grid)
    assert torch.equal(rollout_loss(model, u0, targets, loss=h1), h1(model(u0), targets[:, 0]))


def test_rollout_of_a_linear_model_is_analytic_and_gradients_cross_every_step():
    true_a, steps = 0.9, 4
    u0, targets = _trajectory(true_a, steps)
    assert float(rollout_loss(Scale(true_a), u0, targets).detach()) < 1e-15
    # With r = a / a*, step j has relative error |r^j - 1|, so L = mean_j |r^j - 1| and for r > 1
    # dL/da = mean_j j r^(j-1) / a*: step j contributes through all j applications of the model.
    a = 1.05
    model = Scale(a)
    loss = rollout_loss(model, u0, targets)
    loss.backward()
    r = a / true_a
    assert float(loss.detach()) == pytest.approx(sum(r**j - 1 for j in range(1, steps + 1)) / steps, rel=1e-10)
    assert float(model.a.grad) == pytest.approx(sum(j * r ** (j - 1) for j in range(1, steps + 1)) / steps / true_a, rel=1e-10)


def test_rollout_weights_are_normalised():
    true_a, steps = 0.9, 3
    u0, targets = _trajectory(true_a, steps)
    model = Scale(1.0)
    r = 1.0 / true_a
    calls = []

    def counted(u):
        calls.append(u)
        return model(u)

    with torch.no_grad():
        last_only = rollout_loss(model, u0, targets, weights=[0, 0, 2])
        weighted = rollout_loss(counted, u0, targets, weights=[1.0, 3.0, 0.0])
    assert len(calls) == 2  # a trailing zero weight skips the last model call
    assert float(last_only) == pytest.approx(r**3 - 1, rel=1e-10)
    assert float(weighted) == pytest.approx(((r - 1) + 3 * (r**2 - 1)) / 4, rel=1e-10)


def test_rollout_rejects_bad_targets_and_weights():
    u0, targets = _trajectory(0.9, 2)
    model = Scale(1.0)
    with pytest.raises(DataError, match=r"targets must be \(batch, k, \*initial.shape\[1:\]\) for initial \(3, 2, 16\), got \(3, 2, 2, 8\)"):
        rollout_loss(model, u0, targets[..., :8])
    with pytest.raises(ConfigError, match=r"weights must have one entry per step \(2\), got 3"):
        rollout_loss(model, u0, targets, weights=[1, 1, 1])
    with pytest.raises(ConfigError, match=r"weights must be finite, non-negative and not all zero, got \[1.0, -1.0\]"):
        rollout_loss(model, u0, targets, weights=[1, -1])
    with pytest.raises(ConfigError, match=r"weights must be finite, non-negative and not all zero, got \[0.0, 0.0\]"):
        rollout_loss(model, u0, targets, weights=[0, 0])
