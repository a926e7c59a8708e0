"""Sweeps on dask.distributed: one function over many items, each result written once, resumable.

:func:`sweep` maps a picklable function over items (parameter settings, (surrogate, file) pairs, ...)
as dask tasks, on an existing ``distributed.Client``, a scheduler address, or a ``LocalCluster`` started
for the call. Each result is written by the task itself, atomically, as ``out_dir/{key}.json`` (or
``{key}.nc`` when the function returns an ``xarray.Dataset``), so nothing large travels back through
the scheduler and nothing is half-written. A key whose file is already there is not run again: a sweep
interrupted (or a worker killed) is finished by calling it again, and a task whose worker died is re-run
by the scheduler; since each key has one file, written by ``os.replace``, a re-run replaces what it
wrote before and no result is lost or duplicated.

The same engine runs :func:`sciml.datasets.generate` with ``workers=``, ``client=`` or ``shard_dir=``
(one task per solver chunk).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import ConfigError, DataError, SolverError

__all__ = ["sweep", "SCHEDULER_TIMEOUT"]

# Seconds to wait for a dask scheduler named by its address (``client="tcp://host:8786"``) before giving up.
SCHEDULER_TIMEOUT = 10.0
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+-]*")


def sweep(function: Callable[[Any], Any], items: Mapping[str, Any] | Sequence[Any], *, out_dir: str | os.PathLike,
          client=None, workers: int = 1, retries: int = 2, progress: bool = True) -> list:
    """``[function(item) for item in items]`` as dask tasks, each result saved in ``out_dir`` as it finishes.

    Args:
        function: a picklable callable of one item (a module-level function, a ``functools.partial``;
            cloudpickle also takes lambdas and closures). It should be deterministic: a task re-run after
            its worker died replaces the result it may have written.
        items: a mapping ``{key: item}`` (keys become file names: letters, digits, ``_ . = + -``) or a
            sequence (keys ``00000``, ``00001``, ...: the position).
        out_dir: where each result goes, as ``{key}.json`` (``{"key", "item", "result"}``; the result must be
            JSON: numbers, strings, lists, dicts) or, for an ``xarray.Dataset``, ``{key}.nc`` (with the
            key and the item's ``repr`` in its attributes ``sweep_key`` and ``sweep_item``). Created if
            missing.
        client: a ``distributed.Client``, or a scheduler address reached within :data:`SCHEDULER_TIMEOUT`
            seconds (else :class:`~sciml.errors.ConfigError` naming it).
        workers: without ``client``: processes of a ``LocalCluster`` (one thread each) started for this
            call; ``1`` runs the items in this process, one after another.
        retries: re-runs of a task that raised (a task whose worker died is re-run by the scheduler too).
        progress: a progress bar over the items.

    Returns:
        The results in the order of ``items``: JSON values as read back, datasets opened lazily from their
        files with ``xarray.open_dataset`` (the layout the function returned, without the ``sweep_*``
        attributes, with the ``Conventions`` attribute :func:`sciml.data.write` adds).

    Raises:
        ConfigError: bad keys, ``workers`` or ``retries``, an unreachable scheduler.
        DataError: a result that is neither JSON nor a dataset; a file in ``out_dir`` holding another
            item's result under the same key.
    """
    from tqdm.auto import tqdm

    keyed = _keyed(items)
    for name, value in (("workers", workers), ("retries", retries)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "workers" else 0):
            raise ConfigError(f"{name} must be an integer >= {1 if name == 'workers' else 0}, got {value!r}")
    if client is not None and workers != 1:
        raise ConfigError(f"workers={workers} and a client are both given; the client's cluster has its own workers")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{out}: cannot create the sweep directory ({err.strerror}); choose another") from None
    if isinstance(client, str):  # a refused or malformed address: one line now, before any progress bar
        _probe(client)
    done = {key for key, item in keyed.items() if _saved(out, key, item) is not None}
    calls = [dict(function=function, key=key, item=item, out_dir=str(out)) for key, item in keyed.items()
             if key not in done]
    with tqdm(total=len(keyed), desc="sweep", unit="item", disable=not progress, leave=False) as bar:
        bar.update(len(done))
        _run_tasks(_sweep_task, calls, client=client, workers=workers, retries=retries, key="sciml-sweep",
                   done=lambda call, result: bar.update(1))
    results = []
    for key, item in keyed.items():
        path = _saved(out, key, item)
        if path is None:  # written by a task that reported success: only another writer could remove it
            raise DataError(f"{out}: the result of {key!r} vanished after its task finished; run the sweep again")
        results.append(_read(path))
    return results


def _keyed(items) -> dict[str, Any]:
    if isinstance(items, Mapping):
        keyed = dict(items)
    elif isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise ConfigError(f"items must be a mapping of keys to items or a sequence, got {type(items).__name__}")
    else:
        keyed = {f"{i:05d}": item for i, item in enumerate(items)}
    for key in keyed:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ConfigError(f"sweep key {key!r} cannot be a file name; use letters, digits and _ . = + - "
                              "(not starting with . = + -)")
    return keyed


def _saved(out: Path, key: str, item) -> Path | None:
    """The file holding ``key``'s result for ``item``; ``None`` when there is none; :class:`DataError` when the file
    holds another item's result."""
    for path in (out / f"{key}.json", out / f"{key}.nc"):
        if not path.exists():
            continue
        if path.suffix == ".json":
            try:
                recorded = json.loads(path.read_text())["item"]
            except (OSError, ValueError, KeyError, TypeError):
                raise DataError(f"{path}: not a sweep result (no JSON with key, item and result); move it out") from None
        else:
            import xarray as xr

            with xr.open_dataset(path) as ds:
                recorded = ds.attrs.get("sweep_item")
        if recorded != repr(item):
            raise DataError(f"{path}: holds the result of item {recorded} under key {key!r}, not of {item!r}; use "
                            "another out_dir or remove the file")
        return path
    return None


def _read(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text())["result"]
    import xarray as xr

    ds = xr.open_dataset(path)  # as the function returned it (sciml.data.open would normalise the layout)
    for name in ("sweep_key", "sweep_item"):
        ds.attrs.pop(name, None)
    return ds


def _sweep_task(*, function: Callable, key: str, item, out_dir: str) -> str:
    """One item (runs in a dask worker): ``function(item)`` written to ``out_dir``; returns the file's path."""
    from ._atomic import write_text

    from .errors import SciMLError

    try:
        result = function(item)
    except SciMLError:
        raise
    except Exception as err:  # the user's function: one line naming the item (the traceback stays in the worker log)
        reason = (str(err).strip().splitlines() or [""])[0]
        shown = repr(item) if len(repr(item)) <= 60 else repr(item)[:57] + "..."
        raise SolverError(f"sweep item {key!r} ({shown}) failed: {type(err).__name__}: {reason}") from None
    out = Path(out_dir)
    if type(result).__name__ == "Dataset" and type(result).__module__.startswith("xarray"):
        from .data import write

        result = result.assign_attrs(sweep_key=key, sweep_item=repr(item))
        return str(write(result, out / f"{key}.nc", overwrite=True))
    try:
        text = json.dumps({"key": key, "item": repr(item), "result": result}, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise DataError(f"sweep item {key!r}: the result is neither JSON nor an xarray.Dataset ({err}); return "
                        "numbers, strings, lists and dicts, or a dataset") from None
    return str(write_text(out / f"{key}.json", text + "\n"))


def _run_tasks(function: Callable, calls: Sequence[dict], *, client=None, workers: int = 1, retries: int = 2,
              gpu: bool = False, key: str = "sciml-task", done: Callable | None = None) -> list:
    """``[function(**call) for call in calls]``, each call one dask task; results in the order of ``calls``.

    On ``client`` (a ``distributed.Client`` or a scheduler address), else on a ``LocalCluster`` of ``workers``
    one-thread processes (closed at the end), else (``workers=1``) in this process, one call after another.
    ``retries``: re-runs of a task that raised; a task whose worker died is re-run by the scheduler (a
    :class:`~sciml.errors.SolverError` when workers die under it repeatedly). ``gpu``: ask for one ``GPU``
    resource per task where the cluster's workers declare it. ``done(call, result)`` is called as each task
    finishes (in completion order). The first task to raise cancels the others and its error is raised.
    """
    if not calls:
        return []
    if client is None and workers == 1:
        results = []
        for call in calls:
            results.append(function(**call))
            if done is not None:
                done(call, results[-1])
        return results
    from distributed import as_completed

    with _dask_client(client, workers) as dask:
        resources = None
        if gpu and any("GPU" in w.get("resources", {}) for w in dask.scheduler_info()["workers"].values()):
            resources = {"GPU": 1}
        token = os.urandom(6).hex()
        futures = {dask.submit(_call, function, call, key=f"{key}-{i:06d}-{token}", pure=False, retries=retries,
                               resources=resources): i for i, call in enumerate(calls)}
        results = [None] * len(calls)
        try:
            for future in as_completed(list(futures), loop=dask.loop):
                i = futures[future]
                results[i] = _result(future)
                if done is not None:
                    done(calls[i], results[i])
        finally:
            dask.cancel(list(futures))
    return results


def _call(function: Callable, call: dict):
    """``function(**call)``: the call's keywords travel as one argument, apart from ``Client.submit``'s own."""
    return function(**call)


def _result(future):
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as err:
        raise SolverError(f"task {future.key}: the workers running it died repeatedly ({err}); it may need more "
                          "memory than a worker has, or fewer samples per chunk") from None


@contextlib.contextmanager
def _dask_client(client, workers: int):
    """A ``distributed.Client``: ``client`` itself, one connected to the address ``client`` (closed after), or one of
    a new ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)`` (both closed after).

    An address that does not answer within :data:`SCHEDULER_TIMEOUT` seconds: :class:`~sciml.errors.ConfigError`.
    """
    from distributed import Client

    if client is not None and not isinstance(client, str):
        yield client
        return
    if isinstance(client, str):
        _probe(client)
        try:
            connected = Client(client, timeout=SCHEDULER_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(f"cannot reach the dask scheduler at {client!r} within {SCHEDULER_TIMEOUT:g} s ({reason}); "
                              "check the address (tcp://HOST:PORT) and that `dask scheduler` runs there") from None
        with connected:
            yield connected
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as local:
        yield local


def _probe(address: str) -> None:
    """Fail at once (:class:`~sciml.errors.ConfigError`) where a ``tcp://`` / ``tls://`` scheduler address is malformed,
    does not resolve or refuses the connection; ``distributed.Client`` would retry those until its timeout."""
    import socket

    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    hint = "check the address (tcp://HOST:PORT) and that `dask scheduler` runs there"
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return  # inproc://, ucx://, ...: left to distributed
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{address!r} is not a dask scheduler address ({err}); {hint}") from None
    try:
        socket.create_connection((host, port), timeout=SCHEDULER_TIMEOUT).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(f"cannot reach the dask scheduler at {address!r} ({reason}); {hint}") from None


def _keep_freed_memory_in_worker() -> None:
    """In a dask worker, raise glibc's mmap and trim thresholds (:func:`sciml.allocator.keep_freed_memory`) for the
    solver or evaluation it is about to run, once.

    dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``), which
    also turns off glibc's adaptive mmap threshold: every solver temporary above 128 KiB is then mapped and
    unmapped at each step, and an ns2d chunk at 64x64 solved 5x slower in a worker than in this process
    (measured here: 3.4-4.0 s against 0.6-0.7 s). The solver's worker keeps up to 1 GiB of freed memory instead.
    Outside a worker nothing changes: the library leaves this process's allocator alone.
    """
    global _WORKER_ALLOCATOR_SET
    import sys

    if _WORKER_ALLOCATOR_SET or "distributed" not in sys.modules:  # a worker has imported distributed
        return
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):  # not in a dask worker
        return
    from .allocator import keep_freed_memory

    keep_freed_memory()
    _WORKER_ALLOCATOR_SET = True


_WORKER_ALLOCATOR_SET = False
