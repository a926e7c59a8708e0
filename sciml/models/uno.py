"""U-shaped neural operator (``uno``) on boxes (periodic, or bounded through an even extension)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from ._common import BoxOperatorConfig, Operator

__all__ = ["UNOConfig", "UNO", "uno_layers"]


@dataclass(frozen=True, kw_only=True)
class UNOConfig(BoxOperatorConfig):
    """Options of the U-shaped neural operator (Rahman, Ross & Azizzadenesheli 2023, arXiv:2204.11127).

    neuraloperator's ``UNO`` takes per-layer lists; here they follow from three numbers (see
    :func:`uno_layers`): the first half of the layers halves the resolution and doubles the width,
    the second half undoes it, and skip connections join layers of equal resolution.

    Attributes:
        in_channels, out_channels: physical channels (positional features are added internally).
        n_modes: Fourier modes per dim at full resolution (halved at each coarser level).
        hidden_channels: width at full resolution (doubled at each coarser level).
        n_layers: number of Fourier layers; the resolution is halved ``max(0, n_layers // 2 - 1)`` times.
        boundary: ``"periodic"`` or ``"reflect"``, as for :class:`~sciml.models.fno.FNOConfig`.
    """


def uno_layers(config: UNOConfig) -> dict[str, list]:
    """neuraloperator's ``uno_out_channels``, ``uno_n_modes`` and ``uno_scalings`` for ``config``.

    With ``h = n_layers // 2``, layer ``i`` scales the resolution by 1/2 for ``1 <= i < h``, by 2 for
    ``n_layers - h <= i < n_layers - 1`` and by 1 otherwise, so the output has the input's resolution.
    A layer that ends at level ``l`` (resolution ``n / 2^l``) has ``hidden_channels * 2^l`` channels;
    it keeps ``max(1, n_modes // 2^l)`` modes, ``l`` being the coarser of its input and output levels.
    neuraloperator's default skips (layer ``i`` to layer ``n_layers - 1 - i``) then join equal levels.
    E.g. ``n_layers=4``: scalings 1, 1/2, 2, 1; widths h, 2h, h, h; modes m, m/2, m/2, m.
    """
    half = config.n_layers // 2
    ndim = len(config.n_modes)
    level, layers = 0, {"uno_out_channels": [], "uno_n_modes": [], "uno_scalings": []}
    for i in range(config.n_layers):
        step = 1 if 1 <= i < half else -1 if config.n_layers - half <= i < config.n_layers - 1 else 0  # +1: coarser
        start, level = level, level + step
        layers["uno_out_channels"].append(config.hidden_channels * 2**level)
        layers["uno_n_modes"].append([max(1, m // 2 ** max(start, level)) for m in config.n_modes])
        layers["uno_scalings"].append([0.5**step] * ndim)
    return layers


class UNO(Operator):
    """Positional features + ``neuralop.models.UNO``; ``(batch, c_in, *space) -> (batch, c_out, *space)``.

    Any resolution works (odd ones too): coarse levels have ``round(n / 2^l)`` points and the last
    layer returns to the input's shape. Lifting and projection have ``2 * hidden_channels`` hidden
    units, as in :class:`~sciml.models.fno.FNO`.
    """

    def __init__(self, config: UNOConfig) -> None:
        from neuralop.models import UNO as NeuralopUNO

        super().__init__(config, len(config.n_modes))
        # neuraloperator 2.0.0's UNO prints two debug lines per layer while it is built.
        with contextlib.redirect_stdout(io.StringIO()):
            self.operator = NeuralopUNO(
                in_channels=config.in_channels + self.feature_channels,
                out_channels=config.out_channels,
                hidden_channels=config.hidden_channels,
                lifting_channels=2 * config.hidden_channels,
                projection_channels=2 * config.hidden_channels,
                positional_embedding=None,
                n_layers=config.n_layers,
                # neuraloperator's default "soft-gating" needs equal widths in and out of each layer
                channel_mlp_skip="linear",
                **uno_layers(config),
            )
