"""Unit tests of training pieces on hand-made data: split, metrics, calibration, baselines, estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlens.config import Economics, TrainConfig
from churnlens.model import Calibrator
from churnlens.training.calibration import choose_calibrator, fit_calibrator
from churnlens.training.estimator import ChurnClassifier, scale_pos_weight
from churnlens.training.metrics import evaluate, expected_calibration_error, lift_table, profit_curve
from churnlens.training.split import out_of_time_split

CUTOFFS = [pd.Timestamp("2024-01-01") + pd.Timedelta(days=30 * k) for k in range(8)]


def test_split_holds_out_latest_as_test_and_previous_as_validation():
    split = out_of_time_split(CUTOFFS[::-1], horizon_days=90, purge=False)
    assert split.test_cutoff == CUTOFFS[-1]
    assert split.validation_cutoff == CUTOFFS[-2]
    assert split.train_cutoffs == tuple(CUTOFFS[:-2])


def test_purged_split_keeps_label_windows_apart():
    assert TrainConfig().purge  # leak-free by default
    split = out_of_time_split(CUTOFFS, horizon_days=90)
    assert split.test_cutoff == CUTOFFS[7]
    assert split.validation_cutoff == CUTOFFS[4]  # 4 + 3 steps of 30 days = 90 days <= test
    assert split.train_cutoffs == tuple(CUTOFFS[:2])
    assert all(c + pd.Timedelta(days=90) <= split.validation_cutoff for c in split.train_cutoffs)


def test_split_with_explicit_test_cutoff_and_errors():
    split = out_of_time_split(CUTOFFS, horizon_days=90, test_cutoff=CUTOFFS[5], purge=False)
    assert split.test_cutoff == CUTOFFS[5] and split.validation_cutoff == CUTOFFS[4]
    with pytest.raises(ValueError, match="test cutoff 2023-12-31 is not one of the training cutoffs"):
        out_of_time_split(CUTOFFS, horizon_days=90, test_cutoff="2023-12-31")
    with pytest.raises(ValueError, match="no training cutoff before the validation cutoff"):
        out_of_time_split(CUTOFFS[:2], horizon_days=90, purge=False)
    with pytest.raises(ValueError, match="no validation cutoff"):
        out_of_time_split(CUTOFFS[:1], horizon_days=90)


def test_ece_by_hand():
    # two bins of two rows: bin 1 mean p 0.15 vs rate 0.5 -> 0.35; bin 2 mean p 0.85 vs rate 0.5 -> 0.35
    y = np.array([0, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.35)
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0]), bins=2) == 0.0


def test_lift_and_profit_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    score = np.arange(10, 0, -1, dtype=float)  # first row highest
    lift = lift_table(y, score, bins=10)
    assert lift["lift"].iloc[0] == pytest.approx(1.0 / 0.2)
    assert lift["capture"].iloc[2] == pytest.approx(1.0)
    econ = Economics(cost_per_contact=10, save_rate=0.5, value_per_save=100)
    profit = profit_curve(y, score, econ)
    # contact 1: 50 - 10 = 40; contact 3: 100 - 30 = 70; contact 10: 100 - 100 = 0
    assert profit["profit"].tolist()[:4] == [0, 40, 30, 70]
    assert profit["profit"].iloc[-1] == 0
    metrics = evaluate(y, score / 11, econ)
    assert metrics["best_profit"] == 70 and metrics["best_depth"] == pytest.approx(0.3)
    assert metrics["roc_auc"] == pytest.approx(1 - 1 / 16)  # one of 16 pairs mis-ordered


def test_calibrators_are_monotone_and_chosen_by_cv_log_loss():
    rng = np.random.default_rng(0)
    margin = rng.normal(size=4000)
    true_p = 1 / (1 + np.exp(-(0.5 * margin - 1)))  # overconfident margins, shifted
    y = rng.binomial(1, true_p)
    platt = fit_calibrator(margin, y, "platt")
    assert platt.a == pytest.approx(0.5, abs=0.1) and platt.b == pytest.approx(-1, abs=0.1)
    iso = fit_calibrator(margin, y, "isotonic")
    grid = np.linspace(-3, 3, 50)
    assert np.all(np.diff(iso.transform(grid)) >= 0)
    chosen, scores = choose_calibrator(margin, y, method="auto", seed=0)
    assert set(scores) == {"isotonic", "platt"}
    assert chosen.method == min(scores, key=scores.get)
    assert Calibrator.from_dict(chosen.to_dict()).transform(grid) == pytest.approx(chosen.transform(grid))


def test_scale_pos_weight():
    assert scale_pos_weight(np.array([1] * 10 + [0] * 90), "auto") == pytest.approx(3.0)
    assert scale_pos_weight(np.array([1] * 30 + [0] * 70), "auto") == 1.0
    assert scale_pos_weight(np.array([1] * 10 + [0] * 90), "none") == 1.0


def _synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "days_since_last_purchase": rng.exponential(60, n),
            "purchase_count_365d": rng.poisson(5, n).astype(float),
            "spend_365d": rng.gamma(2, 100, n),
            "country": pd.Categorical(rng.choice(["FR", "UK", "DE"], n), categories=["DE", "FR", "UK"]),
        }
    )
    logit = (
        0.03 * frame["days_since_last_purchase"]
        - 0.3 * frame["purchase_count_365d"]
        + (frame["country"] == "FR") * 0.8
    )
    y = rng.binomial(1, 1 / (1 + np.exp(-logit.to_numpy())))
    return frame, y


def test_estimator_is_deterministic_and_learns():
    X, y = _synthetic(4000, 1)
    Xv, yv = _synthetic(2000, 2)
    a = ChurnClassifier(seed=3).fit(X, y, Xv, yv)
    b = ChurnClassifier(seed=3).fit(X, y, Xv, yv)
    np.testing.assert_array_equal(a.predict_proba(Xv), b.predict_proba(Xv))
    assert evaluate(yv, a.predict_proba(Xv), Economics(value_per_save=100))["roc_auc"] > 0.75
    assert a.categorical_levels_ == {"country": ["DE", "FR", "UK"]}
    with pytest.raises(RuntimeError, match="not fitted yet"):
        ChurnClassifier().predict_proba(X)


def test_train_config_from_dict_rejects_unknown_keys():
    cfg = TrainConfig.from_dict({"seed": 7, "lgbm": {"num_leaves": 7}})
    assert cfg.seed == 7 and cfg.lgbm.num_leaves == 7
    with pytest.raises(ValueError, match=r"unknown keys: \['bogus'\]"):
        TrainConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match=r"\[training.lgbm\] has unknown keys"):
        TrainConfig.from_dict({"lgbm": {"leaves": 3}})


def test_linear_base_is_the_rfm_baseline_and_its_shap_values_add_up(tmp_path):
    from churnlens.model import ChurnModel
    from churnlens.training.baselines import RFM_FEATURES, LogisticBaseline
    from churnlens.training.estimator import fit_linear_base

    X, y = _synthetic(3000, 4)
    X.loc[::7, "spend_365d"] = np.nan  # imputed with the training median, as the baseline does
    linear = fit_linear_base(X, y)
    baseline = LogisticBaseline(RFM_FEATURES).fit(X, y)
    np.testing.assert_allclose(1 / (1 + np.exp(-linear.margin(X))), baseline.predict_proba(X), atol=1e-12)
    # exact linear SHAP: coef * standardised value, base value = intercept
    np.testing.assert_allclose(linear.contributions(X).sum(axis=1) + linear.intercept, linear.margin(X))
    assert fit_linear_base(X[["country"]], y) is None
    # beyond the training range the linear part is flat, not extrapolated
    extreme = X.iloc[[0, 0]].copy()
    extreme["spend_365d"] = [-1e9, X["spend_365d"].min()]
    assert linear.margin(extreme)[0] == linear.margin(extreme)[1]

    Xv, yv = _synthetic(2000, 5)
    clf = ChurnClassifier(seed=3, linear_base="rfm").fit(X, y, Xv, yv)
    assert clf.linear_ is not None and set(clf.linear_base_scores_) == {"rfm"}
    model = ChurnModel.from_parts(clf.booster_, clf.calibrator_, clf.schema_metadata(), linear=clf.linear_)
    np.testing.assert_allclose(model.predict_proba(Xv), clf.predict_proba(Xv))
    contributions = model.contributions(Xv)
    np.testing.assert_allclose(contributions.sum(axis=1).to_numpy(), model.raw_margin(Xv), atol=1e-9)
    trees_only = clf.booster_.predict(model.prepare(Xv), raw_score=True)
    np.testing.assert_allclose(model.raw_margin(Xv), trees_only + linear_margin(clf, model, Xv))

    # saved and reloaded through MLflow: same probabilities, linear part included
    import mlflow.pyfunc

    from churnlens.model import MODEL_CODE

    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=str(MODEL_CODE),
                             artifacts=model.save_artifacts(tmp_path / "parts"), pip_requirements=["churnlens"])
    reloaded = mlflow.pyfunc.load_model(str(tmp_path / "m")).unwrap_python_model()
    assert reloaded.linear == clf.linear_
    np.testing.assert_array_equal(reloaded.predict_proba(Xv), model.predict_proba(Xv))


def linear_margin(clf, model, frame):
    return clf.linear_.margin(model.prepare(frame))


def test_auto_linear_base_keeps_the_lower_validation_loss():
    X, y = _synthetic(3000, 6)
    Xv, yv = _synthetic(2000, 7)
    clf = ChurnClassifier(seed=3, linear_base="auto").fit(X, y, Xv, yv)
    scores = clf.linear_base_scores_
    assert set(scores) == {"none", "rfm"}
    assert (clf.linear_ is not None) == (scores["rfm"] < scores["none"])
    assert ChurnClassifier(seed=3, linear_base="none").fit(X, y, Xv, yv).linear_ is None
    with pytest.raises(ValueError, match="linear_base must be"):
        ChurnClassifier(linear_base="ridge").fit(X, y, Xv, yv)


@pytest.mark.parametrize("metric", ["binary_logloss", "auc"])
@pytest.mark.parametrize("with_init", [False, True], ids=["no_init", "init_score"])
def test_early_stopping_found_after_training_equals_the_callback(metric, with_init):
    """lightgbm.dask has no early stopping: the trees kept are chosen after growing all of them,
    by the callback's rule. Same data and seed: the same number as the callback keeps."""
    import lightgbm as lgb

    from churnlens.model import prepare_features
    from churnlens.training.estimator import early_stopping_rounds

    train, y_train = _synthetic(3000, seed=1)
    valid, y_valid = _synthetic(1500, seed=2)
    meta = {"features": list(train.columns), "categorical_levels": {"country": ["DE", "FR", "UK"]}}
    X_train, X_valid = prepare_features(train, meta), prepare_features(valid, meta)
    init_train = np.full(len(X_train), -0.4) if with_init else None
    init_valid = np.full(len(X_valid), -0.4) if with_init else np.zeros(len(X_valid))
    params = {"objective": "binary", "metric": metric, "num_leaves": 15, "learning_rate": 0.3,
              "min_data_in_leaf": 20, "seed": 3, "deterministic": True, "verbosity": -1, "num_threads": 1}
    dtrain = lgb.Dataset(X_train, y_train, init_score=init_train, free_raw_data=False)
    dvalid = lgb.Dataset(X_valid, y_valid, init_score=init_valid if with_init else None, reference=dtrain)
    stop = lgb.early_stopping(10, verbose=False)
    stopped = lgb.train(params, dtrain, 300, valid_sets=[dvalid], callbacks=[stop])
    grown = lgb.train(params, dtrain, 300)
    assert stopped.best_iteration < 300, "early stopping never triggered: nothing was compared"
    found = early_stopping_rounds(grown, X_valid, y_valid, init_valid, metric=metric, patience=10)
    assert found == stopped.best_iteration


def test_windows_longer_than_every_training_history_are_left_out():
    from churnlens.training.pipeline import windows_the_history_shows

    start = pd.Timestamp("2024-01-01")
    cutoffs = [start + pd.Timedelta(days=d) for d in (120, 150, 200)]
    # 200 days of history at the latest cutoff: a 365-day window would equal the lifetime figures
    assert windows_the_history_shows((30, 90, 365), cutoffs, start) == ((30, 90), (365,))
    # one cutoff with more than a year of history is enough for the window to mean something
    later = cutoffs + [start + pd.Timedelta(days=400)]
    assert windows_the_history_shows((30, 90, 365), later, start) == ((30, 90, 365), ())
    # the smallest window stays whatever the history
    assert windows_the_history_shows((30, 90), [start + pd.Timedelta(days=10)], start) == ((30,), (90,))


def test_rfm_columns_stand_in_the_lifetime_figures_without_a_365_day_window():
    from churnlens.training.baselines import rfm_columns

    full = ["days_since_last_purchase", "purchase_count_365d", "spend_365d", "purchase_count_lifetime",
            "spend_lifetime"]
    assert rfm_columns(full) == ("days_since_last_purchase", "purchase_count_365d", "spend_365d")
    short = ["days_since_last_purchase", "purchase_count_90d", "purchase_count_lifetime", "spend_lifetime"]
    assert rfm_columns(short) == ("days_since_last_purchase", "purchase_count_lifetime", "spend_lifetime")
    assert rfm_columns(["tenure_days"]) == ()
