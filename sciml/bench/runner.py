"""``run_benchmark``: solver ladder, reference, surrogate, cost-error curves, results on disk."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from .._atomic import write_text
from .._output import prepare_output_dir
from ..errors import ConfigError
from ..timing import timed
from .curves import CostErrorPoint, breakeven, matched_accuracy, pareto_front
from .harness import fixed_threads, interleaved, machine, measure, quartiles
from .problems import Problem, get_problem

__all__ = ["run_benchmark"]


def _log(message: str, enabled: bool) -> None:
    if enabled:
        print(f"[sciml bench] {message}", file=sys.stderr, flush=True)


def _inference(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under ``torch.inference_mode``, as the surrogate's timed forward runs: the same
    dispatch (no autograd bookkeeping) for both sides, 13-17% of a cheap solver call otherwise."""
    with torch.inference_mode():
        return fn(*args, **kwargs)


def _error_stats(errors: torch.Tensor) -> dict:
    values = [float(e) for e in errors]
    return {"rel_l2": statistics.fmean(values), "rel_l2_std": statistics.pstdev(values), "rel_l2_max": max(values)}


def run_benchmark(problem: str | Problem, *, quick: bool = True, device: str | torch.device = "auto",
                  out: str | os.PathLike, seed: int = 0, threads: int | None = None, progress: bool = True,
                  command: str | None = None, problem_options: dict | None = None, **sizes) -> dict:
    """Benchmark a surrogate against the numerical solver of ``problem`` at matched accuracy.

    Steps: (1) a float64 reference solution of the test set at ``reference_resolution``; (2) the solver
    on the test set at each of ``solver_resolutions``, timed (warm-up, repeats) and scored against the
    reference; (3) training data from the dataset recipe (timed: data-generation cost), an FNO (an SFNO
    for ``swe``: the problem's ``model``) trained with :func:`sciml.surrogate.fit_surrogate` (timed:
    training cost), its forward pass timed on the same test batch and scored at each of ``surrogate_resolutions``; (4) speed-up at matched accuracy
    and break-even queries (:mod:`sciml.bench.curves`).

    Args:
        problem: ``"ns2d"``, ``"darcy"``, ``"burgers"``, ``"swe"`` or a :class:`~sciml.bench.problems.Problem`.
        quick: the small configuration (minutes on 2 CPU cores) instead of the full one (GPU-sized).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...: where solver, training and surrogate run.
        out: directory for ``results.json``, ``results.md`` and ``cost_error.png``.
        seed: seeds the test and training fields, the parameter init and the shuffling.
        threads: ``torch.set_num_threads`` for the whole run, recorded in the results. ``None``: 1 for
            ``quick`` runs (comparable across machines, and robust on a shared CPU, where several
            threads spinning at barriers can slow small kernels by orders of magnitude), else the
            current count (all cores by default).
        progress: log the stages to stderr and show training progress.
        command: the command line, recorded in the results.
        problem_options: parameters of the physical problem for a problem given by name (``viscosity``,
            ``lead_time``, ...; :func:`sciml.bench.problems.parameters` lists them), recorded in the results.
        **sizes: overrides of the :class:`~sciml.bench.problems.Sizes` fields (``n_train=16``, ...).

    Returns:
        The dictionary written to ``results.json``.
    """
    from ..surrogate import fit_surrogate
    from ..train import resolve_device

    wall_start = time.perf_counter()
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be an integer >= 1 (or None), got {threads!r}")
    problem_options = dict(problem_options or {})
    spec = get_problem(problem, **problem_options)
    config = spec.sizes(quick).with_overrides(**sizes)
    device = resolve_device(device)
    if not quick and device.type == "cpu" and not sizes:
        warnings.warn(f"sciml bench {spec.name}: the full sizes are meant for a GPU (reference at "
                      f"{config.reference_resolution}, {config.n_train} training samples, {config.train.epochs} epochs); "
                      "on a CPU this takes hours. --quick (quick=True) finishes in minutes.", stacklevel=2)
    out = Path(out)
    prepare_output_dir(out, stale="results.json")
    first_test = config.n_train  # test samples follow the training samples in the seed's stream
    common = dict(seed=seed, first_sample=first_test, device=device)

    with fixed_threads(1 if threads is None and quick else threads) as n_threads:
        # 1. reference -----------------------------------------------------------------------
        R = config.reference_resolution
        _log(f"{spec.name}: reference solution of {config.n_test} test samples at {R} (float64) on {device}", progress)
        ref_inputs = spec.inputs(config.n_test, R, dtype=torch.float64, **common)
        reference, ref_seconds = timed(lambda: _inference(spec.solve, ref_inputs, reference=True), device=device)

        # 2. solver ladder -------------------------------------------------------------------
        solver_curve, calls, first_measurements = [], {}, {}
        for r in config.solver_resolutions:
            _log(f"solver at {r}: error and memory (first call)", progress)
            x = spec.inputs(config.n_test, r, dtype=spec.solver_dtype, **common)
            calls["solver", r] = lambda x=x: _inference(spec.solve, x)
            solution, first_measurements["solver", r] = measure(calls["solver", r], repeats=1, warmup=0,
                                                                device=device, items=config.n_test)
            solver_curve.append({"resolution": r, **_error_stats(spec.error(solution, reference))})
            del solution

        # 3. surrogate -----------------------------------------------------------------------
        _log(f"training data: {config.n_train} samples at {config.train_resolution} from the recipe", progress)
        data, data_seconds = timed(lambda: spec.training_data(config.n_train, config.train_resolution, seed=seed,
                                                              device=device), device=device)
        train_config = dataclasses.replace(config.train, seed=seed, device=str(device), progress=progress)
        _log(f"training {'an FNO' if spec.model == 'fno' else 'an ' + spec.model.upper()}: {train_config.epochs} epochs"
             + (f" within {train_config.max_time:g} s" if train_config.max_time else ""), progress)
        model_options = spec.model_options(config)
        (surrogate, history), training_seconds = timed(
            lambda: fit_surrogate(data, inputs=list(spec.inputs_vars), outputs=list(spec.outputs_vars), lag=spec.lag,
                                  model=spec.model, model_options=model_options, loss=spec.loss, config=train_config),
            device=device)
        del data
        module = surrogate.to(device).module.eval()
        dtype = next(module.parameters()).dtype
        surrogate_curve = []
        for r in config.surrogate_resolutions:
            _log(f"surrogate at {r}: error and memory (first call)", progress)
            x = spec.surrogate_inputs(config.n_test, r, dtype=dtype, **common)  # (batch, channel, *space)

            def forward(x=x):
                return _inference(module, x)

            calls["surrogate", r] = forward
            prediction, first_measurements["surrogate", r] = measure(forward, repeats=1, warmup=0,
                                                                     device=device, items=config.n_test)
            surrogate_curve.append({"resolution": r,
                                    **_error_stats(spec.error(spec.surrogate_output(prediction), reference))})
            del prediction

        # 4. timing: every solver and surrogate call once per round, so drift hits all alike -------------
        _log(f"timing {len(calls)} calls in {config.repeats} interleaved rounds after {config.warmup} warm-up "
             f"round(s)", progress)
        timings = interleaved(calls, rounds=config.repeats, warmup_rounds=config.warmup, device=device)
        for kind, curve in (("solver", solver_curve), ("surrogate", surrogate_curve)):
            for point in curve:
                # untimed before the rounds: the first (error and memory) call and the warm-up rounds
                m = dataclasses.replace(first_measurements[kind, point["resolution"]],
                                        timing=timings[kind, point["resolution"]], warmup=1 + config.warmup)
                point.update(seconds_per_sample=m.per_item()["median"], timing=m.as_dict())
        machine_info = machine(device)

    # 5. curves ----------------------------------------------------------------------------------
    points = [CostErrorPoint(p["resolution"], p["seconds_per_sample"], p["rel_l2"]) for p in solver_curve]
    front = [p.resolution for p in pareto_front(points)]
    for p in solver_curve:
        p["on_pareto_front"] = p["resolution"] in front
    for s in surrogate_curve:
        s["matched_accuracy"] = matched_accuracy(points, surrogate_seconds_per_sample=s["seconds_per_sample"],
                                                 surrogate_rel_l2=s["rel_l2"]).as_dict()
    headline = next(s for s in surrogate_curve if s["resolution"] == config.train_resolution)
    matched = headline["matched_accuracy"]
    paired = _paired_speedups(solver_curve, headline, timings, config.n_test)
    upfront = dict(training_seconds=training_seconds, data_seconds=data_seconds,
                   surrogate_seconds_per_sample=headline["seconds_per_sample"])
    even = breakeven(solver_seconds_per_sample=matched["solver_seconds_per_sample"], **upfront)
    even_extrapolated = (breakeven(solver_seconds_per_sample=matched["extrapolated_solver_seconds_per_sample"], **upfront)
                         if matched["extrapolated_solver_seconds_per_sample"] is not None else None)
    results = {
        "problem": spec.name,
        "quick": quick,
        "device": str(device),
        "command": command,
        "problem_options": problem_options,
        "setting": spec.setting(),
        "speedup_at_matched_accuracy": matched["speedup"],
        "speedup_per_round": paired,
        "speedup_spread": _spread([v for v in paired if v is not None]),
        "surrogate_rel_l2": headline["rel_l2"],
        "surrogate_seconds_per_sample": headline["seconds_per_sample"],
        "solver_seconds_per_sample_at_matched_accuracy": matched["solver_seconds_per_sample"],
        "matched_accuracy": matched,
        "breakeven_queries": even.queries,
        "breakeven": even.as_dict(),
        "breakeven_extrapolated": even_extrapolated.as_dict() if even_extrapolated is not None else None,
        "training_seconds": training_seconds,
        "data_generation_seconds": data_seconds,
        "solver_curve": solver_curve,
        "solver_pareto_front": front,
        "surrogate_curve": surrogate_curve,
        "surrogate": {"model": surrogate.model, "model_options": {k: list(v) if isinstance(v, tuple) else v
                                                                  for k, v in surrogate.model_options.items()},
                      "train_resolution": config.train_resolution, "epochs_run": len(history),
                      "stopped_by": history.stop_reason,
                      "final_train_loss": history[-1]["train_loss"] if history else math.nan,
                      "training_loop_seconds": surrogate.provenance.get("train_seconds"),
                      "parameters": sum(p.numel() for p in module.parameters())},
        "reference": {"resolution": config.reference_resolution, "dtype": "float64", "seconds": ref_seconds,
                      "seconds_per_sample": ref_seconds / config.n_test},
        "seeds": {"seed": seed, "train_samples": [0, config.n_train],
                  "test_samples": [first_test, first_test + config.n_test],
                  "model_init_and_shuffle": seed},
        "errors_reproducible": config.train.max_time is None,
        "sizes": config.as_dict(),
        "threads": n_threads,
        "machine": machine_info,
    }
    results["verdict"] = verdict(results)
    results["wall_seconds"] = time.perf_counter() - wall_start

    from .report import markdown, plot_cost_error

    plot_cost_error(results, out / "cost_error.png")
    write_text(out / "results.md", markdown(results))
    write_text(out / "results.json", json.dumps(results, indent=2))
    _log(f"done in {results['wall_seconds']:.0f} s: {results['verdict']}", progress)
    return results


def _paired_speedups(solver_curve: list[dict], headline: dict, timings: dict, items: int) -> list[float | None]:
    """Speed-up at matched accuracy from each timing round's own samples (``None`` where not interpolated).

    The rounds' solver and surrogate times were taken side by side, so their ratio cancels load that
    drifted between rounds; the spread of these ratios is the headline's timing uncertainty.
    """
    speedups = []
    for i in range(len(timings["surrogate", headline["resolution"]].samples)):
        points = [CostErrorPoint(p["resolution"], timings["solver", p["resolution"]].samples[i] / items, p["rel_l2"])
                  for p in solver_curve]
        surrogate_seconds = timings["surrogate", headline["resolution"]].samples[i] / items
        speedups.append(matched_accuracy(points, surrogate_seconds_per_sample=surrogate_seconds,
                                         surrogate_rel_l2=headline["rel_l2"]).speedup)
    return speedups


def _spread(values: list[float]) -> dict | None:
    """``{min, q1, median, q3, max, n}`` of ``values``; ``None`` for none."""
    if not values:
        return None
    q1, q3 = quartiles(values)
    return {"min": min(values), "q1": q1, "median": statistics.median(values), "q3": q3, "max": max(values),
            "n": len(values)}


def verdict(results: dict) -> str:
    """The result in one or two plain sentences (computed from the numbers, never asserted)."""
    m, even = results["matched_accuracy"], results["breakeven"]
    name = results["problem"]
    if m["status"] != "interpolated":
        text = f"{name}: no speed-up at matched accuracy was measured: {m['reason']}."
    else:
        speed = m["speedup"]
        how = f"{speed:.3g}x faster" if speed >= 1 else f"{1 / speed:.3g}x slower (speed-up {speed:.3g})"
        text = (f"{name}: at matched accuracy (rel. L2 {m['surrogate_rel_l2']:.3g}) the surrogate is {how} than the "
                f"solver on {results['device']}.")
    if m["dominated_by"] and "not worth it" not in text:
        text += (f" Solver runs at resolution(s) {', '.join(map(str, m['dominated_by']))} are both at least as accurate "
                 "and at least as fast: here the surrogate is not worth it.")
    elif even["queries"] is not None:
        text += f" Training and data generation pay for themselves after {even['queries']} queries."
    elif m["status"] == "interpolated":
        text += f" Break-even: {even['reason']}."
    return text
