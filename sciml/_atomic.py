"""Atomic writes: every file sciml writes appears complete or not at all.

The one mechanism behind NetCDF files, checkpoints, manifests, reports and figures: write into a new
hidden staging directory beside the target, flush and ``fsync`` the result, rename it onto the target
(``os.replace``, atomic on POSIX within a file system), then ``fsync`` the directory so the rename itself
survives a power cut. On any error the staging directory is removed and the target is untouched. New
files get the permissions of any new file (``0o666`` less the umask), not ``tempfile.mkstemp``'s ``0o600``.

Staging directories are named ``.<name>.<8 hex digits>.partial`` (a file is written as
``.<name>.<hex>.partial/<name>``, so it keeps its name and extension); :func:`sciml.data.open`,
:func:`sciml.load_exported` and :meth:`sciml.Surrogate.load` refuse anything inside one, and ``*`` globs
skip them. A writer holds ``flock`` on its staging directory, which the kernel drops when the process
dies (``kill -9``, a crash); the next write to the same target removes that target's staging directories
that nobody holds, and no others. (Where the file system has no ``flock``, such as some NFS mounts, no
staging directory is ever taken for dead: they are left for the user.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator

from .errors import DataError

__all__ = ["atomic_path", "write_bytes", "write_text", "atomic_directory", "write_model_directory", "exists_message",
           "is_partial", "partial_message", "remove_stale"]

_PARTIAL = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{8}\.partial")


def exists_message(path: Path) -> str:
    return (f"{path}: file exists and would be replaced; pass overwrite=True (--overwrite on the command line) "
            "to replace it, or choose another path")


def _partial_part(path: Path) -> re.Match | None:
    return next((m for m in map(_PARTIAL.fullmatch, reversed(path.parts)) if m), None)


def is_partial(path: str | os.PathLike) -> bool:
    """Whether ``path`` is, or lies inside, the staging directory of an unfinished atomic write."""
    return _partial_part(Path(path)) is not None


def partial_message(path: str | os.PathLike) -> str:
    target = _partial_part(Path(path))["target"]
    return (f"{path}: part of an unfinished write of {target!r} that is still running or was interrupted (it was "
            f"never renamed to {target!r}, so data may be missing); open {target!r}, or delete this and write it again")


def remove_stale(directory: Path, target: str) -> None:
    """Remove, in ``directory``, the staging directories (``.<name>.<hex>.partial``) of the targets whose name
    fully matches the regular expression ``target`` and whose writers are gone (nobody holds their lock)."""
    pattern = re.compile(rf"\.(?:{target})\.[0-9a-f]{{8}}\.partial")
    try:
        stale = [e.path for e in os.scandir(directory) if pattern.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for path in stale:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer holds it (or the file system cannot tell)
            continue
        else:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _new_staging(target: Path) -> tuple[Path, int]:
    """A new empty staging directory for ``target`` and a descriptor holding ``flock`` on it."""
    for _ in range(100):
        staging = target.with_name(f".{target.name}.{os.urandom(4).hex()}.partial")
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise DataError(f"{target}: cannot write in {target.parent} ({err.strerror}); choose another path") from None
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
        with contextlib.suppress(OSError):  # no flock here: remove_stale then leaves it alone
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return staging, fd
    raise DataError(f"{target}: cannot create a staging directory in {target.parent}; remove stale "
                    f".{target.name}.*.partial directories")


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
    """Yield a temporary path (an empty new file) to write ``path``'s content to; on success it becomes ``path``.

    With ``overwrite=False`` an existing ``path`` (even one created while writing) is never replaced:
    :class:`~sciml.errors.DataError` instead. Staging directories of ``path`` left by killed writers are
    removed first.
    """
    path = Path(path)
    remove_stale(path.parent, re.escape(path.name))
    staging, fd = _new_staging(path)
    try:
        tmp = staging / path.name
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
        _fsync(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # empty after success; the unfinished file after a failure
        os.close(fd)


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
    the old content under a hidden ``.<name>.*.old`` name, never a mix of old and new files. Staging
    directories of ``directory`` left by killed writers are removed first.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())) and not overwrite:
        raise DataError(f"{directory}: exists and is not empty; pass overwrite=True or choose another directory")
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{directory}: cannot write in {parent} ({err.strerror}); choose another directory") from None
    remove_stale(parent, re.escape(directory.name))
    staging, fd = _new_staging(directory)
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
    finally:
        os.close(fd)


def write_model_directory(directory: str | os.PathLike, manifest: dict, module, *, overwrite: bool = False) -> Path:
    """Write ``manifest.json`` (``manifest`` as JSON) and ``weights.pt`` (the tensors of ``module.state_dict()``,
    on the CPU: ``torch.load(weights_only=True)`` reads them back, no code) into ``directory``, atomically.

    The one format of every saved model (surrogates, neural ODEs, closures): nothing is visible at
    ``directory`` until both files are complete.
    """
    import json

    import torch

    text = json.dumps(manifest, indent=2)
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    with atomic_directory(directory, overwrite=overwrite) as staging:
        (staging / "manifest.json").write_text(text)
        torch.save(state, staging / "weights.pt")
    return Path(directory)
