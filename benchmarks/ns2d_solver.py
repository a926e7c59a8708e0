"""Navier-Stokes solver speed: time per step against its FFT floor, and throughput.

For each scheme, grid size and dtype, one run measures (after warm-up, CUDA-synchronised; the step
and its floor are timed alternately, a few steps at a time, so both see the same machine load):
  * the time of one step on a batch;
  * the time of exactly the FFTs that step performs: every ``torch.fft`` call of one step is recorded
    (function, input tensor, arguments) and replayed on the same inputs, so the count, sizes, batch,
    stacking and memory layout are the step's own (CN-Heun: 2 x [inverse FFT of 4 stacked fields +
    forward FFT of 1]; ETDRK4: 4 x the same). That is the floor any pseudo-spectral step pays;
  * their ratio (target <= 1.5): the median over repeats of (step time / floor time) of each
    alternating pair, which cancels load that drifts between pairs on a shared machine; also the
    ratio of the fastest repeats; and the throughput in sample-steps per second.

Runs with :func:`sciml.allocator.keep_freed_memory`, as the ``sciml`` CLI does: with glibc's default
thresholds the step's megabyte temporaries are page-faulted in afresh every step (``--default-allocator``
measures that).

Usage: python benchmarks/ns2d_solver.py [--device cpu|cuda] [--sizes 64 128 256 512] [--repeats 15]
           [--schemes cn-heun etdrk4] [--threads N] [--default-allocator] [--out DIR]
Writes DIR/ns2d_solver.{json,md} (default DIR: benchmarks/results/<cpu|cuda>/).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from sciml._atomic import write_text
from sciml.allocator import allocator_settings, keep_freed_memory
from sciml.solvers.navier_stokes import NavierStokes2D, step
from sciml.timing import timed

# Batch sizes keep each case at a few MB-GB of state; GPU batches are larger to fill the device.
BATCH = {"cpu": {64: 64, 128: 16, 256: 4, 512: 1}, "cuda": {64: 1024, 128: 256, 256: 64, 512: 16}}


class RecordFFTs(TorchFunctionMode):
    """Record every ``torch.fft`` transform called inside the context: ``(function, input clone, args, kwargs)``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "").startswith("fft_") and args and isinstance(args[0], torch.Tensor):
            self.calls.append((func, args[0].clone(memory_format=torch.preserve_format), args[1:], kwargs))
        return func(*args, **kwargs)


def describe(calls: list[tuple]) -> str:
    """``"2 x fft_irfft2(4x16x128x65) + 2 x fft_rfft2(16x128x128)"`` for the recorded calls."""
    counts: dict[str, int] = {}
    for func, x, _, _ in calls:
        key = f"{func.__name__}({'x'.join(map(str, x.shape))})"
        counts[key] = counts.get(key, 0) + 1
    return " + ".join(f"{count} x {key}" for key, count in counts.items())


def measure(scheme: str, n: int, batch: int, dtype: torch.dtype, device: torch.device, repeats: int) -> dict:
    eq = NavierStokes2D(viscosity=1e-3)
    gen = torch.Generator(device="cpu").manual_seed(0)
    w = torch.randn(batch, n, n, generator=gen, dtype=dtype).to(device)
    w_hat = torch.fft.rfft2(w)
    dt, steps = 1e-3, 5
    step(eq, w_hat, dt, scheme=scheme)  # build the cached operators outside the recording
    with RecordFFTs() as recorder:
        step(eq, w_hat, dt, scheme=scheme)
    calls = recorder.calls

    def solver() -> None:
        state = w_hat
        for _ in range(steps):
            state = step(eq, state, dt, scheme=scheme)

    def ffts() -> None:
        for _ in range(steps):
            for func, x, args, kwargs in calls:
                func(x, *args, **kwargs)

    solver(), ffts()  # warm-up
    t_step, t_fft = [], []
    for _ in range(repeats):
        t_step.append(timed(solver, device=device)[1] / steps)
        t_fft.append(timed(ffts, device=device)[1] / steps)
    median_step, median_fft = statistics.median(t_step), statistics.median(t_fft)
    return {"scheme": scheme, "n": n, "batch": batch, "dtype": str(dtype).replace("torch.", ""),
            "ffts_per_step": describe(calls), "step_s": median_step, "step_s_min": min(t_step),
            "step_s_max": max(t_step), "fft_floor_s": median_fft, "fft_floor_s_min": min(t_fft),
            "ratio": statistics.median(a / b for a, b in zip(t_step, t_fft)),
            "ratio_of_minima": min(t_step) / min(t_fft),
            "sample_steps_per_s": batch / median_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--schemes", nargs="+", default=["cn-heun", "etdrk4"])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, help="output folder (default: benchmarks/results/<cpu|cuda>/, the "
                        "committed results; use another for a partial run)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="keep glibc's default thresholds (default: sciml.allocator.keep_freed_memory, as the CLI)")
    args = parser.parse_args()
    if not args.default_allocator:
        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    unknown = sorted(set(args.sizes) - set(BATCH[device.type]))
    if unknown:
        parser.error(f"--sizes {unknown}: no batch size is set for them; choose from {sorted(BATCH[device.type])}")
    rows = [measure(scheme, n, BATCH[device.type][n], dtype, device, args.repeats)
            for scheme in args.schemes for dtype in (torch.float32, torch.float64) for n in args.sizes]
    # glibc's thresholds decide how often torch's large FFT temporaries are page-faulted in afresh
    machine = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
               "allocator": allocator_settings()}
    out = args.out or Path(__file__).parent / "results" / device.type
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "ns2d_solver.json", json.dumps({"machine": machine, "results": rows}, indent=2))
    table = ["| scheme | n | batch | dtype | ms/step (min-max) | FFT floor ms (min) | ratio (target <= 1.5) | "
             "ratio of minima | sample-steps/s |", "|---|---|---|---|---|---|---|---|---|"]
    table += [f"| {r['scheme']} | {r['n']} | {r['batch']} | {r['dtype']} | {r['step_s'] * 1e3:.2f} "
              f"({r['step_s_min'] * 1e3:.2f}-{r['step_s_max'] * 1e3:.2f}) | {r['fft_floor_s'] * 1e3:.2f} "
              f"({r['fft_floor_s_min'] * 1e3:.2f}) | {r['ratio']:.2f} | {r['ratio_of_minima']:.2f} | "
              f"{r['sample_steps_per_s']:.0f} |" for r in rows]
    floors = {r["scheme"]: r["ffts_per_step"] for r in rows if r["n"] == args.sizes[0]}
    notes = [f"FFTs per step ({scheme}, n={args.sizes[0]}): {calls}" for scheme, calls in floors.items()]
    text = f"Machine: {machine}\n\n" + "\n".join(table) + "\n\n" + "\n".join(notes) + "\n"
    write_text(out / "ns2d_solver.md", text)
    print(text)


if __name__ == "__main__":
    main()
