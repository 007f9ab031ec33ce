"""Training on Dask: the training set built per customer bucket and kept on the cluster's disk.

:class:`DaskSource` is a :class:`~churnlens.training.source.TrainingSource` for
:func:`churnlens.training.train_model`: the client never loads the tables. The training set
is built by the local :func:`~churnlens.features.build_snapshot` and
:func:`~churnlens.features.build_labels` per bucket and written as one Parquet part per
bucket (:class:`DaskTrainingSet`). The run then either collects it (small sets: LightGBM
trains in the client process, exactly as locally) or trains LightGBM on the cluster with
``lightgbm.dask.DaskLGBMClassifier`` from the parts, read where they are written, and brings
only samples into the client.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnlens.config import ChurnConfig, FeatureConfig
from churnlens.engine.dask_features import (
    apply_levels,
    btyd_params_on_dask,
    categorical_levels,
    load_bucket_schema,
    merge_levels,
    with_btyd_params,
)
from churnlens.engine.dask_tables import (
    RETRIES,
    StagedData,
    bucket_file,
    bucket_has_data,
    load_bucket,
    write_parquet_atomic,
)
from churnlens.errors import InputError
from churnlens.features import build_labels, build_snapshot, label_mode
from churnlens.features import parse_cutoff as normalize_cutoff
from churnlens.features.labels import LABEL, cutoffs_between
from churnlens.model import LinearBase, prepare_features
from churnlens.training.fingerprint import tables_digest

#: Columns the LightGBM parts carry beside the features.
_Y, _INIT = "__label__", "__init_score__"


def customer_fraction(customer_id: pd.Series | pd.Index) -> np.ndarray:
    """A stable number in [0, 1) per customer id: rows with a value below f are a sample of
    whole customers (all their cutoffs), the same in every process and run."""
    text = pd.Series(np.asarray(customer_id, dtype=object), dtype=object)
    hashes = pd.util.hash_pandas_object(text, index=False, hash_key="churnlens-sample").to_numpy()
    return (hashes >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# --------------------------------------------------------------------------- tasks (run on workers)


def _write_training_part(
    bucket: int,
    staged: StagedData,
    cutoffs: Sequence[pd.Timestamp],
    horizon: int,
    mode: str,
    config: Any,
    out_dir: str,
) -> dict[str, Any]:
    """Build one bucket's training rows with the local code, write them, return levels and counts."""
    part = training_part(bucket, staged, cutoffs, horizon, mode, config)
    path = Path(out_dir) / f"part-{bucket:05d}.parquet"
    write_parquet_atomic(part.reset_index(), path)
    counts = part.index.get_level_values("cutoff").value_counts()
    return {
        "bucket": bucket,
        "levels": categorical_levels(part),
        "rows": {pd.Timestamp(c): int(n) for c, n in counts.items()},
    }


def _read_part(path: str, cutoffs: Sequence[pd.Timestamp], levels: dict[str, list[str]]) -> pd.DataFrame:
    """Rows of ``cutoffs`` in one part, indexed and typed like the local training set."""
    frame = pd.read_parquet(path, filters=[("cutoff", "in", list(cutoffs))])
    index = pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex(frame.pop("cutoff").to_numpy(dtype="datetime64[us]"), name="cutoff"),
            pd.Index(frame.pop("customer_id").astype("string"), name="customer_id"),
        ]
    )
    frame.index = index
    return apply_levels(frame, levels, string_levels=False)


def _sample_part(
    path: str, cutoffs: Sequence[pd.Timestamp], levels: dict[str, list[str]], fraction: float
) -> pd.DataFrame:
    frame = _read_part(path, cutoffs, levels)
    if fraction < 1.0:
        keep = customer_fraction(frame.index.get_level_values("customer_id")) < fraction
        frame = frame[keep]
    return frame


def _lightgbm_part(
    path: str,
    cutoffs: Sequence[pd.Timestamp],
    levels: dict[str, list[str]],
    metadata: dict[str, Any],
    linear: dict[str, Any] | None,
) -> pd.DataFrame:
    """One part as LightGBM reads it: the model's prepared features, the label, the init score."""
    frame = _read_part(path, cutoffs, levels)
    X = prepare_features(frame, metadata).reset_index(drop=True)
    X[_Y] = frame[LABEL].to_numpy(dtype=np.int64)
    base = LinearBase.from_dict(linear) if linear is not None else None
    X[_INIT] = base.margin(X) if base is not None else 0.0
    return X


def _concat(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


def _empty_like(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


class _RankedClient:
    """A client whose ``who_has`` lists data by its workers' rank (name order).

    lightgbm.dask numbers its machines in the order ``who_has`` returns the data, which
    varies from call to call; the machine order sets the order of the reductions, so the
    same data would give a slightly different model each run. Everything else is the
    wrapped client's.
    """

    def __init__(self, client: Any, rank: dict[str, int]) -> None:
        self._client, self._rank = client, rank

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def who_has(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        found = self._client.who_has(*args, **kwargs)
        last = len(self._rank)
        return dict(sorted(found.items(), key=lambda kv: min((self._rank.get(w, last) for w in kv[1]), default=last)))


def _bucket_digest(bucket: int, staged: StagedData) -> str:
    """SHA-256 of one bucket's validated tables (as :func:`data_fingerprint` hashes tables)."""
    return tables_digest(load_bucket(staged, bucket))


# --------------------------------------------------------------------------- the training set


@dataclass
class DaskTrainingSet:
    """Training rows written per customer bucket (``part-NNNNN.parquet`` under ``root``).

    Attributes
    ----------
    rows_by_part : dict
        Rows per cutoff of each part.
    levels : dict
        Global categorical levels (sorted union over parts).
    """

    client: Any
    root: Path
    rows_by_part: dict[int, dict[pd.Timestamp, int]]
    levels: dict[str, list[str]]

    def _parts(self, cutoffs: Sequence[pd.Timestamp]) -> list[tuple[str, int]]:
        wanted = {normalize_cutoff(c) for c in cutoffs}
        out = []
        for bucket, rows in sorted(self.rows_by_part.items()):
            n = sum(v for c, v in rows.items() if c in wanted)
            if n:
                out.append((str(self.root / f"part-{bucket:05d}.parquet"), n))
        return out

    def rows(self, cutoffs: Sequence[pd.Timestamp]) -> int:
        """Rows of these cutoffs over all parts."""
        return int(sum(n for _, n in self._parts(cutoffs)))

    def collect(self, cutoffs: Sequence[pd.Timestamp], *, max_rows: int | None = None) -> pd.DataFrame:
        """The rows of ``cutoffs`` here, equal to :func:`build_training_set`'s (sorted by cutoff,
        customer_id); above ``max_rows``, about that many rows of a sample of whole customers."""
        cutoffs = sorted({normalize_cutoff(c) for c in cutoffs})
        parts = self._parts(cutoffs)
        total = sum(n for _, n in parts)
        fraction = 1.0 if max_rows is None or total <= max_rows else max_rows / total
        futures = [
            self.client.submit(_sample_part, path, cutoffs, self.levels, fraction, pure=False, retries=RETRIES)
            for path, _ in parts
        ]
        frames = self.client.gather(futures)
        if not frames:
            raise InputError(f"no training rows at cutoffs {[str(c.date()) for c in cutoffs]}")
        return pd.concat(frames, axis=0).sort_index(kind="stable")

    def fit_lightgbm(
        self,
        cutoffs: Sequence[pd.Timestamp],
        params: dict[str, Any],
        *,
        metadata: dict[str, Any],
        linear: LinearBase | None,
        rounds: int,
    ) -> lgb.Booster:
        """``rounds`` trees of LightGBM on the cluster (``DaskLGBMClassifier``, data-parallel).

        Reproducible on the same data and workers: part i is read and prepared on worker
        ``i % n`` (workers sorted by name), each worker's parts become one partition in part
        order, and lightgbm.dask ranks the workers in name order (:class:`_RankedClient`).
        Rank order and row order both change a data-parallel LightGBM model.
        """
        import dask.dataframe as dd

        cutoffs = sorted({normalize_cutoff(c) for c in cutoffs})
        parts = self._parts(cutoffs)
        workers = sorted(
            self.client.scheduler_info()["workers"].items(), key=lambda kv: str(kv[1].get("name", kv[0]))
        )
        addresses = [address for address, _ in workers]
        if not addresses:
            raise RuntimeError("the Dask cluster has no workers")
        linear_dict = linear.to_dict() if linear is not None else None
        pieces = [
            self.client.submit(
                _lightgbm_part, path, cutoffs, self.levels, metadata, linear_dict,
                workers=[addresses[i % len(addresses)]], allow_other_workers=False, pure=False,
                retries=RETRIES,
            )  # fmt: skip
            for i, (path, _) in enumerate(parts)
        ]
        per_worker = [
            self.client.submit(
                _concat, *pieces[w :: len(addresses)], workers=[address], allow_other_workers=False, pure=False
            )
            for w, address in enumerate(addresses)
            if pieces[w :: len(addresses)]
        ]
        meta = self.client.submit(_empty_like, per_worker[0], pure=False).result()
        frame = dd.from_delayed(per_worker, meta=meta, verify_meta=False)
        features = list(metadata["features"])
        ranked = _RankedClient(self.client, {address: i for i, address in enumerate(addresses)})
        model = lgb.DaskLGBMClassifier(client=ranked, **sklearn_params(params, rounds))
        model.fit(frame[features], frame[_Y], init_score=frame[_INIT] if linear is not None else None)
        return lgb.Booster(model_str=model.booster_.model_to_string())

    def remove(self) -> None:
        """Delete the parts."""
        shutil.rmtree(self.root, ignore_errors=True)


def sklearn_params(params: dict[str, Any], rounds: int) -> dict[str, Any]:
    """The ``lgb.train`` parameters of :meth:`LightGBMParams.to_lgb` in the scikit-learn wrapper's names."""
    renamed = {
        "feature_fraction": "colsample_bytree",
        "bagging_fraction": "subsample",
        "bagging_freq": "subsample_freq",
        "lambda_l2": "reg_lambda",
        "seed": "random_state",
    }
    out = {renamed.get(k, k): v for k, v in params.items() if k not in ("metric", "num_threads")}
    out["n_estimators"] = int(rounds)
    out["tree_learner"] = "data"
    return out


# --------------------------------------------------------------------------- the source


class DaskSource:
    """A :class:`~churnlens.training.source.TrainingSource` over tables staged on a cluster.

    Parameters
    ----------
    client : distributed.Client
    staged : StagedData
        From :func:`churnlens.engine.stage_tables`.
    """

    def __init__(self, client: Any, staged: StagedData) -> None:
        self.client = client
        self.staged = staged

    def table_names(self) -> list[str]:
        return sorted(self.staged.tables)

    def label_mode(self, mode: str) -> str:
        return label_mode(load_bucket_schema(self.staged), mode)

    def cutoffs(self, *, horizon_days: int, step_days: int, min_history_days: int) -> list[pd.Timestamp]:
        return cutoffs_between(
            self.staged.data_start,
            self.staged.data_end,
            horizon_days=horizon_days,
            step_days=step_days,
            min_history_days=min_history_days,
        )

    def data_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.staged.data_start, self.staged.data_end

    def btyd_params(self, cutoff: pd.Timestamp) -> tuple[float, float, float, float]:
        return btyd_params_on_dask(self.client, self.staged, [cutoff])[normalize_cutoff(cutoff)]

    def fingerprint(self) -> dict[str, Any]:
        """Row counts, date range, and a SHA-256 over the per-bucket hashes in bucket order (same
        data and bucket count: same hash; it differs from the local engine's)."""
        digests = self.client.gather(
            self.client.map(
                _bucket_digest,
                [b for b in range(self.staged.n_buckets) if bucket_file(self.staged.root, "purchases", b).is_file()],
                staged=self.staged, pure=False, retries=RETRIES,
            )  # fmt: skip
        )
        rows = {
            name: summary.rows_out
            for name, summary in self.staged.report.tables.items()
            if name in self.staged.tables
        }
        return {
            "rows": rows,
            "start": str(self.staged.data_start),
            "end": str(self.staged.data_end),
            "hash": hashlib.sha256("".join(digests).encode()).hexdigest(),
            "buckets": self.staged.n_buckets,
        }

    def training_set(
        self,
        *,
        cutoffs: Sequence[pd.Timestamp],
        horizon_days: int,
        config: ChurnConfig,
        progress: Callable[[int, int], None] | None = None,
    ) -> DaskTrainingSet:
        return build_training_parts(
            self.client, self.staged, cutoffs=cutoffs, horizon_days=horizon_days, config=config, progress=progress
        )


def build_training_parts(
    client: Any,
    staged: StagedData,
    *,
    cutoffs: Sequence[str | pd.Timestamp],
    horizon_days: int,
    config: ChurnConfig = ChurnConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> DaskTrainingSet:
    """Write the training set of :func:`churnlens.features.build_training_set` per bucket.

    The cutoffs' horizons are checked against the end of the whole data (not a bucket's).
    The parts go under the staged directory (``training-<id>/``), removed with it.
    """
    from distributed import as_completed

    horizon = int(horizon_days)
    mode = label_mode(load_bucket_schema(staged), config.labels.mode)
    cutoffs = sorted({normalize_cutoff(c) for c in cutoffs})
    if not cutoffs:
        raise InputError("no cutoffs given for the training set")
    until = staged.data_end.floor("D") + pd.Timedelta(days=1)
    for c in cutoffs:
        if c + pd.Timedelta(days=horizon) > until:
            raise InputError(
                f"cutoff {c} has no full {horizon}-day horizon of future data: the data ends at "
                f"{staged.data_end} (latest usable cutoff: {until - pd.Timedelta(days=horizon)})"
            )
    root = Path(staged.root) / f"training-{uuid.uuid4().hex[:8]}"
    per_cutoff = with_btyd_params(client, staged, cutoffs, config.features)
    futures = client.map(
        _write_training_part,
        range(staged.n_buckets),
        staged=staged, cutoffs=cutoffs, horizon=horizon, mode=mode, config=per_cutoff,
        out_dir=str(root), pure=False, retries=RETRIES,
    )  # fmt: skip
    found: list[dict[str, Any]] = []
    for done, (_, result) in enumerate(as_completed(futures, with_results=True), start=1):
        found.append(result)
        if progress is not None:
            progress(done, len(futures))
    found.sort(key=lambda r: r["bucket"])
    return DaskTrainingSet(
        client=client,
        root=root,
        rows_by_part={r["bucket"]: r["rows"] for r in found},
        levels=merge_levels([r["levels"] for r in found]),
    )


# --------------------------------------------------------------------------- training sets


def training_part(
    bucket: int,
    staged: StagedData,
    cutoffs: Sequence[pd.Timestamp],
    horizon: int,
    mode: str,
    config: FeatureConfig | dict[pd.Timestamp, FeatureConfig],
) -> pd.DataFrame:
    """One bucket's rows of the training set: the local snapshot and labels at every cutoff
    (``config`` per cutoff when it is a dict, see :func:`~churnlens.engine.dask_features.with_btyd_params`)."""
    tables = load_bucket(staged, bucket) if bucket_has_data(staged, bucket) else load_bucket_schema(staged)
    frames = []
    for c in cutoffs:
        snap = build_snapshot(tables, c, config[c] if isinstance(config, dict) else config)
        snap[LABEL] = build_labels(tables, c, snap.index, horizon_days=horizon, mode=mode).to_numpy()
        snap.index = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex(np.full(len(snap), c.to_datetime64()), name="cutoff"), snap.index],
            names=["cutoff", "customer_id"],
        )
        frames.append(snap)
    levels = merge_levels([categorical_levels(f) for f in frames])
    return pd.concat([apply_levels(f, levels, string_levels=False) for f in frames], axis=0)


def training_set_on_dask(
    client: Any,
    staged: StagedData,
    *,
    cutoffs: Sequence[str | pd.Timestamp],
    horizon_days: int,
    config: ChurnConfig = ChurnConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The training set of :func:`churnlens.features.build_training_set`, built per bucket and
    collected here (see :func:`build_training_parts`).

    Returns
    -------
    DataFrame
        Equal to the local training set: MultiIndex (cutoff, customer_id) sorted, snapshot
        columns then ``churned``; categoricals with the sorted union of levels.
    """
    parts = build_training_parts(
        client, staged, cutoffs=cutoffs, horizon_days=horizon_days, config=config, progress=progress
    )
    try:
        return parts.collect(cutoffs)
    finally:
        parts.remove()
