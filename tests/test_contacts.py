"""The ``contacts`` table: validation, and the contact features (values worked out by hand).

Cutoff C = 2024-06-01. Windows: 30d starts 2024-05-02, 90d starts 2024-03-03, 365d starts
2023-06-02 (2024 is a leap year).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from churnlens.data import DataValidationError, load_tables, validate_tables, write_tables
from churnlens.features import build_contacts_features, build_snapshot, catalog_for, snapshot_columns
from churnlens.features.catalog import spec_for

C = pd.Timestamp("2024-06-01")

CONTACT_ROWS = [
    # customer, timestamp, campaign, action, group, cost
    ("a", "2024-01-10", "k1", "win_back", "treatment", 5.0),
    ("a", "2024-04-01", "k2", "points_reminder", "control", 0.0),
    ("a", "2024-05-20", "k3", "service_recovery", "treatment", 8.0),
    ("a", "2024-06-01", "k4", "win_back", "treatment", 5.0),  # at the cutoff: the future
    ("b", "2023-03-01", "k0", "win_back", "treatment", 5.0),  # before the longest window
    ("b", "2024-05-25", "k3", "win_back", "control", 0.0),
    ("e", "2024-05-10 09:00", "k5", "win_back", "treatment", 5.0),
    ("e", "2024-05-10 09:00", "k6", "points_reminder", "treatment", 0.5),
    ("f", "2024-05-10 09:00", "k5", "win_back", "control", 0.0),
    ("f", "2024-05-10 09:00", "k6", "win_back", "treatment", 5.0),
]


def raw_contacts(rows=CONTACT_ROWS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "campaign_id", "action", "group", "cost"])


def raw_purchases() -> pd.DataFrame:
    ids = ["a", "b", "c", "e", "f"]
    return pd.DataFrame(
        {"customer_id": ids, "timestamp": ["2024-05-15"] * len(ids), "amount": [10.0] * len(ids)}
    )


def tables(contacts: pd.DataFrame | None = None):
    raw = {"purchases": raw_purchases(), "contacts": raw_contacts() if contacts is None else contacts}
    return validate_tables(raw)[0]


# --- validation ---------------------------------------------------------------------------------


def test_contacts_are_typed_like_the_other_tables():
    contacts = tables().contacts
    assert list(contacts.columns) == ["customer_id", "timestamp", "campaign_id", "action", "group", "cost"]
    assert contacts["customer_id"].dtype == pd.StringDtype()
    assert contacts["timestamp"].dtype == "datetime64[us]"
    for col in ("campaign_id", "action", "group"):
        assert isinstance(contacts[col].dtype, pd.CategoricalDtype), col
    assert list(contacts["group"].cat.categories) == ["control", "treatment"]
    assert contacts["cost"].dtype == "float64"
    assert contacts[["customer_id", "timestamp"]].equals(
        contacts[["customer_id", "timestamp"]]
        .sort_values(["customer_id", "timestamp"])
        .reset_index(drop=True)
    )


def test_group_is_normalised_ignoring_case_and_spaces():
    raw = raw_contacts().assign(group=["Treatment", " CONTROL ", *raw_contacts()["group"][2:]])
    got = tables(raw).contacts
    assert set(got["group"].astype(str)) == {"treatment", "control"}
    assert list(got["group"].cat.categories) == ["control", "treatment"]


@pytest.mark.parametrize(
    ("change", "column", "message"),
    [
        (
            {"group": "treated"},
            "group",
            "must be one of treatment, control (1 row); offending rows: row 1: 'treated'",
        ),
        ({"group": None}, "group", "is missing (the column is required)"),
        ({"cost": -1.0}, "cost", "is outside the allowed range >= 0 (1 row); offending rows: row 1: -1"),
        ({"cost": "free"}, "cost", "is not a number (1 row); offending rows: row 1: 'free'"),
        ({"timestamp": "01/10/2024"}, "timestamp", "is not a valid timestamp"),
        ({"campaign_id": None}, "campaign_id", "is missing (the column is required)"),
    ],
)
def test_bad_contacts_name_table_column_and_row(change, column, message):
    raw = raw_contacts().astype(object)
    for col, value in change.items():
        raw.loc[0, col] = value
    with pytest.raises(DataValidationError) as info:
        tables(raw)
    assert info.value.table == "contacts" and info.value.column == column
    assert message in str(info.value)


@pytest.mark.parametrize("column", ["customer_id", "timestamp", "campaign_id", "action", "group"])
def test_required_contact_columns(column):
    with pytest.raises(
        DataValidationError, match=f"table 'contacts', column '{column}': is required but missing"
    ):
        tables(raw_contacts().drop(columns=column))


def test_channel_and_cost_are_optional():
    got = tables(raw_contacts().drop(columns="cost").assign(channel="email")).contacts
    assert "cost" not in got.columns and isinstance(got["channel"].dtype, pd.CategoricalDtype)


def test_a_customer_in_both_groups_of_one_campaign_is_refused():
    rows = [*CONTACT_ROWS, ("a", "2024-05-21", "k3", "service_recovery", "control", 0.0)]
    with pytest.raises(DataValidationError) as info:
        tables(raw_contacts(rows))
    assert str(info.value) == (
        "table 'contacts', column 'group': puts a customer in both the treatment and the control group of one "
        "campaign (2 rows); offending rows: row 3: customer_id='a', campaign_id='k3', group='treatment'; "
        "row 11: customer_id='a', campaign_id='k3', group='control'"
    )


def test_contacts_round_trip_through_csv_and_parquet(tmp_path):
    original = tables()
    for fmt in ("csv", "parquet"):
        out = tmp_path / fmt
        write_tables(original, out, fmt=fmt)
        loaded, _ = load_tables(out)
        pd.testing.assert_frame_equal(loaded.contacts, original.contacts)


# --- features -----------------------------------------------------------------------------------


def test_contact_features_by_hand():
    got = build_contacts_features(tables(), C)
    assert list(got.index) == ["a", "b", "e", "f"]
    assert list(got.columns) == [
        "campaign_contacts_30d",
        "campaign_contacts_90d",
        "campaign_contacts_365d",
        "campaign_holdouts_365d",
        "campaign_cost_365d",
        "days_since_last_campaign_contact",
        "last_campaign_action",
        "last_campaign_holdout",
    ]
    a, b, e, f = (got.loc[k] for k in "abef")
    assert (a.campaign_contacts_30d, a.campaign_contacts_90d, a.campaign_contacts_365d) == (1, 1, 2)
    assert (a.campaign_holdouts_365d, a.campaign_cost_365d) == (1, 13.0)
    assert a.days_since_last_campaign_contact == 12 and a.last_campaign_action == "service_recovery"
    assert a.last_campaign_holdout == 0
    # b: its only contact received is older than every window; held out last time
    assert (b.campaign_contacts_365d, b.campaign_holdouts_365d, b.campaign_cost_365d) == (0, 1, 0.0)
    assert b.days_since_last_campaign_contact == 458 and b.last_campaign_action == "win_back"
    assert b.last_campaign_holdout == 1
    # ties at one timestamp: the highest action name; a treatment over a control
    assert e.last_campaign_action == "win_back" and e.campaign_contacts_30d == 2
    assert f.last_campaign_holdout == 0 and f.campaign_holdouts_365d == 1


def test_snapshot_fills_customers_never_contacted_and_drops_the_family_without_the_table():
    with_contacts = tables()
    snap = build_snapshot(with_contacts, C)
    c = snap.loc["c"]
    assert c.campaign_contacts_365d == 0 and c.campaign_cost_365d == 0 and c.last_campaign_holdout == 0
    assert math.isnan(c.days_since_last_campaign_contact) and pd.isna(c.last_campaign_action)
    assert isinstance(snap["last_campaign_action"].dtype, pd.CategoricalDtype)
    without = with_contacts.replace(contacts=None)
    assert not any("campaign" in col for col in snapshot_columns(without))
    assert not any("campaign" in col for col in build_snapshot(without, C).columns)


def test_every_contact_feature_has_a_bilingual_catalog_entry():
    catalog = catalog_for(tables())
    names = [c for c in snapshot_columns(tables()) if catalog[c].family == "contacts"]
    assert len(names) == 8
    for name in names:
        spec = spec_for(name)
        assert spec.family == "contacts" and spec.description("fr") != spec.description("en")
