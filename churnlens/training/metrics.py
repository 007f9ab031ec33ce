"""Evaluation metrics: ranking, calibration, lift and campaign profit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from churnlens.training.config import CampaignEconomics


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> float:
    """Expected calibration error over equal-frequency bins of the predicted probability.

    Parameters
    ----------
    y : array of {0, 1}
    p : array of float
        Predicted probabilities.
    bins : int
        Number of quantile bins.

    Returns
    -------
    float
        Row-weighted mean of |mean(p) - mean(y)| per bin.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    gaps = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            gaps += len(chunk) * abs(p[chunk].mean() - y[chunk].mean())
    return float(gaps / len(y))


def lift_table(y: np.ndarray, score: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Cumulative gain and lift by score decile (highest scores first).

    Returns
    -------
    DataFrame
        Columns depth (share contacted), churn_rate, lift, capture (share of churners found).
    """
    y = np.asarray(y, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    n, total = len(y), y.sum()
    rows = []
    for k in range(1, bins + 1):
        top = order[: int(round(n * k / bins))]
        rate = y[top].mean() if len(top) else np.nan
        rows.append(
            {
                "depth": k / bins,
                "churn_rate": rate,
                "lift": rate / y.mean() if y.mean() > 0 else np.nan,
                "capture": y[top].sum() / total if total > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def profit_curve(y: np.ndarray, score: np.ndarray, economics: CampaignEconomics) -> pd.DataFrame:
    """Realised campaign profit when contacting the top-k customers, for every k.

    Profit(k) = save_rate x value x (churners among the top k) - cost x k.

    Returns
    -------
    DataFrame
        Columns contacted, churners_reached, profit.
    """
    y = np.asarray(y, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    reached = np.concatenate([[0.0], np.cumsum(y[order])])
    contacted = np.arange(len(y) + 1)
    profit = economics.save_rate * economics.value_per_saved_customer * reached - economics.cost_per_contact * contacted
    return pd.DataFrame({"contacted": contacted, "churners_reached": reached, "profit": profit})


def evaluate(y: np.ndarray, p: np.ndarray, economics: CampaignEconomics) -> dict[str, float]:
    """All test metrics for one scorer.

    Parameters
    ----------
    y : array of {0, 1}
        Observed churn labels.
    p : array of float
        Predicted churn probabilities (or any score for ranking-only metrics).
    economics : CampaignEconomics

    Returns
    -------
    dict
        roc_auc, pr_auc, brier, log_loss, ece, top_decile_lift, top_decile_capture,
        best_profit, best_depth (share of base contacted at the best profit), base_rate, n.
    """
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    lift = lift_table(y, p)
    profit = profit_curve(y, p, economics)
    best = int(profit["profit"].to_numpy().argmax())
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": float(lift["lift"].iloc[0]),
        "top_decile_capture": float(lift["capture"].iloc[0]),
        "best_profit": float(profit["profit"].iloc[best]),
        "best_depth": float(best / len(y)),
        "base_rate": float(y.mean()),
        "n": float(len(y)),
    }
