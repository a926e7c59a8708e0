"""Training from a file against training from memory: steps per second of ``fit_surrogate`` both ways.

The same Navier-Stokes training set (the quickstart's setting: 64 x 64, lag 1) is written as CF NetCDF
(compressed, as ``sciml generate`` writes it) and trained on (a) lazily opened (``sciml.data.open``: every
batch is read from the file, which the first run leaves in the page cache) and (b) loaded into memory
(``.load()``), with the same model, seed and item order, so both train identically (checked: equal
losses). Runs alternate (file, memory, file, memory, ...) so load drift hits both alike; each run's
time is its training loop (``History`` ``elapsed_s`` of the last epoch), and the ratio is computed per
pair. Target: file / memory steps per second >= 0.8.

Usage: python benchmarks/train_streaming.py [--pairs 3] [--n 128] [--epochs 2]
Writes benchmarks/results/cpu/train_streaming.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from sciml._atomic import write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    from sciml import data
    from sciml.datasets import generate
    from sciml.surrogate import fit_surrogate
    from sciml.train import TrainConfig

    torch.set_num_threads(2)
    config = TrainConfig(epochs=args.epochs, batch_size=8, lr=3e-3, seed=0, device="cpu", progress=False)
    options = {"hidden_channels": 32, "n_modes": (16, 16)}
    runs = {"file": [], "memory": []}
    losses = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = data.write(generate("ns2d", args.n, 64, seed=0, times=[0.0, 2.0], progress=False), Path(tmp) / "train.nc")
        for _ in range(args.pairs):
            for kind in ("file", "memory"):
                ds = data.open(path)
                ds = ds.load() if kind == "memory" else ds
                _, history = fit_surrogate(ds, inputs=["vorticity"], outputs=["vorticity"], lag=1, model_options=options,
                                           config=config)
                runs[kind].append(history[-1]["elapsed_s"])
                losses[kind] = [r["train_loss"] for r in history]
    steps = args.epochs * -(-args.n // config.batch_size)
    ratios = [memory / file for file, memory in zip(runs["file"], runs["memory"])]
    result = {"steps_per_run": steps, "seconds": runs, "file_over_memory_steps_per_second": ratios,
              "median_ratio": statistics.median(ratios), "identical_losses": losses["file"] == losses["memory"],
              "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__}}
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "train_streaming.json", json.dumps(result, indent=2))
    text = ("| run pair | file s | memory s | file / memory steps/s |\n|---|---|---|---|\n"
            + "".join(f"| {i} | {f:.1f} | {m:.1f} | {r:.3f} |\n"
                      for i, (f, m, r) in enumerate(zip(runs["file"], runs["memory"], ratios)))
            + f"\nMedian ratio {result['median_ratio']:.3f} over {len(ratios)} pairs ({steps} steps per run, FNO 64x64, "
              f"batch 8, {result['machine']['torch_threads']} threads); identical losses: {result['identical_losses']}.\n")
    write_text(out / "train_streaming.md", text)
    print(text)


if __name__ == "__main__":
    main()
