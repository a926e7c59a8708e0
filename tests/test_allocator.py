"""keep_freed_memory: freed pages stay in the process, so a solver step stops page-faulting its temporaries."""

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, resource, sys, torch
from sciml.allocator import allocator_settings, keep_freed_memory
from sciml.solvers.navier_stokes import NavierStokes2D, step
torch.set_num_threads(1)
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
eq = NavierStokes2D(viscosity=1e-3, forcing="li2021")
w_hat = torch.fft.rfft2(torch.randn(16, 128, 128, dtype=torch.float64)) * 0.01
for _ in range(3):
    step(eq, w_hat, 1e-3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step(eq, w_hat, 1e-3)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps({"applied": applied, "faults_per_step": faults, "settings": allocator_settings()}))
"""


def _run(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keeping_freed_memory_removes_the_page_faults_of_a_solver_step():
    default, kept = _run("default"), _run("keep")
    assert kept["applied"] is True and kept["settings"]["keep_freed_memory"]["mmap_threshold"] == 32 * 2**20
    assert default["settings"]["keep_freed_memory"] == {}
    # measured: 14,448 minor faults per step by default, 0 with the thresholds raised. The default's count is
    # glibc's business (its dynamic mmap threshold sometimes rises on its own: once 0 in a full-suite run), so
    # only the kept process is held to a bound, and the default only to being no better.
    assert kept["faults_per_step"] < 1, (default, kept)
    assert default["faults_per_step"] >= kept["faults_per_step"], (default, kept)
