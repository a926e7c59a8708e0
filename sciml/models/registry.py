"""Models by name: the built-in operators and any builder a user registers.

``build(name, **options)`` makes a model, ``defaults_for(name, grid)`` gives the options a model's own
config chooses for a grid (modes the grid resolves, the boundary treatment, the spherical node set),
``register_model(name, builder)`` adds a user's model, so that :func:`sciml.surrogate.fit_surrogate`,
``Surrogate.load`` and ``sciml train --model NAME`` work with it like with a built-in one.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, asdict, dataclass, fields
from typing import TYPE_CHECKING, Callable, Mapping

from torch import nn

from ..errors import ConfigError
from .afno import AFNO, AFNOConfig
from .fno import FNO, TFNO, FNOConfig, TFNOConfig
from .sfno import SFNO, SFNOConfig
from .uno import UNO, UNOConfig

if TYPE_CHECKING:
    from ..grids import Grid

__all__ = ["build", "available", "config_of", "option_names", "defaults_for", "register_model", "ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        builder: ``builder(in_channels=..., out_channels=..., **options) -> nn.Module`` mapping
            ``(batch, in_channels, *space)`` to ``(batch, out_channels, *space)``.
        defaults: ``defaults(grid, given) -> options`` chosen for a grid, for the options not in
            ``given`` (``None``: no grid-dependent defaults).
        config: the options dataclass of a built-in model (``None`` for a user's builder).
    """

    builder: Callable[..., nn.Module]
    defaults: Callable[[Grid, Mapping], dict] | None = None
    config: type | None = None


def _builtin(config_cls: type, model_cls: type) -> ModelSpec:
    return ModelSpec(builder=lambda **options: model_cls(config_cls(**options)), defaults=config_cls.defaults_for,
                     config=config_cls)


_REGISTRY: dict[str, ModelSpec] = {
    "fno": _builtin(FNOConfig, FNO),
    "tfno": _builtin(TFNOConfig, TFNO),
    "uno": _builtin(UNOConfig, UNO),
    "sfno": _builtin(SFNOConfig, SFNO),
    "afno": _builtin(AFNOConfig, AFNO),
}


def available() -> list[str]:
    """Names :func:`build` accepts."""
    return sorted(_REGISTRY)


def _spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available())} (a model of your own: "
                          f"sciml.models.register_model({name!r}, builder) first, also before loading it)")
    return _REGISTRY[name]


def register_model(name: str, builder: Callable[..., nn.Module], *,
                   defaults: Callable[[Grid, Mapping], dict] | None = None, overwrite: bool = False) -> None:
    """Register ``builder`` under ``name``.

    ``builder(in_channels=..., out_channels=..., **options)`` must return an ``nn.Module`` mapping
    ``(batch, in_channels, *space)`` to ``(batch, out_channels, *space)``; the options must be JSON
    values (a saved surrogate records them and rebuilds the model with them). ``defaults(grid, given)``,
    if given, returns options chosen for a training grid, for the options the user did not give.
    Register the same name before ``Surrogate.load`` of a surrogate built with it.
    """
    if not isinstance(name, str) or not name or not callable(builder):
        raise ConfigError(f"register_model takes a non-empty name and a callable builder, got {name!r}, {builder!r}")
    if name in _REGISTRY and not overwrite and _REGISTRY[name].builder is not builder:
        raise ConfigError(f"model {name!r} is already registered; pass overwrite=True to replace it")
    parameters = inspect.signature(builder).parameters
    accepts = {"in_channels", "out_channels"} <= parameters.keys() or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if not accepts:
        raise ConfigError(f"the builder of {name!r} must take in_channels= and out_channels= keyword arguments")
    _REGISTRY[name] = ModelSpec(builder=builder, defaults=defaults)


def option_names(name: str) -> list[str] | None:
    """The options :func:`build` accepts for model ``name``; ``None`` when its builder takes any keyword."""
    spec = _spec(name)
    if spec.config is not None:
        return [f.name for f in fields(spec.config)]
    parameters = inspect.signature(spec.builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def defaults_for(name: str, grid: Grid, given: Mapping | None = None) -> dict:
    """Options model ``name`` chooses for training on ``grid``, for the options not in ``given``."""
    spec = _spec(name)
    given = dict(given or {})
    return {k: v for k, v in (spec.defaults(grid, given) if spec.defaults else {}).items() if k not in given}


def build(name: str, **options) -> nn.Module:
    """Build a registered model by name with keyword options.

    Raises :class:`~sciml.errors.ConfigError` for an unknown name, an unknown or missing option, or
    a value out of range. Lists are accepted where a config holds tuples (options read from JSON).
    """
    spec = _spec(name)
    valid = option_names(name)
    if valid is not None:
        unknown = [key for key in options if key not in valid]
        if unknown:
            raise ConfigError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for model {name!r}; "
                f"valid options: {', '.join(valid)}"
            )
    if spec.config is not None:
        missing = [f.name for f in fields(spec.config) if f.default is MISSING and f.name not in options]
        if missing:
            raise ConfigError(f"model {name!r} needs option{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    model = spec.builder(**options)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the builder of {name!r} returned a {type(model).__name__}, not an nn.Module")
    return model


def config_of(model: nn.Module) -> tuple[str, dict]:
    """``(name, options)`` that rebuild a built-in ``model`` with :func:`build`; JSON-ready (lists, not tuples)."""
    config = getattr(model, "config", None)
    for name, spec in _REGISTRY.items():
        if spec.config is not None and type(config) is spec.config:
            return name, {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}
    raise ConfigError(f"{type(model).__name__} is not a built-in sciml model; a surrogate records the name and "
                      "options it was built with instead")
