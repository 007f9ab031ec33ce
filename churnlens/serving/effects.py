"""The measured effect of a randomised campaign: churn treated vs control, with 95 % intervals.

Uplift is the churn rate of the control group minus that of the treated group (positive =
the action kept customers). Intervals:

- **absolute uplift of one action**: Newcombe's hybrid score interval for a difference of two
  independent proportions (method 10 of Newcombe 1998), built on Wilson score intervals. It
  keeps its coverage for small groups and rates near 0 or 1, where the Wald interval does not.
  It is a few lines over the normal quantile; a statistics package for it alone is not worth a
  dependency.
- **over several actions** (the campaign overall): the stratified estimate ``sum_a w_a d_a``
  with ``w_a`` the action's share of the campaign's customers, and its normal interval; the
  holdout share then need not be the same in every action.
- **relative uplift** (the *save rate*: the share of would-be churners the action kept,
  ``1 - churn_treated / churn_control``): the log ratio's normal interval (Katz for one
  action, the delta method over strata).
- **incremental saved value**: the difference of the mean lost value (value x churned) per
  customer, control minus treated, times the treated customers; a normal interval
  (unequal variances). ROI is (saved value - cost) / cost, its interval from the saved
  value's (the cost is known).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

#: Two-sided confidence level of every interval.
LEVEL = 0.95


def _z(level: float = LEVEL) -> float:
    return float(norm.ppf(0.5 + level / 2))


def wilson_interval(events: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion ``events / n`` (NaN when n = 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    z = _z(level)
    p = events / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(centre - half, 0.0), min(centre + half, 1.0))


def newcombe_interval(
    events_1: float, n_1: float, events_2: float, n_2: float, level: float = LEVEL
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``p1 - p2`` (NaN when a group is empty)."""
    if n_1 <= 0 or n_2 <= 0:
        return (math.nan, math.nan)
    p1, p2 = events_1 / n_1, events_2 / n_2
    l1, u1 = wilson_interval(events_1, n_1, level)
    l2, u2 = wilson_interval(events_2, n_2, level)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


@dataclass(frozen=True)
class Effect:
    """The measured effect of one action (or of the campaign overall).

    Rates are churn rates within the horizon; ``uplift`` = control - treated (positive:
    fewer churned when treated); ``save_rate`` = uplift / control rate; ``saved_value`` is
    the incremental value kept over the treated customers; ``roi`` = (saved_value - cost) /
    cost. ``*_low`` / ``*_high`` bound the 95 % interval; NaN where it cannot be computed
    (an empty group, no churner, no cost).
    """

    action: str
    customers: int
    treated: int
    control: int
    churn_treated: float
    churn_control: float
    uplift: float
    uplift_low: float
    uplift_high: float
    save_rate: float
    save_rate_low: float
    save_rate_high: float
    saved_value: float
    saved_value_low: float
    saved_value_high: float
    cost: float
    roi: float
    roi_low: float
    roi_high: float

    def to_dict(self) -> dict[str, float | int | str | None]:
        """JSON-ready form (NaN -> None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @property
    def measured(self) -> bool:
        """Whether both groups have customers (an effect can be estimated)."""
        return self.treated > 0 and self.control > 0


@dataclass(frozen=True)
class Arm:
    """One action's customers: churned flags and values, treated and control apart."""

    action: str
    churned_treated: np.ndarray
    churned_control: np.ndarray
    value_treated: np.ndarray
    value_control: np.ndarray
    cost: float

    @classmethod
    def of(cls, action: str, churned: np.ndarray, value: np.ndarray, treated: np.ndarray, cost: float) -> Arm:
        treated = np.asarray(treated, dtype=bool)
        churned = np.asarray(churned, dtype="float64")
        value = np.clip(np.nan_to_num(np.asarray(value, dtype="float64"), nan=0.0), 0.0, None)
        return cls(action, churned[treated], churned[~treated], value[treated], value[~treated], float(cost))


def _mean_var(x: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the mean (NaN for an empty array; 0 variance for one value)."""
    if x.size == 0:
        return (math.nan, math.nan)
    return (float(x.mean()), float(x.var(ddof=1)) / x.size if x.size > 1 else 0.0)


def _roi(saved: float, cost: float) -> float:
    return (saved - cost) / cost if cost > 0 and math.isfinite(saved) else math.nan


def _log_ratio_interval(t: float, var_t: float, c: float, var_c: float, z: float) -> tuple[float, float, float]:
    """Save rate ``1 - t / c`` and its interval from the log ratio's normal interval."""
    if not (c > 0) or not math.isfinite(t):
        return (math.nan, math.nan, math.nan)
    rate = 1 - t / c
    if t <= 0:
        return (rate, math.nan, math.nan)
    se = math.sqrt(var_t / (t * t) + var_c / (c * c))
    ratio = t / c
    return (rate, 1 - ratio * math.exp(z * se), 1 - ratio * math.exp(-z * se))


def arm_effect(arm: Arm, level: float = LEVEL) -> Effect:
    """The measured effect of one action."""
    z = _z(level)
    nt, nc = arm.churned_treated.size, arm.churned_control.size
    xt, xc = float(arm.churned_treated.sum()), float(arm.churned_control.sum())
    pt = xt / nt if nt else math.nan
    pc = xc / nc if nc else math.nan
    low, high = newcombe_interval(xc, nc, xt, nt, level)
    var_t = pt * (1 - pt) / nt if nt else math.nan
    var_c = pc * (1 - pc) / nc if nc else math.nan
    rate, rate_low, rate_high = _log_ratio_interval(pt, var_t, pc, var_c, z)
    saved, saved_low, saved_high = _saved_value([arm], z)
    cost = arm.cost
    return Effect(
        action=arm.action, customers=nt + nc, treated=nt, control=nc, churn_treated=pt, churn_control=pc,
        uplift=pc - pt, uplift_low=low, uplift_high=high,
        save_rate=rate, save_rate_low=rate_low, save_rate_high=rate_high,
        saved_value=saved, saved_value_low=saved_low, saved_value_high=saved_high, cost=cost,
        roi=_roi(saved, cost), roi_low=_roi(saved_low, cost), roi_high=_roi(saved_high, cost),
    )  # fmt: skip


def _saved_value(arms: list[Arm], z: float) -> tuple[float, float, float]:
    """Incremental saved value over the treated customers of ``arms`` and its interval."""
    total, variance = 0.0, 0.0
    for arm in arms:
        nt = arm.churned_treated.size
        lost_t, var_t = _mean_var(arm.churned_treated * arm.value_treated)
        lost_c, var_c = _mean_var(arm.churned_control * arm.value_control)
        total += nt * (lost_c - lost_t)
        variance += nt * nt * (var_t + var_c)
    if not math.isfinite(total):
        return (math.nan, math.nan, math.nan)
    half = z * math.sqrt(variance)
    return (total, total - half, total + half)


def overall_effect(arms: list[Arm], level: float = LEVEL, name: str = "overall") -> Effect:
    """The campaign's effect over several actions, stratified by action.

    Actions whose treated or control group is empty cannot be measured and are left out
    (the caller says so).
    """
    z = _z(level)
    measured = [a for a in arms if a.churned_treated.size and a.churned_control.size]
    sizes = np.array([a.churned_treated.size + a.churned_control.size for a in measured], dtype="float64")
    nt = int(sum(a.churned_treated.size for a in measured))
    nc = int(sum(a.churned_control.size for a in measured))
    cost = float(sum(a.cost for a in measured))
    if not measured:
        nan = math.nan
        return Effect(name, 0, nt, nc, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, cost, nan, nan, nan)
    w = sizes / sizes.sum()
    pt = np.array([a.churned_treated.mean() for a in measured])
    pc = np.array([a.churned_control.mean() for a in measured])
    n_t = np.array([a.churned_treated.size for a in measured], dtype="float64")
    n_c = np.array([a.churned_control.size for a in measured], dtype="float64")
    var_t = float(np.sum(w * w * pt * (1 - pt) / n_t))
    var_c = float(np.sum(w * w * pc * (1 - pc) / n_c))
    t, c = float(np.sum(w * pt)), float(np.sum(w * pc))
    uplift = c - t
    half = z * math.sqrt(var_t + var_c)
    rate, rate_low, rate_high = _log_ratio_interval(t, var_t, c, var_c, z)
    saved, saved_low, saved_high = _saved_value(measured, z)
    return Effect(
        action=name, customers=int(sizes.sum()), treated=nt, control=nc, churn_treated=t, churn_control=c,
        uplift=uplift, uplift_low=uplift - half, uplift_high=uplift + half,
        save_rate=rate, save_rate_low=rate_low, save_rate_high=rate_high,
        saved_value=saved, saved_value_low=saved_low, saved_value_high=saved_high, cost=cost,
        roi=_roi(saved, cost), roi_low=_roi(saved_low, cost), roi_high=_roi(saved_high, cost),
    )  # fmt: skip
