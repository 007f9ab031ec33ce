"""Drift of a scored snapshot against the training reference: PSI per feature and for the score."""

from __future__ import annotations

import pandas as pd

from churnlens.model import ChurnModel
from churnlens.monitoring import PSI_ALERT, population_stability

SCORE_COLUMN = "churn_probability"
DRIFT_COLUMNS = ["feature", "psi", "status", "flagged"]


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
        Its ``metadata["reference"]`` holds the training statistics (including
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
        raise ValueError(f"PSI threshold must be non-negative, got {threshold}")
    reference = model.metadata.get("reference", {})
    wanted = [f for f in model.features if f in reference and f in snapshot.columns]
    frame = snapshot[wanted].reset_index(drop=True)
    if scores is not None and SCORE_COLUMN in reference:
        frame = frame.assign(**{SCORE_COLUMN: pd.Series(scores).to_numpy()})
    table = population_stability({k: reference[k] for k in frame.columns}, frame)
    table["flagged"] = table["psi"] > threshold
    return table[DRIFT_COLUMNS]
