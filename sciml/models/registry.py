"""Models by name: ``build(name, **options)``, ``config_of(model)`` and ``available()``."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields

from torch import nn

from ..errors import ConfigError
from .fno import FNO, TFNO, FNOConfig, TFNOConfig
from .sfno import SFNO, SFNOConfig
from .uno import UNO, UNOConfig

__all__ = ["build", "available", "config_of", "option_names"]

_REGISTRY = {
    "fno": (FNOConfig, FNO),
    "tfno": (TFNOConfig, TFNO),
    "uno": (UNOConfig, UNO),
    "sfno": (SFNOConfig, SFNO),
}


def available() -> list[str]:
    """Names :func:`build` accepts."""
    return sorted(_REGISTRY)


def option_names(name: str) -> list[str]:
    """The options :func:`build` accepts for model ``name`` (the fields of its config class)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available())}")
    return [f.name for f in fields(_REGISTRY[name][0])]


def build(name: str, **options) -> nn.Module:
    """Build a registered model by name with keyword options (the fields of its config class).

    Raises :class:`~sciml.errors.ConfigError` for an unknown name, an unknown or missing option, or
    a value out of range. Lists are accepted where the config holds tuples (options read from JSON).
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available())}")
    config_cls, model_cls = _REGISTRY[name]
    valid = [f.name for f in fields(config_cls)]
    unknown = [key for key in options if key not in valid]
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid options: {', '.join(valid)}"
        )
    missing = [f.name for f in fields(config_cls) if f.default is MISSING and f.name not in options]
    if missing:
        raise ConfigError(f"model {name!r} needs option{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return model_cls(config_cls(**options))


def config_of(model: nn.Module) -> tuple[str, dict]:
    """``(name, options)`` that rebuild ``model`` with :func:`build`; the options are JSON-ready (lists, not tuples)."""
    for name, (_, model_cls) in _REGISTRY.items():
        if type(model) is model_cls:
            options = asdict(model.config)
            return name, {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}
    raise ConfigError(f"{type(model).__name__} is not a registered sciml model")
