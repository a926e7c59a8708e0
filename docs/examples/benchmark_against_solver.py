"""Benchmark a surrogate against the solver at matched accuracy

The fair comparison of a neural surrogate with a numerical solver is at **matched accuracy**: how much
faster is the surrogate than the solver run on the coarsest grid that is as accurate? `sciml.bench`
measures the solver's cost-error curve (solver runs at several resolutions scored against a fine
float64 reference), trains an FNO, times its forward pass on the same test batch and device, and
reports the speed-up at matched accuracy and the break-even number of samples that pays for the
training data and the training.

This is the `quick` configuration shrunk further so that it runs in about a minute on two CPU cores;
the figure is the cost-error plane with the solver's Pareto front and the surrogate's point. At this
size (48 training samples, 10 epochs) the FNO is *less* accurate than the solver's cheapest useful
run, and the report says so rather than extrapolating a speed-up; `docs/benchmarks.md` has the
full-size measurements.
"""

import argparse
from pathlib import Path

from sciml.bench import run_benchmark

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("example_output/benchmark_against_solver"))
out = parser.parse_args().out

result = run_benchmark("ns2d", quick=True, device="cpu", out=out, seed=0, progress=False,
                       command="python docs/examples/benchmark_against_solver.py",
                       n_train=48, n_test=4, train_resolution=16, solver_resolutions=(4, 8, 16),
                       reference_resolution=32, surrogate_resolutions=(16,), repeats=3, warmup=1,
                       **{"train.epochs": 10, "train.lr": 1e-2, "model.hidden_channels": 8, "model.n_modes": 6,
                          "model.n_layers": 2})
print((out / "results.md").read_text())
