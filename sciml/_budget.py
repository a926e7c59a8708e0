"""Up-front estimates of memory, disk and run time, so impossible work is refused before it starts.

One place for the checks the dataset recipes, ``Surrogate.predict`` and the command line make before a long
solve or a large allocation: :func:`check_memory` refuses (:class:`~sciml.errors.ConfigError`, with the
estimate and the limit) what cannot fit in the memory available now; :func:`check_disk` refuses an output
larger than the free space of its file system; :func:`warn_if_long` warns with an ETA (steps x estimated
seconds per step) for work that will take long; :func:`disk_full_error` turns the write error of a full
disk (``OSError`` ENOSPC, netCDF-C's ``NetCDF: HDF error``) into a :class:`~sciml.errors.DataError` that
says so. Estimates are deliberately rough (within a small factor): they separate "seconds" from "years"
and "fits" from "needs 640 TiB", nothing finer.
"""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from pathlib import Path

from ._proc import proc_kib_field
from .errors import ConfigError, DataError

# Work expected to take longer than this gets a warning with its ETA.
LONG_SECONDS = 600.0


def format_bytes(n: float) -> str:
    """``n`` bytes as ``"1.5 GiB"`` (binary units, three significant digits)."""
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_seconds(seconds: float) -> str:
    """A duration as ``"40 s"``, ``"12 min"``, ``"3.1 h"``, ``"5.2 days"`` or ``"3.1e+04 years"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    if seconds < 3.15e7:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / 3.15e7:.3g} years"


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now: ``MemAvailable`` of ``/proc/meminfo``, else
    ``psutil.virtual_memory().available`` when psutil is installed, else free pages from ``os.sysconf``;
    ``None`` where none can be read."""
    available = proc_kib_field("/proc/meminfo", "MemAvailable")
    if available is not None:
        return available
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, AttributeError, OSError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: float, *, what: str, fix: str) -> None:
    """:class:`ConfigError` when ``needed`` bytes (the estimate for ``what``) exceed the memory available.

    The message names ``what``, the estimate, the limit and ``fix`` (what to do instead).
    """
    available = available_memory()
    if available is not None and needed > available:
        raise ConfigError(f"{what} needs about {format_bytes(needed)} of memory and {format_bytes(available)} is "
                          f"available; {fix}")


def free_disk(path: str | os.PathLike) -> int | None:
    """Free bytes of the file system that ``path`` (or its nearest existing parent) is on; ``None`` if unknown."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def check_disk(path: str | os.PathLike, needed: float, *, what: str) -> None:
    """:class:`DataError` when writing about ``needed`` bytes to ``path`` would not fit on its file system."""
    free = free_disk(path)
    if free is not None and needed > free:
        raise DataError(f"{path}: {what} needs about {format_bytes(needed)} of disk and {format_bytes(free)} is free "
                        f"there; free some space or choose another --out")


def warn_if_long(steps: float, seconds_per_step: float, *, what: str, fix: str = "", stacklevel: int = 3) -> float:
    """Warn (``UserWarning``, with the ETA) when ``steps * seconds_per_step`` exceeds :data:`LONG_SECONDS`.

    Returns the estimated seconds.
    """
    eta = float(steps) * float(seconds_per_step)
    if eta > LONG_SECONDS:
        warnings.warn(f"{what}: about {steps:.3g} steps, estimated {format_seconds(eta)} on this machine"
                      + (f"; {fix}" if fix else ""), stacklevel=stacklevel)
    return eta


def is_disk_full(error: BaseException, path: str | os.PathLike | None = None) -> bool:
    """Whether ``error`` (raised while writing ``path``) means the disk is full: ``OSError`` ENOSPC/EDQUOT, or a
    netCDF-C/HDF5 error (which hides the errno) while the file system of ``path`` has under 1 MiB free."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    if "No space left" in text or "Disk quota exceeded" in text:
        return True
    if path is not None and ("HDF error" in text or "NetCDF" in text):
        free = free_disk(Path(path).parent)
        return free is not None and free < 2**20
    return False


def disk_full_error(path: str | os.PathLike, error: BaseException) -> DataError:
    """The :class:`DataError` for a write of ``path`` that failed because its disk is full."""
    free = free_disk(Path(path).parent)
    have = f" ({format_bytes(free)} free)" if free is not None else ""
    return DataError(f"{path}: the disk is full{have}, the file was not written ({type(error).__name__}: "
                     f"{' '.join(str(error).split())[:120]}); free some space or choose another location, then "
                     "run again (existing files are unchanged)")


# A year of computing is not a run anyone means to start: refused, with the estimate.
MAX_SECONDS = 365 * 86400.0


class Estimate:
    """What a run will need: ``output_bytes`` held in memory at the end (about three copies are alive while
    chunks are joined and resampled), ``work_bytes`` of solver temporaries besides, ``file_bytes`` written
    (uncompressed; zlib saves little on floating-point fields), and ``steps`` solver steps of
    ``seconds_per_step`` each (an estimate for one CPU thread of a 2-core 2020s machine, divided by 20 on
    CUDA).

    :meth:`check` refuses what cannot fit in memory or would run for more than :data:`MAX_SECONDS`, and
    warns with the ETA for what takes longer than :data:`LONG_SECONDS`.
    """

    def __init__(self, what: str, *, output_bytes: float, work_bytes: float = 0.0, file_bytes: float | None = None,
                 steps: float = 0.0, seconds_per_step: float = 0.0, fix: str = "") -> None:
        self.what, self.fix = what, fix
        self.output_bytes, self.work_bytes = float(output_bytes), float(work_bytes)
        self.file_bytes = float(output_bytes if file_bytes is None else file_bytes)
        self.steps, self.seconds_per_step = float(steps), float(seconds_per_step)

    @property
    def memory_bytes(self) -> float:
        """Peak memory: three copies of the output plus the solver's temporaries."""
        return 3 * self.output_bytes + self.work_bytes

    @property
    def seconds(self) -> float:
        return self.steps * self.seconds_per_step

    def __repr__(self) -> str:
        return (f"Estimate({self.what}: memory {format_bytes(self.memory_bytes)}, file {format_bytes(self.file_bytes)}, "
                f"{self.steps:.3g} steps, {format_seconds(self.seconds)})")

    def check(self, *, stacklevel: int = 4) -> Estimate:
        """Refuse (:class:`ConfigError`) or warn, as the class docstring says; returns ``self``."""
        check_memory(self.memory_bytes, what=self.what, fix=self.fix)
        if self.seconds > MAX_SECONDS:
            raise ConfigError(f"{self.what} needs about {self.steps:.3g} solver steps, estimated "
                              f"{format_seconds(self.seconds)} on this machine; {self.fix}")
        warn_if_long(self.steps, self.seconds_per_step, what=self.what, fix=self.fix, stacklevel=stacklevel)
        return self
