"""Unconditional function-space diffusion with spectrum-matched noise: train at 64 x 64, sample at 64, 128 and 256
zero-shot, scored per wavenumber band against solver truth on each grid (issue 14's unconditional target).

Data (one dataset per run, ``--dataset ns`` or ``darcy``):

* ``ns``: Navier-Stokes vorticity from the ``ns2d`` recipe (nu = 1e-3, Li et al. forcing, initial vorticity
  GRF(2.5, 7)), snapshots at t = 10, 12, ..., 50 (the statistically steady part of the run). Training: trajectories of
  seed 0 solved at 64 x 64. Truth: held-out trajectories of seed 1 solved *natively* at 64, 128 and 256 from the
  same continuous initial vorticity (the recipe is resolution-consistent).
* ``darcy``: Darcy pressure from the ``darcy`` recipe (``-div(a grad p) = 1``, ``p = 0`` on the boundary, threshold
  coefficient): solved at 65, 129 and 257 nodes and the last node row and column dropped, so that the fields lie on
  the periodic 64, 128, 256 grids of the unit box (``p`` vanishes on the boundary, so the periodic extension is
  continuous). Training seed 0 at 65 nodes; truth seed 1 solved natively at each resolution.

Model: the training fields are centred by their mean field (kept as its trigonometric interpolant, so it is a
function on the box and is added back on any grid); the noise is
:class:`~sciml.diffusion.SpectrumMatchedField` of the centred fields (per-mode variances up to ``K`` = 21 for the
2/3-dealiased NS solution, 31 for Darcy, a fitted power-law tail above, band limit 127 so that 256 x 256 is
resolved); an :class:`~sciml.diffusion.EDMDenoiser` (FNO with FiLM noise conditioning and periodic positional
features) trained with the EDM loss and an EMA of the weights; sampling by the ``"trig_heun"`` sampler (Heun in the
preconditioning's coordinates) at every grid with the same weights.

Scores on each grid against that grid's truth: the isotropic energy spectrum per octave band (target: within 10 % on
every band resolved at 64, i.e. [1, 2) .. [16, 32)); W1 between point-value distributions against the honest
baseline, a Gaussian random field with the truth's mean field and per-mode power (and the W1 between two halves of
the truth, the floor); MMD and moment errors for both.

Run: ``nice -n 10 python benchmarks/diffusion_uncond.py --dataset ns --cache /tmp/uncond_cache`` (and ``--dataset
darcy``); ``--quick`` is a minutes-long check of the code paths (no results written). Writes
``benchmarks/results/cpu/diffusion_uncond_{ns,darcy}.{json,md,png}``.
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

from diffusion_ns import matched_grf  # the honest baseline, shared with diffusion_ns.py

from sciml._atomic import write_text

BANDS = [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128)]
RESOLVED_AT_64 = 32  # bands with k_hi <= 32 are the target's
CONFIG = {
    "ns": {"n_train": 48, "n_test": {64: 24, 128: 4, 256: 2}, "times": [float(t) for t in range(10, 51, 2)],
           "resolved": 21},
    "darcy": {"n_train": 1000, "n_test": {64: 200, 128: 100, 256: 40}, "resolved": 31},
    "common": {"epochs": 60, "batch_size": 32, "lr": 2e-3, "ema_decay": 0.995, "band_limit": 127,
               "network": {"n_modes": (24, 24), "hidden_channels": 24, "n_layers": 4, "embedding_channels": 64,
                           "positional": True},
               "spectral_output": True, "sampler": "trig_heun", "steps": 18, "samples": {64: 96, 128: 24, 256: 12}, "grids": (64, 128, 256)},
}


def load_data(name: str, config: dict, cache: Path | None, quick: bool) -> dict:
    """``{"train": (n, 1, 64, 64), 64: ..., 128: ..., 256: ...}`` float32 fields, cached in ``cache``."""
    sizes = "-".join(str(v) for v in (config["n_train"], *config["n_test"].values()))
    path = cache / f"uncond_{name}_{sizes}{'_quick' if quick else ''}.pt" if cache is not None else None
    if path is not None and path.exists():
        return torch.load(path)
    out = {}
    if name == "ns":
        from datasets import ns2d

        def solve(n, res, seed):
            v = torch.from_numpy(np.asarray(ns2d.generate(n, res, seed=seed, times=config["times"], progress=False)
                                            ["vorticity"].values)).float()
            return v.reshape(-1, 1, res, res)
    else:
        from datasets import darcy

        def solve(n, res, seed):
            p = torch.from_numpy(np.asarray(darcy.generate(n, res + 1, seed=seed, progress=False)["pressure"].values))
            return p[:, None, :-1, :-1].float()  # drop the node at x = 1 (= x = 0 of the periodic extension)
    clock = time.perf_counter()
    out["train"] = solve(config["n_train"], 64, 0)
    for res, count in config["n_test"].items():
        out[res] = solve(count, res, 1)
        print(f"{name} truth at {res}: {tuple(out[res].shape)} ({time.perf_counter() - clock:.0f} s)", flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(out, path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("ns", "darcy"), required=True)
    parser.add_argument("--cache", type=Path, default=None, help="directory for the solved fields (reused)")
    parser.add_argument("--quick", action="store_true", help="a minutes-long run of the code paths (no results)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 60)")
    parser.add_argument("--noise-power", type=float, default=1.0,
                        help="beta of SpectrumMatchedField.tempered: the noise's spectrum is the data's to this power "
                             "(1: matched; < 1 flatter, large scales first)")
    parser.add_argument("--max-ratio", type=float, default=100.0,
                        help="with --noise-power < 1: R of SpectrumMatchedField.tempered (default 100)")
    parser.add_argument("--wiener", action="store_true",
                        help="per-mode (Wiener) preconditioning, EDMDenoiser(data_spectrum=) with the data's matched "
                             "spectrum, instead of the pointwise skip and the noise-coloured output")
    parser.add_argument("--p-mean", type=float, default=-1.2,
                        help="EDMLoss p_mean, the mean log EDM level of training (default EDM's -1.2; a tempered noise "
                             "forms the large scales at higher levels)")
    parser.add_argument("--name", default=None, help="results file stem (default diffusion_uncond_DATASET)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name, c = args.dataset, dict(CONFIG["common"])
    if args.epochs is not None:
        c["epochs"] = args.epochs
    c["noise_power"], c["max_ratio"], c["wiener"], c["p_mean"] = args.noise_power, args.max_ratio, args.wiener, args.p_mean
    data_config = dict(CONFIG[name])
    if args.quick:
        c.update(epochs=1, steps=3, samples={64: 6, 128: 4}, grids=(64, 128))
        data_config["n_train"] = 2 if name == "ns" else 40
        data_config["n_test"] = {64: 1 if name == "ns" else 8, 128: 1 if name == "ns" else 4}
        if name == "ns":
            data_config["times"] = [10.0, 12.0]

    from sciml import Grid
    from sciml.diffusion import (
        DiffusionTask,
        EDMDenoiser,
        EDMLoss,
        FieldNetConfig,
        SpectrumMatchedField,
    )
    from sciml.diffusion import sample_tensor as sample
    from sciml.diffusion.metrics import (
        isotropic_spectrum,
        mmd,
        moment_errors,
        spectrum_error,
        wasserstein_1d,
    )
    from sciml.spectral import spectral_resample
    from sciml.train import TrainConfig, fit, seed_everything

    result: dict = {"dataset": name, "config": {**c, **{k: v for k, v in data_config.items() if k != "times"}}}
    clock = time.perf_counter()
    data = load_data(name, data_config, args.cache, args.quick)
    result["data_seconds"] = time.perf_counter() - clock
    fields = data["train"].double()
    domain = Grid.box(64, 64)
    mean = fields.mean(0, keepdim=True)  # (1, 1, 64, 64): the training mean field
    centred = (fields - mean).float()
    noise = SpectrumMatchedField.from_fields(centred, domain, band_limit=c["band_limit"],
                                             resolved=data_config["resolved"])
    data_spectrum = noise
    if args.noise_power != 1.0:
        noise = noise.tempered(args.noise_power, max_ratio=args.max_ratio)
    sigma_data = float(centred.double().std())
    result["noise"] = {"repr": repr(noise), "tail_exponent": noise.tail_exponent,
                       "pointwise_variance": noise.pointwise_variance(domain), "sigma_data": sigma_data}
    print(f"data {result['data_seconds']:.0f} s; train {tuple(fields.shape)}; {noise!r}; sigma_data {sigma_data:.4g}",
          flush=True)

    seed_everything(0)
    model = EDMDenoiser(domain=domain, noise=noise, sigma_data=sigma_data, network=FieldNetConfig(**c["network"]),
                        **({"data_spectrum": data_spectrum} if c["wiener"] else {"spectral_output": c["spectral_output"]}))
    task = DiffusionTask(model, objective=EDMLoss(p_mean=c["p_mean"]), ema_decay=c["ema_decay"])
    clock = time.perf_counter()
    history = fit(task, (centred,), config=TrainConfig(epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"],
                                                       warmup_fraction=0.05, device="cpu", progress=False, seed=0))
    result["train_seconds"] = time.perf_counter() - clock
    result["train_fields"] = int(fields.shape[0])
    result["steps"] = len(history) * -(-int(fields.shape[0]) // c["batch_size"])
    result["loss"] = [float(h["train_loss"]) for h in history]
    print(f"trained {len(history)} epochs in {result['train_seconds']:.0f} s, loss {result['loss'][0]:.3f} -> "
          f"{result['loss'][-1]:.3f}", flush=True)
    ema = task.ema.module.eval()
    if args.cache is not None and not args.quick:  # the trained weights, for looking at the samples again
        torch.save(ema.state_dict(), args.cache / f"{args.name or 'uncond_' + name}_ema.pt")

    scores, spectra, examples = {}, {}, {}
    for n in c["grids"]:
        truth = data[n]
        clock = time.perf_counter()
        x = sample(ema, Grid.box(n, n), c["samples"][n], sampler=c["sampler"], steps=c["steps"],
                   generator=torch.Generator().manual_seed(n))
        seconds = time.perf_counter() - clock
        x = (x.double() + spectral_resample(mean, (n, n))).float()
        baseline = matched_grf(truth, c["samples"][n], torch.Generator().manual_seed(100 + n))
        bands = [b for b in BANDS if b[1] <= n // 2]
        spec = spectrum_error(x, truth, bands=bands)
        # the floor: the training fields themselves (band-limited, resampled exactly) against this grid's truth
        floor = spectrum_error(spectral_resample(fields, (n, n)).float(), truth,
                               bands=[b for b in bands if b[1] <= RESOLVED_AT_64])
        half = truth.shape[0] // 2
        scores[n] = {
            "seconds": seconds, "samples": int(x.shape[0]), "truth_fields": int(truth.shape[0]), "spectrum": spec,
            "spectrum_matched_grf": spectrum_error(baseline, truth, bands=bands), "spectrum_training_data": floor,
            "max_band_error_resolved_at_64": max(abs(b["error"]) for b in spec if b["band"][1] <= RESOLVED_AT_64),
            "w1_samples": wasserstein_1d(x, truth), "w1_matched_grf": wasserstein_1d(baseline, truth),
            "w1_truth_halves": wasserstein_1d(truth[:half], truth[half:]),
            "mmd": mmd(x, truth), "mmd_matched_grf": mmd(baseline, truth),
            "moments": moment_errors(x, truth), "moments_matched_grf": moment_errors(baseline, truth),
            "std_samples": float(x.std()), "std_truth": float(truth.std())}
        spectra[n] = {"samples": isotropic_spectrum(x)[0], "truth": isotropic_spectrum(truth)[0],
                      "grf": isotropic_spectrum(baseline)[0]}
        examples[n] = x[:2]
        print(n, json.dumps({k: v for k, v in scores[n].items() if not k.startswith("spectrum")}), flush=True)
        print("   bands", [(b["band"], round(b["error"], 4)) for b in spec], flush=True)
    result["scores"] = scores
    result["machine"] = {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
                         "cpu": platform.processor() or platform.machine()}
    result["command"] = "nice -n 10 python " + " ".join(["benchmarks/diffusion_uncond.py", *sys.argv[1:]])
    text = report(result)
    print(text)
    if args.quick:
        return
    out = ROOT / "benchmarks" / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or f"diffusion_uncond_{name}"
    write_text(out / f"{stem}.json", json.dumps(result, indent=2, default=str))
    write_text(out / f"{stem}.md", text)
    figure(out / f"{stem}.png", name, data, examples, spectra, scores)


def figure(path: Path, name: str, data: dict, examples: dict, spectra: dict, scores: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = sorted(examples)
    label = "vorticity (1/s)" if name == "ns" else "pressure (nondim.)"
    fig, axes = plt.subplots(2, len(grids) + 1, figsize=(4 * (len(grids) + 1), 8), constrained_layout=True)
    fields = [data[64][0, 0]] + [examples[n][0, 0] for n in grids]
    titles = ["truth (solver, 64 x 64)"] + [f"sample at {n} x {n}" + (" (zero-shot)" if n > 64 else "")
                                            for n in grids]
    vmin, vmax = float(min(f.min() for f in fields)), float(max(f.max() for f in fields))
    for ax, f, title in zip(axes[0], fields, titles):
        image = ax.imshow(f.numpy(), origin="lower", extent=(0, 1, 0, 1), cmap="RdBu_r" if name == "ns" else "viridis",
                          vmin=vmin, vmax=vmax)
        ax.set_title(title)
        ax.set_xlabel("x (box lengths)")
        ax.set_ylabel("y (box lengths)")
    fig.colorbar(image, ax=axes[0].tolist(), label=label, shrink=0.8)
    for ax, n in zip(axes[1], grids):
        k = np.arange(1, spectra[n]["truth"].numel())
        for key, style in (("truth", "k-"), ("samples", "C0--"), ("grf", "C1:")):
            ax.loglog(k, spectra[n][key][1:].numpy(), style,
                      label={"truth": "solver truth", "samples": "diffusion samples", "grf": "matched GRF"}[key])
        ax.axvline(32, color="grey", lw=0.5)
        ax.set_title(f"isotropic spectrum on {n} x {n}")
        ax.set_xlabel("|k| (cycles per box length)")
        ax.set_ylabel(f"E(k) ({'1/s^2' if name == 'ns' else 'pressure^2'})")
        ax.legend()
    ax = axes[1][-1]
    for n in grids:
        bands = scores[n]["spectrum"]
        centres = [np.sqrt(b["band"][0] * b["band"][1]) for b in bands]
        ax.semilogx(centres, [100 * b["error"] for b in bands], "o-", label=f"{n} x {n}")
    ax.axhspan(-10, 10, color="green", alpha=0.1, label="target +-10 %")
    ax.set_xlabel("band centre |k| (cycles per box length)")
    ax.set_ylabel("band energy error, samples / truth - 1 (%)")
    ax.set_title("spectrum error per octave band")
    ax.legend()
    fig.suptitle(f"Unconditional diffusion ({name}): trained at 64 x 64, sampled at {', '.join(map(str, grids))}")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _tempering(c: dict) -> str:
    power = c.get("noise_power", 1.0)
    return "" if power == 1.0 else f" (SpectrumMatchedField.tempered: power {power:g}, max ratio {c['max_ratio']:g})"


def report(r: dict) -> str:
    c = r["config"]
    lines = [f"# diffusion_uncond: {r['dataset']}", "", f"Command: `{r['command']}`", "", f"Machine: {r['machine']}",
             "", (f"Training: {r['train_fields']} fields at 64 x 64, {r['steps']} steps ({c['epochs']} epochs, batch "
                  f"{c['batch_size']}) in {r['train_seconds']:.0f} s (wall, shared machine); network {c['network']}; "
                  f"noise {r['noise']['repr']}{_tempering(c)}; sampler {c['sampler']} with {c['steps']} steps "
                  f"({2 * c['steps'] - 1} evaluations); EDM loss p_mean {c.get('p_mean', -1.2):g}; loss "
                  f"{r['loss'][0]:.3f} -> {r['loss'][-1]:.3f}; "
                  + ("per-mode (Wiener) preconditioning, EDMDenoiser(data_spectrum=) with the data's spectrum."
                     if c.get("wiener") else f"spectrally coloured network output: {c.get('spectral_output', False)}.")),
             "",
             "Spectrum error = band energy of samples / truth - 1 (target: |error| <= 0.10 on the bands up to [16, 32)):",
             "", "| grid | samples / truth fields | " + " | ".join(f"[{lo},{hi})" for lo, hi in BANDS) +
             " | max resolved at 64 | W1 samples | W1 matched GRF | W1 truth halves | MMD samples | MMD GRF | "
             "corr. err. samples / GRF | s sampling |",
             "|---|---|" + "---|" * len(BANDS) + "---|---|---|---|---|---|---|---|"]
    for n, s in r["scores"].items():
        errors = {tuple(b["band"]): b["error"] for b in s["spectrum"]}
        cells = " | ".join(f"{errors[b]:+.3f}" if b in errors else "" for b in BANDS)
        lines.append(f"| {n} | {s['samples']} / {s['truth_fields']} | {cells} | {s['max_band_error_resolved_at_64']:.3f} "
                     f"| {s['w1_samples']:.4g} | {s['w1_matched_grf']:.4g} | {s['w1_truth_halves']:.4g} | "
                     f"{s['mmd']:.4f} | {s['mmd_matched_grf']:.4f} | {s['moments']['correlation']:.3f} / "
                     f"{s['moments_matched_grf']['correlation']:.3f} | {s['seconds']:.0f} |")
    lines += ["", ("The floor: the 64 x 64 training fields themselves (resampled exactly to each grid) against that "
                   "grid's truth, band energy / truth - 1. A model trained on them cannot do better than this; where it "
                   "is large the solver's 64-point fields differ from its finer ones (discretisation), or the truth "
                   "sample is small."), "", "| grid | " + " | ".join(f"[{lo},{hi})" for lo, hi in BANDS if hi <= RESOLVED_AT_64) + " |",
              "|---|" + "---|" * sum(hi <= RESOLVED_AT_64 for _, hi in BANDS)]
    for n, s in r["scores"].items():
        lines.append(f"| {n} | " + " | ".join(f"{b['error']:+.3f}" for b in s["spectrum_training_data"]) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
