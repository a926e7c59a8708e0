"""Timing harness for benchmarks: warm-up, repeats, median and spread, CUDA synchronisation, a fixed
thread count, peak host and device memory, and a description of the machine.

Built on :mod:`sciml.timing` (``timed``/``time_call``); this module adds what a recorded benchmark
needs around them. Nothing here imports anything heavier than torch.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import statistics
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator, Mapping, TypeVar

import torch

from .._proc import proc_kib_field
from ..allocator import allocator_settings
from ..timing import Timing, time_call, timed

__all__ = ["Measurement", "measure", "interleaved", "fixed_threads", "machine", "quartiles"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def quartiles(samples: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """First and third quartiles (``statistics.quantiles``, inclusive method); a single sample gives it twice."""
    if not samples:
        raise ValueError("quartiles of no samples")
    if len(samples) == 1:
        return samples[0], samples[0]
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


@dataclass(frozen=True)
class Measurement:
    """Timings of ``repeats`` calls after warm-up, with memory peaks, for a call that handles ``items`` samples.

    Attributes:
        timing: seconds per call (median, min, max, every sample) from :func:`sciml.timing.time_call`.
        items: samples processed per call; ``per_item`` divides by it.
        warmup: untimed calls made first (the first one's result is what :func:`measure` returns).
        first_call_seconds: time of the first call (compilation, caches, allocator warm-up included).
        threads: ``torch.get_num_threads()`` during the measurement.
        peak_host_bytes: peak resident set size of the process during the measurement.
        host_baseline_bytes: resident set size just before it (the increase is the call's own memory).
        host_peak_scope: ``"measurement"`` when the kernel's peak counter could be reset for it,
            ``"process"`` when only the process-lifetime peak (``getrusage``) was available.
        peak_device_bytes: ``torch.cuda.max_memory_allocated`` during the measurement (CUDA only).
        device_baseline_bytes: ``torch.cuda.memory_allocated`` just before it (the increase is the call's own).
    """

    timing: Timing
    items: int
    warmup: int
    first_call_seconds: float
    threads: int
    peak_host_bytes: int | None
    host_baseline_bytes: int | None
    host_peak_scope: str
    peak_device_bytes: int | None
    device_baseline_bytes: int | None = None

    def per_item(self) -> dict:
        """Seconds per sample: median, min, max, quartiles, and the number of timed calls."""
        q1, q3 = quartiles(self.timing.samples or (self.timing.median,))
        n = self.items
        return {"median": self.timing.median / n, "min": self.timing.min / n, "max": self.timing.max / n,
                "q1": q1 / n, "q3": q3 / n, "repeats": self.timing.repeats}

    def as_dict(self) -> dict:
        return {"seconds_per_sample": self.per_item(), "seconds_per_call": list(self.timing.samples),
                "items_per_call": self.items, "warmup_calls": self.warmup,
                "first_call_seconds": self.first_call_seconds, "threads": self.threads,
                "peak_host_bytes": self.peak_host_bytes, "host_baseline_bytes": self.host_baseline_bytes,
                "host_peak_scope": self.host_peak_scope, "peak_device_bytes": self.peak_device_bytes,
                "device_baseline_bytes": self.device_baseline_bytes}


def _status_bytes(key: str) -> int | None:
    """A field of ``/proc/self/status`` (``VmHWM``, ``VmRSS``) in bytes; ``None`` off Linux."""
    return proc_kib_field("/proc/self/status", key)


def _reset_host_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux ``clear_refs`` 5); ``False`` if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return _status_bytes("VmHWM") is not None
    except OSError:
        return False


def _process_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def measure(fn: Callable[[], T], *, repeats: int = 3, warmup: int = 1, device: torch.device | str = "cpu",
            items: int = 1) -> tuple[T, Measurement]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (CUDA synchronised around each).

    Returns the result of the first call (so a benchmark can score what it timed without an extra
    call) and the :class:`Measurement`. With ``warmup=0`` the first call is also the first timed one.
    """
    if repeats < 1 or warmup < 0 or items < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, items >= 1; got {repeats}, {warmup}, {items}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    device_baseline = torch.cuda.memory_allocated(device) if cuda else None
    baseline = _status_bytes("VmRSS")
    scoped = _reset_host_peak()
    result, first = timed(fn, device=device)
    if warmup == 0:
        rest = time_call(fn, repeats=repeats - 1, warmup=0, device=device).samples if repeats > 1 else ()
        samples = (first, *rest)
        timing = Timing(statistics.median(samples), min(samples), max(samples), repeats, samples)
    else:
        timing = time_call(fn, repeats=repeats, warmup=warmup - 1, device=device)
    peak_host = _status_bytes("VmHWM") if scoped else _process_peak_bytes()
    peak_device = torch.cuda.max_memory_allocated(device) if cuda else None
    return result, Measurement(timing=timing, items=items, warmup=warmup, first_call_seconds=first,
                               threads=torch.get_num_threads(), peak_host_bytes=peak_host,
                               host_baseline_bytes=baseline, host_peak_scope="measurement" if scoped else "process",
                               peak_device_bytes=peak_device, device_baseline_bytes=device_baseline)


def interleaved(calls: Mapping[K, Callable[[], object]], *, rounds: int, warmup_rounds: int = 1,
                device: torch.device | str = "cpu") -> dict[K, Timing]:
    """Time several calls in alternation: each round calls every one once, the first call rotating.

    Load that drifts during the measurement (other tenants of a shared machine, clock changes) then
    falls on all calls alike, so the ``i``-th samples of any two calls form a fair pair: ratios of
    paired samples cancel the drift, and the spread over rounds shows what is left of it. Timing each
    call in its own block instead compares calls measured under different conditions.

    Returns ``Timing`` per key with ``samples`` in round order (index ``i`` = round ``i``).
    """
    if not calls:
        raise ValueError("interleaved needs at least one call")
    if rounds < 1 or warmup_rounds < 0:
        raise ValueError(f"need rounds >= 1 and warmup_rounds >= 0, got {rounds}, {warmup_rounds}")
    keys = list(calls)
    samples: dict[K, list[float]] = {key: [] for key in keys}
    for round_index in range(warmup_rounds + rounds):
        shift = round_index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            seconds = timed(calls[key], device=device)[1]
            if round_index >= warmup_rounds:
                samples[key].append(seconds)
    return {key: Timing(statistics.median(values), min(values), max(values), rounds, tuple(values))
            for key, values in samples.items()}


@contextlib.contextmanager
def fixed_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(threads)`` (``None``: keep the current count); restore after.

    Yields the thread count in effect, which every result should record.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_bytes() -> int | None:
    return proc_kib_field("/proc/meminfo", "MemTotal")


def machine(device: torch.device | str | None = None) -> dict:
    """What a timing means nothing without: CPU, cores, threads, memory, torch/CUDA and device, load.

    No hostname or user names. ``load_average`` (1, 5, 15 minutes) is recorded so that a result
    measured on a busy machine can be recognised as such.
    """
    import numpy

    from .. import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    info = {
        "cpu_model": _cpu_model(),
        "cpu_architecture": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "memory_total_bytes": _memory_total_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "sciml_version": __version__,
        "cuda_version": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
    info["allocator"] = allocator_settings()  # glibc thresholds change CPU timings by up to ~3x
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        info["load_average"] = None
    device = torch.device(device) if device is not None else None
    info["device"] = str(device) if device is not None else None
    if device is not None and device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update({"device_name": props.name, "device_memory_bytes": props.total_memory,
                     "device_capability": f"{props.major}.{props.minor}",
                     "device_multiprocessors": props.multi_processor_count})
    else:
        info["device_name"] = info["cpu_model"]
    return info
