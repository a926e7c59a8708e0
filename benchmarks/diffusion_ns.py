"""Function-space diffusion on Navier-Stokes vorticity (nu = 1e-3, Li et al. forcing): unconditional sampling at 1x,
2x and 4x the training grid, zero-shot super-resolution 16 -> 32 and 16 -> 64, and the cost of sampling.

Data: the ``ns2d`` recipe (initial vorticity GRF(2.5, 7), forcing ``0.1 (sin + cos) 2 pi (x + y)``), snapshots at
``t = 10, 12, ..., 50``. Training set: trajectories of seed 0 solved at 64 x 64 and spectrally truncated to 32 x 32
(the training grid). Test truth: held-out trajectories (seed 1) solved *natively* at 64 and 128 from the same
continuous initial vorticity (the resolution-consistent recipe), and the 64 solution truncated to 32.

* **Unconditional**: one :class:`~sciml.diffusion.EDMDenoiser` trained at 32 x 32 (:class:`DiffusionTask`, EDM loss,
  EMA) samples at 32, 64 and 128 with the same weights (Heun, 18 steps = 35 evaluations); the isotropic spectrum per
  octave band against the test truth on that grid; the point-value distribution (W1) against the truth and, as the
  honest baseline, a Gaussian random field with the truth's mean field and per-mode power; moments and MMD.
* **Super-resolution**: the condition is the fine truth's Fourier modes ``|k| < 8`` (its spectral truncation to
  16 x 16); ensembles by the data-consistency guidance of :mod:`sciml.diffusion.conditional` on the unconditional
  model, scored against the fine-grid solver truth (never an upsampled field): ensemble-mean relative L2 against
  periodic bicubic interpolation of the 16 x 16 field and against a deterministic FNO trained on the same
  (coarse, fine) pairs at 32 x 32 (:func:`sciml.surrogate.fit_surrogate`, evaluated zero-shot at 64 like the
  diffusion model); the fair CRPS against the FNO's MAE; the spread/skill ratio.
* **Cost**: seconds per sample against grid points x network evaluations (32..256, two budgets), the fitted slope.

Run: ``nice -n 10 python benchmarks/diffusion_ns.py`` (one thread). Writes
``benchmarks/results/cpu/diffusion_ns.{json,md}``.
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

TIMES = [float(t) for t in range(10, 51, 2)]
TEST_TIMES = [10.0, 20.0, 30.0, 40.0, 50.0]
CONFIG = {"n_train": 48, "n_test": 8, "train_grid": 32, "solve_train_at": 64, "superres": {16: (32, 64), 8: (32, 64)}, "epochs": 40,
          "batch_size": 32, "lr": 2e-3, "noise": {"alpha": 2.0, "tau": 5.0, "band_limit": 15},
          "network": {"n_modes": (16, 16), "hidden_channels": 32, "n_layers": 4, "embedding_channels": 64},
          "fno": {"n_modes": (16, 16), "hidden_channels": 32, "n_layers": 4}, "fno_epochs": 30,
          "samples": 40, "heun_steps": 18, "sr_cases": 16, "sr_members": 8}
BANDS = [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32), (32, 64)]


def frames(ds) -> torch.Tensor:
    """``(sample * time, 1, y, x)`` float32 from an ns2d dataset."""
    v = torch.from_numpy(np.asarray(ds["vorticity"].values)).float()
    return v.reshape(-1, 1, *v.shape[-2:])


def periodic_bicubic(coarse: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic interpolation of periodic ``(n, c, m, m)`` node values onto the ``factor``-times finer nodes."""
    pad = 2
    padded = torch.nn.functional.pad(coarse, (pad, pad + 1, pad, pad + 1), mode="circular")
    size = factor * (padded.shape[-1] - 1) + 1
    fine = torch.nn.functional.interpolate(padded, size=(size, size), mode="bicubic", align_corners=True)
    m = coarse.shape[-1] * factor
    return fine[..., factor * pad:factor * pad + m, factor * pad:factor * pad + m]


def matched_grf(truth: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian fields with the truth's mean field and per-mode mean power of its anomaly."""
    mean = truth.mean(0, keepdim=True)
    power = torch.fft.fftn((truth - mean).double(), dim=(-2, -1), norm="forward").abs().pow(2).mean(0)
    white = torch.randn((n, *truth.shape[1:]), generator=generator, dtype=torch.float64)
    coeffs = torch.fft.fftn(white, dim=(-2, -1), norm="ortho") * power.sqrt()
    return (torch.fft.ifftn(coeffs, dim=(-2, -1), norm="forward").real + mean.double()).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run of the code paths (no results)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        CONFIG.update(n_train=2, n_test=2, epochs=1, fno_epochs=1, samples=4, heun_steps=2, sr_cases=2, sr_members=2)
        TIMES[:] = TIMES[:2]
        TEST_TIMES[:] = TEST_TIMES[:1]
        CONFIG["superres"] = {8: (32,)}
    import xarray as xr

    from datasets import ns2d
    from sciml import Grid
    from sciml.diffusion import (
        DiffusionTask,
        EDMDenoiser,
        EDMLoss,
        FieldNetConfig,
        GaussianRandomField,
    )
    from sciml.diffusion import sample_tensor as sample
    from sciml.diffusion.conditional import LowModes, conditional_sample
    from sciml.diffusion.metrics import (
        ensemble_scores,
        mmd,
        moment_errors,
        spectrum_error,
        wasserstein_1d,
    )
    from sciml.spectral import spectral_resample
    from sciml.surrogate import fit_surrogate
    from sciml.train import TrainConfig, fit, seed_everything

    c = CONFIG
    result: dict = {"config": c}
    clock = time.perf_counter()
    train_ds = ns2d.generate(c["n_train"], c["train_grid"], seed=0, times=TIMES, solve_resolution=c["solve_train_at"],
                             progress=False)
    test = {64: ns2d.generate(c["n_test"], 64, seed=1, times=TEST_TIMES, progress=False),
            128: ns2d.generate(c["n_test"], 128, seed=1, times=TEST_TIMES, progress=False)}
    truth = {64: frames(test[64]), 128: frames(test[128])}
    truth[32] = spectral_resample(truth[64], (32, 32))
    result["data_seconds"] = time.perf_counter() - clock
    print(f"data {result['data_seconds']:.0f} s", flush=True)

    fields = frames(train_ds)
    sigma_data = float(fields.std())
    domain = Grid.box(32, 32)
    seed_everything(0)
    model = EDMDenoiser(domain=domain, noise=GaussianRandomField(**c["noise"]), sigma_data=sigma_data,
                        network=FieldNetConfig(**c["network"]))
    task = DiffusionTask(model, objective=EDMLoss(), ema_decay=0.995)
    clock = time.perf_counter()
    history = fit(task, (fields,), config=TrainConfig(epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"],
                                                      warmup_fraction=0.05, device="cpu", progress=False, seed=0))
    result["train_seconds"] = time.perf_counter() - clock
    result["train_fields"] = int(fields.shape[0])
    result["final_loss"] = float(history[-1]["train_loss"])
    print(f"diffusion trained {len(history)} epochs in {result['train_seconds']:.0f} s, loss {result['final_loss']:.3f}",
          flush=True)
    ema = task.ema.module.eval()

    # ------------------------------------------------------------------ unconditional, 1x / 2x / 4x
    unconditional = {}
    for n in (32, 64, 128):
        clock = time.perf_counter()
        x = sample(ema, Grid.box(n, n), c["samples"], steps=c["heun_steps"], generator=torch.Generator().manual_seed(n))
        seconds = time.perf_counter() - clock
        t = truth[n]
        bands = [b for b in BANDS if b[1] <= n // 2]
        spec = spectrum_error(x, t, bands=bands)
        baseline = matched_grf(t, c["samples"], torch.Generator().manual_seed(100 + n))
        unconditional[n] = {
            "seconds": seconds, "spectrum": spec,
            "max_error_resolved_at_32": max(abs(b["error"]) for b in spec if b["band"][1] <= 16),
            "w1_samples": wasserstein_1d(x, t), "w1_matched_grf": wasserstein_1d(baseline, t),
            "w1_split_truth": wasserstein_1d(t[::2], t[1::2]),
            "moments": moment_errors(x, t), "moments_matched_grf": moment_errors(baseline, t),
            "mmd": mmd(x, t), "mmd_matched_grf": mmd(baseline, t)}
        print(n, json.dumps({k: v for k, v in unconditional[n].items() if k != "spectrum"}), flush=True)
        print("   bands", [(b["band"], round(b["error"], 3)) for b in spec], flush=True)
    result["unconditional"] = unconditional

    # ------------------------------------------------------------------ super-resolution, FNO on the same pairs
    superres, result["fno_train_seconds"] = {}, {}
    for coarse, targets in c["superres"].items():
        coarse_train = spectral_resample(spectral_resample(torch.from_numpy(np.asarray(train_ds["vorticity"].values)),
                                                           (coarse, coarse)), (32, 32))
        pairs = train_ds.assign(coarse=(train_ds["vorticity"].dims, coarse_train.numpy(),
                                        train_ds["vorticity"].attrs))
        clock = time.perf_counter()
        seed_everything(0)
        fno, _ = fit_surrogate(pairs, inputs=["coarse"], outputs=["vorticity"], model_options=dict(c["fno"]),
                               config=TrainConfig(epochs=c["fno_epochs"], batch_size=32, lr=3e-3, seed=0,
                                                  device="cpu", progress=False))
        result["fno_train_seconds"][coarse] = time.perf_counter() - clock
        print(f"FNO for {coarse} -> 32 trained in {result['fno_train_seconds'][coarse]:.0f} s", flush=True)
        for n in targets:
            y = truth[n][:: max(1, truth[n].shape[0] // c["sr_cases"])][: c["sr_cases"]]
            low = spectral_resample(y, (coarse, coarse))
            clock = time.perf_counter()
            members = conditional_sample(ema, Grid.box(n, n), LowModes(low), c["sr_members"], steps=c["heun_steps"],
                                         generator=torch.Generator().manual_seed(7))
            seconds = time.perf_counter() - clock
            scores = ensemble_scores(members, y)
            bicubic = periodic_bicubic(low, n // coarse)
            spectral = spectral_resample(low, (n, n))
            fno_pred = fno.predict_tensor(spectral)

            def rel(p, y=y):
                return float(((p - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean())

            consistency = float((spectral_resample(members.flatten(0, 1), (coarse, coarse))
                                 - low.repeat_interleave(c["sr_members"], 0)).abs().max())
            superres[f"{coarse}->{n}"] = {
                "seconds": seconds, **{f"ensemble_{k}": v for k, v in scores.items()},
                "bicubic_rel_l2": rel(bicubic), "spectral_interp_rel_l2": rel(spectral), "fno_rel_l2": rel(fno_pred),
                "fno_mae": float((fno_pred - y).abs().mean()), "member_rel_l2": rel(members[:, 0]),
                "low_mode_consistency_max_abs": consistency,
                "spectrum_members": spectrum_error(members.flatten(0, 1), truth[n],
                                                   bands=[b for b in BANDS if b[1] <= n // 2])}
            print(f"{coarse}->{n}", json.dumps({k: v for k, v in superres[f'{coarse}->{n}'].items()
                                                 if k != "spectrum_members"}), flush=True)
    result["superres"] = superres

    # ------------------------------------------------------------------ cost
    cost = []
    for n in (32, 64, 128, 256):
        for steps in (2, 4):
            x_grid = Grid.box(n, n)
            sample(ema, x_grid, 2, steps=1, generator=torch.Generator().manual_seed(0))  # warm the caches
            clock = time.perf_counter()
            sample(ema, x_grid, 2, steps=steps, generator=torch.Generator().manual_seed(0))
            cost.append({"grid": n, "evaluations": 2 * steps - 1, "seconds_per_sample": (time.perf_counter() - clock) / 2})
    work = np.array([r["grid"] ** 2 * r["evaluations"] for r in cost], dtype=float)
    secs = np.array([r["seconds_per_sample"] for r in cost])
    slope, intercept = np.polyfit(work, secs, 1)
    fitted = slope * work + intercept
    r2 = 1 - ((secs - fitted) ** 2).sum() / ((secs - secs.mean()) ** 2).sum()
    result["cost"] = {"points": cost, "slope_s_per_point_eval": float(slope), "intercept_s": float(intercept),
                      "r2": float(r2)}
    print("cost", json.dumps(result["cost"]), flush=True)
    result["machine"] = {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
                         "cpu": platform.processor() or platform.machine()}
    result["command"] = "nice -n 10 python benchmarks/diffusion_ns.py" + (f" --threads {args.threads}"
                                                                           if args.threads != 1 else "")
    out = ROOT / "benchmarks" / "results" / "cpu"
    if args.smoke:
        print(report(result))
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "diffusion_ns.json", json.dumps(result, indent=2, default=str))
    write_text(out / "diffusion_ns.md", report(result))
    print(report(result))
    del xr


def report(r: dict) -> str:
    c = r["config"]
    lines = [f"Machine: {r['machine']}", "", f"Command: `{r['command']}`", "",
             (f"Training: {r['train_fields']} vorticity snapshots (t = 10..50, {c['n_train']} trajectories of seed 0, "
              f"solved at 64 and truncated to 32 x 32); EDMDenoiser {c['network']}, noise GRF {c['noise']}, "
              f"{c['epochs']} epochs in {r['train_seconds']:.0f} s. Test truth: {c['n_test']} trajectories of seed 1 "
              f"at t = 10, 20, .., 50, solved natively at 64 and 128."), "",
             "**Unconditional** (Heun, 35 evaluations; spectrum error = sample/truth - 1 per octave band of |k|):", "",
             ("| grid | band errors | max over bands resolved at 32 (target <= 0.10) | W1 samples | W1 matched GRF | "
              "W1 truth halves | MMD samples | MMD GRF | corr. err samples | corr. err GRF |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n, u in r["unconditional"].items():
        bands = ", ".join(f"[{b['band'][0]},{b['band'][1]}): {b['error']:+.3f}" for b in u["spectrum"])
        lines.append(f"| {n} | {bands} | {u['max_error_resolved_at_32']:.3f} | {u['w1_samples']:.4f} | "
                     f"{u['w1_matched_grf']:.4f} | {u['w1_split_truth']:.4f} | {u['mmd']:.4f} | {u['mmd_matched_grf']:.4f} | "
                     f"{u['moments']['correlation']:.3f} | {u['moments_matched_grf']['correlation']:.3f} |")
    lines += ["", (f"**Super-resolution** from the truth's modes |k| < m / 2 (its truncation to m x m), "
                   f"{c['sr_cases']} cases x {c['sr_members']} members, scored against the native fine-grid solution:"),
              "", ("| task | ens.-mean rel L2 | bicubic rel L2 | spectral interp. rel L2 | FNO rel L2 | CRPS | FNO MAE | "
                   "spread/skill | low-mode max abs dev. |"), "|---|---|---|---|---|---|---|---|---|"]
    for name, s in r["superres"].items():
        lines.append(f"| {name} | {s['ensemble_rel_l2']:.4f} | {s['bicubic_rel_l2']:.4f} | "
                     f"{s['spectral_interp_rel_l2']:.4f} | {s['fno_rel_l2']:.4f} | {s['ensemble_crps']:.4f} | "
                     f"{s['fno_mae']:.4f} | {s['ensemble_spread_skill']:.3f} | {s['low_mode_consistency_max_abs']:.1e} |")
    cost = r["cost"]
    lines += ["", (f"**Cost**: seconds per sample = {cost['slope_s_per_point_eval']:.3e} x (grid points x evaluations) "
                   f"+ {cost['intercept_s']:.3f}, R^2 = {cost['r2']:.3f}:"), "", "| grid | evaluations | s / sample |",
              "|---|---|---|"]
    lines += [f"| {p['grid']} | {p['evaluations']} | {p['seconds_per_sample']:.3f} |" for p in cost["points"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
