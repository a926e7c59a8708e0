#!/usr/bin/env bash
# Download, HERE (a machine with access to the package registry), the wheels that the GPU machine's
# image lacks, into the git-ignored folder .whl/ at the repository root. benchmarks/gpu/run.sh installs
# them THERE (no network) with `pip install --no-index --no-deps --target /tmp/site .whl/*.whl`.
#
# Target: CPython 3.12, manylinux x86_64 (the device image's /opt/torch/.venv/bin/python3 is 3.12.3).
# Versions: the ones installed in THIS environment (the tested combination), read with importlib.metadata.
#
# Deliberately NOT carried (see benchmarks/gpu/README.md):
#   torch            - the image has torch 2.11.0+cu130; a torch wheel is far too big to carry.
#   torch-harmonics  - its wheels hold C++/CUDA extensions built against torch 2.14; on torch 2.11 they
#                      would fail to load with an ImportError that neuraloperator does not catch (it only
#                      catches ModuleNotFoundError), breaking `import neuralop`. Left out, neuralop skips
#                      SFNO/spherical datasets cleanly; sciml needs it only for the shallow-water solver.
#   wandb, zencfg, configmypy, ruamel.yaml - declared by neuraloperator but not imported by
#                      `import neuralop` / neuralop.models.FNO (wandb is an optional try-import).
#   everything in the image's package list (numpy, scipy, pandas, h5py, matplotlib, torchdiffeq, tqdm,
#                      pyyaml, click, cloudpickle, fsspec, toolz, packaging, typing-extensions, pytest, ...).
#
# Usage: bash benchmarks/gpu/fetch_wheels.sh        (from anywhere inside the repository)
set -euo pipefail

cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
PY=${PYTHON:-python3}

# Import-time needs of sciml's bench/train/data paths that the image lacks (checked by tracing the
# modules a tiny benchmark + NetCDF/zarr round trip load, against KINDS.md's package list):
PACKAGES=(
  neuraloperator tensorly tensorly-torch          # neuralop.models.FNO (tltorch, tensorly at import)
  xarray                                          # in the image, but carried at the tested version
  netCDF4 cftime h5netcdf                         # sciml.data.write / open (NetCDF4)
  dask partd locket                               # dask[array] (partd is a hard requirement of dask)
  zarr numcodecs donfig google-crc32c             # zarr stores
)

# 1. keep .whl/ out of git (it travels only when named in the device tool's `carry`)
exclude=.git/info/exclude
[ -d .git ] || exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"

# 2. a clean folder: two versions of one package would stop the whole install there
rm -rf .whl
mkdir -p .whl

platforms=()
for n in 28 27 24 17 5; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)

for name in "${PACKAGES[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") || {
    echo "fetch_wheels: $name is not installed here; install the project's dependencies first" >&2; exit 1; }
  spec="$name==$version"
  echo "fetch_wheels: $spec"
  if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
       "${platforms[@]}" -d .whl "$spec"; then
    # pip matches manylinux_2_N exactly: try the other N in use
    extra=()
    for n in 31 34 35 39 26 25 23 12; do extra+=(--platform "manylinux_2_${n}_x86_64"); done
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${platforms[@]}" "${extra[@]}" -d .whl "$spec"
  fi
done

# 3. check: one wheel per package, each for cp312 / abi3 / pure Python on x86_64
"$PY" - <<'PY'
import collections, pathlib, re, sys
wheels = sorted(pathlib.Path(".whl").glob("*.whl"))
names = collections.Counter(re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower() for w in wheels)
dupes = [n for n, c in names.items() if c > 1]
bad = [w.name for w in wheels if not re.search(r"-(cp312-cp312|cp3\d+-abi3|py3-none|py2\.py3-none)-", w.name)
       or not re.search(r"(x86_64|-any)\.whl$", w.name)]
if dupes or bad:
    sys.exit(f"fetch_wheels: duplicate packages {dupes} or wrong tags {bad}")
for w in wheels:
    print(f"{w.stat().st_size / 2**20:8.2f} MiB  {w.name}")
print(f"{sum(w.stat().st_size for w in wheels) / 2**20:8.2f} MiB  total, {len(wheels)} wheels")
PY

# 4. what travels to the device: tracked + untracked-not-ignored files + the carried .whl (limit 64 MiB)
tree=$( { git ls-files -z --cached; git ls-files -z --others --exclude-standard; } \
        | (xargs -0 -r stat -c %s -- 2>/dev/null || true) | awk '{s+=$1} END {print s+0}')
whl=$(du -sb .whl | cut -f1)
awk -v t="$tree" -v w="$whl" 'BEGIN {printf "fetch_wheels: working tree %.1f MiB + .whl %.1f MiB = %.1f MiB (device limit 64 MiB)\n", t/2^20, w/2^20, (t+w)/2^20; exit ((t+w) > 60*2^20)}' \
  || { echo "fetch_wheels: too close to the 64 MiB limit" >&2; exit 1; }
