"""Cost of unconditional function-space sampling: CPU seconds per sample against grid points x network evaluations
over 64 x 64 .. 256 x 256 (issue 14's cost target), with the network of ``diffusion_uncond.py``.

The cost of a sampler does not depend on the weights, so the denoiser here is freshly initialised (seed 0) with the
unconditional benchmark's network (FNO 24 x 24 modes, width 24, 4 layers, positional features) and its noise type
(a :class:`~sciml.diffusion.SpectrumMatchedField`, here of a power-law spectrum, band limit 127) with the coloured
output; ``trig_heun`` with ``--steps`` steps (``2 steps - 1`` evaluations) and, to vary the evaluations at a fixed
grid, half of them. Each cell is timed with ``time.process_time`` (this process's CPU seconds, one torch thread), the
minimum over ``--repeats`` runs of ``--batch`` samples. The fit is least squares of seconds per sample on
``points x evaluations`` (slope, intercept, R^2); linear cost means R^2 near 1 and a small intercept.

Run: ``nice -n 10 python benchmarks/diffusion_cost.py`` (a few CPU-minutes). Writes
``benchmarks/results/cpu/diffusion_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sciml._atomic import write_text

NETWORK = {"n_modes": (24, 24), "hidden_channels": 24, "n_layers": 4, "embedding_channels": 64, "positional": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256], help="grid sizes (default: 64 128 256)")
    parser.add_argument("--steps", type=int, default=18, help="trig_heun steps (default: 18, 35 evaluations)")
    parser.add_argument("--batch", type=int, default=4, help="samples per timed run (default: 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per cell, the minimum kept (default: 2)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from sciml import Grid
    from sciml.diffusion import (
        EDMDenoiser,
        FieldNetConfig,
        SpectrumMatchedField,
        sample_tensor,
    )
    from sciml.diffusion.samplers import evaluations

    k_max = 21
    index = np.arange(-k_max, k_max + 1)
    radius = np.sqrt(index[:, None] ** 2 + index[None, :] ** 2)
    table = tuple(float(v) for v in (np.where(radius > 0, radius, 1.0) ** -4.0).ravel())
    noise = SpectrumMatchedField(variances=table, lengths=(1.0, 1.0), tail_exponent=4.0, tail_amplitude=1.0,
                                 band_limit=127)
    torch.manual_seed(0)
    model = EDMDenoiser(domain=Grid.box(64, 64), noise=noise, sigma_data=1.0, network=FieldNetConfig(**NETWORK),
                        spectral_output=True).eval()
    cells = []
    for n in args.grids:
        for steps in (max(1, args.steps // 2), args.steps):
            times = []
            for repeat in range(args.repeats):
                start = time.process_time()
                sample_tensor(model, Grid.box(n, n), args.batch, sampler="trig_heun", steps=steps,
                              generator=torch.Generator().manual_seed(repeat))
                times.append((time.process_time() - start) / args.batch)
            cells.append({"grid": n, "steps": steps, "evaluations": evaluations("trig_heun", steps),
                          "cpu_seconds_per_sample": min(times)})
            print(json.dumps(cells[-1]), flush=True)
    work = np.array([c["grid"] ** 2 * c["evaluations"] for c in cells], dtype=float)
    seconds = np.array([c["cpu_seconds_per_sample"] for c in cells])
    slope, intercept = np.polyfit(work, seconds, 1)
    fitted = slope * work + intercept
    r2 = 1 - float(((seconds - fitted) ** 2).sum() / ((seconds - seconds.mean()) ** 2).sum())
    per_unit = seconds / work  # seconds per point-evaluation of each cell
    result = {"cells": cells, "slope_cpu_s_per_point_evaluation": float(slope), "intercept_cpu_s": float(intercept),
              "r2": r2, "per_point_evaluation_range": [float(per_unit.min()), float(per_unit.max())],
              "network": NETWORK, "batch": args.batch, "repeats": args.repeats,
              "machine": {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "cpu": platform.processor() or platform.machine()},
              "command": "nice -n 10 python benchmarks/diffusion_cost.py"}
    lines = ["# Cost of unconditional sampling (trig_heun, CPU)", "", f"Command: `{result['command']}`", "",
             (f"Machine: {result['machine']}; network {NETWORK} (freshly initialised: the cost does not depend on "
              f"the weights); {args.batch} samples per run, minimum of {args.repeats} runs, `time.process_time`."), "",
             "| grid | steps | evaluations | CPU s per sample | CPU s per (point x evaluation) |", "|---|---|---|---|---|"]
    for c, unit in zip(cells, per_unit):
        lines.append(f"| {c['grid']} | {c['steps']} | {c['evaluations']} | {c['cpu_seconds_per_sample']:.3f} | "
                     f"{unit:.3e} |")
    lines += ["", (f"Fit: {slope:.3e} CPU s per (grid point x evaluation), intercept {intercept:.3f} s, R^2 {r2:.4f}; "
                   f"per-cell cost per point-evaluation from {per_unit.min():.3e} to {per_unit.max():.3e}."), ""]
    out = ROOT / "benchmarks" / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "diffusion_cost.json", json.dumps(result, indent=2))
    write_text(out / "diffusion_cost.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
