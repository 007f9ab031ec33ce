"""Buy-till-you-die features: BG/NBD (Fader, Hardie & Lee 2005) fitted point in time.

At a cutoff C every customer with a purchase before C is summarised as lifetimes does with
daily periods: ``frequency`` x = distinct purchase days - 1, ``recency`` t_x = days from the
first to the last purchase day, ``T`` = days from the first purchase day to the last day
before C. The four population parameters (r, alpha, a, b) are fitted by maximum likelihood
on those summaries only (history before C), then each customer gets ``btyd_p_alive``, the
probability the customer has not dropped out.

:func:`expected_purchases` (expected purchase days in a horizon) is implemented and tested
against lifetimes too, but it is not a snapshot feature: in the backtests it did not raise
ROC AUC on Online Retail or the simulator (benchmarks/RESULTS.md, "New features"), so it was
left out.

Vectorised numpy/scipy (the fit runs on the distinct (x, t_x, T) triples with counts, so
it costs little at a million customers). It matches ``lifetimes.BetaGeoFitter`` (same
likelihood, time scaling, penalty and optimiser; tested on lifetimes' CDNOW sample),
without depending on it.

The parameters describe the whole base, not one customer: training fits them at each
cutoff on every customer; a model records the ones fitted at the end of its training data
(:attr:`FeatureConfig.btyd_params`) and serving uses those, so a request with a handful of
customers gets the same features as the batch run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1, psi

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.features.kernels import (
    US_PER_DAY,
    FeatureBlock,
    FloatColumns,
    float_values,
    normalize_cutoff,
    segments_for,
)

FAMILY = "btyd"
FEATURES: tuple[str, ...] = ("btyd_p_alive",)
#: Parameters that say "the fit failed": every BG/NBD feature is then NaN.
UNFITTED: tuple[float, float, float, float] = (float("nan"),) * 4
#: L2 penalty on the parameters (lifetimes' ``penalizer_coef``): keeps the fit away from the
#: a, b -> 0 boundary on short histories, where the unpenalised fit often fails to converge.
PENALIZER = 0.001


def btyd_feature_names(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """Names of the BG/NBD features (they need only the purchases table)."""
    return list(FEATURES)


@dataclass(frozen=True)
class BGNBDParams:
    """Population parameters of BG/NBD, time in days."""

    r: float
    alpha: float
    a: float
    b: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.a, self.b)


def purchase_day_summary(purchases: pd.DataFrame, cutoff: str | pd.Timestamp) -> pd.DataFrame:
    """Frequency, recency and T (days) of every customer with a purchase before the cutoff.

    Like ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D",
    observation_period_end=<the day before the cutoff>)``: several purchases on one day
    count once; refunds (negative amounts) are not purchases.

    Returns
    -------
    DataFrame
        Indexed by customer_id (sorted): ``frequency``, ``recency``, ``T`` (float64).
    """
    summary = _day_summary(purchases, cutoff)
    frame = summary.frame()
    return frame[frame["frequency"].notna()]


def _day_summary(purchases: pd.DataFrame, cutoff: str | pd.Timestamp) -> FloatColumns:
    """:func:`purchase_day_summary` of every customer with a row before the cutoff (NaN where
    the customer has no purchase), as columns."""
    cutoff = normalize_cutoff(cutoff)
    segs = segments_for(purchases, cutoff)
    amount = float_values(purchases["amount"])
    end_day = float(np.floor((np.datetime64(cutoff.to_datetime64(), "us").astype("int64") - 1) / US_PER_DAY))
    out = FloatColumns(["frequency", "recency", "T"], segs.index)
    for chunk in segs.chunks():
        buy = np.flatnonzero(chunk.take(amount) >= 0)
        seg, day = chunk.seg[buy], np.floor(chunk.ts[buy] / US_PER_DAY)
        part = out.rows(chunk.lo, chunk.hi)
        n = chunk.n
        if len(seg) == 0:
            for name in ("frequency", "recency", "T"):
                part[name] = np.nan
            continue
        new_day = np.ones(len(seg), dtype=bool)
        new_day[1:] = (seg[1:] != seg[:-1]) | (day[1:] != day[:-1])
        days = np.bincount(seg, weights=new_day, minlength=n)
        first = np.full(n, np.nan)
        last = np.full(n, np.nan)
        # rows are time-ordered within a customer: first and last rows give first and last days
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        ends = np.r_[starts[1:], len(seg)] - 1
        first[seg[starts]] = day[starts]
        last[seg[ends]] = day[ends]
        part["frequency"] = np.where(days > 0, days - 1, np.nan)
        part["recency"] = last - first
        part["T"] = end_day - first
    return out


def _negative_log_likelihood(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray, penalizer: float
) -> tuple[float, np.ndarray]:
    """lifetimes' BG/NBD objective (mean negative log-likelihood + L2 penalty) and its gradient."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    xm1 = np.maximum(x, 1) - 1
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    A2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    A3 = -(r + x) * np.log(alpha + T)
    A4 = np.log(a) - np.log(b + xm1) - (r + x) * np.log(alpha + t_x)
    top = np.maximum(A3, A4)
    e3, e4 = np.exp(A3 - top), np.exp(A4 - top) * repeat
    ll = A1 + A2 + np.log(e3 + e4) + top
    w3, w4 = e3 / (e3 + e4), e4 / (e3 + e4)
    d_r = psi(r + x) - psi(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = psi(a + b) - psi(a + b + x) + w4 / a
    d_b = psi(a + b) + psi(b + x) - psi(b) - psi(a + b + x) - w4 / (b + xm1)
    total = weights.sum()
    params = np.array([r, alpha, a, b])
    value = -(weights * ll).sum() / total + penalizer * np.sum(params**2)
    grad = np.array([-(weights * d).sum() / total for d in (d_r, d_alpha, d_a, d_b)]) * params
    grad += 2.0 * penalizer * params**2
    return float(value), grad


def fit_bgnbd(summary: pd.DataFrame, *, penalizer: float = PENALIZER) -> BGNBDParams | None:
    """Maximum-likelihood BG/NBD parameters of a :func:`purchase_day_summary` (or counts of its rows).

    As ``lifetimes.BetaGeoFitter(penalizer_coef=penalizer).fit``: time scaled so the largest T
    is 1, log parameters started at 0.1, BFGS to 1e-7. Customers with T = 0 (first purchase
    the day before the cutoff) carry no information and are left out, as are any with
    missing values.

    Parameters
    ----------
    summary : DataFrame
        ``frequency``, ``recency``, ``T``, and optionally ``weight`` (customers per row).
    penalizer : float

    Returns
    -------
    BGNBDParams or None
        None when there is nothing to fit or the optimiser does not converge.
    """
    keep = summary[["frequency", "recency", "T"]].notna().all(axis=1) & (summary["T"] > 0)
    data = summary[keep]
    if data.empty or (data["frequency"] > 0).sum() == 0:
        return None
    weight = data["weight"] if "weight" in data else pd.Series(1.0, index=data.index)
    grouped = (
        pd.DataFrame({"x": data["frequency"].to_numpy(), "t_x": data["recency"].to_numpy(),
                      "T": data["T"].to_numpy(), "w": weight.to_numpy(dtype=float)})
        .groupby(["x", "t_x", "T"], sort=True)["w"].sum().reset_index()
    )  # fmt: skip
    scale = 1.0 / grouped["T"].max()
    args = (grouped["x"].to_numpy(), grouped["t_x"].to_numpy() * scale, grouped["T"].to_numpy() * scale,
            grouped["w"].to_numpy(), float(penalizer))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = minimize(_negative_log_likelihood, 0.1 * np.ones(4), args=args, jac=True, method="BFGS",
                          tol=1e-7)
    if not result.success or not np.all(np.isfinite(result.x)):
        return None
    r, alpha, a, b = np.exp(result.x)
    return BGNBDParams(r=float(r), alpha=float(alpha / scale), a=float(a), b=float(b))


def p_alive(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(the customer has not dropped out) given (x, t_x, T): 1 for customers with no repeat purchase."""
    r, alpha, a, b = params.as_tuple()
    x = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        log_div = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
        return np.where(x == 0, 1.0, expit(-log_div))


def expected_purchases(params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Expected purchase days in the next ``t`` days given (x, t_x, T) (Fader et al. 2005, eq. 10)."""
    r, alpha, a, b = params.as_tuple()
    x = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        ca, cb, cc = r + x, b + x, a + b + x - 1
        z = t / (alpha + T + t)
        ln_hyp = np.log(hyp2f1(ca, cb, cc, z))
        # the same value by Euler's transformation where the direct series overflows
        alt = np.log(hyp2f1(cc - ca, cc - cb, cc, z)) + (cc - ca - cb) * np.log(1 - z)
        ln_hyp = np.where(np.isinf(ln_hyp), alt, ln_hyp)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))
        denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return first * second / denominator


def population_params(tables: Tables, cutoff: str | pd.Timestamp, config: FeatureConfig) -> BGNBDParams | None:
    """The parameters the features use at ``cutoff``: ``config.btyd_params`` when set, else
    fitted on every customer's purchases before the cutoff."""
    if config.btyd_params is not None:
        return None if any(np.isnan(config.btyd_params)) else BGNBDParams(*map(float, config.btyd_params))
    return fit_bgnbd(purchase_day_summary(tables.purchases, cutoff))


def build_btyd_features(
    tables: Tables, cutoff: str | pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """P(alive) of every customer with a purchase before the cutoff.

    Parameters
    ----------
    tables : Tables
        Validated tables (only ``purchases`` is read).
    cutoff : str or Timestamp
        Exclusive: rows at or after it are ignored, for the summaries and for the fit.
    config : FeatureConfig
        ``btyd_params`` (fitted here when None).

    Returns
    -------
    DataFrame
        Indexed by customer_id (sorted), columns :data:`FEATURES`, float64; NaN everywhere
        when the parameters could not be fitted (e.g. no repeat purchase before the cutoff).
    """
    return btyd_block(tables, cutoff, config).frame()


def btyd_block(tables: Tables, cutoff: str | pd.Timestamp, config: FeatureConfig = FeatureConfig()) -> FeatureBlock:
    """:func:`build_btyd_features` before it becomes a frame."""
    cutoff = normalize_cutoff(cutoff)
    given = config.btyd_params
    if given is None:  # fitted on the summary frame (the customers with a purchase)
        summary = purchase_day_summary(tables.purchases, cutoff)
        index, columns = summary.index, {c: summary[c].to_numpy() for c in ("frequency", "recency", "T")}
        params = fit_bgnbd(summary)
    else:
        days = _day_summary(tables.purchases, cutoff)
        keep = ~np.isnan(days["frequency"])
        every = bool(keep.all())
        index = days.index if every else days.index[keep]
        columns = {c: days[c] if every else days[c][keep] for c in ("frequency", "recency", "T")}
        params = None if any(np.isnan(given)) else BGNBDParams(*map(float, given))
    out = FloatColumns(list(FEATURES), index)
    if params is None:
        for name in FEATURES:
            out[name] = np.nan
        return FeatureBlock(out, list(FEATURES), {})
    out["btyd_p_alive"] = p_alive(params, columns["frequency"], columns["recency"], columns["T"])
    return FeatureBlock(out, list(FEATURES), {})
