#!/usr/bin/env bash
# Run sciml's CUDA benchmarks on the lent GPU machine (device tool), from a bare start, in one call.
#
#   bash benchmarks/gpu/run.sh STAGE [STAGE ...]        (from anywhere; $OUT must be set)
#
# Stages (each should fit well inside one 10-minute device command; see benchmarks/gpu/README.md):
#   env                   versions only (python, torch, GPU, carried packages)
#   smoke                 imports, a tiny NS solve and tiny ns2d/darcy/burgers benchmarks on the GPU,
#                         then pytest tests/test_navier_stokes.py tests/test_bench.py (on CPU there)
#   solver                benchmarks/ns2d_solver.py --device cuda -> $OUT/ns2d_solver.{json,md}
#   bench-NAME            NAME in ns2d, darcy, burgers: full configuration -> $OUT/bench-NAME-full/
#   bench-NAME-reduced    fewer training samples/epochs (fallback if full overruns) -> $OUT/bench-NAME-reduced/
# Each stage's output goes to the terminal and to $OUT/<stage>.log, which starts with the environment.
# Exits non-zero as soon as a stage fails (later stages are not run).
#
# Setup it does first (nothing can be downloaded there):
#   * installs the wheels carried in .whl/ (made here by benchmarks/gpu/fetch_wheels.sh; pass
#     carry: [".whl"] to the device tool) into /tmp/site with pip --no-index --no-deps --target;
#   * makes `sciml.datasets` importable from the repository copy by a symlink sciml/datasets ->
#     ../datasets (pyproject maps the top-level datasets/ folder onto sciml.datasets) and puts the
#     repository root on PYTHONPATH. Why not `pip install .`: the repository's own sciml/ (without
#     datasets/) would shadow the installed copy wherever the current directory is on sys.path
#     (`python3 -m sciml`, `python3 -m pytest`), and an editable install's .pth hook does not run from a
#     --target folder; the symlink needs no build backend and works for every entry point.
#
# Knobs (defaults are what the GPU run needs; the others exist for a dry run on a CPU machine):
#   GPUKIT_DEVICE=cuda    device for every stage (cpu: local dry run)
#   GPUKIT_WHEELS=.whl    folder of wheels to install (must match the running python's tags)
#   GPUKIT_SITE=/tmp/site install target
#   GPUKIT_PYTEST=1       0 skips pytest in `smoke`
#   GPUKIT_PROGRESS=0     1 shows the bench's stage messages and training progress (drops --no-progress)
#   GPUKIT_BENCH_ARGS=    extra `sciml bench` arguments, appended (later --set wins), e.g. "--seed 1"
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
: "${OUT:?set OUT to the folder whose files come back (the device tool sets it)}"
mkdir -p "$OUT"

DEVICE=${GPUKIT_DEVICE:-cuda}
WHEELS=${GPUKIT_WHEELS:-.whl}
SITE=${GPUKIT_SITE:-/tmp/site}
PY=python3

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Reduced configurations (same solver ladder, reference and surrogate resolutions as the full one, so
# the solver curve is comparable; only the surrogate's training is cut). Full sizes: sciml/bench/problems.py.
REDUCED_ns2d=(--set n_train=500 --set train.epochs=50)      # 1,600 optimizer steps instead of 6,300
REDUCED_darcy=(--set n_train=500 --set train.epochs=50)     # 1,600 instead of 6,300
REDUCED_burgers=(--set n_train=500 --set train.epochs=100)  # 3,200 instead of 12,600

# ---- check every stage name before spending any time ----------------------------------------
[ $# -gt 0 ] || usage
for stage in "$@"; do
  case $stage in
    env | smoke | solver) ;;
    bench-ns2d | bench-darcy | bench-burgers | bench-ns2d-reduced | bench-darcy-reduced | bench-burgers-reduced) ;;
    *) echo "run.sh: unknown stage '$stage'" >&2; usage ;;
  esac
done

# ---- setup ----------------------------------------------------------------------------------
shopt -s nullglob
wheels=("$WHEELS"/*.whl)
shopt -u nullglob
if [ ${#wheels[@]} -eq 0 ]; then
  echo "run.sh: no wheels in $WHEELS/: run benchmarks/gpu/fetch_wheels.sh here and pass carry: [\".whl\"]" >&2
  exit 2
fi
t0=$(date +%s)
PIP_ROOT_USER_ACTION=ignore $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --disable-pip-version-check \
  --target "$SITE" "${wheels[@]}"

if [ ! -e sciml/datasets ]; then
  ln -s ../datasets sciml/datasets
  # only matters for a run on a developer's checkout: leave no untracked link behind
  trap 'rm -f "$REPO/sciml/datasets"' EXIT
fi
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg GPUKIT_DEVICE="$DEVICE"
echo "run.sh: setup (${#wheels[@]} wheels, sciml.datasets link) took $(( $(date +%s) - t0 )) s"

ENV_REPORT=$(mktemp)
{
  echo "== gpukit $(date -u +%FT%TZ) host=${HOSTNAME:-?} stages: $*"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 || true
  else
    echo "nvidia-smi: not found"
  fi
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo 'n/a (no .git in this copy)')"
  # same command here gives the same fingerprint for the same sources:
  echo "source sha1 (sciml/ datasets/ benchmarks/ *.py): $(find sciml datasets benchmarks -name '*.py' -type f | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -c1-16)"
  $PY - <<'PY'
import importlib.metadata as md, os, platform, sys
import torch
print(f"python {platform.python_version()} ({sys.executable}); {platform.platform()}; {os.cpu_count()} CPUs")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}); "
      f"cuda available: {torch.cuda.is_available()}; threads {torch.get_num_threads()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"gpu: {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs, sm_{p.major}{p.minor}")
names = ["numpy", "scipy", "pandas", "xarray", "h5py", "netCDF4", "cftime", "h5netcdf", "dask", "zarr", "numcodecs",
         "neuraloperator", "tensorly", "tensorly-torch", "torch-harmonics", "matplotlib", "torchdiffeq", "tqdm", "pytest"]
versions = []
for name in names:
    try:
        versions.append(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        versions.append(f"{name} -")
print("packages: " + ", ".join(versions))
try:  # not carried (built for torch 2.14); neuralop then skips SFNO, sciml loses only the shallow-water solver
    import torch_harmonics  # noqa: F401
    print("torch_harmonics: importable")
except Exception as err:
    print(f"torch_harmonics: not importable ({type(err).__name__}): SFNO / shallow-water paths unavailable")
import sciml, sciml.datasets, neuralop
from neuralop.models import FNO  # noqa: F401  (fails here if a carried dependency is missing)
print(f"sciml {sciml.__version__} from {os.path.dirname(sciml.__file__)}; sciml.datasets from "
      f"{os.path.dirname(sciml.datasets.__file__)}; neuralop from {os.path.dirname(neuralop.__file__)}")
if os.environ["GPUKIT_DEVICE"].startswith("cuda") and not torch.cuda.is_available():
    sys.exit("run.sh: CUDA is not available to torch here; nothing to benchmark")
PY
} >"$ENV_REPORT" 2>&1 || { cat "$ENV_REPORT" >&2; echo "run.sh: environment check failed" >&2; exit 1; }
cat "$ENV_REPORT"

# ---- stages ---------------------------------------------------------------------------------
stage_env() { :; }

stage_smoke() {
  $PY - <<'PY' || return
import os, tempfile, time
from pathlib import Path

import torch

import sciml
import sciml.datasets
from neuralop.models import FNO
from sciml import Grid, gaussian_random_field
from sciml.bench import run_benchmark
from sciml.datasets.ns2d import LI2021_VORTICITY_GRF
from sciml.solvers.navier_stokes import NavierStokes2D, integrate

device = torch.device(os.environ.get("GPUKIT_DEVICE", "cuda"))
sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

# a tiny Navier-Stokes solve on the device
w0 = gaussian_random_field(Grid.box(64, 64), 4, seed=0, dtype=torch.float32, device=device, **LI2021_VORTICITY_GRF)
eq = NavierStokes2D(viscosity=1e-3, forcing="li2021")
integrate(eq, w0, [0.0, 0.05])  # warm-up (cuFFT plans)
sync(); t = time.perf_counter()
w = integrate(eq, w0, [0.0, 0.5])
sync(); seconds = time.perf_counter() - t
assert w.shape == (4, 2, 64, 64) and w.device.type == device.type and bool(torch.isfinite(w).all()), (w.shape, w.device)
print(f"smoke: NS 4x64x64 to t=0.5 on {device}: {seconds * 1e3:.1f} ms, max |w| {float(w.abs().max()):.3f}")

# an FNO forward/backward on the device
model = FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=8, n_layers=2).to(device)
y = model(w[:, :1])
y.square().mean().backward()
print(f"smoke: neuralop FNO forward/backward on {device}: output {tuple(y.shape)}")

# tiny end-to-end benchmarks (sizes as tests/test_bench.py's TINY), one per problem: the GPU code
# paths (batched CG for Darcy, CUDA timing, memory measurement) run before any full-size run
TINY = {"n_train": 32, "n_test": 4, "surrogate_resolutions": (), "train.epochs": 8, "train.lr": 1e-2,
        "model.hidden_channels": 8, "model.n_modes": 6, "model.n_layers": 2, "repeats": 3, "warmup": 1}
GRIDS = {"ns2d": dict(train_resolution=16, solver_resolutions=(8, 16), reference_resolution=32),
         "darcy": dict(train_resolution=17, solver_resolutions=(9, 17), reference_resolution=33),
         "burgers": dict(train_resolution=16, solver_resolutions=(8, 16), reference_resolution=32)}
with tempfile.TemporaryDirectory() as tmp:
    for name, grids in GRIDS.items():
        t = time.perf_counter()
        r = run_benchmark(name, quick=True, device=str(device), out=Path(tmp) / name, seed=3, progress=False,
                          **TINY, **grids)
        assert r["device"].startswith(device.type), r["device"]
        assert sorted(p.name for p in (Path(tmp) / name).iterdir()) == ["cost_error.png", "results.json", "results.md"]
        print(f"smoke: tiny {name} bench on {r['machine'].get('device_name')} in {time.perf_counter() - t:.1f} s: "
              f"{r['verdict']}")
print("smoke: python part OK")
PY
  if [ "${GPUKIT_PYTEST:-1}" != 0 ]; then
    $PY -m pytest -q -x -p no:cacheprovider tests/test_navier_stokes.py tests/test_bench.py || return
  fi
}

stage_solver() {
  $PY benchmarks/ns2d_solver.py --device "$DEVICE" || return
  local results="benchmarks/results/${DEVICE%%:*}"
  cp "$results/ns2d_solver.json" "$results/ns2d_solver.md" "$OUT/" || return
}

stage_bench() {  # stage_bench NAME VARIANT [extra sciml bench arguments]
  local name=$1 variant=$2
  shift 2
  local progress=(--no-progress)
  [ "${GPUKIT_PROGRESS:-0}" = 1 ] && progress=()
  local extra=()
  read -r -a extra <<<"${GPUKIT_BENCH_ARGS:-}"
  $PY -m sciml bench "$name" --device "$DEVICE" --out "$OUT/bench-$name-$variant" "${progress[@]}" "$@" \
    "${extra[@]}" || return
}

run_stage() {
  local stage=$1 log="$OUT/$1.log" start status
  { cat "$ENV_REPORT"; echo "== stage $stage, started $(date -u +%FT%TZ)"; } >"$log"
  echo "== stage $stage, started $(date -u +%FT%TZ)"
  start=$(date +%s)
  set +e
  (
    set -e
    case $stage in
      env) stage_env ;;
      smoke) stage_smoke ;;
      solver) stage_solver ;;
      bench-*-reduced)
        name=${stage#bench-}; name=${name%-reduced}
        eval "extra=(\"\${REDUCED_$name[@]}\")"
        stage_bench "$name" reduced "${extra[@]}" ;;
      bench-*) stage_bench "${stage#bench-}" full ;;
    esac
  ) 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  set -e
  local verdict=OK
  [ "$status" -eq 0 ] || verdict="FAILED (exit $status)"
  echo "== stage $stage: $verdict in $(( $(date +%s) - start )) s" | tee -a "$log"
  return "$status"
}

# not `run_stage ... || exit`: in a tested context bash ignores `set -e` inside the stage's subshell
for stage in "$@"; do
  run_stage "$stage"
done

# the device tool returns at most 8 files from $OUT, at most 2 folders deep
n=$(find "$OUT" -type f | wc -l)
if [ "$n" -gt 8 ]; then
  echo "run.sh: WARNING: $n files under \$OUT; only 8 come back: run fewer stages per call" >&2
fi
echo "run.sh: all stages OK in $(( $(date +%s) - t0 )) s; files under \$OUT:"
(cd "$OUT" && find . -type f -printf '  %p (%s bytes)\n' | sort)
