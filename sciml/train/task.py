"""What a capability gives the training loop: a :class:`Task`.

A task holds the module being trained and says how to train it: the loss (with named values to log),
the optimizer and its parameter groups, what happens after each optimiser step (moving averages of the
weights, target-network updates), what else must be checkpointed (averaged weights, random streams),
and which module is validated and kept as the best state. :func:`sciml.train.fit` does the rest:
batching, schedule, precision, gradient clipping, distributed data parallel, compile, checkpoints and
exact resume, progress and the history. Every capability of sciml is a task; there is one loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

import torch
from torch import nn

from ..errors import DataError

if TYPE_CHECKING:
    from .loop import TrainConfig

__all__ = ["Task", "adamw", "decay_groups"]


def adamw(groups: Iterable[nn.Parameter] | Iterable[dict], config: TrainConfig) -> torch.optim.AdamW:
    """AdamW at ``config.lr`` and ``config.weight_decay`` over parameters or parameter groups.

    With ``precision="fp16"`` on CUDA and only real parameters it is the fused implementation, which
    takes the gradient scaler's inf check on the device (no host synchronisation per step); complex
    parameters (FNO spectral weights) keep the default implementation.
    """
    groups = list(groups)
    params = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = (config.precision == "fp16" and all(p.is_floating_point() and p.is_cuda for p in params))
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True if fused else None)


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two parameter groups: weight decay on weight matrices and tensors (``ndim >= 2``), none on biases,
    norm scales and other vectors, the usual choice for transformers and diffusion models (Loshchilov &
    Hutter 2019; e.g. nanoGPT, timm). Frozen parameters (``requires_grad=False``) are left out."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]


class Task:
    """A training objective for :func:`sciml.train.fit`. Subclass it and implement :meth:`loss`.

    Everything the optimizer trains must be a parameter of :attr:`model` (a container module such as
    ``nn.ModuleDict`` holds several parts): that is what is checkpointed and, under DDP, averaged.

    The loop calls, per optimiser step, ``loss(model, batch)``, backward, the optimizer's step and
    ``after_step(model, step)``; per epoch, ``validate(validation_model(model), batch)`` over the
    validation data. ``model`` is :attr:`model` itself in every call but :meth:`loss`, where it is the
    module to call for the forward pass (``torch.compile``'s wrapper with ``TrainConfig.compile``). Under
    distributed data parallel the loop wraps the *loss computation*, not the module, so a task may use
    :attr:`model` and its parameters directly (an adjoint ODE solve, two encoders of one container)
    and the gradients are still averaged over the processes.

    Attributes:
        model: the module trained; the loop moves it to the training device.
        monitor: the validation value whose minimum selects the best state: ``"loss"`` or a name
            :meth:`validate` returns.
    """

    monitor: str = "loss"

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"a Task trains an nn.Module, got {type(model).__name__}")
        self.model = model

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor | tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
        """The scalar to minimise on ``batch`` (tensors on the device), optionally with named values to
        log, ``(loss, {name: scalar tensor or float})``; each name becomes the history keys
        ``train_<name>`` and ``val_<name>``. It should be a mean over the batch (what the loop averages)."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss(model, batch)")

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        """The optimizer; default AdamW over every trainable parameter (see :func:`adamw`, :func:`decay_groups`)."""
        return adamw((p for p in model.parameters() if p.requires_grad), config)

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called after optimiser step ``step`` (1, 2, ...): e.g. update an average of the weights."""

    def validate(self, model: nn.Module, batch: Any) -> Mapping[str, torch.Tensor]:
        """Validation values on ``batch`` (means over it); default the loss and its logged values."""
        loss, logs = split_loss(self.loss(model, batch))
        return {"loss": loss, **logs}

    def validation_model(self, model: nn.Module) -> nn.Module:
        """The module validated and kept as the best state: ``model``, or e.g. its moving average."""
        return model

    def state_dict(self) -> dict[str, Any]:
        """Extra state for the checkpoint: a nested dict of tensors and JSON values (numbers, strings, lists).

        Under DDP it is saved from rank 0 and restored on every rank, so it must be the same on every
        process (as a moving average of the averaged weights is). Randomness that must differ between
        processes should come from torch's global generators, which the loop seeds and saves per process.
        """
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise DataError(f"{type(self).__name__} keeps no extra state, but the checkpoint holds {sorted(state)}")

    def to(self, device: torch.device) -> Task:
        """Move :attr:`model` and every other module the task holds to ``device``."""
        for value in vars(self).values():
            if isinstance(value, nn.Module):
                value.to(device)
        return self


def split_loss(result) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, logs)`` from what :meth:`Task.loss` returned, checked: a scalar tensor and named scalars."""
    loss, logs = result if isinstance(result, tuple) else (result, {})
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise TypeError(f"Task.loss must return a scalar tensor (or (scalar, logs)), got {shape}")
    if not isinstance(logs, Mapping) or not all(isinstance(k, str) and k != "loss" for k in logs):
        raise TypeError(f"Task.loss logs must be a dict of named scalars (not named 'loss'), got {logs!r}"[:200])
    values = {name: torch.as_tensor(value, device=loss.device).detach() for name, value in logs.items()}
    wrong = [name for name, value in values.items() if value.ndim != 0]
    if wrong:
        raise TypeError(f"Task.loss logs must be scalars; {wrong} are not")
    return loss, values
