"""A learned closure for coarse 2-D Navier-Stokes against Smagorinsky and no model (issue 15, item 4).

Data: Kolmogorov flow (forcing wavenumber 4, viscosity 5e-3, drag 0.1, box 2 pi) run on a fine grid
(default 128x128) for a 10-unit spin-up from random initial vorticity, then recorded every 0.2 time
units and sharp-spectrally filtered to the coarse grid (default 32x32, modes |k_x|, |k_y| <= 10 kept;
:func:`sciml.node.closure.spectral_filter`). The first ``--n-train`` trajectories train, the last
``--n-test`` (other random initial conditions: held out) test.

Models on the coarse grid (CN-Heun, ``--dt``, default 0.025):

* no model;
* Smagorinsky, ``C_s`` chosen by a 1-D search on the a-posteriori loss over the training windows
  (:func:`~sciml.node.closure.tune_smagorinsky`);
* learned: the tuned Smagorinsky term plus a periodic CNN correction (inputs vorticity and velocity,
  ``--channels`` x ``--layers``), trained a-posteriori by unrolling the differentiable coarse solver
  (trajectory fitting, Melchers et al. 2023) with :func:`sciml.train.fit` (fixed epochs, seed 0) over an
  unroll curriculum (``--curriculum``: short unrolls first, then longer; List et al. 2022, Frezat et al.
  2022), on ``--windows`` windows per epoch drawn at random start times in the training trajectories.

Every closure is evaluated once every ``--hold`` coarse steps (default 8, 0.2 time units: once per recorded frame)
and held in between (``CoarseSolver(hold_closure=8)``; ``--hold 0``: the solver's per-stage seam, two calls per
step).

Scores on the test trajectories (:func:`~sciml.node.closure.evaluate_closures`): time until the
sample-mean vorticity correlation with the filtered DNS drops below 0.95 (Kochkov et al. 2021; also for
the DNS itself run from the filtered first frames, the ceiling of a closure that sees only them), the mean
|log10| ratio of the late-time energy spectrum to the filtered DNS's over 1 <= k <= 10, and the cost:
wall-clock seconds per unit simulated time per sample of the DNS and of each coarse run, timed
alternately in this run (minimum over ``--repeats`` pairs) from the same test states (the DNS from the
filtered state zero-padded to the fine grid; a batch of 8 states, the test states repeated). Targets: learned correlation time >= 2x both baselines',
spectrum error below both, cost >= 10x below the DNS.

Usage: python benchmarks/closure_ns2d.py [--quick] [--curriculum 2:6,4:6,...] [--n-train N] [--n-test N]
    [--cache DIR] [--name NAME]
Writes benchmarks/results/cpu/closure_ns2d.{json,md,png} (``--name``: NAME.{json,md,png}). Same seed, same numbers (fixed epochs), but the
timings depend on the machine and its load. ``--cache DIR`` keeps the filtered DNS as NetCDF there and
reuses it (with its recorded generation time) when the DNS options match.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from sciml._atomic import write_text



def _fine_state(w: torch.Tensor, fine: int) -> torch.Tensor:
    """Zero-pad the coarse vorticity ``(batch, n, n)`` to ``(batch, fine, fine)`` (spectral interpolation)."""
    n = w.shape[-1]
    spectrum = torch.fft.fft2(w.double())
    big = torch.zeros(*w.shape[:-2], fine, fine, dtype=spectrum.dtype)
    half = n // 2
    idx_small = torch.cat([torch.arange(0, half), torch.arange(n - half + 1, n)])
    idx_big = torch.cat([torch.arange(0, half), torch.arange(fine - half + 1, fine)])
    big[..., idx_big[:, None], idx_big[None, :]] = spectrum[..., idx_small[:, None], idx_small[None, :]] * (fine / n) ** 2
    return torch.fft.ifft2(big).real.to(w.dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes to check the script runs (default: off)")
    parser.add_argument("--curriculum", default="2:3,4:3,8:8,16:12",
                        help="unroll curriculum, frames:epochs per stage (default: 2:3,4:3,8:8,16:12)")
    parser.add_argument("--windows", type=int, default=48, help="training windows per epoch (default: 48)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per optimiser step (default: 8)")
    parser.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (default: 4e-3)")
    parser.add_argument("--no-velocity", action="store_true", help="CNN input vorticity only (default: off)")
    parser.add_argument("--hold", type=int, default=8,
                        help="evaluate every closure once every this many coarse steps and hold it in between; "
                             "0: at every solver stage (default: 8)")
    parser.add_argument("--dt", type=float, default=0.025,
                        help="coarse time step, dividing the 0.2 frame interval (default 0.025; 64x64 needs 0.0125)")
    parser.add_argument("--cache", type=Path, help="folder to keep and reuse the filtered DNS in (default: none)")
    parser.add_argument("--n-train", type=int, default=8, help="training trajectories (default: 8)")
    parser.add_argument("--n-test", type=int, default=4, help="held-out test trajectories (default: 4)")
    parser.add_argument("--fine", type=int, default=128, help="DNS grid (default: 128)")
    parser.add_argument("--coarse", type=int, default=32, help="coarse grid (default: 32)")
    parser.add_argument("--record", type=float, default=10.0, help="recorded time units (default: 10)")
    parser.add_argument("--frames", type=int, default=8,
                        help="frames of the a-posteriori loss table and the C_s search (default: 8, 1.6 time units)")
    parser.add_argument("--channels", type=int, default=32, help="CNN channels (default: 32)")
    parser.add_argument("--layers", type=int, default=6, help="CNN layers (default: 6)")
    parser.add_argument("--repeats", type=int, default=2, help="timing repeats (default: 2)")
    parser.add_argument("--out", type=Path, help="output folder (default: benchmarks/results/cpu/)")
    parser.add_argument("--name", default="closure_ns2d",
                        help="stem of the output files NAME.{json,md,png}, so a variant run keeps the committed table "
                             "(default: closure_ns2d)")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.n_train, args.n_test, args.fine, args.coarse, args.record = 1, 2, 1, 64, 32, 2.0
        args.frames, args.curriculum, args.windows = 4, "2:1,4:1", 8
    try:
        stages = [tuple(int(v) for v in part.split(":")) for part in args.curriculum.split(",")]
        curriculum_frames, curriculum_epochs = zip(*stages)
    except ValueError:
        parser.error(f"--curriculum must be frames:epochs[,frames:epochs...], got {args.curriculum!r}")
    hold, dt = args.hold, args.dt
    if hold < 0:
        parser.error(f"--hold must be >= 0, got {hold}")
    if not args.name or Path(args.name).name != args.name:
        parser.error(f"--name must be a plain file stem, got {args.name!r}")
    torch.set_num_threads(1)

    from sciml.node.closure import (
        CoarseSolver,
        Smagorinsky,
        UnrollCurriculum,
        _correlation,
        _equation_attrs,
        _vorticity,
        evaluate_closures,
        filtered_dns,
        load_closure,
        plot_closure_evaluation,
        save_closure,
        spectral_filter,
        train_closure,
        trajectory_windows,
        tune_smagorinsky,
        unrolled_loss,
        velocity_rms,
    )
    from sciml.plotting import save_figure
    from sciml.solvers.navier_stokes import integrate
    from sciml.train import TrainConfig, seed_everything

    curriculum = UnrollCurriculum(frames=curriculum_frames, epochs=curriculum_epochs)
    clock = time.perf_counter()
    frames_total = round(args.record / 0.2)
    samples, spinup = args.n_train + args.n_test, 2.0 if args.quick else 10.0
    cached = None if args.cache is None else \
        args.cache / f"dns_f{args.fine}_c{args.coarse}_n{samples}_r{args.record:g}_sp{spinup:g}_s0.nc"
    from_cache = cached is not None and cached.is_file()
    if from_cache:
        import xarray as xr

        ds = xr.load_dataset(cached)
        dns_wall = float(ds.attrs["generation_wall_s"])
        print(f"DNS read from {cached}", flush=True)
    else:
        ds = filtered_dns(samples, fine=args.fine, coarse=args.coarse,
                          times=[0.2 * i for i in range(frames_total + 1)], spinup=spinup, seed=0, progress=False)
        dns_wall = time.perf_counter() - clock
        if cached is not None:
            ds.attrs["generation_wall_s"] = dns_wall
            cached.parent.mkdir(parents=True, exist_ok=True)
            ds.to_netcdf(cached)
    train = ds.isel(sample=slice(0, args.n_train))
    test = ds.isel(sample=slice(args.n_train, None))
    eq = _equation_attrs(ds)
    length = eq.length
    print(f"DNS {args.fine}^2 -> {args.coarse}^2: {dns_wall:.0f} s{' (when it was made)' if from_cache else ''}",
          flush=True)

    best_c, losses = tune_smagorinsky(train, dt=dt, frames=args.frames, stride=5,
                                      coefficients=[0.025 * i for i in range(13)], hold_closure=hold)
    print(f"Smagorinsky C_s = {best_c:.3f}", flush=True)

    seed_everything(0)
    from sciml.node.closure import ClosureCNN

    vort = _vorticity(train)
    rms = float(vort.pow(2).mean().sqrt())
    solver = CoarseSolver(equation=eq, n=args.coarse, dt=dt, steps_per_frame=round(0.2 / dt), hold_closure=hold)
    speed = velocity_rms(vort[:, 0], length)  # rms of one velocity component, first frames
    model = ClosureCNN(channels=args.channels, layers=args.layers, vorticity_scale=rms,
                       tendency_scale=0.1 * rms / solver.frame_interval, smagorinsky=best_c, length=length,
                       velocity=not args.no_velocity, velocity_scale=speed)
    clock = time.perf_counter()
    model, history = train_closure(train, dt=dt, frames=curriculum, windows_per_epoch=args.windows, model=model,
                                   hold_closure=hold,
                                   config=TrainConfig(epochs=curriculum.total_epochs, batch_size=args.batch_size,
                                                      lr=args.lr, device="cpu", progress=False, seed=0))
    train_wall = time.perf_counter() - clock
    print(f"training {train_wall:.0f} s: " + ", ".join(f"{r['train_loss']:.4f}" for r in history), flush=True)

    out = args.out or Path(__file__).parent / "results" / "cpu"
    saved = save_closure(model, Path("runs") / args.name / "learned", overwrite=True,
                         metadata={"benchmark": "closure_ns2d", "smagorinsky": best_c})
    reloaded = load_closure(saved)
    probe = _vorticity(test)[:, 0]
    assert torch.equal(reloaded(probe), model(probe)), "save/load round trip changed the closure"

    closures = {"no model": None, "Smagorinsky": Smagorinsky(best_c, length=length), "learned": model}
    a_posteriori = {}
    with torch.no_grad():
        for split, data in (("train", train), ("test", test)):
            windows = trajectory_windows(_vorticity(data), args.frames, stride=5)
            a_posteriori[split] = {name: float(unrolled_loss(solver, c, windows)) for name, c in closures.items()}

    evaluation = evaluate_closures(test, closures, dt=dt, progress=False, hold_closure=hold)
    fig = plot_closure_evaluation(evaluation, title=f"Kolmogorov flow, {args.coarse}x{args.coarse} coarse vs "
                                                    f"filtered {args.fine}x{args.fine} DNS (held-out)")
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out / f"{args.name}.png")

    # the ceiling: the DNS itself from the filtered first frames (sub-filter scales zero), filtered back; no closure
    # that sees only the filtered state is expected to stay correlated much longer
    truth = _vorticity(test)  # (sample, time, n, n)
    times = [float(t) for t in test["time"].values]
    from_filtered = integrate(eq, _fine_state(truth[:, 0], args.fine), times[1:], dt=0.05, adaptive=True, courant=0.5)
    ceiling_corr = _correlation(spectral_filter(from_filtered, args.coarse, kind=ds.attrs["filter"], length=length)
                                .double(), truth[:, 1:].double()).mean(0)  # (time - 1,)
    below = torch.nonzero(ceiling_corr < 0.95)
    ceiling = times[1 + int(below[0])] if len(below) else times[-1]

    # cost: DNS and coarse runs timed alternately from the same test states, per sample and unit simulated time
    start = _vorticity(test)[:, 0]
    start = start.repeat(math.ceil(8 / len(start)), 1, 1)[:8]  # a batch of 8: small grids are overhead-bound
    fine_start = _fine_state(start, args.fine)
    span = 1.0
    costs = {"DNS": math.inf, **{name: math.inf for name in closures}}
    for _ in range(args.repeats):
        clock = time.perf_counter()
        integrate(eq, fine_start, [0.2 * (i + 1) for i in range(round(span / 0.2))], dt=0.05, adaptive=True,
                  courant=0.5)
        costs["DNS"] = min(costs["DNS"], (time.perf_counter() - clock) / span / len(start))
        for name, closure in closures.items():
            clock = time.perf_counter()
            with torch.no_grad():
                solver.rollout(start, round(span / solver.frame_interval), closure)
            costs[name] = min(costs[name], (time.perf_counter() - clock) / span / len(start))

    names = list(closures)
    decorrelation = {n: float(evaluation["decorrelation_time"].sel(model=n)) for n in names}
    spectrum_error = {n: float(evaluation["spectrum_error"].sel(model=n)) for n in names}
    speedup = {n: costs["DNS"] / costs[n] for n in names}
    gain = decorrelation["learned"] / max(decorrelation["no model"], decorrelation["Smagorinsky"])
    horizon = float(test["time"].values[-1])
    targets = {
        "correlation_time_ratio": gain, "correlation_time_ratio_target": 2.0,
        "correlation_time_met": gain >= 2.0,
        "spectrum_closer_met": spectrum_error["learned"] < min(spectrum_error["no model"], spectrum_error["Smagorinsky"]),
        "dns_over_learned_cost": speedup["learned"], "cost_met": speedup["learned"] >= 10.0,
    }
    machine = {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
               "name": platform.processor() or platform.machine(), "python": platform.python_version()}
    setup = {"fine": args.fine, "coarse": args.coarse, "filter": ds.attrs["filter"], "filter_cutoff": ds.attrs["filter_cutoff"],
             "viscosity": eq.viscosity, "drag": eq.drag, "forcing": "kolmogorov", "forcing_wavenumber": eq.forcing_wavenumber,
             "length": length, "spinup": ds.attrs["spinup"], "record": args.record, "frame_interval": 0.2,
             "coarse_dt": dt, "n_train": args.n_train, "n_test": args.n_test, "unroll_frames": args.frames,
             "curriculum": {"frames": list(curriculum.frames), "epochs": list(curriculum.epochs)},
             "unroll_steps": curriculum.max_frames * solver.steps_per_frame, "epochs": curriculum.total_epochs,
             "windows_per_epoch": args.windows, "batch_size": args.batch_size, "lr": args.lr,
             "hold_closure": hold, "dns_cached": from_cache,
             "cnn": {"channels": args.channels, "layers": args.layers, "kernel": 3, "velocity": not args.no_velocity,
                     "parameters": sum(p.numel() for p in model.parameters())}, "quick": args.quick}
    results = {"setup": setup, "smagorinsky_search": losses, "smagorinsky_coefficient": best_c,
               "history": [{k: r[k] for k in ("epoch", "train_loss", "train_final_error", "train_unroll")}
                           for r in history],
               "a_posteriori_loss": a_posteriori, "decorrelation_time": decorrelation, "evaluation_horizon": horizon,
               "dns_from_filtered_state_decorrelation_time": ceiling,
               "spectrum_error": spectrum_error, "seconds_per_time_unit_per_sample": costs,
               "dns_over_model_cost": speedup, "targets": targets,
               "mean_correlation": {n: evaluation["mean_correlation"].sel(model=n).values[::5].round(4).tolist()
                                    for n in names},
               "wall_s": {"dns": dns_wall, "training": train_wall}}
    write_text(out / f"{args.name}.json", json.dumps({"machine": machine, "results": results}, indent=2,
                                                      default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    rows = ["| model | corr > 0.95 until (time units) | spectrum error (mean abs log10) | a-posteriori loss train / test "
            "| s per time unit per sample | DNS cost / model cost |", "|---|---|---|---|---|---|"]
    for n in names:
        rows.append(f"| {n} | {decorrelation[n]:.2f} | {spectrum_error[n]:.3f} | {a_posteriori['train'][n]:.4f} / "
                    f"{a_posteriori['test'][n]:.4f} | {costs[n]:.4f} | {speedup[n]:.1f} |")
    rows.append(f"| DNS {args.fine}x{args.fine} from the filtered state | {ceiling:.2f} | - | - | {costs['DNS']:.4f} | 1 |")
    lines = [f"Machine: {machine}", "", "Command: python " + " ".join(["benchmarks/closure_ns2d.py", *sys.argv[1:]]), "",
             f"Kolmogorov flow, nu={eq.viscosity}, drag={eq.drag}, k_f={eq.forcing_wavenumber}, box 2 pi; DNS {args.fine}^2 "
             f"filtered (sharp, |k| <= {ds.attrs['filter_cutoff']}) to {args.coarse}^2; {args.n_train} training and "
             f"{args.n_test} held-out test trajectories of {args.record:g} time units; coarse dt {dt}; "
             f"Smagorinsky C_s = {best_c:.3f} (1-D search); learned = Smagorinsky + CNN ({setup['cnn']['parameters']} "
             f"parameters, {args.channels} channels x {args.layers} layers, inputs vorticity"
             f"{'' if args.no_velocity else ' and velocity'}) trained a-posteriori with the unroll curriculum "
             f"{args.curriculum} (frames:epochs; up to {setup['unroll_steps']} solver steps), {args.windows} random "
             f"windows per epoch; every closure {f'evaluated once every {hold} steps and held' if hold else 'at every stage'}.",
             "", *rows, "",
             f"Correlation time of the learned model / best baseline: {gain:.2f} (target >= 2: "
             f"{'met' if targets['correlation_time_met'] else 'NOT met'}); spectrum closer than both baselines: "
             f"{'yes' if targets['spectrum_closer_met'] else 'no'}; DNS cost / learned cost: {speedup['learned']:.1f} "
             f"(target >= 10: {'met' if targets['cost_met'] else 'NOT met'}). A correlation time equal to the "
             f"horizon ({horizon:g}) means the correlation never dropped below 0.95. The DNS row is the fine solver "
             f"itself run from the filtered first frames (the scales below the filter set to zero) and filtered back: "
             f"the time the filtered state alone predicts, a ceiling for any closure that sees only it "
             f"({ceiling:.2f}; 2x the best baseline is {2 * max(decorrelation['no model'], decorrelation['Smagorinsky']):.2f}).", "",
             f"![correlation and spectra]({args.name}.png)", ""]
    write_text(out / f"{args.name}.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
