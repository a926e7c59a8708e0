"""3-D Navier-Stokes solver speed: time per ETDRK4 step against the time of its FFTs.

For each configuration (unstratified; stratified and rotating), grid size, dtype and thread count, one run
measures, after warm-up and CUDA-synchronised, alternately a few steps at a time so that both see the same
machine load:
  * the time of one step on a batch;
  * the FFT floor: every ``torch.fft`` call of one step is recorded (function, input, arguments) and replayed
    on the same inputs, so count, sizes, batch and layout are the step's own. Per step (4 ETDRK4 stages), each
    stage transforms C + 3 fields back (state and vorticity, one call) and 3 (unstratified) or 6 (u x omega,
    u b) forward: 4 x 6 + 4 x 3 = 36 3-D transforms unstratified, 4 x 7 + 4 x 6 = 52 stratified;
  * their ratio (target <= 1.5 at 64^3 on the CPU): the median over repeats of step / floor of each pair,
    which cancels load drifting between pairs on a shared machine; also the ratio of the fastest repeats.
The load average before and after is recorded: on a shared machine the numbers are only as good as it was quiet.

Runs with :func:`sciml.allocator.keep_freed_memory`, as the ``sciml`` CLI does.

Usage: python benchmarks/ns3d_solver.py [--device cpu|cuda] [--sizes 32 64] [--threads 1 2] [--repeats 15]
           [--configs unstratified stratified] [--out DIR]
Writes DIR/ns3d_solver.{json,md} (default DIR: benchmarks/results/<cpu|cuda>/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import torch

from ns2d_solver import RecordFFTs, describe  # benchmarks/ is on sys.path when this runs as a script
from sciml._atomic import write_text
from sciml.allocator import allocator_settings, keep_freed_memory
from sciml.solvers.navier_stokes3d import NavierStokes3D, random_velocity, stable_dt, step
from sciml.timing import timed

BATCH = {"cpu": {32: 4, 64: 1}, "cuda": {32: 64, 64: 16}}
CONFIGS = {"unstratified": {"viscosity": 1e-2},
           "stratified": {"viscosity": 1e-2, "buoyancy_frequency": 2.0, "coriolis_parameter": 1.0}}


def measure(config: str, n: int, batch: int, dtype: torch.dtype, device: torch.device, threads: int | None,
            repeats: int) -> dict:
    if threads:
        torch.set_num_threads(threads)
    eq = NavierStokes3D(**CONFIGS[config])
    state = random_velocity(n, batch, seed=0, dtype=dtype, device=device)
    if config == "stratified":
        state = torch.cat([state, 0.5 * random_velocity(n, batch, seed=1, dtype=dtype, device=device)[:, :1]], dim=1)
    v_hat = torch.fft.rfftn(state, dim=(-3, -2, -1))
    dt, steps = stable_dt(eq, state), 3
    step(eq, v_hat, dt)  # build the cached operators outside the recording
    with RecordFFTs() as recorder:
        step(eq, v_hat, dt)
    calls = recorder.calls

    def solver() -> None:
        v = v_hat
        for _ in range(steps):
            v = step(eq, v, dt)

    def ffts() -> None:
        for _ in range(steps):
            for func, x, args, kwargs in calls:
                func(x, *args, **kwargs)

    solver(), ffts()  # warm-up
    t_step, t_fft = [], []
    for _ in range(repeats):
        t_step.append(timed(solver, device=device)[1] / steps)
        t_fft.append(timed(ffts, device=device)[1] / steps)
    transforms = sum(x.numel() // x[0, 0].numel() for _, x, _, _ in calls)  # (batch, fields, ...) inputs
    return {"config": config, "n": n, "batch": batch, "dtype": str(dtype).replace("torch.", ""),
            "threads": torch.get_num_threads(), "ffts_per_step": describe(calls),
            "transforms_per_sample_step": transforms // batch, "step_s": statistics.median(t_step),
            "step_s_min": min(t_step), "step_s_max": max(t_step), "fft_floor_s": statistics.median(t_fft),
            "fft_floor_s_min": min(t_fft), "ratio": statistics.median(a / b for a, b in zip(t_step, t_fft)),
            "ratio_of_minima": min(t_step) / min(t_fft), "sample_steps_per_s": batch / statistics.median(t_step)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["unstratified", "stratified"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU thread counts (CPU only)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, help="output folder (default: benchmarks/results/<cpu|cuda>/, the "
                        "committed results; use another for a partial run)")
    args = parser.parse_args()
    keep_freed_memory()
    device = torch.device(args.device)
    unknown = sorted(set(args.sizes) - set(BATCH[device.type]))
    if unknown:
        parser.error(f"--sizes {unknown}: no batch size is set for them; choose from {sorted(BATCH[device.type])}")
    thread_counts = args.threads if device.type == "cpu" else [None]
    load_before = os.getloadavg()
    rows = [measure(config, n, BATCH[device.type][n], dtype, device, threads, args.repeats)
            for threads in thread_counts for config in args.configs for dtype in (torch.float32, torch.float64)
            for n in args.sizes]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    machine = {"device": str(device), "torch": torch.__version__, "cpus": os.cpu_count(), "name": name,
               "allocator": allocator_settings(), "load_average_before": load_before,
               "load_average_after": os.getloadavg()}
    out = args.out or Path(__file__).parent / "results" / device.type
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "ns3d_solver.json", json.dumps({"machine": machine, "results": rows}, indent=2))
    table = [("| config | n | batch | dtype | threads | ms/step (min-max) | FFT floor ms (min) | ratio (target <= 1.5) "
              "| ratio of minima | sample-steps/s |"), "|---|---|---|---|---|---|---|---|---|---|"]
    table += [f"| {r['config']} | {r['n']} | {r['batch']} | {r['dtype']} | {r['threads']} | {r['step_s'] * 1e3:.1f} "
              f"({r['step_s_min'] * 1e3:.1f}-{r['step_s_max'] * 1e3:.1f}) | {r['fft_floor_s'] * 1e3:.1f} "
              f"({r['fft_floor_s_min'] * 1e3:.1f}) | {r['ratio']:.2f} | {r['ratio_of_minima']:.2f} | "
              f"{r['sample_steps_per_s']:.1f} |" for r in rows]
    first = {r["config"]: r for r in rows if r["n"] == args.sizes[0]}
    notes = [f"FFTs per step ({config}, n={r['n']}, batch {r['batch']}): {r['ffts_per_step']} = "
             f"{r['transforms_per_sample_step']} 3-D transforms per sample" for config, r in first.items()]
    text = f"Machine: {machine}\n\n" + "\n".join(table) + "\n\n" + "\n".join(notes) + "\n"
    write_text(out / "ns3d_solver.md", text)
    print(text)


if __name__ == "__main__":
    main()
