"""Churn labels, training cutoffs and training sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlens.config import ChurnConfig, LabelConfig
from churnlens.data import Tables
from churnlens.features import (
    active_customers,
    build_labels,
    build_snapshot,
    build_training_set,
    label_mode,
    snapshot_columns,
    training_cutoffs,
)

C = pd.Timestamp("2024-06-01")  # C + 90 days = 2024-08-30


def ts(values):
    return pd.to_datetime(pd.Series(values), format="ISO8601").astype("datetime64[us]")


def s(values):
    return pd.array(values, dtype="string")


def make_tables(with_cancellations: bool = True) -> Tables:
    purchases = pd.DataFrame(
        {
            "customer_id": s(["a", "a", "b", "b", "c", "c", "d", "d", "e", "z"]),
            "timestamp": ts(
                [
                    "2024-01-10",
                    "2024-06-01 00:00:00",
                    "2024-02-01",
                    "2024-08-30 00:00:00",
                    "2024-03-01",
                    "2024-08-29 23:59:59",
                    "2024-03-01",
                    "2024-07-01",
                    "2024-03-01",
                    "2024-12-31 12:00",
                ]
            ),
            "amount": [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, -10.0, 10.0, 5.0],
        }
    )
    customers = pd.DataFrame(
        {"customer_id": s(["a", "b", "c", "d", "e", "z"]), "segment": s(["s1", "s2", "s1", "s3", "s2", "s4"])}
    )
    cancellations = pd.DataFrame(
        {
            "customer_id": s(["b", "c", "d"]),
            "timestamp": ts(["2024-06-01 00:00:00", "2024-08-30 00:00:00", "2024-05-31"]),
        }
    )
    return Tables(
        purchases=purchases, customers=customers, cancellations=cancellations if with_cancellations else None
    )


def test_label_mode():
    assert label_mode(make_tables()) == "contractual"
    assert label_mode(make_tables(False)) == "non_contractual"
    assert label_mode(make_tables(), "non_contractual") == "non_contractual"
    with pytest.raises(ValueError, match="contractual labels need a cancellations table"):
        label_mode(make_tables(False), "contractual")
    with pytest.raises(ValueError, match="label mode must be one of auto, contractual, non_contractual"):
        label_mode(make_tables(), "sometimes")


def test_non_contractual_labels_horizon_start_inclusive_end_exclusive():
    customers = pd.Index(["a", "b", "c", "d", "e"], dtype="string", name="customer_id")
    labels = build_labels(make_tables(), C, customers, horizon_days=90, mode="non_contractual")
    # a buys exactly at C (inside); b exactly at C + 90 (outside); c one second before C + 90;
    # d only has a refund in the horizon; e nothing.
    assert labels.to_dict() == {"a": 0, "b": 1, "c": 0, "d": 1, "e": 1}
    assert labels.dtype == np.int8 and labels.name == "churned"
    assert labels.index.equals(customers)


def test_contractual_labels_horizon_start_inclusive_end_exclusive():
    customers = pd.Index(["a", "b", "c", "d"], dtype="string", name="customer_id")
    labels = build_labels(make_tables(), "2024-06-01", customers, horizon_days=90)
    # b cancels exactly at C (inside); c exactly at C + 90 (outside); d before C (not in the horizon).
    assert labels.to_dict() == {"a": 0, "b": 1, "c": 0, "d": 0}


def test_shorter_horizon():
    customers = pd.Index(["c"], dtype="string")
    assert build_labels(make_tables(), C, customers, horizon_days=30, mode="non_contractual").tolist() == [1]
    with pytest.raises(ValueError, match="horizon_days must be positive, got 0"):
        build_labels(make_tables(), C, customers, horizon_days=0)


def test_training_cutoffs():
    cutoffs = training_cutoffs(make_tables(), horizon_days=90, step_days=30, min_history_days=90)
    # data 2024-01-10 .. 2024-12-31: latest = 2025-01-01 - 90d; earliest allowed 2024-04-09.
    assert [c.strftime("%Y-%m-%d") for c in cutoffs] == [
        "2024-05-06",
        "2024-06-05",
        "2024-07-05",
        "2024-08-04",
        "2024-09-03",
        "2024-10-03",
    ]
    with pytest.raises(ValueError, match="too short for a training cutoff"):
        training_cutoffs(make_tables(), horizon_days=300, min_history_days=90)


def test_training_set_refuses_cutoffs_without_a_full_horizon():
    tables = make_tables(False)
    with pytest.raises(
        ValueError,
        match=r"cutoff 2024-10-04 00:00:00 has no full 90-day horizon of future data: "
        r"it needs data up to 2025-01-02 00:00:00, but the data ends at "
        r"2024-12-31 12:00:00",
    ):
        build_training_set(tables, cutoffs=["2024-06-01", "2024-10-04"])
    out = build_training_set(tables, cutoffs=["2024-10-03"])  # exactly a full horizon
    assert len(out) > 0


def test_training_set_layout_and_labels():
    tables = make_tables(False)
    calls = []
    out = build_training_set(
        tables,
        cutoffs=["2024-06-01", "2024-04-01"],
        horizon_days=90,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 2), (2, 2)]
    assert out.index.names == ["cutoff", "customer_id"]
    assert list(out.columns) == snapshot_columns(tables) + ["churned"]
    assert out["churned"].dtype == np.int8
    april = out.loc[pd.Timestamp("2024-04-01")]
    june = out.loc[pd.Timestamp("2024-06-01")]
    assert list(april.index) == ["a", "b", "c", "d", "e"]
    # April horizon ends 2024-06-30: a buys 06-01; others have nothing -> churned
    assert april["churned"].to_dict() == {"a": 0, "b": 1, "c": 1, "d": 1, "e": 1}
    assert june["churned"].to_dict() == {"a": 0, "b": 1, "c": 0, "d": 1, "e": 1}
    pd.testing.assert_frame_equal(
        june.drop(columns="churned"), build_snapshot(tables, C), check_categorical=False
    )
    assert list(out["attr_segment"].cat.categories) == ["s1", "s2", "s3"]


def test_training_set_unifies_categories_across_cutoffs():
    tables = make_tables(False)
    purchases = pd.concat(
        [
            tables.purchases,
            pd.DataFrame({"customer_id": s(["z"]), "timestamp": ts(["2024-09-01"]), "amount": [1.0]}),
        ],
        ignore_index=True,
    )
    tables = tables.replace(
        purchases=purchases.sort_values(["customer_id", "timestamp"]).reset_index(drop=True)
    )
    out = build_training_set(tables, cutoffs=["2024-06-01", "2024-09-15"], horizon_days=90)
    # z (segment s4) is active only at the second cutoff; both cutoffs share the levels
    assert list(out["attr_segment"].cat.categories) == ["s1", "s2", "s3", "s4"]
    assert out.loc[pd.Timestamp("2024-06-01"), "attr_segment"].cat.categories.tolist() == [
        "s1",
        "s2",
        "s3",
        "s4",
    ]


def test_training_set_uses_config_horizon_and_mode():
    tables = make_tables(True)
    config = ChurnConfig(labels=LabelConfig(horizon_days=30, mode="non_contractual"))
    out = build_training_set(tables, cutoffs=["2024-06-01"], config=config)
    # d cancelled before C (inactive); b cancels at C so is still active. Non-contractual with
    # 30 days: only a buys in [C, C + 30d) (contractual mode would flag b alone).
    assert out["churned"].droplevel(0).to_dict() == {"a": 0, "b": 1, "c": 1, "e": 1}


@pytest.fixture(scope="module")
def sim():
    simulate = pytest.importorskip("churnlens.simulate").simulate
    return simulate(2_000, months=18, seed=7)


@pytest.mark.parametrize("cutoff", ["2023-10-01", "2024-02-01"])
def test_labels_agree_with_the_simulator(sim, cutoff):
    truth = sim.truth_fn(cutoff, horizon_days=90, draws=4).set_index("customer_id")
    active = active_customers(sim.tables, cutoff)
    assert list(active) == list(truth.index.astype("string"))
    assert build_snapshot(sim.tables, cutoff).index.equals(active)
    non_contractual = build_labels(sim.tables, cutoff, active, horizon_days=90, mode="non_contractual")
    contractual = build_labels(sim.tables, cutoff, active, horizon_days=90, mode="contractual")
    assert truth["no_purchase"].notna().all()
    assert non_contractual.to_numpy().tolist() == truth["no_purchase"].astype(int).tolist()
    assert contractual.to_numpy().tolist() == truth["cancelled"].astype(int).tolist()
    assert 0 < non_contractual.mean() < 1 and 0 < contractual.mean() < non_contractual.mean()
