"""Decay of turbulence statistics: neural ODE against the calibrated k-epsilon model and a power law.

Data: the ``turbulence3d`` recipe at 16^3 (random initial spectra E ~ k^4 exp(-2 (k / 2)^2), K_0 = 0.5,
times 0, 0.25, ..., 10, about four initial turnover times), unstratified, with the viscosity drawn
log-uniformly per run:

* training: ``--n-train`` runs, nu in [0.008, 0.04] (Re about 9 to 45), each observed at its own random half
  of the output times (irregular times);
* interpolation: 8 held-out runs (other initial conditions, other nu) inside it, nu in [0.009, 0.035];
* extrapolation: 4 runs at nu in [0.005, 0.008] (higher Re) and 4 at nu in [0.04, 0.06] (lower Re), outside it.

The neural ODE (``sciml.node``, rk4, 2 x 64 tanh) is trained with :func:`sciml.node.fit_statistics_model` for a
fixed number of epochs; the k-epsilon constant ``C_eps2`` and the power law ``(n, t_0)`` are fitted to the
same training runs. Metric: the mean relative error ``mean_t |eps_hat - eps| / eps`` of the dissipation over the
whole decay from each run's initial state, averaged over the runs (also of K). Target: the neural ODE's error
at most half of k-epsilon's.

Usage: nice -n 10 python benchmarks/node_decay.py [--quick] [--epochs N] [--n-train N] [--cache DIR]
Writes benchmarks/results/cpu/node_decay.{json,md}. Same seed, same numbers (fixed epochs, no time budget).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from sciml._atomic import write_text

TIMES = tuple(round(0.25 * i, 10) for i in range(41))
SETS = {  # name: (first_sample, count, viscosity range)
    "train": (0, None, (0.008, 0.04)),
    "interpolation": (1000, 8, (0.009, 0.035)),  # inside the training runs' realised range
    "extrapolation_high_re": (2000, 4, (0.005, 0.008)),
    "extrapolation_low_re": (3000, 4, (0.04, 0.06)),
}


def data(name: str, n_train: int, resolution: int, cache: Path | None):
    import xarray as xr
    from sciml.datasets import generate

    first, count, nu = SETS[name]
    count = n_train if count is None else count
    path = None if cache is None else cache / f"node_decay_{name}_{count}_{resolution}_{nu[0]:g}_{nu[1]:g}.nc"
    if path is not None and path.is_file():
        return xr.load_dataset(path)
    ds = generate("turbulence3d", count, resolution, seed=0, first_sample=first, viscosity=nu, times=TIMES,
                  progress=False)
    if path is not None:
        from sciml.data import write

        path.parent.mkdir(parents=True, exist_ok=True)
        write(ds, path, overwrite=True)
    return ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (default: off)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 300, quick 60)")
    parser.add_argument("--n-train", type=int, default=None, help="training runs (default: 24, quick 8)")
    parser.add_argument("--resolution", type=int, default=16, help="grid points per side (default: 16)")
    parser.add_argument("--cache", type=Path, default=None, help="directory to keep the generated data in (default: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    quick = args.quick
    epochs = args.epochs or (60 if quick else 300)
    n_train = args.n_train or (8 if quick else 24)

    from sciml.node import (
        StatisticsConfig,
        decay_errors,
        fit_statistics_model,
        predict_statistics,
    )
    from sciml.train import TrainConfig

    start = time.perf_counter()
    sets = {name: data(name, n_train, args.resolution, args.cache) for name in SETS}
    data_seconds = time.perf_counter() - start
    config = StatisticsConfig(hidden=64, layers=2, method="rk4", step=0.1)
    train_config = TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, weight_decay=0.0, device="cpu", progress=False)
    start = time.perf_counter()
    model, history = fit_statistics_model(sets["train"], config=config, train_config=train_config, irregular=0.5,
                                          seed=0)
    train_seconds = time.perf_counter() - start
    results = {}
    import warnings

    for name in SETS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predicted = predict_statistics(model, sets[name])
        results[name] = {
            "runs": int(sets[name].sizes["sample"]),
            "reynolds_range": [float(sets[name]["reynolds"].min()), float(sets[name]["reynolds"].max())],
            "dissipation": decay_errors(predicted, sets[name], "dissipation"),
            "kinetic_energy": decay_errors(predicted, sets[name], "kinetic_energy"),
            "warned_outside_range": any("outside the trained range" in str(w.message) for w in caught),
        }
        e = results[name]["dissipation"]
        results[name]["node_over_k_epsilon"] = e["node"] / e["k_epsilon"]
    result = {"setting": f"decaying 3-D turbulence, {args.resolution}^3, unstratified, random k^4 exp(-2 (k/2)^2) spectra, "
                         "t in [0, 10], training on a random half of each run's 41 output times",
              "quick": quick, "epochs": epochs, "n_train": n_train, "data_seconds": data_seconds,
              "train_seconds": train_seconds, "final_train_loss": history[-1]["train_loss"],
              "trained_reynolds_range": model.parameter_range["reynolds"],
              "c_eps2": model.k_epsilon.c_eps2, "power_law": {"exponent": model.power_law.exponent,
                                                              "origin": model.power_law.origin},
              "metric": "mean over runs of mean_t |q_hat - q| / q over the whole decay, from each run's initial state",
              "target": "neural ODE error of eps at most half of the calibrated k-epsilon's", "sets": results,
              "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__}}
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    name = "node_decay_quick" if quick else "node_decay"
    write_text(out / f"{name}.json", json.dumps(result, indent=2))
    lines = [f"# Decay of turbulence statistics: neural ODE vs k-epsilon vs power law{' - quick sizes' if quick else ''}",
             "", f"{result['setting']}. {n_train} training runs (Re {model.parameter_range['reynolds'][0]:.1f} to "
             f"{model.parameter_range['reynolds'][1]:.1f}), {epochs} epochs ({train_seconds:.0f} s); fitted C_eps2 = "
             f"{model.k_epsilon.c_eps2:.3f}, power law n = {model.power_law.exponent:.3f}, t0 = "
             f"{model.power_law.origin:.3f}. Mean relative error over the whole decay (t = 0..10), mean over runs.", "",
             "| held-out set | runs | Re | eps: NODE | eps: k-eps | eps: power law | NODE / k-eps | K: NODE | K: k-eps | "
             "K: power law |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        e, k = r["dissipation"], r["kinetic_energy"]
        lines.append(f"| {key} | {r['runs']} | {r['reynolds_range'][0]:.1f}-{r['reynolds_range'][1]:.1f} | "
                     f"{e['node']:.4f} | {e['k_epsilon']:.4f} | {e['power_law']:.4f} | {r['node_over_k_epsilon']:.2f} | "
                     f"{k['node']:.4f} | {k['k_epsilon']:.4f} | {k['power_law']:.4f} |")
    lines += ["", "Target: NODE / k-eps <= 0.5 on eps. The train row is the fit on the training runs themselves."]
    write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
