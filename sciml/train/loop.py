"""The one training loop every capability uses.

A capability supplies a model, a loss ``loss_fn(model, batch) -> scalar tensor`` and data; the loop
does seeding, batching, AdamW, the learning-rate schedule (over epochs or over a wall-clock budget),
gradient clipping, validation, best-state tracking, progress bars and a JSONL history.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..errors import ConfigError
__all__ = ["TrainConfig", "fit", "resolve_device", "seed_everything"]

LossFn = Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Options of :func:`fit`.

    Attributes:
        epochs: passes over the training data (an upper bound when ``max_time`` is set).
        max_time: wall-clock budget in seconds; training stops cleanly when it is spent, and the cosine
            schedule runs over the budget instead of the epochs. ``None``: no budget.
        batch_size: samples per optimiser step.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        schedule: ``"cosine"`` (decay to 0 over the run) or ``"constant"``.
        warmup_fraction: fraction of the run with a linear warm-up.
        grad_clip: clip the global gradient norm to this (``None``: no clipping).
        seed: seeds parameter init (when the model is built after :func:`seed_everything`) and shuffling.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        progress: show progress bars.
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

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_time is not None and not self.max_time > 0:
            raise ConfigError(f"max_time must be positive seconds, got {self.max_time}")
        if self.batch_size < 1 or not self.lr > 0:
            raise ConfigError("batch_size must be >= 1 and lr > 0")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")


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


@torch.no_grad()
def _evaluate(model: nn.Module, loss_fn: LossFn, loader: DataLoader, device: torch.device) -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        batch = [t.to(device, non_blocking=True) for t in batch]
        n = batch[0].shape[0]
        total += float(loss_fn(model, batch)) * n
        count += n
    model.train()
    return total / max(count, 1)


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Dataset | Sequence[torch.Tensor],
    *,
    val_data: Dataset | Sequence[torch.Tensor] | None = None,
    config: TrainConfig = TrainConfig(),
    log_path: str | Path | None = None,
) -> list[dict]:
    """Train ``model`` in place to minimise ``loss_fn`` and return the per-epoch history.

    Args:
        model: any module; moved to ``config.device``.
        loss_fn: ``loss_fn(model, batch)``, the batch being a list of tensors on the device.
        train_data: a ``Dataset`` or a tuple of tensors with a shared leading dim.
        val_data: optional validation data; when given, the model ends with the parameters of the
            epoch with the lowest validation loss (best-state tracking).
        config: options.
        log_path: append one JSON line per epoch here.

    Returns:
        A list of ``{"epoch", "train_loss", "val_loss", "lr", "elapsed_s"}`` dicts.
    """
    from tqdm.auto import tqdm

    device = resolve_device(config.device)
    generator = torch.Generator().manual_seed(config.seed)
    model.to(device)
    model.train()
    train_loader = DataLoader(_as_dataset(train_data), batch_size=config.batch_size, shuffle=True,
                              generator=generator, drop_last=False, pin_memory=device.type == "cuda")
    val_loader = None
    if val_data is not None:
        val_loader = DataLoader(_as_dataset(val_data), batch_size=max(config.batch_size, 32))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * len(train_loader)
    log_file = open(log_path, "a") if log_path is not None else None
    history: list[dict] = []
    best_val, best_state = math.inf, None
    start = time.perf_counter()
    step = 0
    out_of_time = False
    bar = tqdm(total=None if config.max_time else total_steps, desc="training", unit="step",
               disable=not config.progress, leave=False)
    try:
        for epoch in range(config.epochs):
            running, seen = 0.0, 0
            for batch in train_loader:
                elapsed = time.perf_counter() - start
                if config.max_time is not None and elapsed >= config.max_time:
                    out_of_time = True
                    break
                progress = step / max(total_steps, 1)  # the schedule ends at whichever limit comes first
                if config.max_time is not None:
                    progress = max(progress, elapsed / config.max_time)
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * _lr_factor(config, progress)
                batch = [t.to(device, non_blocking=True) for t in batch]
                loss = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training loss became {float(loss)} at epoch {epoch}, step {step}; lower lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                n = batch[0].shape[0]
                running += float(loss.detach()) * n
                seen += n
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{running / seen:.4g}")
            if seen == 0:
                break
            record = {"epoch": epoch, "train_loss": running / seen, "lr": optimizer.param_groups[0]["lr"],
                      "elapsed_s": time.perf_counter() - start}
            if val_loader is not None:
                record["val_loss"] = _evaluate(model, loss_fn, val_loader, device)
                if record["val_loss"] < best_val:
                    best_val = record["val_loss"]
                    best_state = copy.deepcopy(model.state_dict())
            history.append(record)
            if log_file is not None:
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            if out_of_time:
                break
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
