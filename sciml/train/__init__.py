"""One training loop for every capability: :func:`fit` with a capability-supplied loss."""

from .loop import TrainConfig, fit, resolve_device, seed_everything
from .losses import relative_l2_loss

__all__ = ["TrainConfig", "fit", "resolve_device", "seed_everything", "relative_l2_loss"]
