"""The chunked feature engine: results do not depend on chunk size, row order or text dtype.

Builders walk validated tables in chunks of whole customers; every feature is a function of
one customer's rows, so the chunking must not change a single bit. Sums run in time order
within a customer, so the input row order does not matter either.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import churnlens.features.kernels as engine
from churnlens.config import FeatureConfig
from churnlens.data import Tables, validate_tables
from churnlens.features import (
    build_program_features,
    build_purchases_features,
    build_snapshot,
    build_support_features,
)
from churnlens.features.profile import build_profile_features
from churnlens.simulate import simulate

CUTOFFS = ("2023-11-15", "2024-03-01")
BUILDERS = (build_purchases_features, build_program_features, build_support_features, build_profile_features)


@pytest.fixture(scope="module")
def tables() -> Tables:
    return simulate(1200, months=15, seed=21).tables


def assert_same_bits(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right, check_exact=True)
    for col in left.columns:
        if left[col].dtype == np.float64:
            assert np.array_equal(left[col].to_numpy().view("i8"), right[col].to_numpy().view("i8")), col
        elif isinstance(left[col].dtype, pd.CategoricalDtype):
            assert left[col].cat.categories.equals(right[col].cat.categories), col
            assert left[col].cat.categories.dtype == right[col].cat.categories.dtype, col


@pytest.mark.parametrize("chunk_rows", [1, 7, 500])
def test_chunk_size_does_not_change_a_bit(tables, monkeypatch, chunk_rows):
    expected = {c: build_snapshot(tables, c) for c in CUTOFFS}
    parts = {(c, b.__name__): b(tables, pd.Timestamp(c), FeatureConfig()) for c in CUTOFFS for b in BUILDERS}
    monkeypatch.setattr(engine, "CHUNK_ROWS", chunk_rows)
    for c in CUTOFFS:
        assert_same_bits(build_snapshot(tables, c), expected[c])
        for b in BUILDERS:
            assert_same_bits(b(tables, pd.Timestamp(c), FeatureConfig()), parts[(c, b.__name__)])


def test_row_order_does_not_change_a_bit(tables):
    rng = np.random.default_rng(4)
    shuffled = Tables(
        **{
            name: df.iloc[rng.permutation(len(df))].reset_index(drop=True)
            for name, df in tables.present().items()
        }
    )
    for c in CUTOFFS:
        assert_same_bits(build_snapshot(shuffled, c), build_snapshot(tables, c))


def test_text_as_categories_or_strings_gives_the_same_snapshot(tables):
    as_text = Tables(
        **{
            name: df.astype({c: "string" for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})
            for name, df in tables.present().items()
        }
    )
    assert any(
        isinstance(t, pd.DataFrame) and "string" in set(map(str, t.dtypes))
        for t in as_text.present().values()
    )
    for c in CUTOFFS:
        assert_same_bits(build_snapshot(as_text, c), build_snapshot(tables, c))


def test_support_features_match_a_plain_pandas_groupby():
    rng = np.random.default_rng(8)
    n = 4000
    ids = pd.array(rng.choice([f"s{i:03d}" for i in range(300)], n), dtype="string")
    times = pd.Timestamp("2023-05-01") + pd.to_timedelta(rng.integers(0, 420 * 24, n), unit="h")

    def flag(p: float) -> pd.arrays.BooleanArray:
        return pd.arrays.BooleanArray(rng.random(n) < p, rng.random(n) < 0.1)

    def score(lo: int, hi: int) -> np.ndarray:
        return np.where(rng.random(n) < 0.5, np.nan, rng.integers(lo, hi + 1, n)).astype(float)

    raw = pd.DataFrame(
        {
            "customer_id": ids,
            "timestamp": times,
            "resolved": flag(0.8),
            "first_contact_resolution": flag(0.6),
            "handle_minutes": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 6.0, n).round(1)),
            "complaint": flag(0.2),
            "csat": score(1, 5),
            "nps": score(0, 10),
            "ces": score(1, 7),
        }
    )
    tables, _ = validate_tables(
        {"purchases": raw[["customer_id", "timestamp"]].assign(amount=1.0), "support_interactions": raw}
    )
    si = tables.support_interactions
    got = build_support_features(tables, pd.Timestamp("2024-06-01"), FeatureConfig())
    past = si[si["timestamp"] < pd.Timestamp("2024-06-01")]
    g = past.groupby("customer_id", observed=True)
    expected = pd.DataFrame(
        index=pd.Index(sorted(past["customer_id"].unique()), dtype="string", name="customer_id")
    )
    for w in (30, 90, 365):
        recent = past[past["timestamp"] >= pd.Timestamp("2024-06-01") - pd.Timedelta(days=w)]
        expected[f"support_contacts_{w}d"] = recent.groupby("customer_id").size()
        expected[f"support_complaints_{w}d"] = (
            recent[recent["complaint"].fillna(False)].groupby("customer_id").size()
        )
    expected["support_open_issues"] = past[past["resolved"] == False].groupby("customer_id").size()  # noqa: E712
    expected["support_fcr_rate"] = g["first_contact_resolution"].apply(
        lambda x: x.dropna().astype(float).mean()
    )
    expected["support_handle_minutes_mean"] = g["handle_minutes"].mean()
    for col in ("csat", "nps"):
        answered = past.dropna(subset=[col]).sort_values(["customer_id", "timestamp", col])
        expected[f"{col}_last"] = answered.groupby("customer_id")[col].last()
    expected["csat_mean"] = g["csat"].mean()
    expected["ces_mean"] = g["ces"].mean()
    expected["days_since_last_contact"] = (
        pd.Timestamp("2024-06-01") - g["timestamp"].max()
    ).dt.total_seconds() / 86400
    counts = [c for c in expected.columns if c.startswith("support_") and not c.endswith(("rate", "mean"))]
    expected[counts] = expected[counts].fillna(0.0)
    expected = expected.astype("float64")
    pd.testing.assert_frame_equal(
        got.drop(columns="nps_category"),
        expected[got.columns.drop("nps_category")],
        check_exact=False,
        rtol=1e-12,
    )
    nps = got["nps_last"]
    assert (got["nps_category"][nps <= 6].dropna() == "detractor").all()
    assert got["nps_category"][nps.isna()].isna().all()


def test_benchmark_generator_gives_what_validation_gives():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "features.py"
    spec = importlib.util.spec_from_file_location("bench_features", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.check_generator(1500)
