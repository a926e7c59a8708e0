"""Shared by the registered models: option validation and the wrapper base class."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .features import BOUNDARIES, BoundedFeatures, PeriodicFeatures, crop, reflect


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


def one_of(config: object, name: str, choices: tuple[str, ...]) -> None:
    """Check that option ``name`` is one of ``choices``."""
    value = getattr(config, name)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class BoxOperatorConfig:
    """Options shared by the neural operators on boxes (``fno``, ``tfno``, ``uno``); the subclasses
    document what each means for their architecture."""

    in_channels: int
    out_channels: int
    n_modes: tuple[int, ...] = (16, 16)
    hidden_channels: int = 32
    n_layers: int = 4
    boundary: str = "periodic"

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "hidden_channels", "n_layers"):
            positive_int(self, name)
        positive_ints(self, "n_modes")
        one_of(self, "boundary", BOUNDARIES)

    @classmethod
    def defaults_for(cls, grid, given) -> dict:
        """Options for training on ``grid``: ``boundary="reflect"`` on a bounded box (the even extension),
        and as many modes per dim as the (extended) grid resolves, up to 16."""
        if grid.kind not in ("box", "bounded"):
            raise ConfigError(f"{cls.__name__.removesuffix('Config').lower()} works on periodic or bounded boxes, "
                              f"not on a {grid.kind!r} grid; use model 'sfno' on the sphere")
        boundary = given.get("boundary", "reflect" if grid.kind == "bounded" else "periodic")
        extended = [2 * (n - 1) if boundary == "reflect" else n for n in grid.shape]
        return {"boundary": boundary, "n_modes": tuple(min(16, n // 2) for n in extended)}


class Operator(nn.Module):
    """Base of the registered wrappers: ``(batch, c_in, *space) -> (batch, c_out, *space)``.

    Subclasses set ``self.operator`` (a ``neuraloperator`` model taking ``in_channels +
    feature_channels`` channels). On a box, ``boundary="periodic"`` appends
    :class:`~sciml.models.features.PeriodicFeatures`; ``"reflect"`` (bounded domains) appends
    :class:`~sciml.models.features.BoundedFeatures` and runs the operator on the even extension
    (:func:`~sciml.models.features.reflect`), cropped back to the input's nodes. Checkpoints hold tensors only:
    neuraloperator's ``BaseModel`` adds its constructor kwargs (functions included) under a top-level
    ``"_metadata"`` key, which is dropped here, since sciml keeps configs in its JSON manifest.
    """

    def __init__(self, config: object, ndim: int) -> None:
        super().__init__()
        self.config = config
        self.ndim = ndim
        self.reflected = getattr(config, "boundary", "periodic") == "reflect"
        self.features = BoundedFeatures(ndim) if self.reflected else PeriodicFeatures(ndim)

    @property
    def feature_channels(self) -> int:
        """Positional channels appended to the input."""
        return self.ndim if self.reflected else 2 * self.ndim

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        self.check_input(field)
        lifted = self.features(field)
        if not self.reflected:
            return self.operator(lifted)
        return crop(self.operator(reflect(lifted, self.ndim)), tuple(field.shape[2:]))

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
