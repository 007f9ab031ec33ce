"""Simple baselines trained on the same rows as the model: recency alone, and RFM logistic regression."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

#: Columns each baseline reads from the snapshot.
RECENCY_FEATURES: tuple[str, ...] = ("days_since_last_purchase",)
RFM_FEATURES: tuple[str, ...] = ("days_since_last_purchase", "purchase_count_365d", "spend_365d")
#: Stand-ins for the 365-day columns when a run leaves that window out: with less than a year of
#: history before every training cutoff they hold the same values.
RFM_STAND_INS: dict[str, str] = {"purchase_count_365d": "purchase_count_lifetime", "spend_365d": "spend_lifetime"}


def rfm_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """The RFM columns present among ``columns``, a 365-day column replaced by its lifetime
    stand-in when the run has no 365-day window."""
    present = set(columns)
    chosen = (f if f in present else RFM_STAND_INS.get(f, f) for f in RFM_FEATURES)
    return tuple(f for f in chosen if f in present)


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class LogisticBaseline:
    """Logistic regression on a few snapshot columns (log-scaled, standardised, NaN -> median).

    Parameters
    ----------
    features : tuple of str
        Snapshot columns used.
    """

    features: tuple[str, ...]
    pipeline_: Pipeline | None = field(default=None, init=False)
    medians_: pd.Series | None = field(default=None, init=False)

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"baseline needs snapshot columns {missing}, which the training set lacks")
        X = frame[list(self.features)].astype("float64")
        return X.fillna(self.medians_).to_numpy()

    def fit(self, frame: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LogisticBaseline:
        """Fit on training rows (optionally weighted); returns self."""
        self.medians_ = frame[list(self.features)].astype("float64").median()
        self.pipeline_ = make_pipeline(
            FunctionTransformer(_signed_log1p), StandardScaler(), LogisticRegression(max_iter=1000)
        )
        fit_params = {} if sample_weight is None else {"logisticregression__sample_weight": sample_weight}
        self.pipeline_.fit(self._matrix(frame), np.asarray(y, dtype=int), **fit_params)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probability per row."""
        if self.pipeline_ is None:
            raise RuntimeError("This LogisticBaseline is not fitted yet; call fit first.")
        return self.pipeline_.predict_proba(self._matrix(frame))[:, 1]


def fit_baselines(
    train: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> dict[str, LogisticBaseline]:
    """Both baselines fitted on the training rows (with the model's row weights, if any).

    Returns
    -------
    dict
        ``{"recency": ..., "rfm_logistic": ...}``
    """
    return {
        "recency": LogisticBaseline(RECENCY_FEATURES).fit(train, y, sample_weight),
        "rfm_logistic": LogisticBaseline(rfm_columns(train.columns)).fit(train, y, sample_weight),
    }
