"""Mixed precision: autocast for the forward pass and a gradient scaler for fp16."""

from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = ["Precision", "AUTOCAST"]

AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """``autocast()`` contexts and the scaler of one run: ``fp32`` (neither), ``bf16`` (autocast on CUDA or
    CPU) or ``fp16`` (autocast and a ``GradScaler``; CUDA only)."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError(f"precision 'fp16' needs CUDA, training is on {device}; use precision='bf16'")
        self.dtype, self.device = AUTOCAST[precision], device
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
             grad_clip: float | None) -> None:
        """Backward, clip the global gradient norm of ``params`` (unscaled), step and update the scale."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if grad_clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
