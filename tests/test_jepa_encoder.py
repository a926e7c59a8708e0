"""Encoder, VICReg / JEPA objectives and collapse monitors of sciml.jepa: hand-worked values, EMA, exact resume."""

import math
import warnings

import pytest
import torch

from sciml.errors import ConfigError
from sciml.jepa import (EncoderConfig, JEPAModel, JEPATask, TrajectoryPairs, VICRegTask, check_collapse,
                        effective_rank, embedding_std, vicreg_loss)
from sciml.train import TrainConfig, fit

TINY = EncoderConfig(widths=(4, 8), groups=2, embedding_dim=8, projector_dim=16)


def test_vicreg_terms_match_hand_worked_values():
    # Variance: columns with std >= 1 cost nothing; a column of std s < 1 costs 1 - sqrt(s^2 + eps).
    wide = torch.tensor([[2.0, -3.0], [-2.0, 3.0], [2.0, 3.0], [-2.0, -3.0]])  # column stds 2.31, 3.46
    loss, terms = vicreg_loss(wide, wide)
    assert terms["invariance"] == 0 and terms["variance"] == 0
    narrow = 0.1 * wide  # unbiased variances 16/3 * 0.01 = 0.0533 and 12 * 0.01 = 0.12
    _, terms = vicreg_loss(narrow, narrow)
    expected = 2 * (1 - math.sqrt(0.16 / 3 + 1e-4) + 1 - math.sqrt(0.12 + 1e-4)) / 2
    assert float(terms["variance"]) == pytest.approx(expected, rel=1e-6)
    # Covariance of Z = [[1, 1], [-1, -1], [1, 1], [-1, -1]]: C = [[4/3, 4/3], [4/3, 4/3]], off-diagonal squares
    # sum to 2 (16/9), divided by d = 2: 16/9 per branch.
    z = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    _, terms = vicreg_loss(z, z)
    assert float(terms["covariance"]) == pytest.approx(2 * 16 / 9, rel=1e-6)
    # Invariance: the mean squared difference; the total weighs the three terms 25 / 25 / 1.
    shifted = wide + 0.5
    loss, terms = vicreg_loss(wide, shifted)
    assert float(terms["invariance"]) == pytest.approx(0.25, rel=1e-6)
    assert float(loss) == pytest.approx(25 * 0.25 + 25 * float(terms["variance"]) + float(terms["covariance"]))
    with pytest.raises(ConfigError):
        vicreg_loss(wide[:1], wide[:1])


def test_effective_rank_of_known_spectra():
    assert float(effective_rank(torch.eye(8, dtype=torch.float64))) == pytest.approx(8, rel=1e-9)
    u, v = torch.randn(50, 1, dtype=torch.float64), torch.randn(1, 16, dtype=torch.float64)
    assert float(effective_rank(u @ v)) == pytest.approx(1, abs=1e-6)
    # Two equal singular values and two zero: exp(log 2) = 2; singular values (3, 1): exp(H(3/4, 1/4)).
    assert float(effective_rank(torch.diag(torch.tensor([2.0, 2.0, 0.0, 0.0], dtype=torch.float64)))) == pytest.approx(2)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert float(effective_rank(torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64)))) == pytest.approx(
        math.exp(entropy))
    assert torch.allclose(embedding_std(torch.tensor([[0.0, 1.0], [2.0, 1.0]])), torch.tensor([math.sqrt(2), 0.0]))


def test_a_collapsed_embedding_is_detected_and_said():
    generator = torch.Generator().manual_seed(0)
    healthy = torch.randn(64, 16, generator=generator)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_collapse(healthy)["collapsed"] == 0.0
    constant = torch.ones(64, 16) + 1e-6 * torch.randn(64, 16, generator=generator)
    with pytest.warns(UserWarning, match=r"collapsed: effective rank 1 of 16 dims"):
        report = check_collapse(constant)
    assert report["collapsed"] == 1.0 and report["effective_rank"] < 1.01
    rank_one = torch.randn(64, 1, generator=generator) * torch.randn(1, 16, generator=generator)
    with pytest.warns(UserWarning, match="collapsed"):
        check_collapse(rank_one)


def test_the_encoder_reads_1d_and_2d_windows_and_pools_globally():
    torch.manual_seed(0)
    model = JEPAModel(TINY, scale=2.0)
    x = torch.randn(3, 16, 1, 32)
    h, z = model(x)
    assert h.shape == (3, 8) and z.shape == (3, 8)
    assert torch.allclose(model.represent(x), model.encoder(x / 2), atol=1e-6)  # the fixed input scale
    assert model(torch.randn(3, 8, 1, 48))[0].shape == (3, 8)  # any window size
    # Each sample's representation depends on it alone (group norm, no batch statistics).
    assert torch.allclose(model.represent(x[:1]), model.represent(x)[:1], atol=1e-6)
    cube = JEPAModel(EncoderConfig(space_dims=2, widths=(4, 8), groups=2, embedding_dim=8, projector_dim=16))
    assert cube(torch.randn(2, 8, 1, 16, 16))[0].shape == (2, 8)
    rebuilt = JEPAModel.from_manifest(model.manifest())
    assert rebuilt.config == model.config
    with pytest.raises(ConfigError):
        EncoderConfig(widths=(5, 8), groups=2)


def test_the_default_encoder_is_blind_to_amplitude_and_the_plain_stem_is_not():
    # A bias-free convolution followed by group norm is invariant to u -> a u (a > 0): with the default
    # group-normalised stem the whole encoder ignores a window's amplitude; stem_norm=False keeps it.
    torch.manual_seed(0)
    x = torch.randn(4, 12, 1, 16)
    blind = JEPAModel(TINY)
    assert blind.config.stem_norm is True
    h = blind.represent(x).detach()
    assert torch.allclose(blind.represent(3 * x).detach(), h, atol=1e-4 * float(h.abs().max()))
    seeing = JEPAModel(EncoderConfig(widths=(4, 8), groups=2, embedding_dim=8, projector_dim=16, stem_norm=False))
    h, h3 = seeing.represent(x).detach(), seeing.represent(3 * x).detach()
    assert float((h3 - h).norm() / h.norm()) > 0.05
    # A manifest saved before the option existed (no "stem_norm") rebuilds the normalised stem and loads its weights.
    old = blind.manifest()
    del old["config"]["stem_norm"]
    rebuilt = JEPAModel.from_manifest(old)
    assert rebuilt.config.stem_norm is True
    rebuilt.load_state_dict(blind.state_dict())
    assert torch.equal(rebuilt.represent(x), blind.represent(x))
    plain = JEPAModel.from_manifest(seeing.manifest())
    plain.load_state_dict(seeing.state_dict())
    assert plain.config.stem_norm is False
    with pytest.raises(ConfigError):
        EncoderConfig(stem_norm="yes")


def _trajectories(n=12, frames=12, points=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(points)
    modes = torch.randn(n, 1, 1, 3, generator=g)
    x = 2 * math.pi * k / points
    base = sum(modes[..., j, None] * torch.sin((j + 1) * x + j) for j in range(3))  # (n, 1, 1, points)
    decay = torch.exp(-torch.linspace(0, 1, frames))[None, :, None, None]
    return (base * decay).float()  # (n, frames, 1, points)


def _task(kind, seed=0, **options):
    torch.manual_seed(seed)
    model = JEPAModel(TINY, spec={"size_t": 6, "size_x": [8]})
    common = dict(times=torch.linspace(0, 1, 12, dtype=torch.float64), size_t=6, size_x=8, max_boost=0.3, seed=3)
    return VICRegTask(model, **common) if kind == "vicreg" else JEPATask(model, ema_decay=0.9, **common)


def test_the_ema_target_moves_by_one_minus_decay_and_gets_no_gradient():
    task = _task("jepa")
    online = task.model.encoder.stem[0].weight
    with torch.no_grad():
        online.add_(1.0)
    task.after_step(task.model, 1)  # the first update copies the online weights
    target = task.target.module.encoder.stem[0].weight
    assert torch.equal(target, online)
    before = target.clone()
    with torch.no_grad():
        online.add_(1.0)
    task.after_step(task.model, 2)
    assert torch.allclose(target, 0.9 * before + 0.1 * online, atol=1e-6)
    trajectories = _trajectories()
    loss, logs = task.loss(task.model, (trajectories[:4], trajectories[4:8]))
    loss.backward()
    assert task.model.predictor[0].weight.grad is not None and online.grad is not None
    assert all(p.grad is None for p in task.target.parameters())  # stop-gradient
    assert set(logs) == {"prediction", "embedding_std", "embedding_std_min", "embedding_rank", "representation_rank"}


def test_the_views_come_from_the_task_generator_only():
    task = _task("vicreg")
    trajectories = _trajectories()
    state = task.generator.get_state()
    torch.manual_seed(1)
    a = task.views((trajectories[:4], trajectories[:4]), task.generator)
    task.generator.set_state(state)
    torch.manual_seed(2)
    b = task.views((trajectories[:4], trajectories[:4]), task.generator)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (4, 6, 1, 8) and not torch.equal(a[0], a[1])
    # 2-D: grid symmetries (quarter turns, reflections, whole-cell shifts) permute the values, up to the sign a
    # reflection gives the vorticity (a pseudo-scalar).
    cube = torch.randn(3, 10, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    task.size_x = 16
    first, _ = task.views((cube, cube), task.generator)
    assert first.shape == (3, 6, 1, 16, 16)
    for i in range(3):
        t0 = int(torch.nonzero((cube[i, :, 0].abs().flatten(1).sort().values
                                - first[i, 0, 0].abs().flatten().sort().values).abs().amax(1) < 1e-6)[0])
        assert torch.allclose(cube[i, t0:t0 + 6].abs().flatten(1).sort().values,
                              first[i].abs().flatten(1).sort().values, atol=1e-6)


class _Crash(Exception):
    pass


@pytest.mark.parametrize("kind", ["vicreg", "jepa"])
def test_a_killed_and_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path, kind):
    # 12 items in batches of 4 with partners from groups of 2: 3 steps an epoch, 2 epochs, checkpoints every 2 steps.
    trajectories = _trajectories()
    groups = torch.arange(12) // 2
    config = TrainConfig(epochs=2, batch_size=4, lr=3e-3, device="cpu", progress=False, checkpoint_every=2)

    def data():
        return TrajectoryPairs(trajectories, groups=groups, seed=5)

    straight = _task(kind)
    history = fit(straight, data(), val_data=(trajectories[:4], trajectories[4:8]), config=config)
    crashing = _task(kind)
    loss, steps = crashing.loss, []

    def loss_then_crash(model, batch):
        steps.append(1)
        if len(steps) == 5:
            raise _Crash
        return loss(model, batch)

    crashing.loss = loss_then_crash
    with pytest.raises(_Crash):
        fit(crashing, data(), val_data=(trajectories[:4], trajectories[4:8]), config=config, checkpoint_dir=tmp_path)
    torch.manual_seed(99)
    resumed = _task(kind, seed=7)
    again = fit(resumed, data(), val_data=(trajectories[:4], trajectories[4:8]), config=config,
                checkpoint_dir=tmp_path, resume=True)
    strip = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in history]
    assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in again] == strip
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert torch.equal(resumed.generator.get_state(), straight.generator.get_state())
    if kind == "jepa":
        for key, value in straight.target.state_dict().items():
            assert torch.equal(resumed.target.state_dict()[key], value), key
    assert "train_embedding_rank" in history[-1] and "val_embedding_std" in history[-1]
