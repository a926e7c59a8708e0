"""The one training loop every capability uses.

A capability supplies a model, a loss ``loss_fn(model, batch) -> scalar tensor`` and data; the loop
does seeding, batching, AdamW, the learning-rate schedule (over epochs or over a wall-clock budget),
gradient clipping, mixed precision, validation, best-state tracking, early stopping, checkpoints and
exact resume, distributed data parallel training under ``torchrun``, progress bars and a JSONL history.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from ..errors import ConfigError, DataError
from .checkpoint import MANIFEST, flatten_optimizer, read_checkpoint, restore_optimizer, write_checkpoint
from .distributed import Processes, processes

__all__ = ["TrainConfig", "fit", "resolve_device", "seed_everything"]

LossFn = Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]

_AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Options that may differ when resuming: they do not change what is computed.
_RUN_OPTIONS = ("device", "progress", "checkpoint_every")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Options of :func:`fit`.

    Attributes:
        epochs: passes over the training data (an upper bound when ``max_time`` is set).
        max_time: wall-clock budget in seconds; training stops cleanly when it is spent, and the cosine
            schedule runs over the budget instead of the epochs. ``None``: no budget. A resumed run
            continues the budget of the run it resumes.
        batch_size: samples per optimiser step (the global batch, split over the processes under DDP).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        schedule: ``"cosine"`` (decay to 0 over the run) or ``"constant"``.
        warmup_fraction: fraction of the run with a linear warm-up.
        grad_clip: clip the global gradient norm to this (``None``: no clipping).
        seed: seeds shuffling (the order of epoch ``e`` depends only on ``(seed, e)``); parameter init
            when the model is built after :func:`seed_everything`.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        progress: show progress bars.
        precision: ``"fp32"``, ``"bf16"`` (autocast on CUDA or CPU) or ``"fp16"`` (autocast with a
            gradient scaler; CUDA only; with complex parameters the scaler checks for infs on the
            host every step, as the fused AdamW that avoids it takes real parameters only).
        compile: wrap the model in ``torch.compile`` for training.
        patience: stop when the validation loss has not improved for this many epochs (needs
            ``val_data``); ``None``: no early stopping.
        checkpoint_every: with a checkpoint directory, also checkpoint every this many steps (besides
            the end of every epoch); ``None``: at epoch ends only.
    """

    epochs: int = 50
    max_time: float | None = None
    batch_size: int = 16
    lr: float = 1e-3
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

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_time is not None and not self.max_time > 0:
            raise ConfigError(f"max_time must be positive seconds, got {self.max_time}")
        if self.batch_size < 1 or not self.lr > 0:
            raise ConfigError("batch_size must be >= 1 and lr > 0")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.precision not in _AUTOCAST:
            raise ConfigError(f"precision must be one of {list(_AUTOCAST)}, got {self.precision!r}")
        if self.precision == "fp16" and self.device == "cpu":
            raise ConfigError("precision 'fp16' needs CUDA; use precision='bf16' on CPU")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be True or False, got {self.compile!r}")
        for name in ("patience", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{name} must be None or an integer >= 1, got {value!r}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is checked and returned."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but CUDA is not available; use --device cpu or auto")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (parameter init) and return a generator for data shuffling."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _lr_factor(config: TrainConfig, progress: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of the run."""
    if progress < config.warmup_fraction:
        return (progress + 1e-3) / (config.warmup_fraction + 1e-3)
    if config.schedule == "constant":
        return 1.0
    span = max(1.0 - config.warmup_fraction, 1e-12)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - config.warmup_fraction) / span)))


def _as_dataset(data: Dataset | Sequence[torch.Tensor]) -> Dataset:
    return data if isinstance(data, Dataset) else TensorDataset(*data)


def _share(size: int, rank: int, world_size: int) -> int:
    """Items of a global batch of ``size`` that rank ``rank`` of ``world_size`` takes (every ``world_size``-th)."""
    return len(range(rank, size, world_size))


class _GlobalBatches(Sampler[list[int]]):
    """This process's share of each global batch of an epoch, from batch ``start`` on.

    Epoch ``e`` permutes the items with ``numpy.random.default_rng((seed, e))``: ``p``. Global batch
    ``k`` is ``p[kB:(k+1)B]``; rank ``r`` of ``W`` takes ``p[kB + r:(k+1)B:W]``. A rank whose share of
    a short last batch is empty gets the batch's first item, which the loop weights by 0.
    """

    def __init__(self, length: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return max(0, -(-self.length // self.batch_size) - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.length)
        for k in range(self.start, self.start + len(self)):
            batch = order[k * self.batch_size : (k + 1) * self.batch_size]
            share = batch[self.rank :: self.world_size]
            yield (share if len(share) else batch[:1]).tolist()


@torch.no_grad()
def _evaluate(net: nn.Module, loss_fn: LossFn, data: Dataset, batch_size: int, device: torch.device,
              autocast: Callable[[], torch.autocast], procs: Processes) -> float:
    """Mean of ``loss_fn`` over ``data`` weighted by batch size; each process takes every W-th item."""
    net.eval()
    mine = list(range(procs.rank, len(data), procs.world_size))
    batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    # An own generator: iterating a loader must not draw from the global RNG (exact resume).
    for batch in DataLoader(data, batch_sampler=batches, pin_memory=device.type == "cuda", generator=torch.Generator()):
        batch = [t.to(device, non_blocking=True) for t in batch]
        with autocast():
            total += loss_fn(net, batch).detach().to(torch.float64) * batch[0].shape[0]
        count += batch[0].shape[0]
    total, count = procs.sum([float(total), count])
    return total / max(count, 1)


@dataclass
class _Progress:
    """Where a run stands: what a checkpoint holds besides the model, optimizer and scaler states."""

    loss_sum: torch.Tensor  # this process's loss sum over the epoch in progress, on the device
    seen: int = 0  # this process's items in that sum
    epoch: int = 0
    batch: int = 0  # batches of ``epoch`` done
    step: int = 0
    elapsed_s: float = 0.0
    done: bool = False
    best_val: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


def _restore(progress: _Progress, checkpoint: tuple[dict, dict[str, torch.Tensor]], path: Path, *, model: nn.Module,
             optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, config: TrainConfig, rank: int,
             device: torch.device) -> None:
    """Load a checkpoint read by :func:`read_checkpoint` into the model, optimizer, scaler, RNGs and ``progress``."""
    manifest, tensors = checkpoint
    saved = manifest["config"]
    current = asdict(config)
    changed = [k for k in current if k not in _RUN_OPTIONS and saved.get(k) != current[k]]
    if changed:
        was = ", ".join(f"{k}={saved.get(k)!r} (now {current[k]!r})" for k in changed)
        raise ConfigError(f"{path}: the checkpoint was written with {was}; resume with the same TrainConfig "
                          f"(only {', '.join(_RUN_OPTIONS)} may change)")
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    except RuntimeError as error:
        raise DataError(f"{path}: holds the state of a different model ({' '.join(str(error).split())})"[:400]) from None
    try:
        restore_optimizer(optimizer, tensors, manifest["optimizer"])
        scaler.load_state_dict(manifest.get("scaler") or {})
    except (KeyError, ValueError, RuntimeError) as error:
        raise DataError(f"{path}: optimizer state does not fit the model ({error})"[:400]) from None
    if f"rng/cpu/{rank}" in tensors:  # absent when resuming on more processes than were saved
        torch.set_rng_state(tensors[f"rng/cpu/{rank}"])
    if device.type == "cuda" and f"rng/cuda/{rank}" in tensors:
        torch.cuda.set_rng_state(tensors[f"rng/cuda/{rank}"], device)
    sums = tensors.get("loop/sums", torch.zeros(0, 2))
    if rank < len(sums):
        progress.loss_sum.fill_(float(sums[rank, 0]))
        progress.seen = int(sums[rank, 1])
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best/")}
    progress.best_state = best or None
    progress.best_val = math.inf if manifest["best_val"] is None else manifest["best_val"]
    for name in ("epoch", "batch", "step", "elapsed_s", "done", "bad_epochs", "history"):
        setattr(progress, name, manifest[name])


def _checkpoint(directory: str | Path, progress: _Progress, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, config: TrainConfig, procs: Processes, device: torch.device,
                log_file) -> None:
    """Write a checkpoint of the run. Collective: every process gives its RNG states and loss sums; rank 0 writes."""
    sums = torch.stack(procs.gather(torch.tensor([float(progress.loss_sum), progress.seen], dtype=torch.float64)))
    if not bool(torch.isfinite(sums).all()):  # never checkpoint a diverged state
        raise FloatingPointError(f"training loss became {float(sums[:, 0].sum())} in epoch {progress.epoch}; lower lr")
    cpu_rng = procs.gather(torch.get_rng_state())
    cuda_rng = procs.gather(torch.cuda.get_rng_state(device)) if device.type == "cuda" else []
    if not procs.is_main:
        return
    from .. import __version__

    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best/{k}": v for k, v in (progress.best_state or {}).items()})
    optimizer_tensors, optimizer_meta = flatten_optimizer(optimizer)
    tensors.update(optimizer_tensors)
    tensors.update({f"rng/cpu/{r}": state for r, state in enumerate(cpu_rng)})
    tensors.update({f"rng/cuda/{r}": state for r, state in enumerate(cuda_rng)})
    tensors["loop/sums"] = sums
    manifest = {name: getattr(progress, name) for name in ("epoch", "batch", "step", "elapsed_s", "done", "bad_epochs", "history")}
    manifest.update({
        "best_val": None if progress.best_val == math.inf else progress.best_val, "world_size": procs.world_size,
        "config": asdict(config), "optimizer": optimizer_meta, "scaler": scaler.state_dict() or None,
        "log": {"path": str(Path(log_file.name).resolve()), "bytes": log_file.tell()} if log_file is not None else None,
        "sciml_version": __version__, "torch_version": torch.__version__})
    write_checkpoint(directory, tensors, manifest)


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Dataset | Sequence[torch.Tensor],
    *,
    val_data: Dataset | Sequence[torch.Tensor] | None = None,
    config: TrainConfig = TrainConfig(),
    log_path: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> list[dict]:
    """Train ``model`` in place to minimise ``loss_fn`` and return the per-epoch history.

    Each epoch visits the items in an order that depends only on ``(config.seed, epoch)``, in global
    batches of ``config.batch_size``. Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is
    initialised here (``gloo`` on CPU, ``nccl`` on CUDA; ended at return if started here), the model is
    wrapped in ``DistributedDataParallel`` and rank ``r`` of ``W`` computes the loss on items ``r, r + W,
    ...`` of every global batch, weighted by its share of the batch: the averaged gradient is the
    single-process gradient of the mean loss, when ``loss_fn`` is a mean over the batch. Each rank
    re-seeds torch's global RNG from ``(seed, rank)``, so random draws in ``loss_fn`` differ between
    ranks. Validation losses are reduced over the ranks; rank 0 alone writes logs and checkpoints.

    The loss is accumulated on the device and checked once per epoch (and at each checkpoint): no
    per-step host synchronisation. A non-finite loss raises ``FloatingPointError`` naming the epoch.

    Args:
        model: any module; moved to ``config.device``.
        loss_fn: ``loss_fn(model, batch)``, the batch being a list of tensors on the device. Under DDP
            or ``compile`` the model passed is the wrapper: call it, and reach other methods via the
            original module.
        train_data: a ``Dataset`` or a tuple of tensors with a shared leading dim. A dataset with a
            ``set_epoch(epoch)`` method has it called at the start of every epoch.
        val_data: optional validation data; when given, the model ends with the parameters of the
            epoch with the lowest validation loss (best-state tracking).
        config: options.
        log_path: append one JSON line per epoch here. On resume it is first cut back to its length
            at the checkpoint, so each epoch appears once.
        checkpoint_dir: write a checkpoint here at the end of every epoch (and every
            ``config.checkpoint_every`` steps): model, optimizer, best state, RNG states, history;
            see :mod:`sciml.train.checkpoint`. It must not hold a checkpoint unless ``resume``.
        resume: continue from the checkpoint in ``checkpoint_dir`` (start afresh when there is none);
            the result is identical to an uninterrupted run on the same device (wall-clock budgets
            aside). Resuming a finished run returns its history and final model without training.

    Returns:
        A list of ``{"epoch", "train_loss", "val_loss", "lr", "elapsed_s"}`` dicts.
    """
    from tqdm.auto import tqdm

    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs a checkpoint_dir to resume from")
    if config.patience is not None and val_data is None:
        raise ConfigError("patience (early stopping) needs val_data")
    procs, device = processes(resolve_device(config.device))
    try:
        if config.precision == "fp16" and device.type != "cuda":
            raise ConfigError(f"precision 'fp16' needs CUDA, training is on {device}; use precision='bf16'")
        world, rank = procs.world_size, procs.rank
        if config.batch_size % world:
            raise ConfigError(f"batch_size {config.batch_size} (the global batch) must be divisible by the {world} processes")
        train_set = _as_dataset(train_data)
        val_set = _as_dataset(val_data) if val_data is not None else None
        n, size = len(train_set), config.batch_size
        sampler = _GlobalBatches(n, size, seed=config.seed, rank=rank, world_size=world)
        # An own generator: iterating a loader must not draw from the global RNG (exact resume).
        loader = DataLoader(train_set, batch_sampler=sampler, pin_memory=device.type == "cuda", generator=torch.Generator())
        n_batches = -(-n // size)
        total_steps = config.epochs * n_batches
        model.to(device)
        scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
        # With fp16, the fused AdamW takes the scaler's inf check on the device (no sync per step); it
        # refuses complex parameters (FNO spectral weights), which keep the default AdamW.
        fused = scaler.is_enabled() and all(param.is_floating_point() for param in model.parameters())
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                      fused=True if fused else None)

        def autocast() -> torch.autocast:
            return torch.autocast(device.type, dtype=_AUTOCAST[config.precision], enabled=config.precision != "fp32")

        p = _Progress(loss_sum=torch.zeros((), dtype=torch.float64, device=device))
        checkpoint = read_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
        if checkpoint is not None:
            if not resume:
                raise DataError(f"{checkpoint_dir}: holds a checkpoint (epoch {checkpoint[0]['epoch']}); pass "
                                f"resume=True to continue it, or choose another directory")
            _restore(p, checkpoint, Path(checkpoint_dir) / MANIFEST, model=model, optimizer=optimizer, scaler=scaler,
                     config=config, rank=rank, device=device)
            log = checkpoint[0].get("log")
            if (procs.is_main and log_path is not None and log is not None and Path(log_path).is_file()
                    and str(Path(log_path).resolve()) == log["path"] and os.path.getsize(log_path) > log["bytes"]):
                os.truncate(log_path, log["bytes"])  # drop epochs logged after the checkpoint: they are redone
        elif world > 1:
            torch.manual_seed(int(np.random.SeedSequence((config.seed, rank)).generate_state(1)[0]))

        net = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
            net = torch.compile(net)
        eval_net = model if world > 1 else net  # DDP's forward is collective; ranks evaluate unequal shares
        log_file = open(log_path, "a") if log_path is not None and procs.is_main else None
        start = time.perf_counter() - p.elapsed_s

        def clock() -> float:
            """Seconds since the start of the run; rank 0's under DDP when a budget must be agreed on."""
            now = time.perf_counter() - start
            return procs.broadcast(now) if config.max_time is not None else now

        def save() -> None:
            p.elapsed_s = clock()
            _checkpoint(checkpoint_dir, p, model=model, optimizer=optimizer, scaler=scaler, config=config,
                        procs=procs, device=device, log_file=log_file)

        bar = tqdm(total=None if config.max_time else total_steps, initial=p.step, desc="training", unit="step",
                   disable=not (config.progress and procs.is_main), leave=False)
        net.train()
        try:
            while not p.done:
                sampler.set_epoch(p.epoch, p.batch)
                if hasattr(train_set, "set_epoch"):
                    train_set.set_epoch(p.epoch)
                out_of_time = False
                for batch in loader:
                    now = clock()
                    if config.max_time is not None and now >= config.max_time:
                        out_of_time = True
                        break
                    progress = p.step / max(total_steps, 1)  # the schedule ends at whichever limit comes first
                    if config.max_time is not None:
                        progress = max(progress, now / config.max_time)
                    for group in optimizer.param_groups:
                        group["lr"] = config.lr * _lr_factor(config, progress)
                    batch = [t.to(device, non_blocking=True) for t in batch]
                    global_size = min(size, n - p.batch * size)
                    mine = _share(global_size, rank, world)
                    with autocast():
                        loss = loss_fn(net, batch)
                    optimizer.zero_grad(set_to_none=True)
                    # Under DDP, weight by this rank's share: the average over ranks is the batch mean.
                    scaler.scale(loss if world == 1 else loss * (mine * world / global_size)).backward()
                    if config.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    p.loss_sum += loss.detach().to(torch.float64) * mine
                    p.seen += mine
                    p.step += 1
                    p.batch += 1
                    bar.update(1)
                    if (checkpoint_dir is not None and config.checkpoint_every is not None
                            and p.step % config.checkpoint_every == 0 and p.batch < n_batches):
                        save()
                loss_sum, count = procs.sum([float(p.loss_sum), p.seen])  # the one host synchronisation per epoch
                if count == 0:
                    break
                record = {"epoch": p.epoch, "train_loss": loss_sum / count, "lr": optimizer.param_groups[0]["lr"],
                          "elapsed_s": clock()}
                if not math.isfinite(record["train_loss"]):
                    raise FloatingPointError(f"training loss became {record['train_loss']} in epoch {p.epoch}; lower lr")
                if val_set is not None:
                    record["val_loss"] = _evaluate(eval_net, loss_fn, val_set, max(size, 32), device, autocast, procs)
                    net.train()
                    if record["val_loss"] < p.best_val:
                        p.best_val, p.bad_epochs = record["val_loss"], 0
                        p.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    else:
                        p.bad_epochs += 1
                p.history.append(record)
                bar.set_postfix(epoch=p.epoch, loss=f"{record['train_loss']:.4g}")
                if log_file is not None:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                p.epoch, p.batch, p.seen = p.epoch + 1, 0, 0
                p.loss_sum.zero_()
                p.done = (out_of_time or p.epoch == config.epochs
                          or (config.patience is not None and p.bad_epochs >= config.patience))
                if checkpoint_dir is not None:
                    save()
        finally:
            bar.close()
            if log_file is not None:
                log_file.close()
    finally:
        procs.close()
    if p.best_state is not None:
        model.load_state_dict(p.best_state)
    model.eval()
    return p.history
