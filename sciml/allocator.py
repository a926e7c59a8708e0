"""Opt-in glibc allocator settings for CPU runs whose steps allocate large temporaries.

torch's CPU tensors come from glibc ``malloc``. Blocks above glibc's mmap threshold are mapped and
unmapped on every allocation, and free memory at the top of the heap is trimmed back to the system,
so a loop that allocates megabyte temporaries each iteration (a pseudo-spectral step's FFT buffers,
a training step's activations) faults every page back in each time. Measured here: a Navier-Stokes
CN-Heun step at 512^2 in float64 took about 15,000 minor page faults and 2.6x the time it takes
with the thresholds raised (35 vs 14 ms).

:func:`keep_freed_memory` raises both thresholds for the whole process, so freed pages are reused
instead of returned. The cost is that the process keeps up to ``trim_threshold`` bytes of freed
memory. It is process-wide state, so the library never calls it on import; the ``sciml`` command
line and the benchmarks do (the same as ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` set
in the environment before start).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory", "allocator_settings"]

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_applied: dict[str, int] = {}  # what keep_freed_memory set in this process


def allocator_settings() -> dict:
    """The allocator settings in force, for benchmark records: ``MALLOC_*`` variables and :func:`keep_freed_memory`."""
    return {"malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
            "keep_freed_memory": dict(_applied)}


def keep_freed_memory(*, mmap_threshold: int = 32 * 2**20, trim_threshold: int = 1 << 30) -> bool:
    """Raise glibc's mmap and trim thresholds (bytes); ``False`` where the C library has no ``mallopt``.

    ``mmap_threshold``: allocations up to this size come from the heap (glibc caps it at 32 MiB on
    64-bit systems). ``trim_threshold``: free heap memory kept before any is returned to the system.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not (mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))):
        return False
    _applied.update(mmap_threshold=int(mmap_threshold), trim_threshold=int(trim_threshold))
    return True
