"""Fourier neural operators on boxes: dense (``fno``) and Tucker-factorised (``tfno``)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from ..errors import ConfigError
from ._common import BoxOperatorConfig, Operator

__all__ = ["FNOConfig", "TFNOConfig", "FNO", "TFNO"]


@dataclass(frozen=True, kw_only=True)
class FNOConfig(BoxOperatorConfig):
    """Options of the Fourier neural operator (Li et al. 2021, arXiv:2010.08895) from ``neuraloperator``.

    Attributes:
        in_channels, out_channels: physical channels (positional features are added internally).
        n_modes: Fourier modes kept per dim (total, positive and negative), e.g. ``(16, 16)``; its
            length is the number of spatial dims.
        hidden_channels: width of the spectral layers.
        n_layers: number of Fourier layers.
        boundary: ``"periodic"`` (a periodic box) or ``"reflect"`` (a bounded box sampled at its
            nodes, endpoints included: the layers act on the even extension, where the modes are
            the same physical frequencies at every resolution; see :class:`~sciml.models._common.Operator`).
    """


@dataclass(frozen=True, kw_only=True)
class TFNOConfig(FNOConfig):
    """Options of the Tucker-factorised FNO (Kossaifi et al. 2023, arXiv:2310.00120).

    Each layer's spectral weight tensor ``(hidden, hidden, *modes)`` is stored as a Tucker core and
    factors holding about ``rank`` times the parameters of the dense tensor.

    Attributes:
        rank: fraction of the dense parameter count, ``0 < rank <= 1`` (default 0.1, neuraloperator's
            ``TFNO`` default); the other options are those of :class:`FNOConfig`.
    """

    rank: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.rank, bool) or not isinstance(self.rank, numbers.Real) or not 0 < self.rank <= 1:
            raise ConfigError(f"rank must be a number in (0, 1], got {self.rank!r}")
        object.__setattr__(self, "rank", float(self.rank))


class FNO(Operator):
    """Positional features + ``neuralop.models.FNO``; ``(batch, c_in, *space) -> (batch, c_out, *space)``."""

    def __init__(self, config: FNOConfig) -> None:
        from neuralop.models import FNO as NeuralopFNO

        super().__init__(config, len(config.n_modes))
        self.operator = NeuralopFNO(
            n_modes=config.n_modes,
            in_channels=config.in_channels + self.feature_channels,
            out_channels=config.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            positional_embedding=None,
            **self.factorization(),
        )

    def factorization(self) -> dict:
        """Keyword arguments of ``neuralop.models.FNO`` that choose how the spectral weights are stored."""
        return {}


class TFNO(FNO):
    """:class:`FNO` with Tucker-factorised spectral weights; takes a :class:`TFNOConfig`."""

    def factorization(self) -> dict:
        return {"factorization": "tucker", "rank": self.config.rank}
