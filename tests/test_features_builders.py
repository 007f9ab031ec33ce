"""Feature builders and snapshots on small hand-built tables, values worked out by hand.

Cutoff C = 2024-06-01. Windows: 30d starts 2024-05-02, 90d starts 2024-03-03,
365d starts 2023-06-02 (2024 is a leap year).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churnlens.config import FeatureConfig
from churnlens.data import Tables
from churnlens.features import (
    active_customers,
    build_program_features,
    build_purchases_features,
    build_snapshot,
    build_support_features,
    catalog_for,
    categorical_columns,
    snapshot_columns,
)
from churnlens.features.purchases import purchase_gap_std

C = pd.Timestamp("2024-06-01")


def ts(values: list[str | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(values), format="ISO8601").astype("datetime64[us]")


def s(values: list[str | None]) -> pd.array:
    return pd.array(values, dtype="string")


def b(values: list[bool | None]) -> pd.array:
    return pd.array(values, dtype="boolean")


def make_tables() -> Tables:
    purchases = pd.DataFrame(
        {
            "customer_id": s(["a", "a", "a", "a", "a", "b", "b", "c", "d"]),
            "timestamp": ts(
                [
                    "2024-01-01",
                    "2024-03-01",
                    "2024-05-01",
                    "2024-05-20",
                    "2024-06-01",
                    "2024-04-01",
                    "2024-07-01",
                    "2023-05-01",
                    "2024-02-01",
                ]
            ),
            "amount": [10.0, 20.0, -5.0, 30.0, 100.0, 50.0, 60.0, 40.0, 10.0],
            "channel": s(["web", "web", "web", "store", "app", "web", "app", "web", "web"]),
            "category": s(["x", "y", "x", None, "w", "z", "z", "x", "x"]),
        }
    )
    program = pd.DataFrame(
        {
            "customer_id": s(["a"] * 9),
            "timestamp": ts(
                [
                    "2024-01-01",
                    "2024-02-01",
                    "2024-03-01",
                    "2024-04-01",
                    "2024-05-10",
                    "2024-05-12",
                    "2024-05-15",
                    "2024-05-16",
                    "2024-05-25",
                ]
            ),
            "event_type": s(
                [
                    "enrolled",
                    "points_earned",
                    "tier_changed",
                    "app_opened",
                    "offer_received",
                    "offer_completed",
                    "tier_changed",
                    "points_redeemed",
                    "login",
                ]
            ),
            "points": [np.nan, 100.0, np.nan, np.nan, np.nan, np.nan, np.nan, -40.0, np.nan],
            "tier": s([None, None, "gold", None, None, None, "silver", None, None]),
        }
    )
    support = pd.DataFrame(
        {
            "customer_id": s(["b", "b", "b"]),
            "timestamp": ts(["2024-01-15", "2024-05-01", "2024-06-15"]),
            "complaint": b([False, True, True]),
            "resolved": b([True, False, False]),
            "first_contact_resolution": b([True, False, False]),
            "handle_minutes": [6.0, 12.0, 30.0],
            "csat": [4.0, 2.0, 5.0],
            "nps": [9.0, 6.0, 10.0],
            "ces": [np.nan, 5.0, 1.0],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": s(["a", "b", "c", "d"]),
            "signup_at": ts(["2023-06-01", None, "2023-01-01", "2024-01-01"]),
            "country": s(["FR", "DE", "FR", "NL"]),
            "age": [30.0, np.nan, 50.0, 20.0],
        }
    )
    cancellations = pd.DataFrame({"customer_id": s(["d"]), "timestamp": ts(["2024-03-01"])})
    return Tables(
        purchases=purchases,
        customers=customers,
        program_events=program,
        support_interactions=support,
        cancellations=cancellations,
    )


@pytest.fixture(scope="module")
def snap() -> pd.DataFrame:
    return build_snapshot(make_tables(), "2024-06-01")


def test_active_population_excludes_old_cancelled_and_future_only():
    active = active_customers(make_tables(), C)
    # c bought only before C-365d; d cancelled before C.
    assert list(active) == ["a", "b"]
    assert active.name == "customer_id"
    assert str(active.dtype) == "string"


def test_purchase_features_worked_by_hand(snap):
    a, b_ = snap.loc["a"], snap.loc["b"]
    expected_a = {
        "days_since_last_purchase": 12.0,  # 2024-05-20 -> 06-01; the 06-01 purchase is at C, excluded
        "days_since_first_purchase": 152.0,
        "purchase_count_30d": 1.0,
        "purchase_count_90d": 1.0,  # 05-20 (05-01 is a refund)
        "purchase_count_365d": 3.0,
        "spend_30d": 30.0,
        "spend_90d": 25.0,  # 30 - 5
        "spend_365d": 55.0,
        "avg_basket_30d": 30.0,
        "avg_basket_90d": 30.0,
        "avg_basket_365d": 20.0,
        "refund_share_30d": 0.0,
        "refund_share_90d": 5.0 / 30.0,
        "refund_share_365d": 5.0 / 60.0,
        "purchase_count_lifetime": 3.0,
        "spend_lifetime": 55.0,
        "purchase_gap_mean_days": 70.0,  # gaps 60 and 80 days
        "purchase_gap_std_days": math.sqrt(200.0),
        "overdue_ratio": 12.0 / 70.0,
        "purchase_trend_90d_vs_365d": (1 / 90) / (3 / 365),
        "spend_trend_90d_vs_365d": (25 / 90) / (55 / 365),
        "distinct_categories_365d": 2.0,  # x, y (the refund and a missing category do not count)
        "distinct_channels_365d": 2.0,  # web, store
    }
    for name, value in expected_a.items():
        assert a[name] == pytest.approx(value), name
    # b: one purchase (04-01); the 07-01 purchase is in the future.
    assert b_["days_since_last_purchase"] == 61.0
    assert b_["purchase_count_30d"] == 0.0 and b_["spend_30d"] == 0.0
    assert math.isnan(b_["avg_basket_30d"]) and math.isnan(b_["refund_share_30d"])
    assert math.isnan(b_["purchase_gap_mean_days"]) and math.isnan(b_["purchase_gap_std_days"])
    # one-purchase customers: the usual gap is the active window (365 days)
    assert b_["overdue_ratio"] == pytest.approx(61.0 / 365.0)
    assert b_["purchase_trend_90d_vs_365d"] == pytest.approx((1 / 90) / (1 / 365))


def test_program_features_worked_by_hand(snap):
    a = snap.loc["a"]
    expected = {
        "program_enrolled": 1.0,
        "program_enrolment_age_days": 152.0,
        "points_balance": 60.0,
        "points_earned_30d": 0.0,
        "points_earned_90d": 0.0,
        "points_earned_365d": 100.0,
        "points_redeemed_30d": 40.0,
        "points_redeemed_90d": 40.0,
        "points_redeemed_365d": 40.0,
        "redemption_rate_365d": 0.4,
        "days_since_last_program_activity": 7.0,  # login 05-25 (tier changes are not activity)
        "logins_30d": 1.0,
        "logins_365d": 1.0,
        "offers_received_30d": 1.0,
        "offers_viewed_30d": 0.0,
        "offers_completed_30d": 1.0,
        "offer_completion_rate_30d": 1.0,
        "program_other_events_365d": 1.0,  # app_opened
        "tier_rank": 1.0,
        "tier_downgraded_90d": 1.0,  # gold before 03-03, silver now
    }
    for name, value in expected.items():
        assert a[name] == pytest.approx(value), name
    assert math.isnan(a["redemption_rate_30d"])
    assert a["tier"] == "silver"
    b_ = snap.loc["b"]  # no program events at all
    assert b_["program_enrolled"] == 0.0 and b_["points_balance"] == 0.0 and b_["logins_365d"] == 0.0
    assert b_["tier_downgraded_90d"] == 0.0
    assert math.isnan(b_["program_enrolment_age_days"]) and math.isnan(b_["tier_rank"])
    assert pd.isna(b_["tier"])


def test_support_features_worked_by_hand(snap):
    b_ = snap.loc["b"]
    expected = {
        "support_contacts_30d": 0.0,
        "support_contacts_90d": 1.0,
        "support_contacts_365d": 2.0,
        "support_complaints_30d": 0.0,
        "support_complaints_90d": 1.0,
        "support_complaints_365d": 1.0,
        "support_open_issues": 1.0,
        "support_fcr_rate": 0.5,
        "support_handle_minutes_mean": 9.0,
        "csat_last": 2.0,
        "csat_mean": 3.0,
        "nps_last": 6.0,
        "ces_mean": 5.0,
        "days_since_last_contact": 31.0,
    }
    for name, value in expected.items():
        assert b_[name] == pytest.approx(value), name
    assert b_["nps_category"] == "detractor"
    a = snap.loc["a"]
    assert a["support_contacts_365d"] == 0.0 and a["support_open_issues"] == 0.0
    assert math.isnan(a["csat_last"]) and pd.isna(a["nps_category"])


def test_profile_features_worked_by_hand(snap):
    assert snap.loc["a", "tenure_days"] == 366.0  # sign-up 2023-06-01 is before the first purchase
    assert snap.loc["b", "tenure_days"] == 61.0  # no sign-up date: first purchase
    assert snap.loc["a", "attr_country"] == "FR"
    assert snap.loc["a", "attr_age"] == 30.0 and math.isnan(snap.loc["b", "attr_age"])


def test_snapshot_schema(snap):
    tables = make_tables()
    assert list(snap.columns) == snapshot_columns(tables)
    assert snap.index.name == "customer_id" and str(snap.index.dtype) == "string"
    assert snap.index.is_monotonic_increasing
    cats = categorical_columns(tables)
    assert cats == ["tier", "nps_category", "attr_country"]
    for col in snap.columns:
        if col in cats:
            assert isinstance(snap[col].dtype, pd.CategoricalDtype), col
            assert list(snap[col].cat.categories) == sorted(snap[col].cat.categories), col
        else:
            assert snap[col].dtype == np.float64, col
    assert list(snap["attr_country"].cat.categories) == ["DE", "FR"]
    families = [catalog_for(tables)[c].family for c in snap.columns]
    order = ["purchases", "btyd", "program", "support", "profile"]
    assert families == sorted(families, key=order.index)


def test_every_built_feature_has_a_catalog_entry(snap):
    catalog = catalog_for(make_tables())
    missing = [c for c in snap.columns if c not in catalog]
    assert missing == []


def test_cutoff_normalised_from_aware_timestamp(snap):
    aware = pd.Timestamp("2024-06-01 02:00", tz="Europe/Paris")  # = 2024-06-01 00:00 UTC
    pd.testing.assert_frame_equal(build_snapshot(make_tables(), aware), snap)


def test_bad_cutoff_is_refused():
    with pytest.raises(ValueError, match="cutoff 'yesterday' is not a date"):
        build_snapshot(make_tables(), "yesterday")


def test_missing_optional_tables_drop_their_family():
    full = make_tables()
    tables = Tables(purchases=full.purchases)
    snap = build_snapshot(tables, C)
    assert list(snap.index) == ["a", "b", "d"]  # without cancellations d is active
    catalog = catalog_for(tables)
    assert {catalog[c].family for c in snap.columns} == {"purchases", "btyd", "profile"}
    assert list(snap.columns)[-1] == "tenure_days"
    assert build_program_features(tables, C, FeatureConfig()).empty
    assert build_support_features(tables, C, FeatureConfig()).empty


def test_missing_optional_columns_drop_only_their_features():
    full = make_tables()
    tables = full.replace(
        purchases=full.purchases.drop(columns=["category", "channel"]),
        program_events=full.program_events.drop(columns=["points", "tier"]),
        support_interactions=full.support_interactions[["customer_id", "timestamp"]],
        customers=full.customers[["customer_id"]],
    )
    snap = build_snapshot(tables, C)
    cols = set(snap.columns)
    assert "distinct_categories_365d" not in cols and "distinct_channels_365d" not in cols
    assert not any(c.startswith(("points_", "redemption_rate", "tier")) for c in cols)
    assert "logins_30d" in cols and "support_contacts_90d" in cols
    assert {
        c for c in cols if c.startswith(("support_", "csat", "nps", "ces", "days_since_last_contact"))
    } == {"support_contacts_30d", "support_contacts_90d", "support_contacts_365d", "days_since_last_contact"}
    assert snap.loc["a", "tenure_days"] == 152.0  # no sign-up column: first purchase
    assert list(snap.columns) == snapshot_columns(tables)


def test_custom_windows_change_names():
    config = FeatureConfig(windows=(60, 14), downgrade_window_days=10)
    snap = build_snapshot(make_tables(), C, config)
    assert "purchase_count_14d" in snap.columns and "purchase_count_60d" in snap.columns
    assert "purchase_trend_14d_vs_60d" in snap.columns and "tier_downgraded_10d" in snap.columns
    assert "distinct_categories_60d" in snap.columns
    assert snap.loc["a", "purchase_count_60d"] == 1.0  # window starts 2024-04-02
    assert snap.loc["a", "tier_downgraded_10d"] == 0.0  # silver since 05-15, so already silver on 05-22
    assert set(snap.columns) <= set(catalog_for(make_tables(), config))


def test_gap_std_same_on_sorted_and_shuffled_rows():
    p = make_tables().purchases
    sorted_std = purchase_gap_std(p, C)
    shuffled_std = purchase_gap_std(p.sample(frac=1.0, random_state=3).reset_index(drop=True), C)
    pd.testing.assert_series_equal(sorted_std, shuffled_std)
    assert sorted_std.to_dict() == pytest.approx({"a": math.sqrt(200.0)})


def test_family_builders_only_return_customers_with_history():
    t = make_tables()
    purchases = build_purchases_features(t, C, FeatureConfig())
    assert list(purchases.index) == ["a", "b", "c", "d"]
    support = build_support_features(t, C, FeatureConfig())
    assert list(support.index) == ["b"]


def test_gap_std_matches_a_plain_groupby_on_random_data():
    rng = np.random.default_rng(5)
    n = 3000
    frame = (
        pd.DataFrame(
            {
                "customer_id": pd.array(rng.choice([f"k{i:03d}" for i in range(200)], n), dtype="string"),
                "timestamp": (
                    pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 600 * 1440, n), unit="min")
                ).astype("datetime64[us]"),
                "amount": rng.choice([-5.0, 10.0, 20.0], n),
            }
        )
        .sort_values(["customer_id", "timestamp"], kind="stable")
        .reset_index(drop=True)
    )
    got = purchase_gap_std(frame, C)
    bought = frame[(frame["timestamp"] < C) & (frame["amount"] >= 0)]
    gaps = bought.groupby("customer_id")["timestamp"].diff().dt.total_seconds() / 86400
    expected = gaps.groupby(bought["customer_id"]).std(ddof=1).dropna()
    expected.index = expected.index.astype("string")
    expected.index.name = "customer_id"
    pd.testing.assert_series_equal(
        got, expected.rename("purchase_gap_std_days"), check_exact=False, rtol=1e-9
    )


def test_distinct_categories_beyond_the_bitmask_limit():
    n = 70  # more distinct categories than a 64-bit mask holds
    purchases = pd.DataFrame(
        {
            "customer_id": pd.array(["a"] * n + ["b"] * 2, dtype="string"),
            "timestamp": pd.Series([pd.Timestamp("2024-05-01")] * (n + 2), dtype="datetime64[us]"),
            "amount": [1.0] * (n + 2),
            "category": pd.array([f"cat{i}" for i in range(n)] + ["cat1", "cat1"], dtype="string"),
        }
    )
    out = build_purchases_features(Tables(purchases=purchases), C, FeatureConfig())
    assert out["distinct_categories_365d"].to_dict() == {"a": 70.0, "b": 1.0}
    few = build_purchases_features(
        Tables(purchases=purchases.iloc[-5:].reset_index(drop=True)), C, FeatureConfig()
    )
    assert few["distinct_categories_365d"].to_dict() == {"a": 3.0, "b": 1.0}


def test_distinct_counts_same_with_sparse_path(monkeypatch):
    import churnlens.features.purchases as purchases_module

    dense = build_snapshot(make_tables(), C)
    monkeypatch.setattr(purchases_module, "_DENSE_LIMIT", 0)  # force the np.unique path
    sparse = build_snapshot(make_tables(), C)
    pd.testing.assert_frame_equal(dense, sparse)
    assert sparse.loc["a", "distinct_categories_365d"] == 2.0
