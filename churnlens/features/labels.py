"""Churn labels and training sets (DESIGN §3).

Labels are built apart from features, from the same cutoffs, and joined only here:

- non-contractual: churned = no purchase (``amount >= 0``) in ``[C, C + H)``;
- contractual: churned = a cancellation in ``[C, C + H)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from churnlens.config import ChurnConfig
from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.features.kernels import customer_index, normalize_cutoff
from churnlens.features.snapshot import build_snapshot

LABEL = "churned"
MODES = ("auto", "contractual", "non_contractual")


def label_mode(tables: Tables, mode: str = "auto") -> str:
    """Resolve the label mode: ``auto`` is contractual when a cancellations table exists.

    Raises
    ------
    ValueError
        For an unknown mode, or contractual without a cancellations table.
    """
    if mode not in MODES:
        raise InputError(f"label mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        return "contractual" if tables.cancellations is not None else "non_contractual"
    if mode == "contractual" and tables.cancellations is None:
        raise InputError("contractual labels need a cancellations table, and these tables have none")
    return mode


def observed_until(tables: Any) -> pd.Timestamp:
    """End of observed history: midnight after the day of the last event.

    This is what "no cutoff" means everywhere (scoring, explaining, the API with posted
    events, the latest labelled cutoff): score "today" for the data as delivered.
    ``tables`` is anything with a ``data_end`` (validated :class:`Tables`, staged buckets).
    """
    return pd.Timestamp(tables.data_end).floor("D") + pd.Timedelta(days=1)


def build_labels(
    tables: Tables,
    cutoff: str | pd.Timestamp,
    customers: pd.Index,
    *,
    horizon_days: int = 90,
    mode: str = "auto",
) -> pd.Series:
    """Churn label of each customer at a cutoff.

    Parameters
    ----------
    tables : Tables
    cutoff : str or Timestamp
        Start of the horizon (inclusive).
    customers : Index
        Customers to label (usually the snapshot's index).
    horizon_days : int
        The horizon ``[cutoff, cutoff + horizon_days)``, end exclusive.
    mode : {"auto", "non_contractual", "contractual"}

    Returns
    -------
    Series
        int8, 1 = churned, named ``churned``, indexed like ``customers``.
    """
    if int(horizon_days) <= 0:
        raise InputError(f"horizon_days must be positive, got {horizon_days}")
    cutoff = normalize_cutoff(cutoff)
    end = cutoff + pd.Timedelta(days=int(horizon_days))
    mode = label_mode(tables, mode)
    table = tables.cancellations if mode == "contractual" else tables.purchases
    ts = table["timestamp"]
    mask = (ts >= cutoff) & (ts < end)
    if mode == "non_contractual":
        mask &= table["amount"] >= 0
    ids = customer_index(table.loc[mask.to_numpy(dtype=bool, na_value=False), "customer_id"])
    seen = pd.Index(customers).astype("string").isin(ids)
    churned = seen if mode == "contractual" else ~seen
    return pd.Series(churned.astype(np.int8), index=customers, name=LABEL)


def training_cutoffs(
    tables: Tables, *, horizon_days: int = 90, step_days: int = 30, min_history_days: int = 90
) -> list[pd.Timestamp]:
    """Cutoffs with a full horizon of future data, spaced by ``step_days``, ascending.

    The latest is ``floor_day(data_end) + 1 day - horizon`` (so ``[C, C + H)`` is fully
    observed); earlier ones step back while at least ``min_history_days`` of history
    remain after ``data_start``.

    Raises
    ------
    ValueError
        When the data is too short for even one cutoff.
    """
    return cutoffs_between(
        tables.data_start,
        tables.data_end,
        horizon_days=horizon_days,
        step_days=step_days,
        min_history_days=min_history_days,
    )


def cutoffs_between(
    data_start: pd.Timestamp,
    data_end: pd.Timestamp,
    *,
    horizon_days: int = 90,
    step_days: int = 30,
    min_history_days: int = 90,
) -> list[pd.Timestamp]:
    """:func:`training_cutoffs` of data whose first and last events are ``data_start``, ``data_end``."""
    if step_days <= 0 or horizon_days <= 0 or min_history_days < 0:
        raise InputError("horizon_days and step_days must be positive and min_history_days not negative")
    latest = data_end.floor("D") + pd.Timedelta(days=1) - pd.Timedelta(days=int(horizon_days))
    earliest = data_start + pd.Timedelta(days=int(min_history_days))
    cutoffs = []
    c = latest
    while c >= earliest:
        cutoffs.append(c.as_unit("us"))
        c = c - pd.Timedelta(days=int(step_days))
    if not cutoffs:
        missing = -((latest - earliest) // pd.Timedelta(days=1))  # whole days, rounded up
        raise InputError(
            f"the data ({data_start} to {data_end}) is too short for a training cutoff: it needs "
            f"{min_history_days} days of history plus a {horizon_days}-day horizon, {missing} more days of data"
        )
    return sorted(cutoffs)


def _unify_categories(frames: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    cats = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    out = [f.copy() for f in frames]
    for col in cats:
        levels = sorted(set().union(*(set(f[col].cat.categories) for f in frames)))
        for f in out:
            f[col] = f[col].cat.set_categories(levels)
    return out


def build_training_set(
    tables: Tables,
    *,
    cutoffs: Sequence[str | pd.Timestamp] | None = None,
    step_days: int = 30,
    horizon_days: int | None = None,
    config: ChurnConfig = ChurnConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Snapshots at many cutoffs with their labels, stacked.

    Parameters
    ----------
    tables : Tables
    cutoffs : sequence, optional
        Cutoffs to use; default :func:`training_cutoffs` with ``step_days``.
    step_days : int
        Spacing of the default cutoffs.
    horizon_days : int, optional
        Label horizon; default ``config.labels.horizon_days`` (90).
    config : ChurnConfig
        Feature settings and label mode.
    progress : callable, optional
        Called as ``progress(done, total)`` after each cutoff.

    Returns
    -------
    DataFrame
        MultiIndex (cutoff, customer_id), the snapshot columns, then ``churned`` (int8).
        Categoricals share the union of their levels across cutoffs (sorted).

    Raises
    ------
    ValueError
        When a cutoff lacks a full horizon of future data.
    """
    horizon = int(horizon_days if horizon_days is not None else config.labels.horizon_days)
    mode = label_mode(tables, config.labels.mode)
    if cutoffs is None:
        cutoffs = training_cutoffs(tables, horizon_days=horizon, step_days=step_days)
    cutoffs = sorted({normalize_cutoff(c) for c in cutoffs})
    if not cutoffs:
        raise InputError("no cutoffs given for the training set")
    until = observed_until(tables)
    for c in cutoffs:
        if c + pd.Timedelta(days=horizon) > until:
            raise InputError(
                f"cutoff {c} has no full {horizon}-day horizon of future data: it needs data up to "
                f"{c + pd.Timedelta(days=horizon)}, but the data ends at {tables.data_end} "
                f"(latest usable cutoff: {until - pd.Timedelta(days=horizon)})"
            )
    frames = []
    for i, c in enumerate(cutoffs):
        snap = build_snapshot(tables, c, config.features)
        snap[LABEL] = build_labels(tables, c, snap.index, horizon_days=horizon, mode=mode).to_numpy()
        snap.index = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex(np.full(len(snap), c.to_datetime64()), name="cutoff"), snap.index],
            names=["cutoff", "customer_id"],
        )
        frames.append(snap)
        if progress is not None:
            progress(i + 1, len(cutoffs))
    return pd.concat(_unify_categories(frames), axis=0)
