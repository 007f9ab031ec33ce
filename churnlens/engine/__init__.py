"""Scale-out engine: the local feature builders, training sets and scoring on a Dask cluster.

Tables are shuffled into customer buckets (a stable hash of the customer id), then the
unchanged local code runs once per bucket; only summaries (categorical levels, selection
candidates, drift counts, rank ranges) are combined across buckets. Needs the ``dask``
extra: ``pip install 'churnlens[dask]'``. See ``docs/scaling.md``.

Submodules are imported on first use, so the CLI can check ``--engine`` without loading
the scoring stack.
"""

from __future__ import annotations

import importlib
from typing import Any

from churnlens.engine.cluster import ENGINES, check_engine, dask_client, local_cluster_size

_LAZY = {
    "read_snapshot": "churnlens.engine.dask_features",
    "snapshot_to_parquet": "churnlens.engine.dask_features",
    "training_set_on_dask": "churnlens.engine.dask_training",
    "DaskSource": "churnlens.engine.dask_training",
    "DaskTrainingSet": "churnlens.engine.dask_training",
    "build_training_parts": "churnlens.engine.dask_training",
    "read_campaign": "churnlens.engine.dask_scoring",
    "score_on_dask": "churnlens.engine.dask_scoring",
    "StagedData": "churnlens.engine.dask_tables",
    "bucket_of": "churnlens.engine.dask_tables",
    "load_bucket": "churnlens.engine.dask_tables",
    "stage_tables": "churnlens.engine.dask_tables",
    "dask_session": "churnlens.engine.session",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'churnlens.engine' has no attribute {name!r}")


__all__ = ["ENGINES", "check_engine", "dask_client", "local_cluster_size", *_LAZY]
