"""Train a tiny conv net with ``sciml.train.fit``; run by tests/test_train_loop.py directly and under torchrun.

Run as a script it writes ``<out>/params.pt`` (the final parameters, tensors only; with ``--ema`` also the
moving average under ``ema/``) and ``<out>/history.json`` (the history without wall-clock times) from
rank 0; :func:`run` returns them.
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sciml.train import Task, TrainConfig, fit, seed_everything


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(n, 2, 8, 8)`` and a smooth nonlinear target ``(n, 1, 8, 8)``."""
    x = torch.randn(n, 2, 8, 8, generator=torch.Generator().manual_seed(seed))
    return x, torch.tanh(x[:, :1] * x[:, 1:]) + 0.5 * x[:, :1].roll(1, dims=-1)


class Spectral(nn.Module):
    """``x + irfft2(w * rfft2(x))`` with complex weights on the lowest modes: a complex parameter, as in an FNO."""

    def __init__(self, channels: int, modes: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(0.1 * torch.randn(channels, modes, modes, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft2(x)
        m = self.weight.shape[-1]
        low = torch.zeros_like(spectrum)
        low[..., :m, :m] = spectrum[..., :m, :m] * self.weight
        return x + torch.fft.irfft2(low, s=x.shape[-2:])


class Regression(Task):
    """MSE with optional input noise from the global RNG (``stochastic``), a moving average of the weights
    (``ema``: validated and kept as the best state) and target noise from the task's own generator
    (``task_noise``), the last two checkpointed as task state."""

    def __init__(self, model, *, stochastic=False, ema=False, task_noise=False, step_delay=0.0):
        super().__init__(model)
        self.stochastic, self.step_delay = stochastic, step_delay
        self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9)) if ema else None
        self.noise = torch.Generator().manual_seed(7) if task_noise else None

    def loss(self, model, batch):
        x, y = batch
        if self.stochastic:
            x = x + 0.05 * torch.randn_like(x)
        if self.noise is not None:
            y = y + 0.01 * torch.randn(y.shape, generator=self.noise)
        if self.step_delay:
            time.sleep(self.step_delay)
        mse = (model(x) - y).pow(2).mean()
        return mse, {"mae": (model(x) - y).abs().mean()}

    def after_step(self, model, step):
        if self.ema is not None:
            self.ema.update_parameters(model)

    def validation_model(self, model):
        return self.ema.module if self.ema is not None else model

    def state_dict(self):
        state = {}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.noise is not None:
            state["noise"] = self.noise.get_state()
        return state

    def load_state_dict(self, state):
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.noise is not None:
            self.noise.set_state(state["noise"])


def run(argv: list[str] | None = None) -> tuple[argparse.Namespace, Regression, list[dict]]:
    """Parse ``argv`` and train; the tests also call this in their own process for reference runs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=37)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--log")
    parser.add_argument("--stochastic", action="store_true", help="dropout and input noise: exercises RNG restore")
    parser.add_argument("--ema", action="store_true", help="a moving average of the weights")
    parser.add_argument("--task-noise", action="store_true", help="target noise from a task-owned generator")
    parser.add_argument("--step-delay", type=float, default=0.0, help="seconds of sleep per step (a slow run to kill)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seed_everything(0)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1, padding_mode="circular"), nn.GELU(), Spectral(8),
                          nn.Dropout(0.2 if args.stochastic else 0.0), nn.Conv2d(8, 1, 3, padding=1, padding_mode="circular"))
    task = Regression(model, stochastic=args.stochastic, ema=args.ema, task_noise=args.task_noise,
                      step_delay=args.step_delay)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-2, seed=0, device="cpu",
                         progress=False, checkpoint_every=args.checkpoint_every)
    history = fit(task, data(args.n_train, 1), val_data=data(11, 2), config=config, log_path=args.log,
                  checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    return args, task, [{k: v for k, v in r.items() if k != "elapsed_s"} for r in history]


def state(task: Regression) -> dict[str, torch.Tensor]:
    """The model's parameters and, with an EMA, the averaged ones under ``ema/``."""
    tensors = {k: v.detach().clone() for k, v in task.model.state_dict().items()}
    if task.ema is not None:
        tensors.update({f"ema/{k}": v.detach().clone() for k, v in task.ema.state_dict().items()})
    return tensors


def main() -> None:
    args, task, history = run()
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(state(task), out / "params.pt")
        (out / "history.json").write_text(json.dumps(history))


if __name__ == "__main__":
    main()
