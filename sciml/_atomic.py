"""Atomic writes: every file sciml writes appears complete or not at all.

The one mechanism behind NetCDF files, checkpoints, manifests, reports and figures: write to a new
temporary name in the target directory, flush and ``fsync`` it, rename it onto the target (``os.replace``,
atomic on POSIX within a file system), then ``fsync`` the directory so the rename itself survives a
power cut. On any error the temporary file is removed and the target is untouched. Temporary names start
with ``.`` and end with ``.tmp``; new files get the permissions of any new file (``0o666`` less the
umask), not ``tempfile.mkstemp``'s ``0o600``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import DataError

__all__ = ["atomic_path", "write_bytes", "write_text", "atomic_directory", "exists_message"]


def exists_message(path: Path) -> str:
    return (f"{path}: file exists and would be replaced; pass overwrite=True (--overwrite on the command line) "
            "to replace it, or choose another path")


def _new_temporary(path: Path) -> Path:
    """An empty new file beside ``path``, created with mode ``0o666`` (the umask applies)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as err:
            raise DataError(f"{path}: cannot write in {path.parent} ({err.strerror}); choose another path") from None
        return tmp
    raise DataError(f"{path}: cannot create a temporary file in {path.parent}; remove stale .{path.name}.*.tmp files")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _rename_no_replace(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless a file appeared there meanwhile (a hard link fails on an existing name)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise DataError(exists_message(path)) from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists() or path.is_symlink():
            raise DataError(exists_message(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on success it becomes ``path``.

    With ``overwrite=False`` an existing ``path`` (even one created while writing) is never replaced:
    :class:`~sciml.errors.DataError` instead.
    """
    path = Path(path)
    tmp = _new_temporary(path)
    try:
        yield tmp
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, write: Callable[[object], None] | bytes, *, overwrite: bool = True) -> Path:
    """Write ``path`` atomically: ``write`` is the bytes or a function called with the open binary file."""
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as file:
        if isinstance(write, (bytes, bytearray)):
            file.write(write)
        else:
            write(file)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode(), overwrite=overwrite)


@contextlib.contextmanager
def atomic_directory(directory: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces ``directory``.

    A non-empty existing ``directory`` is refused unless ``overwrite`` (checked before any work). The
    swap of an existing directory is two renames (old aside, new in), so a crash between them leaves
    the old content under a hidden ``.<name>.*.old`` name, never a mix of old and new files.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())) and not overwrite:
        raise DataError(f"{directory}: exists and is not empty; pass overwrite=True or choose another directory")
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=parent))
    except OSError as err:
        raise DataError(f"{directory}: cannot write in {parent} ({err.strerror}); choose another directory") from None
    try:
        yield staging
        for item in staging.iterdir():
            _fsync(item)
        if directory.exists():
            old = parent / f".{directory.name}.{os.urandom(4).hex()}.old"
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
        _fsync(parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
