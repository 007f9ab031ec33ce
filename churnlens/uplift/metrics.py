"""How well a ranking of customers by uplift finds the persuadable ones: Qini, AUUC, uplift by decile.

Customers are ranked by a score (predicted uplift), highest first. On randomised data (treated
``t``, churned ``y``), the first ``k`` customers of the ranking hold ``n_t(k)`` treated and
``n_c(k)`` control customers, of whom ``y_t(k)`` and ``y_c(k)`` churned:

- **Qini curve**: ``Q(k) = y_c(k) n_t(k) / n_c(k) - y_t(k)``, the churners the action kept among
  the treated customers of the top ``k`` (Radcliffe 2007, for an outcome to prevent);
- **uplift curve**: ``U(k) = (y_c(k) / n_c(k) - y_t(k) / n_t(k)) k``, the churners kept had all
  the top ``k`` been treated;
- **Qini coefficient**: the area between the Qini curve and the random ordering's straight
  line from ``(0, 0)`` to ``(N, Q(N))``, with both axes as shares of the population (targeted
  share on x, ``Q / N`` on y): 0 for a random ordering, positive when the ranking puts the
  persuadable first;
- **AUUC**: the area under the uplift curve, same scale (``U / N`` against the targeted share).

With the simulator's truth (each customer's true uplift ``tau``), the same curves need no
outcome: the *expected* curve ``G(k) = sum of tau over the top k``; :func:`expected_qini` is its
area over the random line. It is what an oracle ranking (by true uplift) maximises.

Ties in the score are broken by position (a stable sort), after shuffling nothing: pass
scores without ties (or accept that tied customers keep their input order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnlens.serving.effects import newcombe_interval

#: Points of the curves kept for plots and logs.
CURVE_POINTS = 101


def _order(score: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(score, dtype="float64"), kind="stable")


@dataclass(frozen=True)
class Curves:
    """Qini and uplift curves at :data:`CURVE_POINTS` shares of the population (0 to 1)."""

    share: np.ndarray
    qini: np.ndarray
    uplift: np.ndarray


def curves(score: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Qini ``Q(k)`` and uplift ``U(k)`` curves at every ``k = 1..N`` (as counts of customers kept)."""
    order = _order(score)
    t = np.asarray(treated, dtype=bool)[order]
    y = np.asarray(churned, dtype="float64")[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    with np.errstate(invalid="ignore", divide="ignore"):
        qini = np.where(n_c > 0, y_c * n_t / np.maximum(n_c, 1), 0.0) - y_t
        rate_c = np.where(n_c > 0, y_c / np.maximum(n_c, 1), np.nan)
        rate_t = np.where(n_t > 0, y_t / np.maximum(n_t, 1), np.nan)
        uplift = np.nan_to_num((rate_c - rate_t) * np.arange(1, len(y) + 1), nan=0.0)
    return qini, uplift


def _area_over_line(curve: np.ndarray) -> float:
    """Area between ``curve / N`` and the straight line to its end, x in shares (trapezoids, from 0)."""
    n = len(curve)
    if n == 0:
        return math.nan
    y = np.concatenate([[0.0], np.asarray(curve, dtype="float64")]) / n
    x = np.linspace(0.0, 1.0, n + 1)
    line = x * y[-1]
    return float(np.trapezoid(y - line, x))


def _area(curve: np.ndarray) -> float:
    n = len(curve)
    if n == 0:
        return math.nan
    y = np.concatenate([[0.0], np.asarray(curve, dtype="float64")]) / n
    return float(np.trapezoid(y, np.linspace(0.0, 1.0, n + 1)))


def qini_coefficient(score: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> float:
    """Area between the Qini curve and the random ordering's line (see the module docstring)."""
    return _area_over_line(curves(score, treated, churned)[0])


def auuc(score: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> float:
    """Area under the uplift curve (see the module docstring)."""
    return _area(curves(score, treated, churned)[1])


def expected_qini(score: np.ndarray, true_uplift: np.ndarray) -> float:
    """Qini coefficient of a ranking computed from each customer's true uplift (no outcome noise)."""
    gain = np.cumsum(np.asarray(true_uplift, dtype="float64")[_order(score)])
    return _area_over_line(gain)


def sampled_curves(score: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> Curves:
    """The curves at :data:`CURVE_POINTS` shares, as shares of the population (for plots)."""
    qini, uplift = curves(score, treated, churned)
    n = len(qini)
    share = np.linspace(0.0, 1.0, CURVE_POINTS)
    if n == 0:
        return Curves(share, np.zeros_like(share), np.zeros_like(share))
    at = np.clip(np.round(share * n).astype(int) - 1, -1, n - 1)
    pick = lambda c: np.where(at >= 0, np.asarray(c)[np.maximum(at, 0)], 0.0) / n  # noqa: E731
    return Curves(share, pick(qini), pick(uplift))


def uplift_by_decile(
    score: np.ndarray,
    treated: np.ndarray,
    churned: np.ndarray,
    *,
    bins: int = 10,
    true_uplift: np.ndarray | None = None,
) -> pd.DataFrame:
    """Observed uplift (control churn - treated churn) per decile of the score, with 95 % intervals.

    Decile 1 holds the highest scores. Customers are split into ``bins`` groups of (nearly)
    equal size after sorting, so ties never leave a group empty. Intervals are Newcombe's
    (:func:`churnlens.serving.effects.newcombe_interval`).

    Returns
    -------
    DataFrame
        decile, customers, treated, control, predicted (mean score), churn_treated,
        churn_control, uplift, uplift_low, uplift_high (and true_uplift, the mean true uplift,
        when given).
    """
    order = _order(score)
    s = np.asarray(score, dtype="float64")
    t = np.asarray(treated, dtype=bool)
    y = np.asarray(churned, dtype="float64")
    rows = []
    for k, part in enumerate(np.array_split(order, min(int(bins), max(len(order), 1))), start=1):
        if part.size == 0:
            continue
        tt, yy = t[part], y[part]
        nt, nc = int(tt.sum()), int((~tt).sum())
        et, ec = float(yy[tt].sum()), float(yy[~tt].sum())
        low, high = newcombe_interval(ec, nc, et, nt)
        row = {
            "decile": k, "customers": int(part.size), "treated": nt, "control": nc,
            "predicted": float(s[part].mean()),
            "churn_treated": et / nt if nt else math.nan, "churn_control": ec / nc if nc else math.nan,
            "uplift": (ec / nc - et / nt) if nt and nc else math.nan, "uplift_low": low, "uplift_high": high,
        }  # fmt: skip
        if true_uplift is not None:
            row["true_uplift"] = float(np.asarray(true_uplift, dtype="float64")[part].mean())
        rows.append(row)
    return pd.DataFrame(rows)
