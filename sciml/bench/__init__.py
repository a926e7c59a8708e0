"""Benchmarks of surrogates against numerical solvers, on the same device, at matched accuracy.

One entry point, :func:`run_benchmark` (``sciml bench PROBLEM``), built from

* :mod:`~sciml.bench.harness`: timing with warm-up, repeats, spread, interleaved rounds, CUDA sync,
  fixed threads, peak memory, and the machine description;
* :mod:`~sciml.bench.curves`: Pareto front, log-log interpolation, speed-up at matched accuracy,
  break-even queries;
* :mod:`~sciml.bench.problems`: ``ns2d``, ``darcy``, ``burgers`` (reference, solver ladder, surrogate).

How to read the results: ``docs/benchmarks.md``.
"""

from __future__ import annotations

from .curves import BreakEven, CostErrorPoint, MatchedAccuracy, breakeven, matched_accuracy, pareto_front
from .harness import Measurement, fixed_threads, interleaved, machine, measure

__all__ = [
    "run_benchmark", "PROBLEMS",
    "measure", "interleaved", "Measurement", "fixed_threads", "machine",
    "CostErrorPoint", "MatchedAccuracy", "BreakEven", "pareto_front", "matched_accuracy", "breakeven",
]


def __getattr__(name: str):
    # Lazy: the runner and the problems pull in the recipes, xarray and the training loop.
    if name == "run_benchmark":
        from .runner import run_benchmark

        return run_benchmark
    if name == "PROBLEMS":
        from .problems import PROBLEMS

        return PROBLEMS
    raise AttributeError(f"module 'sciml.bench' has no attribute {name!r}")
