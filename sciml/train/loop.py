"""The one training loop every capability uses: :func:`fit` runs a :class:`~sciml.train.Task`.

The loop is short and made of small parts: batches (:mod:`.batches`), the learning-rate schedule
(:mod:`.schedule`), mixed precision (:mod:`.precision`), distributed data parallel (:mod:`.distributed`),
``torch.compile``, checkpoints and exact resume (:mod:`.checkpoint`), a progress bar and a JSONL log.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import ConfigError, DataError
from .batches import GlobalBatches, as_dataset, to_device
from .checkpoint import MANIFEST, RunState, clone_state, read_checkpoint
from .distributed import Processes, data_parallel, local_batch_size, processes, shard
from .precision import AUTOCAST, Precision
from .schedule import set_learning_rate
from .task import Task, split_loss

__all__ = ["TrainConfig", "History", "fit", "resolve_device", "seed_everything"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Options of :func:`fit`.

    Attributes:
        epochs: passes over the training data (an upper bound when ``max_time`` is set).
        max_time: optional wall-clock budget in seconds; training stops cleanly when it is spent, and the
            schedule runs over whichever of the epochs and the budget ends first. Results then depend on
            the machine's speed and load: leave it ``None`` for reproducible runs. A resumed run continues
            the budget of the run it resumes.
        batch_size: samples per optimiser step: the global batch, summed over all processes. Under
            ``torchrun`` with ``W`` processes (``WORLD_SIZE``, over all nodes) each computes the loss on
            ``batch_size / W`` of them, so ``W`` must divide ``batch_size`` (a :class:`ConfigError`
            otherwise); the update, the schedule and the result do not depend on ``W``.
        lr: peak learning rate (of every parameter group, see :mod:`sciml.train.schedule`). The defaults,
            ``lr=5e-3`` and ``batch_size=8``, are measured: with AdamW and the cosine decay, ``1e-3`` (a
            mean rate of ``5e-4`` over the run) under-trains. On 1,000 Darcy pairs at 16x16
            (``benchmarks/darcy_defaults.py``, 10 epochs) they reach relative L2 0.0245 at 16 and 0.0294
            zero-shot at 32, against 0.0432 / 0.0456 with ``lr=1e-3, batch_size=16`` and 0.0367 / 0.0964
            for neuraloperator's own Darcy recipe run through neuraloperator.
        weight_decay: AdamW weight decay (tasks may exempt parameter groups).
        schedule: ``"cosine"`` (decay to 0 over the run) or ``"constant"``.
        warmup_fraction: fraction of the run with a linear warm-up.
        grad_clip: clip the global gradient norm to this (``None``: no clipping).
        seed: seeds the item order (epoch ``e``'s depends only on ``(seed, e)``) and each process's
            torch RNG under DDP; parameter init when the model is built after :func:`seed_everything`.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        progress: show a progress bar.
        precision: ``"fp32"``, ``"bf16"`` (autocast on CUDA or CPU) or ``"fp16"`` (autocast with a
            gradient scaler; CUDA only).
        compile: give the task a ``torch.compile``-d model for the training forward pass.
        patience: stop when the monitored validation value has not improved for this many epochs
            (needs validation data); ``None``: no early stopping.
        checkpoint_every: with a checkpoint directory, also checkpoint every this many steps (besides
            the end of every epoch); ``None``: at epoch ends only.
        workers: ``DataLoader`` worker processes reading batches (0: in the training process). They
            change the speed, not the result.
    """

    epochs: int = 50
    max_time: float | None = None
    batch_size: int = 8
    lr: float = 5e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_fraction: float = 0.02
    grad_clip: float | None = 1.0
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    precision: str = "fp32"
    compile: bool = False
    patience: int | None = None
    checkpoint_every: int | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seed", "workers"):
            value = getattr(self, name)
            low = 0 if name in ("seed", "workers") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("max_time", "grad_clip"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be None or a positive number, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.warmup_fraction, (int, float)) and 0 <= self.warmup_fraction < 1):
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.precision not in AUTOCAST:
            raise ConfigError(f"precision must be one of {list(AUTOCAST)}, got {self.precision!r}")
        if self.precision == "fp16" and self.device == "cpu":
            raise ConfigError("precision 'fp16' needs CUDA; use precision='bf16' on CPU")
        for name in ("compile", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("patience", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{name} must be None or an integer >= 1, got {value!r}")


class History(list):
    """The per-epoch records of :func:`fit` (a list of dicts), with why training stopped.

    Each record holds ``epoch``, ``lr`` (of the first parameter group at the epoch's end), ``elapsed_s``,
    ``train_loss`` and ``train_<name>`` for every value the task's loss logs, and with validation data
    ``val_loss`` and ``val_<name>`` for every value :meth:`~sciml.train.Task.validate` returns.

    Attributes:
        stop_reason: ``"epochs"`` (all epochs ran), ``"patience"`` (early stopping) or ``"max_time"``
            (the wall-clock budget ran out).
        train_seconds: seconds spent in the training loop, summed over every resume of the run (the
            time a resumed run had spent is stored in its checkpoint); ``None`` where not measured.
    """

    def __init__(self, records=(), stop_reason: str | None = None, train_seconds: float | None = None) -> None:
        super().__init__(records)
        self.stop_reason = stop_reason
        self.train_seconds = train_seconds

    def trend(self, key: str = "val_loss", window: int = 5) -> float | None:
        """Relative change of ``key`` per epoch over the last ``window`` epochs: ``exp(b) - 1`` for the
        least-squares slope ``b`` of ``log(key)`` against the epoch (``-0.03``: still falling 3% per
        epoch; near 0: levelled off). ``None`` with fewer than 3 epochs or a non-positive value."""
        values = [r[key] for r in self[-window:] if key in r]
        if len(values) < 3 or min(values) <= 0:
            return None
        slope = np.polyfit(np.arange(len(values)), np.log(values), 1)[0]
        return float(np.expm1(slope))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is checked and returned."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {device!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but CUDA is not available; use --device cpu or auto")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (parameter init) and return a generator for data shuffling."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _loader(data: Dataset, batch_sampler, device: torch.device, workers: int) -> DataLoader:
    # An own generator: iterating a loader must not draw from the global RNG (exact resume).
    return DataLoader(data, batch_sampler=batch_sampler, num_workers=workers, pin_memory=device.type == "cuda",
                      generator=torch.Generator())


@torch.no_grad()
def _validate(task: Task, data: Dataset, batch_size: int, device: torch.device, precision: Precision,
              procs: Processes, workers: int) -> dict[str, float]:
    """Means over ``data`` of the task's validation values, weighted by batch size; each process takes a
    contiguous part of the items (so lazily read data are read in runs) and the sums are reduced over the
    processes."""
    model = task.validation_model(task.model)
    model.eval()
    mine = list(shard(len(data), procs.rank, procs.world_size))
    names, sums, count = None, None, 0
    for indices, batch in zip(_chunks(mine, batch_size), _loader(data, _chunks(mine, batch_size), device, workers)):
        with precision.autocast():
            values = task.validate(model, to_device(batch, device))
        if names is None:
            names = sorted(values)
            sums = torch.zeros(len(names), dtype=torch.float64, device=device)
        sums += torch.stack([torch.as_tensor(values[k]).detach().to(device, torch.float64) for k in names]) * len(indices)
        count += len(indices)
    local = sums.tolist() if sums is not None else None  # the one host synchronisation of a validation
    names = procs.agree(names or [])
    totals = procs.sum([*(local if local is not None else [0.0] * len(names)), count])
    return {f"val_{k}": v / max(totals[-1], 1) for k, v in zip(names, totals)}


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def fit(
    task: Task,
    data: Dataset | tuple[torch.Tensor, ...],
    *,
    config: TrainConfig = TrainConfig(),
    val_data: Dataset | tuple[torch.Tensor, ...] | None = None,
    sampler: Sampler[int] | None = None,
    log_path: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> History:
    """Train ``task.model`` in place on ``data`` and return the per-epoch :class:`History`.

    Each epoch visits the items in an order that depends only on ``(config.seed, epoch)`` (or on
    ``sampler``), in global batches of ``config.batch_size`` (:mod:`sciml.train.batches`). Under
    ``torchrun`` (``WORLD_SIZE`` > 1) the process group is initialised here (``gloo`` on CPU, ``nccl`` on
    CUDA; ended at return if started here), each rank computes the loss on its part of every global
    batch (``batch_size / W`` items; :func:`~sciml.train.distributed.local_batch_size`), weighted by the
    part's size, and the gradients are averaged over the ranks: the update is the single-process update
    of the batch mean. Multi-node runs (``torchrun --nnodes N``) take the same path. Each rank re-seeds
    torch's global RNG from ``(seed, rank)``. Validation values are reduced over the ranks; rank 0 alone
    writes logs and checkpoints.
    Losses are summed on the device and read once per epoch: no per-step host synchronisation. A
    non-finite loss raises ``FloatingPointError`` naming the epoch.

    Args:
        task: the objective and the module (:class:`~sciml.train.Task`); its model is moved to the device.
        data: a ``Dataset`` (a lazy file-backed one such as :class:`sciml.data.OperatorPairs` streams) or a
            tuple of tensors with a shared leading dim. A dataset's ``set_epoch(epoch)``, if any, is called
            at the start of every epoch (random crops).
        config: options (:class:`TrainConfig`).
        val_data: validation data; then the task's validation model ends with the state of the epoch with
            the lowest monitored validation value (``task.monitor``).
        sampler: the item order of each epoch, e.g. ``sciml.data.ChunkShuffleSampler(len(data),
            block_size=8, seed=0)`` for a lazily read file; ``None``: a full shuffle.
        log_path: append one JSON line per epoch here. On resume it is first cut back to its length at
            the checkpoint, so each epoch appears once.
        checkpoint_dir: write a checkpoint here at the end of every epoch (and every
            ``config.checkpoint_every`` steps): model, optimizer, task state, best state, RNG states,
            history (:mod:`sciml.train.checkpoint`). It must not hold a checkpoint unless ``resume``.
        resume: continue from the checkpoint in ``checkpoint_dir`` (start afresh when there is none); the
            result is bitwise identical to an uninterrupted run on the same device and number of processes
            (wall-clock budgets aside). On another number of processes (a checkpoint of 2 ranks resumed
            by 1, or of 1 by 2) the step, epoch, batch and item order, the learning rate at every step
            and the epochs already recorded are the same, the epoch in progress keeps the loss of every
            item already done, and losses and parameters equal the uninterrupted run's up to the rounding
            of a different reduction order; random draws of a task (noise, dropout) come from other
            streams. Every process must see the same checkpoint (a shared filesystem): otherwise a
            ``DataError``. Resuming a finished run returns its history and final state without training.
    """
    from tqdm.auto import tqdm

    if not isinstance(task, Task):
        raise ConfigError(f"fit takes a sciml.train.Task, got {type(task).__name__}; see docs/writing-a-capability.md")
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs a checkpoint_dir to resume from")
    if config.patience is not None and val_data is None:
        raise ConfigError("patience (early stopping) needs val_data")
    procs, device = processes(resolve_device(config.device))
    try:
        world, rank = procs.world_size, procs.rank
        local_batch_size(config.batch_size, world)  # W must divide the global batch
        train_set = as_dataset(data)
        val_set = as_dataset(val_data) if val_data is not None else None
        if len(train_set) == 0:
            raise DataError("the training data hold no items")
        batches = GlobalBatches(len(train_set), config.batch_size, seed=config.seed, order=sampler, rank=rank,
                                world_size=world)
        total_steps = config.epochs * batches.batches_per_epoch
        precision = Precision(config.precision, device)
        model = task.to(device).model
        optimizer = task.optimizer(model, config)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        owned = {id(p) for p in model.parameters()}
        if any(id(p) not in owned for p in params):
            raise ConfigError(f"{type(task).__name__}.optimizer updates parameters that are not task.model's; make "
                              "every trained part a submodule of task.model, so that it is checkpointed and averaged "
                              "under DDP")
        run = RunState(sums=torch.zeros(2, dtype=torch.float64, device=device))
        checkpoint = read_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
        _same_checkpoint(procs, checkpoint, checkpoint_dir)
        if checkpoint is not None:
            if not resume:
                raise DataError(f"{checkpoint_dir}: holds a checkpoint (epoch {checkpoint[0]['epoch']}); pass "
                                f"resume=True to continue it, or choose another directory")
            run.restore(checkpoint, Path(checkpoint_dir) / MANIFEST, task=task, optimizer=optimizer,
                        precision=precision, config=config, procs=procs, device=device)
            _truncate_log(log_path, checkpoint[0].get("log"), procs)
        elif world > 1:
            torch.manual_seed(int(np.random.SeedSequence((config.seed, rank)).generate_state(1)[0]))
        forward_model = torch.compile(model) if config.compile else model
        net = data_parallel(task, forward_model, device) if world > 1 else None
        if log_path is not None and procs.is_main:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "a") if log_path is not None and procs.is_main else None
        start = time.perf_counter() - run.elapsed_s

        def clock() -> float:
            """Seconds since the start of the run; rank 0's under DDP when a budget must be agreed on."""
            now = time.perf_counter() - start
            return procs.broadcast(now) if config.max_time is not None else now

        def save() -> None:
            run.elapsed_s = clock()
            run.save(checkpoint_dir, task=task, optimizer=optimizer, precision=precision, config=config,
                     procs=procs, device=device, log_file=log_file)

        bar = tqdm(total=None if config.max_time else total_steps, initial=run.step, desc="training", unit="step",
                   disable=not (config.progress and procs.is_main), leave=False)
        seconds = run.elapsed_s
        try:
            while not run.done:
                batches.set_epoch(run.epoch, run.batch)
                if hasattr(train_set, "set_epoch"):
                    train_set.set_epoch(run.epoch)
                model.train()
                for batch in _loader(train_set, batches, device, config.workers):
                    if config.max_time is not None and clock() >= config.max_time:
                        run.stop_reason = "max_time"
                        break
                    set_learning_rate(optimizer, config, step=run.step, total_steps=total_steps, elapsed=clock())
                    global_size, mine = batches.global_size(run.batch), batches.share(run.batch)
                    with precision.autocast():
                        loss, logs = split_loss(net(to_device(batch, device)) if net is not None
                                                else task.loss(forward_model, to_device(batch, device)))
                    _accumulate(run, loss, logs, mine)
                    # Under DDP, weight by this rank's share: the average over ranks is the batch mean.
                    precision.step(loss if world == 1 else loss * (mine * world / global_size), optimizer, params,
                                   config.grad_clip)
                    run.step, run.batch = run.step + 1, run.batch + 1
                    task.after_step(model, run.step)
                    bar.update(1)
                    if (checkpoint_dir is not None and config.checkpoint_every is not None
                            and run.step % config.checkpoint_every == 0 and run.batch < batches.batches_per_epoch):
                        save()
                record = _end_epoch(run, task, optimizer, procs, clock)
                if record is None:  # the budget ran out before a step of this epoch
                    run.done = True
                    break
                if val_set is not None:
                    record.update(_validate(task, val_set, max(config.batch_size, 32), device, precision, procs,
                                            config.workers))
                    _track_best(run, task, record)
                run.history.append(record)
                bar.set_postfix(epoch=record["epoch"], loss=f"{record['train_loss']:.4g}")
                if log_file is not None:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                run.epoch, run.batch = run.epoch + 1, 0
                if run.stop_reason is None and run.epoch == config.epochs:
                    run.stop_reason = "epochs"
                if run.stop_reason is None and config.patience is not None and run.bad_epochs >= config.patience:
                    run.stop_reason = "patience"
                run.done = run.stop_reason is not None
                if checkpoint_dir is not None:
                    save()
            seconds = time.perf_counter() - start  # includes the time of the runs this one resumed
        finally:
            bar.close()
            if log_file is not None:
                log_file.close()
    finally:
        procs.close()
    if run.best_state is not None:
        task.validation_model(model).load_state_dict(run.best_state)
    model.eval()
    return History(run.history, run.stop_reason, train_seconds=seconds)


def _accumulate(run: RunState, loss: torch.Tensor, logs: dict[str, torch.Tensor], mine: int) -> None:
    """Add this step's loss and logged values, weighted by the items computed here, to the epoch's sums."""
    if not run.log_names and logs and run.step == 0:
        run.log_names = sorted(logs)
        run.sums = torch.zeros(len(logs) + 2, dtype=torch.float64, device=run.sums.device)
    if sorted(logs) != run.log_names:
        raise ConfigError(f"Task.loss logged {sorted(logs)} at step {run.step}, {run.log_names} before; "
                          "log the same names every step")
    values = torch.stack([loss.detach(), *(logs[k] for k in run.log_names)]).to(torch.float64)
    run.sums[:-1] += values * mine
    run.sums[-1] += mine


def _end_epoch(run: RunState, task: Task, optimizer, procs: Processes, clock) -> dict[str, Any] | None:
    """The epoch's record from the sums (the one host synchronisation of the epoch); ``None`` if it had no step."""
    totals = procs.sum(run.sums.tolist())
    run.sums.zero_()
    count = totals[-1]
    if count == 0:
        return None
    record = {"epoch": run.epoch, "train_loss": totals[0] / count,
              **{f"train_{k}": v / count for k, v in zip(run.log_names, totals[1:-1])},
              "lr": optimizer.param_groups[0]["lr"], "elapsed_s": clock()}
    if not math.isfinite(record["train_loss"]):
        raise FloatingPointError(f"training loss became {record['train_loss']} in epoch {run.epoch}; lower lr")
    return record


def _track_best(run: RunState, task: Task, record: dict[str, Any]) -> None:
    key = f"val_{task.monitor}"
    if key not in record:
        raise ConfigError(f"task.monitor is {task.monitor!r}, but validation gives {sorted(record)}")
    if record[key] < run.best_val:
        run.best_val, run.bad_epochs = record[key], 0
        run.best_state = clone_state(task.validation_model(task.model))
    else:
        run.bad_epochs += 1


def _same_checkpoint(procs: Processes, checkpoint: tuple[dict, dict] | None, checkpoint_dir) -> None:
    """Raise on every process if they do not all see the same checkpoint (step; -1: none) in ``checkpoint_dir``:
    a directory on node-local disk, or a stale network-filesystem cache, would otherwise let rank 0 resume
    while another rank starts afresh. Collective (one small all-gather under DDP)."""
    if procs.world_size == 1 or checkpoint_dir is None:
        return
    steps = [int(t[0]) for t in procs.gather(torch.tensor([checkpoint[0]["step"] if checkpoint else -1]))]
    other = [r for r, s in enumerate(steps) if s != steps[0]]
    if other:
        def view(r: int) -> str:
            return "none" if steps[r] < 0 else f"step {steps[r]}"
        more = f", {len(other) - 1} more ranks differ" if len(other) > 1 else ""
        raise DataError(f"{checkpoint_dir}: the processes see different checkpoints (rank 0: {view(0)}, "
                        f"rank {other[0]}: {view(other[0])}{more}); put checkpoint_dir on a filesystem every node shares")


def _truncate_log(log_path, log: dict | None, procs: Processes) -> None:
    """Drop epochs logged after the checkpoint: they are redone."""
    if (procs.is_main and log_path is not None and log is not None and Path(log_path).is_file()
            and str(Path(log_path).resolve()) == log["path"] and os.path.getsize(log_path) > log["bytes"]):
        os.truncate(log_path, log["bytes"])
