"""Navier-Stokes surrogate in the setting of Li et al. (2021), nu = 1e-3, 64 x 64, and zero-shot at 2x and 4x.

Li et al. train FNO-2D on 1,000 trajectories of the ``ns2d`` problem (their forcing and initial
vorticity, the ``ns2d`` recipe here), feed the vorticity at ``t = 0..9`` and predict ``t = 10..49``
autoregressively, and report a relative L2 error of 0.0128 on that rollout.

Here the surrogate is a one-step map ``w(t) -> w(t + 1)`` (one state in, not ten), trained on every
consecutive pair of the training trajectories, and evaluated as they do: from ``w(10)`` rolled out to
``t = 49``; the error is the relative L2 over the whole space-time rollout of a trajectory, averaged
over trajectories. Zero-shot super-resolution: a few test initial conditions solved natively at 64,
128 and 256 (resolution-consistent recipe: the same continuous initial vorticity) up to ``t = 11``;
the one-step error of the same surrogate on every pair ``t -> t + 1`` on each grid. (A 39-step
rollout at 256 x 256 costs about 40,000 solver steps per trajectory on CPU, so the rollout metric is
measured at 64 only.) Training data are solved at 64 x 64 directly (Li et al. solved at 256 and
subsampled).

``--full``: the paper's size (1,000 training trajectories, 200 test; needs a GPU for a sensible time).
Default (CPU): a reduced configuration, printed with its results (about 45 minutes on the shared
2-core machine with ``--threads 1``, 37 of them training). Writes
``benchmarks/results/<device>/ns_surrogate.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sciml._atomic import write_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T_INPUT, T_END = 10, 49  # rollout from w(10) to w(49): 39 steps of one time unit
T_ZERO_SHOT = 11
CONFIGS = {
    # training / test trajectories, zero-shot trajectories, epochs, model options
    "reduced": {"n_train": 96, "n_test": 16, "n_zero_shot": 4, "epochs": 20,
                "model": {"n_modes": (12, 12), "hidden_channels": 24, "n_layers": 4}},
    "full": {"n_train": 1000, "n_test": 200, "n_zero_shot": 16, "epochs": 100,
             "model": {"n_modes": (12, 12), "hidden_channels": 32, "n_layers": 4}},
}
RESOLUTIONS = (64, 128, 256)


def rollout_error(surrogate, truth: torch.Tensor, device: str) -> float:
    """Relative L2 over the space-time rollout ``w(11..49)`` from ``w(10)``, averaged over trajectories.

    ``truth``: ``(sample, time, y, x)`` at ``t = 0..49``.
    """
    start = truth[:, T_INPUT:T_INPUT + 1]  # (sample, 1, y, x): the state as one channel
    steps = T_END - T_INPUT
    pred = surrogate.predict_tensor(start, steps=steps, device=device)[:, :, 0]  # (sample, steps, y, x)
    target = truth[:, T_INPUT + 1:T_END + 1].to(pred.dtype)
    num = (pred - target).flatten(1).norm(dim=1)
    return float((num / target.flatten(1).norm(dim=1)).mean())


def one_step_error(surrogate, truth: torch.Tensor, device: str) -> float:
    """Mean relative L2 of ``w(t) -> w(t + 1)`` over every consecutive pair of ``truth (sample, time, y, x)``."""
    inputs = truth[:, :-1].reshape(-1, 1, *truth.shape[-2:])
    target = truth[:, 1:].reshape(-1, 1, *truth.shape[-2:])
    pred = surrogate.predict_tensor(inputs, device=device)
    num = (pred - target.to(pred.dtype)).flatten(1).norm(dim=1)
    return float((num / target.flatten(1).norm(dim=1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the paper's size (GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a shared machine)")
    args = parser.parse_args()
    from datasets import ns2d
    from sciml.surrogate import fit_surrogate
    from sciml.train import TrainConfig

    torch.set_num_threads(args.threads)
    name = "full" if args.full else "reduced"
    config = CONFIGS[name]
    times = [float(t) for t in range(T_END + 1)]
    start = time.perf_counter()
    train = ns2d.generate(config["n_train"], 64, seed=0, times=times, device=args.device, progress=True)
    data_seconds = time.perf_counter() - start
    print(f"training data: {data_seconds:.0f} s", flush=True)
    settings = TrainConfig(epochs=config["epochs"], batch_size=32, lr=3e-3, seed=0, device=args.device, progress=True)
    surrogate, history = fit_surrogate(train, inputs=["vorticity"], outputs=["vorticity"], lag=1,
                                       model_options=config["model"], config=settings)
    train_seconds = surrogate.provenance["train_seconds"]
    print(f"trained {len(history)} epochs in {train_seconds:.0f} s", flush=True)
    test = ns2d.generate(config["n_test"], 64, seed=1, times=times, device=args.device, progress=True)
    rollout = rollout_error(surrogate, torch.from_numpy(np.asarray(test["vorticity"].values)), args.device)
    print(f"rollout rel L2 at 64x64: {rollout:.4f}", flush=True)
    errors, truth_seconds = {}, {}
    for n in RESOLUTIONS:
        start = time.perf_counter()
        test = ns2d.generate(config["n_zero_shot"], n, seed=1, times=times[:T_ZERO_SHOT + 1], device=args.device,
                             progress=True)
        truth_seconds[n] = time.perf_counter() - start
        errors[n] = one_step_error(surrogate, torch.from_numpy(np.asarray(test["vorticity"].values)), args.device)
        print(f"{n}x{n}: one-step rel L2 {errors[n]:.4f}", flush=True)
    device = torch.device(args.device)
    machine = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine(),
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    result = {"config": name, **{k: v for k, v in config.items() if k != "model"}, "model": config["model"],
              "machine": machine, "data_seconds": data_seconds, "train_seconds": train_seconds,
              "epochs_run": len(history), "rollout_rel_l2_64": rollout, "one_step_rel_l2": errors,
              "truth_seconds": truth_seconds, "zero_shot_ratio": {n: errors[n] / errors[64] for n in errors},
              "paper_fno2d_rel_l2": 0.0128}
    out = ROOT / "benchmarks" / "results" / ("cuda" if device.type == "cuda" else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "ns_surrogate.json", json.dumps(result, indent=2))
    rows = ["| grid | one-step rel L2 (t -> t+1, t = 0..10) | / error at 64 |", "|---|---|---|"]
    rows += [f"| {n}x{n} | {e:.4f} | {e / errors[64]:.3f} |" for n, e in errors.items()]
    text = "\n".join([
        f"Machine: {machine}", "",
        f"Configuration `{name}`: {config['n_train']} training trajectories at 64x64 (t = 0..49), FNO "
        f"{config['model']}, one-step map trained {len(history)} epochs in {train_seconds:.0f} s; "
        f"data generation {data_seconds:.0f} s.", "",
        f"**Rollout (Li et al. metric), {config['n_test']} test trajectories: relative L2 {rollout:.4f}** over "
        "t = 11..49 from w(10). Li et al. (2021), FNO-2D with 1,000 trajectories and 10 input steps: 0.0128.", "",
        f"Zero-shot super-resolution, {config['n_zero_shot']} trajectories solved natively on each grid "
        "(target: <= 1.3x the 64x64 error):", "", *rows, ""])
    write_text(out / "ns_surrogate.md", text)
    print(text)


if __name__ == "__main__":
    main()
