"""Connect to a Dask cluster, or start a local one sized to this machine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from churnlens.errors import InputError

ENGINES = ("local", "dask")


def check_engine(engine: str, scheduler: str | None = None) -> str:
    """Validate ``--engine`` (and that ``--scheduler`` is only given with ``dask``)."""
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if scheduler and engine != "dask":
        raise InputError("--scheduler only applies with --engine dask")
    return engine


def require_distributed() -> None:
    """Raise a clear error when dask.distributed is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError("--engine dask needs dask.distributed: pip install 'churnlens[dask]'") from None


def machine_memory_bytes() -> int:
    """Physical memory of this machine (bytes)."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def local_cluster_size(n_workers: int | None = None) -> dict[str, Any]:
    """LocalCluster settings for this machine: one single-threaded worker process per core.

    Each worker gets an equal share of 80 % of the physical memory (Dask spills to disk at
    60 % of it and pauses at 80 %), leaving room for the client and the OS.
    """
    cores = os.cpu_count() or 1
    workers = int(n_workers or cores)
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "memory_limit": int(machine_memory_bytes() * 0.8 / workers),
    }


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None, *, n_workers: int | None = None, timeout_s: float = 60.0
) -> Iterator[Any]:
    """A ``distributed.Client``: connected to ``scheduler``, or to a new LocalCluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). None starts a LocalCluster of
        worker processes bound to 127.0.0.1, without a dashboard, closed on exit.
    n_workers : int, optional
        Workers of the LocalCluster (default: one per core).
    timeout_s : float
        How long to wait for the scheduler to answer.

    Yields
    ------
    distributed.Client
    """
    require_distributed()
    from distributed import Client, LocalCluster

    cluster = None
    client = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=timeout_s)
        else:
            cluster = LocalCluster(
                processes=True, host="127.0.0.1", dashboard_address=None, **local_cluster_size(n_workers)
            )
            client = Client(cluster, timeout=timeout_s)
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
