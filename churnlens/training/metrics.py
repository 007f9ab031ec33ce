"""Evaluation metrics: ranking, calibration, lift and campaign profit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from churnlens.config import Economics


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


def profit_curve(
    y: np.ndarray, score: np.ndarray, economics: Economics, values: np.ndarray | None = None
) -> pd.DataFrame:
    """Realised campaign profit when contacting the top-k customers, for every k.

    Profit(k) = save_rate x (value of the churners among the top k) - cost x k, the value of a
    customer being ``economics.value_per_save`` or, when that is None, the customer's own
    ``values`` (as in serving: trailing-12-month spend by default).

    Returns
    -------
    DataFrame
        Columns contacted, churners_reached, profit.
    """
    y = np.asarray(y, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    if economics.value_per_save is None and values is None:
        raise ValueError("profit_curve needs the customers' values when economics.value_per_save is None")
    value = np.broadcast_to(economics.values(values), y.shape)
    reached = np.concatenate([[0.0], np.cumsum(y[order])])
    saved_value = np.concatenate([[0.0], np.cumsum((y * value)[order])])
    contacted = np.arange(len(y) + 1)
    profit = economics.save_rate * saved_value - economics.cost_per_contact * contacted
    return pd.DataFrame({"contacted": contacted, "churners_reached": reached, "profit": profit})


def customer_values_of(X: pd.DataFrame) -> np.ndarray | None:
    """Each row's customer value as serving defines it: trailing-12-month spend (``spend_365d``);
    without it, ``spend_lifetime`` (the same figure when a run leaves the 365-day window out for a
    history shorter than a year), else the spend over the longest window; None without a spend column."""
    import re

    windows = {int(m.group(1)): c for c in X.columns if (m := re.fullmatch(r"spend_(\d+)d", str(c)))}
    if "spend_lifetime" in X.columns:
        windows.setdefault(365, "spend_lifetime")
    if not windows:
        return None
    column = windows.get(365, windows[max(windows)])
    return pd.to_numeric(X[column], errors="coerce").to_numpy(dtype="float64")


def evaluate(
    y: np.ndarray, p: np.ndarray, economics: Economics, values: np.ndarray | None = None
) -> dict[str, float]:
    """All test metrics for one scorer.

    Parameters
    ----------
    y : array of {0, 1}
        Observed churn labels.
    p : array of float
        Predicted churn probabilities (or any score for ranking-only metrics).
    economics : Economics
    values : array of float, optional
        Each customer's value, used when ``economics.value_per_save`` is None.

    Returns
    -------
    dict
        roc_auc, pr_auc, brier, log_loss, ece, top_decile_lift, top_decile_capture,
        best_profit, best_depth (share of base contacted at the best profit), base_rate, n.
    """
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    lift = lift_table(y, p)
    if economics.value_per_save is None and values is None:  # no value to price a save with
        best_profit, best_depth = float("nan"), float("nan")
    else:
        profit = profit_curve(y, p, economics, values)
        best = int(profit["profit"].to_numpy().argmax())
        best_profit, best_depth = float(profit["profit"].iloc[best]), float(best / len(y))
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": float(lift["lift"].iloc[0]),
        "top_decile_capture": float(lift["capture"].iloc[0]),
        "best_profit": best_profit,
        "best_depth": best_depth,
        "base_rate": float(y.mean()),
        "n": float(len(y)),
    }
