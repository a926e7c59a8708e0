"""Regression + residual diffusion (CorrDiff) through CoarseConditionedDenoiser(mean_model=...): on a synthetic 1-D
problem whose conditional mean and residual distribution are known, the residual samples have the residual's std and
the ensemble mean is as good as the mean model; save/load, zero-shot grids and bad input."""

import math

import pytest
import torch
from torch import nn

from sciml import ConfigError, Grid
from sciml.diffusion import (
    CoarseConditionedDenoiser,
    DiffusionTask,
    EDMLoss,
    FieldNetConfig,
    GaussianRandomField,
    LowModes,
    conditional_sample,
)
from sciml.spectral import spectral_resample
from sciml.train import TrainConfig, fit, seed_everything

N, COARSE = 64, 8
DOMAIN = Grid.box(N)
RESIDUAL_STD = 0.1


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _low(fields: torch.Tensor) -> torch.Tensor:
    """The modes |k| < COARSE / 2 of ``fields`` on their own grid."""
    return spectral_resample(spectral_resample(fields, (COARSE,)), tuple(fields.shape[2:]))


class TrueMean(nn.Module):
    """The exact conditional mean of the synthetic data: ``u + 8 high(u^2)`` from the interpolated coarse ``u``."""

    def forward(self, lifted: torch.Tensor) -> torch.Tensor:
        square = lifted**2
        return lifted + 8.0 * (square - _low(square))


def _data(n: int, seed: int, grid: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fine, mean)``: fine = u + 8 high(u^2) + r, u the low modes of a GRF, r a high-pass GRF of std 0.1 (independent
    of u, so E[fine | low modes] = mean exactly and the residual's std is RESIDUAL_STD)."""
    g = torch.Generator().manual_seed(seed)
    box = Grid.box(grid)
    u = GaussianRandomField(alpha=2.0, tau=3.0, band_limit=3).sample(box, n, generator=g).view(n, 1, grid)
    u = u / 0.35  # pointwise std ~1.8; 8 high(u^2) then has std ~0.3
    r = GaussianRandomField(alpha=1.0, tau=8.0, band_limit=31).sample(box, n, generator=g).view(n, 1, grid)
    r = r - _low(r)
    r = r * (RESIDUAL_STD / float(r.std()))
    mean = TrueMean()(_low(u))
    return mean + r, mean


def _model(**options) -> CoarseConditionedDenoiser:
    defaults = {"domain": DOMAIN, "noise": GaussianRandomField(alpha=1.0, tau=8.0, band_limit=31), "coarse": COARSE,
                    "sigma_data": RESIDUAL_STD, "condition_scale": 1.0,
                    "network": FieldNetConfig(n_modes=(32,), hidden_channels=24, n_layers=3, embedding_channels=32),
                    "mean_model": TrueMean()}
    defaults.update(options)
    return CoarseConditionedDenoiser(**defaults)


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fine, _ = _data(1024, seed=0)
        seed_everything(0)
        model = _model()
        task = DiffusionTask(model, objective=EDMLoss(), ema_decay=0.95)
        fit(task, (fine,), config=TrainConfig(epochs=16, batch_size=64, lr=3e-3, device="cpu", progress=False,
                                              seed=0))
        return task.ema.module.eval()
    finally:
        torch.set_num_threads(threads)


def test_scales_with_a_mean_model_measure_the_residual():
    fine, _mean = _data(256, seed=3)
    scales = CoarseConditionedDenoiser.scales(fine, COARSE, mean_model=TrueMean())
    assert math.isclose(scales["sigma_data"], RESIDUAL_STD, rel_tol=1e-5)  # fine - mu(c) is exactly r
    plain = CoarseConditionedDenoiser.scales(fine, COARSE)
    assert plain["sigma_data"] > 2 * RESIDUAL_STD  # without the regression the residual holds 8 high(u^2) (std ~0.3) too


def test_the_condition_is_the_mean_models_prediction_and_the_mean_model_is_frozen():
    model = _model()
    fine, mean = _data(4, seed=5)
    assert torch.allclose(model.condition_of(fine), mean, atol=1e-5)
    coarse = spectral_resample(fine, (COARSE,))
    assert torch.allclose(model.lift(coarse, (N,)), mean, atol=1e-5)
    users = nn.Conv1d(1, 1, 1).train()
    net = _model(mean_model=users)
    assert all(not p.requires_grad for p in net.mean_model.parameters())
    assert net.train().mean_model.training is False
    assert all(p.requires_grad for p in net.net.parameters())
    # the denoiser freezes a copy: the caller's module stays trainable and in its mode, and is not shared
    assert users.training and all(p.requires_grad for p in users.parameters())
    assert net.mean_model is not users
    assert torch.equal(net.mean_model.weight, users.weight)


def test_residual_samples_have_the_residual_std_and_the_ensemble_mean_is_as_good_as_the_mean(trained):
    # 16 held-out cases x 16 members, Heun 16 steps. The sample residual (member - mu(c)) must have the known pointwise
    # std 0.1 within 20% (a 256-step training; measured 0.109; with 8 Heun steps 0.127, the sampler's discretisation
    # error), a mean ~0 (|mean| < 0.2 std) and the ensemble mean's relative L2
    # error at most the mean model's x sqrt(1 + 1/M) x 1.05 (M members of independent residuals add |r|^2 / M).
    fine, mean = _data(16, seed=11)
    members = 16
    coarse = spectral_resample(fine, (COARSE,))
    ensemble = conditional_sample(trained, DOMAIN, LowModes(coarse), members, steps=16,
                                  generator=torch.Generator().manual_seed(1))
    residual = ensemble - mean[:, None]
    std = float(residual.std())
    assert abs(std - RESIDUAL_STD) < 0.2 * RESIDUAL_STD, std
    assert abs(float(residual.mean())) < 0.2 * RESIDUAL_STD
    error_mean_model = float(((mean - fine).norm(dim=-1) / fine.norm(dim=-1)).mean())
    error_ensemble = float(((ensemble.mean(1) - fine).norm(dim=-1) / fine.norm(dim=-1)).mean())
    assert error_ensemble <= error_mean_model * math.sqrt(1 + 1 / members) * 1.05, (error_ensemble, error_mean_model)


def test_zero_shot_on_a_finer_grid_and_save_load_round_trip(trained):
    fine, mean = _data(2, seed=13, grid=2 * N)  # the same box at 128 points: the residual there has std ~0.1 too
    coarse = spectral_resample(fine, (COARSE,))
    ensemble = conditional_sample(trained, Grid.box(2 * N), LowModes(coarse), 8, steps=16,
                                  generator=torch.Generator().manual_seed(2))
    assert ensemble.shape == (2, 8, 1, 2 * N)
    assert 0.5 * RESIDUAL_STD < float((ensemble - mean[:, None]).std()) < 1.5 * RESIDUAL_STD
    copy = _model()
    copy.load_state_dict(trained.state_dict())
    x = torch.randn(3, 1, N, generator=torch.Generator().manual_seed(0))
    condition = copy.lift(spectral_resample(x, (COARSE,)), (N,))
    assert torch.equal(copy.eval()(x, 0.5, condition), trained(x, 0.5, condition))


def test_bad_mean_models_are_one_line_errors():
    from sciml.surrogate import NormalizedOperator, Surrogate

    def surrogate(lengths, inputs=("coarse",), outputs=("u",)):
        grid = Grid.box(N, lengths=lengths)
        return Surrogate(module=NormalizedOperator(nn.Conv1d(len(inputs), len(outputs), 1), len(inputs),
                                                   len(outputs)), inputs=list(inputs), outputs=list(outputs),
                         grid=grid, units={}, model="fno", model_options={})

    with pytest.raises(ConfigError, match="domains must agree"):
        _model(mean_model=surrogate((2.0,)))
    with pytest.raises(ConfigError, match="must map"):
        _model(mean_model=surrogate((1.0,), inputs=("a", "b")))
    with pytest.raises(ConfigError, match="Surrogate or a torch nn.Module"):
        _model(mean_model=lambda x: x)
    users = surrogate((1.0,))
    model = _model(mean_model=users)  # the same box: accepted, a copy of its module frozen
    assert all(not p.requires_grad for p in model.mean_model.parameters())
    assert all(p.requires_grad for p in users.module.parameters())  # the caller's Surrogate is unchanged
    wrong = _model(mean_model=nn.Conv1d(1, 2, 1))  # maps 1 channel to 2
    with pytest.raises(ConfigError, match="same shape"):
        wrong.lift(torch.zeros(1, 1, COARSE), (N,))
