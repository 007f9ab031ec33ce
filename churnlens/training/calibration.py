"""Probability calibration on the validation cutoff: isotonic or Platt, chosen by log loss."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from churnlens.model import Calibrator


def fit_calibrator(margin: np.ndarray, y: np.ndarray, method: str) -> Calibrator:
    """Fit one calibration map from raw margins to probabilities.

    Parameters
    ----------
    margin : array of float
        Raw LightGBM scores (log-odds) on the validation cutoff.
    y : array of {0, 1}
    method : {"isotonic", "platt", "none"}

    Returns
    -------
    Calibrator
    """
    margin = np.asarray(margin, dtype=float)
    y = np.asarray(y, dtype=int)
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(margin, y)
        return Calibrator("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    if method == "none":
        return Calibrator("none")
    raise ValueError(f"unknown calibration method {method!r}")


def cross_validated_log_loss(margin: np.ndarray, y: np.ndarray, method: str, *, seed: int, folds: int = 5) -> float:
    """Out-of-fold log loss of a calibration method, so isotonic is not judged on its own fit."""
    margin = np.asarray(margin, dtype=float)
    y = np.asarray(y, dtype=int)
    oof = np.empty(len(y))
    for fit_idx, eval_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(margin, y):
        oof[eval_idx] = fit_calibrator(margin[fit_idx], y[fit_idx], method).transform(margin[eval_idx])
    return float(log_loss(y, np.clip(oof, 1e-6, 1 - 1e-6), labels=[0, 1]))


def choose_calibrator(
    margin: np.ndarray, y: np.ndarray, *, method: str = "auto", seed: int = 42
) -> tuple[Calibrator, dict[str, float]]:
    """Pick and fit the calibrator with the lowest cross-validated log loss on validation data.

    Parameters
    ----------
    margin, y : arrays
        Validation margins and labels.
    method : {"auto", "isotonic", "platt", "none"}
        ``auto`` compares isotonic and Platt; anything else is fitted as asked.
    seed : int

    Returns
    -------
    (Calibrator, dict)
        The fitted calibrator (on all validation rows) and the CV log loss per candidate.
    """
    candidates = ["isotonic", "platt"] if method == "auto" else [method]
    scores = {m: cross_validated_log_loss(margin, y, m, seed=seed) for m in candidates}
    best = min(scores, key=scores.get)
    return fit_calibrator(margin, y, best), scores
