"""Training-loop overhead: steps per second of ``sciml.train.fit`` against a bare PyTorch loop.

One run trains the same FNO (``build("fno", in_channels=1, out_channels=1, n_modes=(12, 12),
hidden_channels=32)``) on the same random data (512 samples of 1x64x64, batch 16, MSE loss) for one
epoch per call with
  * a bare loop: ``DataLoader(shuffle=True)`` + AdamW + forward/backward/step, nothing else;
  * ``sciml.train.fit`` with its defaults (cosine schedule, gradient clipping, loss accumulation);
  * ``neuralop.training.Trainer`` (neuraloperator's own loop) with AdamW and a step-LR schedule.
Calls are interleaved (the order rotates every repeat) after one warm-up call each; each call is
timed whole (loader and optimiser set-up included) and reported as the median over repeats (the minimum
too: on a shared machine, interference only adds time). Target: fit / bare >= 0.95.

Usage: python benchmarks/train_loop.py [--device cpu|cuda] [--repeats 7]
Writes benchmarks/results/<cpu|cuda>/train_loop.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from sciml._atomic import write_text
from sciml.models import build
from sciml.timing import timed
from sciml.train import Task, TrainConfig, fit

SAMPLES, SIZE, BATCH = 512, 64, 16


def mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    return (pred - true).pow(2).mean()


def bare(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = mse(model(xb), yb)
        loss.backward()
        optimizer.step()


class _MSE(Task):
    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        return mse(model(batch[0]), batch[1])


def sciml_fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
    config = TrainConfig(epochs=1, batch_size=BATCH, lr=1e-3, device=str(device), progress=False)
    fit(_MSE(model), (x, y), config=config)


class _Pairs(Dataset):
    """``{"x", "y"}`` items, the layout neuraloperator's Trainer reads."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


class _KeywordModel(nn.Module):
    """The Trainer calls ``model(**batch)``; pass ``x`` on and ignore ``y``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def neuralop_trainer(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
    from neuralop.training import Trainer

    loader = DataLoader(_Pairs(x, y), batch_size=BATCH, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100)
    trainer = Trainer(model=_KeywordModel(model), n_epochs=1, device=str(device), verbose=False)
    trainer.train(loader, {}, optimizer, scheduler, training_loss=lambda out, y, **_: mse(out, y), eval_losses={})


LOOPS = {"bare PyTorch": bare, "sciml.train.fit": sciml_fit, "neuralop Trainer": neuralop_trainer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(2)
    load = os.getloadavg()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(SAMPLES, 1, SIZE, SIZE, generator=gen)
    y = torch.randn(SAMPLES, 1, SIZE, SIZE, generator=gen)
    torch.manual_seed(0)
    initial = build("fno", in_channels=1, out_channels=1, n_modes=(12, 12), hidden_channels=32)
    models = {name: copy.deepcopy(initial).to(device) for name in LOOPS}
    steps = -(-SAMPLES // BATCH)
    for name, loop in LOOPS.items():  # warm-up: allocator, kernels, lazy imports
        loop(models[name], x, y, device)
    seconds = {name: [] for name in LOOPS}
    names = list(LOOPS)
    for repeat in range(args.repeats):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            seconds[name].append(timed(lambda: LOOPS[name](models[name], x, y, device), device=device)[1])
    base = statistics.median(seconds["bare PyTorch"])
    rows = [{"loop": name, "steps": steps, "s_per_epoch": statistics.median(s), "s_min": min(s), "s_max": max(s),
             "steps_per_s": steps / statistics.median(s), "ratio_to_bare": base / statistics.median(s),
             "ratio_to_bare_min": min(seconds["bare PyTorch"]) / min(s)}
            for name, s in seconds.items()]
    import neuralop

    machine = {"device": str(device), "torch": torch.__version__, "neuraloperator": neuralop.__version__,
               "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "load_average_at_start": load,
               "name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()}
    setup = {"samples": SAMPLES, "shape": [1, SIZE, SIZE], "batch": BATCH, "repeats": args.repeats,
             "model": "fno n_modes=(12, 12) hidden_channels=32"}
    out = Path(__file__).parent / "results" / device.type
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "train_loop.json", json.dumps({"machine": machine, "setup": setup, "results": rows}, indent=2))
    table = ["| loop | steps/s | s per epoch, median (min-max) | speed ratio to bare, medians (target >= 0.95) | ratio of minima |",
             "|---|---|---|---|---|"]
    table += [f"| {r['loop']} | {r['steps_per_s']:.2f} | {r['s_per_epoch']:.2f} ({r['s_min']:.2f}-{r['s_max']:.2f}) "
              f"| {r['ratio_to_bare']:.3f} | {r['ratio_to_bare_min']:.3f} |" for r in rows]
    text = f"Machine: {machine}\n\nSetup: {setup}\n\n" + "\n".join(table) + "\n"
    write_text(out / "train_loop.md", text)
    print(text)


if __name__ == "__main__":
    main()
