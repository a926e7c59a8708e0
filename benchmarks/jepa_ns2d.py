"""PDE-JEPA on 2-D Navier-Stokes: viscosity and forcing amplitude from self-supervised features against a
supervised network from scratch.

Data (:func:`sciml.jepa.navier_stokes_dataset`): vorticity on the periodic unit square at 32 x 32, 21 frames 0.5
apart (t = 0..10), ``w_t + u . grad w = nu Laplacian w + A (sin 2 pi (x + y) + cos 2 pi (x + y))`` with ``nu``
log-uniform in [2e-3, 2e-2] and ``A`` log-uniform in [0.05, 0.2], two trajectories per coefficient pair. The
unlabelled pool (``--n-pool`` trajectories, seed 0) trains the encoder (a Conv3d ResNet over ``(time, y, x)``)
with VICReg on 8-frame x 16 x 16 crops moved by random translations, quarter turns and reflections of the square;
the coefficients are read only by the probes and the baseline. Held-out test: ``--n-test`` trajectories of seed 1
(two per coefficient pair).

Measured, per coefficient (relative error ``mean |c_hat - c| / c`` on the test set):

* label efficiency: a ridge probe (and an MLP probe) on the frozen features fitted on the first 16, 64, 128
  labelled trajectories of the pool, against the same encoder with a linear head trained supervised from
  scratch on those labels (both coefficients at once) for the same number of optimiser steps, with the same
  learning rate, batch and augmented random crops as the pretraining;
* calibration: coverage of split-conformal 90% intervals (probe on the pool's labels, a quarter calibrating);
* robustness: a seed-1 test set of ``--n-robust`` trajectories (default ``--n-test``) solved at 2x resolution
  (64 x 64) and, separately, with half the solver step (dt 0.005 instead of 0.01), through
  :func:`sciml.jepa.discover`, against the error on the same set at the training resolution and step;
* the coverage is reported with its binomial standard error at the nominal level, ``sqrt(0.9 * 0.1 / n_test)``;
* collapse: effective rank of the test features.

Usage: python benchmarks/jepa_ns2d.py [--quick] [--epochs N] [--n-pool N] [--n-test N] [--n-robust N] [--plain-stem]
Writes benchmarks/results/cpu/jepa_ns2d.{json,md} and jepa_ns2d_*.png. Fixed epochs, no time budget.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from sciml._atomic import write_text

VISCOSITY = (2e-3, 2e-2)
FORCING = (0.05, 0.2)
TIMES = tuple(0.5 * k for k in range(21))
NAMES = ("viscosity", "forcing_amplitude")


def data(n_groups: int, resolution: int, seed: int, *, dt: float | None = None, cache: Path):
    """Solve (or read back from ``cache``) a Navier-Stokes dataset, two trajectories per coefficient pair."""
    import xarray as xr

    from sciml.jepa import navier_stokes_dataset

    path = cache / f"ns2d_{n_groups}x2_{resolution}_{seed}_{dt or 'auto'}.nc"
    if path.exists():
        return xr.open_dataset(path).load()
    ds = navier_stokes_dataset(n_groups, resolution, seed=seed, trajectories_per_group=2, viscosity_range=VISCOSITY,
                               forcing_range=FORCING, times=TIMES, dt=dt, progress=False)
    cache.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path)
    return ds


def relative(prediction: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(prediction - truth) / truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script")
    parser.add_argument("--epochs", type=int, default=None, help="pretraining epochs (default 30, quick 2)")
    parser.add_argument("--n-pool", type=int, default=None, help="unlabelled trajectories (default 128, quick 16)")
    parser.add_argument("--n-test", type=int, default=None, help="held-out test trajectories (default 32, quick 4)")
    parser.add_argument("--n-robust", type=int, default=None,
                        help="test trajectories re-solved for the robustness checks (default: --n-test)")
    parser.add_argument("--plain-stem", action="store_true",
                        help="encoder stem without group normalisation, which sees the amplitude (default off)")
    parser.add_argument("--cache", default="runs/jepa_ns2d_data", help="where solved datasets are kept")
    parser.add_argument("--out", default="benchmarks/results/cpu", help="results directory")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from sciml.bench.harness import machine
    from sciml.jepa import (EncoderConfig, PretrainConfig, discover, embed, fit_probe, label_efficiency, pretrain,
                            supervised_baseline)
    from sciml.jepa.discovery import plot_embeddings, plot_estimates, plot_label_efficiency, prepare
    from sciml.jepa.objectives import effective_rank
    from sciml.plotting import save_figure
    from sciml.train import TrainConfig

    quick = args.quick
    n_pool = args.n_pool or (16 if quick else 128)
    epochs = args.epochs or (2 if quick else 30)
    n_test = args.n_test or (4 if quick else 32)
    n_robust = min(args.n_robust or n_test, n_test)
    batch = 32
    cache, out = Path(args.cache), Path(args.out)
    started = time.process_time()

    t0 = time.process_time()
    pool = data(n_pool // 2, 32, 0, cache=cache)
    test = data(n_test // 2, 32, 1, cache=cache)
    test_robust = data(n_robust // 2, 32, 1, cache=cache)  # the in-distribution reference of the robustness sets
    fine = data(n_robust // 2, 64, 1, cache=cache)
    half_step = data(n_robust // 2, 32, 1, dt=0.005, cache=cache)
    data_cpu = time.process_time() - t0

    encoder = EncoderConfig(space_dims=2, widths=(4, 8, 16), embedding_dim=32, projector_dim=64,
                            stem_norm=not args.plain_stem)
    config = PretrainConfig(objective="vicreg", size_t=8, size_x=16, pairs="group", encoder=encoder, seed=0)
    train = TrainConfig(epochs=epochs, batch_size=batch, lr=2e-3, weight_decay=1e-4, device="cpu", progress=False,
                        seed=0)
    t0 = time.process_time()
    model, history = pretrain(pool, config=config, train=train)
    pretrain_cpu = time.process_time() - t0
    steps = epochs * math.ceil(n_pool / batch)

    _, pool_x = prepare(model, pool)
    _, test_x = prepare(model, test)
    features, test_features = embed(model, pool_x), embed(model, test_x)
    truth = {n: test[n].values for n in NAMES}
    labels = np.stack([pool[n].values for n in NAMES], -1)
    budgets = [b for b in (16, 64, 128, 256) if b <= n_pool]
    t0 = time.process_time()
    ssl = {n: label_efficiency(features, labels[:, j], test_features, truth[n], budgets=budgets, probe="linear", seed=0)
           for j, n in enumerate(NAMES)}
    mlp = {n: label_efficiency(features, labels[:, j], test_features, truth[n], budgets=budgets, probe="mlp", seed=0)
           for j, n in enumerate(NAMES)}
    probe_cpu = time.process_time() - t0
    mean_error = {n: relative(np.exp(np.log(labels[:, j]).mean()), truth[n]) for j, n in enumerate(NAMES)}

    order = np.random.default_rng(0).permutation(n_pool)  # the order label_efficiency uses
    supervised = {n: {"budgets": [], "relative_error": []} for n in NAMES}
    supervised_steps = []
    t0 = time.process_time()
    for b in budgets:
        idx = torch.from_numpy(order[:b])
        regressor, taken = supervised_baseline(pool_x[idx], torch.from_numpy(labels[order[:b]]), encoder=model.config,
                                               spec=model.spec, times=torch.tensor(TIMES, dtype=torch.float64),
                                               steps=steps, batch_size=batch, lr=2e-3, seed=0)
        prediction = regressor.predict(test_x).numpy()
        for j, n in enumerate(NAMES):
            supervised[n]["budgets"].append(b)
            supervised[n]["relative_error"].append(relative(np.exp(prediction[:, j]), truth[n]))
        supervised_steps.append(taken)
    supervised_cpu = time.process_time() - t0

    coefficient_model = fit_probe(model, pool, coefficients=list(NAMES), level=0.9, seed=0)
    found = discover(coefficient_model, test)

    def scores(result, ds):
        # binomial standard error of the coverage at the nominal level: sqrt(0.9 * 0.1 / n_test)
        return {n: {"relative_error": relative(result[f"{n}_estimate"].values, ds[n].values),
                    "coverage": float(np.mean((ds[n].values >= result[f"{n}_lower"].values)
                                              & (ds[n].values <= result[f"{n}_upper"].values))),
                    "coverage_binomial_se": math.sqrt(0.9 * 0.1 / ds.sizes["sample"])} for n in NAMES}

    in_distribution = scores(found, test)
    # the robustness sets re-solve the n_robust-trajectory seed-1 set; compare against it at the training grid
    base = scores(discover(coefficient_model, test_robust), test_robust)
    robust = {}
    for label, ds in (("2x resolution (64 x 64)", fine), ("solver step 0.005 (trained on 0.01)", half_step)):
        s = scores(discover(coefficient_model, ds), ds)
        for n in NAMES:
            s[n]["ratio_to_in_distribution"] = s[n]["relative_error"] / base[n]["relative_error"]
        robust[label] = s
    rank = float(effective_rank(test_features))
    last = history[-1]

    command = ("nice -n 10 python benchmarks/jepa_ns2d.py" + (" --quick" if quick else "")
               + (f" --epochs {args.epochs}" if args.epochs else "") + (f" --n-pool {args.n_pool}" if args.n_pool else "")
               + (f" --n-test {args.n_test}" if args.n_test else "")
               + (f" --n-robust {args.n_robust}" if args.n_robust else "") + (" --plain-stem" if args.plain_stem else ""))
    beats = {n: [b for b, s, u in zip(budgets, ssl[n]["relative_error"], supervised[n]["relative_error"]) if s < u]
             for n in NAMES}
    result = {
        "benchmark": "jepa_ns2d", "quick": quick,
        "setting": {"viscosity_range": list(VISCOSITY), "forcing_range": list(FORCING), "resolution": 32,
                    "frames": len(TIMES), "frame_spacing": 0.5, "pool_trajectories": n_pool,
                    "trajectories_per_coefficient_pair": 2, "test_trajectories": n_test, "robustness_trajectories": n_robust, "crop": [8, 16, 16],
                    "objective": "vicreg 25/25/1",
                    "encoder": {"widths": list(model.config.widths), "embedding_dim": model.config.embedding_dim,
                                "stem_norm": model.config.stem_norm},
                    "pretrain_epochs": epochs, "batch_size": batch, "lr": 2e-3, "optimiser_steps": steps,
                    "supervised_steps": supervised_steps},
        "label_efficiency": {"ssl_linear": ssl, "ssl_mlp": mlp, "supervised_from_scratch": supervised,
                             "predict_mean_relative_error": mean_error},
        "ssl_linear_beats_supervised_at": beats,
        "calibration": {"level": 0.9, "fit": n_pool - coefficient_model.calibration,
                        "calibration": coefficient_model.calibration, **in_distribution},
        "robustness": robust,
        "collapse": {"test_feature_effective_rank": rank, "feature_dims": int(test_features.shape[1]),
                     "final_train_embedding_rank": last["train_embedding_rank"],
                     "final_train_embedding_std_min": last["train_embedding_std_min"],
                     "final_train_representation_rank": last["train_representation_rank"]},
        "history": [{k: round(v, 5) if isinstance(v, float) else v for k, v in r.items()} for r in history],
        "cpu_seconds": {"data": data_cpu, "pretrain": pretrain_cpu, "probes": probe_cpu, "supervised": supervised_cpu,
                        "total": time.process_time() - started},
        "machine": machine("cpu"), "command": command,
    }
    name = ("jepa_ns2d_quick" if quick else "jepa_ns2d") + ("_plain_stem" if args.plain_stem else "")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{name}.json", json.dumps(result, indent=2))

    for n in NAMES:
        curves = {"SSL (VICReg) + linear probe": ssl[n], "SSL (VICReg) + MLP probe": mlp[n],
                  "supervised from scratch": supervised[n]}
        save_figure(plot_label_efficiency(curves, name=n, title=f"Navier-Stokes {n}: label efficiency"),
                    out / f"{name}_label_efficiency_{n}.png")
        save_figure(plot_estimates(found, name=n, title=f"Navier-Stokes {n}, held-out test"),
                    out / f"{name}_estimates_{n}.png")
    save_figure(plot_embeddings(test_features, truth["viscosity"], name="viscosity",
                                title="Navier-Stokes test features (VICReg), PCA"), out / f"{name}_pca.png")

    lines = [f"# PDE-JEPA on 2-D Navier-Stokes: viscosity and forcing amplitude ({'quick' if quick else 'full'} run)",
             "", f"`{command}` — pool {n_pool} unlabelled trajectories (2 per coefficient pair), test {n_test}; "
             f"32 x 32, {len(TIMES)} frames 0.5 apart; nu log-uniform in {list(VISCOSITY)}, A in {list(FORCING)}; "
             f"VICReg {epochs} epochs ({steps} optimiser steps, batch {batch}, lr 2e-3), 8 x 16 x 16 crops, Conv3d "
             f"widths {list(model.config.widths)}; supervised baseline: the same encoder + linear head from scratch, "
             f"{steps} steps, same lr, batch and augmented crops, on the labelled subset.", "",
             "| labelled trajectories | coefficient | SSL + linear probe | SSL + MLP probe | supervised from scratch |",
             "|---|---|---|---|---|"]
    for i, b in enumerate(budgets):
        for n in NAMES:
            lines.append(f"| {b} | {n} | {100 * ssl[n]['relative_error'][i]:.2f}% | "
                         f"{100 * mlp[n]['relative_error'][i]:.2f}% | {100 * supervised[n]['relative_error'][i]:.2f}% |")
    lines += ["", "Predicting the mean log-coefficient: " + ", ".join(f"{n} {100 * e:.1f}%" for n, e in
                                                                        mean_error.items()) + ".", "",
              f"SSL + linear probe below supervised at budgets: {beats}.", "", "| check | value |", "|---|---|"]
    for n in NAMES:
        lines.append(f"| {n}: 90% conformal coverage / relative error, in distribution "
                     f"({n_pool - coefficient_model.calibration} fit, {coefficient_model.calibration} calibrate) | "
                     f"{100 * in_distribution[n]['coverage']:.1f}% (binomial se "
                     f"{100 * in_distribution[n]['coverage_binomial_se']:.1f}% at 90%, {n_test} truths) / "
                     f"{100 * in_distribution[n]['relative_error']:.2f}% |")
    for label, s in robust.items():
        for n in NAMES:
            lines.append(f"| {n}, {label}, {n_robust} seed-1 trajectories | {100 * s[n]['relative_error']:.2f}% "
                         f"({s[n]['ratio_to_in_distribution']:.2f}x; coverage {100 * s[n]['coverage']:.0f}%) |")
    lines += [f"| effective rank of test features | {rank:.2f} of {test_features.shape[1]} |",
              f"| final training embedding rank / std min | {last['train_embedding_rank']:.2f} / "
              f"{last['train_embedding_std_min']:.3f} |", "",
              f"CPU seconds: data {data_cpu:.0f}, pretraining {pretrain_cpu:.0f}, probes {probe_cpu:.0f}, supervised "
              f"{supervised_cpu:.0f}, total {result['cpu_seconds']['total']:.0f} (1 thread). Machine: "
              f"{result['machine']['cpu_model']}, load {result['machine']['load_average']}."]
    write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
