"""Model registry: ``build(name, **options) -> nn.Module`` mapping ``(batch, c_in, *space) -> (batch, c_out, *space)``.

Models come from ``neuraloperator`` (imported here lazily: it costs seconds) wrapped so that every
model on a periodic box sees the same periodic positional features, which are functions of the
continuous coordinate and therefore the same at every resolution (zero-shot super-resolution).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import ConfigError
__all__ = ["build", "available", "FNOConfig", "PeriodicFeatures"]


class PeriodicFeatures(nn.Module):
    """Append ``sin(2 pi x_i / L_i), cos(2 pi x_i / L_i)`` for each spatial dim as input channels.

    ``(batch, c, *space) -> (batch, c + 2 d, *space)``, evaluated on the points ``x_j = j L / n`` of
    whatever grid the input has. Being periodic and resolution-independent, they let a model learn
    position-dependent effects (e.g. forcing) without breaking periodicity or super-resolution.
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.ndim = ndim

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        batch, space = field.shape[0], field.shape[2:]
        if len(space) != self.ndim:
            raise ConfigError(f"expected {self.ndim} spatial dims, got input shape {tuple(field.shape)}")
        features = []
        for axis, n in enumerate(space):
            phase = torch.arange(n, device=field.device, dtype=field.dtype) * (2 * math.pi / n)
            shape = [1] * self.ndim
            shape[axis] = n
            phase = phase.view(shape).expand(space)
            features += [torch.sin(phase), torch.cos(phase)]
        grid = torch.stack(features).unsqueeze(0).expand(batch, -1, *space)
        return torch.cat([field, grid], dim=1)


@dataclass(frozen=True, kw_only=True)
class FNOConfig:
    """Options of the Fourier neural operator (Li et al. 2021) built from ``neuraloperator``.

    Attributes:
        in_channels, out_channels: physical channels (positional features are added internally).
        n_modes: Fourier modes kept per dim (total, positive and negative), e.g. ``(16, 16)``.
        hidden_channels: width of the spectral layers.
        n_layers: number of Fourier layers.
    """

    in_channels: int
    out_channels: int
    n_modes: tuple[int, ...] = (16, 16)
    hidden_channels: int = 32
    n_layers: int = 4

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.out_channels < 1:
            raise ConfigError(f"in_channels and out_channels must be >= 1, got {self.in_channels}, {self.out_channels}")
        if not self.n_modes or any(m < 1 for m in self.n_modes):
            raise ConfigError(f"n_modes must be positive per dim, got {self.n_modes}")
        if self.hidden_channels < 1 or self.n_layers < 1:
            raise ConfigError("hidden_channels and n_layers must be >= 1")


class FNO(nn.Module):
    """Periodic features + ``neuralop.models.FNO``; ``(batch, c_in, *space) -> (batch, c_out, *space)``."""

    def __init__(self, config: FNOConfig) -> None:
        super().__init__()
        from neuralop.models import FNO as NeuralopFNO

        self.config = config
        ndim = len(config.n_modes)
        self.features = PeriodicFeatures(ndim)
        self.operator = NeuralopFNO(
            n_modes=tuple(config.n_modes),
            in_channels=config.in_channels + 2 * ndim,
            out_channels=config.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            positional_embedding=None,
        )

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if field.ndim != 2 + len(self.config.n_modes) or field.shape[1] != self.config.in_channels:
            raise ConfigError(
                f"FNO expects (batch, {self.config.in_channels}, *space) with {len(self.config.n_modes)} spatial dims, "
                f"got {tuple(field.shape)}"
            )
        return self.operator(self.features(field))

    def state_dict(self, *args, **kwargs):
        # neuraloperator's BaseModel puts its constructor kwargs (functions included) under a top-level
        # "_metadata" key; sciml keeps configs in its JSON manifest and checkpoints hold tensors only.
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state


_REGISTRY = {"fno": (FNOConfig, FNO)}


def available() -> list[str]:
    return sorted(_REGISTRY)


def build(name: str, **options) -> nn.Module:
    """Build a registered model by name with keyword options (see its config class)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available())}")
    config_cls, model_cls = _REGISTRY[name]
    if "n_modes" in options:
        options["n_modes"] = tuple(options["n_modes"])
    try:
        config = config_cls(**options)
    except TypeError as err:
        raise ConfigError(f"bad options for model {name!r}: {err}") from None
    return model_cls(config)


def config_of(model: nn.Module) -> tuple[str, dict]:
    """``(name, options)`` that rebuild ``model`` with :func:`build` (for checkpoints)."""
    for name, (_, model_cls) in _REGISTRY.items():
        if type(model) is model_cls:
            return name, asdict(model.config)
    raise ConfigError(f"{type(model).__name__} is not a registered sciml model")
