"""Forecasting shallow water on the sphere: SFNO and AFNO against solver truth, long-rollout stability, ensembles.

Data: the ``swe-sphere`` recipe at 32x64 (equiangular) with random balanced initial flows, hourly states.
Each model is trained with :func:`sciml.forecast.fit_forecaster` (one-step pretraining, then two-step
rollout fine-tuning, FourCastNet's recipe) for a fixed number of epochs, then scored on held-out initial
conditions:

* one-step and 24-step relative L2 (area-weighted) per variable, against persistence;
* stability: a 1,000-step rollout streamed to disk, its energy spectrum (spherical harmonics) at the
  last step against the solver's at the same time (a statistic of the flow, not a pointwise match), and
  for each model the first step at which it leaves a factor 2 of the truth's spectrum at any degree;
* ensembles: 8 members with smooth Gaussian perturbations and with bred vectors (3 cycles of 12 h), each
  sized on the validation trajectories (the scale that centres the range of spread-skill ratios over
  variables and leads 24-120 h on 1 in the log), the perturbation with the narrower validation range
  chosen, then scored on the test trajectories: spread-skill ratio and fair CRPS at 24..120 h against the
  MAE of the unperturbed forecast;
* speed: ``forecast()`` throughput against the bare model applied in a loop to the same states.

Usage: python benchmarks/forecast_swe.py [--quick] [--epochs N] [--n-train N] [--cache DIR]
Writes benchmarks/results/cpu/forecast_swe.{json,md}. Same seed, same numbers (fixed epochs, no time budget).

``--stability-only`` trains only the variants named in ``--variants`` (``model:spectral_weight[:k1-k2-..]``,
e.g. ``sfno:0 sfno:0.1 afno:0.1:2-4``: the model, the weight of the spectral term of the rollout loss and
the fine-tuning curriculum) and scores each on the 1- and 24-step errors and on the 1,000-step rollout,
with the per-degree log2 spectrum ratio at the checks; it writes ``forecast_swe_stability.{json,md}``.
``--cache DIR`` keeps the solver's trajectories as NetCDF files there (generated once, then read).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sciml._atomic import write_text

VARIABLES = ["height", "eastward_velocity", "northward_velocity"]
LEADS = (24, 48, 72, 96, 120)
CALIBRATION_ROUNDS = 5  # rescalings of each perturbation's size on the validation trajectories


def rel_l2_by_lead(forecast, truth, grid) -> dict[str, list[float]]:
    """Area-weighted relative L2 per variable and lead: forecast (sample, lead, lat, lon) vs truth (sample, lead, ...)."""
    from sciml.metrics import rel_l2

    out = {}
    for v in VARIABLES:
        f, t = (torch.from_numpy(np.array(a[v].values, dtype=np.float64)) for a in (forecast, truth))
        out[v] = [float(rel_l2(f[:, j:j + 1], t[:, j:j + 1], grid=grid).mean()) for j in range(f.shape[1])]
    return out


def spectrum_departure(forecast_state, truth_state) -> float:
    """max over degrees >= 1 of |log2(P_forecast / P_truth)|, summed over the variables' spectra ratios."""
    from sciml.forecast import energy_spectrum

    worst = 0.0
    for v in VARIABLES:
        p_f = energy_spectrum(forecast_state[v]).values
        p_t = energy_spectrum(truth_state[v]).values
        ratio = p_f[..., 1:] / p_t[..., 1:]
        worst = max(worst, float(np.nanmax(np.abs(np.log2(ratio)))) if np.isfinite(ratio).all() else math.inf)
    return worst


def log2_ratio_by_degree(forecast_state, truth_state) -> dict[str, list[float]]:
    """log2(P_forecast(l) / P_truth(l)) per variable for degrees l >= 1 (one state each, ``(lat, lon)``)."""
    from sciml.forecast import energy_spectrum

    out = {}
    for v in VARIABLES:
        p_f = np.asarray(energy_spectrum(forecast_state[v]).values, dtype=np.float64).reshape(-1)
        p_t = np.asarray(energy_spectrum(truth_state[v]).values, dtype=np.float64).reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[v] = [float(x) for x in np.log2(p_f[1:] / p_t[1:])]
    return out


def cached(cache: Path | None, key: str, make):
    """``make()`` (an xarray Dataset), kept as ``cache/key.nc`` when ``cache`` is given and read back from there."""
    import xarray as xr

    if cache is None:
        return make()
    path = cache / f"{key}.nc"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        ds = make()
        tmp = path.with_suffix(".tmp.nc")
        ds.to_netcdf(tmp)
        tmp.replace(path)
    with xr.open_dataset(path) as ds:
        return ds.load()


def long_rollout_scores(surrogate, long_truth, checks, long_steps, *, per_degree_at=()) -> dict:
    """The stability rollout: finite, departure at the end, first check outside 2x, and per-degree tables."""
    from sciml.forecast import forecast

    with tempfile.TemporaryDirectory() as tmp:
        long = forecast(surrogate, long_truth.isel(time=0), steps=long_steps, out=Path(tmp) / "long.nc", progress=False)
        last = long.isel(lead_time=-1).load()
        finite = all(bool(np.isfinite(last[v].values).all()) for v in VARIABLES)
        departure = spectrum_departure(last, long_truth.isel(time=-1)) if finite else math.inf
        first_bad, by_check, tables = None, {}, {}
        for k, lead in enumerate(checks, start=1):
            state = long.isel(lead_time=lead - 1).load()
            ok = all(np.isfinite(state[v].values).all() for v in VARIABLES)
            d = spectrum_departure(state, long_truth.isel(time=k)) if ok else math.inf
            by_check[str(lead)] = d
            if lead in per_degree_at and ok:
                tables[str(lead)] = log2_ratio_by_degree(state, long_truth.isel(time=k))
            if first_bad is None and d > 1.0:
                first_bad = lead
    return {"steps": long_steps, "finite": finite, "max_abs_log2_spectrum_ratio_at_end": departure,
            "within_factor_2_at_end": departure <= 1.0, "first_step_outside_factor_2": first_bad,
            "departure_by_check": by_check, "log2_ratio_by_degree": tables}


def stability_only(args) -> None:
    """Train the ``--variants`` and score their errors and their 1,000-step spectra (see the module docstring)."""
    from sciml import Grid
    from sciml.datasets import generate
    from sciml.forecast import fit_forecaster, forecast
    from sciml.train import TrainConfig

    torch.set_num_threads(args.threads)
    epochs = args.epochs or 10
    n_train = args.n_train or 6
    long_steps = args.long_steps or 1000
    n_test = 4
    cache = Path(args.cache) if args.cache else None
    common = dict(seed=0, initial_condition="random", progress=False)
    started = time.perf_counter()
    train = cached(cache, f"train_{n_train}", lambda: generate("swe-sphere", n_train, 32, times=[float(h) for h in range(49)], **common))
    test = cached(cache, f"test_{n_test}_24h", lambda: generate("swe-sphere", n_test, 32, first_sample=200,
                                                              times=[float(h) for h in range(25)], **common))
    checks = list(range(50, long_steps + 1, 50))
    long_truth = cached(cache, f"long_{long_steps}", lambda: generate("swe-sphere", 1, 32, first_sample=200,
                                                                    times=[0.0, *map(float, checks)], **common))
    data_seconds = time.perf_counter() - started
    if args.data_only:
        print(f"data ready in {data_seconds:.0f} s")
        return
    grid = Grid.latlon(32, 64)
    init = test.isel(time=0)
    truth = test.isel(time=slice(1, None)).rename(time="lead_time")
    options = {"sfno": {"hidden_channels": 32}, "afno": {"preset": "small"}}
    config = TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, seed=0, device="cpu", progress=False)
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{args.name}.json"
    results = json.loads(json_path.read_text())["variants"] if json_path.exists() and args.append else {}
    for spec in args.variants:
        parts = spec.split(":")
        model, weight = parts[0], float(parts[1]) if len(parts) > 1 else 0.0
        curriculum = tuple(int(k) for k in parts[2].split("-")) if len(parts) > 2 else (2,)
        t0 = time.perf_counter()
        surrogate, histories = fit_forecaster(train, variables=VARIABLES, lag=1, model=model, model_options=options[model],
                                              pretrain=config, curriculum=curriculum, spectral_weight=weight)
        train_seconds = time.perf_counter() - t0
        errors = rel_l2_by_lead(forecast(surrogate, init, steps=24, progress=False), truth, grid)
        stab = long_rollout_scores(surrogate, long_truth, checks, long_steps, per_degree_at=(50, long_steps))
        results[spec] = {"model": model, "spectral_weight": weight, "curriculum": list(curriculum),
                         "train_seconds": train_seconds, "final_losses": {str(k): h[-1]["train_loss"] for k, h in histories.items()},
                         "rel_l2_lead_1h": {v: errors[v][0] for v in VARIABLES},
                         "rel_l2_lead_24h": {v: errors[v][23] for v in VARIABLES}, "long_rollout": stab}
        print(spec, f"train {train_seconds:.0f} s", {k: results[spec][k] for k in ("rel_l2_lead_1h", "rel_l2_lead_24h")},
              {k: stab[k] for k in ("finite", "max_abs_log2_spectrum_ratio_at_end", "first_step_outside_factor_2")},
              flush=True)
        result = {"setting": "rotating shallow water on the sphere, 32x64 equiangular, random balanced flows, 1 h steps; "
                             f"{n_train} training trajectories of 48 h, {epochs} pretraining epochs, {n_test} test "
                             "trajectories (first_sample 200) for the errors, the 1,000-step rollout from the first",
                  "epochs": epochs, "n_train_trajectories": n_train, "n_test": n_test, "data_seconds": data_seconds,
                  "variants": results, "command": args.command,
                  "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                              "torch": torch.__version__}}
        write_text(json_path, json.dumps(result, indent=2))
        write_text(out / f"{args.name}.md", stability_markdown(result))
    print(stability_markdown(result))


def stability_markdown(result: dict) -> str:
    """The markdown tables of :func:`stability_only`: errors and stability per variant, then per-degree log2 ratios."""
    lines = ["# Forecasting shallow water on the sphere: long-rollout stability (32x64, 1 h steps)", "",
             result["setting"] + ".", "", f"Command: `{result['command']}`", "",
             "Spectral weight: the weight of the rollout loss's spectral term (mean squared log ratio of the forecast's "
             "to the truth's spherical-harmonic power per degree, `RolloutTask(spectral_weight=...)`).", "",
             "| variant | curriculum | train s | 1 h rel L2 (h / u / v) | 24 h rel L2 (h / u / v) | finite | "
             "max abs log2 ratio at the end | first step outside 2x |", "|---|---|---|---|---|---|---|---|"]
    for spec, r in result["variants"].items():
        s = r["long_rollout"]
        e1 = " / ".join(f"{r['rel_l2_lead_1h'][v]:.4f}" for v in VARIABLES)
        e24 = " / ".join(f"{r['rel_l2_lead_24h'][v]:.4f}" for v in VARIABLES)
        lines.append(f"| {spec} | {'-'.join(map(str, r['curriculum']))} | {r['train_seconds']:.0f} | {e1} | {e24} | "
                     f"{s['finite']} | {s['max_abs_log2_spectrum_ratio_at_end']:.3g} | {s['first_step_outside_factor_2'] or 'none'} |")
    for spec, r in result["variants"].items():
        for lead, table in r["long_rollout"]["log2_ratio_by_degree"].items():
            degrees = range(1, len(table[VARIABLES[0]]) + 1)
            lines += ["", f"log2(P_forecast / P_truth) per degree, {spec}, step {lead}:", "",
                      "| variable | " + " | ".join(str(l) for l in degrees) + " |", "|---|" + "---|" * len(degrees)]
            for v in VARIABLES:
                lines.append(f"| {v} | " + " | ".join(f"{x:+.1f}" for x in table[v]) + " |")
        checks = r["long_rollout"]["departure_by_check"]
        lines += ["", f"max abs log2 ratio by step, {spec}: " + ", ".join(f"{k}: {d:.2f}" for k, d in checks.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes to check the script (minutes)")
    parser.add_argument("--epochs", type=int, help="pretraining epochs (default 30; quick 3)")
    parser.add_argument("--n-train", type=int, help="training trajectories (default 16; quick 4)")
    parser.add_argument("--long-steps", type=int, help="steps of the stability rollout (default 1000; quick 50)")
    parser.add_argument("--cache", help="directory for the solver's trajectories as NetCDF (default: none, regenerate)")
    parser.add_argument("--stability-only", action="store_true",
                        help="train --variants and score errors and the long-rollout spectra only")
    parser.add_argument("--variants", nargs="+", default=["sfno:0", "afno:0"],
                        help="with --stability-only: model:spectral_weight[:curriculum as 2-4-8] (default sfno:0 afno:0)")
    parser.add_argument("--data-only", action="store_true", help="with --stability-only: fill the cache and stop")
    parser.add_argument("--append", action="store_true", help="with --stability-only: keep earlier variants of the JSON")
    parser.add_argument("--name", default="forecast_swe_stability", help="with --stability-only: results file name (default forecast_swe_stability)")
    parser.add_argument("--threads", type=int, default=1, help="with --stability-only: torch threads (default 1)")
    args = parser.parse_args()
    import sys
    args.command = "python " + " ".join(sys.argv)
    if args.stability_only:
        stability_only(args)
        return
    from sciml import Grid
    from sciml.datasets import generate
    from sciml.forecast import BredVectors, GaussianPerturbation, crps, fit_forecaster, forecast, mae, rmse, spread_skill
    from sciml.train import TrainConfig

    quick = args.quick
    epochs = args.epochs or (3 if quick else 30)
    n_train = args.n_train or (4 if quick else 16)
    long_steps = args.long_steps or (50 if quick else 1000)
    n_test, members = (2, 4) if quick else (8, 8)
    horizon = 24 if quick else 120
    torch.set_num_threads(2)
    common = dict(seed=0, initial_condition="random", progress=False)
    started = time.perf_counter()
    cache = Path(args.cache) if args.cache else None
    train = cached(cache, f"train_{n_train}", lambda: generate("swe-sphere", n_train, 32, times=[float(h) for h in range(49)], **common))
    val = cached(cache, f"val_{n_train}_{horizon}h", lambda: generate(
        "swe-sphere", 4, 32, first_sample=n_train, times=[float(h) for h in range(horizon + 1)], **common))
    test = cached(cache, f"test_{n_test}_{horizon}h", lambda: generate(
        "swe-sphere", n_test, 32, first_sample=200, times=[float(h) for h in range(horizon + 1)], **common))
    checks = list(range(50, long_steps + 1, 50))  # stability checked every 50 h against the solver at that time
    long_truth = cached(cache, f"long_{long_steps}", lambda: generate(
        "swe-sphere", 1, 32, first_sample=200, times=[0.0, *map(float, checks)], **common))
    data_seconds = time.perf_counter() - started
    grid = Grid.latlon(32, 64)
    init = test.isel(time=0)
    truth = test.isel(time=slice(1, None)).rename(time="lead_time")

    repeated = init[VARIABLES].expand_dims(lead_time=truth.sizes["lead_time"]).transpose("sample", "lead_time", ...)
    persistence = rel_l2_by_lead(repeated, truth, grid)

    models = {"sfno": {"hidden_channels": 32}, "afno": {"preset": "small"}}
    config = TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, seed=0, device="cpu", progress=False)
    results: dict[str, dict] = {}
    trained = {}
    for name, options in models.items():
        t0 = time.perf_counter()
        surrogate, histories = fit_forecaster(train, variables=VARIABLES, lag=1, model=name, model_options=options,
                                              pretrain=config, curriculum=(2,))
        train_seconds = time.perf_counter() - t0
        trained[name] = surrogate
        deterministic = forecast(surrogate, init, steps=horizon, progress=False)
        errors = rel_l2_by_lead(deterministic, truth, grid)
        # stability: a long rollout streamed to disk; the spectrum at its last step against the solver's
        with tempfile.TemporaryDirectory() as tmp:
            long = forecast(surrogate, long_truth.isel(time=0), steps=long_steps, out=Path(tmp) / "long.nc",
                            progress=False)
            last = long.isel(lead_time=-1).load()
            finite = all(bool(np.isfinite(last[v].values).all()) for v in VARIABLES)
            departure = spectrum_departure(last, long_truth.isel(time=-1)) if finite else math.inf
            first_bad = None  # first checked lead outside a factor 2 of the solver's spectrum at that time
            for k, lead in enumerate(checks, start=1):
                state = long.isel(lead_time=lead - 1).load()
                if not all(np.isfinite(state[v].values).all() for v in VARIABLES) or \
                        spectrum_departure(state, long_truth.isel(time=k)) > 1.0:
                    first_bad = lead
                    break
        results[name] = {
            "train_seconds": train_seconds, "parameters": sum(p.numel() for p in surrogate.module.parameters()),
            "final_losses": {str(k): h[-1]["train_loss"] for k, h in histories.items()},
            "rel_l2_lead_1h": {v: errors[v][0] for v in VARIABLES},
            "rel_l2_lead_24h": {v: errors[v][23] for v in VARIABLES},
            "rmse_lead_1h_24h": {v: [float(rmse(deterministic[v].isel(lead_time=[j]), test[v]).squeeze()) for j in (0, 23)]
                                 for v in VARIABLES},
            "long_rollout": {"steps": long_steps, "finite": finite, "max_abs_log2_spectrum_ratio_at_end": departure,
                             "within_factor_2_at_end": departure <= 1.0, "first_step_outside_factor_2": first_bad},
        }

    # throughput: forecast() against the bare module applied in a loop to the same states (SFNO)
    sfno = trained["sfno"]
    module = sfno.module.eval()
    state0 = torch.from_numpy(np.stack([init[v].values for v in VARIABLES], axis=1)).float()
    steps = 24
    t0 = time.perf_counter()
    forecast(sfno, init, steps=steps, progress=False)
    rollout_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        state = state0
        for _ in range(steps):
            state = module(state)
    bare_seconds = time.perf_counter() - t0

    # ensembles (SFNO): for each perturbation, choose its size on the validation trajectories, score on the test ones
    leads = [lead for lead in LEADS if lead <= horizon]

    def ensemble_at_leads(ds, perturbation):
        ens = forecast(sfno, ds.isel(time=0), steps=horizon, members=members, seed=1, perturbation=perturbation,
                       progress=False)
        return ens.isel(lead_time=[lead - 1 for lead in leads])

    def ratio_range(ens, ds):
        ratio = spread_skill(ens, ds)
        values = [float(x) for v in VARIABLES for x in ratio[v].values]
        return min(values), max(values)

    # minimax calibration: the spread grows about linearly with a small perturbation, so dividing the scale by
    # sqrt(min ratio * max ratio) (over variables and leads) centres the ratios' range on 1 in the log
    perturbations = {"gaussian": lambda s: GaussianPerturbation(scale=s),
                     "bred_c3s12": lambda s: BredVectors(scale=s, cycles=3, steps=12)}
    deterministic = forecast(sfno, init, steps=horizon, progress=False).isel(lead_time=[lead - 1 for lead in leads])
    det_mae = mae(deterministic, test)
    ensembles = {}
    for kind, make in perturbations.items():
        scale, trace = 0.01, []
        for _ in range(CALIBRATION_ROUNDS):
            low, high = ratio_range(ensemble_at_leads(val, make(scale)), val)
            trace.append({"scale": scale, "min_ratio": low, "max_ratio": high})
            scale = float(min(scale / math.sqrt(low * high), 1.0))
        low, high = ratio_range(ensemble_at_leads(val, make(scale)), val)
        trace.append({"scale": scale, "min_ratio": low, "max_ratio": high})
        ens = ensemble_at_leads(test, make(scale))
        ratio, fair = spread_skill(ens, test), crps(ens, test)
        ensembles[kind] = {
            "perturbation_scale_chosen_on_validation": scale, "validation_trace": trace,
            "validation_log_range": math.log(high / low),
            "spread_skill": {v: [float(x) for x in ratio[v].values] for v in VARIABLES},
            "fair_crps": {v: [float(x) for x in fair[v].values] for v in VARIABLES},
        }
    chosen = min(ensembles, key=lambda k: ensembles[k]["validation_log_range"])  # picked on validation only
    results["ensemble_sfno"] = {
        "members": members, "leads_h": leads, "chosen_on_validation": chosen, "perturbations": ensembles,
        "deterministic_mae": {v: [float(x) for x in det_mae[v].values] for v in VARIABLES},
    }
    result = {"setting": "rotating shallow water on the sphere, 32x64 equiangular, random balanced flows, 1 h steps",
              "quick": quick, "epochs": epochs, "n_train_trajectories": n_train, "n_test": n_test,
              "data_seconds": data_seconds, "models": results, "persistence_rel_l2_lead_1h": {v: persistence[v][0] for v in VARIABLES},
              "persistence_rel_l2_lead_24h": {v: persistence[v][23] for v in VARIABLES},
              "throughput": {"steps": steps, "initial_states": n_test, "forecast_seconds": rollout_seconds,
                             "bare_loop_seconds": bare_seconds, "ratio_bare_over_forecast": bare_seconds / rollout_seconds},
              "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__}}
    out = Path(__file__).parent / "results" / "cpu"
    out.mkdir(parents=True, exist_ok=True)
    name = "forecast_swe_quick" if quick else "forecast_swe"
    write_text(out / f"{name}.json", json.dumps(result, indent=2))
    lines = [f"# Forecasting shallow water on the sphere (32x64, 1 h steps){' - quick sizes' if quick else ''}", "",
             f"{n_train} training trajectories of 48 h, {epochs} pretraining epochs + two-step fine-tuning; "
             f"{n_test} held-out initial conditions. Relative L2 in area weights against the solver.", "",
             "| model | parameters | train s | lead | height | eastward | northward |", "|---|---|---|---|---|---|---|"]
    for model in models:
        r = results[model]
        for lead in ("1h", "24h"):
            e = r[f"rel_l2_lead_{lead}"]
            lines.append(f"| {model} | {r['parameters']:,} | {r['train_seconds']:.0f} | {lead} | "
                         + " | ".join(f"{e[v]:.4f}" for v in VARIABLES) + " |")
    for lead in ("1h", "24h"):
        p = result[f"persistence_rel_l2_lead_{lead}"]
        lines.append(f"| persistence | | | {lead} | " + " | ".join(f"{p[v]:.4f}" for v in VARIABLES) + " |")
    lines += ["", "RMSE in physical units (m, m s-1) at 1 h / 24 h (the height's relative error is small because its "
              "mean, ~10 km, is in the norm):", "", "| model | height | eastward | northward |", "|---|---|---|---|"]
    for model in models:
        r = results[model]["rmse_lead_1h_24h"]
        lines.append(f"| {model} | " + " | ".join(f"{r[v][0]:.3g} / {r[v][1]:.3g}" for v in VARIABLES) + " |")
    lines += ["", "| model | rollout steps | finite | max abs log2 spectrum ratio at the end | first step outside 2x |",
              "|---|---|---|---|---|"]
    for model in models:
        s = results[model]["long_rollout"]
        lines.append(f"| {model} | {s['steps']} | {s['finite']} | {s['max_abs_log2_spectrum_ratio_at_end']:.3g} | "
                     f"{s['first_step_outside_factor_2'] or 'none'} |")
    e = results["ensemble_sfno"]
    lines += ["", f"SFNO ensembles, {members} members. Each perturbation's size is set on the validation trajectories "
              "(minimax: the range of spread/skill over variables and leads centred on 1 in the log); the one with "
              f"the narrower validation range is **{e['chosen_on_validation']}**. Scored on the test trajectories:", "",
              "| perturbation | scale | validation range | test range |", "|---|---|---|---|"]
    for kind, p in e["perturbations"].items():
        last = p["validation_trace"][-1]
        test_values = [x for v in VARIABLES for x in p["spread_skill"][v]]
        lines.append(f"| {kind} | {p['perturbation_scale_chosen_on_validation']:.3f} | "
                     f"{last['min_ratio']:.3f}-{last['max_ratio']:.3f} | {min(test_values):.3f}-{max(test_values):.3f} |")
    best = e["perturbations"][e["chosen_on_validation"]]
    lines += ["", f"{e['chosen_on_validation']} on the test trajectories:", "",
              "| variable | lead h | spread/skill | fair CRPS | deterministic MAE |", "|---|---|---|---|---|"]
    for v in VARIABLES:
        for i, lead in enumerate(leads):
            lines.append(f"| {v} | {lead} | {best['spread_skill'][v][i]:.3f} | {best['fair_crps'][v][i]:.4g} | "
                         f"{e['deterministic_mae'][v][i]:.4g} |")
    t = result["throughput"]
    lines += ["", f"Throughput: forecast() {t['forecast_seconds']:.3f} s vs bare loop {t['bare_loop_seconds']:.3f} s "
              f"for {t['steps']} steps of {n_test} states: ratio {t['ratio_bare_over_forecast']:.2f}"]
    write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
