"""Super-resolution 8 x 8 -> 32 x 32 (4x; and 8 -> 64 zero-shot) of Navier-Stokes vorticity by a denoiser trained
with the coarse field as an input channel, against periodic bicubic interpolation, spectral (zero-padding) interpolation and a deterministic
FNO trained on the same pairs; scored against the native fine-grid solver truth.

Data: the ``ns2d`` recipe (nu = 1e-3, Li et al. 2021 forcing ``0.1 (sin + cos) 2 pi (x + y)``, initial vorticity
GRF(2.5, 7)), snapshots at ``t = 10, 12, ..., 50``, **solved at 64 x 64**; training on the 32 x 32 truncation
(trajectories of seed 0), test on held-out trajectories of seed 1, scored on the 32 x 32 truncation and the native
64 x 64 solution (16 -> 64 is not measured: the spectral interpolant of 16 x 16 modes already errs by 0.25 %). The
coarse observation of a fine field is its Fourier modes ``|k_i| < 4`` (its spectral truncation to 8 x 8, the :class:`~sciml.diffusion.conditional.LowModes`
observation); every method sees exactly that and is scored against the fine solution it came from (never against an
upsampled coarse field).

* **Diffusion**: :class:`~sciml.diffusion.CoarseConditionedDenoiser` (the interpolated coarse field an input channel,
  the residual denoised), :class:`~sciml.diffusion.DiffusionTask` with the EDM loss and an EMA, through
  :func:`sciml.train.fit`; ensembles by Heun (``heun_steps`` steps, ``2 N - 1`` network evaluations), by the channel
  alone and with the data-consistency guidance on top (``guidance=True``: the low modes then hold exactly).
* **Residual diffusion** (CorrDiff, Mardani et al. 2023): the same network as a
  :class:`~sciml.diffusion.CoarseConditionedDenoiser` with the FNO below as ``mean_model``, so it learns the
  distribution of ``fine - FNO(coarse)`` (noise GRF ``residual_noise``, flatter for the small-scale residual);
  members = FNO mean + residual samples, by the channel alone and with guidance.
* **Baselines**: periodic bicubic interpolation of the 16 x 16 node values; spectral interpolation (zero padding, the
  trigonometric interpolant: the exact conditional mean for Gaussian data with independent modes); an FNO
  (:func:`sciml.surrogate.fit_surrogate`, relative-L2 loss) from the spectrally interpolated coarse field to the fine
  one, trained on the same pairs for the same number of epochs.
* **Scores** (:func:`sciml.diffusion.metrics.ensemble_scores`, :func:`~sciml.diffusion.metrics.spectrum_error`):
  relative L2 of the ensemble mean and of single members, the fair CRPS (against the FNO's MAE), the spread/skill
  ratio, the isotropic spectrum error per octave band of the ensemble mean, of the members and of each baseline, and
  the low-mode consistency; the cost in CPU and wall seconds per sample of each method, and of the conditioned
  sampler at 32, 64 and 128 (seconds per sample against grid points x evaluations, fitted slope).

Run: ``nice -n 10 python benchmarks/diffusion_superres.py`` (one thread; ``--smoke`` runs the code paths in seconds).
Writes ``benchmarks/results/cpu/diffusion_superres.{json,md}``.
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
CONFIG = {"n_train": 12, "n_test": 4, "fine": 32, "coarse": 8, "solve_at": 64, "epochs": 30, "batch_size": 16,
          "lr": 2e-3, "noise": {"alpha": 2.0, "tau": 5.0, "band_limit": 15},
          "network": {"n_modes": (24, 24), "hidden_channels": 24, "n_layers": 4, "embedding_channels": 64},
          "fno": {"n_modes": (24, 24), "hidden_channels": 24, "n_layers": 4}, "fno_epochs": 30,
          "residual_noise": {"alpha": 1.5, "tau": 5.0, "band_limit": 15}, "heun_steps": 10, "sr_cases": 8, "sr_members": 8, "ema_decay": 0.99, "scaling_grids": (32, 64, 128)}
BANDS = [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32)]


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


def rel_l2(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over cases of ``|p - y| / |y|``."""
    p, y = prediction.double().flatten(1), truth.double().flatten(1)
    return float(((p - y).norm(dim=1) / y.norm(dim=1)).mean())


class Clock:
    """CPU and wall seconds of a block."""

    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run of the code paths (no results)")
    parser.add_argument("--spectral-output", action="store_true",
                        help="colour both denoisers' network output by the noise's square-root covariance "
                             "(spectral_output=True; default: off, the committed table)")
    parser.add_argument("--name", default="diffusion_superres", help="results file stem (default: %(default)s)")
    args = parser.parse_args()
    if not args.name or Path(args.name).name != args.name:
        parser.error(f"--name must be a plain file stem, got {args.name!r}")
    torch.set_num_threads(args.threads)
    c = CONFIG
    if args.smoke:
        c.update(n_train=2, n_test=2, epochs=1, fno_epochs=1, heun_steps=2, sr_cases=2, sr_members=2)
        TIMES[:] = TIMES[:3]
        TEST_TIMES[:] = TEST_TIMES[:1]

    from datasets import ns2d
    from sciml import Grid
    from sciml.diffusion import (
        CoarseConditionedDenoiser,
        DiffusionTask,
        EDMLoss,
        FieldNetConfig,
        GaussianRandomField,
        conditional_sample,
        evaluations,
        sample_tensor,
    )
    from sciml.diffusion.conditional import LowModes
    from sciml.diffusion.metrics import ensemble_scores, spectrum_error
    from sciml.spectral import spectral_resample
    from sciml.surrogate import fit_surrogate
    from sciml.train import TrainConfig, fit, seed_everything

    fine, coarse = c["fine"], c["coarse"]
    result: dict = {"config": c}
    with Clock() as clock:
        train_ds = ns2d.generate(c["n_train"], fine, seed=0, times=TIMES, solve_resolution=c["solve_at"],
                                 progress=False)
        test_ds = ns2d.generate(c["n_test"], c["solve_at"], seed=1, times=TEST_TIMES, progress=False)
    result["data_seconds"] = {"cpu": clock.cpu, "wall": clock.wall}
    print(f"data {clock.cpu:.0f} CPU s", flush=True)
    fields = frames(train_ds)
    native = frames(test_ds)
    native = native[:: max(1, native.shape[0] // c["sr_cases"])][: c["sr_cases"]]
    truths = {fine: spectral_resample(native, (fine, fine)), c["solve_at"]: native}
    n_cases = native.shape[0]
    low = spectral_resample(native, (coarse, coarse))  # the coarse observation (its modes |k| < coarse / 2)

    # ------------------------------------------------------------------ FNO on the same pairs
    coarse_train = spectral_resample(spectral_resample(torch.from_numpy(np.asarray(train_ds["vorticity"].values)),
                                                       (coarse, coarse)), (fine, fine))
    pairs = train_ds.assign(coarse=(train_ds["vorticity"].dims, coarse_train.numpy(), train_ds["vorticity"].attrs))
    seed_everything(0)
    with Clock() as clock:
        fno, _ = fit_surrogate(pairs, inputs=["coarse"], outputs=["vorticity"], model_options=dict(c["fno"]),
                               config=TrainConfig(epochs=c["fno_epochs"], batch_size=c["batch_size"], lr=3e-3, seed=0,
                                                  device="cpu", progress=False))
    result["fno"] = {"train_seconds": {"cpu": clock.cpu, "wall": clock.wall}}
    print(f"FNO trained in {clock.cpu:.0f} CPU s", flush=True)

    # ------------------------------------------------------------------ conditioned denoiser
    domain = Grid.box(fine, fine)  # the training grid; the weights act on any grid of the box
    scales = CoarseConditionedDenoiser.scales(fields, coarse)
    seed_everything(0)
    model = CoarseConditionedDenoiser(domain=domain, noise=GaussianRandomField(**c["noise"]), coarse=coarse, **scales,
                                      network=FieldNetConfig(**c["network"]), spectral_output=args.spectral_output)
    task = DiffusionTask(model, objective=EDMLoss(), ema_decay=c["ema_decay"])
    config = TrainConfig(epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], warmup_fraction=0.05,
                         device="cpu", progress=False, seed=0)
    with Clock() as clock:
        history = fit(task, (fields,), config=config)
    result["diffusion"] = {"train_seconds": {"cpu": clock.cpu, "wall": clock.wall}, "train_fields": int(fields.shape[0]),
                           "steps": len(history) * -(-int(fields.shape[0]) // c["batch_size"]),
                           "final_loss": float(history[-1]["train_loss"]), **scales,
                           "parameters": sum(p.numel() for p in model.parameters())}
    print(f"diffusion trained in {clock.cpu:.0f} CPU s, loss {history[-1]['train_loss']:.3f}", flush=True)
    ema = task.ema.module.eval()

    # ------------------------------------------------------------------ regression + residual diffusion (CorrDiff)
    residual_scales = CoarseConditionedDenoiser.scales(fields, coarse, mean_model=fno)
    seed_everything(0)
    residual_model = CoarseConditionedDenoiser(domain=domain, noise=GaussianRandomField(**c["residual_noise"]),
                                               coarse=coarse, **residual_scales, network=FieldNetConfig(**c["network"]),
                                               mean_model=fno, spectral_output=args.spectral_output)
    residual_task = DiffusionTask(residual_model, objective=EDMLoss(), ema_decay=c["ema_decay"])
    with Clock() as clock:
        residual_history = fit(residual_task, (fields,), config=config)
    result["residual"] = {"train_seconds": {"cpu": clock.cpu, "wall": clock.wall},
                          "final_loss": float(residual_history[-1]["train_loss"]), **residual_scales,
                          "trainable_parameters": sum(p.numel() for p in residual_model.parameters()
                                                      if p.requires_grad)}
    print(f"residual diffusion trained in {clock.cpu:.0f} CPU s, loss {residual_history[-1]['train_loss']:.3f}",
          flush=True)
    residual_ema = residual_task.ema.module.eval()

    # ------------------------------------------------------------------ super-resolve the test cases
    result["targets"], result["cost_cpu_seconds_per_sample"] = {}, {}
    for n, truth in truths.items():
        print(f"super-resolving {coarse} -> {n}", flush=True)
        grid = Grid.box(n, n)
        bands = [b for b in BANDS if b[1] <= n // 2]
        methods, cost = {}, {}
        with Clock() as clock:
            bicubic = periodic_bicubic(low, n // coarse)
        cost["bicubic"] = clock.cpu / n_cases
        with Clock() as clock:
            spectral = spectral_resample(low, (n, n))
        cost["spectral"] = clock.cpu / n_cases
        with Clock() as clock:
            fno_pred = fno.predict_tensor(spectral)
        cost["fno"] = clock.cpu / n_cases
        for name, prediction in (("bicubic", bicubic), ("spectral", spectral), ("fno", fno_pred)):
            methods[name] = {"rel_l2": rel_l2(prediction, truth), "mae": float((prediction - truth).abs().mean()),
                             "spectrum": spectrum_error(prediction, truth, bands=bands)}
        for name, sampler_model, guidance in (("diffusion", ema, False), ("diffusion+guidance", ema, True),
                                              ("residual", residual_ema, False),
                                              ("residual+guidance", residual_ema, True)):
            with Clock() as clock:
                members = conditional_sample(sampler_model, grid, LowModes(low), c["sr_members"], guidance=guidance,
                                             steps=c["heun_steps"], generator=torch.Generator().manual_seed(7))
            cost[name] = clock.cpu / (n_cases * c["sr_members"])
            scores = ensemble_scores(members, truth)
            repeated = low.repeat_interleave(c["sr_members"], 0)
            consistency = spectral_resample(members.flatten(0, 1), (coarse, coarse)) - repeated
            methods[name] = {
                **{f"ensemble_{k}": v for k, v in scores.items()},
                "rel_l2": scores["rel_l2"], "mae": scores["mae_of_mean"],
                "member_rel_l2": float(np.mean([rel_l2(members[:, m], truth) for m in range(c["sr_members"])])),
                "low_mode_error_rel": float(consistency.norm() / repeated.norm()),
                "spectrum": spectrum_error(members.mean(1), truth, bands=bands),
                "spectrum_members": spectrum_error(members.flatten(0, 1),
                                                   truth.repeat_interleave(c["sr_members"], 0), bands=bands)}
            print(f"{coarse}->{n}", name, json.dumps({k: v for k, v in methods[name].items()
                                                       if not k.startswith("spectrum")}), flush=True)
        print(f"{coarse}->{n}", {k: round(v["rel_l2"], 4) for k, v in methods.items()}, flush=True)
        result["targets"][f"{coarse}->{n}"] = methods
        result["cost_cpu_seconds_per_sample"][f"{coarse}->{n}"] = cost
    result["evaluations"] = evaluations("heun", c["heun_steps"])

    # ------------------------------------------------------------------ cost of the conditioned sampler per grid
    scaling = []
    for n in (c["scaling_grids"] if not args.smoke else (32,)):
        for steps in (2, 4):
            bound = ema.bind(ema.lift(low[:2], (n, n)))  # the channel-conditioned model, condition fixed
            sample_tensor(bound, Grid.box(n, n), 2, steps=1, generator=torch.Generator().manual_seed(0))  # warm
            with Clock() as clock:
                sample_tensor(bound, Grid.box(n, n), 2, steps=steps, generator=torch.Generator().manual_seed(0))
            scaling.append({"grid": n, "evaluations": 2 * steps - 1, "cpu_seconds_per_sample": clock.cpu / 2})
    work = np.array([r["grid"] ** 2 * r["evaluations"] for r in scaling], dtype=float)
    secs = np.array([r["cpu_seconds_per_sample"] for r in scaling])
    if len(scaling) > 2:
        slope, intercept = np.polyfit(work, secs, 1)
        fitted = slope * work + intercept
        r2 = 1 - ((secs - fitted) ** 2).sum() / ((secs - secs.mean()) ** 2).sum()
        result["scaling"] = {"points": scaling, "slope_cpu_s_per_point_evaluation": float(slope),
                             "intercept_s": float(intercept), "r2": float(r2)}
    print("scaling", json.dumps(scaling), flush=True)
    result["machine"] = {"device": "cpu", "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                         "cpu": platform.processor() or platform.machine()}
    result["command"] = "nice -n 10 python benchmarks/diffusion_superres.py" + (
        f" --threads {args.threads}" if args.threads != 1 else "") + (
        " --spectral-output" if args.spectral_output else "") + (
        f" --name {args.name}" if args.name != "diffusion_superres" else "")
    result["spectral_output"] = args.spectral_output
    text = report(result)
    if args.smoke:
        print(text)
        return
    out = ROOT / "benchmarks" / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{args.name}.json", json.dumps(result, indent=2, default=str))
    write_text(out / f"{args.name}.md", text)
    print(text)


def report(r: dict) -> str:
    c, d = r["config"], r["diffusion"]
    lines = [(f"# Super-resolution {c['coarse']} x {c['coarse']} -> {c['fine']} x {c['fine']} (4x; and -> "
             f"{c['solve_at']} x {c['solve_at']} zero-shot) of Navier-Stokes vorticity"), "",
             f"Machine: {r['machine']}", "", f"Command: `{r['command']}`", "",
             (f"Training: {d['train_fields']} vorticity snapshots (t = 10..50, {c['n_train']} trajectories of seed 0, "
              f"solved at {c['solve_at']} x {c['solve_at']}, spectrally truncated to the training grid "
              f"{c['fine']} x {c['fine']}); CoarseConditionedDenoiser {c['network']} ({d['parameters']:,} parameters), "
              f"noise GRF {c['noise']}, EDM loss, EMA {c['ema_decay']}, {c['epochs']} epochs ({d['steps']} steps) in "
              f"{d['train_seconds']['cpu']:.0f} CPU s; FNO {c['fno']} on the same (coarse, fine) pairs "
              f"(`fit_surrogate`, rel-L2 loss), {c['fno_epochs']} epochs in {r['fno']['train_seconds']['cpu']:.0f} "
              f"CPU s; residual diffusion (CorrDiff: the FNO the mean, the same denoiser network on the residual "
              f"x - FNO(c), residual std {r['residual']['sigma_data']:.4f} vs {d['sigma_data']:.4f} about the "
              f"interpolant, noise GRF {c['residual_noise']}) trained the same way in "
              f"{r['residual']['train_seconds']['cpu']:.0f} CPU s. Test: {c['sr_cases']} snapshots of {c['n_test']} held-out trajectories (seed 1) solved at "
              f"{c['solve_at']} x {c['solve_at']}; the condition is their Fourier modes |k| < {c['coarse'] // 2} (the "
              f"{c['coarse']} x {c['coarse']} truncation), {c['sr_members']} members each, Heun {c['heun_steps']} "
              f"steps ({r['evaluations']} evaluations). Truth: the solution truncated to {c['fine']} (its modes |k| < "
              f"{c['fine'] // 2}) and the native {c['solve_at']} x {c['solve_at']} solution; never an upsampled "
              f"coarse field."), ""]
    for task, m in r["targets"].items():
        cost = r["cost_cpu_seconds_per_sample"][task]
        lines += [f"## {task}", "",
                  ("| method | ens.-mean / prediction rel L2 | member rel L2 | CRPS | MAE of mean | spread/skill | "
                   "low-mode rel. error | CPU s per sample |"), "|---|---|---|---|---|---|---|---|"]
        for name, v in m.items():
            if "ensemble_crps" in v:
                lines.append(f"| {name} | {v['rel_l2']:.4f} | {v['member_rel_l2']:.4f} | {v['ensemble_crps']:.4f} | "
                             f"{v['mae']:.4f} | {v['ensemble_spread_skill']:.3f} | {v['low_mode_error_rel']:.2e} | "
                             f"{cost[name]:.3f} |")
            else:
                lines.append(f"| {name} | {v['rel_l2']:.4f} | | | {v['mae']:.4f} | | | {cost[name]:.2e} |")
        bands = [b["band"] for b in m["bicubic"]["spectrum"]]
        lines += ["", ("Spectrum error per octave band of |k| (energy ratio to the truth's minus one; predictions and "
                      "ensemble means, and the members):"), "",
                  "| method | " + " | ".join(f"[{a},{b})" for a, b in bands) + " |", "|---|" + "---|" * len(bands)]
        for name, v in m.items():
            lines.append(f"| {name} | " + " | ".join(f"{b['error']:+.3f}" for b in v["spectrum"]) + " |")
            if "spectrum_members" in v:
                lines.append(f"| {name} members | "
                             + " | ".join(f"{b['error']:+.3f}" for b in v["spectrum_members"]) + " |")
        fno = m["fno"]
        lines += ["", "Targets of issue 14 (stated there for 32 -> 128):", ""]
        for name in ("diffusion", "diffusion+guidance", "residual", "residual+guidance"):
            v = m[name]
            lines.append(
                f"- {name}: ens.-mean rel L2 {v['rel_l2']:.4f} vs bicubic {m['bicubic']['rel_l2']:.4f} "
                f"({'met' if v['rel_l2'] < m['bicubic']['rel_l2'] else 'not met'}) and FNO {fno['rel_l2']:.4f} "
                f"({'met' if v['rel_l2'] < fno['rel_l2'] else 'not met'}); CRPS {v['ensemble_crps']:.4f} vs FNO MAE "
                f"{fno['mae']:.4f} ({'met' if v['ensemble_crps'] < fno['mae'] else 'not met'}); spread/skill "
                f"{v['ensemble_spread_skill']:.3f} ({'met' if 0.7 <= v['ensemble_spread_skill'] <= 1.3 else 'not met'}"
                f", target [0.7, 1.3]).")
        lines.append("")
    if "scaling" in r:
        s = r["scaling"]
        lines += ["## Cost of the conditioned Heun sampler", "", "CPU seconds per sample (2 samples per call):", "",
                  "| grid | evaluations | CPU s per sample |", "|---|---|---|"]
        lines += [f"| {p['grid']} | {p['evaluations']} | {p['cpu_seconds_per_sample']:.4f} |" for p in s["points"]]
        lines += ["", (f"Fitted: {s['slope_cpu_s_per_point_evaluation']:.3e} CPU s per (grid point x evaluation), "
                      f"intercept {s['intercept_s']:.3f} s, R^2 {s['r2']:.3f}.")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
