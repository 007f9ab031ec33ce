"""The loyalty-program simulator: reproducibility, plausibility, contract dtypes, exact truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli.main import app
from churnlens.cli.simulate_cmd import truth_cutoff_grid
from churnlens.data import KNOWN_EVENT_TYPES, TABLE_SPECS, TIER_ORDER
from churnlens.data.io import load_tables
from churnlens.data.validate import string_categories
from churnlens.simulate import simulate, simulate_truth_table
from churnlens.simulate.truth import states_at

N = 20_000
HORIZON = 90
KIND_DTYPES = {
    "id": pd.StringDtype(),
    "text": pd.StringDtype(),
    "time": np.dtype("datetime64[us]"),
    "number": np.dtype("float64"),
    "flag": pd.BooleanDtype(),
}


@pytest.fixture(scope="module")
def sim():
    return simulate(N, months=24, seed=0)


@pytest.fixture(scope="module")
def latest_cutoff(sim) -> pd.Timestamp:
    return truth_cutoff_grid(sim.tables.data_end, HORIZON, 1)[0]


@pytest.fixture(scope="module")
def truth(sim, latest_cutoff) -> pd.DataFrame:
    return sim.truth_fn(latest_cutoff, HORIZON, draws=200)


def active_ids(tables, cutoff: pd.Timestamp) -> set[str]:
    """DESIGN §3, written independently of the simulator's own code."""
    pu = tables.purchases
    bought = pu[(pu.timestamp >= cutoff - pd.Timedelta(days=365)) & (pu.timestamp < cutoff)]
    gone = tables.cancellations[tables.cancellations.timestamp < cutoff]
    return set(bought.customer_id) - set(gone.customer_id)


def decile_gap(p: pd.Series, y: pd.Series) -> float:
    """Mean absolute gap between mean probability and outcome rate over deciles of p."""
    bins = pd.qcut(p.rank(method="first"), 10, labels=False)
    grouped = pd.DataFrame({"p": p, "y": y.astype(float), "b": bins}).groupby("b").mean()
    return float((grouped.p - grouped.y).abs().mean())


# --- reproducibility ----------------------------------------------------------------------------


def test_same_seed_gives_identical_tables_and_truth():
    a = simulate(1500, months=8, seed=3)
    b = simulate(1500, months=8, seed=3)
    for name, table in a.tables.present().items():
        pd.testing.assert_frame_equal(table, getattr(b.tables, name), check_exact=True)
    ta = a.truth_fn("2023-06-01", 60, draws=32)
    tb = b.truth_fn("2023-06-01", 60, draws=32)
    pd.testing.assert_frame_equal(ta, tb, check_exact=True)


def test_other_seed_gives_other_tables():
    a = simulate(1500, months=8, seed=3)
    c = simulate(1500, months=8, seed=4)
    assert len(a.tables.purchases) != len(c.tables.purchases) or not a.tables.purchases.equals(
        c.tables.purchases
    )


def test_replay_to_cutoff_reproduces_the_recorded_path(sim, latest_cutoff):
    day = (latest_cutoff - sim.settings.start_ts).days
    state = states_at(sim, [day])[day]
    ca = sim.tables.cancellations
    cancelled_before = sim.customer_numbers(ca.loc[ca.timestamp < latest_cutoff, "customer_id"])
    in_span = state.churn_day >= 0  # cancellations during the burn-in are not recorded
    np.testing.assert_array_equal(np.flatnonzero(state.cancelled & in_span), cancelled_before)
    # nobody churned (replayed state) buys after the cutoff
    pu = sim.tables.purchases
    later = sim.customer_numbers(pu.loc[pu.timestamp >= latest_cutoff, "customer_id"])
    assert not (~state.alive[later]).any()


# --- plausibility ---------------------------------------------------------------------------------


def test_churn_rate_at_a_mid_cutoff_is_plausible(sim):
    cutoff = sim.settings.start_ts + pd.DateOffset(months=12)
    active = active_ids(sim.tables, cutoff)
    pu = sim.tables.purchases
    future = pu[(pu.timestamp >= cutoff) & (pu.timestamp < cutoff + pd.Timedelta(days=HORIZON))]
    rate = len(active - set(future.customer_id)) / len(active)
    assert 0.10 < rate < 0.50
    assert len(active) > N / 4


def test_every_event_family_and_type_is_present(sim):
    tables = sim.tables
    assert set(tables.present()) == {
        "purchases",
        "customers",
        "program_events",
        "support_interactions",
        "cancellations",
    }
    for name, table in tables.present().items():
        assert len(table) > 0, name
    assert set(tables.program_events.event_type.unique()) == set(KNOWN_EVENT_TYPES)
    assert set(tables.program_events.tier.dropna().unique()) == set(TIER_ORDER)
    assert (tables.purchases.amount < 0).mean() > 0.005  # refunds
    earned = tables.program_events[tables.program_events.event_type == "points_earned"].points
    redeemed = tables.program_events[tables.program_events.event_type == "points_redeemed"].points
    assert (earned >= 0).all() and (redeemed < 0).all()


def test_survey_scores_in_range_and_informative(sim):
    su = sim.tables.support_interactions
    for col, lo, hi in (("csat", 1, 5), ("nps", 0, 10), ("ces", 1, 7)):
        values = su[col].dropna()
        assert len(values) > 0.2 * len(su)
        assert values.between(lo, hi).all() and (values == values.round()).all()
        assert values.nunique() == hi - lo + 1
    assert (su.handle_minutes > 0).all()
    # unresolved contacts get worse CSAT than resolved ones
    by_resolved = su.groupby("resolved").csat.mean()
    assert by_resolved[False] < by_resolved[True] - 0.5


def test_about_half_of_churners_cancel(sim):
    end_day = sim.settings.n_days
    state = states_at(sim, [end_day])[end_day]
    churned_in_span = (~state.alive) & (state.churn_day >= 0)
    share = state.cancelled[churned_in_span].mean()
    assert 0.4 <= share <= 0.6
    assert len(sim.tables.cancellations) == int(state.cancelled[churned_in_span].sum())


# --- contract ---------------------------------------------------------------------------------------


def test_tables_have_the_documented_dtypes_and_order(sim):
    for name, table in sim.tables.present().items():
        spec = TABLE_SPECS[name]
        for col in spec.columns:
            assert col.name in table.columns, (name, col.name)
            dtype = table[col.name].dtype
            if col.kind == "category":  # categories: the values present, sorted, string dtype
                assert isinstance(dtype, pd.CategoricalDtype), (name, col.name, dtype)
                assert dtype.categories.dtype == pd.StringDtype(), (name, col.name)
                assert list(dtype.categories) == sorted(table[col.name].dropna().unique()), (name, col.name)
            else:
                assert dtype == KIND_DTYPES[col.kind], (name, col.name, dtype)
        assert isinstance(table.index, pd.RangeIndex) and table.index.start == 0
        if name != "customers":
            keys = table[["customer_id", "timestamp"]]
            assert keys.equals(keys.sort_values(["customer_id", "timestamp"]).reset_index(drop=True))
    customers = sim.tables.customers
    assert customers.customer_id.iloc[0] == "C000001" and customers.customer_id.is_unique
    for attr in ("country", "age_band", "acquisition_channel"):
        assert customers[attr].dtype == pd.StringDtype()
    assert (customers.signup_at < sim.settings.start_ts).any() and (
        customers.signup_at >= sim.settings.start_ts
    ).any()
    assert sim.tables.data_start >= sim.settings.start_ts and sim.tables.data_end < sim.settings.end_ts


def test_written_tables_load_back_unchanged(tmp_path):
    small = simulate(800, months=6, seed=5)
    from churnlens.data.io import write_tables

    write_tables(small.tables, tmp_path, fmt="parquet")
    loaded, _ = load_tables(tmp_path)
    for name, table in small.tables.present().items():
        if name == "customers":
            continue  # load_tables may set aside customers without events
        pd.testing.assert_frame_equal(getattr(loaded, name), table, check_exact=True)


# --- ground truth -------------------------------------------------------------------------------------


def test_truth_rows_are_the_active_population(sim, truth, latest_cutoff):
    assert list(truth.columns) == [
        "customer_id",
        "cutoff",
        "horizon_days",
        "p_no_purchase",
        "p_cancel",
        "no_purchase",
        "cancelled",
    ]
    assert set(truth.customer_id) == active_ids(sim.tables, latest_cutoff)
    assert truth.customer_id.is_unique
    assert (truth.cutoff == latest_cutoff).all() and (truth.horizon_days == HORIZON).all()
    assert truth.p_no_purchase.between(0, 1).all() and truth.p_cancel.between(0, 1).all()
    # silently churned customers are certain not to buy, and indeed do not
    certain = truth[truth.p_no_purchase == 1]
    assert 0 < len(certain) < len(truth) / 2
    assert certain.no_purchase.all() and (certain.p_cancel == 0).all()


def test_truth_is_calibrated_against_realised_outcomes(truth):
    assert truth.no_purchase.notna().all()
    assert decile_gap(truth.p_no_purchase, truth.no_purchase) < 0.03
    assert abs(truth.p_no_purchase.mean() - truth.no_purchase.mean()) < 0.015
    assert truth.cancelled.sum() >= 200
    assert decile_gap(truth.p_cancel, truth.cancelled) < 0.03


def test_truth_is_informative_but_not_trivial(truth):
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(truth.no_purchase.astype(bool), truth.p_no_purchase)
    assert 0.75 < auc < 0.93


def test_truth_table_stacks_cutoffs_and_marks_unobserved_outcomes_na():
    small = simulate(1000, months=8, seed=2)
    table = simulate_truth_table(small, ["2023-07-01", "2023-06-01", "2023-08-15"], 60, draws=16)
    assert list(table.cutoff.drop_duplicates()) == [
        pd.Timestamp(d) for d in ("2023-06-01", "2023-07-01", "2023-08-15")
    ]
    late = table[table.cutoff == "2023-08-15"]  # 2023-08-15 + 60 days runs past 2023-09-01
    assert late.no_purchase.isna().all() and late.cancelled.isna().all()
    assert table[table.cutoff == "2023-06-01"].no_purchase.notna().all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cutoff": "2022-12-01"}, "must be after the simulation start 2023-01-01"),
        ({"cutoff": "2023-05-01 12:00"}, "must be a midnight"),
        ({"cutoff": "2023-07-02"}, "is after the end of the simulated history 2023-07-01"),
        ({"cutoff": "yesterday-ish"}, "cutoff must be a date"),
        ({"cutoff": "2023-05-01", "horizon_days": 0}, "horizon_days must be at least 1, got 0"),
        ({"cutoff": "2023-05-01", "draws": 0}, "draws must be at least 1, got 0"),
    ],
)
def test_truth_errors(kwargs, match):
    small = simulate(200, months=6, seed=1)
    with pytest.raises(ValueError, match=match):
        small.truth_fn(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_customers": 0}, "n_customers must be at least 1, got 0"),
        ({"months": 0}, "months must be at least 1, got 0"),
        ({"start": "2023-01-01 10:00"}, "start must be a naive midnight date"),
        ({"start": "not a date"}, "start must be a date like"),
    ],
)
def test_simulate_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(**kwargs)


# --- CLI ----------------------------------------------------------------------------------------------


def test_truth_cutoff_grid():
    grid = truth_cutoff_grid(pd.Timestamp("2024-12-31 13:05"), 90, 3)
    assert grid == [pd.Timestamp("2024-08-04"), pd.Timestamp("2024-09-03"), pd.Timestamp("2024-10-03")]


def test_cli_writes_tables_and_truth(tmp_path):
    out = tmp_path / "sim"
    args = ["simulate", "--customers", "600", "--months", "7", "--seed", "4", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--horizon", "30", "--truth-cutoffs", "2", "--draws", "8"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "cancellations.parquet",
        "customers.parquet",
        "program_events.parquet",
        "purchases.parquet",
        "support_interactions.parquet",
        "truth.parquet",
    ]
    truth = pd.read_parquet(out / "truth.parquet")
    # data ends in 2023-07-31 -> latest = 2023-08-01 - 30 days = 2023-07-02, then 30 days before
    assert sorted(truth.cutoff.unique()) == [pd.Timestamp("2023-06-02"), pd.Timestamp("2023-07-02")]
    assert (truth.horizon_days == 30).all()
    direct = simulate(600, months=7, seed=4)
    pd.testing.assert_frame_equal(
        string_categories(pd.read_parquet(out / "purchases.parquet")),
        direct.tables.purchases,
        check_dtype=False,
    )


def test_cli_csv_format(tmp_path):
    out = tmp_path / "csv"
    args = [
        "simulate",
        "-n",
        "300",
        "--months",
        "3",
        "--out",
        str(out),
        "--format",
        "csv",
        "--truth-cutoffs",
        "0",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "purchases.csv").is_file() and not (out / "truth.parquet").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--customers", "0"], "--customers must be at least 1, got 0"),
        (["--horizon", "0"], "--horizon must be at least 1 day, got 0"),
        (["--truth-cutoffs", "-1"], "--truth-cutoffs must be 0 or more, got -1"),
    ],
)
def test_cli_bad_options_exit_2(tmp_path, args, match):
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert match in result.output
