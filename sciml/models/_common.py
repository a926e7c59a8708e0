"""Shared by the registered models: option validation and the wrapper base class."""

from __future__ import annotations

import numbers

import torch
from torch import nn

from ..errors import ConfigError


def positive_int(config: object, name: str) -> None:
    """Check that option ``name`` of a frozen config is a positive integer and store it as ``int``."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    object.__setattr__(config, name, int(value))


def positive_ints(config: object, name: str) -> None:
    """Check that option ``name`` is a non-empty sequence of positive integers and store it as a tuple."""
    value = getattr(config, name)
    if (
        not isinstance(value, (tuple, list))
        or not value
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in value)
    ):
        raise ConfigError(f"{name} must be a non-empty list of positive integers (one per spatial dim), got {value!r}")
    object.__setattr__(config, name, tuple(int(v) for v in value))


class Operator(nn.Module):
    """Base of the registered wrappers: ``(batch, c_in, *space) -> (batch, c_out, *space)``.

    Subclasses set ``self.operator`` (a ``neuraloperator`` model). Checkpoints hold tensors only:
    neuraloperator's ``BaseModel`` adds its constructor kwargs (functions included) under a top-level
    ``"_metadata"`` key, which is dropped here, since sciml keeps configs in its JSON manifest.
    """

    def __init__(self, config: object, ndim: int) -> None:
        super().__init__()
        self.config = config
        self.ndim = ndim

    def check_input(self, field: torch.Tensor) -> None:
        if field.ndim != 2 + self.ndim or field.shape[1] != self.config.in_channels:
            raise ConfigError(
                f"{type(self).__name__} expects (batch, {self.config.in_channels}, *space) with {self.ndim} "
                f"spatial dims, got {tuple(field.shape)}"
            )

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state
