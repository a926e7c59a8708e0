"""Run directories of the end-to-end jobs (quickstart, bench): created up front, stale results removed."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError


def prepare_output_dir(out: Path, *, stale: str) -> None:
    """Create ``out`` (or fail naming it) and delete its ``stale`` file, the one a finished run writes
    last, so that a result left from an earlier run cannot vouch for a new, unfinished one."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{out}: cannot create the output directory ({err.strerror}); choose another --out") from None
    if not os.access(out, os.W_OK):
        raise DataError(f"{out}: output directory is not writable; choose another --out")
    (out / stale).unlink(missing_ok=True)
