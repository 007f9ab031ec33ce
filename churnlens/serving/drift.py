"""Drift of a scored snapshot against the training reference: PSI per feature and for the score."""

from __future__ import annotations

import pandas as pd

from churnlens.errors import InputError
from churnlens.model import ChurnModel
from churnlens.monitoring import PSI_ALERT
from churnlens.serving.core import DRIFT_COLUMNS, SCORE_COLUMN, PartitionCounts, drift_counts, drift_table

__all__ = ["DRIFT_COLUMNS", "SCORE_COLUMN", "drift_report"]


def drift_report(
    model: ChurnModel,
    snapshot: pd.DataFrame,
    scores: pd.Series | None = None,
    *,
    threshold: float = PSI_ALERT,
) -> pd.DataFrame:
    """Population stability of every model feature and of the score, highest PSI first.

    Parameters
    ----------
    model : ChurnModel
        Its metadata's ``reference`` holds the training statistics (including
        ``churn_probability``).
    snapshot : DataFrame
        The scored snapshot.
    scores : Series, optional
        Churn probabilities aligned with ``snapshot`` (compared with the training scores).
    threshold : float
        PSI above which a row is ``flagged`` (default 0.25, the usual "major shift").

    Returns
    -------
    DataFrame
        Columns feature, psi, status (stable / moderate / major), flagged.
    """
    if threshold < 0:
        raise InputError(f"PSI threshold must be non-negative, got {threshold}")
    probability = None if scores is None else pd.Series(scores).to_numpy(dtype="float64")
    counts = PartitionCounts(scored=len(snapshot), drift=drift_counts(model, snapshot, probability))
    return drift_table(model, counts, threshold)
