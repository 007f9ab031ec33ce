"""Where a training run gets its data: tables in this process, or a distributed engine.

:func:`churnlens.training.train_model` asks a :class:`TrainingSource` for the label mode, the
cutoffs, a data fingerprint and the stacked training set. :class:`LocalSource` wraps
validated :class:`~churnlens.data.Tables`; ``churnlens.engine.DaskSource`` builds the same
rows per customer bucket on a Dask cluster and may keep them there
(:class:`DistributedTrainingSet`), so LightGBM can train on the cluster too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import lightgbm as lgb
import pandas as pd

from churnlens.config import ChurnConfig
from churnlens.data.tables import Tables
from churnlens.features import build_training_set, label_mode, training_cutoffs
from churnlens.features.btyd import UNFITTED, fit_bgnbd, purchase_day_summary
from churnlens.model import LinearBase
from churnlens.training.fingerprint import data_fingerprint

RowsProgress = Callable[[int, int], None]


@runtime_checkable
class DistributedTrainingSet(Protocol):
    """Training rows kept on a cluster: counted, collected (or sampled), and trained on in place."""

    def rows(self, cutoffs: Sequence[pd.Timestamp]) -> int:
        """Rows of these cutoffs."""
        ...

    def collect(self, cutoffs: Sequence[pd.Timestamp], *, max_rows: int | None = None) -> pd.DataFrame:
        """The rows of these cutoffs in this process, like :func:`build_training_set` gives them;
        with ``max_rows``, a sample of whole customers (deterministic) of about that many rows."""
        ...

    def fit_lightgbm(
        self,
        cutoffs: Sequence[pd.Timestamp],
        params: dict[str, Any],
        *,
        metadata: dict[str, Any],
        linear: LinearBase | None,
        rounds: int,
    ) -> lgb.Booster:
        """LightGBM with ``params`` for ``rounds`` trees on the rows of ``cutoffs``, on the cluster."""
        ...


class TrainingSource(Protocol):
    """What a training run needs of its data."""

    def table_names(self) -> list[str]:
        """Tables present, sorted."""
        ...

    def label_mode(self, mode: str) -> str:
        """``mode`` resolved (``auto`` is contractual when cancellations exist)."""
        ...

    def cutoffs(self, *, horizon_days: int, step_days: int, min_history_days: int) -> list[pd.Timestamp]:
        """Cutoffs with a full horizon of future data (:func:`training_cutoffs`)."""
        ...

    def data_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last event time over all event tables."""
        ...

    def btyd_params(self, cutoff: pd.Timestamp) -> tuple[float, float, float, float]:
        """BG/NBD population parameters fitted on every customer's purchases before ``cutoff``
        (:data:`~churnlens.features.btyd.UNFITTED` when the fit fails)."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """Row counts, date range and content hash (:func:`data_fingerprint`)."""
        ...

    def training_set(
        self,
        *,
        cutoffs: Sequence[pd.Timestamp],
        horizon_days: int,
        config: ChurnConfig,
        progress: RowsProgress | None = None,
    ) -> pd.DataFrame | DistributedTrainingSet:
        """The stacked training set (MultiIndex cutoff, customer_id; features then ``churned``)."""
        ...


@dataclass
class LocalSource:
    """Validated tables in this process (:func:`build_training_set` makes the training set)."""

    tables: Tables

    def table_names(self) -> list[str]:
        return sorted(self.tables.present())

    def label_mode(self, mode: str) -> str:
        return label_mode(self.tables, mode)

    def cutoffs(self, *, horizon_days: int, step_days: int, min_history_days: int) -> list[pd.Timestamp]:
        return training_cutoffs(
            self.tables, horizon_days=horizon_days, step_days=step_days, min_history_days=min_history_days
        )

    def data_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.tables.data_start, self.tables.data_end

    def btyd_params(self, cutoff: pd.Timestamp) -> tuple[float, float, float, float]:
        params = fit_bgnbd(purchase_day_summary(self.tables.purchases, cutoff))
        return UNFITTED if params is None else params.as_tuple()

    def fingerprint(self) -> dict[str, Any]:
        return data_fingerprint(self.tables)

    def training_set(
        self,
        *,
        cutoffs: Sequence[pd.Timestamp],
        horizon_days: int,
        config: ChurnConfig,
        progress: RowsProgress | None = None,
    ) -> pd.DataFrame:
        return build_training_set(
            self.tables, cutoffs=cutoffs, horizon_days=horizon_days, config=config, progress=progress
        )
