"""A customer on their own gets the features the whole base gives them.

A customer posted to the API as raw events is a snapshot of one customer: the builders then take
the paths made for a few rows (no frame per family, categories coded in Python, lookups in
dicts instead of pandas indexers). These tests hold those paths to the batch path, feature by
feature and bit for bit, over many simulated customers and the edge cases: no events in a
family, events exactly at and after the cutoff, optional columns missing, ties in time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import churnlens.features.snapshot as snapshot_module
import churnlens.model as model_module
from churnlens.config import FeatureConfig
from churnlens.data import Tables
from churnlens.features import build_snapshot
from churnlens.model import category_coders, feature_matrix
from churnlens.serving.explain import row_dicts
from churnlens.simulate import simulate

CUTOFFS = (pd.Timestamp("2023-12-01"), pd.Timestamp("2024-02-15"))
CONFIG = FeatureConfig(btyd_params=(0.8, 60.0, 0.9, 3.5))  # as a served model records them


@pytest.fixture(scope="module")
def base() -> Tables:
    return simulate(500, months=15, seed=31).tables


def _with_edges(tables: Tables, cutoff: pd.Timestamp) -> Tables:
    """The tables with events exactly at and after the cutoff, and ties in time, added."""
    rng = np.random.default_rng(7)
    p = tables.purchases
    ids = p["customer_id"].drop_duplicates().to_numpy()
    picked = rng.choice(ids, 40, replace=False)
    at_cut = p[p["customer_id"].isin(picked[:20])].groupby("customer_id", observed=True).head(1).copy()
    at_cut["timestamp"] = cutoff  # exactly at the cutoff: the future
    after = p[p["customer_id"].isin(picked[20:])].groupby("customer_id", observed=True).head(1).copy()
    after["timestamp"] = cutoff + pd.Timedelta(days=3)
    purchases = pd.concat([p, at_cut, after])
    out = {"purchases": purchases}
    if tables.program_events is not None and "tier" in tables.program_events.columns:
        e = tables.program_events
        tied = e[e["tier"].notna()].groupby("customer_id", observed=True).tail(1).head(30).copy()
        tied["tier"] = tied["tier"].astype("string").map({"gold": "silver"}).fillna("gold")  # another tier, same time
        out["program_events"] = pd.concat([e.astype({"tier": "string"}), tied])
    if tables.support_interactions is not None and "nps" in tables.support_interactions.columns:
        s = tables.support_interactions
        tied = s.groupby("customer_id", observed=True).tail(1).head(30).copy()
        tied["nps"] = np.where(tied["nps"].isna(), 3.0, 10.0 - tied["nps"].fillna(0.0))
        out["support_interactions"] = pd.concat([s, tied])
    for name, df in out.items():
        out[name] = df.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    return tables.replace(**out)


def _without_optional(tables: Tables) -> Tables:
    """The tables without their optional columns (and without customers)."""
    drop = {
        "purchases": ["category", "channel"],
        "program_events": ["points", "tier"],
        "support_interactions": ["nps", "csat", "complaint", "resolved"],
    }
    out = {}
    for name, cols in drop.items():
        df = getattr(tables, name)
        if df is not None:
            out[name] = df.drop(columns=[c for c in cols if c in df.columns])
    return tables.replace(customers=None, **out)


def _alone(tables: Tables, cid: str) -> Tables:
    """One customer's rows of every table (empty tables where they have none), as posted."""
    out = {}
    for name, df in tables.present().items():
        part = df[(df["customer_id"] == cid).to_numpy()].reset_index(drop=True)
        for col in part.columns:  # posted events carry only the categories present
            if isinstance(part[col].dtype, pd.CategoricalDtype):
                part[col] = part[col].cat.remove_unused_categories()
        out[name] = part
    return Tables(**out)


def _assert_same_row(alone: pd.DataFrame, batch: pd.DataFrame, cid: str) -> None:
    assert list(alone.columns) == list(batch.columns)
    assert list(alone.index) == [cid]
    for col in batch.columns:
        got, want = alone[col].iloc[0], batch.at[cid, col]
        if isinstance(batch[col].dtype, pd.CategoricalDtype):
            assert isinstance(alone[col].dtype, pd.CategoricalDtype), col
            assert (pd.isna(got) and pd.isna(want)) or got == want, (cid, col, got, want)
        else:
            assert alone[col].dtype == np.float64, col
            same = np.array([got]).view("i8") == np.array([want]).view("i8")
            assert same[0] or (np.isnan(got) and np.isnan(want)), (cid, col, got, want)


@pytest.mark.parametrize("variant", ["as simulated", "with edge cases", "without optional columns"])
@pytest.mark.parametrize("batch_rows", ["few", "many"])
def test_one_customer_alone_gets_the_batch_features(base, monkeypatch, variant, batch_rows):
    cutoff = CUTOFFS[0] if variant != "with edge cases" else CUTOFFS[1]
    tables = {
        "as simulated": base,
        "with edge cases": _with_edges(base, cutoff),
        "without optional columns": _without_optional(base),
    }[variant]
    if batch_rows == "many":  # the batch takes the path of large snapshots (pandas categoricals, block as is)
        with monkeypatch.context() as m:
            m.setattr(snapshot_module, "_FEW_ROWS", 0)
            batch = build_snapshot(tables, cutoff, CONFIG)
    else:
        batch = build_snapshot(tables, cutoff, CONFIG)
    assert len(batch) > 100
    ids = tables.purchases["customer_id"].drop_duplicates().astype(str).tolist()
    rng = np.random.default_rng(11)
    picked = set(rng.choice(ids, 90, replace=False).tolist())
    if variant == "with edge cases":  # every customer touched by an edge case
        p, e, s = tables.purchases, tables.program_events, tables.support_interactions
        edges = pd.concat(
            [
                p[p["timestamp"] >= cutoff]["customer_id"],  # events at or after the cutoff
                e[e.duplicated(["customer_id", "timestamp"], keep=False)]["customer_id"],  # ties in time
                s[s.duplicated(["customer_id", "timestamp"], keep=False)]["customer_id"],
            ]
        ).astype(str)
        assert len(set(edges) & set(batch.index)) > 50
        picked |= set(edges)
    inactive = 0
    for cid in sorted(picked):
        alone = build_snapshot(_alone(tables, cid), cutoff, CONFIG)
        if cid in batch.index:
            _assert_same_row(alone, batch, cid)
        else:
            assert len(alone) == 0, cid
            inactive += 1
    assert inactive < len(picked)
    if variant == "as simulated":
        assert inactive > 0  # the inactive customers were exercised too


def test_no_program_or_support_event_alone_gives_zero_counts(base):
    cutoff = CUTOFFS[0]
    batch = build_snapshot(base, cutoff, CONFIG)
    quiet = set(batch.index) - set(base.program_events["customer_id"].astype(str)) - set(
        base.support_interactions["customer_id"].astype(str)
    )
    # customers with neither: give one of them empty program and support tables
    cid = sorted(quiet)[0] if quiet else None
    if cid is None:  # make one: drop a scored customer's program and support rows
        cid = str(batch.index[0])
        base = base.replace(
            program_events=base.program_events[base.program_events["customer_id"] != cid],
            support_interactions=base.support_interactions[base.support_interactions["customer_id"] != cid],
        )
        batch = build_snapshot(base, cutoff, CONFIG)
    alone = build_snapshot(_alone(base, cid), cutoff, CONFIG)
    _assert_same_row(alone, batch, cid)
    assert alone.at[cid, "support_contacts_365d"] == 0.0 and alone.at[cid, "logins_365d"] == 0.0


def test_model_matrix_of_a_few_categories_equals_the_indexer(base, monkeypatch):
    snap = build_snapshot(base, CUTOFFS[0], CONFIG)
    cats = [c for c in snap.columns if isinstance(snap[c].dtype, pd.CategoricalDtype)]
    assert len(cats) >= 3
    levels = {}
    for k, col in enumerate(cats):  # training levels: some seen values left out, one unseen added
        seen = [str(v) for v in snap[col].cat.categories]
        levels[col] = sorted(seen[k % 2 :: 1 + k % 2] + ["never seen"])
    metadata = {"features": list(snap.columns), "categorical_levels": levels}
    coders = category_coders(levels)
    for rows in (snap, snap.iloc[:1], snap.iloc[3:9]):
        fast = feature_matrix(rows, metadata, coders=coders)
        with monkeypatch.context() as m:
            m.setattr(model_module, "_FEW_CATEGORIES", -1)  # always pandas' indexer
            slow = feature_matrix(rows, metadata, coders=coders)
        assert fast.shape == slow.shape
        assert np.array_equal(fast, slow, equal_nan=True)
        assert np.array_equal(np.isnan(fast), np.isnan(slow))


def test_reason_rows_are_the_snapshot_rows(base):
    snap = build_snapshot(base, CUTOFFS[0], CONFIG)
    expected = snap.to_numpy(dtype=object)
    for positions in (np.array([0]), np.array([5, 2, 5, 40]), np.arange(len(snap))):
        rows = row_dicts(snap, positions)
        assert sorted(rows) == sorted(set(positions.tolist()))
        for pos, row in rows.items():
            for j, col in enumerate(snap.columns):
                got, want = row[col], expected[pos, j]
                assert (pd.isna(got) and pd.isna(want)) or (got == want and type(got) is type(want)), (pos, col)
    one = snap.iloc[[7]]
    row = row_dicts(one, np.array([0]))[0]
    assert all(
        (pd.isna(row[c]) and pd.isna(v)) or row[c] == v for c, v in zip(snap.columns, expected[7], strict=True)
    )
