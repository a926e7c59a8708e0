"""Adaptive Fourier neural operator (``afno``): the FourCastNet v1 backbone on 2-D grids, in plain torch."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..grids import Grid
from ._common import one_of, positive_int

__all__ = ["AFNOConfig", "AFNO", "AFNOBlock", "AFNOMixer", "AFNO_PRESETS", "token_grid", "default_patch_size"]

#: Named settings of :class:`AFNOConfig`; each gives every architecture option. ``"fourcastnet"`` is
#: Pathak et al. (2022) and their released configuration: 8 x 8 patches of the 720 x 1440 ERA5 grid,
#: 12 blocks of width 768 with 8 diagonal blocks in the mixer; ``"small"`` and ``"tiny"`` are CPU sizes.
AFNO_PRESETS: dict[str, dict[str, object]] = {
    "fourcastnet": {"grid_shape": (720, 1440), "patch_size": 8, "embed_dim": 768, "depth": 12, "num_blocks": 8,
                    "mlp_ratio": 4.0, "sparsity_threshold": 0.01, "hard_thresholding_fraction": 1.0},
    "small": {"grid_shape": (32, 64), "patch_size": 4, "embed_dim": 128, "depth": 4, "num_blocks": 8,
              "mlp_ratio": 4.0, "sparsity_threshold": 0.01, "hard_thresholding_fraction": 1.0},
    "tiny": {"grid_shape": (32, 64), "patch_size": 4, "embed_dim": 32, "depth": 2, "num_blocks": 4,
             "mlp_ratio": 2.0, "sparsity_threshold": 0.01, "hard_thresholding_fraction": 1.0},
}

#: Patch sizes :func:`default_patch_size` chooses from, and the fewest tokens it leaves across the shorter side.
PATCH_SIZES = (8, 4, 2, 1)
MIN_TOKENS = 8


def token_grid(shape: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """Tokens ``(ceil(H / p), ceil(W / p))`` of an ``H x W`` grid padded up to multiples of the patch size ``p``."""
    return tuple(-(-n // patch_size) for n in shape)


def default_patch_size(shape: tuple[int, int]) -> int:
    """The largest of 8, 4, 2, 1 leaving at least 8 tokens across the shorter side (8 on 720 x 1440, 4 on 32 x 64)."""
    return next((p for p in PATCH_SIZES if min(shape) >= MIN_TOKENS * p), 1)


def _number(config: object, name: str, accept, description: str) -> None:
    """Check that option ``name`` is a finite real number that ``accept`` takes and store it as ``float``."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or not accept(value):
        raise ConfigError(f"{name} must be {description}, got {value!r}")
    object.__setattr__(config, name, float(value))


@dataclass(frozen=True, kw_only=True)
class AFNOConfig:
    """Options of the AFNO of FourCastNet v1 (Pathak et al. 2022, arXiv:2202.11214; the mixer: Guibas et
    al. 2021, arXiv:2111.13587).

    Every option left ``None`` takes the value of ``preset`` (:data:`AFNO_PRESETS`), so JSON options
    such as ``{"preset": "fourcastnet"}`` or ``--option preset=tiny --option depth=3`` name a model;
    the stored config holds the resolved values.

    Attributes:
        in_channels, out_channels: physical channels (FourCastNet: 20 and 20).
        preset: ``"fourcastnet"`` (the paper's model: 74,690,304 parameters with 20 channels in and
            out), ``"small"`` (about 0.6 million) or ``"tiny"`` (about 16 thousand): CPU sizes; default ``"small"``.
        grid_shape: the training grid ``(H, W)``; the learned positional embedding has one vector per
            token of it (:func:`token_grid`) and is interpolated to other grids.
        patch_size: ``p``: each ``p x p`` patch of the (padded) grid is one token.
        embed_dim: token width ``D``.
        depth: number of AFNO blocks.
        num_blocks: diagonal blocks of the mixer's complex weights (``D`` must be a multiple of it).
        mlp_ratio: hidden width of each block's MLP, ``int(D * mlp_ratio)``.
        sparsity_threshold: ``lambda`` of the softshrink of the mixer's Fourier coefficients (paper: 0.01).
        hard_thresholding_fraction: fraction ``0 < f <= 1`` of the frequencies kept per axis (1: all).
    """

    in_channels: int
    out_channels: int
    preset: str = "small"
    grid_shape: tuple[int, int] | None = None
    patch_size: int | None = None
    embed_dim: int | None = None
    depth: int | None = None
    num_blocks: int | None = None
    mlp_ratio: float | None = None
    sparsity_threshold: float | None = None
    hard_thresholding_fraction: float | None = None

    def __post_init__(self) -> None:
        one_of(self, "preset", tuple(AFNO_PRESETS))
        for name, value in AFNO_PRESETS[self.preset].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("in_channels", "out_channels", "patch_size", "embed_dim", "depth", "num_blocks"):
            positive_int(self, name)
        shape = self.grid_shape
        if (not isinstance(shape, (tuple, list)) or len(shape) != 2
                or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1 for n in shape)):
            raise ConfigError(f"grid_shape must be two positive integers (H, W), got {shape!r}")
        object.__setattr__(self, "grid_shape", tuple(int(n) for n in shape))
        if self.embed_dim % self.num_blocks:
            raise ConfigError(f"embed_dim ({self.embed_dim}) must be a multiple of num_blocks ({self.num_blocks})")
        _number(self, "mlp_ratio", lambda v: v > 0, "a positive number")
        if int(self.embed_dim * self.mlp_ratio) < 1:
            raise ConfigError(f"mlp_ratio {self.mlp_ratio} leaves no hidden units at embed_dim {self.embed_dim}")
        _number(self, "sparsity_threshold", lambda v: v >= 0, "a number >= 0")
        _number(self, "hard_thresholding_fraction", lambda v: 0 < v <= 1, "a number in (0, 1]")

    @classmethod
    def defaults_for(cls, grid: Grid, given: Mapping | None = None) -> dict[str, object]:
        """Options for training on a 2-D ``grid`` (box, bounded box or lat-lon sphere).

        ``grid_shape`` is the grid's shape, so the positional embedding fits the training grid;
        ``patch_size`` is :func:`default_patch_size` unless ``given`` names it or a ``preset`` (whose
        patch size is then kept). Raises :class:`~sciml.errors.ConfigError` for a 1-D grid.
        """
        if not isinstance(grid, Grid) or grid.ndim != 2:
            what = f"a {grid.ndim}-D {grid.kind!r} grid" if isinstance(grid, Grid) else f"a {type(grid).__name__}"
            raise ConfigError(f"afno works on 2-D grids (boxes or lat-lon spheres), not on {what}")
        given = given or {}
        options: dict[str, object] = {"grid_shape": tuple(grid.shape)}
        if "patch_size" not in given and "preset" not in given:
            options["patch_size"] = default_patch_size(grid.shape)
        return options


def _complex_block_linear(real: torch.Tensor, imag: torch.Tensor, weight: torch.Tensor,
                          bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a + ib)(W_r + iW_i) + (b_r + ib_i)`` per block: ``(..., blocks, c) x (blocks, c, c') -> (..., blocks, c')``."""
    def mix(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...bi,bio->...bo", x, w)

    return (mix(real, weight[0]) - mix(imag, weight[1]) + bias[0],
            mix(imag, weight[0]) + mix(real, weight[1]) + bias[1])


class AFNOMixer(nn.Module):
    """The AFNO token mixer on ``(batch, h, w, D)`` tokens (Guibas et al. 2021, sec. 3; FourCastNet's filter).

    ``z = FFT2(x)`` (``rfft2`` over the token grid, ``norm="ortho"``); in each kept mode ``k`` every
    channel block ``b`` (``D / num_blocks`` channels) goes through the same complex two-layer MLP,
    ``y_k = W2_b ReLU(W1_b z_k + b1_b) + b2_b`` with ReLU on real and imaginary parts; then
    ``S_lambda`` (softshrink of real and imaginary parts) and the residual: ``x + IFFT2(S_lambda(y))``.
    Hard thresholding keeps the modes with ``|k_1| < K_1`` and ``k_2 < K_2``, ``K_i = max(1, int(f (n_i // 2 + 1)))``
    (the lowest frequencies: all of them at ``f = 1``, the paper's setting); the others are zero.
    (FourCastNet's code slices the unshifted ``k_1`` axis around its middle instead, which for ``f < 1``
    keeps the highest ``|k_1|``.) The modes are computed in the weights' precision outside autocast
    (FFTs and a 0.01 threshold are not meaningful in bfloat16).

    Not shift-equivariant, unlike an FNO layer: a shift turns each mode by a phase, and the biases and
    the ReLU and softshrink of real and imaginary parts do not commute with phases.
    """

    def __init__(self, embed_dim: int, *, num_blocks: int, sparsity_threshold: float,
                 hard_thresholding_fraction: float) -> None:
        super().__init__()
        self.num_blocks = num_blocks
        self.sparsity_threshold = sparsity_threshold
        self.hard_thresholding_fraction = hard_thresholding_fraction
        block = embed_dim // num_blocks
        # [0] real and [1] imaginary parts of the block-diagonal complex weights and biases
        self.weight1 = nn.Parameter(0.02 * torch.randn(2, num_blocks, block, block))
        self.bias1 = nn.Parameter(0.02 * torch.randn(2, num_blocks, block))
        self.weight2 = nn.Parameter(0.02 * torch.randn(2, num_blocks, block, block))
        self.bias2 = nn.Parameter(0.02 * torch.randn(2, num_blocks, block))

    def kept_modes(self, h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
        """``(h, w // 2 + 1)`` booleans: the ``rfft2`` modes of an ``h x w`` token grid that hard thresholding keeps."""
        fraction = self.hard_thresholding_fraction
        k1 = torch.fft.fftfreq(h, 1 / h, device=device).abs().round()
        k2 = torch.arange(w // 2 + 1, device=device)
        keep1 = k1 < max(1, int(fraction * (h // 2 + 1)))
        keep2 = k2 < max(1, int(fraction * (w // 2 + 1)))
        return keep1[:, None] & keep2[None, :]

    def modes(self, tokens: torch.Tensor) -> torch.Tensor:
        """``S_lambda(y)``: the mixed Fourier coefficients ``(batch, h, w // 2 + 1, D)`` of ``tokens`` ``(batch, h, w, D)``."""
        batch, h, w, width = tokens.shape
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            z = torch.fft.rfft2(tokens.to(self.weight1.dtype), dim=(1, 2), norm="ortho")  # (batch, h, w // 2 + 1, D)
            z = z.reshape(batch, h, w // 2 + 1, self.num_blocks, width // self.num_blocks)
            real, imag = _complex_block_linear(z.real, z.imag, self.weight1, self.bias1)
            real, imag = _complex_block_linear(F.relu(real), F.relu(imag), self.weight2, self.bias2)
            shrunk = F.softshrink(torch.stack([real, imag], dim=-1), self.sparsity_threshold)
            y = torch.view_as_complex(shrunk).reshape(batch, h, w // 2 + 1, width)
            return y * self.kept_modes(h, w, device=tokens.device)[:, :, None]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, w = tokens.shape[1:3]
        mixed = torch.fft.irfft2(self.modes(tokens), s=(h, w), dim=(1, 2), norm="ortho")
        return tokens + mixed.to(tokens.dtype)


class AFNOBlock(nn.Module):
    """One FourCastNet block on ``(batch, h, w, D)``: ``u = x + mixer(LN(x))``, ``u + MLP(LN(u))`` (GELU MLP).

    The mixer adds its own input (the normalised tokens), and the block input is added after it: the
    "double skip" of FourCastNet's code.
    """

    def __init__(self, embed_dim: int, *, mlp_ratio: float, num_blocks: int, sparsity_threshold: float,
                 hard_thresholding_fraction: float) -> None:
        super().__init__()
        hidden = int(embed_dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.mixer = AFNOMixer(embed_dim, num_blocks=num_blocks, sparsity_threshold=sparsity_threshold,
                               hard_thresholding_fraction=hard_thresholding_fraction)
        self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mixed = tokens + self.mixer(self.norm1(tokens))
        return mixed + self.mlp(self.norm2(mixed))


class AFNO(nn.Module):
    """FourCastNet's AFNO: ``(batch, in_channels, H, W) -> (batch, out_channels, H, W)``; takes an :class:`AFNOConfig`.

    Patch embedding (a ``p x p`` convolution of stride ``p``) + learned positional embedding, ``depth``
    :class:`AFNOBlock` s, a linear head to ``out_channels * p * p`` values per token (no bias, as in
    FourCastNet) and pixel shuffle back to the grid. Any grid works: H is padded up to a multiple of ``p``
    by repeating the first and last rows (replicate: latitude is not periodic; the padding is split
    between both ends) and W by wrapping around (circular: longitude, or x on a periodic box), and the
    output is cropped back; the positional embedding is interpolated bilinearly to the token grid when
    it differs from that of ``grid_shape`` (e.g. 721 x 1440 ERA5 -> 91 x 180 tokens at ``p = 8``). The
    mixer's FFT treats the token grid as periodic in both directions, as in the paper.
    Initialisation as FourCastNet's: linear weights and the positional embedding normal with std 0.02,
    zero linear biases, the mixer's weights and biases ``0.02 N(0, 1)``, torch's default for the patch
    embedding.
    """

    def __init__(self, config: AFNOConfig) -> None:
        super().__init__()
        self.config = config
        p, width = config.patch_size, config.embed_dim
        self.patch_embedding = nn.Conv2d(config.in_channels, width, kernel_size=p, stride=p)
        self.position_embedding = nn.Parameter(torch.zeros(1, width, *token_grid(config.grid_shape, p)))
        self.blocks = nn.ModuleList(
            AFNOBlock(width, mlp_ratio=config.mlp_ratio, num_blocks=config.num_blocks,
                      sparsity_threshold=config.sparsity_threshold,
                      hard_thresholding_fraction=config.hard_thresholding_fraction)
            for _ in range(config.depth)
        )
        self.head = nn.Linear(width, config.out_channels * p * p, bias=False)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def position_embedding_at(self, h: int, w: int) -> torch.Tensor:
        """The positional embedding on an ``h x w`` token grid: ``(1, D, h, w)``."""
        if self.position_embedding.shape[-2:] == (h, w):
            return self.position_embedding
        return F.interpolate(self.position_embedding, size=(h, w), mode="bilinear", align_corners=False)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if field.ndim != 4 or field.shape[1] != self.config.in_channels:
            raise ConfigError(f"AFNO expects (batch, {self.config.in_channels}, H, W), got {tuple(field.shape)}")
        p = self.config.patch_size
        nlat, nlon = field.shape[-2:]
        lat_pad, lon_pad = (-nlat) % p, (-nlon) % p
        south = lat_pad // 2
        rows = (torch.arange(nlat + lat_pad, device=field.device) - south).clamp(0, nlat - 1)  # replicate
        columns = torch.arange(nlon + lon_pad, device=field.device) % nlon  # circular
        padded = field[:, :, rows][:, :, :, columns]  # (batch, channel, lat, lon), multiples of p
        tokens = self.patch_embedding(padded)  # (batch, D, h, w)
        tokens = tokens + self.position_embedding_at(*tokens.shape[-2:])
        tokens = tokens.permute(0, 2, 3, 1)  # (batch, h, w, D)
        for block in self.blocks:
            tokens = block(tokens)
        patches = self.head(tokens).permute(0, 3, 1, 2)  # (batch, out_channels * p * p, h, w)
        out = F.pixel_shuffle(patches, p)  # (batch, out_channels, h p, w p)
        return out[:, :, south:south + nlat, :nlon]
