"""Probes, conformal intervals, label efficiency and the supervised baseline of sciml.jepa; a small Burgers run."""

import math
import warnings

import numpy as np
import pytest
import torch

from sciml.errors import DataError
from sciml.jepa import (EncoderConfig, MLPProbe, PretrainConfig, RidgeProbe, burgers_dataset, conformal_quantile, embed,
                        label_efficiency, pretrain, supervised_baseline)
from sciml.jepa.discovery import prepare
from sciml.jepa.probes import relative_error
from sciml.train import TrainConfig


def test_the_ridge_probe_recovers_a_known_linear_map():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2, 3, 0.5, 1, 4])
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0], [2.0, 1.0], [-1.0, 0.0], [0.25, 0.5]], dtype=torch.float64)
    y = x @ w + torch.tensor([0.3, -1.0], dtype=torch.float64)
    probe = RidgeProbe.fit(x, y)
    assert probe.alpha == pytest.approx(1e-6)  # no noise: the smallest penalty (of 10^-6 .. 10^6) has the smallest LOO
    new = torch.randn(50, 6, generator=g, dtype=torch.float64)
    expected = new @ w + torch.tensor([0.3, -1.0], dtype=torch.float64)
    assert torch.allclose(probe.predict(new), expected, atol=1e-4)
    # With noise, the leave-one-out error is the exact one: refitting without row i predicts row i with it.
    noisy = y + 0.5 * torch.randn(y.shape, generator=g, dtype=torch.float64)
    fitted = RidgeProbe.fit(x, noisy, alphas=[3.0])
    errors = []
    for i in range(20):
        keep = torch.arange(200) != i
        errors.append((RidgeProbe.fit(x[keep], noisy[keep], alphas=[3.0 * 199 / 200]).predict(x[i:i + 1])
                       - noisy[i]).pow(2).mean().item())
    assert fitted.loo_mse == pytest.approx(np.mean(errors), rel=0.3)  # 20 of 200 rows; standardisation refit


def test_near_constant_noise_features_do_not_degrade_the_ridge_probe():
    # An informative rank-3 set of 8 features (scale ~1) and 48 near-constant dims of pure noise (std 1e-4), as
    # collapsed embedding dimensions are; y = z @ w + noise of std 0.1, 64 fitting rows. Without the noise dims
    # the test MSE is ~sigma^2 (1 + 3/64) = 0.0105. One global scale keeps the noise dims negligible; each
    # feature standardised by its own std makes them as large as the informative ones, and 56 dims on 64 rows
    # overfit (least squares would give sigma^2 (1 + 56/7) = 0.09; leave-one-out ridge measured 0.046).
    g = torch.Generator().manual_seed(4)
    mix = torch.randn(3, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def make(m):
        z = torch.randn(m, 3, generator=g, dtype=torch.float64)
        y = z @ torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64) + 0.1 * torch.randn(m, generator=g,
                                                                                          dtype=torch.float64)
        return z @ mix, 1e-4 * torch.randn(m, 48, generator=g, dtype=torch.float64), y

    informative, noise, y = make(64)
    test_informative, test_noise, test_y = make(512)
    x, test_x = torch.cat([informative, noise], 1), torch.cat([test_informative, test_noise], 1)
    clean = (RidgeProbe.fit(informative, y).predict(test_informative)[:, 0] - test_y).pow(2).mean().item()
    probe = RidgeProbe.fit(x, y)
    noisy = (probe.predict(test_x)[:, 0] - test_y).pow(2).mean().item()
    mean, std = x.mean(0), x.std(0)  # standardising each feature first: all have unit variance, the global scale is 1
    per_feature = (RidgeProbe.fit((x - mean) / std, y).predict((test_x - mean) / std)[:, 0] - test_y).pow(2).mean().item()
    assert 0.008 < clean < 0.0125, clean  # ~sigma^2 (1 + 3/64)
    assert noisy < 1.05 * clean, (noisy, clean)
    assert per_feature > 3 * clean, (per_feature, clean)
    # The state: the one scale repeated per feature, sqrt(mean unbiased variance); predict applies it.
    assert torch.allclose(probe.x_std, x.var(0).mean().sqrt().expand(56))
    assert torch.allclose(probe.predict(x[:4]), (x[:4] - probe.x_mean) / probe.x_std @ probe.weight + probe.bias)
    # A probe holding per-feature stds (as saved before the change) still predicts with them.
    old = RidgeProbe(probe.weight, probe.bias, probe.x_mean, std, probe.alpha, probe.loo_mse)
    assert torch.allclose(old.predict(x[:4]), (x[:4] - mean) / std @ probe.weight + probe.bias)
    # The chosen penalties lie inside the default grid (10^-6 .. 10^6), not at its large end.
    assert probe.alpha < 1e6 and RidgeProbe.fit(x, torch.randn(64, generator=g, dtype=torch.float64)).alpha == 1e6


def test_probe_batches_are_divisible_by_the_world_size(monkeypatch):
    from sciml.jepa.probes import _batch, _world_size
    from sciml.train.distributed import local_batch_size

    assert _batch(64, 256, 1) == 64 and _batch(64, 16, 1) == 16 and _batch(32, 65, 1) == 31  # no last batch of 1
    assert _batch(64, 100, 3) == 63 and _batch(64, 10, 4) == 8 and _batch(64, 2, 4) == 4 and _batch(32, 33, 2) == 30
    for world in (1, 2, 3, 4, 8):
        for n in range(1, 150):
            b = _batch(64, n, world)
            assert local_batch_size(b, world) == b // world and b <= max(world, min(64, n))
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert _world_size() == 3
    monkeypatch.delenv("WORLD_SIZE")
    assert _world_size() == 1


def test_conformal_quantile_hand_worked_and_coverage_on_synthetic_data():
    residuals = torch.arange(1.0, 10.0)[:, None]  # m = 9
    assert float(conformal_quantile(residuals, level=0.9)[0]) == 9.0  # ceil(10 * 0.9) = 9th smallest
    assert float(conformal_quantile(residuals, level=0.5)[0]) == 5.0  # ceil(5) = 5th
    assert math.isinf(float(conformal_quantile(residuals, level=0.95)[0]))  # ceil(9.5) = 10 > 9
    # Marginal coverage over repeated calibration draws: >= 0.9 and <= 0.9 + 1 / (m + 1) in expectation.
    g = torch.Generator().manual_seed(1)
    covered = []
    for _ in range(40):
        x = torch.randn(300, 3, generator=g, dtype=torch.float64)
        y = x @ torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64) + torch.randn(300, generator=g, dtype=torch.float64)
        probe = RidgeProbe.fit(x[:100], y[:100])
        width = conformal_quantile(probe.predict(x[100:150])[:, 0] - y[100:150], level=0.9)
        covered.append(float(((probe.predict(x[150:])[:, 0] - y[150:]).abs() <= width).double().mean()))
    assert 0.88 <= np.mean(covered) <= 0.94


def test_the_mlp_probe_fits_a_map_the_linear_one_cannot():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(256, 2, generator=g, dtype=torch.float64) * 2 - 1
    y = x[:, :1] ** 2 + 0.5 * x[:, 1:]
    test = torch.rand(128, 2, generator=g, dtype=torch.float64) * 2 - 1
    truth = test[:, :1] ** 2 + 0.5 * test[:, 1:]
    mlp_error = (MLPProbe.fit(x, y, epochs=150, seed=0).predict(test) - truth).pow(2).mean()
    ridge_error = (RidgeProbe.fit(x, y).predict(test) - truth).pow(2).mean()
    assert ridge_error > 0.08  # the variance of x0^2 on [-1, 1] is 4/45 = 0.089
    assert mlp_error < 0.2 * ridge_error


def test_label_efficiency_says_which_budgets_it_left_out():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    c = torch.exp(x @ torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64) - 3)
    curve = label_efficiency(x, c, x, c, budgets=(16, 64))
    assert curve["budgets"] == [16] and "above 40" in curve["note"]
    assert curve["relative_error"][0] < 1e-3  # an exact linear map of the log-coefficient
    assert relative_error(torch.log(torch.tensor([[2.0]])), torch.tensor([[1.0]])) == pytest.approx(1.0)
    with pytest.raises(DataError):
        RidgeProbe.fit(x[:2], c[:2])


@pytest.fixture(scope="module")
def burgers():
    kw = dict(viscosity_range=(1e-2, 1e-1), solve_resolution=256, progress=False)
    pool = burgers_dataset(48, 64, seed=0, trajectories_per_group=2, **kw)
    test = burgers_dataset(32, 64, seed=1, **kw)
    return pool, test


def test_a_small_pretraining_run_gives_features_that_beat_the_mean(burgers):
    # 96 unlabelled trajectories, 6 epochs of 3 steps of VICReg: the linear probe on 64 labels must have at most
    # half the relative error of predicting the mean log-viscosity (measured: ~0.15 against ~0.45).
    pool, test = burgers
    config = PretrainConfig(size_t=16, size_x=32, pairs="group", seed=0,
                            encoder=EncoderConfig(widths=(8, 16, 32), embedding_dim=32, projector_dim=64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no collapse warning
        model, history = pretrain(pool, config=config,
                                  train=TrainConfig(epochs=6, batch_size=32, lr=2e-3, device="cpu", progress=False))
    assert len(history) == 6 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_embedding_rank"] > 2
    _, x = prepare(model, pool)
    _, x_test = prepare(model, test)
    features, test_features = embed(model, x), embed(model, x_test)
    nu, nu_test = pool["viscosity"].values, test["viscosity"].values
    curve = label_efficiency(features, nu, test_features, nu_test, budgets=(64,))
    mean = float(np.mean(np.abs(np.exp(np.log(nu).mean()) - nu_test) / nu_test))
    assert curve["relative_error"][0] < 0.5 * mean, (curve, mean)
    # The supervised baseline takes the steps asked for (64 labels in batches of 32: 2 a step, 9 epochs).
    regressor, steps = supervised_baseline(x[:64], torch.from_numpy(nu[:64]), encoder=model.config, spec=model.spec,
                                           times=torch.tensor(pool["time"].values), steps=18, batch_size=32)
    assert steps == 18
    assert regressor.predict(x_test).shape == (32, 1)
