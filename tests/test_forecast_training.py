"""The forecaster's training recipe: one-step pretraining, then rollout fine-tuning, through the one loop."""

import numpy as np
import pytest
import torch

from sciml import ConfigError, Grid
from sciml.forecast import RolloutTask, fit_forecaster, forecast
from sciml.train import TrainConfig


def test_rollout_task_loss_is_the_mean_relative_error_over_the_leads_with_gradients_through_the_rollout():
    grid = Grid.box(8, 8)
    scale = torch.nn.Parameter(torch.tensor(0.5))
    module = torch.nn.Module()
    module.scale = scale

    def model(x):
        return scale * x

    x0 = torch.randn(3, 1, 2, 8, 8)  # (batch, history 1, channel, y, x)
    future = torch.stack([x0[:, 0], x0[:, 0]], dim=1)  # the truth: persistence over two leads
    task = RolloutTask(module, grid=grid, steps=2, loss="rel_l2")
    loss = task.loss(model, (x0, future))
    # lead 1: |0.5 - 1| = 0.5; lead 2: |0.25 - 1| = 0.75 (relative errors of a scaled field)
    assert float(loss.detach()) == pytest.approx(0.625, rel=1e-5)
    loss.backward()
    # d/ds of (|s - 1| + |s^2 - 1|) / 2 at s = 0.5 is (-1 - 2 s) / 2 = -1: the second lead's gradient flows through the first
    assert float(scale.grad) == pytest.approx(-1.0, rel=1e-5)
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        RolloutTask(module, grid=grid, steps=0, loss="rel_l2")
    with pytest.raises(ConfigError, match="needs a module with an output_norm"):
        RolloutTask(module, grid=grid, steps=1)


def test_the_anomaly_loss_weighs_a_variable_by_its_departure_from_the_training_mean():
    from sciml.surrogate import NormalizedOperator

    grid = Grid.box(8, 8)
    module = NormalizedOperator(torch.nn.Identity(), 1, 1)
    for norm in (module.input_norm, module.output_norm):  # the identity map on a depth of ~1000 m with small waves
        norm.set([1000.0], [1.0])
    waves = torch.randn(4, 1, 1, 8, 8)  # (batch, history 1, channel, y, x)
    x0, truth = 1000.0 + waves, 1000.0 + 2 * waves  # persistence errs by the waves themselves
    anomaly = RolloutTask(module, grid=grid, steps=1).loss(module, (x0, truth))
    plain = RolloutTask(module, grid=grid, steps=1, loss="rel_l2").loss(module, (x0, truth))
    assert float(anomaly) == pytest.approx(0.5, rel=1e-4)  # ||w|| / ||2 w||
    assert float(plain) < 2e-3  # the mean hides the whole error


@pytest.fixture(scope="module")
def trajectories():
    from sciml.datasets.ns2d import generate

    return generate(8, 16, seed=0, times=[0.0, 0.5, 1.0, 1.5, 2.0], progress=False)


def test_fit_forecaster_pretrains_then_fine_tunes_each_stage_and_records_them(trajectories, tmp_path):
    config = TrainConfig(epochs=2, batch_size=8, lr=3e-3, device="cpu", progress=False)
    surrogate, histories = fit_forecaster(trajectories, variables=["vorticity"], model="fno", pretrain=config,
                                          model_options={"hidden_channels": 8, "n_modes": [6, 6], "n_layers": 2},
                                          curriculum=(2, 3), log_dir=tmp_path)
    assert sorted(histories) == [1, 2, 3]
    assert [len(histories[k]) for k in (1, 2, 3)] == [2, 1, 1]  # fine-tuning: a quarter of the epochs, at least 1
    record = surrogate.provenance["forecast_training"]
    assert record["curriculum"] == [2, 3] and record["finetune_config"]["lr"] == pytest.approx(3e-3 / 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["steps_1.jsonl", "steps_2.jsonl", "steps_3.jsonl"]
    assert surrogate.lead_time == pytest.approx(0.5)
    out = forecast(surrogate, trajectories.isel(sample=[0], time=0), steps=4, progress=False)
    assert out["vorticity"].shape == (1, 4, 16, 16) and np.isfinite(out["vorticity"].values).all()
    for bad in ((1,), (3, 2), (2, 2)):
        with pytest.raises(ConfigError, match="curriculum"):
            fit_forecaster(trajectories, variables=["vorticity"], curriculum=bad)
