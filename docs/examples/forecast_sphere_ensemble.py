"""Forecast shallow water on the sphere with an SFNO ensemble and score it

The weather-forecasting path on simulated data: shallow-water trajectories on a 16x32 lat-lon grid
from the built-in spectral solver, an SFNO trained as a one-hour forecaster (one-step pretraining,
then two-step rollout fine-tuning), a 24-hour forecast from unseen initial states as an 8-member
ensemble of **bred-vector** perturbations (grown by the model itself), and WeatherBench 2 scores:
area-weighted RMSE of the ensemble mean, the fair CRPS and the spread-skill ratio, drawn as a scorecard.

Small on purpose (a minute or two on two CPU cores): the skill is modest; `benchmarks/forecast_swe.py`
is the full-size measurement.
"""

import argparse
from pathlib import Path

from sciml.datasets import generate
from sciml.forecast import BredVectors, crps, fit_forecaster, forecast, rmse, spread_skill
from sciml.plotting import plot_scorecard, save_figure
from sciml.train import TrainConfig

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("example_output/forecast_sphere_ensemble"))
out = parser.parse_args().out
out.mkdir(parents=True, exist_ok=True)

variables = ["height", "eastward_velocity", "northward_velocity"]
hours = [float(h) for h in range(25)]
train = generate("swe-sphere", 8, 16, seed=0, times=hours, initial_condition="random", progress=False)
model, stages = fit_forecaster(train, variables=variables, model="sfno", curriculum=(2,),
                               pretrain=TrainConfig(epochs=6, batch_size=8, lr=3e-3, seed=0, progress=False))

truth = generate("swe-sphere", 2, 16, seed=0, first_sample=1000, times=hours, initial_condition="random",
                 progress=False)
ensemble = forecast(model, truth.isel(time=[0]), steps=24, members=8, seed=0, progress=False,
                    perturbation=BredVectors(scale=0.3, cycles=3))
scores = {"RMSE of the ensemble mean": rmse(ensemble.mean("member"), truth),
          "fair CRPS": crps(ensemble, truth),
          "spread / skill": spread_skill(ensemble, truth)}
for name, score in scores.items():
    print(name, {v: round(float(score[v].isel(lead_time=-1).mean()), 4) for v in variables})
save_figure(plot_scorecard(scores, title="SFNO 8-member bred-vector ensemble, shallow water 16x32"),
            out / "scorecard.png")
