"""The human-readable outputs of a benchmark: a markdown table and the cost-error plot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["markdown", "plot_cost_error"]


def _fmt(value, spec: str = ".3g", none: str = "n/a") -> str:
    return none if value is None else format(value, spec)


def markdown(results: dict) -> str:
    """``results.md``: the headline numbers, both curves and the machine, from a results dict."""
    m, even, setting = results["matched_accuracy"], results["breakeven"], results["setting"]
    machine = results["machine"]
    solver_rows = []
    for p in results["solver_curve"]:
        t = p["timing"]["seconds_per_sample"]
        solver_rows.append(f"| {p['resolution']} | {p['seconds_per_sample']:.3g} | {t['q1']:.3g} - {t['q3']:.3g} | "
                           f"{t['min']:.3g} - {t['max']:.3g} | {p['rel_l2']:.3g} | {p['rel_l2_max']:.3g} | "
                           f"{'yes' if p['on_pareto_front'] else 'no'} |")
    surrogate_rows = []
    for s in results["surrogate_curve"]:
        t, ma = s["timing"]["seconds_per_sample"], s["matched_accuracy"]
        speed = _fmt(ma["speedup"]) if ma["speedup"] is not None else (
            f"n/a ({ma['status']}; extrapolated {_fmt(ma['extrapolated_speedup'])})")
        mark = " (trained here)" if s["resolution"] == results["surrogate"]["train_resolution"] else " (zero-shot)"
        surrogate_rows.append(f"| {s['resolution']}{mark} | {s['seconds_per_sample']:.3g} | {t['q1']:.3g} - {t['q3']:.3g} | "
                              f"{s['rel_l2']:.3g} | {s['rel_l2_max']:.3g} | {speed} |")
    headline = (f"**{m['speedup']:.3g}x**" if m["speedup"] is not None
                else f"**none measured** ({m['status'].replace('_', ' ')})")
    extrapolated = ""
    if m["extrapolated_speedup"] is not None:
        extrapolated = (f"| speed-up by extrapolating the solver curve (flagged: outside the measured range) | "
                        f"{m['extrapolated_speedup']:.3g}x |\n")
    spread = results.get("speedup_spread")
    rounds = "n/a (not interpolated in any round)" if spread is None else (
        f"{spread['min']:.3g} - {spread['median']:.3g} - {spread['max']:.3g} ({spread['n']} of "
        f"{len(results['speedup_per_round'])} rounds interpolated)")
    options = results.get("problem_options") or {}
    parameters = f" (problem parameters {', '.join(f'{k}={v!r}' for k, v in options.items())})" if options else ""
    sizes = results["sizes"]
    threads = results["threads"]
    load = machine.get("load_average")
    return f"""# Benchmark `{results['problem']}`{' (quick)' if results['quick'] else ''}: surrogate vs solver at matched accuracy

{setting['equation']}; map {setting['map']}{parameters}. Errors are relative L2 against a float64 reference at
{results['reference']['resolution']} ({setting['error_interpolant']}), averaged over {sizes['n_test']} test samples; costs are
median seconds per sample over {sizes['repeats']} timing rounds after {sizes['warmup']} warm-up round(s), each round calling every solver and
surrogate run of the tables once on the whole test batch (interleaved, so load drifting during the run falls on all alike),
on `{results['device']}` ({machine['device_name']}, {threads} thread{'s' if threads != 1 else ''}).

| metric | value |
|---|---|
| speed-up at matched accuracy | {headline} |
| speed-up per timing round: min - median - max | {rounds} |
{extrapolated}| surrogate rel. L2 (at its training resolution {results['surrogate']['train_resolution']}) | {results['surrogate_rel_l2']:.3g} |
| surrogate seconds per sample | {results['surrogate_seconds_per_sample']:.3g} |
| solver seconds per sample at that error | {_fmt(results['solver_seconds_per_sample_at_matched_accuracy'])} |
| data generation / training seconds | {results['data_generation_seconds']:.3g} / {results['training_seconds']:.3g} |
| break-even queries | {_fmt(even['queries'], 'd', 'none')} ({even['reason']}) |

{results['verdict']}

Matched accuracy: {m['reason']}.

## Solver ({setting['solver']})

| resolution | s/sample (median) | interquartile | min - max | rel. L2 (mean) | rel. L2 (max) | on Pareto front |
|---|---|---|---|---|---|---|
{chr(10).join(solver_rows)}

## Surrogate ({results['surrogate'].get('model', 'fno').upper()}, {results['surrogate']['epochs_run']} epochs on {sizes['n_train']} samples, stopped by {results['surrogate']['stopped_by']})

| resolution | s/sample (median) | interquartile | rel. L2 (mean) | rel. L2 (max) | speed-up at matched accuracy |
|---|---|---|---|---|---|
{chr(10).join(surrogate_rows)}

![cost vs error](cost_error.png)

Reproduce: `{results['command'] or 'sciml bench ' + results['problem']}` (seed {results['seeds']['seed']}; errors
{'are bit-reproducible' if results['errors_reproducible'] else 'depend on the wall-clock training budget'}).
Machine: {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, torch {machine['torch_version']}, Python
{machine['python_version']}{', CUDA ' + str(machine['cuda_version']) if machine.get('cuda_version') else ''}; load average at the end {load}.
Reading these numbers: `docs/benchmarks.md`.
"""


def _round_range(points: list[dict]) -> list[list[float]]:
    """``yerr`` of ``errorbar``: each point's median minus its fastest round, and slowest round minus median."""
    spreads = [p["timing"]["seconds_per_sample"] for p in points]
    return [[t["median"] - t["min"] for t in spreads], [t["max"] - t["median"] for t in spreads]]


def _minor_tick_label(value: float, _position) -> str:
    """``2x10^k`` and ``5x10^k`` on a log axis, the other minor ticks unlabelled."""
    if value <= 0:
        return ""
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = round(value / 10.0 ** exponent)
    return rf"${mantissa}\times10^{{{exponent}}}$" if mantissa in (2, 5) else ""


def plot_cost_error(results: dict, path: str | os.PathLike) -> Path:
    """Log-log cost vs error: solver ladder (Pareto front joined), surrogate points, the matched point."""
    from ..plotting import save_figure

    return save_figure(_cost_error_figure(results), path)


def _cost_error_figure(results: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    solver = results["solver_curve"]
    front = [p for p in solver if p["on_pareto_front"]]
    front.sort(key=lambda p: p["seconds_per_sample"])
    ax.errorbar([p["rel_l2"] for p in solver], [p["seconds_per_sample"] for p in solver], yerr=_round_range(solver),
                fmt="o", color="tab:blue", mfc="none", capsize=3, label="solver runs (bars: min-max over timing rounds)")
    ax.plot([p["rel_l2"] for p in front], [p["seconds_per_sample"] for p in front], "-o", color="tab:blue",
            label="solver, Pareto front (log-log interpolation)")
    for p in solver:
        ax.annotate(f"n={p['resolution']}", (p["rel_l2"], p["seconds_per_sample"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8, color="tab:blue")
    surrogate = results["surrogate_curve"]
    ax.errorbar([s["rel_l2"] for s in surrogate], [s["seconds_per_sample"] for s in surrogate],
                yerr=_round_range(surrogate), fmt="--s", color="tab:orange", capsize=3,
                label=f"{results.get('surrogate', {}).get('model', 'fno').upper()} surrogate (training grid and zero-shot grids)")
    for k, s in enumerate(surrogate):  # alternately below and above: zero-shot points often sit close together
        ax.annotate(f"n={s['resolution']}", (s["rel_l2"], s["seconds_per_sample"]), textcoords="offset points",
                    xytext=(5, -11 if k % 2 == 0 else 4), fontsize=8, color="tab:orange")
    m = results["matched_accuracy"]
    err, cost = m["surrogate_rel_l2"], m["surrogate_seconds_per_sample"]
    ax.plot([err], [cost], "s", color="tab:orange", ms=10, mec="black", label="surrogate (headline)")
    if m["solver_seconds_per_sample"] is not None:
        spread = results.get("speedup_spread")
        rounds = f", rounds {spread['min']:.3g}-{spread['max']:.3g}" if spread else ""
        ax.plot([err], [m["solver_seconds_per_sample"]], "*", color="tab:red", ms=16, mec="black",
                label=f"solver at matched accuracy: speed-up {m['speedup']:.3g}x{rounds}")
        ax.plot([err, err], [cost, m["solver_seconds_per_sample"]], ":", color="tab:red")
    elif m["extrapolated_solver_seconds_per_sample"] is not None:
        ax.plot([err], [m["extrapolated_solver_seconds_per_sample"]], "*", color="tab:red", ms=16, mfc="none",
                label=f"extrapolated (outside the solver curve): {m['extrapolated_speedup']:.3g}x")
        ax.plot([err, err], [cost, m["extrapolated_solver_seconds_per_sample"]], ":", color="tab:red")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    for axis in (ax.xaxis, ax.yaxis):  # label minor ticks at 2 and 5 only: all eight overlap within a decade
        axis.set_minor_formatter(FuncFormatter(_minor_tick_label))
    ax.set_xlabel(f"relative L2 error vs the {results['reference']['dtype']} reference at n={results['reference']['resolution']} "
                  f"(mean over {results['sizes']['n_test']} test samples)")
    ax.set_ylabel("cost [seconds per sample], median over timing rounds")
    ax.set_title(f"{results['problem']}: cost vs error on {results['device']} ({results['machine']['device_name']}); "
                 f"n = {results.get('setting', {}).get('resolution', 'grid points per axis')}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncols=2)
    return fig
