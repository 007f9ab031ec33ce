"""Evaluate-then-refit pieces on hand-made data: backtest origins, grouped folds, the refit's trees,
weights and out-of-fold calibration, the cutoffs a run may use, and the promotion rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlens.config import LightGBMParams, TrainConfig
from churnlens.data import Tables
from churnlens.errors import InputError
from churnlens.training.estimator import ChurnClassifier
from churnlens.training.evaluation import grouped_cv_plan
from churnlens.training.mlflow_log import CHALLENGER, CHAMPION, HeadToHead, ModelEvidence, promotion_decision
from churnlens.training.pipeline import labelled_cutoffs
from churnlens.training.refit import ShippingRecipe, cutoff_weights, fit_shipped_model, scaled_rounds
from churnlens.training.source import LocalSource
from churnlens.training.split import backtest_origins, customer_folds, fold_of_rows, matured_cutoffs

H = 90
DAY = pd.Timedelta(days=1)
CUTOFFS = [pd.Timestamp("2023-01-01") + pd.Timedelta(days=30 * k) for k in range(14)]


# ----------------------------------------------------------------------------- origins


def test_backtest_origins_are_purged_and_step_back_from_the_latest():
    origins = backtest_origins(CUTOFFS, horizon_days=H, count=3)
    assert [o.test_cutoff for o in origins] == CUTOFFS[-3:]
    for origin in origins:
        # every label window of the origin's fitting rows ends by its test cutoff: none overlaps the test window
        used = [*origin.train_cutoffs, origin.validation_cutoff]
        assert all(c + H * DAY <= origin.test_cutoff for c in used)
        assert all(c + H * DAY <= origin.validation_cutoff for c in origin.train_cutoffs)
        # the replayed refit of an origin uses the cutoffs matured by its test cutoff, the validation one last
        matured = matured_cutoffs(CUTOFFS, horizon_days=H, as_of=origin.test_cutoff)
        assert matured[-1] == origin.validation_cutoff


def test_fewer_origins_when_the_history_is_short_and_none_when_not_one_fits():
    # 7 cutoffs 30 days apart: a purged origin needs test - 90 >= validation >= train + 90
    assert [o.test_cutoff for o in backtest_origins(CUTOFFS[:8], horizon_days=H, count=3)] == CUTOFFS[6:8]
    assert backtest_origins(CUTOFFS[:6], horizon_days=H, count=3) == []
    assert len(backtest_origins(CUTOFFS, horizon_days=H, count=1)) == 1
    with pytest.raises(InputError, match="at least 1 origin"):
        backtest_origins(CUTOFFS, horizon_days=H, count=0)


def test_explicit_test_cutoff_is_the_latest_origin():
    origins = backtest_origins(CUTOFFS, horizon_days=H, count=2, test_cutoff=CUTOFFS[10])
    assert [o.test_cutoff for o in origins] == CUTOFFS[9:11]
    with pytest.raises(InputError, match="not one of the training cutoffs"):
        backtest_origins(CUTOFFS, horizon_days=H, count=2, test_cutoff="2020-01-01")


# ----------------------------------------------------------------------------- customer folds


def _frame(n_customers: int, cutoffs: list[pd.Timestamp], seed: int = 0) -> pd.DataFrame:
    """A stacked training set: every customer at every cutoff, churn driven by x."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:04d}" for i in range(n_customers)]
    index = pd.MultiIndex.from_product([pd.DatetimeIndex(cutoffs, name="cutoff"), pd.Index(ids, name="customer_id")])
    x = rng.exponential(60, len(index))
    frame = pd.DataFrame({
        "days_since_last_purchase": x,
        "purchase_count_365d": rng.poisson(4, len(index)).astype(float),
        "spend_365d": rng.gamma(2, 50, len(index)),
    }, index=index)  # fmt: skip
    p = 1 / (1 + np.exp(-(0.03 * x - 1.5 + 0.2 * rng.normal(size=len(index)))))
    frame["churned"] = rng.binomial(1, p).astype(np.int8)
    return frame


def test_customer_folds_are_balanced_seeded_and_ignore_row_order():
    ids = pd.Index([f"c{i}" for i in range(23)])
    folds = customer_folds(ids, folds=5, seed=1)
    assert sorted(folds.value_counts().tolist()) == [4, 4, 5, 5, 5]
    pd.testing.assert_series_equal(folds, customer_folds(ids[::-1].append(ids[:3]), folds=5, seed=1))
    assert not folds.equals(customer_folds(ids, folds=5, seed=2))
    with pytest.raises(InputError, match="cannot be split"):
        customer_folds(ids[:3], folds=5, seed=1)


def test_grouped_cv_never_shares_a_customer_between_test_and_any_other_role():
    frame = _frame(200, CUTOFFS[:3])
    plans = grouped_cv_plan(frame, folds=5, seed=3)
    ids = frame.index.get_level_values("customer_id")
    cutoffs = frame.index.get_level_values("cutoff")
    tested = set()
    for plan in plans:
        test = set(ids[plan.test])
        assert test and test.isdisjoint(ids[plan.train]) and test.isdisjoint(ids[plan.validation])
        assert test.isdisjoint(ids[plan.refit])
        assert set(ids[plan.train]).isdisjoint(ids[plan.validation])
        assert (cutoffs[plan.test] == CUTOFFS[2]).all()  # tested at the latest cutoff
        assert tested.isdisjoint(test)
        tested |= test
    assert tested == set(ids)  # every customer is tested exactly once
    with pytest.raises(InputError, match="at least 3 folds"):
        grouped_cv_plan(frame, folds=2, seed=3)


# ----------------------------------------------------------------------------- the refit


def test_trees_scale_with_the_square_root_of_the_rows():
    assert scaled_rounds(40, 10_000, 40_000, max_rounds=600) == 80
    assert scaled_rounds(40, 10_000, 2_500, max_rounds=600) == 20
    assert scaled_rounds(400, 1_000, 100_000, max_rounds=600) == 600
    assert scaled_rounds(1, 10_000, 100, max_rounds=600) == 1


def test_recent_weights_halve_every_half_life():
    frame = _frame(2, CUTOFFS[:3])
    assert cutoff_weights(frame, 0.0) is None
    w = cutoff_weights(frame, 30.0)
    # cutoffs 60, 30 and 0 days before the latest
    np.testing.assert_allclose(w, [0.25, 0.25, 0.5, 0.5, 1.0, 1.0])


def test_calibrator_is_fitted_on_out_of_fold_margins_at_the_latest_cutoffs():
    frame = _frame(600, CUTOFFS[:4], seed=2)
    config = TrainConfig(seed=7, calibration_folds=3, calibration_cutoffs=2, calibration="platt")
    recipe = ShippingRecipe(LightGBMParams(min_child_samples=20), "rfm", 20, len(frame))
    model, oof = fit_shipped_model(frame, recipe, config)
    assert oof.cutoffs == CUTOFFS[2:4]
    assert len(oof.y) == 2 * 600
    folds = customer_folds(frame.index.get_level_values("customer_id"), folds=3, seed=7)
    for g, seen in enumerate(oof.train_customers):
        scored = set(oof.customer_id[oof.fold == g])
        assert scored and scored.isdisjoint(seen)  # no margin comes from a model that saw its customer
        assert seen == set(folds.index[folds != g])
    # the margins are those of a model trained, with the same settings, without that fold's customers
    fold = fold_of_rows(frame, folds)
    train = frame[fold != 0]
    member = ChurnClassifier(recipe.params, seed=7, threads=config.threads, class_weight=config.class_weight,
                             linear_base="rfm").fit_rounds(
        train.drop(columns=["churned"]), train["churned"].to_numpy(),
        rounds=scaled_rounds(20, len(frame), len(train), max_rounds=600))
    at = frame[(fold == 0) & frame.index.get_level_values("cutoff").isin(CUTOFFS[2:4])]
    np.testing.assert_array_equal(np.sort(member.margin(at.drop(columns=["churned"]))),
                                  np.sort(oof.margin[oof.fold == 0]))
    # the shipped model itself trains on every row, with the trees scaled to them
    assert model.n_trees_ == 20 and model.calibrator_.method == "platt"


# ----------------------------------------------------------------------------- cutoffs a run may use


def _purchases(start: str, days: int) -> Tables:
    rng = np.random.default_rng(0)
    n = 400
    ts = pd.Timestamp(start) + pd.to_timedelta(rng.uniform(0, days, n), unit="D")
    frame = pd.DataFrame({"customer_id": pd.array([f"c{i % 40}" for i in range(n)], dtype="string"),
                          "timestamp": ts.astype("datetime64[us]"), "amount": rng.gamma(2, 20, n)})
    return Tables(purchases=frame.sort_values(["customer_id", "timestamp"]).reset_index(drop=True))


def test_refit_cutoffs_end_at_the_latest_matured_cutoff():
    tables = _purchases("2023-01-01", 400)
    cutoffs, note = labelled_cutoffs(LocalSource(tables), TrainConfig(), 90)
    assert note is None
    until = tables.data_end.floor("D") + DAY
    assert cutoffs[-1] == until - H * DAY  # the data end minus the horizon, and nothing later
    assert all(c + H * DAY <= until for c in cutoffs)


def test_short_history_uses_the_latest_matured_cutoff_and_no_label_refuses():
    short = _purchases("2023-01-01", 150)  # 150 days: one cutoff, with 60 days of history before it
    cutoffs, note = labelled_cutoffs(LocalSource(short), TrainConfig(), 90)
    assert cutoffs == [short.data_end.floor("D") + DAY - H * DAY]
    assert "short history" in note
    too_short = _purchases("2023-01-01", 80)
    with pytest.raises(InputError, match=r"no cutoff has a matured 90-day label.*\d+ more days of history"):
        labelled_cutoffs(LocalSource(too_short), TrainConfig(), 90)


# ----------------------------------------------------------------------------- promotion


def _evidence(through: str | None, auc: float | None = 0.7, folds=("2024-01-01", "2024-02-01")) -> ModelEvidence:
    return ModelEvidence(pd.Timestamp(through) if through else None, "backtest", auc, tuple(folds))


def test_first_version_is_champion():
    assert promotion_decision(_evidence("2024-06-30"), None, None)[0] == CHAMPION


def test_head_to_head_on_labels_neither_trained_on_decides_both_ways():
    fresh, stale = _evidence("2024-12-31"), _evidence("2024-06-30")
    better = HeadToHead(("2024-07-03",), challenger_auc=0.71, champion_auc=0.70)
    worse = HeadToHead(("2024-07-03",), challenger_auc=0.69, champion_auc=0.70)
    tie = HeadToHead(("2024-07-03",), challenger_auc=0.70, champion_auc=0.70)
    assert promotion_decision(fresh, stale, better)[0] == CHAMPION
    alias, reason = promotion_decision(fresh, stale, worse, champion_version="3")
    assert alias == CHALLENGER and "below champion's 0.7000" in reason and "v3" in reason
    assert promotion_decision(fresh, stale, tie)[0] == CHAMPION  # a tie goes to the fresher model


def test_without_held_out_labels_the_fresher_model_wins_and_a_staler_one_does_not():
    fresh, stale = _evidence("2024-12-31", auc=0.60), _evidence("2024-06-30", auc=0.80)
    alias, reason = promotion_decision(fresh, stale, None)
    assert alias == CHAMPION and "fresher" in reason  # a lower backtest figure does not keep stale labels
    alias, reason = promotion_decision(stale, fresh, None)
    assert alias == CHALLENGER and "staler" in reason
    assert promotion_decision(fresh, _evidence(None), None)[0] == CHAMPION  # champion of unknown freshness


def test_same_history_needs_a_strictly_better_evaluation_on_the_same_folds():
    a, b = _evidence("2024-06-30", auc=0.72), _evidence("2024-06-30", auc=0.70)
    assert promotion_decision(a, b, None)[0] == CHAMPION
    assert promotion_decision(b, a, None)[0] == CHALLENGER
    assert promotion_decision(b, b, None)[0] == CHALLENGER  # an identical retrain does not displace
    other_folds = _evidence("2024-06-30", auc=0.9, folds=("2023-01-01",))
    alias, reason = promotion_decision(other_folds, b, None)
    assert alias == CHALLENGER and "no fair comparison" in reason
