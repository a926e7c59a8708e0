"""The training loop: exact resume after a crash or SIGKILL, DDP equals single-process, checkpoints, options,
and the task seam (logged values, parameter groups, after-step hooks, task state, best state of an EMA)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from sciml import ConfigError, DataError
from sciml.train import Task, TrainConfig, fit, read_checkpoint
from sciml.train.batches import GlobalBatches

import _train_script

SCRIPT = Path(__file__).with_name("_train_script.py")


def _data(n: int = 37, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))
    return x, torch.sin(x[:, :2]).sum(dim=1, keepdim=True)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))


def _noisy_mse(net: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return (net(x + 0.01 * torch.randn_like(x)) - y).pow(2).mean()  # draws from the global RNG, as diffusion does


class LossTask(Task):
    """A task from a loss function ``loss_fn(model, batch)``."""

    def __init__(self, model, loss_fn=_noisy_mse):
        super().__init__(model)
        self.loss_fn = loss_fn

    def loss(self, model, batch):
        return self.loss_fn(model, batch)


def _fit(model, loss_fn, data, **options):
    return fit(LossTask(model, loss_fn), data, **options)


def _config(**options) -> TrainConfig:
    return TrainConfig(**{"epochs": 3, "batch_size": 8, "lr": 1e-2, "device": "cpu", "progress": False, **options})


def _without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "elapsed_s"} for record in history]


def _assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_global_batches_are_split_across_ranks_and_depend_only_on_seed_and_epoch():
    single = GlobalBatches(10, 4, seed=3)
    ranks = [GlobalBatches(10, 4, seed=3, rank=r, world_size=2) for r in range(2)]
    for epoch in (0, 5):
        for sampler in (single, *ranks):
            sampler.set_epoch(epoch)
        batches = list(single)
        assert sorted(i for b in batches for i in b) == list(range(10))
        assert [len(b) for b in batches] == [4, 4, 2]
        shares = [list(r) for r in ranks]
        for k, batch in enumerate(batches):  # rank r takes the r-th contiguous half of each global batch
            half = -(-len(batch) // 2)
            assert shares[0][k] == batch[:half] and shares[1][k] == batch[half:]
    single.set_epoch(1)
    first = list(single)
    single.set_epoch(1, start=1)  # resuming mid-epoch skips the batches already done
    assert list(single) == first[1:]
    assert first != batches  # a new order each epoch
    odd = GlobalBatches(5, 4, seed=0, rank=1, world_size=2)
    odd.set_epoch(0)
    whole = GlobalBatches(5, 4, seed=0)
    whole.set_epoch(0)
    assert list(odd)[1] == list(whole)[1][:1]  # empty share of a 1-item last batch: a stand-in item (weight 0)
    assert odd.share(1) == 0 and odd.share(0) == 2 and whole.share(1) == 1


@pytest.mark.parametrize("crash_step", [7, 12])  # mid-epoch (after the step-6 checkpoint), and just after epoch 1 ended
def test_crashed_run_resumes_to_identical_parameters_and_history(tmp_path, crash_step):
    x, y = _data()
    val = _data(9, seed=2)
    reference = _model()
    expected = _fit(reference, _noisy_mse, (x, y), val_data=val, config=_config(checkpoint_every=3))

    steps = 0

    def crashing(net, batch):
        nonlocal steps
        steps += 1
        if steps == crash_step:
            raise KeyboardInterrupt
        return _noisy_mse(net, batch)

    config = _config(checkpoint_every=3)
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), crashing, (x, y), val_data=val, config=config, checkpoint_dir=tmp_path, log_path=tmp_path / "log.jsonl")
    torch.manual_seed(123)  # the resumed run must not depend on the RNG state it finds
    resumed = _model()
    history = _fit(resumed, _noisy_mse, (x, y), val_data=val, config=config, checkpoint_dir=tmp_path,
                   resume=True, log_path=tmp_path / "log.jsonl")
    assert _without_times(history) == _without_times(expected)
    _assert_same_params(resumed.state_dict(), reference.state_dict())
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert _without_times(logged) == _without_times(expected)  # each epoch once, though one was logged before the crash


@pytest.mark.slow
def test_sigkilled_run_with_noise_and_an_ema_resumes_to_the_uninterrupted_result(tmp_path):
    # The task draws noise every step from the global RNG and from its own generator, and keeps an EMA of the
    # weights: the checkpoint holds the RNG states and the task state, so the resumed run is bitwise the same.
    def run(*extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), "--stochastic", "--ema", "--task-noise",
                                 "--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-every", "3",
                                 "--log", str(tmp_path / "log.jsonl"), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    victim = run("--step-delay", "0.05")
    # The uninterrupted reference (no checkpoints) runs here, with the script's code, while the victim starts.
    _, reference, expected = _train_script.run(["--out", str(tmp_path / "unused"), "--stochastic", "--ema", "--task-noise"])
    deadline = time.monotonic() + 60
    while not (tmp_path / "ckpt" / "checkpoint.json").exists():
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()[0]
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert read_checkpoint(tmp_path / "ckpt")[0]["step"] < 30, "the run finished before it was killed"
    resumed = run("--resume")
    output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, output
    params = torch.load(tmp_path / "out" / "params.pt", weights_only=True)
    assert any(key.startswith("ema/") for key in params)
    _assert_same_params(params, _train_script.state(reference))
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history == expected and {"train_mae", "val_mae", "val_loss"} <= history[0].keys()
    assert _without_times([json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]) == history


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # 37 items in global batches of 4: the last batch has 1 item, so rank 1's share of it is empty.
    # The task keeps an EMA (after_step on every rank) and logs a second value (reduced over the ranks).
    common = ["--out", str(tmp_path / "ddp"), "--epochs", "2", "--batch-size", "4", "--ema"]
    ddp = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                            str(SCRIPT), *common, "--checkpoint-dir", str(tmp_path / "ckpt")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, single, h_single = _train_script.run(common)  # one process, here, while torchrun starts
    output = ddp.communicate(timeout=180)[0]
    assert ddp.returncode == 0, output
    h_ddp = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert len(h_ddp) == len(h_single) == 2
    for a, b in zip(h_ddp, h_single):
        assert a.keys() == b.keys() and a["lr"] == b["lr"]
        for key in ("train_loss", "train_mae", "val_loss", "val_mae"):  # validation: reduced over both ranks' halves
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    p_ddp = torch.load(tmp_path / "ddp" / "params.pt", weights_only=True)
    for key, value in _train_script.state(single).items():
        torch.testing.assert_close(p_ddp[key], value, rtol=1e-4, atol=1e-6)
    manifest, tensors = read_checkpoint(tmp_path / "ckpt")  # written by rank 0, with both ranks' RNG states
    assert manifest["world_size"] == 2 and {"rng/cpu/0", "rng/cpu/1"} <= tensors.keys()
    assert any(key.startswith("task/ema/") for key in tensors)


def test_checkpoint_is_tensors_and_json_and_a_finished_run_is_not_retrained(tmp_path):
    x, y = _data()
    model = _model()
    history = _fit(model, _noisy_mse, (x, y), val_data=_data(9, seed=2), config=_config(), checkpoint_dir=tmp_path)
    manifest = json.loads((tmp_path / "checkpoint.json").read_text())
    assert manifest["done"] and manifest["epoch"] == 3 and manifest["step"] == 15
    assert _without_times(manifest["history"]) == _without_times(history)
    assert manifest["config"]["batch_size"] == 8 and manifest["optimizer"]["param_groups"][0]["betas"] == [0.9, 0.999]
    tensors = torch.load(tmp_path / manifest["tensors"], weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    assert {"model/0.weight", "best/0.weight", "optimizer/0/exp_avg_sq", "rng/cpu/0", "loop/sums"} <= tensors.keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", manifest["tensors"]]  # old states removed
    again = _model()
    assert _fit(again, _noisy_mse, (x, y), config=_config(), val_data=_data(9, seed=2), checkpoint_dir=tmp_path,
               resume=True) == history
    _assert_same_params(again.state_dict(), model.state_dict())  # the best state, restored without training
    with pytest.raises(DataError, match="holds a checkpoint .* pass resume=True"):
        _fit(_model(), _noisy_mse, (x, y), config=_config(), checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"lr=0.01 \(now 0.02\)"):
        _fit(_model(), _noisy_mse, (x, y), config=_config(lr=2e-2), checkpoint_dir=tmp_path, resume=True)


def test_resume_without_a_checkpoint_starts_afresh(tmp_path):
    x, y = _data()
    fresh, resumed = _model(), _model()
    expected = _fit(fresh, _noisy_mse, (x, y), config=_config())
    _model()  # same global RNG state at the start of both runs
    history = _fit(resumed, _noisy_mse, (x, y), config=_config(), checkpoint_dir=tmp_path / "new", resume=True)
    assert _without_times(history) == _without_times(expected)
    _assert_same_params(resumed.state_dict(), fresh.state_dict())


def test_corrupt_or_mismatched_checkpoints_raise_data_errors(tmp_path):
    x, y = _data()
    _fit(_model(), _noisy_mse, (x, y), config=_config(epochs=1), checkpoint_dir=tmp_path)
    manifest_path = tmp_path / "checkpoint.json"
    manifest = json.loads(manifest_path.read_text())
    tensors_path = tmp_path / manifest["tensors"]

    def resume(model=None):
        _fit(model or _model(), _noisy_mse, (x, y), config=_config(epochs=1), checkpoint_dir=tmp_path, resume=True)

    wider = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, 1))
    with pytest.raises(DataError, match="different model"):
        resume(wider)
    tensors_path.write_bytes(tensors_path.read_bytes()[:300])  # truncated
    with pytest.raises(DataError, match="unreadable checkpoint tensors"):
        resume()
    tensors_path.unlink()
    with pytest.raises(DataError, match="missing, but named by"):
        resume()
    manifest_path.write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(DataError, match="format 99 is not supported"):
        resume()
    manifest_path.write_text('{"epoch": 1, "ste')
    with pytest.raises(DataError, match="unreadable checkpoint manifest"):
        resume()


def test_early_stopping_keeps_the_best_epoch():
    x, y = _data()
    val = (x[:9], -y[:9])  # fitting y makes the loss on -y worse: validation gets worse after the first epochs
    model = _model()
    history = _fit(model, _noisy_mse, (x, y), val_data=val, config=_config(epochs=30, patience=2, lr=3e-2))
    losses = [r["val_loss"] for r in history]
    best = losses.index(min(losses))
    assert len(history) == best + 3 < 30  # stopped after 2 epochs without improvement
    with pytest.raises(ConfigError, match="patience .* needs val_data"):
        _fit(_model(), _noisy_mse, (x, y), config=_config(patience=2))


def test_bf16_autocast_on_cpu_learns():
    x, y = _data(64)
    model = _model()
    history = _fit(model, _noisy_mse, (x, y), config=_config(epochs=8, precision="bf16"))
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]


def test_non_finite_loss_is_reported_with_its_epoch_and_no_per_step_host_sync(monkeypatch):
    x, y = _data()
    syncs = []
    for name in ("__float__", "__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            if "sciml/train" in sys._getframe(1).f_code.co_filename:
                syncs.append(sys._getframe(1).f_lineno)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counting)
    _fit(_model(), _noisy_mse, (x, y), val_data=_data(9, seed=2), config=_config(epochs=4))
    assert len(syncs) == 2 * 4  # the epoch's loss sum and the validation sum: 2 per epoch for 20 steps
    monkeypatch.undo()

    steps = 0

    def exploding(net, batch):
        nonlocal steps
        steps += 1
        return _noisy_mse(net, batch) * (float("nan") if steps == 11 else 1.0)  # 5 steps per epoch: in epoch 2
    with pytest.raises(FloatingPointError, match="training loss became nan in epoch 2"):
        _fit(_model(), exploding, (x, y), config=_config())


def test_options_are_validated(monkeypatch):
    for options, message in [({"precision": "fp8"}, "precision must be one of"),
                             ({"precision": "fp16"}, "'fp16' needs CUDA"),
                             ({"compile": "yes"}, "compile must be True or False"),
                             ({"patience": 0}, "patience must be None or an integer >= 1"),
                             ({"checkpoint_every": 1.5}, "checkpoint_every must be")]:
        with pytest.raises(ConfigError, match=message):
            _config(**options)
    with pytest.raises(ConfigError, match="resume=True needs a checkpoint_dir"):
        _fit(_model(), _noisy_mse, _data(), config=_config(), resume=True)
    # compile=True wraps the model in torch.compile (the eager backend here: inductor takes ~20 s on CPU).
    compiled = []
    real_compile = torch.compile

    def eager_compile(module):
        compiled.append(module)
        return real_compile(module, backend="eager")
    monkeypatch.setattr(torch, "compile", eager_compile)
    model = _model()
    history = _fit(model, _noisy_mse, _data(), config=_config(epochs=2, compile=True))
    assert compiled == [model] and history[-1]["train_loss"] < history[0]["train_loss"]


class _Recording(Task):
    """Two parameter groups at different rates, a frozen target network, an EMA validated as the best state,
    and a record of every hook call."""

    def __init__(self, steps_per_epoch: int):
        torch.manual_seed(0)
        model = nn.ModuleDict({"online": nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)),
                               "target": nn.Linear(4, 1)})
        model["target"].requires_grad_(False)
        super().__init__(model)
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.ema = AveragedModel(model["online"], multi_avg_fn=get_ema_multi_avg_fn(0.5))
        self.steps, self.snapshots, self.rates, self.per_epoch = [], {}, [], steps_per_epoch

    def loss(self, model, batch):
        x, y = batch
        mse = (model["online"](x) - y).pow(2).mean()
        return mse, {"target_mse": (model["target"](x) - y).pow(2).mean()}

    def optimizer(self, model, config):
        from sciml.train import adamw, decay_groups

        groups = decay_groups(model["online"], config.weight_decay)
        groups[1]["lr"] = config.lr / 10  # biases at a tenth of the rate
        self.optimizer_ = adamw(groups, config)
        return self.optimizer_

    def after_step(self, model, step):
        self.steps.append(step)
        self.rates.append([g["lr"] for g in self.optimizer_.param_groups])
        self.ema.update_parameters(model["online"])
        if step % self.per_epoch == 0:
            self.snapshots[step // self.per_epoch - 1] = {k: v.clone() for k, v in self.ema.module.state_dict().items()}

    def validation_model(self, model):
        return self.ema.module

    def validate(self, model, batch):
        x, y = batch
        return {"loss": (model(x) - y).pow(2).mean(), "mae": (model(x) - y).abs().mean()}


def test_the_task_seam_groups_hooks_frozen_parameters_and_the_best_state_of_an_ema():
    x, y = _data(40)
    task = _Recording(steps_per_epoch=5)
    target_before = {k: v.clone() for k, v in task.model["target"].state_dict().items()}
    history = fit(task, (x, y), val_data=(x[:9], -y[:9]), config=_config(epochs=6, lr=3e-2))
    assert task.steps == list(range(1, 31))  # after_step(model, step) after each of the 30 steps
    assert all(abs(low / high - 0.1) < 1e-12 for high, low in task.rates)  # the schedule scales each group's own rate
    assert task.rates[-1][0] < task.rates[5][0]  # cosine decay
    groups = task.optimizer_.param_groups
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0] and all(p.ndim < 2 for p in groups[1]["params"])
    _assert_same_params(task.model["target"].state_dict(), target_before)  # frozen: not in the optimizer, untouched
    assert {"train_loss", "train_target_mse", "val_loss", "val_mae"} <= history[0].keys()
    assert "val_target_mse" not in history[0]  # validate() says what is validated
    best = min(range(6), key=lambda e: history[e]["val_loss"])
    assert best < 5  # validation on -y gets worse as training fits y
    _assert_same_params(task.ema.module.state_dict(), task.snapshots[best])  # the EMA ends at its best epoch
    assert not torch.equal(task.model["online"][0].weight, task.snapshots[best]["0.weight"])  # the model keeps its last
    assert history.stop_reason == "epochs"


def test_bad_tasks_and_samplers_are_named():
    x, y = _data()
    with pytest.raises(ConfigError, match="fit takes a sciml.train.Task, got function"):
        fit(_noisy_mse, (x, y), config=_config())
    with pytest.raises(TypeError, match=r"Task.loss must return a scalar tensor \(or \(scalar, logs\)\), got \(8, 1\)"):
        _fit(_model(), lambda net, b: net(b[0]) - b[1], (x, y), config=_config())
    calls = []

    def changing(net, batch):
        calls.append(1)
        loss = _noisy_mse(net, batch)
        return loss, ({"a": loss} if len(calls) == 1 else {"b": loss})
    with pytest.raises(ConfigError, match=r"logged \['b'\] at step 1, \['a'\] before"):
        _fit(_model(), changing, (x, y), config=_config())
    from sciml.data import ChunkShuffleSampler

    with pytest.raises(ConfigError, match="num_replicas=1"):
        _fit(_model(), _noisy_mse, (x, y), config=_config(), sampler=ChunkShuffleSampler(37, num_replicas=2, rank=0))


class _Indexed(torch.utils.data.Dataset):
    """Items ``(index, target)``; records the indices read."""

    def __init__(self, n):
        self.n, self.read = n, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.read.append(i)
        return torch.full((4,), float(i)), torch.zeros(1)


def test_a_sampler_sets_the_item_order_of_every_epoch():
    from sciml.data import ChunkShuffleSampler

    data = _Indexed(37)
    sampler = ChunkShuffleSampler(37, block_size=4, seed=5)
    _fit(_model(), _noisy_mse, data, config=_config(epochs=2), sampler=sampler)
    orders = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        orders += list(sampler)
    assert data.read == orders and orders[:37] != orders[37:]


def test_dataloader_workers_change_the_speed_not_the_result(tmp_path):
    import numpy as np
    import xarray as xr

    from sciml import data
    from sciml.data import ChunkShuffleSampler, OperatorPairs

    rng = np.random.default_rng(0)
    w = rng.standard_normal((24, 3, 8, 8)).astype(np.float32)
    ds = xr.Dataset({"w": (("sample", "time", "y", "x"), w)},
                    coords={"time": [0.0, 1.0, 2.0], "y": np.arange(8) / 8, "x": np.arange(8) / 8})
    pairs = OperatorPairs(data.open(data.write(ds, tmp_path / "w.nc")), inputs=["w"], outputs=["w"], lag=1)

    def run(workers):
        torch.manual_seed(0)
        model = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")
        history = fit(LossTask(model, lambda net, b: (net(b[0]) - b[1]).pow(2).mean()), pairs,
                      config=_config(epochs=2, workers=workers), sampler=ChunkShuffleSampler(len(pairs), block_size=4))
        return history, model.state_dict()

    (h0, p0), (h2, p2) = run(0), run(2)
    assert _without_times(h0) == _without_times(h2)
    _assert_same_params(p0, p2)


def test_history_says_why_training_stopped_and_how_fast_the_loss_still_falls():
    from sciml.train import History

    falling = History([{"epoch": e, "val_loss": 0.5 * 0.9**e} for e in range(8)], "max_time")
    assert falling.trend() == pytest.approx(-0.1, rel=1e-9)  # exactly 10% per epoch
    assert History([{"epoch": e, "val_loss": 0.2} for e in range(5)]).trend() == pytest.approx(0.0, abs=1e-12)
    assert History([{"epoch": 0, "val_loss": 1.0}]).trend() is None  # too short to tell
    assert falling.stop_reason == "max_time" and list(falling) == falling[:]


def test_resuming_on_another_number_of_processes_keeps_every_item_of_the_epoch_in_its_loss(tmp_path):
    # A mid-epoch checkpoint as two processes would have written it (each rank's sums of its items), resumed by one
    # process: rank 0 takes both ranks' sums, so the epoch's mean loss counts every item once.
    x, y = _data()
    expected = _fit(_model(), _noisy_mse, (x, y), config=_config(epochs=1, checkpoint_every=2))
    steps = 0

    def crashing(net, batch):
        nonlocal steps
        steps += 1
        if steps == 3:
            raise KeyboardInterrupt
        return _noisy_mse(net, batch)
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), crashing, (x, y), config=_config(epochs=1, checkpoint_every=2), checkpoint_dir=tmp_path)
    manifest, tensors = read_checkpoint(tmp_path)
    sums = tensors["loop/sums"]  # (1, loss + count): two steps of 8 items
    split = torch.cat([sums * 0.25, sums * 0.75])  # the same totals, held by two ranks
    tensors["loop/sums"] = split
    torch.save(tensors, tmp_path / manifest["tensors"])
    (tmp_path / "checkpoint.json").write_text(json.dumps({**manifest, "world_size": 2}))
    history = _fit(_model(), _noisy_mse, (x, y), config=_config(epochs=1, checkpoint_every=2), checkpoint_dir=tmp_path,
                   resume=True)
    assert history[0]["train_loss"] == pytest.approx(expected[0]["train_loss"], rel=1e-12)


def test_an_optimizer_over_parameters_outside_the_model_is_refused():
    class Outside(LossTask):
        def __init__(self, model):
            super().__init__(model)
            self.extra = nn.Linear(4, 1)  # trained but not part of task.model: neither checkpointed nor averaged

        def optimizer(self, model, config):
            return torch.optim.AdamW([*model.parameters(), *self.extra.parameters()], lr=config.lr)
    with pytest.raises(ConfigError, match="updates parameters that are not task.model's"):
        fit(Outside(_model()), _data(), config=_config())
