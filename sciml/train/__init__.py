"""One training loop for every capability: :func:`fit` runs a :class:`Task` (see docs/writing-a-capability.md)."""

from .checkpoint import read_checkpoint
from .loop import History, TrainConfig, fit, resolve_device, seed_everything
from .losses import h1_loss, relative_l2_loss, rollout_loss
from .task import Task, adamw, decay_groups

__all__ = [
    "Task", "TrainConfig", "History", "fit", "read_checkpoint", "resolve_device", "seed_everything", "adamw",
    "decay_groups", "relative_l2_loss", "h1_loss", "rollout_loss",
]
