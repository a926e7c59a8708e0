"""Learn the decay of turbulence statistics with a neural ODE

Decaying 2-D turbulence from the built-in pseudo-spectral solver (the `turbulence2d` recipe: random
initial spectra, one viscosity per run) gives the time series of the kinetic energy `K` and its
dissipation `eps`. A neural ODE `d(log K, log eps)/dt = f(log K, log eps, log Re)` is trained on them by
trajectory fitting (torchdiffeq through the one training loop), beside two classical models fitted to the
same runs: the k-epsilon decay model with its constant calibrated, and a power law. The figure shows
held-out runs: the DNS (circles), the neural ODE (solid), k-epsilon (dashed) and the power law (dotted).

Small on purpose (about a minute on two CPU cores); `benchmarks/node_decay.py` is the 3-D measurement.
"""

import argparse
import json
from pathlib import Path

from sciml.datasets import generate
from sciml.node import decay_errors, fit_statistics_model, plot_decay, predict_statistics
from sciml.plotting import save_figure
from sciml.train import TrainConfig

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("example_output/turbulence_decay_node"))
out = parser.parse_args().out
out.mkdir(parents=True, exist_ok=True)

times = [0.5 * i for i in range(21)]  # 0 .. 10
train = generate("turbulence2d", 12, 32, seed=0, times=times, progress=False)
test = generate("turbulence2d", 4, 32, seed=0, first_sample=1000, times=times, progress=False)

model, history = fit_statistics_model(train, train_config=TrainConfig(epochs=80, batch_size=4, lr=3e-3, weight_decay=0.0,
                                                                      device="cpu", progress=False))
predicted = predict_statistics(model, test)
errors = {name: decay_errors(predicted, test, name) for name in ("kinetic_energy", "dissipation")}
print(json.dumps(errors, indent=1))
(out / "errors.json").write_text(json.dumps(errors, indent=1))
save_figure(plot_decay(predicted, test, title="Held-out 2-D decaying turbulence: neural ODE and baselines"),
            out / "decay.png")
