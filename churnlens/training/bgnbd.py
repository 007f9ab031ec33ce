"""BG/NBD (Fader, Hardie & Lee 2005) as the classic peer for non-contractual churn.

Optional: needs the ``lifetimes`` package (``pip install 'churnlens[bgnbd]'``). Fitted on the
purchase history before the cutoff, it gives each customer the probability of no purchase
in ``[C, C + H)``: dropout can only happen right after a purchase, so

    P(no purchase in H) = 1 - P(alive) + P(alive) * ((alpha + T) / (alpha + T + H)) ** (r + x)

with x repeat purchases and T the customer's age in days at the cutoff.
"""

from __future__ import annotations

import pandas as pd

from churnlens.data.tables import Tables


def rfm_summary(tables: Tables, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Frequency (repeat purchase days), recency and age T in days, from purchases before ``cutoff``.

    Like ``lifetimes.utils.summary_data_from_transaction_data`` with daily periods: several
    purchases on one day count once; refunds are not purchases.
    """
    p = tables.purchases
    p = p[(p["timestamp"] < cutoff) & (p["amount"] > 0)]
    days = (p["timestamp"].dt.floor("D") - pd.Timestamp(0)).dt.days
    per_day = pd.DataFrame({"customer_id": p["customer_id"], "day": days}).drop_duplicates()
    g = per_day.groupby("customer_id", observed=True)["day"]
    first, last, count = g.min(), g.max(), g.size()
    end_day = (cutoff - pd.Timedelta(microseconds=1)).floor("D")
    end = (end_day - pd.Timestamp(0)).days
    return pd.DataFrame({"frequency": (count - 1).astype(float), "recency": (last - first).astype(float),
                         "T": (end - first).astype(float)})


def bgnbd_no_purchase_probability(
    tables: Tables, cutoff: pd.Timestamp, customers: pd.Index, *, horizon_days: int, penalizer: float = 0.001
) -> pd.Series:
    """BG/NBD probability of no purchase in ``[cutoff, cutoff + horizon)`` for ``customers``.

    Parameters
    ----------
    tables : Tables
    cutoff : Timestamp
    customers : Index
        Customers to score (e.g. the active population at the cutoff).
    horizon_days : int
    penalizer : float
        L2 penalty of ``lifetimes.BetaGeoFitter`` (stabilises the fit on small data).

    Returns
    -------
    Series
        Indexed like ``customers``.
    """
    try:
        from lifetimes import BetaGeoFitter
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ImportError("the BG/NBD baseline needs lifetimes: pip install 'churnlens[bgnbd]'") from exc
    summary = rfm_summary(tables, cutoff)
    fitter = BetaGeoFitter(penalizer_coef=penalizer).fit(summary["frequency"], summary["recency"], summary["T"])
    s = summary.reindex(customers)
    alive = fitter.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    r, alpha = fitter.params_["r"], fitter.params_["alpha"]
    stay_quiet = ((alpha + s["T"]) / (alpha + s["T"] + horizon_days)) ** (r + s["frequency"])
    return pd.Series(1 - alive + alive * stay_quiet, index=customers, name="p_no_purchase_bgnbd").astype(float)
