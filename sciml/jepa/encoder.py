"""A convolutional ResNet encoder of space-time windows, its projector and predictor, in one container.

The encoder reads a window ``(batch, time, channel, *space)`` (1-D or 2-D space) as an image over
``(time, x)`` (``Conv2d``) or a volume over ``(time, y, x)`` (``Conv3d``), with the field's channels as the
convolution's channels: a stem convolution, then stages of two-convolution residual blocks (He et al. 2016,
"Deep residual learning for image recognition", CVPR; group normalisation, Wu & He 2018, so that a sample's
features do not depend on the rest of its batch), each stage after the first halving the resolution with a
strided convolution, and global average pooling to the *representation* ``(batch, widths[-1])``, which the
probes read. A projector MLP maps it to the *embedding* ``(batch, embedding_dim)`` that the self-supervised
losses compare (VICReg's "expander", Bardes et al. 2022); a predictor MLP maps one view's embedding to the
other's (the JEPA variant, :class:`sciml.jepa.objectives.JEPATask`).

Inputs are divided by a fixed ``scale`` (a buffer, set from the training data's standard deviation), not
normalised per window; with the default group-normalised stem (:attr:`EncoderConfig.stem_norm`) the features are
nonetheless invariant to the window's amplitude, and the coefficients are read from its shape and evolution.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["EncoderConfig", "ConvEncoder", "JEPAModel"]


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """Shape of the encoder, projector and predictor.

    Attributes:
        space_dims: 1 (Burgers, ``(time, x)`` windows) or 2 (Navier-Stokes, ``(time, y, x)``).
        channels: field channels of a window.
        widths: channels of each residual stage; the representation has ``widths[-1]`` features.
        blocks: residual blocks per stage.
        groups: group-normalisation groups (each width must be divisible by it).
        embedding_dim: projector output (the embedding the losses compare).
        projector_dim: hidden width of the projector and the predictor.
        stem_norm: group-normalise the stem convolution's output (the default). A convolution without bias
            followed by group normalisation is exactly invariant to ``u -> a u`` (``a > 0``), so the encoder is
            then blind to a window's amplitude, a nuisance that varies between initial conditions and decays
            along a trajectory; the views agree on it for free. Off, the stem has a bias and no normalisation
            and the encoder sees the amplitude (measured on the Burgers benchmark, 48 epochs: linear-probe
            viscosity error 55% / 25% / 14% at 16 / 64 / 256 labels against 18% / 8% / 6% with it on).
    """

    space_dims: int = 1
    channels: int = 1
    widths: tuple[int, ...] = (16, 32, 64)
    blocks: int = 1
    groups: int = 4
    embedding_dim: int = 64
    projector_dim: int = 128
    stem_norm: bool = True

    def __post_init__(self) -> None:
        if self.space_dims not in (1, 2):
            raise ConfigError(f"space_dims must be 1 or 2, got {self.space_dims!r}")
        for name in ("channels", "blocks", "groups", "embedding_dim", "projector_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"EncoderConfig.{name} must be an integer >= 1, got {value!r}")
        widths = tuple(self.widths)
        if not widths or any(isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1
                             or w % self.groups for w in widths):
            raise ConfigError(f"EncoderConfig.widths must be positive integers divisible by groups={self.groups}, "
                              f"got {self.widths!r}")
        object.__setattr__(self, "widths", tuple(int(w) for w in widths))
        if not isinstance(self.stem_norm, bool):
            raise ConfigError(f"EncoderConfig.stem_norm must be True or False, got {self.stem_norm!r}")


def _conv(dims: int):
    return nn.Conv2d if dims == 1 else nn.Conv3d


class _Block(nn.Module):
    """``x + conv(GELU(norm(conv(x))))`` (a strided, width-changing block projects the skip with a 1x1 conv)."""

    def __init__(self, dims: int, c_in: int, c_out: int, stride: int, groups: int) -> None:
        super().__init__()
        conv = _conv(dims)
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(groups, c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out
                     else nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), nn.GroupNorm(groups, c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.gelu(self.norm1(self.conv1(x)))
        return nn.functional.gelu(self.skip(x) + self.norm2(self.conv2(h)))


class ConvEncoder(nn.Module):
    """ResNet encoder of windows: ``(batch, time, channel, *space) -> (batch, widths[-1])``.

    Any window size works (global pooling); the receptive field grows with the stages (the stem and each
    block add 2 points per 3x3 convolution, doubled at each stride).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        conv, w0 = _conv(config.space_dims), config.widths[0]
        self.stem = nn.Sequential(conv(config.channels, w0, 3, padding=1, bias=not config.stem_norm),
                                  nn.GroupNorm(config.groups, w0) if config.stem_norm else nn.Identity(), nn.GELU())
        layers, c_in = [], w0
        for i, width in enumerate(config.widths):
            for j in range(config.blocks):
                layers.append(_Block(config.space_dims, c_in, width, 2 if (i > 0 and j == 0) else 1, config.groups))
                c_in = width
        self.stages = nn.Sequential(*layers)
        self.features = config.widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 + self.config.space_dims:
            raise ConfigError(f"ConvEncoder({self.config.space_dims}-D) takes (batch, time, channel, *space) windows, "
                              f"got shape {tuple(x.shape)}")
        h = self.stages(self.stem(x.transpose(1, 2)))  # (batch, channel, time, *space)
        return h.flatten(2).mean(dim=2)


def _mlp(c_in: int, hidden: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(c_in, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, c_out))


class JEPAModel(nn.Module):
    """Encoder, projector and predictor of one self-supervised run, with what they were trained on.

    Args:
        config: the network's shape (:class:`EncoderConfig`).
        spec: JSON-able description of the training data, e.g. ``{"variable": "u", "space": ["x"],
            "points": [64], "length": [1.0], "time_step": 0.025, "size_t": 16, "size_x": [32]}``: the variable,
            the spatial dims, their grid points and periods, the frame spacing and the crop; read by
            :func:`sciml.jepa.discover` to check (and resample) new data.
        scale: the inputs are divided by it (the training field's standard deviation).

    Attributes:
        encoder: :class:`ConvEncoder`, window ``(batch, time, channel, *space)`` -> representation ``(batch, F)``.
        projector: representation -> embedding ``(batch, embedding_dim)``.
        predictor: embedding -> predicted embedding of the other view (JEPA; unused by VICReg).
    """

    def __init__(self, config: EncoderConfig, *, spec: dict[str, Any] | None = None, scale: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.spec = dict(spec or {})
        self.encoder = ConvEncoder(config)
        self.projector = _mlp(self.encoder.features, config.projector_dim, config.embedding_dim)
        self.predictor = _mlp(config.embedding_dim, config.projector_dim, config.embedding_dim)
        self.register_buffer("scale", torch.tensor(float(scale)))

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """Representation of windows ``(batch, time, channel, *space) -> (batch, widths[-1])``."""
        return self.encoder(x / self.scale.to(x.dtype))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(representation, embedding)`` of windows ``(batch, time, channel, *space)``."""
        h = self.represent(x)
        return h, self.projector(h)

    def manifest(self) -> dict[str, Any]:
        """The JSON description that rebuilds this model (:func:`from_manifest`)."""
        return {"config": asdict(self.config), "spec": self.spec}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> JEPAModel:
        """An untrained model of the shape ``manifest`` describes (load the weights into it)."""
        config = dict(manifest["config"])
        config["widths"] = tuple(config["widths"])
        config.setdefault("stem_norm", True)  # saved before the option existed: the stem was group-normalised
        return cls(EncoderConfig(**config), spec=manifest.get("spec"))
