"""Navier-Stokes solver speed: time per step against its FFT floor, and throughput.

For each grid size and dtype, one run measures (medians over repeats, after warm-up, CUDA-synchronised):
  * the time of one Crank-Nicolson/Heun step on a batch;
  * the time of exactly the FFTs that step performs (2 x [inverse FFT of 4 fields + forward FFT of 1])
    on tensors of the same shape: the floor any pseudo-spectral step pays;
  * their ratio (target <= 1.5) and the throughput in sample-steps per second.

Usage: python benchmarks/ns2d_solver.py [--device cpu|cuda] [--sizes 64 128 256 512] [--repeats 5]
Writes benchmarks/results/<cpu|cuda>/ns2d_solver.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from sciml.solvers.navier_stokes import NavierStokes2D, step
from sciml.timing import time_call

# Batch sizes keep each case at a few MB-GB of state; GPU batches are larger to fill the device.
BATCH = {"cpu": {64: 64, 128: 16, 256: 4, 512: 1}, "cuda": {64: 1024, 128: 256, 256: 64, 512: 16}}


def measure(n: int, batch: int, dtype: torch.dtype, device: torch.device, repeats: int) -> dict:
    eq = NavierStokes2D(viscosity=1e-3)
    gen = torch.Generator(device="cpu").manual_seed(0)
    w = torch.randn(batch, n, n, generator=gen, dtype=dtype).to(device)
    w_hat = torch.fft.rfft2(w)
    fields4 = torch.fft.irfft2(w_hat.expand(4, -1, -1, -1) * 1.0, s=(n, n))  # (4, batch, n, n) like the step's
    steps = 10

    def solver() -> None:
        state = w_hat
        for _ in range(steps):
            state = step(eq, state, 1e-3)

    def ffts() -> None:
        spectrum = w_hat
        for _ in range(2 * steps):  # two nonlinear evaluations per step
            physical = torch.fft.irfft2(spectrum.expand(4, -1, -1, -1), s=(n, n))
            spectrum = torch.fft.rfft2(physical[0] + fields4[1])  # one forward FFT of one field
    t_step = time_call(solver, repeats=repeats, warmup=1, device=device)
    t_fft = time_call(ffts, repeats=repeats, warmup=1, device=device)
    return {"n": n, "batch": batch, "dtype": str(dtype).replace("torch.", ""),
            "step_s": t_step.median / steps, "step_s_min": t_step.min / steps, "step_s_max": t_step.max / steps,
            "fft_floor_s": t_fft.median / steps, "ratio": t_step.median / t_fft.median,
            "sample_steps_per_s": batch * steps / t_step.median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [measure(n, BATCH[device.type][n], dtype, device, args.repeats)
            for dtype in (torch.float32, torch.float64) for n in args.sizes]
    machine = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()}
    out = Path(__file__).parent / "results" / device.type
    out.mkdir(parents=True, exist_ok=True)
    (out / "ns2d_solver.json").write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    table = ["| n | batch | dtype | ms/step (min-max) | FFT floor ms | ratio (target <= 1.5) | sample-steps/s |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {r['n']} | {r['batch']} | {r['dtype']} | {r['step_s'] * 1e3:.2f} ({r['step_s_min'] * 1e3:.2f}-"
              f"{r['step_s_max'] * 1e3:.2f}) | {r['fft_floor_s'] * 1e3:.2f} | {r['ratio']:.2f} | {r['sample_steps_per_s']:.0f} |"
              for r in rows]
    text = f"Machine: {machine}\n\n" + "\n".join(table) + "\n"
    (out / "ns2d_solver.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
