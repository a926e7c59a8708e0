"""Why ``sciml train``'s defaults trailed neuraloperator's Darcy recipe: a controlled study of TrainConfig.

Setting (issue 18, item 3): the public small-Darcy benchmark of neuraloperator, rebuilt with the ``darcy``
recipe as ``sciml generate darcy`` makes it: thresholded coefficients (12 / 3), 1,000 training pairs at
16 x 16 nodes (seed 0), 200 test pairs at 16 x 16 and, zero-shot, at 32 x 32 (seed 1), each solved on its
own grid. Every sciml row is ``sciml train``'s path: :func:`sciml.fit_surrogate` with the default model
(FNO with the bounded-grid defaults), 10 % of the pairs held out for best-epoch selection
(``--val-fraction 0.1``), the same seed and the same number of epochs; only the named TrainConfig
fields differ from ``TrainConfig()``. The ``neuralop`` row runs neuraloperator's own recipe
(``config/darcy_config.py`` of neuraloperator/neuraloperator: FNO 16 x 16 modes, width 32, projection
ratio 2, group norm; AdamW lr 5e-3, weight decay 1e-4; StepLR(60, 0.5), which does not step within
these epochs; H1 training loss; batch 16; inputs and outputs normalised by their mean and std) through
the ``neuralop`` package in a plain loop, at the same number of epochs.

Fixed epochs, no wall-clock budget: the numbers do not depend on the machine's load.

Usage: nice -n 10 python benchmarks/darcy_defaults.py [--epochs 10] [--only NAME ...] (all rows: about 25 CPU-minutes)
Writes ``benchmarks/results/cpu/darcy_defaults.{json,md}`` (rows already measured are kept, so the study can
be run in parts with ``--only``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "cpu"

N_TRAIN, N_TEST = 1000, 200

# name -> the TrainConfig fields that differ from TrainConfig() (plus the number of epochs).
RUNS = {
    "defaults": {},
    "lr3e-3": {"lr": 3e-3},
    "lr5e-3": {"lr": 5e-3},
    "lr1e-2": {"lr": 1e-2},
    "lr3e-3_batch8": {"lr": 3e-3, "batch_size": 8},
    "lr5e-3_batch8": {"lr": 5e-3, "batch_size": 8},
    "lr1e-3_batch8": {"batch_size": 8},
    "lr5e-3_constant": {"lr": 5e-3, "schedule": "constant"},
}


def data():
    from datasets import darcy

    train = darcy.generate(N_TRAIN, 16, seed=0, progress=False)
    tests = {n: darcy.generate(N_TEST, n, seed=1, progress=False) for n in (16, 32)}
    return train, tests


def rel_l2(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean over samples of ``||pred - true|| / ||true||`` on the nodes (trapezoidal weights)."""
    from sciml.grids import Grid
    from sciml.metrics import rel_l2 as metric

    return float(metric(pred.double(), true.double(), grid=Grid.bounded(*true.shape[-2:])).mean())


def sciml_run(train, tests, *, epochs: int, changes: dict) -> dict:
    from sciml.data import split_by_trajectory, stack_fields
    from sciml.surrogate import fit_surrogate
    from sciml.train import TrainConfig

    config = TrainConfig(**{"epochs": epochs, "device": "cpu", "progress": False, **changes})
    parts = split_by_trajectory(train, {"train": 0.9, "val": 0.1}, seed=config.seed)
    start = time.process_time()
    surrogate, history = fit_surrogate(parts["train"], inputs=["a"], outputs=["pressure"], validation=parts["val"],
                                       config=config)
    cpu_seconds = time.process_time() - start
    errors = {str(n): rel_l2(surrogate.predict_tensor(stack_fields(ds, ["a"]), device="cpu"), stack_fields(ds, ["pressure"]))
              for n, ds in tests.items()}
    best = min(history, key=lambda r: r["val_loss"])
    return {"rel_l2": errors, "cpu_seconds": cpu_seconds, "epochs": len(history), "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"], "final_train_loss": history[-1]["train_loss"],
            "val_loss_trend_per_epoch": history.trend("val_loss"), "changes": changes,
            "config": {k: getattr(config, k) for k in ("lr", "batch_size", "schedule", "weight_decay", "warmup_fraction",
                                                       "grad_clip", "epochs")},
            "val_loss_by_epoch": [r["val_loss"] for r in history]}


def neuralop_run(train, tests, *, epochs: int, seed: int = 0) -> dict:
    """neuraloperator's ``darcy_config.py`` recipe through the neuralop package, in a plain loop."""
    from neuralop import H1Loss
    from neuralop.models import FNO

    from sciml.data import stack_fields

    torch.manual_seed(seed)
    a, p = stack_fields(train, ["a"]), stack_fields(train, ["pressure"])  # (sample, 1, y, x)
    a_mean, a_std, p_mean, p_std = a.mean(), a.std(), p.mean(), p.std()
    model = FNO(n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=32, projection_channel_ratio=2,
                norm="group_norm")
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=60, gamma=0.5)
    h1 = H1Loss(d=2)
    generator = torch.Generator().manual_seed(seed)
    start = time.process_time()
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(a), generator=generator).split(16):
            optimizer.zero_grad(set_to_none=True)
            loss = h1(model((a[index] - a_mean) / a_std), (p[index] - p_mean) / p_std)
            loss.backward()
            optimizer.step()
        scheduler.step()
    cpu_seconds = time.process_time() - start
    model.eval()
    with torch.no_grad():
        errors = {str(n): rel_l2(model((stack_fields(ds, ["a"]) - a_mean) / a_std) * p_std + p_mean,
                                 stack_fields(ds, ["pressure"])) for n, ds in tests.items()}
    return {"rel_l2": errors, "cpu_seconds": cpu_seconds, "epochs": epochs,
            "recipe": "neuraloperator config/darcy_config.py: FNO modes 16x16 width 32 projection ratio 2 group_norm; "
                      "AdamW lr 5e-3 wd 1e-4; StepLR(60, 0.5); H1 loss; batch 16; in/out normalised"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every run (default: %(default)s)")
    parser.add_argument("--only", nargs="*", default=None, help=f"runs to measure, of {[*RUNS, 'neuralop']} (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    path = OUT / "darcy_defaults.json"
    result = json.loads(path.read_text()) if path.is_file() else {}
    if result.get("epochs") != args.epochs:
        result = {}
    result.update({"setting": f"darcy threshold 12/3, {N_TRAIN} train pairs at 16x16 (seed 0, 10% for validation), "
                              f"{N_TEST} test pairs at 16 and 32 (seed 1), each solved on its own grid",
                   "epochs": args.epochs,
                   "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                               "torch": torch.__version__, "python": platform.python_version()},
                   "command": "nice -n 10 python " + " ".join(["benchmarks/darcy_defaults.py", *sys.argv[1:]])})
    runs = result.setdefault("runs", {})
    wanted = args.only if args.only is not None else [*RUNS, "neuralop"]
    train, tests = data()
    from sciml._atomic import write_text

    for name in wanted:
        if name == "neuralop":
            try:
                import neuralop  # noqa: F401
            except ImportError:
                runs[name] = {"skipped": "neuralop is not installed"}
                continue
            runs[name] = neuralop_run(train, tests, epochs=args.epochs)
        else:
            runs[name] = sciml_run(train, tests, epochs=args.epochs, changes=RUNS[name])
        runs[name]["command"] = result["command"]
        print(name, json.dumps({k: runs[name][k] for k in ("rel_l2", "cpu_seconds")}), flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(result, indent=2))
        write_text(OUT / "darcy_defaults.md", report(result))
    print(report(result))


def report(result: dict) -> str:
    lines = [f"# Darcy 16x16: TrainConfig defaults against neuraloperator's recipe ({result['epochs']} epochs each)", "",
             result["setting"] + ".", "", f"Machine: {result['machine']}. Commands (the study ran in parts): "
             + ", ".join(f"`{c}`" for c in dict.fromkeys(r.get("command", result["command"]) for r in result["runs"].values()))
             + ".", "",
             "| run | changes from TrainConfig() | rel L2 @16 | rel L2 @32 (zero-shot) | best epoch | CPU s |",
             "|---|---|---|---|---|---|"]
    for name, row in result["runs"].items():
        if "skipped" in row:
            lines.append(f"| {name} | {row['skipped']} | | | | |")
            continue
        changes = "neuraloperator's recipe via neuralop" if name == "neuralop" else (
            ", ".join(f"{k}={v}" for k, v in row["changes"].items()) or "none (lr 1e-3, batch 16, cosine)")
        lines.append(f"| {name} | {changes} | {row['rel_l2']['16']:.4f} | {row['rel_l2']['32']:.4f} | "
                     f"{row.get('best_epoch', '—')} | {row['cpu_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
