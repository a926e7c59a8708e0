"""SFNO on shallow water: sciml's forecasting recipe against neuraloperator's own SFNO example recipe, same data,
same CPU training time.

Data (both recipes): the ``swe-sphere`` recipe at 32x64 (equiangular), random balanced flows, hourly states
over 48 h (seed 0, samples ``0 .. n_train - 1``), as ``benchmarks/forecast_swe.py`` generates them; scored on
held-out initial conditions (samples ``200 ..``) against the solver over 24 h.

* **sciml**: :func:`sciml.forecast.fit_forecaster` with the SFNO of ``forecast_swe.py`` (``model="sfno"``,
  ``hidden_channels=32``; lmax 16, sphere position features, per-variable normalisation), one-step pretraining
  (AdamW lr 3e-3, batch 8, area-weighted anomaly relative L2) then two-step rollout fine-tuning.
* **neuraloperator**: the recipe of its example ``examples/models/plot_SFNO_swe.py`` (neuraloperator 2.0):
  ``neuralop.models.SFNO(n_modes=(32, 32), in_channels=3, out_channels=3, hidden_channels=32,
  projection_channel_ratio=2, factorization="dense")``, except ``n_modes=(16, 32)`` (degrees < 16, orders < 16):
  the installed torch-harmonics (0.9.3) caps the transform of a 32 x 64 equiangular grid at 16 degrees, and the
  example's 32 degrees stop with an einsum shape error there (its own data are 32 x 64 too); 16 is the most the
  grid resolves, the truncation of sciml's SFNO (lmax 16) as well; ``neuralop.training.AdamW(lr=8e-4, weight_decay=0)``,
  ``CosineAnnealingLR(T_max=30)`` stepped per epoch, ``LpLoss(d=2, p=2, reduction="sum")`` (relative L2 per
  sample and channel on the uniform lat-lon grid, summed over the batch), batch size 4, its
  ``neuralop.Trainer``; inputs and targets normalised as its ``SphericalSWEDataset`` does (each channel by the
  mean and variance over the sphere of one input sample, here the first training pair), trained on all
  consecutive 1 h pairs of the same trajectories. Only its model, loss, optimiser and trainer are used: its
  dataset class (which solves its own flows with ``torch_harmonics.examples.ShallowWaterSolver``) is not.

Equal CPU time: the training of each recipe is timed with ``time.process_time()`` in this one process (one torch
thread); the epochs are fixed numbers (``--sciml-epochs``, ``--neuralop-epochs``), chosen so the two CPU times
match, and both times are reported with their ratio. No wall-clock budget, so the same seed gives the same
errors. Scores: one-step and 24-step area-weighted relative L2 per variable (``forecast_swe.rel_l2_by_lead``), and
of the height anomaly about the truth's global mean (the ~10 km mean layer depth dominates the plain height score,
under which persistence looks best at 1 h).

Usage: python benchmarks/swe_neuralop_recipe.py [--quick] [--n-train N] [--sciml-epochs N] [--neuralop-epochs N]
    [--curriculum 2,4] [--name NAME]
Writes benchmarks/results/cpu/NAME.{json,md} (default swe_neuralop_recipe[_quick]).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from forecast_swe import VARIABLES, rel_l2_by_lead  # the same data layout and scores

from sciml._atomic import write_text

NEURALOP_RECIPE = {"example": "neuraloperator examples/models/plot_SFNO_swe.py",
                   "model": {"n_modes": [16, 32], "n_modes_in_the_example": [32, 32], "in_channels": 3,
                             "out_channels": 3, "hidden_channels": 32,
                             "projection_channel_ratio": 2, "factorization": "dense"},
                   "optimizer": "neuralop.training.AdamW(lr=8e-4, weight_decay=0.0)",
                   "scheduler": "CosineAnnealingLR(T_max=30), stepped per epoch",
                   "loss": "LpLoss(d=2, p=2, reduction='sum')", "batch_size": 4,
                   "normalisation": "per channel, mean and variance over the sphere of one input sample"}


def stack(ds, time_slice=slice(None)) -> torch.Tensor:
    """``(sample, time, 3, lat, lon)`` float32 of the three variables."""
    return torch.from_numpy(np.stack([ds[v].isel(time=time_slice).values for v in VARIABLES], axis=2)).float()


def train_neuralop(train, *, epochs: int, seed: int):
    """neuraloperator's SFNO example recipe on the 1 h pairs of ``train``; returns (model, mean, std, seconds)."""
    from neuralop import LpLoss, Trainer
    from neuralop.data.datasets.tensor_dataset import TensorDataset
    from neuralop.models import SFNO
    from neuralop.training import AdamW

    states = stack(train)  # (sample, time, 3, lat, lon)
    x = states[:, :-1].flatten(0, 1)  # all consecutive 1 h pairs
    y = states[:, 1:].flatten(0, 1)
    mean = x[0].mean(dim=(-1, -2)).reshape(-1, 1, 1)  # SphericalSWEDataset: one input sample's statistics
    std = x[0].var(dim=(-1, -2)).reshape(-1, 1, 1).sqrt()
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(TensorDataset((x - mean) / std, (y - mean) / std), batch_size=4,
                                         shuffle=True, num_workers=0)
    model = SFNO(n_modes=(16, 32), in_channels=3, out_channels=3, hidden_channels=32, projection_channel_ratio=2,
                 factorization="dense")
    optimizer = AdamW(model.parameters(), lr=8e-4, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=30)
    loss = LpLoss(d=2, p=2, reduction="sum")
    trainer = Trainer(model=model, n_epochs=epochs, device=torch.device("cpu"), wandb_log=False,
                      eval_interval=epochs + 1, use_distributed=False, verbose=False)
    start = time.process_time()
    trainer.train(train_loader=loader, test_loaders={}, optimizer=optimizer, scheduler=scheduler, regularizer=False,
                  training_loss=loss, eval_losses={"l2": loss})
    seconds = time.process_time() - start
    with torch.no_grad():  # the loss on the first 16 training pairs, per sample and channel
        first = {k: torch.stack([loader.dataset[i][k] for i in range(16)]) for k in ("x", "y")}
        final = loss(model(first["x"]), first["y"]).item() / (16 * 3)
    return model.eval(), mean, std, seconds, final


def rollout_neuralop(model, mean, std, init, steps: int):
    """The model applied ``steps`` times in its normalised space from ``init`` (sample, 3, lat, lon)."""
    import xarray as xr

    out = []
    with torch.no_grad():
        state = (init - mean) / std
        for _ in range(steps):
            state = model(state)
            out.append(state * std + mean)
    fields = torch.stack(out, dim=1).double().numpy()  # (sample, lead, 3, lat, lon)
    return xr.Dataset({v: (("sample", "lead_time", "lat", "lon"), fields[:, :, c]) for c, v in enumerate(VARIABLES)})


def height_anomaly_rel_l2(forecast, truth, grid) -> list[float]:
    """Area-weighted relative L2 per lead of the height anomaly about the truth's global (area) mean, sample mean."""
    from sciml.metrics import rel_l2

    f, t = (torch.from_numpy(np.array(a["height"].values, dtype=np.float64)) for a in (forecast, truth))  # (sample, lead, lat, lon)
    w = grid.quadrature_weights().reshape(1, 1, *t.shape[-2:])
    mean = (t * w).sum(dim=(-1, -2), keepdim=True) / w.sum()
    return [float(rel_l2((f - mean)[:, j:j + 1], (t - mean)[:, j:j + 1], grid=grid).mean()) for j in range(f.shape[1])]


def summary(errors: dict[str, list[float]]) -> dict:
    out = {}
    for lead, j in (("1h", 0), ("24h", 23)):
        per = {v: errors[v][j] for v in [*VARIABLES, "height_anomaly"]}
        out[lead] = {**per, "mean_velocity": (per["eastward_velocity"] + per["northward_velocity"]) / 2}
    return out


def scores(forecast, truth, grid) -> dict[str, list[float]]:
    """rel_l2_by_lead of every variable and the height anomaly's."""
    return {**rel_l2_by_lead(forecast, truth, grid), "height_anomaly": height_anomaly_rel_l2(forecast, truth, grid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes to check the script (a minute)")
    parser.add_argument("--n-train", type=int, help="training trajectories of 48 h (default 6; quick 2)")
    parser.add_argument("--sciml-epochs", type=int, help="sciml pretraining epochs (default 16; quick 1); "
                        "fine-tuning adds a quarter of them")
    parser.add_argument("--neuralop-epochs", type=int, help="neuraloperator recipe epochs (default 22; quick 1)")
    parser.add_argument("--curriculum", default="2", help="sciml's rollout fine-tuning stages, e.g. 2,4 (default 2)")
    parser.add_argument("--name", help="results file name (default swe_neuralop_recipe[_quick])")
    args = parser.parse_args()
    curriculum = tuple(int(k) for k in args.curriculum.split(","))
    from sciml.bench.harness import machine
    from sciml.datasets import generate
    from sciml.forecast import fit_forecaster, forecast
    from sciml.grids import Grid
    from sciml.train import TrainConfig

    quick = args.quick
    n_train = args.n_train or (2 if quick else 6)
    sciml_epochs = args.sciml_epochs or (1 if quick else 16)
    neuralop_epochs = args.neuralop_epochs or (1 if quick else 22)
    n_test, horizon = (2, 24) if quick else (8, 24)
    torch.set_num_threads(1)
    common = dict(seed=0, initial_condition="random", progress=False)
    train = generate("swe-sphere", n_train, 32, times=[float(h) for h in range(49)], **common)
    test = generate("swe-sphere", n_test, 32, first_sample=200, times=[float(h) for h in range(horizon + 1)], **common)
    grid = Grid.latlon(32, 64)
    init = test.isel(time=0)
    truth = test.isel(time=slice(1, None)).rename(time="lead_time")

    # sciml's recipe (forecast_swe.py's SFNO) -----------------------------------------------------------------
    config = TrainConfig(epochs=sciml_epochs, batch_size=8, lr=3e-3, seed=0, device="cpu", progress=False)
    start = time.process_time()
    surrogate, histories = fit_forecaster(train, variables=VARIABLES, lag=1, model="sfno",
                                          model_options={"hidden_channels": 32}, pretrain=config, curriculum=curriculum)
    sciml_seconds = time.process_time() - start
    sciml_errors = scores(forecast(surrogate, init, steps=horizon, progress=False), truth, grid)

    # neuraloperator's recipe -------------------------------------------------------------------------------------
    model, mean, std, neuralop_seconds, neuralop_loss = train_neuralop(train, epochs=neuralop_epochs, seed=0)
    init_tensor = stack(test, slice(0, 1))[:, 0]  # (sample, 3, lat, lon)
    neuralop_errors = scores(rollout_neuralop(model, mean, std, init_tensor, horizon), truth, grid)

    repeated = init[VARIABLES].expand_dims(lead_time=truth.sizes["lead_time"]).transpose("sample", "lead_time", ...)
    persistence = scores(repeated, truth, grid)
    results = {
        "setting": "rotating shallow water on the sphere, 32x64 equiangular, random balanced flows, 1 h steps",
        "quick": quick, "n_train_trajectories": n_train, "pairs_1h": n_train * 48, "n_test": n_test,
        "cpu_seconds_ratio_neuralop_over_sciml": neuralop_seconds / sciml_seconds,
        "sciml": {"recipe": "fit_forecaster, sfno hidden_channels=32, pretrain AdamW lr 3e-3 batch 8 + rollout "
                            f"fine-tuning stages {curriculum} (each epochs // 4, lr / 5), loss anomaly_rel_l2 (area-weighted)",
                  "curriculum": list(curriculum),
                  "pretrain_epochs": sciml_epochs, "finetune_epochs": max(1, sciml_epochs // 4),
                  "training_cpu_seconds": sciml_seconds,
                  "parameters": sum(p.numel() for p in surrogate.module.parameters()),
                  "final_losses": {str(k): h[-1]["train_loss"] for k, h in histories.items()},
                  "rel_l2": summary(sciml_errors)},
        "neuraloperator": {"recipe": NEURALOP_RECIPE, "epochs": neuralop_epochs, "training_cpu_seconds": neuralop_seconds,
                           "parameters": sum(p.numel() for p in model.parameters()),
                           "final_batch_rel_l2_per_channel": neuralop_loss, "rel_l2": summary(neuralop_errors)},
        "persistence": {"rel_l2": summary(persistence)},
        "command": " ".join(["python", *sys.argv]),
        "machine": {**machine(torch.device("cpu")), "torch_threads": torch.get_num_threads()},
    }
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or ("swe_neuralop_recipe_quick" if quick else "swe_neuralop_recipe")
    write_text(out / f"{name}.json", json.dumps(results, indent=2))
    ratio = results["cpu_seconds_ratio_neuralop_over_sciml"]
    lines = [f"# SFNO on shallow water: sciml's recipe vs neuraloperator's SFNO example recipe{' (quick sizes)' if quick else ''}",
             "", f"Same data: {n_train} trajectories of 48 h at 32x64 ({n_train * 48} one-hour pairs), {n_test} held-out "
             "initial conditions, area-weighted relative L2 against the solver (height includes its ~10 km mean).",
             f"Training CPU time (time.process_time, 1 thread): sciml {sciml_seconds:.0f} s ({sciml_epochs} pretraining + "
             f"{max(1, sciml_epochs // 4)} fine-tuning epochs per rollout stage {curriculum}), neuraloperator {neuralop_seconds:.0f} s "
             f"({neuralop_epochs} epochs); ratio {ratio:.2f}.", "",
             "| recipe | parameters | train CPU s | lead | height | height anomaly | eastward | northward |",
             "|---|---|---|---|---|---|---|---|"]
    rows = (("sciml", results["sciml"]), ("neuraloperator", results["neuraloperator"]), ("persistence", results["persistence"]))
    for label, r in rows:
        for lead in ("1h", "24h"):
            e = r["rel_l2"][lead]
            params = f"{r['parameters']:,}" if "parameters" in r else ""
            seconds = f"{r['training_cpu_seconds']:.0f}" if "training_cpu_seconds" in r else ""
            lines.append(f"| {label} | {params} | {seconds} | {lead} | "
                         + " | ".join(f"{e[v]:.4f}" for v in ("height", "height_anomaly", *VARIABLES[1:])) + " |")
    lines += ["", f"Reproduce: `{results['command']}`"]
    write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
