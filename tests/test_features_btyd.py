"""Buy-till-you-die (BG/NBD) features against lifetimes' figures, and the gap-regularity features by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlens.config import FeatureConfig
from churnlens.data import Tables
from churnlens.features import build_snapshot
from churnlens.features.btyd import (
    build_btyd_features,
    expected_purchases,
    fit_bgnbd,
    p_alive,
    purchase_day_summary,
)
from churnlens.features.purchases import gap_regularity

lifetimes = pytest.importorskip("lifetimes")

C = pd.Timestamp("2024-06-01")


@pytest.fixture(scope="module")
def cdnow():
    from lifetimes.datasets import load_cdnow_summary

    return load_cdnow_summary(index_col=[0])


@pytest.mark.parametrize("penalizer", [0.0, 0.001, 0.1])
def test_fit_and_predictions_match_lifetimes_on_cdnow(cdnow, penalizer):
    fitter = lifetimes.BetaGeoFitter(penalizer_coef=penalizer).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    ours = fit_bgnbd(cdnow, penalizer=penalizer)
    np.testing.assert_allclose(ours.as_tuple(), fitter.params_[["r", "alpha", "a", "b"]].to_numpy(), rtol=1e-5)
    x, t_x, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(p_alive(ours, x, t_x, T),
                               fitter.conditional_probability_alive(x, t_x, T), atol=1e-6)
    np.testing.assert_allclose(expected_purchases(ours, 39.0, x, t_x, T),
                               fitter.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, T),
                               rtol=1e-5)


def test_published_cdnow_parameters(cdnow):
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426
    params = fit_bgnbd(cdnow, penalizer=0.0)
    np.testing.assert_allclose(params.as_tuple(), (0.243, 4.414, 0.793, 2.426), atol=1e-3)


def _purchases(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")
    return frame.sort_values(["customer_id", "timestamp"]).reset_index(drop=True)


ROWS = [
    ("a", "2024-01-03 09:00", 10.0), ("a", "2024-01-03 18:00", 5.0),  # same day: one purchase day
    ("a", "2024-02-10 12:00", 8.0), ("a", "2024-02-12 12:00", -8.0),  # a refund is not a purchase
    ("a", "2024-05-20 08:00", 3.0), ("a", "2024-06-01 00:00", 9.0),  # at the cutoff: the future
    ("b", "2024-03-01 10:00", 20.0),
    ("c", "2024-05-31 23:59", 1.0),
]


def test_summary_matches_lifetimes_daily_summary():
    from lifetimes.utils import summary_data_from_transaction_data

    purchases = _purchases(ROWS)
    ours = purchase_day_summary(purchases, C)
    before = purchases[(purchases["timestamp"] < C) & (purchases["amount"] >= 0)]
    theirs = summary_data_from_transaction_data(before, "customer_id", "timestamp", freq="D",
                                                observation_period_end=C - pd.Timedelta(days=1))
    theirs.index = theirs.index.astype("string")
    pd.testing.assert_frame_equal(ours, theirs[["frequency", "recency", "T"]].astype(float), check_names=False)
    assert ours.loc["a"].tolist() == [2.0, 138.0, 149.0]  # days 2024-01-03, 02-10, 05-20; last day 05-31


def test_features_on_a_simulated_base_match_lifetimes(small_sim):
    from churnlens.data import load_tables

    tables = load_tables(small_sim)[0]
    cutoff = pd.Timestamp("2023-12-01")
    features = build_btyd_features(tables, cutoff)
    summary = purchase_day_summary(tables.purchases, cutoff)
    fitter = lifetimes.BetaGeoFitter(penalizer_coef=0.001).fit(summary["frequency"], summary["recency"], summary["T"])
    x, t_x, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    # both optimisers stop within their 1e-7 tolerance of a flat optimum: figures agree to ~1e-4
    np.testing.assert_allclose(features["btyd_p_alive"], fitter.conditional_probability_alive(x, t_x, T),
                               atol=5e-4)
    np.testing.assert_allclose(expected_purchases(fit_bgnbd(summary), 60.0, x, t_x, T),
                               fitter.conditional_expected_number_of_purchases_up_to_time(60, x, t_x, T),
                               rtol=2e-3, atol=1e-4)


def test_recorded_parameters_give_one_customer_the_features_of_the_whole_base(small_sim):
    from churnlens.data import load_tables
    from churnlens.features.btyd import population_params

    tables = load_tables(small_sim)[0]
    cutoff = pd.Timestamp("2023-12-01")
    params = population_params(tables, cutoff, FeatureConfig())
    config = FeatureConfig(btyd_params=params.as_tuple())
    whole = build_snapshot(tables, cutoff, config)
    one_id = whole.index[5]
    p = tables.purchases
    alone = Tables(purchases=p[p["customer_id"] == one_id].reset_index(drop=True))
    one = build_snapshot(alone, cutoff, config)
    np.testing.assert_allclose(one[["btyd_p_alive"]].to_numpy(), whole.loc[[one_id], ["btyd_p_alive"]].to_numpy())
    # fitted on the lone customer, the "population" is that customer: other features, hence recorded parameters
    fitted_alone = build_btyd_features(alone, cutoff)
    assert not np.allclose(fitted_alone["btyd_p_alive"].to_numpy(), whole.loc[[one_id], "btyd_p_alive"].to_numpy())


def test_gap_regularity_by_hand():
    day = 86_400_000_000
    # one customer, purchase days 0, 10 (twice), 30: gaps 10 and 20 days
    seg = np.array([0, 0, 0, 0])
    ts = np.array([0, 10 * day, 10 * day + 3600_000_000, 30 * day])
    assert gap_regularity(seg, ts, 1, np.array([15.0]))["current_gap_vs_longest"][0] == pytest.approx(0.75)
    # two customers: one gap of 10 days; a single purchase day (no gap yet)
    out = gap_regularity(np.array([0, 0, 1]), np.array([0, 10 * day, 5 * day]), 2, np.array([25.0, 5.0]))
    assert out["current_gap_vs_longest"][0] == pytest.approx(2.5) and np.isnan(out["current_gap_vs_longest"][1])


def test_regularity_features_in_the_snapshot():
    snap = build_snapshot(Tables(purchases=_purchases(ROWS)), C)
    # a: purchase days 01-03, 02-10, 05-20 (2024) -> gaps 38 and 100 days; last purchase 05-20 08:00
    current = (C - pd.Timestamp("2024-05-20 08:00")) / pd.Timedelta(days=1)
    assert snap.loc["a", "current_gap_vs_longest"] == pytest.approx(current / 100)
    assert np.isnan(snap.loc["b", "current_gap_vs_longest"])


def test_the_population_fit_never_sees_events_at_or_after_the_cutoff(small_sim):
    """On a real base (where the fit converges): drop every event at or after C, shuffle the rest."""
    from churnlens.data import load_tables

    tables = load_tables(small_sim)[0]
    cutoff = pd.Timestamp("2023-10-15")
    expected = build_btyd_features(tables, cutoff)
    assert expected.notna().all().all()
    past = tables.purchases[tables.purchases["timestamp"] < cutoff]
    shuffled = past.sample(frac=1.0, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(build_btyd_features(Tables(purchases=shuffled), cutoff), expected)
