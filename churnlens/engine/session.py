"""One Dask run from the CLI: a client, the input staged into customer buckets, clean-up."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from churnlens.data.bounds import InputBounds
from churnlens.engine.cluster import dask_client
from churnlens.engine.dask_tables import StagedData, stage_tables


def scratch_dir(out: Path, work_dir: Path | None) -> Path:
    """Where the buckets go: ``work_dir`` if given, else a hidden directory beside ``out``.

    On a multi-machine cluster it must be a path every worker and the client see (a shared
    file system); on a LocalCluster any local directory works.
    """
    base = work_dir if work_dir is not None else out.resolve().parent
    return base / f".churnlens-work-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def dask_session(
    data_dir: str | Path,
    out: Path,
    *,
    scheduler: str | None = None,
    partitions: int | None = None,
    work_dir: Path | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    bounds: InputBounds | None = None,
) -> Iterator[tuple[Any, StagedData]]:
    """Connect (or start a LocalCluster), stage the tables (``bounds`` as for ``load_tables``);
    on exit remove the scratch files.

    Yields
    ------
    (distributed.Client, StagedData)
    """
    scratch = scratch_dir(out, work_dir)
    try:
        with dask_client(scheduler) as client:
            staged = stage_tables(client, data_dir, scratch, n_buckets=partitions, columns=columns, bounds=bounds)
            yield client, staged
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
