"""One training loop for every capability: :func:`fit` with a capability-supplied loss."""

from .checkpoint import read_checkpoint
from .loop import TrainConfig, fit, resolve_device, seed_everything
from .losses import h1_loss, relative_l2_loss, rollout_loss

__all__ = [
    "TrainConfig", "fit", "read_checkpoint", "resolve_device", "seed_everything",
    "relative_l2_loss", "h1_loss", "rollout_loss",
]
