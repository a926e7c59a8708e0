"""Linux ``/proc`` readings in bytes, ``None`` where they cannot be read (another OS, a sandbox)."""

from __future__ import annotations


def proc_kib_field(path: str, key: str) -> int | None:
    """The ``KEY:  N kB`` field of a ``/proc`` file (``/proc/meminfo``, ``/proc/self/status``) in bytes."""
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
